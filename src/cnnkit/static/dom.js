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

  return { el: el, payload: payload, safely: safely };
})();
