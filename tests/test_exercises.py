"""Tests of cnnkit.exercises: every exercise can pass and can fail, and every notebook has them.

For each exercise of the course:

* its solution (the code a reader could type) passes its check;
* every wrong answer listed with it fails, with the message listed with it (a part of it that
  names the diagnosis), so each diagnosis is shown to fire;
* a function that raises, or text where a number belongs, fails the same way (no exception);
* the untouched placeholder ``...`` gets "not answered yet" and a hint, and no exception.

For each notebook: at least three exercises, at least one of which asks for code; every one of
its exercises is checked in it; and the committed notebook leaves the answers to the reader.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import simplecnn as sc
from cnnkit import exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = exercises.registry()


def answers_from(code: str, names) -> dict:
    """Run ``code`` as a notebook cell would (with the notebooks' usual imports) and return the
    values of ``names``."""
    import cnnkit

    namespace = dict(np=np, torch=torch, nn=nn, F=F, sc=sc, cnnkit=cnnkit)
    exec(compile(code, "<answer>", "exec"), namespace)  # the course's own solutions, not input
    missing = [n for n in names if n not in namespace]
    assert not missing, f"the code does not define {missing}:\n{code}"
    return {n: namespace[n] for n in names}


def test_there_are_exercises():
    assert len(EXERCISES) >= 3 * len(NOTEBOOKS)


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_the_solution_passes(key, capsys):
    ex = EXERCISES[key]
    verdict, message = exercises.status(key, **answers_from(ex.solution, ex.names))
    assert verdict == "right", f"exercise {key}: its solution gets {verdict!r}: {message}"
    assert bool(exercises.check(key, **answers_from(ex.solution, ex.names))) is True
    assert "right" in capsys.readouterr().out


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_wrong_answers_fail_and_say_why(key, capsys):
    ex = EXERCISES[key]
    assert ex.wrong, f"exercise {key} lists no wrong answer, so nothing shows that its check can fail"
    for code, expected in ex.wrong:
        verdict, message = exercises.status(key, **answers_from(code, ex.names))
        assert verdict == "wrong", f"exercise {key}: the wrong answer\n{code}\ngets {verdict!r}"
        assert len(message) > 20, f"exercise {key}: the message {message!r} does not say what is wrong"
        assert expected in message, (
            f"exercise {key}: the wrong answer\n{code}\nshould get {expected!r}, got {message!r}"
        )
        assert bool(exercises.check(key, **answers_from(code, ex.names))) is False
        assert "not yet" in capsys.readouterr().out


def test_every_wrong_answer_names_the_message_it_must_get():
    for key, ex in EXERCISES.items():
        for code, expected in ex.wrong:
            assert expected.strip(), f"exercise {key}: the wrong answer\n{code}\nnames no message to expect"


def test_a_wrong_answer_without_its_message_is_refused():
    for wrong in (["x = 1"], [("x = 1", "")], [("x = 1", "  ")], [("", "x is wrong")]):
        with pytest.raises(ValueError, match="neither empty"):
            exercises.exercise("0.0", "nb", "title", "hint", "x = 2", wrong=wrong)
    assert "0.0" not in exercises.registry()


def test_a_mistake_is_an_edit_of_text_found_once_in_the_solution():
    solution = """
        def f(x):
            return x + 1
    """
    assert exercises.variants(solution, {"minus": ("+ 1", "- 1", "subtracts")}) == [
        ("\ndef f(x):\n    return x - 1\n", "subtracts")
    ]
    assert exercises.edit(solution, ("f(x)", "+ 1"), ("g(x)", "* 2")).strip() == "def g(x):\n    return x * 2"
    for text in ("+ 2", "x"):  # not in the solution, or in it twice
        with pytest.raises(ValueError, match="not once"):
            exercises.edit(solution, text, "")


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_an_answer_that_fails_to_run_is_wrong_not_a_crash(key):
    """A function with a bug, or text where a number belongs: the check says what happened."""

    def broken(*args, **kwargs):
        return 1 / 0

    ex = EXERCISES[key]
    answer = broken if ex.kind == "code" else "ln 100"
    verdict, message = exercises.status(key, *[answer] * len(ex.names))
    assert verdict == "wrong", f"exercise {key}: {verdict!r}: {message}"
    assert len(message) > 20, f"exercise {key}: the message {message!r} does not say what happened"


@pytest.mark.parametrize("key", sorted(EXERCISES))
def test_the_placeholder_is_not_answered_yet(key, capsys):
    ex = EXERCISES[key]
    verdict, message = exercises.status(key, *[...] * len(ex.names))
    assert verdict == "not answered" and ex.hint in message
    assert bool(exercises.check(key, *[...] * len(ex.names))) is False
    assert "not answered yet" in capsys.readouterr().out


def test_a_reader_function_that_raises_is_named_in_the_message():
    def accuracy(model, batches):
        return 1 / 0

    verdict, message = exercises.status("7.5", accuracy)
    assert verdict == "wrong" and "your function raised ZeroDivisionError" in message


def test_a_function_that_does_nothing_yet_is_not_answered():
    assert exercises.answered(5) == 5
    for empty in (..., None):
        with pytest.raises(exercises.NotAnswered):
            exercises.answered(empty)


def test_unknown_exercise_and_wrong_number_of_answers():
    with pytest.raises(KeyError, match="there is no exercise '0.0'"):
        exercises.check("0.0", 1)
    key = sorted(EXERCISES)[0]
    with pytest.raises(TypeError, match=f"exercise {key} takes"):
        exercises.status(key, *[...] * (len(EXERCISES[key].names) + 1))


def test_a_verdict_shows_nothing_more_in_a_notebook():
    key = sorted(EXERCISES)[0]
    verdict = exercises.check(key, *[...] * len(EXERCISES[key].names))
    assert verdict._ipython_display_() is None and not verdict and verdict.verdict == "not answered"


def test_solution_prints_the_code(capsys):
    key = sorted(EXERCISES)[0]
    exercises.solution(key)
    assert EXERCISES[key].solution in capsys.readouterr().out


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_three_exercises_one_of_them_code(path):
    mine = [ex for ex in EXERCISES.values() if ex.notebook == path.stem]
    assert len(mine) >= 3, f"{path.name} has {len(mine)} exercises"
    assert any(ex.kind == "code" for ex in mine), f"{path.name}: no exercise asks the reader to change code"
    cells = _code_cells(path)
    for ex in mine:
        calls = [c for c in cells if re.search(rf"exercises\.check\(\s*\"{re.escape(ex.key)}\"", c)]
        assert len(calls) == 1, f"{path.name} should check exercise {ex.key} once, found {len(calls)}"
        assert ex.solution not in calls[0], f"{path.name} shows the solution of exercise {ex.key}"
        # the answers are left to the reader: each name is still the placeholder, or a function or
        # class whose body is `...`
        for name in ex.names:
            placeholder = re.search(rf"^{re.escape(name)}\s*=\s*\.\.\.", calls[0], re.M)
            stub = re.search(rf"^(def|class) {re.escape(name)}\b[\s\S]*?^\s+\.\.\.", calls[0], re.M)
            assert placeholder or stub, f"{path.name}, exercise {ex.key}: `{name}` is not left for the reader"
