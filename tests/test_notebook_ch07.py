"""Chapter 7's notebook, the three ways a reader meets it.

nbval runs the notebook as shipped: the class and the loop are the reader's to write, the checks
say "not answered yet", and every cell runs on with the course's model and loop. Here it also
runs

* with the solutions the reader can reveal (``exercises.solution("7.1")`` and ``"7.2"``) filled
  in: both checks pass, and the reader's loop trains the reader's class for an epoch on MNIST;
* with wrong versions (a layer missing, dropout 0.40, ReLU before batch norm, ``zero_grad``
  missing): each check fails with a message that names the difference.
"""

import copy
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cnnkit import exercises
from cnnkit.exercises import ch07_build, ch07_loop

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATH = NOTEBOOKS / "07-simple-cnn-mnist.ipynb"
MODEL_CHECK = '\n\nwrote_model = exercises.check("7.1", SimpleCNN)'
LOOP_CHECK = '\n\nwrote_loop = exercises.check("7.2", train_epoch)'


def _cell_index(nb, marker: str) -> int:
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and marker in c.source]
    assert len(found) == 1, f"the notebook should have one cell with {marker!r}"
    return found[0]


def _fill(nb, marker: str, answer: str):
    """The notebook with the reader's part of the cell that holds ``marker`` replaced by ``answer``
    (the check and what follows it stay)."""
    nb = copy.deepcopy(nb)
    cell = nb.cells[_cell_index(nb, marker)]
    cell.source = answer.strip() + marker + cell.source.split(marker, 1)[1]
    return nb


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _client(nb):
    return NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(PATH, as_version=4)


def test_the_shipped_notebook_leaves_the_class_and_the_loop_to_the_reader(notebook):
    model_cell = notebook.cells[_cell_index(notebook, MODEL_CHECK)].source
    loop_cell = notebook.cells[_cell_index(notebook, LOOP_CHECK)].source
    assert "conv1=...," in model_cell and "nn.Conv2d" not in model_cell.split(MODEL_CHECK)[0]
    assert "zero_grad" not in loop_cell.split(LOOP_CHECK)[0] and "loss.backward" not in loop_cell
    assert "sc.FastDropout" not in json.dumps(notebook)


@pytest.mark.slow
def test_with_the_solutions_the_readers_loop_trains_the_readers_class(notebook):
    nb = _fill(notebook, MODEL_CHECK, exercises.get("7.1").solution)
    nb = _fill(nb, LOOP_CHECK, exercises.get("7.2").solution)
    _client(nb).execute()
    model_out = _text(nb.cells[_cell_index(nb, MODEL_CHECK)])
    loop_out = _text(nb.cells[_cell_index(nb, LOOP_CHECK)])
    assert "✔ Exercise 7.1" in model_out and "instead" not in model_out, model_out
    assert "✔ Exercise 7.2" in loop_out and "instead" not in loop_out, loop_out
    training = _text(nb.cells[_cell_index(nb, "step_losses += epoch_loop(")])
    assert "(your network, your loop)" in training, training
    shapes = _text(nb.cells[_cell_index(nb, "model = Net()\n")])
    assert "the network below is yours: __main__.SimpleCNN" in shapes, shapes


WRONG = [
    ("7.1", "bn2 missing", "missing: features.bn2.weight"),
    ("7.1", "dropout 0.40", "yours is Dropout(p=0.4"),
    ("7.1", "ReLU before batch norm", "Your layers run in the order conv1, act1, bn1"),
    ("7.2", "zero_grad missing", "call optimizer.zero_grad() for every batch"),
]


def test_wrong_versions_fail_in_the_notebook_with_a_message_naming_the_difference(notebook):
    """The imports, then each wrong version's cell, in one kernel: the check's line says what differs."""
    nb = copy.deepcopy(notebook)
    imports = next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "import simplecnn as sc" in c.source
    )
    cells = [nb.cells[imports]]
    for key, mistake, _ in WRONG:
        marker, table, solution = (
            (MODEL_CHECK, ch07_build.MODEL_MISTAKES, ch07_build.MODEL_SOLUTION)
            if key == "7.1"
            else (LOOP_CHECK, ch07_loop.LOOP_MISTAKES, ch07_loop.LOOP_SOLUTION)
        )
        filled = _fill(notebook, marker, exercises.edit(solution, *table[mistake][:2]))
        cells.append(filled.cells[_cell_index(filled, marker)])
    nb.cells = cells
    _client(nb).execute()
    for cell, (key, mistake, expected) in zip(nb.cells[1:], WRONG):
        out = _text(cell)
        assert f"✘ Exercise {key}" in out and expected in out, f"{mistake}: {out}"
        assert "instead" in out, f"{mistake}: the notebook should say it runs on with the course's code"
