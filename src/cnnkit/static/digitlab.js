// The digit lab of chapter 8: the course's trained Simple CNN, run in the reader's browser.
//
// The reader draws on a canvas with a mouse, a finger or a pen (pointer events); while they draw,
// the lab prepares the drawing like MNIST, runs the network (simplecnn.js, loaded before this
// file) and shows what the model sees, the ten probabilities and the feature maps of both blocks.
// The page embeds the weights, so the lab works from a file on disk, over HTTP and in Colab, and
// loads nothing from elsewhere.
window.SimpleCNNLab = (function () {
  "use strict";
  var net = window.SimpleCNN, dom = window.SimpleCNNDom, el = dom.el, percent = dom.percent;  // simplecnn.js and dom.js, loaded first

  // ---------------------------------------------------------------------------------------------
  // Pictures
  // ---------------------------------------------------------------------------------------------

  function hex(c) { return [1, 3, 5].map(function (i) { return parseInt(c.substr(i, 2), 16); }); }

  // Grey levels (0 black .. top white) of n x n values starting at `from`, onto a canvas.
  function paintGrey(canvas, values, from, n, top) {
    canvas.width = n; canvas.height = n;
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(n, n), d = img.data;
    for (var i = 0; i < n * n; i++) {
      var g = top > 0 ? Math.round(255 * Math.min(1, values[from + i] / top)) : 0;
      d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = g; d[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // Kernels in the course's signed colours (negative blue, 0 white, positive vermillion): the
  // slices of one kernel side by side, `cols` to a row, one pixel apart.
  function paintKernel(canvas, w, from, slices, k, cols, colors) {
    var rows = Math.ceil(slices / cols), W = cols * (k + 1) - 1, H = rows * (k + 1) - 1, top = 0, i;
    for (i = 0; i < slices * k * k; i++) top = Math.max(top, Math.abs(w[from + i]));
    canvas.width = W; canvas.height = H;
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(W, H), d = img.data;
    var neg = hex(colors.negative), pos = hex(colors.positive);
    for (i = 0; i < W * H; i++) { d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = 255; d[4 * i + 3] = 255; }
    for (var s = 0; s < slices; s++) for (var a = 0; a < k; a++) for (var b = 0; b < k; b++) {
      var t = top > 0 ? w[from + (s * k + a) * k + b] / top : 0, c = t < 0 ? neg : pos, p = 4 * (((Math.floor(s / cols)) * (k + 1) + a) * W + (s % cols) * (k + 1) + b);
      for (var ch = 0; ch < 3; ch++) d[p + ch] = Math.round(255 + (c[ch] - 255) * Math.abs(t));
    }
    ctx.putImageData(img, 0, 0);
    return top;
  }

  function fmt(v) { return (Math.abs(v) < 5e-4 ? 0 : v).toFixed(2); }

  // ---------------------------------------------------------------------------------------------
  // The lab
  // ---------------------------------------------------------------------------------------------

  var BLOCKS = [
    { name: "Block 1", layers: "conv1 → bn1 → ReLU → pool1", maps: 32, before: 24, after: 12, key: "1" },
    { name: "Block 2", layers: "conv2 → bn2 → ReLU → pool2", maps: 64, before: 8, after: 4, key: "2" },
  ];

  function start(root) {
    var data = dom.payload(root);
    var k = data.constants, G = k.grid, colors = data.colors, model = net.decodeWeights(data);
    var ink = new Float32Array(G * G), RADIUS = 4.2;
    var state = { ready: false, version: 0, empty: true, probs: null, prediction: null, ms: null, selected: null };
    var pending = false, result = null, prepared = null;

    // --- the layout
    var pad = el("canvas", { "class": "scnn-pad", width: G, height: G, role: "img",
      "aria-label": "Drawing area: draw a digit here with a mouse, a finger or a pen" });
    var clear = el("button", { type: "button", "class": "scnn-clear", text: "Clear" });
    var examples = el("div", { "class": "scnn-examples", role: "group", "aria-label": "Load a test digit" },
      [el("span", { text: "Test digits: " })]);
    data.examples.forEach(function (ex, i) {
      examples.appendChild(el("button", { type: "button", "data-example": String(i), "aria-label": "Load a test digit " + ex.label, text: String(ex.label) }));
    });
    var seen = el("canvas", { "class": "scnn-seen", width: k.frame, height: k.frame, role: "img",
      "aria-label": "What the model sees: the drawing cropped, scaled into a 20 by 20 box and centred in 28 by 28 pixels" });
    var verdict = el("p", { "class": "scnn-verdict" });
    var bars = dom.probabilityBars();
    var message = el("p", { "class": "scnn-message", role: "status", "aria-live": "polite" });
    var mapGroups = BLOCKS.map(function (b) {
      var tiles = el("div", { "class": "scnn-maps scnn-maps-" + b.key }), buttons = [];
      for (var c = 0; c < b.maps; c++) {
        var canvas = el("canvas", { width: b.after, height: b.after, "aria-hidden": "true" });
        var button = el("button", { type: "button", "class": "scnn-map", "aria-pressed": "false",
          "aria-label": b.name + ", map " + c + ": enlarge it with its kernel", "data-block": b.key, "data-map": String(c) }, [canvas]);
        tiles.appendChild(button);
        buttons.push({ button: button, canvas: canvas });
      }
      var heading = el("p", { "class": "scnn-block-title" }, [el("b", { text: b.name + ": " }), b.layers + " gives " + b.maps +
        " maps, shape " + b.maps + " × " + b.after + " × " + b.after + " (" + b.maps + " × " + b.before + " × " + b.before + " before pooling)"]);
      return { block: b, wrap: el("div", { "class": "scnn-block" }, [heading, tiles]), tiles: buttons };
    });
    var detail = el("div", { "class": "scnn-detail", hidden: "" });
    var timing = el("span", { "class": "scnn-timing" });
    var footer = el("p", { "class": "scnn-footer" }, [timing, "Weights: " + data.encoding + ", " + Math.round(data.bytes / 1024) +
      " kB, exported from the reference checkpoint (SHA-256 " + data.checkpoint_sha256.slice(0, 12) + "…)."]);

    root.appendChild(el("div", { "class": "scnn-row" }, [
      el("figure", {}, [pad, el("figcaption", { text: "Draw here (" + G + " × " + G + " cells)" })]),
      el("div", { "class": "scnn-side" }, [
        el("figure", {}, [seen, el("figcaption", { text: "What the model sees: 28 × 28" })]), verdict, bars.element]),
    ]));
    root.appendChild(el("div", { "class": "scnn-buttons" }, [clear, examples]));
    root.appendChild(message);
    mapGroups.forEach(function (g) { root.appendChild(g.wrap); });
    root.appendChild(detail);
    root.appendChild(footer);

    // --- drawing (dom.js): the pad paints `ink`; redraw while drawing, read the digit when lifted
    dom.drawingPad(pad, G, RADIUS, ink, schedule, function () { update(true); });

    clear.addEventListener("click", function () { ink.fill(0); update(true); });
    examples.addEventListener("click", function (e) {
      var b = e.target.closest("button");
      if (!b) return;
      var px = net.base64Bytes(data.examples[+b.getAttribute("data-example")].pixels), cell = G / k.frame;
      for (var y = 0; y < G; y++) for (var x = 0; x < G; x++) ink[y * G + x] = px[Math.floor(y / cell) * k.frame + Math.floor(x / cell)] / 255;
      update(true);
    });
    mapGroups.forEach(function (g) {
      g.tiles.forEach(function (t, c) { t.button.addEventListener("click", function () {
        state.selected = state.selected && state.selected.block === g.block.key && state.selected.map === c ? null : { block: g.block.key, map: c };
        showDetail();
      }); });
    });

    function schedule() {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () { pending = false; update(false); });
    }

    // --- everything the drawing changes
    function update(announce) {
      try {
        var ctx = pad.getContext("2d"), img = ctx.createImageData(G, G);
        for (var i = 0; i < G * G; i++) { var g = Math.round(255 * ink[i]); img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g; img.data[4 * i + 3] = 255; }
        ctx.putImageData(img, 0, 0);
        prepared = net.preprocess(ink, G, G, k);
        if (!prepared) {
          result = null;
          paintGrey(seen, new Float64Array(k.frame * k.frame), 0, k.frame, 1);
          verdict.textContent = "No digit yet";
          bars.show(null);
          mapGroups.forEach(function (g) { g.tiles.forEach(function (t) { paintGrey(t.canvas, [], 0, g.block.after, 0); }); });
          message.classList.remove("scnn-warn");
          message.textContent = "Nothing to read yet: draw a digit in the black square (mouse, finger or pen), or load a test digit with a button.";
          Object.assign(state, { empty: true, probs: null, prediction: null });
        } else {
          var t0 = performance.now();
          result = net.forward(model, prepared.input);
          state.ms = performance.now() - t0;
          paintGrey(seen, prepared.pixels, 0, k.frame, 1);
          var probs = Array.from(result.probs), best = probs.indexOf(Math.max.apply(null, probs));
          verdict.replaceChildren("Prediction: ", el("b", { "class": "scnn-prediction", text: String(best) }), " (" + percent(probs[best]) + ")");
          bars.show(probs);
          paintMaps();
          if (announce) {
            message.classList.remove("scnn-warn");
            message.textContent = "The model reads a " + best + " (" + percent(probs[best]) + ").";
          }
          Object.assign(state, { empty: false, probs: probs, prediction: best });
          timing.textContent = "One forward pass took " + state.ms.toFixed(1) + " ms in your browser. ";
        }
        showDetail();
        state.ready = true;
        state.version += 1;
      } catch (err) {
        message.classList.add("scnn-warn");
        message.textContent = "⚠ The lab could not read this drawing: " + err.message;
      }
    }

    function blockMaps(key) {
      return key === "1" ? { after: result.pool1, before: result.relu1 } : { after: result.pool2, before: result.relu2 };
    }
    function peak(values) { var top = 0; for (var i = 0; i < values.length; i++) if (values[i] > top) top = values[i]; return top; }

    // One grey scale per block (0 black, the block's largest value white), so maps compare.
    function paintMaps() {
      mapGroups.forEach(function (g) {
        var m = blockMaps(g.block.key), n = g.block.after, top = peak(m.after);
        g.tiles.forEach(function (t, c) { paintGrey(t.canvas, m.after, c * n * n, n, top); });
      });
    }

    function showDetail() {
      mapGroups.forEach(function (g) { g.tiles.forEach(function (t, c) {
        var on = !!state.selected && state.selected.block === g.block.key && state.selected.map === c;
        t.button.setAttribute("aria-pressed", on ? "true" : "false");
      }); });
      if (!state.selected) { detail.hidden = true; detail.replaceChildren(); return; }
      var b = BLOCKS[+state.selected.block - 1], c = state.selected.map, layer = b.key === "1" ? model.conv1 : model.conv2;
      var cin = layer.shape[1], size = layer.shape[2], before = el("canvas", { "class": "scnn-big" }), after = el("canvas", { "class": "scnn-big" });
      var kernel = el("canvas", { "class": "scnn-kernel", role: "img",
        "aria-label": "Kernel of map " + c + ": " + cin + " slice" + (cin > 1 ? "s" : "") + " of " + size + " by " + size + " weights, blue negative, vermillion positive" });
      var top = 0;
      if (result) {
        var m = blockMaps(b.key);
        top = peak(m.after);
        paintGrey(before, m.before, c * b.before * b.before, b.before, top);
        paintGrey(after, m.after, c * b.after * b.after, b.after, top);
      } else {
        paintGrey(before, [], 0, b.before, 0); paintGrey(after, [], 0, b.after, 0);
      }
      var from = c * cin * size * size, largest = paintKernel(kernel, layer.w, from, cin, size, cin > 1 ? 8 : 1, colors);
      kernel.style.width = kernel.width * (cin > 1 ? 4 : 24) + "px";
      var kernelValues = Array.from(layer.w.slice(from, from + cin * size * size));
      var parts = [
        el("p", {}, [el("b", { text: b.name + ", map " + c }), ": its values after ReLU (" + b.before + " × " + b.before +
          "), after 2×2 max-pooling (" + b.after + " × " + b.after + "), and the kernel that made it."]),
        el("div", { "class": "scnn-row" }, [
          el("figure", {}, [before, el("figcaption", { text: "after ReLU, " + b.before + " × " + b.before })]),
          el("figure", {}, [after, el("figcaption", { text: "after pooling, " + b.after + " × " + b.after })]),
          el("figure", {}, [kernel, el("figcaption", { text: cin > 1 ? "kernel: " + cin + " slices of " + size + " × " + size +
            ", one per map of block 1" : "kernel " + size + " × " + size })]),
        ]),
      ];
      if (cin === 1) {
        var table = el("table", { "class": "scnn-weights" }, [el("caption", { text: "the " + size * size + " weights" })]);
        for (var r = 0; r < size; r++) {
          table.appendChild(el("tr", {}, kernelValues.slice(r * size, (r + 1) * size).map(function (v) { return el("td", { text: fmt(v) }); })));
        }
        parts[1].lastChild.appendChild(table);  // under the kernel
      }
      var close = el("button", { type: "button", "class": "scnn-close", text: "Close" });
      close.addEventListener("click", function () { state.selected = null; showDetail(); });
      parts.push(el("p", { "class": "scnn-hint" }, ["Colours: grey levels up to the block's largest value" +
        (top > 0 ? " (" + top.toFixed(2) + ")" : "") + "; kernel weights up to ±" + largest.toFixed(2) + ". ", close]));
      detail.replaceChildren.apply(detail, parts);
      detail.hidden = false;
      state.kernel = kernelValues;
    }

    root.simplecnnLab = { ink: ink, grid: G, model: model, update: update, preprocess: function () { return prepared; },
                          result: function () { return result; } };
    root.simplecnnState = state;
    update(true);
  }

  return { start: dom.safely("digit lab", start) };
})();
