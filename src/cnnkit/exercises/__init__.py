"""Checked exercises: the reader types an answer, and a check says what to do next.

In a notebook an exercise is a cell the reader fills in, then a call to :func:`check`::

    padding = ...  # your answer: the padding that keeps 28x28 with a 5x5 kernel
    exercises.check("1.2", padding)

* Untouched (still ``...``, or a function that returns nothing yet) the check says "not
  answered yet" and gives a hint; it never raises, so the notebook runs on.
* A wrong answer gets a message that says what is wrong.
* A right answer passes.

The solutions are not in the notebook: ``exercises.solution("1.2")`` prints one. The checks and
solutions live in one module per chapter (``ch00`` ... ``ch08``, ``appendix_a``, ``appendix_b``); the tests run
every solution through its check (it must pass) and every listed wrong answer (it must fail, with
the message listed with it).
"""

from __future__ import annotations

import importlib
import inspect
import numbers
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

#: The chapter modules, loaded the first time an exercise is looked up.
CHAPTERS = (
    "ch00",
    "ch01",
    "ch02",
    "ch03",
    "ch04",
    "ch05",
    "ch06",
    "ch06_retrain",
    "ch07",
    "ch07_build",
    "ch07_loop",
    "ch08",
    "appendix_a",
    "appendix_b",
)


class NotAnswered(Exception):
    """The answer is still the placeholder (``...``), or code that does nothing yet."""


class Wrong(Exception):
    """The answer is wrong; the message says how."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: what the reader fills in, how it is checked, and a solution."""

    key: str  # "1.2": chapter and number, as the notebook names it
    notebook: str  # the notebook's file name without .ipynb, e.g. "01-convolution"
    title: str
    kind: str  # "value": the reader computes a number, a shape, ...; "code": the reader writes code
    hint: str  # shown while the exercise is not answered
    solution: str  # code that assigns the names, as the reader would type it
    # answers that must fail, each with a part of the message it must get: (code, message); the
    # tests run them
    wrong: tuple[tuple[str, str], ...]
    run: Callable[..., str | None] = field(repr=False)  # raises Wrong; may return a note

    @property
    def names(self) -> tuple[str, ...]:
        """The variables the reader fills in, in the order :func:`check` takes them."""
        return tuple(inspect.signature(self.run).parameters)


_REGISTRY: dict[str, Exercise] = {}
_loaded = False


def exercise(
    key: str,
    notebook: str,
    title: str,
    hint: str,
    solution: str,
    wrong=(),
    mistakes=None,
    kind: str = "value",
):
    """Register the decorated function as the check of exercise ``key``.

    The function's parameters are the names the reader fills in. It raises :class:`Wrong` with
    a message that says what is wrong, or returns (optionally a note shown with the pass).
    ``wrong`` lists answers that must fail, as ``(code, message)`` pairs: the code as a reader
    would type it, and a part of the message the check must give for it. ``mistakes`` lists
    more, written as small edits of the solution: ``{what: (old, new, message)}`` (see
    :func:`variants`).
    """
    wrong = [*wrong, *variants(solution, mistakes or {})]
    for item in wrong:
        if not (
            isinstance(item, tuple) and len(item) == 2 and all(isinstance(s, str) and s.strip() for s in item)
        ):
            raise ValueError(
                f"exercise {key}: each wrong answer is a (code, message) pair, neither empty; got {item!r}"
            )
    if kind not in ("value", "code"):
        raise ValueError(f"kind must be 'value' or 'code', got {kind!r}")

    def register(run):
        if key in _REGISTRY:
            raise ValueError(f"exercise {key} is defined twice")
        _REGISTRY[key] = Exercise(
            key,
            notebook,
            title,
            kind,
            hint,
            textwrap.dedent(solution).strip(),
            tuple((textwrap.dedent(code).strip(), message) for code, message in wrong),
            run,
        )
        return run

    return register


def edit(solution: str, old, new) -> str:
    """``solution`` (dedented) with the text ``old`` replaced by ``new``; each must occur in it
    exactly once. ``old`` and ``new`` may be tuples of the same length: several edits, in order."""
    code = textwrap.dedent(solution)
    olds, news = (old, new) if isinstance(old, tuple) else ((old,), (new,))
    for a, b in zip(olds, news, strict=True):
        if code.count(a) != 1:
            raise ValueError(
                f"the text to edit occurs {code.count(a)} times in the solution, not once: {a!r}"
            )
        code = code.replace(a, b)
    return code


def variants(solution: str, table: dict[str, tuple]) -> list[tuple[str, str]]:
    """Wrong answers written as small edits of ``solution``: ``{what: (old, new, message)}``, the
    mistake named by ``what`` replaces ``old`` with ``new`` (see :func:`edit`), and ``message`` is
    a part of what the check must say. Returns the ``(code, message)`` pairs of :func:`exercise`."""
    return [(edit(solution, old, new), message) for old, new, message in table.values()]


def registry() -> dict[str, Exercise]:
    """Every exercise of the course, by key."""
    global _loaded
    if not _loaded:
        for chapter in CHAPTERS:
            importlib.import_module(f"{__name__}.{chapter}")
        _loaded = True
    return dict(_REGISTRY)


def get(key: str) -> Exercise:
    """The exercise ``key``; a KeyError that lists the keys when there is none."""
    exercises = registry()
    if key not in exercises:
        raise KeyError(f"there is no exercise {key!r}; the exercises are {', '.join(sorted(exercises))}")
    return exercises[key]


def answered(value, what: str = "your answer"):
    """``value``, or :class:`NotAnswered` when it is still the placeholder ``...`` or ``None``
    (what a function whose body is only ``...`` returns)."""
    if value is ... or value is None:
        raise NotAnswered(f"{what} is still empty")
    return value


def whole_number(value, what: str = "your answer") -> int:
    """``value`` as an int; :class:`NotAnswered` for the placeholder, :class:`Wrong` when it is
    not a whole number (2.5, "2", True)."""
    value = answered(value, what)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != int(value):
        raise Wrong(f"{what} is {value!r}; it should be a whole number.")
    return int(value)


def whole_numbers(value, what: str, example: str) -> tuple[int, ...]:
    """``value`` (a tuple or list of whole numbers) as a tuple of ints; :class:`NotAnswered` for
    the placeholder, :class:`Wrong` that shows ``example`` (``"(row, column)"``) otherwise."""
    value = answered(value, what)
    if not isinstance(value, (tuple, list)):  # a torch.Size is a tuple
        raise Wrong(f"give {what} as a tuple, {example}; you gave {value!r}.")
    return tuple(whole_number(v, f"a number in {what}") for v in value)


def number_array(value, what: str = "your answer"):
    """``value`` as a NumPy float array; :class:`NotAnswered` for the placeholder,
    :class:`Wrong` when it is not a table of numbers."""
    import numpy as np

    try:
        return np.asarray(answered(value, what), dtype=float)
    except (TypeError, ValueError):
        raise Wrong(f"{what} should be numbers (a list, or a list of rows); got {value!r}.") from None


def real_number(value, what: str = "your answer") -> float:
    """``value`` as a float (a one-element tensor counts); :class:`NotAnswered` for the
    placeholder, :class:`Wrong` when it is not a number."""
    value = answered(value, what)
    if hasattr(value, "numel") and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise Wrong(f"{what} should be a number; got {value!r}.")
    return float(value)


def function(value, signature: str):
    """``value`` when it is a function; :class:`NotAnswered` for the placeholder, :class:`Wrong`
    that shows ``signature`` (``"f(x, p)"``) otherwise."""
    name = signature.split("(")[0]
    if not callable(answered(value, name)):
        raise Wrong(f"{name} should be a function: def {signature}; got {value!r:.60}.")
    return value


def tensor(value, what: str = "your answer", dtype=None):
    """``value`` (a tensor, or a list of numbers) as a detached tensor of ``dtype``;
    :class:`NotAnswered` for the placeholder, :class:`Wrong` when it is not numbers."""
    import torch

    value = answered(value, what)
    try:
        return torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise Wrong(f"{what} should be a tensor of numbers; got {type(value).__name__}.") from None


def reader_call(f, *args, what: str, hint: str = ""):
    """``f(*args)`` for a function the reader wrote; any exception it raises becomes a
    :class:`Wrong` that names it, so the check explains instead of crashing."""
    try:
        return f(*args)
    except (NotAnswered, Wrong):
        raise
    except Exception as err:  # the reader's code: any error is an answer to explain
        raise Wrong(f"{what} raised {type(err).__name__}: {err}" + (f" ({hint})" if hint else "")) from None


def status(key: str, *answers, **named) -> tuple[str, str]:
    """``("right" | "wrong" | "not answered", message)`` for these answers to exercise ``key``."""
    ex = get(key)
    given = dict(zip(ex.names, answers), **named)
    missing = [n for n in ex.names if n not in given]
    if missing or len(answers) > len(ex.names):
        raise TypeError(
            f"exercise {key} takes {', '.join(ex.names)}; got {len(answers) + len(named)} answers"
        )
    if any(v is ... for v in given.values()):
        return "not answered", f"Hint: {ex.hint}"
    try:
        note = ex.run(**given)
    except (NotAnswered, NotImplementedError) as err:
        detail = f" ({err})" if str(err) else ""
        return "not answered", f"Hint: {ex.hint}{detail}"
    except Wrong as err:
        return "wrong", str(err)
    except Exception as err:  # the reader's function failed, or a value is of the wrong kind
        what = "your function" if ex.kind == "code" else "your answer"
        return "wrong", (
            f"checking {what} raised {type(err).__name__}: {err}"
            + (" (call it yourself to see the line)" if ex.kind == "code" else "")
        )
    return "right", note or ""


class Verdict:
    """What :func:`check` found: true when the answer is right. A notebook shows nothing more
    for it than the line :func:`check` printed (no ``True``/``False`` under the message)."""

    def __init__(self, verdict: str, message: str):
        self.verdict, self.message = verdict, message

    def __bool__(self) -> bool:
        return self.verdict == "right"

    def __repr__(self) -> str:
        return f"Verdict({self.verdict!r}, {self.message!r})"

    def _ipython_display_(self):
        pass


def check(key: str, *answers, **named) -> Verdict:
    """Check the reader's answers to exercise ``key`` and print what that means. The result is
    true when they are right (``if exercises.check(...):``). Never raises for a wrong or
    missing answer."""
    ex = get(key)
    verdict, message = status(key, *answers, **named)
    if verdict == "right":
        print(f"✔ Exercise {key} ({ex.title}): right." + (f" {message}" if message else ""))
    elif verdict == "wrong":
        print(f"✘ Exercise {key} ({ex.title}): not yet. {message}")
    else:
        print(f"… Exercise {key} ({ex.title}): not answered yet. {message}")
    return Verdict(verdict, message)


def solution(key: str) -> None:
    """Print a solution of exercise ``key`` (try first: the check tells you what is wrong)."""
    ex = get(key)
    print(f"# A solution of exercise {key} ({ex.title})\n{ex.solution}")
