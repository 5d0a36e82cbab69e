window.SimpleCNNExplorers = (function () {
  "use strict";
  var NUMBER = "[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?";
  var TOKEN = new RegExp("^(" + NUMBER + ")(?:/(" + NUMBER + "))?$");

  var dom = window.SimpleCNNDom, el = dom.el;  // dom.js, loaded first

  // A typed kernel is matched against a number pattern, never evaluated (same rules as
  // explorers.parse_kernel in Python).
  function parseNumber(token, maxValue) {
    var m = TOKEN.exec(token);
    if (!m) throw new Error("'" + token + "' is not a number (write numbers like 2, -0.5 or 1/9)");
    var v = parseFloat(m[1]);
    if (m[2] !== undefined) {
      var d = parseFloat(m[2]);
      if (d === 0) throw new Error("'" + token + "' divides by zero");
      v = v / d;
    }
    if (!(Math.abs(v) <= maxValue)) throw new Error("'" + token + "' is too large (keep values within ±" + maxValue + ")");
    return v;
  }

  function parseKernel(text, sizes, maxValue) {
    var allowed = sizes.map(function (s) { return s + "×" + s; }).join(" or ");
    var rows = [];
    text.replace(/[\[\]]/g, " ").split(/[;\n]/).forEach(function (line) {
      var tokens = line.trim().split(/[\s,]+/).filter(function (t) { return t.length > 0; });
      if (tokens.length) rows.push(tokens.map(function (t) { return parseNumber(t, maxValue); }));
    });
    if (!rows.length) throw new Error("the kernel is empty: type " + allowed + " numbers, one row per line");
    var n = rows.length;
    rows.forEach(function (row, i) {
      if (row.length !== n) throw new Error("row " + (i + 1) + " has " + row.length + (row.length === 1 ? " number" : " numbers") + " but there are " +
        n + " rows: a kernel is square (" + allowed + ")");
    });
    if (sizes.indexOf(n) < 0) throw new Error("a " + n + "×" + n + " kernel is not offered here: type " + allowed + " numbers");
    return rows;
  }

  function outputSize(n, k, s, p) {
    if (s < 1) throw new Error("stride must be at least 1");
    if (k > n + 2 * p) throw new Error("the kernel (" + k + ") is larger than the padded input (" + (n + 2 * p) + ")");
    return Math.floor((n + 2 * p - (k - 1) - 1) / s) + 1;
  }

  function pad(img, p) {
    var h = img.length, w = img[0].length, out = [];
    for (var r = 0; r < h + 2 * p; r++) {
      var row = [];
      for (var c = 0; c < w + 2 * p; c++) {
        var rr = r - p, cc = c - p;
        row.push(rr >= 0 && rr < h && cc >= 0 && cc < w ? img[rr][cc] : 0);
      }
      out.push(row);
    }
    return out;
  }

  // Cross-correlation with zero padding, as torch.nn.functional.conv2d computes it.
  function conv2d(img, ker, s, p) {
    var k = ker.length, x = pad(img, p);
    var ho = outputSize(img.length, k, s, p), wo = outputSize(img[0].length, k, s, p), out = [];
    for (var i = 0; i < ho; i++) {
      var row = [];
      for (var j = 0; j < wo; j++) {
        var acc = 0;
        for (var a = 0; a < k; a++) for (var b = 0; b < k; b++) acc += x[i * s + a][j * s + b] * ker[a][b];
        row.push(acc);
      }
      out.push(row);
    }
    return out;
  }

  function pool2d(m, k, s, mode) {
    var ho = outputSize(m.length, k, s, 0), wo = outputSize(m[0].length, k, s, 0), out = [];
    for (var i = 0; i < ho; i++) {
      var row = [];
      for (var j = 0; j < wo; j++) {
        var best = -Infinity, sum = 0;
        for (var a = 0; a < k; a++) for (var b = 0; b < k; b++) {
          var v = m[i * s + a][j * s + b];
          sum += v; if (v > best) best = v;
        }
        row.push(mode === "max" ? best : sum / (k * k));
      }
      out.push(row);
    }
    return out;
  }

  function hex(c) { return [parseInt(c.substr(1, 2), 16), parseInt(c.substr(3, 2), 16), parseInt(c.substr(5, 2), 16)]; }

  // Grey from 0 to the maximum for maps without negative values, else blue-white-vermillion
  // symmetric around 0 (the same rule as explorers.map_style).
  function colorizer(m, colors) {
    var lo = Infinity, top = 0;
    m.forEach(function (row) { row.forEach(function (v) { lo = Math.min(lo, v); top = Math.max(top, Math.abs(v)); }); });
    top = top || 1;
    var neg = hex(colors.negative), pos = hex(colors.positive);
    if (lo >= 0) return function (v) { var g = Math.round(255 * v / top); return [g, g, g]; };
    return function (v) {
      var t = Math.max(-1, Math.min(1, v / top)), c = t < 0 ? neg : pos, a = Math.abs(t);
      return [0, 1, 2].map(function (i) { return Math.round(255 + (c[i] - 255) * a); });
    };
  }

  function fmt(v, digits) {
    var s = Math.abs(v) < 1e-12 ? "0" : v.toPrecision(digits === undefined ? 3 : digits);
    if (s.indexOf("e") < 0 && s.indexOf(".") >= 0) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s;
  }

  // Draw a map on a canvas, cell by cell; opts.boxes are {r, c, h, w, color, width, dash}.
  function drawMap(canvas, m, colors, opts) {
    opts = opts || {};
    var h = m.length, w = m[0].length, size = opts.size || 200;
    var cell = Math.max(1, Math.floor(size / Math.max(h, w)));
    canvas.width = cell * w; canvas.height = cell * h;
    var ctx = canvas.getContext("2d"), color = colorizer(m, colors);
    for (var r = 0; r < h; r++) for (var c = 0; c < w; c++) {
      var rgb = color(m[r][c]);
      ctx.fillStyle = "rgb(" + rgb.join(",") + ")";
      ctx.fillRect(c * cell, r * cell, cell, cell);
      if (opts.numbers) {
        var lum = (rgb[0] * 299 + rgb[1] * 587 + rgb[2] * 114) / 1000;
        ctx.fillStyle = lum < 128 ? "#fff" : "#000";
        ctx.font = Math.round(cell / 3.2) + "px sans-serif";
        ctx.textAlign = "center"; ctx.textBaseline = "middle";
        ctx.fillText(fmt(m[r][c]), c * cell + cell / 2, r * cell + cell / 2);
      }
    }
    (opts.boxes || []).forEach(function (b) {
      ctx.save();
      ctx.lineWidth = b.width || 2;
      ctx.setLineDash(b.dash || []);
      if (b.halo) { ctx.strokeStyle = "#000"; ctx.lineWidth = (b.width || 2) + 2; ctx.strokeRect(b.c * cell, b.r * cell, b.w * cell, b.h * cell); ctx.lineWidth = b.width || 2; }
      ctx.strokeStyle = b.color;
      ctx.strokeRect(b.c * cell + 1, b.r * cell + 1, b.w * cell - 2, b.h * cell - 2);
      ctx.restore();
    });
    (opts.rings || []).forEach(function (g) {
      ctx.save(); ctx.strokeStyle = g.color; ctx.lineWidth = 2.5;
      ctx.beginPath(); ctx.arc(g.c * cell + cell / 2, g.r * cell + cell / 2, cell * 0.38, 0, 2 * Math.PI); ctx.stroke();
      ctx.restore();
    });
    return cell;
  }

  function gridTable(m, caption, digits) {
    var t = el("table", { "class": "scnn-grid" }, [el("caption", { text: caption })]);
    m.forEach(function (row) {
      t.appendChild(el("tr", {}, row.map(function (v) { return el("td", { text: fmt(v, digits) }); })));
    });
    return t;
  }

  function slider(label, min, max, value) {
    var input = el("input", { type: "range", min: min, max: max, step: 1, value: value });
    var shown = el("output", { text: String(value) });
    input.addEventListener("input", function () { shown.textContent = input.value; });
    var wrap = el("label", {}, [label, input, shown]);
    return { wrap: wrap, input: input, set: function (v, hi) {
      if (hi !== undefined) input.max = hi;
      input.value = v; shown.textContent = String(v);
    } };
  }

  // A slider for one of the explorer's settings: its range and first value come with the data
  // (the same as the ipywidgets explorer's, cnnkit.explorers).
  function setting(label, range) { return slider(label, range.min, range.max, range.value); }

  function select(label, options, value) {
    var s = el("select", {});
    options.forEach(function (o) { s.appendChild(el("option", { value: o[0], text: o[1] })); });
    s.value = value;
    return { wrap: el("label", {}, [label, s]), input: s };
  }

  function cellAt(canvas, cell, event) {
    var rect = canvas.getBoundingClientRect();
    var sx = canvas.width / rect.width, sy = canvas.height / rect.height;
    return { r: Math.floor((event.clientY - rect.top) * sy / cell), c: Math.floor((event.clientX - rect.left) * sx / cell) };
  }

  function kernel(root) {
    var data = dom.payload(root), colors = data.colors;
    var digits = data.digits.map(function (d) {
      var px = d.pixels.map(function (row) { return row.map(function (v) { return v / 255; }); });
      return { label: d.label, pixels: px };
    });
    var TYPED = "typed";
    var state = { digit: 0, kernel: parseKernel(data.presets[0].text, data.sizes, data.max_value), preset: "0",
                  stride: data.sliders.stride.value, padding: data.sliders.padding.value, row: 12, col: 12 };
    var digitSel = select("Digit", digits.map(function (d, i) { return [String(i), "digit " + d.label]; }), "0");
    var kernelSel = select("Kernel", data.presets.map(function (p, i) { return [String(i), p.name]; })
      .concat([[TYPED, "typed values (edit the box)"]]), "0");
    var text = el("textarea", { rows: 5, spellcheck: "false", "aria-label": "kernel values" });
    text.value = data.presets[0].text;
    var stride = setting("Stride", data.sliders.stride), padding = setting("Padding", data.sliders.padding);
    var row = slider("Window row", 0, 25, 12), col = slider("Window column", 0, 25, 12);
    var message = el("div", { "class": "scnn-message", role: "alert", "aria-live": "polite" });
    var inCanvas = el("canvas", { "class": "scnn-input", role: "img", "aria-label": "input digit with the current window" });
    var outCanvas = el("canvas", { "class": "scnn-output", role: "img", "aria-label": "output feature map" });
    var inCap = el("figcaption"), outCap = el("figcaption"), kerBox = el("div", { "class": "scnn-kernel" });
    var formula = el("div", { "class": "scnn-formula" }), windowBox = el("div", { "class": "scnn-window" });
    root.appendChild(el("div", { "class": "scnn-controls" }, [
      el("div", {}, [digitSel.wrap, el("br"), kernelSel.wrap, el("br"), stride.wrap, el("br"), padding.wrap]),
      el("div", {}, [el("label", {}, ["Kernel values", text]),
        el("div", { "class": "scnn-hint", text: "3×3 or 5×5 numbers, one row per line; 1/9 or -0.5 are fine." })]),
    ]));
    root.appendChild(message);
    root.appendChild(el("div", { "class": "scnn-controls" }, [row.wrap, col.wrap,
      el("span", { "class": "scnn-hint", text: "or click the output map to pick a window" })]));
    root.appendChild(el("div", { "class": "scnn-panels" }, [
      el("figure", {}, [inCanvas, inCap]), el("figure", {}, [kerBox]), el("figure", {}, [outCanvas, outCap])]));
    root.appendChild(formula);
    root.appendChild(windowBox);
    var outCell = 1;

    function render() {
      var img = digits[state.digit].pixels, k = state.kernel.length, s = state.stride, p = state.padding;
      var out = conv2d(img, state.kernel, s, p), n = out.length;
      state.row = Math.min(state.row, n - 1); state.col = Math.min(state.col, n - 1);
      row.set(state.row, n - 1); col.set(state.col, n - 1);
      var top = state.row * s, left = state.col * s, padded = pad(img, p);
      var boxes = [{ r: top, c: left, h: k, w: k, color: colors.highlight, width: 3, halo: true }];
      if (p > 0) boxes.unshift({ r: p, c: p, h: img.length, w: img[0].length, color: "#56B4E9", width: 1, dash: [4, 3] });
      drawMap(inCanvas, padded, colors, { boxes: boxes });
      inCap.textContent = "input " + img.length + "×" + img[0].length + ", padding " + p;
      outCell = drawMap(outCanvas, out, colors, { boxes: [{ r: state.row, c: state.col, h: 1, w: 1, color: colors.highlight, width: 3, halo: true }] });
      outCap.textContent = "output " + n + "×" + out[0].length + ", stride " + s;
      kerBox.replaceChildren(gridTable(state.kernel, "kernel " + k + "×" + k, 3));
      kerBox.firstChild.style.fontSize = k > 3 ? "10px" : "13px";
      var H = img.length, num = H + 2 * p - (k - 1) - 1;
      formula.replaceChildren(el("b", { text: "Output size " }),
        "H_out = ⌊(H_in + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1 = ⌊(" + H + " + 2·" + p + " − 1·(" + k +
        " − 1) − 1) / " + s + "⌋ + 1 = ⌊" + num + " / " + s + "⌋ + 1 = " + n + " → the feature map is " + n + "×" + out[0].length + ".");
      var patch = [], prods = [], sum = 0;
      for (var a = 0; a < k; a++) {
        patch.push([]); prods.push([]);
        for (var b = 0; b < k; b++) {
          var v = padded[top + a][left + b], q = v * state.kernel[a][b];
          patch[a].push(v); prods[a].push(q); sum += q;
        }
      }
      windowBox.replaceChildren(el("b", { text: "Window (" + state.row + ", " + state.col + ")" }),
        ": rows " + top + "–" + (top + k - 1) + ", columns " + left + "–" + (left + k - 1) + " of the padded input. ",
        el("br"), gridTable(patch, "input patch", 2), " ⊙ ", gridTable(state.kernel, "kernel", 3), " = ",
        gridTable(prods, "products", 2), " → sum = ", el("b", { "class": "scnn-sum", text: sum.toFixed(3) }),
        " = output[" + state.row + ", " + state.col + "]");
      root.simplecnnState = { digit: state.digit, kernel: state.kernel, stride: s, padding: p,
                              row: state.row, col: state.col, output: out, windowSum: sum };
    }

    function readText() {
      try {
        state.kernel = parseKernel(text.value, data.sizes, data.max_value);
        message.textContent = "";
        var match = data.presets.findIndex(function (p) { return p.text.trim() === text.value.trim(); });
        kernelSel.input.value = match >= 0 ? String(match) : TYPED;
        render();
      } catch (err) {
        message.textContent = "⚠ Could not read the kernel: " + err.message + ". The explorer keeps the last kernel that worked.";
      }
    }

    digitSel.input.addEventListener("change", function () { state.digit = +digitSel.input.value; render(); });
    kernelSel.input.addEventListener("change", function () {
      if (kernelSel.input.value === TYPED) { text.focus(); return; }
      text.value = data.presets[+kernelSel.input.value].text;
      readText();
    });
    text.addEventListener("input", readText);
    stride.input.addEventListener("input", function () { state.stride = +stride.input.value; render(); });
    padding.input.addEventListener("input", function () { state.padding = +padding.input.value; render(); });
    row.input.addEventListener("input", function () { state.row = +row.input.value; render(); });
    col.input.addEventListener("input", function () { state.col = +col.input.value; render(); });
    outCanvas.addEventListener("click", function (e) {
      var at = cellAt(outCanvas, outCell, e); state.row = Math.max(0, at.r); state.col = Math.max(0, at.c); render();
    });
    var first = conv2d(digits[0].pixels, state.kernel, 1, 0), best = -1;
    first.forEach(function (r, i) { r.forEach(function (v, j) { if (Math.abs(v) > best) { best = Math.abs(v); state.row = i; state.col = j; } }); });
    render();
  }

  function pooling(root) {
    var data = dom.payload(root), colors = data.colors;
    var maps = data.maps.map(function (m) {
      return { name: m.name, values: m.values.map(function (row) { return row.map(function (v) { return v / m.scale; }); }) };
    });
    var state = { map: 0, size: data.sliders.window.value, stride: data.sliders.stride.value, mode: "max", row: 0, col: 0 };
    var mapSel = select("Map", maps.map(function (m, i) { return [String(i), m.name]; }), "0");
    var modeSel = select("Pooling", data.modes.map(function (m) { return [m, m]; }), "max");
    var size = setting("Window", data.sliders.window), stride = setting("Stride", data.sliders.stride);
    var row = slider("Window row", 0, 1, 0), col = slider("Window column", 0, 1, 0);
    var message = el("div", { "class": "scnn-message", role: "alert", "aria-live": "polite" });
    var inCanvas = el("canvas", { "class": "scnn-input", role: "img", "aria-label": "feature map with the pooling windows" });
    var outCanvas = el("canvas", { "class": "scnn-output", role: "img", "aria-label": "pooled map" });
    var inCap = el("figcaption"), outCap = el("figcaption");
    var formula = el("div", { "class": "scnn-formula" }), windowBox = el("div", { "class": "scnn-window" });
    root.appendChild(el("div", { "class": "scnn-controls" }, [mapSel.wrap, modeSel.wrap, size.wrap, stride.wrap]));
    root.appendChild(el("div", { "class": "scnn-controls" }, [row.wrap, col.wrap,
      el("span", { "class": "scnn-hint", text: "or click the pooled map to pick a window" })]));
    root.appendChild(message);
    root.appendChild(el("div", { "class": "scnn-panels" }, [el("figure", {}, [inCanvas, inCap]), el("figure", {}, [outCanvas, outCap])]));
    root.appendChild(formula);
    root.appendChild(windowBox);
    var outCell = 1;

    function render() {
      var m = maps[state.map].values, k = state.size, s = state.stride, out;
      try { out = pool2d(m, k, s, state.mode); message.textContent = ""; }
      catch (err) { message.textContent = "⚠ " + err.message; return; }
      var ho = out.length, wo = out[0].length, small = m.length <= 8;
      state.row = Math.min(state.row, ho - 1); state.col = Math.min(state.col, wo - 1);
      row.set(state.row, ho - 1); col.set(state.col, wo - 1);
      var boxes = [];
      for (var i = 0; i < ho; i++) for (var j = 0; j < wo; j++)
        boxes.push({ r: i * s, c: j * s, h: k, w: k, color: "rgba(86,180,233,0.6)", width: 1 });
      var top = state.row * s, left = state.col * s, vals = [], best = -Infinity, arg = null, sum = 0;
      for (var a = 0; a < k; a++) {
        vals.push([]);
        for (var b = 0; b < k; b++) {
          var v = m[top + a][left + b]; vals[a].push(v); sum += v;
          if (v > best) { best = v; arg = { r: top + a, c: left + b }; }
        }
      }
      boxes.push({ r: top, c: left, h: k, w: k, color: colors.highlight, width: 3, halo: true });
      drawMap(inCanvas, m, colors, { numbers: small, boxes: boxes, size: 252,
        rings: state.mode === "max" ? [{ r: arg.r, c: arg.c, color: colors.positive }] : [] });
      inCap.textContent = "map " + m.length + "×" + m[0].length + ": windows " + k + "×" + k + ", stride " + s;
      var inCell = Math.max(1, Math.floor(252 / Math.max(m.length, m[0].length)));
      outCell = drawMap(outCanvas, out, colors, { numbers: small, size: Math.max(48, Math.min(252, inCell * s * Math.max(ho, wo))),
        boxes: [{ r: state.row, c: state.col, h: 1, w: 1, color: colors.highlight, width: 3, halo: true }] });
      outCap.textContent = state.mode + " pooled " + ho + "×" + wo;
      formula.replaceChildren(el("b", { text: "Output size " }), "H_out = ⌊(H_in − window) / stride⌋ + 1 = ⌊(" +
        m.length + " − " + k + ") / " + s + "⌋ + 1 = ⌊" + (m.length - k) + " / " + s + "⌋ + 1 = " + ho +
        " → the pooled map is " + ho + "×" + wo + ".");
      var value = state.mode === "max" ? best : sum / (k * k);
      windowBox.replaceChildren(el("b", { text: "Window (" + state.row + ", " + state.col + ")" }),
        ": rows " + top + "–" + (top + k - 1) + ", columns " + left + "–" + (left + k - 1) + ". ",
        gridTable(vals, "values", 3), " → " + (state.mode === "max" ? "maximum" : "average") + " = ",
        el("b", { "class": "scnn-value", text: fmt(value) }), " = output[" + state.row + ", " + state.col + "]");
      root.simplecnnState = { map: state.map, size: k, stride: s, mode: state.mode, row: state.row, col: state.col,
                              output: out, windowValue: value };
    }

    mapSel.input.addEventListener("change", function () { state.map = +mapSel.input.value; render(); });
    modeSel.input.addEventListener("change", function () { state.mode = modeSel.input.value; render(); });
    size.input.addEventListener("input", function () { state.size = +size.input.value; render(); });
    stride.input.addEventListener("input", function () { state.stride = +stride.input.value; render(); });
    row.input.addEventListener("input", function () { state.row = +row.input.value; render(); });
    col.input.addEventListener("input", function () { state.col = +col.input.value; render(); });
    outCanvas.addEventListener("click", function (e) {
      var at = cellAt(outCanvas, outCell, e); state.row = Math.max(0, at.r); state.col = Math.max(0, at.c); render();
    });
    render();
  }

  return { kernel: dom.safely("explorer", kernel), pooling: dom.safely("explorer", pooling), parseKernel: parseKernel, conv2d: conv2d, pool2d: pool2d };
})();
