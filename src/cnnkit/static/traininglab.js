// The training lab of chapter 7: the reader trains the Simple CNN in their own browser.
//
// Start, Pause and Reset drive a Web Worker that runs cnntrain.js (the network, its backward
// pass and Adam); a second worker measures the accuracy on the held-out test digits from copies
// of the weights, so training never waits for it. The page draws the training loss, the test
// accuracy and the 32 kernels of conv1 as they change. When training stops, the reader draws a
// digit for the network they trained: the digit lab's preprocessing and forward pass
// (simplecnn.js) read it.
//
// The digits travel inside the page (gzip, base64) and the workers are made from the script's
// own text (a Blob), so the lab works from a file on disk, in JupyterLab and in Colab, and loads
// nothing from elsewhere.
window.SimpleCNNTrainingLab = (function () {
  "use strict";
  var T = window.SimpleCNNTrain, net = window.SimpleCNN, dom = window.SimpleCNNDom, el = dom.el, percent = dom.percent;  // dom.js, loaded first
  // Between two measurements of test accuracy the second worker rests at least 2 s, and at least
  // as long as the last measurement took, so that on a machine with two cores it takes at most
  // half of one from the other work of the page and the machine.
  var EVAL_GAP_MS = 2000;

  function hex(c) { return [1, 3, 5].map(function (i) { return parseInt(c.substr(i, 2), 16); }); }
  function thousands(n) { return Math.round(n).toLocaleString("en-US"); }
  function lrText(lr) { var e = Math.floor(Math.log10(lr) + 1e-9), m = lr / Math.pow(10, e); return (Math.round(m * 10) / 10) + "e" + e; }

  // The data file (gzip): 8 magic bytes, the two counts, the labels, the pixels (traininglab.py).
  function unpack(base64) {
    var bytes = net.base64Bytes(base64);
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser cannot unpack the digits (it has no DecompressionStream); a recent Chrome, Edge, Firefox or Safari can"));
    }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer().then(function (buffer) {
      var raw = new Uint8Array(buffer), view = new DataView(buffer);
      var magic = String.fromCharCode.apply(null, raw.subarray(0, 8));
      if (magic !== "SCNNTL01") throw new Error("the embedded digits are damaged");
      var nTrain = view.getUint32(8, true), nTest = view.getUint32(12, true), n = nTrain + nTest, at = 16, P = 784;
      return {
        trainLabels: raw.slice(at, at + nTrain), testLabels: raw.slice(at + nTrain, at + n),
        trainPixels: raw.slice(at + n, at + n + nTrain * P), testPixels: raw.slice(at + n + nTrain * P, at + n + n * P),
      };
    });
  }

  function worker() {
    var url = URL.createObjectURL(new Blob([T.workerSource()], { type: "text/javascript" }));
    var w = new Worker(url);
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    return w;
  }

  // ---------------------------------------------------------------------------------------------
  // Pictures: two line charts and the kernels
  // ---------------------------------------------------------------------------------------------

  // A chart of points [x, y] on `canvas`: axes, grid lines at `yTicks`, light dots for `dots`
  // and a line through `line`.
  function chart(canvas, o) {
    var W = canvas.width, H = canvas.height, ctx = canvas.getContext("2d");
    var left = 44, right = 20, top = 8, bottom = 30, pw = W - left - right, ph = H - top - bottom;
    var xMax = Math.max(o.xMin, o.xMax);
    var X = function (x) { return left + pw * x / xMax; }, Y = function (y) { return top + ph * (1 - (y - o.yMin) / (o.yMax - o.yMin)); };
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    ctx.font = "11px sans-serif"; ctx.fillStyle = "#333"; ctx.strokeStyle = "#ddd"; ctx.lineWidth = 1;
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    o.yTicks.forEach(function (t) {
      ctx.beginPath(); ctx.moveTo(left, Y(t) + 0.5); ctx.lineTo(W - right, Y(t) + 0.5); ctx.stroke();
      ctx.fillText(o.yFormat(t), left - 4, Y(t));
    });
    var step = niceStep(xMax / 4);
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (var t = 0; t <= xMax + 1e-9; t += step) ctx.fillText(thousands(t), X(t), H - bottom + 4);
    ctx.fillText(o.xLabel, left + pw / 2, H - 13);
    ctx.strokeStyle = "#777"; ctx.beginPath(); ctx.moveTo(left + 0.5, top); ctx.lineTo(left + 0.5, H - bottom + 0.5); ctx.lineTo(W - right, H - bottom + 0.5); ctx.stroke();
    var clip = function (y) { return Math.max(o.yMin, Math.min(o.yMax, y)); };
    if (o.dots) {
      ctx.fillStyle = o.dotColor;
      o.dots.forEach(function (p) { ctx.fillRect(X(p[0]) - 1, Y(clip(p[1])) - 1, 2, 2); });
    }
    if (o.line && o.line.length) {
      ctx.strokeStyle = o.lineColor; ctx.lineWidth = 2; ctx.beginPath();
      o.line.forEach(function (p, i) { if (i) ctx.lineTo(X(p[0]), Y(clip(p[1]))); else ctx.moveTo(X(p[0]), Y(clip(p[1]))); });
      ctx.stroke();
      if (o.marks) { ctx.fillStyle = o.lineColor; o.line.forEach(function (p) { ctx.beginPath(); ctx.arc(X(p[0]), Y(clip(p[1])), 2.5, 0, 7); ctx.fill(); }); }
    }
  }
  function niceStep(raw) {
    var e = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1)))), m = raw / e;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * e;
  }

  // The 32 kernels of conv1, 5x5 each, 8 to a row, one pixel apart: blue negative, white 0,
  // vermillion positive, each kernel scaled to its own largest weight (so its pattern shows).
  function paintKernels(canvas, w, colors) {
    var k = 5, cols = 8, rows = 4, W = cols * (k + 1) - 1, H = rows * (k + 1) - 1;
    canvas.width = W; canvas.height = H;
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(W, H), d = img.data;
    var neg = hex(colors.negative), pos = hex(colors.positive);
    for (var i = 0; i < W * H; i++) { d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = 255; d[4 * i + 3] = 255; }
    for (var c = 0; c < 32; c++) {
      var top = 0, a, b;
      for (a = 0; a < 25; a++) top = Math.max(top, Math.abs(w[c * 25 + a]));
      for (a = 0; a < k; a++) for (b = 0; b < k; b++) {
        var t = top > 0 ? w[c * 25 + a * k + b] / top : 0, col = t < 0 ? neg : pos;
        var q = 4 * ((Math.floor(c / cols) * (k + 1) + a) * W + (c % cols) * (k + 1) + b);
        for (var ch = 0; ch < 3; ch++) d[q + ch] = Math.round(255 + (col[ch] - 255) * Math.abs(t));
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  // ---------------------------------------------------------------------------------------------
  // The lab
  // ---------------------------------------------------------------------------------------------

  function start(root) {
    var data = JSON.parse(root.querySelector("script.scnn-data").textContent);
    var colors = data.colors, k = data.constants, G = k.grid, RADIUS = 4.2;
    var state = { ready: false, status: "loading", running: false, finished: false, seen: 0, steps: 0, epoch: 0, clock: 0,
                  imagesPerSecond: 0, losses: [], accuracy: [], milestones: {}, evaluations: 0, evalMs: null,
                  prediction: null, probs: null, drawVersion: 0, error: null, lr: data.defaults.lr, batch: data.defaults.batch_size,
                  shift: data.defaults.max_shift };
    var trainer = null, evaluator = null, digits = null, evalBusy = false, evalQueue = [], lastEval = -Infinity, waiting = false;
    var model = null, weights = null, kernels = null, startKernels = null, nextId = 1, generation = 0, awaitingReset = true;

    // --- the layout
    var startButton = el("button", { type: "button", "class": "scnn-start", text: "Start", disabled: "" });
    var pauseButton = el("button", { type: "button", "class": "scnn-pause", text: "Pause", disabled: "" });
    var resetButton = el("button", { type: "button", "class": "scnn-reset", text: "Reset", disabled: "" });
    var uid = root.id || "scnn-train";
    var lrSelect = el("select", { id: uid + "-lr", "class": "scnn-lr" });
    data.learning_rates.forEach(function (lr) {
      var o = el("option", { value: String(lr), text: lrText(lr) + (lr === data.defaults.lr ? " (preset)" : "") });
      if (lr === data.defaults.lr) o.selected = true;
      lrSelect.appendChild(o);
    });
    var batchSelect = el("select", { id: uid + "-batch", "class": "scnn-batch" });
    data.batch_sizes.forEach(function (b) {
      var o = el("option", { value: String(b), text: String(b) + (b === data.defaults.batch_size ? " (preset)" : "") });
      if (b === data.defaults.batch_size) o.selected = true;
      batchSelect.appendChild(o);
    });
    var shiftBox = el("input", { type: "checkbox", id: uid + "-shift", "class": "scnn-shift" });
    shiftBox.checked = data.defaults.max_shift > 0;
    var controls = el("div", { "class": "scnn-controls" }, [startButton, pauseButton, resetButton,
      el("label", { "for": uid + "-lr" }, ["Learning rate "]), lrSelect,
      el("label", { "for": uid + "-batch" }, ["Batch size "]), batchSelect,
      el("span", { "class": "scnn-check" }, [shiftBox, el("label", { "for": uid + "-shift" },
        [" Shift each digit by up to " + Math.max(1, data.defaults.max_shift) + " pixel"])])]);
    var message = el("p", { "class": "scnn-message", role: "status", "aria-live": "polite", text: "Unpacking the digits…" });
    var counters = el("p", { "class": "scnn-counters" });
    var lossCanvas = el("canvas", { "class": "scnn-chart scnn-loss", width: 360, height: 190, role: "img",
      "aria-label": "Training loss of each step against the number of training images seen" });
    var accCanvas = el("canvas", { "class": "scnn-chart scnn-accuracy", width: 360, height: 190, role: "img",
      "aria-label": "Accuracy on the test digits against the number of training images seen" });
    var kernelCanvas = el("canvas", { "class": "scnn-kernels scnn-kernels-now", role: "img",
      "aria-label": "The 32 kernels of conv1, 5 by 5 weights each: blue negative, white zero, vermillion positive" });
    var changeCanvas = el("canvas", { "class": "scnn-kernels scnn-kernel-change", role: "img",
      "aria-label": "What training has changed in each kernel of conv1: its weights now minus its weights at the start" });
    var milestoneText = el("p", { "class": "scnn-milestones" });
    var lossCaption = el("figcaption", { text: "Training loss (each step; line: average of the last 20)" });
    var accCaption = el("figcaption", { text: "Accuracy on the " + thousands(data.n_test) + " test digits" });

    var pad = el("canvas", { "class": "scnn-pad", width: G, height: G, role: "img",
      "aria-label": "Drawing area: draw a digit here with a mouse, a finger or a pen" });
    var clear = el("button", { type: "button", "class": "scnn-clear", text: "Clear" });
    var testDigit = el("button", { type: "button", "class": "scnn-test-digit", text: "A test digit" });
    var verdict = el("p", { "class": "scnn-verdict", text: "Draw a digit" });
    var bars = dom.probabilityBars();
    var drawSection = el("div", { "class": "scnn-draw", hidden: "" }, [
      el("p", { "class": "scnn-draw-title" }, [el("b", { text: "Try the network you trained. " }),
        "Draw a digit (mouse, finger or pen) or load a test digit; press Start to train on."]),
      el("div", { "class": "scnn-row" }, [
        el("figure", {}, [pad, el("div", { "class": "scnn-buttons" }, [clear, testDigit])]),
        el("div", { "class": "scnn-side" }, [verdict, bars.element]),
      ]),
    ]);
    var footer = el("p", { "class": "scnn-footer", text: "Runs in your browser, in a background thread (a Web Worker): " +
      thousands(data.n_train) + " training and " + thousands(data.n_test) + " test digits of MNIST, " +
      Math.round(data.bytes / 1024) + " kB, travel with this page (MNIST: Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0). " +
      "Loss: cross-entropy with label smoothing " + data.defaults.label_smoothing + "; optimiser: Adam, decay rates " +
      data.defaults.betas.join(" and ") + "." });

    root.appendChild(controls);
    root.appendChild(message);
    root.appendChild(counters);
    root.appendChild(el("div", { "class": "scnn-row scnn-charts" }, [
      el("figure", {}, [lossCanvas, lossCaption]), el("figure", {}, [accCanvas, accCaption])]));
    root.appendChild(el("div", { "class": "scnn-row" }, [
      el("figure", { "class": "scnn-kernel-figure" }, [kernelCanvas,
        el("figcaption", { text: "The 32 kernels of conv1 (5 × 5 each), as they are now" })]),
      el("figure", { "class": "scnn-kernel-figure" }, [changeCanvas,
        el("figcaption", { text: "What training has changed in them (now minus the start)" })]),
      milestoneText]));
    root.appendChild(drawSection);
    root.appendChild(footer);

    function say(text, warn) { message.textContent = text; message.classList.toggle("scnn-warn", !!warn); }
    function fail(err) {
      state.error = String(err && err.message || err);
      state.running = false;
      say("⚠ The training lab stopped: " + state.error, true);
      buttons();
    }
    function buttons() {
      var ok = state.ready && !state.error && !awaitingReset;
      startButton.disabled = !ok || state.running || state.finished;
      pauseButton.disabled = !ok || !state.running;
      resetButton.disabled = !ok;
    }

    // --- pictures
    function redraw() {
      var xMax = Math.max(state.seen, 10 * state.batch, 1000);
      var dots = state.losses, line = [], sum = 0;
      for (var i = 0; i < dots.length; i++) {
        sum += dots[i][1]; if (i >= 20) sum -= dots[i - 20][1];
        if (i % 4 === 3 || i === dots.length - 1) line.push([dots[i][0], sum / Math.min(i + 1, 20)]);
      }
      chart(lossCanvas, { xMin: 1000, xMax: xMax, yMin: 0, yMax: 2.5, yTicks: [0, 0.5, 1, 1.5, 2, 2.5],
        yFormat: function (t) { return t.toFixed(1); }, xLabel: "training images seen", dots: dots, dotColor: "#9bb8d3",
        line: line, lineColor: colors.line });
      chart(accCanvas, { xMin: 1000, xMax: xMax, yMin: 0, yMax: 1, yTicks: [0, 0.25, 0.5, 0.75, 0.9, 1],
        yFormat: function (t) { return Math.round(100 * t) + " %"; }, xLabel: "training images seen",
        line: state.accuracy.map(function (a) { return [a.seen, a.accuracy]; }), lineColor: colors.accent, marks: true });
      if (kernels) {
        paintKernels(kernelCanvas, kernels, colors);
        var change = new Float32Array(kernels.length);
        for (var q = 0; q < change.length; q++) change[q] = kernels[q] - startKernels[q];
        paintKernels(changeCanvas, change, colors);
      }
      var seconds = state.clock / 1000;
      counters.textContent = thousands(state.seen) + " training images seen in " + seconds.toFixed(0) + " s (epoch " +
        state.epoch + " of at most " + data.max_epochs + " over the " + thousands(data.n_train) + " digits), " +
        thousands(state.steps) + " steps" + (state.seen ? ", " + state.imagesPerSecond.toFixed(0) + " images per second" : "") +
        (state.accuracy.length ? "; test accuracy " + percent(state.accuracy[state.accuracy.length - 1].accuracy) : "");
      var parts = data.milestones.map(function (t) {
        var m = state.milestones[t];
        return "after " + t + " s: " + (m ? percent(m.accuracy) + " (" + thousands(m.seen) + " images)" : "–");
      });
      milestoneText.textContent = "Test accuracy " + parts.join(", ") + ".";
    }

    // --- measuring test accuracy on copies of the weights, one at a time
    function measure(snap) {
      snap.generation = generation;
      evalQueue.push(snap);
      evalQueue.sort(function (a, b) { return (b.milestone ? 1 : 0) - (a.milestone ? 1 : 0); });
      pump();
    }
    function pump() {
      if (evalBusy || !evalQueue.length) return;
      var snap = evalQueue.shift();
      evalBusy = snap;
      evaluator.postMessage({ type: "evaluate", id: snap.id, state: snap.state });
    }
    function wantEvaluation() {
      if (!state.running || evalBusy || waiting || performance.now() - lastEval < Math.max(EVAL_GAP_MS, state.evalMs || 0)) return;
      waiting = true;
      trainer.postMessage({ type: "snapshot", id: nextId++ });
    }

    function fromEvaluator(e) {
      var m = e.data;
      if (m.type === "error") return fail(m.message);
      if (m.type === "ready") return;
      if (m.type !== "accuracy") return;
      var snap = evalBusy;
      evalBusy = false;
      lastEval = performance.now();
      if (snap.generation !== generation) return pump();  // measured before a Reset
      state.evaluations += 1; state.evalMs = m.ms;
      var point = { seen: snap.seen, clock: snap.clock, accuracy: m.accuracy };
      if (snap.milestone) state.milestones[snap.milestone] = point;
      if (!snap.milestone || !state.accuracy.some(function (a) { return a.seen === snap.seen; })) {
        state.accuracy.push(point);
        state.accuracy.sort(function (a, b) { return a.seen - b.seen; });
      }
      redraw();
      pump();
    }

    function fromTrainer(e) {
      var m = e.data;
      if (!root.isConnected) return shutDown();  // the output was cleared or replaced
      if (m.type === "error") return fail(m.message);
      if (m.type === "ready") { state.ready = true; reset(); return; }
      if (awaitingReset && m.type !== "reset") return;  // sent before the last Reset
      if (m.type === "reset") {
        awaitingReset = false;
        kernels = m.kernels; startKernels = Float32Array.from(m.kernels); weights = m.state; model = T.inferenceModel(m.state);
        measure({ id: nextId++, state: m.state, seen: 0, clock: 0 });
        state.status = "ready";
        say("Ready: press Start. The network starts from random weights; the loss near 2.3 and the accuracy near 10 % are guesses.");
        buttons(); redraw();
        return;
      }
      if (m.type === "progress") {
        var first = state.seen;
        m.losses.forEach(function (loss, i) { state.losses.push([first + (i + 1) * (m.seen - first) / m.losses.length, loss]); });
        Object.assign(state, { seen: m.seen, steps: m.steps, epoch: m.epoch, clock: m.clock });
        state.imagesPerSecond = m.clock > 0 ? 1000 * m.seen / m.clock : 0;
        kernels = m.kernels;
        redraw();
        wantEvaluation();
        return;
      }
      if (m.type === "snapshot") {
        if (!m.milestone) waiting = false;
        measure({ id: m.id || nextId++, state: m.state, seen: m.seen, clock: m.clock, milestone: m.milestone });
        return;
      }
      if (m.type === "paused") {
        state.running = false; state.finished = m.finished; state.status = m.finished ? "finished" : "paused";
        state.clock = m.clock;
        weights = m.state; model = T.inferenceModel(m.state);
        if (m.seen > 0 && !state.accuracy.some(function (a) { return a.seen === m.seen; })) measure({ id: nextId++, state: m.state, seen: m.seen, clock: m.clock });
        say(m.finished ? "Finished: " + data.max_epochs + " passes over the training digits. Draw a digit below for the network you trained, or press Reset."
          : "Paused. Draw a digit below for the network as it is now, or press Start to go on.");
        drawSection.hidden = m.seen === 0;
        buttons(); redraw(); readDrawing();
      }
    }

    function reset() {
      state.running = false; state.finished = false;
      Object.assign(state, { seen: 0, steps: 0, epoch: 0, clock: 0, imagesPerSecond: 0, losses: [], accuracy: [], milestones: {} });
      evalQueue = []; waiting = false; generation += 1; awaitingReset = true;
      drawSection.hidden = true;
      buttons();
      trainer.postMessage({ type: "reset", seed: data.defaults.seed, lr: state.lr, batch: state.batch, shift: state.shift, betas: data.defaults.betas,
                            labelSmoothing: data.defaults.label_smoothing, maxEpochs: data.max_epochs, milestones: data.milestones });
    }

    startButton.addEventListener("click", function () {
      if (!state.ready || state.running) return;
      state.running = true; state.status = "training";
      drawSection.hidden = true;
      trainer.postMessage({ type: "start" });
      say("Training… watch the loss fall, the accuracy climb and the kernels take shape.");
      buttons();
    });
    pauseButton.addEventListener("click", function () { pause(); });
    function pause(why) {
      if (!state.running) return;
      trainer.postMessage({ type: "pause" });
      if (why) say(why);
    }
    resetButton.addEventListener("click", function () { if (state.ready) reset(); });
    lrSelect.addEventListener("change", function () {
      state.lr = +lrSelect.value;
      if (trainer) trainer.postMessage({ type: "settings", lr: state.lr });
    });
    shiftBox.addEventListener("change", function () {
      state.shift = shiftBox.checked ? Math.max(1, data.defaults.max_shift) : 0;
      if (trainer) trainer.postMessage({ type: "settings", shift: state.shift });
    });
    batchSelect.addEventListener("change", function () {
      state.batch = +batchSelect.value;
      if (trainer) trainer.postMessage({ type: "settings", batch: state.batch });
    });

    // --- leaving: a hidden page pauses, a page that goes away stops its workers
    function shutDown() {
      [trainer, evaluator].forEach(function (w) { if (w) w.terminate(); });
      trainer = evaluator = null;
      state.running = false; state.status = "stopped";
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden && state.running) pause();
    });
    window.addEventListener("pagehide", shutDown);

    // --- the drawing pad (dom.js, as in the digit lab of chapter 8)
    var ink = new Float32Array(G * G), pending = false, testIndex = 0;
    dom.drawingPad(pad, G, RADIUS, ink, schedule, readDrawing);
    clear.addEventListener("click", function () { ink.fill(0); readDrawing(); });
    testDigit.addEventListener("click", function () {
      if (!digits) return;
      var i = testIndex++ % data.n_test, px = digits.testPixels.subarray(i * 784, (i + 1) * 784), cell = G / 28;
      for (var y = 0; y < G; y++) for (var x = 0; x < G; x++) ink[y * G + x] = px[Math.floor(y / cell) * 28 + Math.floor(x / cell)] / 255;
      state.testLabel = digits.testLabels[i];
      readDrawing();
    });
    function schedule() {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () { pending = false; readDrawing(); });
    }
    var prepared = null, result = null;
    function readDrawing() {
      var ctx = pad.getContext("2d"), img = ctx.createImageData(G, G);
      for (var i = 0; i < G * G; i++) { var gr = Math.round(255 * ink[i]); img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = gr; img.data[4 * i + 3] = 255; }
      ctx.putImageData(img, 0, 0);
      prepared = net.preprocess(ink, G, G, k);
      if (!prepared || !model) {
        result = null; state.prediction = null; state.probs = null;
        verdict.textContent = "Draw a digit";
        bars.show(null);
      } else {
        result = net.forward(model, prepared.input);
        var probs = Array.from(result.probs), best = probs.indexOf(Math.max.apply(null, probs));
        verdict.replaceChildren("Your network reads: ", el("b", { "class": "scnn-prediction", text: String(best) }), " (" + percent(probs[best]) + ")");
        bars.show(probs);
        state.prediction = best; state.probs = probs;
      }
      state.drawVersion += 1;
    }

    // --- start: unpack the digits, start the two workers
    root.simplecnnTrainingLab = { state: state, ink: ink, grid: G, readDrawing: readDrawing,
      model: function () { return model; }, weights: function () { return weights; }, input: function () { return prepared && prepared.input; },
      trainer: function () { return trainer; }, evaluator: function () { return evaluator; }, pause: pause };
    root.simplecnnState = state;
    redraw();
    buttons();
    unpack(data.data).then(function (dg) {
      digits = dg;
      trainer = worker(); evaluator = worker();
      trainer.onmessage = fromTrainer; evaluator.onmessage = fromEvaluator;
      trainer.onerror = evaluator.onerror = function (e) { fail(e.message || "a worker failed"); };
      evaluator.postMessage({ type: "data", pixels: dg.testPixels, labels: dg.testLabels, mean: k.mean, std: k.std });
      trainer.postMessage({ type: "data", pixels: dg.trainPixels, labels: dg.trainLabels, mean: k.mean, std: k.std });
      say("Starting…");
    }).catch(fail);
  }

  return { start: dom.safely("training lab", start) };
})();
