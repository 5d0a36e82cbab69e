// The Simple CNN in plain JavaScript, for the digit lab of chapter 8 (see digitlab.js).
//
// No library: the forward pass is a few loops over typed arrays. The weights are the ones
// `python -m cnnkit export-weights` writes (cnnkit/digitlab.py), embedded in the page as base64.
//
//   decodeWeights  the exported bytes -> float32 tensors (float16, or int8 times a scale per channel)
//   forward        conv -> batch norm -> ReLU -> max-pool, twice; fc1 -> ReLU -> fc2 -> softmax
//   preprocess     a drawing -> the 28x28 input, as MNIST was made (twin of cnnkit.digitlab.frame)
window.SimpleCNN = (function () {
  "use strict";

  // ---------------------------------------------------------------------------------------------
  // Weights
  // ---------------------------------------------------------------------------------------------

  function base64Bytes(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // An IEEE half-precision number (16 bits) as a JavaScript number; exact.
  function half(bits) {
    var sign = bits & 0x8000 ? -1 : 1, exp = (bits >> 10) & 0x1f, frac = bits & 0x3ff;
    if (exp === 0) return sign * frac * Math.pow(2, -24);
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * (1 + frac / 1024) * Math.pow(2, exp - 15);
  }

  function decodeTensors(payload) {
    var bytes = base64Bytes(payload.weights), view = new DataView(bytes.buffer), out = {};
    if (bytes.length !== payload.bytes) throw new Error("the embedded weights are damaged (" + bytes.length + " bytes, expected " + payload.bytes + ")");
    payload.tensors.forEach(function (t) {
      var n = t.shape.reduce(function (a, b) { return a * b; }, 1), data = new Float32Array(n), i;
      if (t.dtype === "float16") {
        for (i = 0; i < n; i++) data[i] = half(view.getUint16(t.offset + 2 * i, true));
      } else if (t.dtype === "int8") {
        var rows = t.shape[0], per = n / rows;
        for (var r = 0; r < rows; r++) {
          var scale = view.getFloat32(t.scales + 4 * r, true);
          for (i = 0; i < per; i++) data[r * per + i] = view.getInt8(t.offset + r * per + i) * scale;
        }
      } else {
        throw new Error("unknown weight type " + t.dtype);
      }
      out[t.name] = { shape: t.shape, data: data };
    });
    return out;
  }

  // Batch norm in evaluation mode is y = (x - mean) / sqrt(var + eps) * gamma + beta: one scale
  // and one shift per channel.
  function batchNorm(t, prefix, eps) {
    var g = t[prefix + ".weight"].data, b = t[prefix + ".bias"].data;
    var m = t[prefix + ".running_mean"].data, v = t[prefix + ".running_var"].data;
    var scale = new Float64Array(g.length), shift = new Float64Array(g.length);
    for (var c = 0; c < g.length; c++) { scale[c] = g[c] / Math.sqrt(v[c] + eps); shift[c] = b[c] - m[c] * scale[c]; }
    return { scale: scale, shift: shift };
  }

  function decodeWeights(payload) {
    var t = decodeTensors(payload);
    function layer(name) { return { w: t[name + ".weight"].data, b: t[name + ".bias"].data, shape: t[name + ".weight"].shape }; }
    return {
      conv1: layer("features.conv1"), bn1: batchNorm(t, "features.bn1", payload.bn_eps),
      conv2: layer("features.conv2"), bn2: batchNorm(t, "features.bn2", payload.bn_eps),
      fc1: layer("classifier.fc1"), fc2: layer("classifier.fc2"),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // The forward pass; maps are Float32Arrays in (channel, row, column) order, like PyTorch's
  // ---------------------------------------------------------------------------------------------

  // The dot product of a[i .. i + n) and b[j .. j + n), with four running sums (faster: the
  // processor adds them side by side).
  function dot(a, i, b, j, n) {
    var s0 = 0, s1 = 0, s2 = 0, s3 = 0, t = 0;
    for (; t + 3 < n; t += 4) {
      s0 += a[i + t] * b[j + t]; s1 += a[i + t + 1] * b[j + t + 1];
      s2 += a[i + t + 2] * b[j + t + 2]; s3 += a[i + t + 3] * b[j + t + 3];
    }
    for (; t < n; t++) s0 += a[i + t] * b[j + t];
    return (s0 + s1) + (s2 + s3);
  }

  // A valid convolution (no padding, stride 1) of C_in maps of size n x n with k x k kernels.
  // Each window is first copied into a row of `cols` (C_in * k * k values, in the order of the
  // kernel's weights), so that every output value is one long dot product.
  function conv(x, cin, n, layer, cout, k) {
    var o = n - k + 1, len = cin * k * k, cols = new Float32Array(o * o * len), w = layer.w;
    for (var i = 0; i < o; i++) for (var j = 0; j < o; j++) {
      var q = (i * o + j) * len;
      for (var ic = 0; ic < cin; ic++) for (var a = 0; a < k; a++) {
        var src = (ic * n + i + a) * n + j;
        for (var b = 0; b < k; b++) cols[q++] = x[src + b];
      }
    }
    var out = new Float32Array(cout * o * o);
    for (var oc = 0; oc < cout; oc++) {
      var wo = oc * len;
      for (var p = 0; p < o * o; p++) {
        out[oc * o * o + p] = layer.b[oc] + dot(w, wo, cols, p * len, len);
      }
    }
    return out;
  }

  function batchNormRelu(x, channels, bn) {
    var per = x.length / channels;
    for (var c = 0; c < channels; c++) for (var i = c * per; i < (c + 1) * per; i++) {
      var v = x[i] * bn.scale[c] + bn.shift[c];
      x[i] = v > 0 ? v : 0;
    }
    return x;
  }

  function maxPool(x, channels, n) {
    var h = n >> 1, out = new Float32Array(channels * h * h);
    for (var c = 0; c < channels; c++) for (var i = 0; i < h; i++) for (var j = 0; j < h; j++) {
      var p = (c * n + 2 * i) * n + 2 * j;
      out[(c * h + i) * h + j] = Math.max(x[p], x[p + 1], x[p + n], x[p + n + 1]);
    }
    return out;
  }

  function dense(x, layer, relu) {
    var nout = layer.shape[0], nin = layer.shape[1], out = new Float32Array(nout);
    for (var o = 0; o < nout; o++) {
      var v = layer.b[o] + dot(layer.w, o * nin, x, 0, nin);
      out[o] = relu && v < 0 ? 0 : v;
    }
    return out;
  }

  function softmax(z) {
    var top = Math.max.apply(null, Array.from(z)), sum = 0, out = new Float64Array(z.length);
    for (var i = 0; i < z.length; i++) { out[i] = Math.exp(z[i] - top); sum += out[i]; }
    for (i = 0; i < z.length; i++) out[i] /= sum;
    return out;
  }

  // input: 784 standardised values of one 28x28 digit.
  function forward(m, input) {
    var relu1 = batchNormRelu(conv(input, 1, 28, m.conv1, 32, 5), 32, m.bn1);  // 32 x 24 x 24
    var pool1 = maxPool(relu1, 32, 24);                                          // 32 x 12 x 12
    var relu2 = batchNormRelu(conv(pool1, 32, 12, m.conv2, 64, 5), 64, m.bn2);   // 64 x 8 x 8
    var pool2 = maxPool(relu2, 64, 8);                                           // 64 x 4 x 4
    var hidden = dense(pool2, m.fc1, true);                                      // 512
    var logits = dense(hidden, m.fc2, false);                                    // 10
    return { relu1: relu1, pool1: pool1, relu2: relu2, pool2: pool2, logits: logits, probs: softmax(logits) };
  }

  // ---------------------------------------------------------------------------------------------
  // Preprocessing (the same operations as cnnkit.digitlab.frame, so the two agree to rounding)
  // ---------------------------------------------------------------------------------------------

  // Area resampling from nIn to nOut pixels: for each output pixel, [input index, weight] pairs.
  function areaWeights(nIn, nOut) {
    var step = nIn / nOut, rows = [];
    for (var i = 0; i < nOut; i++) {
      var lo = i * step, hi = (i + 1) * step, row = [];
      for (var j = Math.floor(lo); j < Math.min(nIn, Math.ceil(hi)); j++) row.push([j, (Math.min(hi, j + 1) - Math.max(lo, j)) / step]);
      rows.push(row);
    }
    return rows;
  }

  // ink: h*w values in [0, 1], row by row. Returns null for an empty drawing, else the framed
  // pixels (784 values in [0, 1]), the standardised input and where the ink was.
  function preprocess(ink, h, w, k) {
    var r0 = -1, r1 = -1, c0 = w, c1 = -1, r, c, i;
    for (r = 0; r < h; r++) for (c = 0; c < w; c++) if (ink[r * w + c] > 0) {
      if (r0 < 0) r0 = r;
      r1 = r; if (c < c0) c0 = c; if (c > c1) c1 = c;
    }
    if (r0 < 0) return null;
    var ch = r1 - r0 + 1, cw = c1 - c0 + 1, longer = Math.max(ch, cw);
    var nh = Math.max(1, Math.floor(ch * k.box / longer + 0.5)), nw = Math.max(1, Math.floor(cw * k.box / longer + 0.5));
    var ry = areaWeights(ch, nh), rx = areaWeights(cw, nw);
    var tmp = new Float64Array(ch * nw);  // the crop resampled along its rows
    for (r = 0; r < ch; r++) for (c = 0; c < nw; c++) {
      var s = 0;
      rx[c].forEach(function (p) { s += ink[(r0 + r) * w + c0 + p[0]] * p[1]; });
      tmp[r * nw + c] = s;
    }
    var small = new Float64Array(nh * nw), total = 0, my = 0, mx = 0;
    for (i = 0; i < nh; i++) for (c = 0; c < nw; c++) {
      var v = 0;
      ry[i].forEach(function (p) { v += tmp[p[0] * nw + c] * p[1]; });
      small[i * nw + c] = Math.min(1, Math.max(0, v));
    }
    for (i = 0; i < nh; i++) for (c = 0; c < nw; c++) { v = small[i * nw + c]; total += v; my += i * v; mx += c * v; }
    var cy = my / total, cx = mx / total;
    var top = Math.floor((k.frame - 1) / 2 - cy + 0.5 + k.tie), left = Math.floor((k.frame - 1) / 2 - cx + 0.5 + k.tie);
    top = Math.min(Math.max(top, 0), k.frame - nh); left = Math.min(Math.max(left, 0), k.frame - nw);
    var pixels = new Float64Array(k.frame * k.frame), input = new Float32Array(k.frame * k.frame);
    for (i = 0; i < nh; i++) for (c = 0; c < nw; c++) pixels[(top + i) * k.frame + left + c] = small[i * nw + c];
    for (i = 0; i < pixels.length; i++) input[i] = (pixels[i] - k.mean) / k.std;
    return { pixels: pixels, input: input, crop: [r0, c0, ch, cw], size: [nh, nw], at: [top, left] };
  }

  return { decodeWeights: decodeWeights, forward: forward, preprocess: preprocess, areaWeights: areaWeights,
           half: half, base64Bytes: base64Bytes };
})();
