// The Simple CNN learning in plain JavaScript: forward pass, backward pass and Adam, for the
// training lab on chapter 7's notebook page (traininglab.js runs this file in a Web Worker).
//
// The same network, loss and optimiser as src/simplecnn.py, written out by hand: each piece
// names the chapter that teaches it. PyTorch's autograd does the backward pass for you; here it
// is written out layer by layer (`backward`, with batchNormBackward, maxPoolBackward and col2im
// next to the forward pieces they undo), so you can read how each gradient is made. The browser tests check, from the same weights, batch and dropout masks, that one step
// here gives PyTorch's loss and gradients and a few Adam steps give PyTorch's weights.
//
// Layout. A batch of N images travels through the convolution blocks *channel first*:
// a Float32Array of C x N x H x W values (channel, image, row, column). Batch norm then finds each
// channel's values side by side, and a convolution over the whole batch is one matrix product.
// After the last pooling the values are reordered to PyTorch's (image, channel, row, column),
// which is what `flatten` hands to the linear layers.
//
// Speed. Almost all the work is in matrix products (matmulNT below). JavaScript computes in
// float64; the arrays store float32, like PyTorch's tensors.
//
//   createNet(seed)        the network with PyTorch's initial weights (drawn from a seeded generator)
//   trainStep(net, x, y)   one step: forward, loss, backward, Adam; returns the loss
//   evaluate(net, x, n)    the logits of n images in evaluation mode (running statistics, no dropout)
//   exportState / importState   the weights and batch-norm statistics, by PyTorch's names
//   serve(scope)           in a Web Worker: the training loop that the page drives with messages
//
// The whole file is one function (`module` below). The page calls it once for itself, and
// traininglab.js starts Web Workers from the same function's source text (workerSource), so the
// page and its workers run the same code and the page needs no other file.
(function (module) {
  var scope = typeof globalThis !== "undefined" ? globalThis : self;
  scope.SimpleCNNTrain = module(scope);
  scope.SimpleCNNTrain.workerSource = function () {
    return "self.SimpleCNNTrain = (" + module.toString() + ")(self);\nself.SimpleCNNTrain.serve(self);\n";
  };
})(function (global) {
  "use strict";

  var PIXELS = 28 * 28;
  var CLASSES = 10;

  // ---------------------------------------------------------------------------------------------
  // Random numbers: a small seeded generator (mulberry32), so that a seed repeats a whole run
  // ---------------------------------------------------------------------------------------------

  function generator(seed) {
    var s = seed >>> 0;
    return function () {  // a number in [0, 1)
      s = (s + 0x6d2b79f5) >>> 0;
      var t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  // ---------------------------------------------------------------------------------------------
  // The parameters, in the order and with the names of PyTorch's state dict (chapter 7)
  // ---------------------------------------------------------------------------------------------

  var PARAMETERS = [
    ["features.conv1.weight", [32, 1, 5, 5]], ["features.conv1.bias", [32]],
    ["features.bn1.weight", [32]], ["features.bn1.bias", [32]],
    ["features.conv2.weight", [64, 32, 5, 5]], ["features.conv2.bias", [64]],
    ["features.bn2.weight", [64]], ["features.bn2.bias", [64]],
    ["classifier.fc1.weight", [512, 1024]], ["classifier.fc1.bias", [512]],
    ["classifier.fc2.weight", [10, 512]], ["classifier.fc2.bias", [10]],
  ];
  var BUFFERS = [
    ["features.bn1.running_mean", [32]], ["features.bn1.running_var", [32]],
    ["features.bn2.running_mean", [64]], ["features.bn2.running_var", [64]],
  ];

  function size(shape) { return shape.reduce(function (a, b) { return a * b; }, 1); }

  // PyTorch's default initialisation of Conv2d and Linear (chapter 3): weights and biases uniform
  // in [-1/sqrt(fan_in), 1/sqrt(fan_in)], fan_in = the inputs of one output. Batch norm
  // starts as the identity: scale 1, shift 0, running mean 0 and running variance 1 (chapter 6).
  function createNet(seed, options) {
    options = options || {};
    var random = generator(seed === undefined ? 0 : seed);
    var net = { params: [], byName: {}, step: 0, batch: 0, work: null,
                momentum: 0.1, eps: 1e-5, dropout: [0.45, 0.35],
                adam: { lr: options.lr || 2e-3, betas: options.betas || [0.9, 0.999], eps: 1e-8 },
                labelSmoothing: options.labelSmoothing === undefined ? 0.1 : options.labelSmoothing,
                random: random, training: true };
    PARAMETERS.forEach(function (p) {
      var n = size(p[1]), data = new Float32Array(n), name = p[0];
      if (name.indexOf(".bn") >= 0) {
        if (name.slice(-6) === "weight") data.fill(1);
      } else {
        var fanIn = size(p[1]) / p[1][0];
        var wShape = name.slice(-4) === "bias" ? null : p[1];
        if (!wShape) fanIn = net.byName[name.replace("bias", "weight")].fanIn;
        var bound = 1 / Math.sqrt(fanIn);
        for (var i = 0; i < n; i++) data[i] = (2 * random() - 1) * bound;
      }
      var entry = { name: name, shape: p[1], data: data, grad: new Float32Array(n),
                    m: new Float32Array(n), v: new Float32Array(n), fanIn: fanIn };
      net.params.push(entry);
      net.byName[name] = entry;
    });
    BUFFERS.forEach(function (b) {
      var data = new Float32Array(size(b[1]));
      if (b[0].slice(-3) === "var") data.fill(1);
      net.byName[b[0]] = { name: b[0], shape: b[1], data: data };
    });
    net.byName["features.bn1.num_batches_tracked"] = { name: "features.bn1.num_batches_tracked", shape: [], data: [0] };
    net.byName["features.bn2.num_batches_tracked"] = { name: "features.bn2.num_batches_tracked", shape: [], data: [0] };
    return net;
  }

  function p(net, name) { return net.byName[name].data; }
  function g(net, name) { return net.byName[name].grad; }

  // ---------------------------------------------------------------------------------------------
  // Matrix products: the work of the convolutions and the linear layers (chapters 1 and 7)
  // ---------------------------------------------------------------------------------------------

  // C (M x N) = A (M x K) times the transpose of B (N x K): every C[i][j] is the dot product of
  // row i of A and row j of B, both read left to right. Sixteen sums at a time (four rows of A
  // against four rows of B) keep the numbers in the processor's registers: each value read is
  // used four times.
  function matmulNT(A, B, C, M, N, K) {
    var i = 0, j, k, x, y0, y1, y2, y3;
    for (; i + 3 < M; i += 4) {
      var a0 = i * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
      for (j = 0; j + 3 < N; j += 4) {
        var b0 = j * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
        var c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        var c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (k = 0; k < K; k++) {
          y0 = B[b0 + k]; y1 = B[b1 + k]; y2 = B[b2 + k]; y3 = B[b3 + k];
          x = A[a0 + k]; c00 += x * y0; c01 += x * y1; c02 += x * y2; c03 += x * y3;
          x = A[a1 + k]; c10 += x * y0; c11 += x * y1; c12 += x * y2; c13 += x * y3;
          x = A[a2 + k]; c20 += x * y0; c21 += x * y1; c22 += x * y2; c23 += x * y3;
          x = A[a3 + k]; c30 += x * y0; c31 += x * y1; c32 += x * y2; c33 += x * y3;
        }
        var r = i * N + j;
        C[r] = c00; C[r + 1] = c01; C[r + 2] = c02; C[r + 3] = c03; r += N;
        C[r] = c10; C[r + 1] = c11; C[r + 2] = c12; C[r + 3] = c13; r += N;
        C[r] = c20; C[r + 1] = c21; C[r + 2] = c22; C[r + 3] = c23; r += N;
        C[r] = c30; C[r + 1] = c31; C[r + 2] = c32; C[r + 3] = c33;
      }
      for (; j < N; j++) {  // the last columns, when N is not a multiple of 4
        var b = j * K, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (k = 0; k < K; k++) { var y = B[b + k]; s0 += A[a0 + k] * y; s1 += A[a1 + k] * y; s2 += A[a2 + k] * y; s3 += A[a3 + k] * y; }
        C[i * N + j] = s0; C[(i + 1) * N + j] = s1; C[(i + 2) * N + j] = s2; C[(i + 3) * N + j] = s3;
      }
    }
    for (; i < M; i++) {  // the last rows, when M is not a multiple of 4
      for (j = 0; j < N; j++) {
        var s = 0, ai = i * K, bj = j * K;
        for (k = 0; k < K; k++) s += A[ai + k] * B[bj + k];
        C[i * N + j] = s;
      }
    }
  }

  // dst (cols x rows) = the transpose of src (rows x cols), in tiles that stay in the cache.
  function transpose(src, rows, cols, dst) {
    var T = 32;
    for (var r0 = 0; r0 < rows; r0 += T) for (var c0 = 0; c0 < cols; c0 += T) {
      var r1 = Math.min(rows, r0 + T), c1 = Math.min(cols, c0 + T);
      for (var r = r0; r < r1; r++) for (var c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
    }
    return dst;
  }

  // ---------------------------------------------------------------------------------------------
  // Convolution (chapter 1): 5x5 kernels, stride 1, no padding, as one matrix product
  // ---------------------------------------------------------------------------------------------

  // im2col: every 5x5 window of the input becomes a row of `cols` holding its Cin * 25 values
  // in the order of a kernel's weights (channel, row, column). Input x: Cin x N x n x n
  // (channel first). Row (image, i, j) of cols is the window whose top-left corner is (i, j).
  function im2col(x, cin, batch, n, k, cols) {
    var o = n - k + 1, len = cin * k * k, q = 0;
    for (var img = 0; img < batch; img++) for (var i = 0; i < o; i++) for (var j = 0; j < o; j++) {
      for (var c = 0; c < cin; c++) {
        var base = (c * batch + img) * n * n;
        for (var a = 0; a < k; a++) {
          var src = base + (i + a) * n + j;
          for (var b = 0; b < k; b++) cols[q++] = x[src + b];
        }
      }
    }
    return len;
  }

  // The same windows, transposed: row (channel, a, b) holds that kernel position's input value
  // for every output position of every image. The weight gradient reads it row by row.
  function im2colT(x, cin, batch, n, k, colsT) {
    var o = n - k + 1, positions = batch * o * o;
    for (var c = 0; c < cin; c++) for (var a = 0; a < k; a++) for (var b = 0; b < k; b++) {
      var row = ((c * k + a) * k + b) * positions, q = row;
      for (var img = 0; img < batch; img++) {
        var base = (c * batch + img) * n * n + a * n + b;
        for (var i = 0; i < o; i++) {
          var src = base + i * n;
          for (var j = 0; j < o; j++) colsT[q++] = x[src + j];
        }
      }
    }
  }

  // col2im: the backward of im2col. A value of the input sits in up to 25 windows; its gradient
  // is the sum of the gradients of all those copies.
  function col2im(dcols, cin, batch, n, k, dx) {
    var o = n - k + 1, q = 0;
    dx.fill(0);
    for (var img = 0; img < batch; img++) for (var i = 0; i < o; i++) for (var j = 0; j < o; j++) {
      for (var c = 0; c < cin; c++) {
        var base = (c * batch + img) * n * n;
        for (var a = 0; a < k; a++) {
          var dst = base + (i + a) * n + j;
          for (var b = 0; b < k; b++) dx[dst + b] += dcols[q++];
        }
      }
    }
  }

  // y (Cout x N*o*o) = W (Cout x Cin*k*k) times cols transposed, plus the bias of each channel.
  function convForward(W, bias, cols, cout, positions, len, y) {
    matmulNT(W, cols, y, cout, positions, len);
    for (var c = 0; c < cout; c++) {
      var bc = bias[c];
      for (var q = c * positions, end = q + positions; q < end; q++) y[q] += bc;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Batch norm (chapter 6), one channel at a time over the whole batch
  // ---------------------------------------------------------------------------------------------

  // Training: each channel is standardised with the mean and (biased) variance of its values in
  // this batch, then scaled by gamma and shifted by beta. The running statistics that evaluation
  // uses move 10 % towards this batch's; PyTorch's running variance is the unbiased one
  // (divided by L - 1). Keeps xhat and 1/sigma for the backward pass.
  function batchNormTrain(net, prefix, x, channels, L, xhat, invstd) {
    var gamma = p(net, prefix + ".weight"), beta = p(net, prefix + ".bias");
    var rm = p(net, prefix + ".running_mean"), rv = p(net, prefix + ".running_var"), mom = net.momentum;
    for (var c = 0; c < channels; c++) {
      var from = c * L, to = from + L, sum = 0, q;
      for (q = from; q < to; q++) sum += x[q];
      var mean = sum / L, ss = 0;
      for (q = from; q < to; q++) { var d = x[q] - mean; ss += d * d; }
      var variance = ss / L, inv = 1 / Math.sqrt(variance + net.eps);
      invstd[c] = inv;
      var gc = gamma[c], bc = beta[c];
      for (q = from; q < to; q++) { var h = (x[q] - mean) * inv; xhat[q] = h; x[q] = gc * h + bc; }
      rm[c] = (1 - mom) * rm[c] + mom * mean;
      rv[c] = (1 - mom) * rv[c] + mom * variance * L / (L - 1);
    }
    net.byName[prefix + ".num_batches_tracked"].data[0] += 1;
  }

  // Evaluation: the running statistics instead of the batch's, so an image's result does not
  // depend on the other images of its batch.
  function batchNormEval(net, prefix, x, channels, L) {
    var gamma = p(net, prefix + ".weight"), beta = p(net, prefix + ".bias");
    var rm = p(net, prefix + ".running_mean"), rv = p(net, prefix + ".running_var");
    for (var c = 0; c < channels; c++) {
      var scale = gamma[c] / Math.sqrt(rv[c] + net.eps), shift = beta[c] - rm[c] * scale;
      for (var q = c * L, end = q + L; q < end; q++) x[q] = x[q] * scale + shift;
    }
  }

  // The backward pass of batch norm in training mode: with dbeta = sum(dy) and
  // dgamma = sum(dy * xhat) over the channel, dx = gamma / sigma * (dy - dbeta / L - xhat * dgamma / L).
  // (The mean and variance depend on every value of the channel, hence the two sums.) dy is
  // replaced by dx in place.
  function batchNormBackward(net, prefix, dy, channels, L, xhat, invstd) {
    var gamma = p(net, prefix + ".weight"), dgamma = g(net, prefix + ".weight"), dbeta = g(net, prefix + ".bias");
    for (var c = 0; c < channels; c++) {
      var from = c * L, to = from + L, sdy = 0, sdyx = 0, q;
      for (q = from; q < to; q++) { sdy += dy[q]; sdyx += dy[q] * xhat[q]; }
      dgamma[c] = sdyx; dbeta[c] = sdy;
      var k = gamma[c] * invstd[c], mdy = sdy / L, mdyx = sdyx / L;
      for (q = from; q < to; q++) dy[q] = k * (dy[q] - mdy - xhat[q] * mdyx);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // ReLU (chapter 3), max pooling (chapter 2), dropout (chapter 6)
  // ---------------------------------------------------------------------------------------------

  function relu(x, n) { for (var q = 0; q < n; q++) if (x[q] < 0) x[q] = 0; }

  // 2x2 max pooling of `planes` maps of n x n. `where` keeps which of the four values won
  // (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right; the first of equal ones, as in
  // PyTorch): the backward pass sends the gradient there and nowhere else.
  function maxPool(x, planes, n, out, where) {
    var h = n >> 1, o = 0;
    for (var pl = 0; pl < planes; pl++) {
      var base = pl * n * n;
      for (var i = 0; i < h; i++) for (var j = 0; j < h; j++, o++) {
        var q = base + 2 * i * n + 2 * j, best = x[q], w = 0;
        if (x[q + 1] > best) { best = x[q + 1]; w = 1; }
        if (x[q + n] > best) { best = x[q + n]; w = 2; }
        if (x[q + n + 1] > best) { best = x[q + n + 1]; w = 3; }
        out[o] = best;
        if (where) where[o] = w;
      }
    }
  }

  function maxPoolBackward(dout, planes, n, where, dx) {
    var h = n >> 1, o = 0;
    dx.fill(0);
    for (var pl = 0; pl < planes; pl++) {
      var base = pl * n * n;
      for (var i = 0; i < h; i++) for (var j = 0; j < h; j++, o++) {
        var w = where[o];
        dx[base + (2 * i + (w >> 1)) * n + 2 * j + (w & 1)] = dout[o];
      }
    }
  }

  // Dropout in training: each value is kept with probability 1 - p and then multiplied by
  // 1 / (1 - p), or set to 0. `scale` holds 0 or 1 / (1 - p) for each value; the backward pass
  // multiplies the gradient by the same numbers. `given` (a test's masks) holds 0 or 1 in
  // PyTorch's (image, channel, row, column) order.
  function dropoutMask(net, p, channels, batch, plane, scale, given) {
    var keep = Math.fround(1 / Math.fround(1 - p)), q = 0;  // in float32, as PyTorch computes it
    for (var c = 0; c < channels; c++) for (var img = 0; img < batch; img++) for (var s = 0; s < plane; s++, q++) {
      var kept = given ? given[(img * channels + c) * plane + s] !== 0 : net.random() >= p;
      scale[q] = kept ? keep : 0;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Working memory for a batch size
  // ---------------------------------------------------------------------------------------------

  function workspace(net, batch) {
    if (net.work && net.batch === batch) return net.work;
    var F = function (n) { return new Float32Array(n); };
    var N = batch;
    net.batch = batch;
    net.work = {
      x: F(N * PIXELS),
      cols1: F(N * 576 * 25), y1: F(32 * N * 576), xhat1: F(32 * N * 576), inv1: F(32),
      pool1: F(32 * N * 144), where1: new Uint8Array(32 * N * 144), mask1: F(32 * N * 144),
      cols2: F(N * 64 * 800), y2: F(64 * N * 64), xhat2: F(64 * N * 64), inv2: F(64),
      pool2: F(64 * N * 16), where2: new Uint8Array(64 * N * 16), mask2: F(64 * N * 16),
      flat: F(N * 1024), hidden: F(N * 512), logits: F(N * 10),
      // backward
      dlogits: F(N * 10), dlogitsT: F(10 * N), hiddenT: F(512 * N), fc2T: F(512 * 10), dhidden: F(N * 512),
      dhiddenT: F(512 * N), flatT: F(1024 * N), fc1T: F(1024 * 512), dflat: F(N * 1024),
      dpool2: F(64 * N * 16), dy2: F(64 * N * 64), cols2T: F(800 * N * 64), dy2T: F(N * 64 * 64),
      w2T: F(800 * 64), dcols2: F(N * 64 * 800), dpool1: F(32 * N * 144), dy1: F(32 * N * 576),
      cols1T: F(25 * N * 576),
    };
    return net.work;
  }

  // ---------------------------------------------------------------------------------------------
  // The forward pass (chapter 7's network)
  // ---------------------------------------------------------------------------------------------

  // x: N standardised 28x28 images, one after the other (N x 1 x 28 x 28, which is also
  // 1 x N x 28 x 28: with one input channel the two layouts are the same). In training mode
  // batch norm uses the batch's statistics and dropout is on; `masks` (optional) gives dropout's
  // masks, else they are drawn from the network's generator.
  function forward(net, x, N, training, masks) {
    var w = workspace(net, N);
    // block 1: conv1 -> bn1 -> ReLU -> pool1 -> dropout               32 x N x 24 x 24 -> 12 x 12
    im2col(x, 1, N, 28, 5, w.cols1);
    convForward(p(net, "features.conv1.weight"), p(net, "features.conv1.bias"), w.cols1, 32, N * 576, 25, w.y1);
    if (training) batchNormTrain(net, "features.bn1", w.y1, 32, N * 576, w.xhat1, w.inv1);
    else batchNormEval(net, "features.bn1", w.y1, 32, N * 576);
    relu(w.y1, 32 * N * 576);
    maxPool(w.y1, 32 * N, 24, w.pool1, training ? w.where1 : null);
    if (training) {
      dropoutMask(net, net.dropout[0], 32, N, 144, w.mask1, masks && masks.drop1);
      for (var q = 0; q < 32 * N * 144; q++) w.pool1[q] *= w.mask1[q];
    }
    // block 2: conv2 -> bn2 -> ReLU -> pool2 -> dropout               64 x N x 8 x 8 -> 4 x 4
    im2col(w.pool1, 32, N, 12, 5, w.cols2);
    convForward(p(net, "features.conv2.weight"), p(net, "features.conv2.bias"), w.cols2, 64, N * 64, 800, w.y2);
    if (training) batchNormTrain(net, "features.bn2", w.y2, 64, N * 64, w.xhat2, w.inv2);
    else batchNormEval(net, "features.bn2", w.y2, 64, N * 64);
    relu(w.y2, 64 * N * 64);
    maxPool(w.y2, 64 * N, 8, w.pool2, training ? w.where2 : null);
    if (training) {
      dropoutMask(net, net.dropout[1], 64, N, 16, w.mask2, masks && masks.drop2);
      for (q = 0; q < 64 * N * 16; q++) w.pool2[q] *= w.mask2[q];
    }
    // flatten: channel-first 64 x N x 16 -> N x 1024 in PyTorch's order (channel, row, column)
    for (var c = 0; c < 64; c++) for (var img = 0; img < N; img++) for (var s = 0; s < 16; s++) {
      w.flat[img * 1024 + c * 16 + s] = w.pool2[(c * N + img) * 16 + s];
    }
    // classifier: fc1 -> ReLU -> fc2                                   N x 512 -> N x 10
    linear(w.flat, p(net, "classifier.fc1.weight"), p(net, "classifier.fc1.bias"), N, 1024, 512, w.hidden);
    relu(w.hidden, N * 512);
    linear(w.hidden, p(net, "classifier.fc2.weight"), p(net, "classifier.fc2.bias"), N, 512, 10, w.logits);
    return w.logits;
  }

  // A linear layer (chapter 7): y (N x out) = x (N x in) times W transposed (W is out x in) + b.
  function linear(x, W, b, N, nin, nout, y) {
    matmulNT(x, W, y, N, nout, nin);
    for (var i = 0; i < N; i++) for (var o = 0; o < nout; o++) y[i * nout + o] += b[o];
  }

  // ---------------------------------------------------------------------------------------------
  // The loss (chapter 4): softmax cross-entropy with label smoothing
  // ---------------------------------------------------------------------------------------------

  // With smoothing e the target of an image is 1 - e + e/10 for its label and e/10 for every
  // other class; the loss is the cross-entropy between that target and the softmax of the
  // logits, averaged over the batch. Its gradient with respect to the logits is
  // (softmax - target) / N. Writes that gradient into dlogits and returns the loss.
  function crossEntropy(logits, labels, N, smoothing, dlogits) {
    var total = 0;
    for (var i = 0; i < N; i++) {
      var row = i * CLASSES, top = -Infinity, k;
      for (k = 0; k < CLASSES; k++) top = Math.max(top, logits[row + k]);
      var sum = 0;
      for (k = 0; k < CLASSES; k++) sum += Math.exp(logits[row + k] - top);
      var logSum = top + Math.log(sum), loss = 0;
      for (k = 0; k < CLASSES; k++) {
        var logp = logits[row + k] - logSum;
        var target = (k === labels[i] ? 1 - smoothing : 0) + smoothing / CLASSES;
        loss -= target * logp;
        dlogits[row + k] = (Math.exp(logp) - target) / N;
      }
      total += loss;
    }
    return total / N;
  }

  // ---------------------------------------------------------------------------------------------
  // The backward pass: the gradient of the loss for every parameter, layer by layer, from the
  // logits back to conv1 (chapter 2 gives the idea; PyTorch's autograd does the same steps)
  // ---------------------------------------------------------------------------------------------

  function backward(net, N) {
    var w = net.work, q, c, img, s;
    // fc2: dW = dlogits^T x hidden, db = column sums, d(hidden) = dlogits x W
    transpose(w.dlogits, N, 10, w.dlogitsT);
    transpose(w.hidden, N, 512, w.hiddenT);
    matmulNT(w.dlogitsT, w.hiddenT, g(net, "classifier.fc2.weight"), 10, 512, N);
    columnSums(w.dlogits, N, 10, g(net, "classifier.fc2.bias"));
    transpose(p(net, "classifier.fc2.weight"), 10, 512, w.fc2T);
    matmulNT(w.dlogits, w.fc2T, w.dhidden, N, 512, 10);
    // ReLU: the gradient passes where the output was positive
    for (q = 0; q < N * 512; q++) if (w.hidden[q] <= 0) w.dhidden[q] = 0;
    // fc1
    transpose(w.dhidden, N, 512, w.dhiddenT);
    transpose(w.flat, N, 1024, w.flatT);
    matmulNT(w.dhiddenT, w.flatT, g(net, "classifier.fc1.weight"), 512, 1024, N);
    columnSums(w.dhidden, N, 512, g(net, "classifier.fc1.bias"));
    transpose(p(net, "classifier.fc1.weight"), 512, 1024, w.fc1T);
    matmulNT(w.dhidden, w.fc1T, w.dflat, N, 1024, 512);
    // flatten and dropout 2, backwards: back to channel first, times the same mask
    for (c = 0; c < 64; c++) for (img = 0; img < N; img++) for (s = 0; s < 16; s++) {
      q = (c * N + img) * 16 + s;
      w.dpool2[q] = w.dflat[img * 1024 + c * 16 + s] * w.mask2[q];
    }
    // pool2, ReLU, bn2
    maxPoolBackward(w.dpool2, 64 * N, 8, w.where2, w.dy2);
    for (q = 0; q < 64 * N * 64; q++) if (w.y2[q] <= 0) w.dy2[q] = 0;
    batchNormBackward(net, "features.bn2", w.dy2, 64, N * 64, w.xhat2, w.inv2);
    // conv2: dW = dy x windows, db = sums per channel, d(windows) = dy^T x W, then col2im
    im2colT(w.pool1, 32, N, 12, 5, w.cols2T);
    matmulNT(w.dy2, w.cols2T, g(net, "features.conv2.weight"), 64, 800, N * 64);
    rowSums(w.dy2, 64, N * 64, g(net, "features.conv2.bias"));
    transpose(w.dy2, 64, N * 64, w.dy2T);
    transpose(p(net, "features.conv2.weight"), 64, 800, w.w2T);
    matmulNT(w.dy2T, w.w2T, w.dcols2, N * 64, 800, 64);
    col2im(w.dcols2, 32, N, 12, 5, w.dpool1);
    // dropout 1, pool1, ReLU, bn1
    for (q = 0; q < 32 * N * 144; q++) w.dpool1[q] *= w.mask1[q];
    maxPoolBackward(w.dpool1, 32 * N, 24, w.where1, w.dy1);
    for (q = 0; q < 32 * N * 576; q++) if (w.y1[q] <= 0) w.dy1[q] = 0;
    batchNormBackward(net, "features.bn1", w.dy1, 32, N * 576, w.xhat1, w.inv1);
    // conv1 (its input needs no gradient)
    im2colT(w.x, 1, N, 28, 5, w.cols1T);
    matmulNT(w.dy1, w.cols1T, g(net, "features.conv1.weight"), 32, 25, N * 576);
    rowSums(w.dy1, 32, N * 576, g(net, "features.conv1.bias"));
  }

  function columnSums(x, rows, cols, out) {
    for (var j = 0; j < cols; j++) { var s = 0; for (var i = 0; i < rows; i++) s += x[i * cols + j]; out[j] = s; }
  }
  function rowSums(x, rows, cols, out) {
    for (var i = 0; i < rows; i++) { var s = 0; for (var q = i * cols, end = q + cols; q < end; q++) s += x[q]; out[i] = s; }
  }

  // ---------------------------------------------------------------------------------------------
  // Adam (chapter 5), as torch.optim.Adam computes it
  // ---------------------------------------------------------------------------------------------

  // m and v are running averages of the gradient and of its square; early on they are divided
  // by 1 - beta^t, which undoes their start at zero. Each weight moves by
  // lr * m_hat / (sqrt(v_hat) + eps): about lr, whatever the size of its gradient.
  function adamStep(net) {
    var a = net.adam, b1 = a.betas[0], b2 = a.betas[1];
    net.step += 1;
    var t = net.step, bc1 = 1 - Math.pow(b1, t), bc2sqrt = Math.sqrt(1 - Math.pow(b2, t)), stepSize = a.lr / bc1;
    net.params.forEach(function (e) {
      var d = e.data, gr = e.grad, m = e.m, v = e.v;
      for (var q = 0; q < d.length; q++) {
        var gq = gr[q];
        m[q] = b1 * m[q] + (1 - b1) * gq;
        v[q] = b2 * v[q] + (1 - b2) * gq * gq;
        d[q] -= stepSize * m[q] / (Math.sqrt(v[q]) / bc2sqrt + a.eps);
      }
    });
  }

  // One training step on N images: forward in training mode, loss, backward, Adam.
  // Returns the loss and how many of the N the network got right (before the step).
  function trainStep(net, x, labels, N, masks, skipUpdate) {
    var w = workspace(net, N);
    w.x.set(x.subarray(0, N * PIXELS));
    var logits = forward(net, w.x, N, true, masks);
    var loss = crossEntropy(logits, labels, N, net.labelSmoothing, w.dlogits);
    var correct = 0;
    for (var i = 0; i < N; i++) if (argmax(logits, i * CLASSES, CLASSES) === labels[i]) correct++;
    backward(net, N);
    if (!skipUpdate) adamStep(net);
    return { loss: loss, correct: correct };
  }

  function argmax(v, from, n) {
    var best = 0;
    for (var k = 1; k < n; k++) if (v[from + k] > v[from + best]) best = k;
    return best;
  }

  // Logits (n x 10) of n images in evaluation mode, `chunk` images at a time.
  function evaluate(net, x, n, chunk) {
    chunk = chunk || 50;
    var out = new Float32Array(n * CLASSES);
    for (var from = 0; from < n; from += chunk) {
      var N = Math.min(chunk, n - from), w = workspace(net, N);
      w.x.set(x.subarray(from * PIXELS, (from + N) * PIXELS));
      out.set(forward(net, w.x, N, false), from * CLASSES);
    }
    return out;
  }

  // How many of n images (labels given) the network classifies right, in evaluation mode.
  function accuracy(net, x, labels, n, chunk) {
    var logits = evaluate(net, x, n, chunk), right = 0;
    for (var i = 0; i < n; i++) if (argmax(logits, i * CLASSES, CLASSES) === labels[i]) right++;
    return right / n;
  }

  // ---------------------------------------------------------------------------------------------
  // State: by PyTorch's names, so the tests can compare with a state dict
  // ---------------------------------------------------------------------------------------------

  function exportState(net, withGrads) {
    var out = {};
    Object.keys(net.byName).forEach(function (name) { out[name] = Float32Array.from(net.byName[name].data); });
    if (withGrads) net.params.forEach(function (e) { out[e.name + ".grad"] = Float32Array.from(e.grad); });
    out.step = net.step;
    return out;
  }

  function importState(net, state) {
    Object.keys(state).forEach(function (name) {
      var e = net.byName[name];
      if (!e) return;
      if (e.data.length !== state[name].length) throw new Error(name + ": expected " + e.data.length + " values, got " + state[name].length);
      for (var q = 0; q < e.data.length; q++) e.data[q] = state[name][q];
    });
  }

  // The weights in the form simplecnn.js's forward pass takes (the digit lab's), from a state
  // by PyTorch's names: batch norm in evaluation mode as one scale and one shift per channel.
  function inferenceModel(state, eps) {
    eps = eps === undefined ? 1e-5 : eps;
    var shapes = {};
    PARAMETERS.forEach(function (e) { shapes[e[0]] = e[1]; });
    function layer(name) {
      return { w: Float32Array.from(state[name + ".weight"]), b: Float32Array.from(state[name + ".bias"]), shape: shapes[name + ".weight"] };
    }
    function bn(prefix) {
      var gm = state[prefix + ".weight"], bt = state[prefix + ".bias"];
      var rm = state[prefix + ".running_mean"], rv = state[prefix + ".running_var"];
      var scale = new Float64Array(gm.length), shift = new Float64Array(gm.length);
      for (var c = 0; c < gm.length; c++) { scale[c] = gm[c] / Math.sqrt(rv[c] + eps); shift[c] = bt[c] - rm[c] * scale[c]; }
      return { scale: scale, shift: shift };
    }
    return { conv1: layer("features.conv1"), bn1: bn("features.bn1"), conv2: layer("features.conv2"), bn2: bn("features.bn2"),
             fc1: layer("classifier.fc1"), fc2: layer("classifier.fc2") };
  }

  // The input the network sees for each of the 256 grey levels: pixel / 255, minus the mean,
  // divided by the standard deviation, each operation rounded to float32 as in PyTorch.
  function standardTable(mean, std) {
    var t = new Float32Array(256), f = Math.fround;
    for (var v = 0; v < 256; v++) t[v] = f(f(f(v / 255) - f(mean)) / f(std));
    return t;
  }

  function standardize(pixels, table) {
    var x = new Float32Array(pixels.length);
    for (var q = 0; q < pixels.length; q++) x[q] = table[pixels[q]];
    return x;
  }

  // Augmentation (chapter 6), as sc.random_shift does it: each of the n images moves by up to
  // `max` pixels up or down and left or right, chosen at random; the pixels that come in at the
  // edge are background (`fill`). In place.
  function shiftImages(x, n, max, random, fill) {
    var side = 28, copy = new Float32Array(PIXELS);
    for (var i = 0; i < n; i++) {
      var dy = Math.floor(random() * (2 * max + 1)) - max, dx = Math.floor(random() * (2 * max + 1)) - max;
      if (dy === 0 && dx === 0) continue;
      var img = x.subarray(i * PIXELS, (i + 1) * PIXELS);
      copy.set(img);
      for (var r = 0; r < side; r++) for (var c = 0; c < side; c++) {
        var sr = r + dy, sc = c + dx;
        img[r * side + c] = sr >= 0 && sr < side && sc >= 0 && sc < side ? copy[sr * side + sc] : fill;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // In a Web Worker: the training loop, driven by the page's messages (traininglab.js)
  // ---------------------------------------------------------------------------------------------
  //
  //  page -> worker                         worker -> page
  //  data {pixels, labels, mean, std}       ready {n}
  //  reset {seed, lr, batch, ...}           reset {state}: the initial weights
  //  start, pause                           progress {seen, steps, epoch, clock, losses, kernels}
  //  settings {lr, batch, shift}            paused {state, seen, clock, finished}
  //  snapshot {id}                          snapshot {id, state, seen, clock, milestone}
  //  evaluate {id, state}                   accuracy {id, accuracy, ms}
  //
  // A worker that trains gets `data`; one that measures test accuracy gets `data` with the test
  // digits and then `evaluate` messages. `clock` is the time spent training, in milliseconds,
  // from pressing Start, pauses left out.
  function serve(scope) {
    var net = null, data = null, evalNet = null, settings = {};
    var running = false, order = null, cursor = 0, seen = 0, steps = 0, epoch = 0;
    var clock = 0, since = 0, lastReport = 0, losses = [], correct = 0, nextMilestone = 0;
    var xb = null, yb = null, wake = new MessageChannel();
    var now = function () { return performance.now(); };
    function post(message, transfer) { scope.postMessage(message, transfer || []); }
    function time() { return clock + (running ? now() - since : 0); }
    function snapshot() { return exportState(net); }
    function buffers(state) { return Object.keys(state).filter(function (k) { return state[k].buffer; }).map(function (k) { return state[k].buffer; }); }

    var handlers = {
      data: function (m) {
        var table = standardTable(m.mean, m.std);
        data = { x: standardize(m.pixels, table), labels: m.labels, n: m.labels.length, background: table[0] };
        post({ type: "ready", n: data.n });
      },
      reset: function (m) {
        running = false;
        settings = { batch: m.batch, shift: m.shift || 0, maxEpochs: m.maxEpochs || Infinity, milestones: m.milestones || [] };
        net = createNet(m.seed, { lr: m.lr, betas: m.betas, labelSmoothing: m.labelSmoothing });
        order = null; cursor = 0; seen = 0; steps = 0; epoch = 0; clock = 0; losses = []; correct = 0; nextMilestone = 0;
        var state = snapshot();
        post({ type: "reset", state: state, kernels: Float32Array.from(net.byName["features.conv1.weight"].data) }, buffers(state));
      },
      settings: function (m) {
        if (m.lr) net.adam.lr = m.lr;
        if (m.batch) settings.batch = m.batch;
        if (m.shift !== undefined) settings.shift = m.shift;
      },
      start: function () {
        if (running || !net || !data) return;
        if (epoch >= settings.maxEpochs && cursor + settings.batch > data.n) return;
        running = true; since = now(); lastReport = since;
        wake.port2.postMessage(0);
      },
      pause: function () { stop(false); },
      snapshot: function (m) {
        var state = snapshot();
        post({ type: "snapshot", id: m.id, state: state, seen: seen, clock: time() }, buffers(state));
      },
      evaluate: function (m) {
        evalNet = evalNet || createNet(0);
        importState(evalNet, m.state);
        var t0 = now(), acc = accuracy(evalNet, data.x, data.labels, data.n, 50);
        post({ type: "accuracy", id: m.id, accuracy: acc, ms: now() - t0, n: data.n });
      },
    };

    function stop(finished) {
      if (!net) return;
      if (running) clock += now() - since;
      running = false;
      report();
      var state = snapshot();
      post({ type: "paused", state: state, seen: seen, clock: clock, finished: finished }, buffers(state));
    }

    function report() {
      post({ type: "progress", seen: seen, steps: steps, epoch: epoch, clock: time(), losses: losses, correct: correct,
             kernels: Float32Array.from(net.byName["features.conv1.weight"].data), running: running });
      losses = []; correct = 0; lastReport = now();
    }

    // One batch of the shuffled training digits; a new epoch reshuffles them.
    function nextBatch(B) {
      if (!order || cursor + B > data.n) {
        order = new Int32Array(data.n);
        for (var i = 0; i < data.n; i++) order[i] = i;
        for (i = data.n - 1; i > 0; i--) {  // Fisher-Yates shuffle, from the network's generator
          var j = Math.floor(net.random() * (i + 1)), t = order[i];
          order[i] = order[j]; order[j] = t;
        }
        cursor = 0; epoch += 1;
      }
      if (!xb || yb.length !== B) { xb = new Float32Array(B * PIXELS); yb = new Uint8Array(B); }
      for (var b = 0; b < B; b++) {
        var k = order[cursor + b];
        xb.set(data.x.subarray(k * PIXELS, (k + 1) * PIXELS), b * PIXELS);
        yb[b] = data.labels[k];
      }
      if (settings.shift) shiftImages(xb, B, settings.shift, net.random, data.background);
      cursor += B;
    }

    // Steps for about 50 ms, then a pause to read messages (Pause, new settings), then on.
    function loop() {
      if (!running) return;
      var t0 = now();
      do {
        var B = settings.batch;
        if (epoch >= settings.maxEpochs && (!order || cursor + B > data.n)) { stop(true); return; }
        nextBatch(B);
        var r = trainStep(net, xb, yb, B);
        seen += B; steps += 1; correct += r.correct;
        losses.push(r.loss);
        var milestone = settings.milestones[nextMilestone];
        if (milestone !== undefined && time() >= 1000 * milestone) {
          nextMilestone += 1;
          var state = snapshot();
          post({ type: "snapshot", milestone: milestone, state: state, seen: seen, clock: time() }, buffers(state));
        }
      } while (now() - t0 < 50);
      if (now() - lastReport >= 250) report();
      wake.port2.postMessage(0);
    }
    wake.port1.onmessage = loop;

    scope.onmessage = function (e) {
      try {
        handlers[e.data.type](e.data);
      } catch (err) {
        running = false;
        post({ type: "error", message: String(err && err.message || err) });
      }
    };
  }

  return {
    generator: generator, createNet: createNet, trainStep: trainStep, forward: forward, backward: backward,
    adamStep: adamStep, evaluate: evaluate, accuracy: accuracy, exportState: exportState, importState: importState,
    inferenceModel: inferenceModel, standardTable: standardTable, standardize: standardize, shiftImages: shiftImages, serve: serve,
    matmulNT: matmulNT, PARAMETERS: PARAMETERS, BUFFERS: BUFFERS,
  };
});
