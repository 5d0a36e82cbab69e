"""Tests of cnnkit.plots: plots that read well for everyone, and progress output that suits a
static page.

* the course's matplotlib style (``plots.use_style()``): the colour-blind-safe COLORS as the colour
  cycle and an opaque white background (readable on the book's dark theme); importing changes nothing;
* every figure drawn in a notebook carries a text description (from its titles, axis labels and
  legend) in its PNG, which the book's Sphinx extension (_ext/simplecnn_book.py) makes its alt text;
* without a progress bar (as the notebooks train) training prints only its per-epoch lines.
"""

import base64
import io
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import simplecnn as sc  # noqa: E402
from cnnkit import plots  # noqa: E402
from cnnkit.mnist import Splits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
import simplecnn_book  # noqa: E402


def test_importing_the_package_changes_no_global_state():
    """Importing any module leaves matplotlib's settings and IPython's formatters alone."""
    import subprocess

    code = (
        "import importlib, pkgutil, matplotlib, cnnkit\n"
        "before = dict(matplotlib.rcParams)\n"
        "for m in pkgutil.iter_modules(cnnkit.__path__):\n"
        "    if m.name != '__main__': importlib.import_module('cnnkit.' + m.name)\n"
        "import simplecnn\n"
        "changed = [k for k, v in matplotlib.rcParams.items() if str(before[k]) != str(v)]\n"
        "assert changed == [], changed\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "ok", result.stderr


def test_style_uses_the_colour_blind_safe_palette_on_white():
    plots.use_style()
    cycle = [to_hex(c["color"]) for c in matplotlib.rcParams["axes.prop_cycle"]]
    assert cycle == [c.lower() for c in plots.COLORS]
    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1])
    assert to_hex(line.get_color()) == plots.COLORS[0].lower()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    from PIL import Image

    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGBA")
    corners = [image.getpixel(p) for p in [(0, 0), (image.width - 1, image.height - 1)]]
    assert corners == [(255, 255, 255, 255)] * 2, "figures need an opaque white background"


def test_describe_figure_reads_titles_labels_and_legend():
    ax = plots.plot_history(
        [dict(epoch=1, train_loss=1.0, val_loss=1.2), dict(epoch=2, train_loss=0.5, val_loss=0.9)]
    )
    text = plots.describe_figure(ax.figure)
    plt.close(ax.figure)
    assert text == (
        "Training and validation loss: cross-entropy loss against epoch; legend: training, validation."
    )


def test_plot_history_without_validation_shows_the_recorded_test_loss():
    nan = float("nan")
    ax = plots.plot_history(
        [dict(epoch=e, train_loss=1.0 / e, val_loss=nan, test_loss=0.5 / e) for e in (1, 2)], title="t"
    )
    labels = [line.get_label() for line in ax.get_lines()]
    plt.close(ax.figure)
    assert labels == ["training", "test"]


def test_describe_figure_lists_an_image_grid_with_its_labels():
    fig = plots.show_images(torch.zeros(3, 1, 28, 28), labels=[7, 2, 1], ncols=4, title="Three digits")
    text = plots.describe_figure(fig)
    plt.close(fig)
    assert text == "Three digits. 3 images titled 7, 2, 1."


def test_describe_figure_is_empty_without_any_text():
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    assert plots.describe_figure(fig) == ""
    plt.close(fig)


def test_extension_reads_the_description_from_a_png(tmp_path):
    fig, ax = plt.subplots()
    ax.set_title("Loss × epoch → lower is better")  # not Latin-1: stored as an iTXt chunk
    path = tmp_path / "figure.png"
    fig.savefig(path, metadata={"Description": plots.describe_figure(fig)})
    plt.close(fig)
    assert simplecnn_book.png_description(path) == "Loss × epoch → lower is better."
    fig, ax = plt.subplots()
    fig.savefig(tmp_path / "plain.png")
    plt.close(fig)
    assert simplecnn_book.png_description(tmp_path / "plain.png") is None
    assert simplecnn_book.png_description(tmp_path / "missing.png") is None


def test_without_a_live_bar_training_prints_only_the_epoch_lines(capsys):
    """As the notebooks train (no ``progress``): no live bar, which a static page cannot show;
    one line per epoch."""
    x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    small = Splits(x, y, x[:64], y[:64], x[:64], y[:64])
    sc.train(sc.SimpleCNN(), small, sc.GUIDE, epochs=2, log=print)
    captured = capsys.readouterr()
    assert [line[:11] for line in captured.out.splitlines()] == ["epoch  1/2 ", "epoch  2/2 "]
    assert "batch/s" not in captured.err and "epoch 1:" not in captured.err  # no bar


def test_progress_is_a_live_bar_for_each_epoch(capsys):
    """``progress=True`` (the command line's default): tqdm's bar, text outside Jupyter, on stderr."""
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    small = Splits(x, y, x[:16], y[:16], x[:16], y[:16])
    sc.train(sc.SimpleCNN(), small, sc.GUIDE, epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1:" in err and "epoch 2:" in err and "batch/s" in err  # cleared after each epoch


def test_figures_in_a_notebook_carry_their_description():
    """End to end in a real Jupyter kernel: the PNG output of a figure holds its description."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from PIL import Image

    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "from cnnkit import plots\n"
            "plots.use_style()\n"
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots()\n"
            "ax.plot([3, 2, 1], label='loss')\n"
            "ax.set(title='A falling loss', xlabel='step', ylabel='loss')\n"
            "ax.legend()\n"
            "plt.show()"
        )
    )
    env_path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path
    try:
        nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    pngs = [o["data"]["image/png"] for o in nb.cells[0].outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 1
    image = Image.open(io.BytesIO(base64.b64decode(pngs[0])))
    assert image.text.get("Description") == "A falling loss: loss against step; legend: loss."
