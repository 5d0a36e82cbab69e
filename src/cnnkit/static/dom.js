// What every demo of the course builds its page with. The page loads this file before the
// demo's own scripts: cnnkit.webdemos puts it first in every demo's output, after the demo's
// <div>, which holds the demo's data as JSON in a <script class="scnn-data">.
window.SimpleCNNDom = (function () {
  "use strict";

  // el("label", { "class": "x", text: "Stride" }, [input, " px"]): a new element with these
  // attributes ("text" sets its text) and these children (strings become text nodes).
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }

  // The demo's data: the JSON inside its <div>.
  function payload(root) { return JSON.parse(root.querySelector("script.scnn-data").textContent); }

  // start(root), for the demo called `what`; if it fails, a message in its place says why.
  function safely(what, start) {
    return function (root) {
      try { start(root); }
      catch (err) { root.appendChild(el("p", { "class": "scnn-message scnn-warn", role: "alert", text: "⚠ The " + what + " could not start: " + err.message })); }
    };
  }

  // The drawing pad of the digit lab and the training lab: a round brush with a soft edge paints
  // `ink` (grid x grid values in [0, 1]) on the canvas `pad`, one segment per pointer move.
  // onStroke() runs after each move (redraw soon), onLift() when the pointer is lifted.
  function drawingPad(pad, grid, radius, ink, onStroke, onLift) {
    var last = null, pen = null;
    function stamp(p, q) {
      var x0 = Math.max(0, Math.floor(Math.min(p[0], q[0]) - radius - 1)), x1 = Math.min(grid - 1, Math.ceil(Math.max(p[0], q[0]) + radius + 1));
      var y0 = Math.max(0, Math.floor(Math.min(p[1], q[1]) - radius - 1)), y1 = Math.min(grid - 1, Math.ceil(Math.max(p[1], q[1]) + radius + 1));
      var dx = q[0] - p[0], dy = q[1] - p[1], len2 = dx * dx + dy * dy;
      for (var y = y0; y <= y1; y++) for (var x = x0; x <= x1; x++) {
        // the distance from the cell's centre to the segment p-q decides how much ink it gets
        var cx = x + 0.5, cy = y + 0.5, t = len2 > 0 ? Math.max(0, Math.min(1, ((cx - p[0]) * dx + (cy - p[1]) * dy) / len2)) : 0;
        var ex = cx - p[0] - t * dx, ey = cy - p[1] - t * dy, v = Math.max(0, Math.min(1, radius + 0.5 - Math.sqrt(ex * ex + ey * ey)));
        if (v > ink[y * grid + x]) ink[y * grid + x] = v;
      }
    }
    function at(e) {
      var rect = pad.getBoundingClientRect();
      return [(e.clientX - rect.left) / rect.width * grid, (e.clientY - rect.top) / rect.height * grid];
    }
    pad.addEventListener("pointerdown", function (e) {
      if (e.button > 0) return;
      e.preventDefault();
      try { pad.setPointerCapture(e.pointerId); } catch (err) { /* a synthetic event has no pointer to capture */ }
      pen = e.pointerId; last = at(e); stamp(last, last); onStroke();
    });
    pad.addEventListener("pointermove", function (e) {
      if (pen !== e.pointerId) return;
      var moves = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      (moves.length ? moves : [e]).forEach(function (m) { var q = at(m); stamp(last, q); last = q; });
      onStroke();
    });
    function lift(e) { if (pen === e.pointerId) { pen = null; onLift(); } }
    pad.addEventListener("pointerup", lift);
    pad.addEventListener("pointercancel", lift);
  }

  function percent(p) { return (100 * p).toFixed(1) + " %"; }

  // The ten probability bars of a prediction, one row per digit. show(probs) fills them (ten
  // numbers in [0, 1], or null to empty them) and marks the most likely digit's row.
  function probabilityBars() {
    var element = el("div", { "class": "scnn-bars" }), rows = [];
    for (var d = 0; d < 10; d++) {
      var fill = el("div", { "class": "scnn-bar" }), value = el("span", { "class": "scnn-p", text: "–" });
      var row = el("div", { "class": "scnn-bar-row" }, [el("span", { "class": "scnn-digit", text: String(d) }),
        el("div", { "class": "scnn-track", "aria-hidden": "true" }, [fill]), value]);
      element.appendChild(row);
      rows.push({ row: row, fill: fill, value: value });
    }
    function show(probs) {
      var best = probs ? probs.indexOf(Math.max.apply(null, probs)) : -1;
      rows.forEach(function (b, j) {
        b.fill.style.width = probs ? (100 * probs[j]).toFixed(2) + "%" : "0";
        b.value.textContent = probs ? percent(probs[j]) : "–";
        b.row.classList.toggle("scnn-top", j === best);
      });
    }
    return { element: element, show: show };
  }

  return { el: el, payload: payload, safely: safely, drawingPad: drawingPad, percent: percent, probabilityBars: probabilityBars };
})();
