"""Kernels for the chapters and the explorers: classic presets, and typed kernels read safely.

:func:`parse_kernel` reads what a reader types (rows on lines, numbers such as ``2``, ``-0.5``,
``1e-3`` or fractions such as ``1/9``) with a number pattern; nothing typed is ever evaluated
as code, and anything else is refused with a message that says what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------

#: Classic kernels, written as a reader would type them (rows on lines, fractions allowed).
KERNEL_PRESETS: dict[str, str] = {
    "identity": "0 0 0\n0 1 0\n0 0 0",
    "box blur 3×3": "1/9 1/9 1/9\n1/9 1/9 1/9\n1/9 1/9 1/9",
    "Gaussian blur 3×3": "1/16 2/16 1/16\n2/16 4/16 2/16\n1/16 2/16 1/16",
    "Gaussian blur 5×5": "\n".join(
        " ".join(f"{a * b}/256" for b in (1, 4, 6, 4, 1)) for a in (1, 4, 6, 4, 1)
    ),
    "sharpen": "0 -1 0\n-1 5 -1\n0 -1 0",
    "Sobel x (vertical edges)": "-1 0 1\n-2 0 2\n-1 0 1",
    "Sobel y (horizontal edges)": "-1 -2 -1\n0 0 0\n1 2 1",
    "outline (Laplacian)": "-1 -1 -1\n-1 8 -1\n-1 -1 -1",
}

#: Sizes a typed kernel may have (square).
KERNEL_SIZES = (3, 5)

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN = re.compile(rf"^({_NUMBER})(?:/({_NUMBER}))?$")
#: Largest magnitude accepted for one typed value.
MAX_KERNEL_VALUE = 1e6


def parse_number(token: str) -> float:
    """One typed value: a decimal number (``2``, ``-0.5``, ``1e-3``) or a fraction (``1/9``).

    Only these forms are accepted; the text is matched against a pattern, never evaluated.
    """
    m = _TOKEN.match(token)
    if not m:
        raise ValueError(f"'{token}' is not a number (write numbers like 2, -0.5 or 1/9)")
    value = float(m.group(1))
    if m.group(2) is not None:
        denominator = float(m.group(2))
        if denominator == 0:
            raise ValueError(f"'{token}' divides by zero")
        value /= denominator
    if not abs(value) <= MAX_KERNEL_VALUE:
        raise ValueError(f"'{token}' is too large (keep values within ±{MAX_KERNEL_VALUE:.0f})")
    return value


def parse_kernel(text: str, sizes: Sequence[int] = KERNEL_SIZES) -> np.ndarray:
    """Read a typed kernel: one row per line (or rows separated by ``;``), values separated by
    spaces or commas, optional ``[ ]`` brackets. Returns a square float array.

    Raises a ValueError with a message meant for the reader when the text is not a square
    kernel of one of ``sizes`` made of numbers.
    """
    if not isinstance(text, str):
        raise ValueError(f"a kernel is typed as text, got {type(text).__name__}")
    allowed = " or ".join(f"{s}×{s}" for s in sizes)
    rows = []
    for line in re.split(r"[;\n]", text.replace("[", " ").replace("]", " ")):
        tokens = [t for t in re.split(r"[\s,]+", line.strip()) if t]
        if tokens:
            rows.append([parse_number(t) for t in tokens])
    if not rows:
        raise ValueError(f"the kernel is empty: type {allowed} numbers, one row per line")
    n = len(rows)
    for i, row in enumerate(rows, 1):
        if len(row) != n:
            raise ValueError(
                f"row {i} has {len(row)} number{'s' if len(row) != 1 else ''} but there are {n} rows: "
                f"a kernel is square ({allowed})"
            )
    if n not in sizes:
        raise ValueError(f"a {n}×{n} kernel is not offered here: type {allowed} numbers")
    return np.array(rows, dtype=float)


def format_kernel(kernel) -> str:
    """A kernel as text that :func:`parse_kernel` reads back exactly (rows on lines)."""

    def number(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else repr(float(v))

    return "\n".join(" ".join(number(v) for v in row) for row in np.asarray(kernel, dtype=float))


def kernel_presets() -> dict[str, np.ndarray]:
    """The preset kernels as arrays."""
    return {name: parse_kernel(text) for name, text in KERNEL_PRESETS.items()}


# ---------------------------------------------------------------------------------------------
# Data for the explorers and the chapters
# ---------------------------------------------------------------------------------------------
