"""The course's demos as HTML and JavaScript: they run in the reader's browser, with no kernel.

The book bakes these outputs into its pages, so the demos stay interactive in the static book;
JupyterLab and Colab show them as plain HTML output (no widget extension). The JavaScript and
CSS are real files in ``cnnkit/static`` (package data, so a pip install has them too), inlined
into the output, which therefore loads nothing from another site.

* :func:`kernel_explorer`, :func:`pooling_explorer`: the explorers of chapters 1 and 2, with
  the controls of their ipywidgets versions in :mod:`cnnkit.explorers`.
* :func:`digit_lab`: chapter 8's digit lab, the trained reference model in the browser (its
  Python side, preprocessing and weight export, is :mod:`cnnkit.digitlab`). It embeds the
  exported weights (under a megabyte), so only the page that shows it carries them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from importlib import resources

import numpy as np

from cnnkit.explorers import KERNEL_SLIDERS, POOLING_SLIDERS
from cnnkit.kernels import KERNEL_PRESETS, KERNEL_SIZES, MAX_KERNEL_VALUE
from cnnkit.plots import HIGHLIGHT, NEGATIVE, POSITIVE
from cnnkit.scratch import POOL_MODES, WORKED_POOLING_MAP

_counter = itertools.count()
#: The script every demo's output loads before its own: ``SimpleCNNDom``, the helpers they share,
#: and the style of what those helpers build.
SHARED_SCRIPT, SHARED_STYLE = "dom.js", "dom.css"


def _asset(name: str) -> str:
    """A file of ``cnnkit/static`` (shipped with the package, so a pip install has it too)."""
    return resources.files("cnnkit").joinpath("static", name).read_text(encoding="utf-8")


def _demo_html(kind: str, data: dict, classes: str, style: str, scripts: tuple[str, ...], start: str):
    """``<div>`` holding ``data`` as JSON, then the style (``dom.css`` first), ``dom.js`` (the
    helpers every demo shares) and the scripts (files of ``cnnkit/static``), and a call of
    ``start(root)`` on the div. The JSON cannot end its script tag: every ``</`` in it is escaped."""
    from IPython.display import HTML

    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    uid = f"scnn-{kind}-{next(_counter)}-{hashlib.sha1(payload.encode()).hexdigest()[:8]}"
    code = "\n".join(_asset(name) for name in (SHARED_SCRIPT, *scripts))
    markup = (
        f'<div class="{classes} mathjax_ignore" id="{uid}" data-kind="{kind}">'
        f"<noscript>This interactive demo needs JavaScript.</noscript>"
        f'<script type="application/json" class="scnn-data">{payload}</script></div>'
        f"<style>{_asset(SHARED_STYLE)}{_asset(style)}</style>"
        f"<script>{code}\n(function () {{ var root = document.getElementById({json.dumps(uid)});"
        f" if (root) {start}(root); }})();</script>"
    )
    return HTML(markup)


def _explorer_html(kind: str, data: dict):
    classes = f"scnn-explorer scnn-{kind}-explorer"
    return _demo_html(kind, data, classes, "explorers.css", ("explorers.js",), f"SimpleCNNExplorers.{kind}")


def _sliders(sliders: dict[str, tuple[int, int, int]]) -> dict:
    """The ranges and first values of an explorer's sliders, the same as its ipywidgets version's."""
    return {name: dict(min=low, max=high, value=start) for name, (low, high, start) in sliders.items()}


def kernel_explorer_data(images, labels=None) -> dict:
    """What the JavaScript kernel explorer embeds: digits as bytes, the presets as text."""
    images = np.asarray(images, dtype=float)
    labels = list(range(len(images))) if labels is None else [int(v) for v in labels]
    return dict(
        digits=[
            dict(label=lab, pixels=np.rint(img * 255).astype(int).tolist())
            for lab, img in zip(labels, images)
        ],
        presets=[dict(name=n, text=t) for n, t in KERNEL_PRESETS.items()],
        sizes=list(KERNEL_SIZES),
        sliders=_sliders(KERNEL_SLIDERS),
        max_value=MAX_KERNEL_VALUE,
        colors=dict(negative=NEGATIVE, positive=POSITIVE, highlight=HIGHLIGHT),
    )


def pooling_explorer_data(images=None, labels=None) -> dict:
    """What the JavaScript pooling explorer embeds: the worked example and the digits."""
    maps = [dict(name="worked example 4×4", values=WORKED_POOLING_MAP.tolist(), scale=1)]
    if images is not None:
        images = np.asarray(images, dtype=float)
        labels = list(range(len(images))) if labels is None else [int(v) for v in labels]
        maps += [
            dict(name=f"digit {lab}", values=np.rint(img * 255).astype(int).tolist(), scale=255)
            for lab, img in zip(labels, images)
        ]
    return dict(
        maps=maps,
        sliders=_sliders(POOLING_SLIDERS),
        modes=list(POOL_MODES),
        colors=dict(negative=NEGATIVE, positive=POSITIVE, highlight=HIGHLIGHT),
    )


def kernel_explorer(images, labels=None):
    """The kernel explorer as HTML that runs in the browser (an ``IPython.display.HTML``).

    Digits are embedded as bytes and divided by 255 in the page, like the Python version."""
    return _explorer_html("kernel", kernel_explorer_data(images, labels))


def pooling_explorer(images=None, labels=None):
    """The pooling explorer as HTML that runs in the browser (an ``IPython.display.HTML``)."""
    return _explorer_html("pooling", pooling_explorer_data(images, labels))


def digit_lab(images, labels, directory=None):
    """Chapter 8's digit lab as HTML that runs in the browser (an ``IPython.display.HTML``).

    The reader draws a digit; the page preprocesses it like MNIST, runs the reference Simple
    CNN on it in plain JavaScript and shows the ten probabilities and the feature maps of both
    blocks. ``images`` (28x28, standardised or in [0, 1]) and ``labels`` are the test digits its
    buttons load. The weights are the exported ones (:func:`cnnkit.digitlab.read_exported`):
    stale weights, exported from another checkpoint than the reference, are refused.
    """
    from cnnkit import digitlab

    data = digitlab.payload(images, labels, directory)
    scripts = ("simplecnn.js", "digitlab.js")  # the network, then the lab that draws it
    return _demo_html("digitlab", data, "scnn-lab", "digitlab.css", scripts, "SimpleCNNLab.start")
