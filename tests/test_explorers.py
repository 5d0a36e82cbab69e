"""Tests of the convolution and pooling arithmetic and the explorers in src/explorers.py."""

import itertools
import json
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import explorers as ex

RNG = np.random.default_rng(0)


# --- output sizes --------------------------------------------------------------------------------

@pytest.mark.parametrize("size,k,stride,padding,dilation",
                         list(itertools.product((5, 12, 28), (1, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2))))
def test_conv_output_size_matches_nn_conv2d(size, k, stride, padding, dilation):
    layer = nn.Conv2d(1, 1, k, stride=stride, padding=padding, dilation=dilation)
    if dilation * (k - 1) + 1 > size + 2 * padding:
        with pytest.raises(ValueError, match="larger than the padded input"):
            ex.conv_output_size(size, k, stride, padding, dilation)
        return
    out = layer(torch.zeros(1, 1, size, size))
    assert out.shape[-1] == ex.conv_output_size(size, k, stride, padding, dilation)


def test_simple_cnn_sizes():
    assert ex.conv_output_size(28, 5) == 24
    assert ex.pool_output_size(24, 2) == 12
    assert ex.conv_output_size(12, 5) == 8
    assert ex.pool_output_size(8, 2) == 4
    assert ex.conv_size_formula(28, 5).endswith("= 24")
    assert ex.conv_size_formula(28, 3, stride=2, padding=1) == \
        "⌊(28 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = ⌊27 / 2⌋ + 1 = 14"
    assert ex.pool_size_formula(24, 3, 2) == "⌊(24 − 3) / 2⌋ + 1 = ⌊21 / 2⌋ + 1 = 11"


@pytest.mark.parametrize("kwargs,match", [
    (dict(size=4, kernel_size=5), "kernel \\(5\\) is larger than the padded input \\(4 \\+ 2\\*0 = 4\\)"),
    (dict(size=5, kernel_size=3, dilation=3), "dilated to span 7"),
    (dict(size=28, kernel_size=3, stride=0), "stride must be at least 1"),
    (dict(size=28, kernel_size=3, padding=-1), "padding must be 0 or more"),
    (dict(size=28, kernel_size=0), "kernel_size must be at least 1"),
    (dict(size=28, kernel_size=3, dilation=0), "dilation must be at least 1"),
    (dict(size=28, kernel_size=2.5), "kernel_size must be an integer"),
])
def test_bad_settings_get_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ex.conv_output_size(**kwargs)


# --- convolution ---------------------------------------------------------------------------------

def test_worked_1d_example():
    assert ex.conv1d([3, 2, 1, 0], [1, 0, -1]).tolist() == [3, 2, -2, -2, -1, 0]
    steps = ex.conv1d_steps([3, 2, 1, 0], [1, 0, -1])
    assert [s["value"] for s in steps] == [3, 2, -2, -2, -1, 0]
    assert steps[2]["products"] == [-3, 0, 1]
    text = ex.describe_conv1d([3, 2, 1, 0], [1, 0, -1])
    assert "y[2] = 3·(-1) + 2·0 + 1·1 = -2" in text


def test_conv1d_matches_np_convolve():
    for _ in range(100):
        x, h = RNG.normal(size=RNG.integers(1, 20)), RNG.normal(size=RNG.integers(1, 7))
        assert np.allclose(ex.conv1d(x, h), np.convolve(x, h))
    with pytest.raises(ValueError, match="non-empty 1D"):
        ex.conv1d([], [1])


@pytest.mark.parametrize("stride,padding,dilation", list(itertools.product((1, 2, (2, 3)), (0, 2, (1, 0)), (1, 2))))
@pytest.mark.parametrize("c_in,c_out,k", [(1, 1, 3), (3, 4, 5), (2, 3, (3, 2))])
def test_conv2d_matches_torch(stride, padding, dilation, c_in, c_out, k):
    kh, kw = (k, k) if isinstance(k, int) else k
    x = RNG.normal(size=(2, c_in, 13, 11))
    w = RNG.normal(size=(c_out, c_in, kh, kw))
    b = RNG.normal(size=c_out)
    expected = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b),
                        stride=stride, padding=padding, dilation=dilation).numpy()
    out = ex.conv2d(x, w, b, stride, padding, dilation)
    assert out.shape == expected.shape
    assert np.allclose(out, expected)
    assert np.allclose(ex.conv2d(x[0], w, b, stride, padding, dilation), expected[0])  # (C, H, W)


def test_conv2d_2d_kernel_and_errors():
    img = RNG.normal(size=(7, 7))
    k = RNG.normal(size=(3, 3))
    expected = F.conv2d(torch.tensor(img)[None, None], torch.tensor(k)[None, None], padding=1)[0, 0]
    assert np.allclose(ex.conv2d(img, k, padding=1), expected.numpy())
    with pytest.raises(ValueError, match="3 channels but the weight expects 2"):
        ex.conv2d(np.zeros((3, 5, 5)), np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        ex.conv2d(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="stride must be at least 1"):
        ex.conv2d(img, k, stride=0)


def test_conv_window_explains_one_output():
    img = RNG.random((10, 10))
    k = RNG.normal(size=(3, 3))
    out = ex.conv2d(img, k, stride=2, padding=1)
    for r, c in [(0, 0), (2, 3), (4, 4)]:
        win = ex.conv_window(img, k, 2, 1, r, c)
        assert (win["top"], win["left"]) == (2 * r, 2 * c)
        assert np.isclose(win["value"], out[r, c])
        assert np.allclose(win["products"], win["patch"] * k)
    with pytest.raises(ValueError, match="outside the 5x5 output"):
        ex.conv_window(img, k, 2, 1, 5, 0)


# --- pooling ---------------------------------------------------------------------------------------

def test_worked_pooling_example():
    assert ex.pool2d(ex.WORKED_POOLING_MAP, 2).tolist() == [[6, 5], [3, 7]]
    assert ex.pool2d(ex.WORKED_POOLING_MAP, 2, mode="average").tolist() == [[3.5, 2], [1.5, 3.5]]
    win = ex.pool_window(ex.WORKED_POOLING_MAP, 2, 2, "max", 1, 1)
    assert win["value"] == 7 and win["argmax"] == (3, 3)


@pytest.mark.parametrize("k,stride", list(itertools.product((1, 2, 3), (None, 1, 2, 3))))
def test_pool2d_and_backward_match_torch(k, stride):
    x = RNG.normal(size=(2, 3, 10, 9))
    t = torch.tensor(x, requires_grad=True)
    out = F.max_pool2d(t, k, stride)
    assert np.allclose(ex.pool2d(x, k, stride, "max"), out.detach().numpy())
    assert np.allclose(ex.pool2d(x, k, stride, "average"), F.avg_pool2d(torch.tensor(x), k, stride).numpy())
    upstream = RNG.normal(size=tuple(out.shape))
    out.backward(torch.tensor(upstream))
    assert np.allclose(ex.max_pool2d_backward(x, upstream, k, stride), t.grad.numpy())


def test_pooling_errors():
    with pytest.raises(ValueError, match="mode must be 'max' or 'average'"):
        ex.pool2d(np.zeros((4, 4)), 2, mode="median")
    with pytest.raises(ValueError, match="larger than the padded input"):
        ex.pool2d(np.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match="grad_out must have the pooled shape"):
        ex.max_pool2d_backward(np.zeros((4, 4)), np.zeros((3, 3)), 2)


def test_shift_and_relative_change():
    img = np.arange(16.0).reshape(4, 4)
    assert ex.shift(img, 0, 1)[:, 1:].tolist() == img[:, :-1].tolist()
    assert (ex.shift(img, 0, 1)[:, 0] == 0).all()
    assert ex.shift(img, -1, 0)[:-1].tolist() == img[1:].tolist()
    assert ex.relative_change(img, img) == 0
    with pytest.raises(ValueError):
        ex.relative_change(np.zeros(3), np.ones(3))


# --- kernels typed by the reader --------------------------------------------------------------------

def test_presets_parse_and_have_the_classic_properties():
    k = ex.kernel_presets()
    assert set(k) == set(ex.KERNEL_PRESETS)
    for name in ("box blur 3×3", "Gaussian blur 3×3", "Gaussian blur 5×5", "sharpen", "identity"):
        assert np.isclose(k[name].sum(), 1), name
    for name in ("Sobel x (vertical edges)", "Sobel y (horizontal edges)", "outline (Laplacian)"):
        assert k[name].sum() == 0, name
    assert k["Gaussian blur 5×5"].shape == (5, 5)
    for name, values in k.items():
        assert np.array_equal(ex.parse_kernel(ex.format_kernel(values)), values), name


@pytest.mark.parametrize("text,expected", [
    ("1 2 3\n4 5 6\n7 8 9", np.arange(1, 10).reshape(3, 3)),
    ("[1, 2, 3]; [4,5,6]; [7, 8, 9]", np.arange(1, 10).reshape(3, 3)),
    ("  1/9 1/9 1/9 \n\n 1/9 1/9 1/9\n1/9 1/9 1/9\n", np.full((3, 3), 1 / 9)),
    ("-0.5 +.5 1e-1\n0 0 0\n0 0 0", np.array([[-0.5, 0.5, 0.1], [0, 0, 0], [0, 0, 0]])),
])
def test_parse_kernel_reads_numbers(text, expected):
    assert np.allclose(ex.parse_kernel(text), expected)


@pytest.mark.parametrize("text,match", [
    ("", "the kernel is empty"),
    ("1 2\n3 4", "a 2×2 kernel is not offered here: type 3×3 or 5×5"),
    ("1 2 3\n4 5\n6 7 8", "row 2 has 2 numbers but there are 3 rows"),
    ("1 1 1\n1 x 1\n1 1 1", "'x' is not a number"),
    ("__import__('os').system('echo hi') 0 0\n0 0 0\n0 0 0", "is not a number"),
    ("2**8 0 0\n0 0 0\n0 0 0", "'2\\*\\*8' is not a number"),
    ("nan 0 0\n0 0 0\n0 0 0", "'nan' is not a number"),
    ("inf 0 0\n0 0 0\n0 0 0", "'inf' is not a number"),
    ("1e999 0 0\n0 0 0\n0 0 0", "too large"),
    ("1/0 0 0\n0 0 0\n0 0 0", "divides by zero"),
    ("1_000 0 0\n0 0 0\n0 0 0", "is not a number"),
])
def test_parse_kernel_rejects_malformed_input_with_a_message(text, match):
    with pytest.raises(ValueError, match=match):
        ex.parse_kernel(text)


def test_parse_kernel_never_evaluates(monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("parse_kernel must not evaluate text")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert ex.parse_kernel("1 0 0\n0 1 0\n0 0 1").trace() == 3
    with pytest.raises(ValueError):
        ex.parse_kernel("(1).__class__ 0 0\n0 0 0\n0 0 0")


# --- data for the explorers -------------------------------------------------------------------------

def test_one_per_class():
    images = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
    labels = np.array([1, 0, 1, 2, 0, 2])
    picked, classes = ex.one_per_class(images, labels, classes=range(3))
    assert classes == [0, 1, 2]
    assert np.allclose(picked, images[[1, 0, 3]] / 255)
    with pytest.raises(ValueError, match="no image of class 5"):
        ex.one_per_class(images, labels, classes=[5])


# --- the ipywidgets explorers (constructed and driven from Python, as a front end would) ----------

@pytest.fixture
def digits():
    return RNG.random((3, 28, 28)), [4, 5, 6]


def test_kernel_explorer_updates(digits):
    images, labels = digits
    e = ex.KernelExplorer(images, labels)
    assert e.kernel.value == "identity" and e.result.shape == (26, 26)
    assert np.allclose(e.result, images[0, 1:-1, 1:-1])
    assert "= 26" in e.formula.value
    e.stride.value = 2
    assert e.result.shape == (13, 13) and "⌊25 / 2⌋ + 1 = 13" in e.formula.value
    assert e.row.max == 12 and e.col.max == 12
    e.padding.value = 1
    assert e.result.shape == (14, 14)
    e.digit.value = 2
    assert np.allclose(e.result, ex.conv2d(images[2], ex.parse_kernel(ex.KERNEL_PRESETS["identity"]),
                                           stride=2, padding=1))
    e.kernel.value = "Gaussian blur 5×5"
    assert e.kernel_values.shape == (5, 5) and e.text.value == ex.KERNEL_PRESETS["Gaussian blur 5×5"]
    assert e.result.shape == (13, 13)
    e.row.value, e.col.value = 3, 4
    win = e.window_info
    assert (win["top"], win["left"]) == (6, 8) and np.isclose(win["value"], e.result[3, 4])
    assert "output[3, 4]" in e.window.value


def test_kernel_explorer_typed_kernels(digits):
    images, labels = digits
    e = ex.KernelExplorer(images, labels)
    e.text.value = "1 2 3\n4 5\n6 7 8"
    assert "row 2 has 2 numbers" in e.message.value and "⚠" in e.message.value
    assert e.kernel.value == "identity"  # the last kernel that worked is kept
    e.text.value = "0 0 0\n0 0 0\n0 0 2"
    assert e.message.value == "" and e.kernel.value == ex.TYPED
    assert np.allclose(e.result, 2 * images[0, 2:, 2:])
    e.text.value = "-1 0 1\n-2 0 2\n-1 0 1"
    assert e.kernel.value == "Sobel x (vertical edges)"  # typing a preset's values selects it
    e.text.value = "import os"
    assert "is not a number" in e.message.value
    e.apply.click()  # the button reads the box again: still the same message, no exception
    assert "is not a number" in e.message.value


def test_pooling_explorer_updates(digits):
    images, labels = digits
    e = ex.PoolingExplorer(images, labels)
    assert e.result.tolist() == [[6, 5], [3, 7]]
    e.mode.value = "average"
    assert e.result.tolist() == [[3.5, 2], [1.5, 3.5]]
    e.size.value, e.stride.value = 3, 1
    assert e.result.shape == (2, 2) and "⌊1 / 1⌋ + 1 = 2" in e.formula.value
    e.source.value = "digit 5"
    assert e.result.shape == (26, 26)
    e.size.value = e.stride.value = 2
    e.mode.value = "max"
    assert np.allclose(e.result, ex.pool2d(images[1], 2))
    e.row.value, e.col.value = 13, 13
    assert e.window_info["top"] == 26 and "output[13, 13]" in e.window.value


# --- the HTML/JavaScript explorers ------------------------------------------------------------------

def _payload(markup):
    m = re.search(r'<script type="application/json" class="scnn-data">(.*?)</script>', markup, re.S)
    return json.loads(m.group(1))


def test_html_explorers_are_self_contained(digits):
    images, labels = digits
    for markup, kind in ((ex.kernel_explorer_html(images, labels).data, "kernel"),
                         (ex.pooling_explorer_html(images, labels).data, "pooling")):
        assert f'class="scnn-explorer scnn-{kind}-explorer' in markup
        assert "require(" not in markup and "eval(" not in markup and "new Function" not in markup
        assert not re.search(r"<script[^>]+src=", markup)  # no external scripts
        assert not re.search(r"https?://", markup)  # no CDN, no network
        assert f"SimpleCNNExplorers.{kind}(root)" in markup
    data = _payload(ex.kernel_explorer_html(images, labels).data)
    assert [d["label"] for d in data["digits"]] == labels
    assert np.allclose(np.array(data["digits"][0]["pixels"]) / 255, images[0], atol=0.5 / 255)
    assert [p["name"] for p in data["presets"]] == list(ex.KERNEL_PRESETS)
    pooled = _payload(ex.pooling_explorer_html(images, labels).data)
    assert pooled["maps"][0]["values"] == ex.WORKED_POOLING_MAP.tolist()
    assert len(pooled["maps"]) == 1 + len(labels)


def test_html_payload_cannot_close_its_script_tag():
    markup = ex._explorer_html("kernel", {"text": "</script><script>alert(1)</script>"}).data
    assert "</script><script>alert(1)" not in markup
    assert _payload(markup)["text"] == "</script><script>alert(1)</script>"


def test_python_explorers_render_in_a_kernel():
    """Run the explorers in a real Jupyter kernel, as JupyterLab or Colab would, then change
    controls from the kernel side: the widgets' state (what the front end draws) must follow,
    and the figure must land in the explorer's Output widget."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import numpy as np, explorers as ex\n"
        "images = np.random.default_rng(0).random((2, 28, 28))\n"
        "k = ex.KernelExplorer(images, [3, 8])\nk",
        "k.kernel.value = 'Sobel y (horizontal edges)'\nk.stride.value = 2\nk.text.value = 'oops'",
        "p = ex.PoolingExplorer(images, [3, 8])\np",
        "p.mode.value = 'average'\np.size.value = 3",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for i in (0, 2):  # displaying an explorer shows its widget
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   for o in nb.cells[i].outputs), nb.cells[i].outputs
    states = [m["state"] for m in nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()]
    html = " ".join(s.get("value", "") for s in states if s.get("_model_name") == "HTMLModel")
    assert "⌊25 / 2⌋ + 1 = 13" in html  # stride 2 reached the formula the page shows
    assert "Could not read the kernel: &#x27;oops&#x27; is not a number" in html
    assert "average = " in html and "⌊(4 − 3) / 2⌋" in html
    figures = [o for s in states if s.get("_model_name") == "OutputModel" for o in s.get("outputs", [])
               if "image/png" in o.get("data", {})]
    assert len(figures) == 2  # one current figure in each explorer's Output widget
