"""Tests of cnnkit.webdemos: the demos as HTML and JavaScript that the book shows, whose
JavaScript and CSS ship as package data (cnnkit/static)."""

import json
import re
from importlib import resources

import numpy as np
import pytest

from cnnkit import webdemos
from cnnkit.explorers import WORKED_POOLING_MAP
from cnnkit.kernels import KERNEL_PRESETS

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


def test_html_payload_cannot_close_its_script_tag():
    markup = webdemos._explorer_html("kernel", {"text": "</script><script>alert(1)</script>"}).data
    assert "</script><script>alert(1)" not in markup
    assert _payload(markup)["text"] == "</script><script>alert(1)</script>"


def test_the_javascript_and_css_are_package_data():
    for name in ("explorers.js", "explorers.css"):
        text = resources.files("cnnkit").joinpath("static", name).read_text(encoding="utf-8")
        assert len(text) > 500
    assert "SimpleCNNExplorers" in webdemos._asset("explorers.js")
