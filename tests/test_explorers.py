"""Tests of cnnkit.explorers: the ipywidgets explorers, driven from Python as a front end would."""

import numpy as np
import pytest

from cnnkit import explorers as ex
from cnnkit.kernels import KERNEL_PRESETS, parse_kernel
from cnnkit.scratch import conv2d, pool2d

RNG = np.random.default_rng(0)


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
    assert np.allclose(
        e.result, conv2d(images[2], parse_kernel(KERNEL_PRESETS["identity"]), stride=2, padding=1)
    )
    e.kernel.value = "Gaussian blur 5×5"
    assert e.kernel_values.shape == (5, 5) and e.text.value == KERNEL_PRESETS["Gaussian blur 5×5"]
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
    assert np.allclose(e.result, pool2d(images[1], 2))
    e.row.value, e.col.value = 13, 13
    assert e.window_info["top"] == 26 and "output[13, 13]" in e.window.value


def test_python_explorers_render_in_a_kernel():
    """Run the explorers in a real Jupyter kernel, as JupyterLab or Colab would, then change
    controls from the kernel side: the widgets' state (what the front end draws) must follow,
    and the figure must land in the explorer's Output widget."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import numpy as np\nfrom cnnkit import explorers as ex\n"
        "images = np.random.default_rng(0).random((2, 28, 28))\n"
        "k = ex.KernelExplorer(images, [3, 8])\nk",
        "k.kernel.value = 'Sobel y (horizontal edges)'\nk.stride.value = 2\nk.text.value = 'oops'",
        "p = ex.PoolingExplorer(images, [3, 8])\np",
        "p.mode.value = 'average'\np.size.value = 3",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for i in (0, 2):  # displaying an explorer shows its widget
        assert any(
            "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in nb.cells[i].outputs
        ), nb.cells[i].outputs
    states = [
        m["state"]
        for m in nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    ]
    html = " ".join(s.get("value", "") for s in states if s.get("_model_name") == "HTMLModel")
    assert "⌊25 / 2⌋ + 1 = 13" in html  # stride 2 reached the formula the page shows
    assert "Could not read the kernel: &#x27;oops&#x27; is not a number" in html
    assert "average = " in html and "⌊(4 − 3) / 2⌋" in html
    figures = [
        o
        for s in states
        if s.get("_model_name") == "OutputModel"
        for o in s.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(figures) == 2  # one current figure in each explorer's Output widget
