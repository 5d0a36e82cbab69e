"""Tests of cnnkit.webdemos: the demos as HTML and JavaScript that the book shows, whose
JavaScript and CSS ship as package data (cnnkit/static)."""

import base64
import json
import re
from importlib import resources

import numpy as np
import pytest

from cnnkit import explorers, webdemos
from cnnkit.kernels import KERNEL_PRESETS
from cnnkit.scratch import WORKED_POOLING_MAP

RNG = np.random.default_rng(0)


@pytest.fixture
def digits():
    return RNG.random((3, 28, 28)), [4, 5, 6]


# --- the HTML/JavaScript explorers ------------------------------------------------------------------


def _payload(markup):
    m = re.search(r'<script type="application/json" class="scnn-data">(.*?)</script>', markup, re.S)
    return json.loads(m.group(1))


def test_html_explorers_are_self_contained(digits):
    images, labels = digits
    for markup, kind in (
        (webdemos.kernel_explorer(images, labels).data, "kernel"),
        (webdemos.pooling_explorer(images, labels).data, "pooling"),
    ):
        assert f'class="scnn-explorer scnn-{kind}-explorer' in markup
        assert "require(" not in markup and "eval(" not in markup and "new Function" not in markup
        assert not re.search(r"<script[^>]+src=", markup)  # no external scripts
        assert not re.search(r"https?://", markup)  # no CDN, no network
        assert f"SimpleCNNExplorers.{kind}(root)" in markup
    data = _payload(webdemos.kernel_explorer(images, labels).data)
    assert [d["label"] for d in data["digits"]] == labels
    assert np.allclose(np.array(data["digits"][0]["pixels"]) / 255, images[0], atol=0.5 / 255)
    assert [p["name"] for p in data["presets"]] == list(KERNEL_PRESETS)
    pooled = _payload(webdemos.pooling_explorer(images, labels).data)
    assert pooled["maps"][0]["values"] == WORKED_POOLING_MAP.tolist()
    assert len(pooled["maps"]) == 1 + len(labels)


def test_html_explorers_have_the_sliders_of_the_ipywidgets_explorers(digits):
    images, labels = digits
    kernel, pooling = explorers.KernelExplorer(images, labels), explorers.PoolingExplorer(images, labels)
    for data, widgets in (
        (webdemos.kernel_explorer_data(images, labels), {"stride": kernel.stride, "padding": kernel.padding}),
        (webdemos.pooling_explorer_data(images, labels), {"window": pooling.size, "stride": pooling.stride}),
    ):
        assert data["sliders"] == {n: dict(min=w.min, max=w.max, value=w.value) for n, w in widgets.items()}


def test_every_demo_loads_the_shared_helpers_before_its_own_scripts(digits, lab_markup):
    images, labels = digits
    shared = webdemos._asset(webdemos.SHARED_SCRIPT)
    assert "window.SimpleCNNDom" in shared
    for markup, own in (
        (webdemos.kernel_explorer(images, labels).data, "explorers.js"),
        (webdemos.pooling_explorer(images, labels).data, "explorers.js"),
        (lab_markup, "digitlab.js"),
    ):
        assert markup.count(shared) == 1
        assert markup.index(shared) < markup.index(webdemos._asset(own))


def test_html_payload_cannot_close_its_script_tag():
    markup = webdemos._explorer_html("kernel", {"text": "</script><script>alert(1)</script>"}).data
    assert "</script><script>alert(1)" not in markup
    assert _payload(markup)["text"] == "</script><script>alert(1)</script>"


def test_the_javascript_and_css_are_package_data():
    for name in (
        "dom.js",
        "dom.css",
        "explorers.js",
        "explorers.css",
        "simplecnn.js",
        "digitlab.js",
        "digitlab.css",
    ):
        text = resources.files("cnnkit").joinpath("static", name).read_text(encoding="utf-8")
        assert len(text) > 500
    assert "SimpleCNNExplorers" in webdemos._asset("explorers.js")


# --- the digit lab (chapter 8) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_markup():
    images = RNG.random((3, 28, 28))
    return webdemos.digit_lab(images, [4, 5, 6]).data


def test_digit_lab_is_self_contained(lab_markup):
    from cnnkit import checkpoints, digitlab

    assert 'class="scnn-lab mathjax_ignore"' in lab_markup and "SimpleCNNLab.start(root)" in lab_markup
    for forbidden in ("require(", "eval(", "new Function", "fetch(", "XMLHttpRequest", "import("):
        assert forbidden not in lab_markup, forbidden
    assert not re.search(r"<script[^>]+src=", lab_markup)  # no external scripts
    assert not re.search(r"<link[^>]+href=", lab_markup)  # no external style sheets
    assert not re.search(r"https?://", lab_markup)  # no CDN, no network
    # the weights travel inside the page, as base64 in the JSON payload
    data = _payload(lab_markup)
    manifest, weights = digitlab.read_exported()
    assert base64.b64decode(data["weights"]) == weights
    assert data["checkpoint_sha256"] == manifest["checkpoint_sha256"] == checkpoints.REFERENCE_SHA256
    assert [e["label"] for e in data["examples"]] == [4, 5, 6]
    # the page stays light: the weights (base64) plus a few tens of kB of script, style and digits
    assert len(lab_markup) < 4 / 3 * len(weights) + 100_000


def test_digit_lab_payload_cannot_close_its_script_tag(lab_markup):
    # two script elements: the JSON payload and the lab's code; base64 and escaped JSON never
    # contain "</", so nothing inside them can end a script tag early
    assert lab_markup.count("</script>") == 2
    payload = re.search(r'<script type="application/json" class="scnn-data">(.*?)</script>', lab_markup, re.S)
    assert "</" not in payload.group(1)
    for name in (webdemos.SHARED_SCRIPT, "simplecnn.js", "digitlab.js"):
        assert "</script" not in webdemos._asset(name).lower()
    assert "</style" not in webdemos._asset("digitlab.css").lower()


def test_digit_lab_refuses_stale_weights(tmp_path):
    from cnnkit import digitlab

    manifest, weights = digitlab.read_exported()
    (tmp_path / "digitlab-weights.bin").write_bytes(weights)
    stale = dict(manifest, checkpoint_sha256="0" * 64)
    (tmp_path / "digitlab-weights.json").write_text(json.dumps(stale))
    with pytest.raises(ValueError, match="stale"):
        webdemos.digit_lab(RNG.random((1, 28, 28)), [1], directory=tmp_path)
