"""Convolution and pooling, from scratch, and the two interactive explorers built on them.

The convolution and pooling chapters use this module for three things:

* **The arithmetic**, in NumPy and vectorised: :func:`conv1d`, :func:`conv2d` (a
  cross-correlation, like ``torch.nn.functional.conv2d``), :func:`pool2d`,
  :func:`max_pool2d_backward` and the output-size formulas :func:`conv_output_size` and
  :func:`pool_output_size`. Bad settings raise a ``ValueError`` that says what was expected.
* **The explorers' logic**: kernel presets, :func:`parse_kernel` (typed kernels are read as
  numbers, never evaluated as code), the window being computed (:func:`conv_window`,
  :func:`pool_window`) and the formulas with the numbers filled in.
* **The explorers themselves**, in two versions with the same controls:

  - :class:`KernelExplorer` and :class:`PoolingExplorer` are ipywidgets (core widgets only, so
    they work with ipywidgets 7, as in Colab, and 8, as in JupyterLab); the kernel computes.
  - :func:`kernel_explorer_html` and :func:`pooling_explorer_html` return a self-contained
    HTML/JavaScript widget (no external scripts, no kernel): the page computes. The book bakes
    it into its pages, so the explorers stay interactive in the static HTML book.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ---------------------------------------------------------------------------------------------
# Output sizes
# ---------------------------------------------------------------------------------------------


def _pair(value, name: str) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 2)`` stays; anything else is a ValueError."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer or a pair of integers, got {value!r}")
        return _int(value[0], name), _int(value[1], name)
    v = _int(value, name)
    return v, v


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution along one axis (the same formula as ``nn.Conv2d``):

    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``.

    Raises a ValueError for a stride below 1, negative padding, a kernel or dilation below 1,
    or a kernel that does not fit into the padded input.
    """
    size, k = _int(size, "size"), _int(kernel_size, "kernel_size")
    stride, padding, dilation = _int(stride, "stride"), _int(padding, "padding"), _int(dilation, "dilation")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if k < 1:
        raise ValueError(f"kernel_size must be at least 1, got {k}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1 (the step between windows), got {stride}")
    if padding < 0:
        raise ValueError(f"padding must be 0 or more, got {padding}")
    if dilation < 1:
        raise ValueError(f"dilation must be at least 1, got {dilation}")
    span = dilation * (k - 1) + 1
    padded = size + 2 * padding
    if span > padded:
        what = f"kernel ({k}" + (f", dilated to span {span}" if dilation > 1 else "") + ")"
        raise ValueError(
            f"the {what} is larger than the padded input ({size} + 2*{padding} = {padded}): "
            "use a smaller kernel or more padding"
        )
    return (padded - span) // stride + 1


def pool_output_size(size: int, kernel_size: int, stride: int | None = None) -> int:
    """Output length of a pooling along one axis: ``floor((size - kernel_size) / stride) + 1``.

    ``stride`` defaults to ``kernel_size`` (non-overlapping windows), as in PyTorch.
    """
    stride = kernel_size if stride is None else stride
    return conv_output_size(size, kernel_size, stride)


def conv_size_formula(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                      dilation: int = 1) -> str:
    """The output-size formula with the numbers filled in, as plain text, e.g.
    ``⌊(28 + 2·0 − 1·(5 − 1) − 1) / 1⌋ + 1 = 24``."""
    out = conv_output_size(size, kernel_size, stride, padding, dilation)
    return (f"⌊({size} + 2·{padding} − {dilation}·({kernel_size} − 1) − 1) / {stride}⌋ + 1 "
            f"= ⌊{size + 2 * padding - dilation * (kernel_size - 1) - 1} / {stride}⌋ + 1 = {out}")


def pool_size_formula(size: int, kernel_size: int, stride: int | None = None) -> str:
    """The pooling output-size formula with the numbers filled in, as plain text."""
    stride = kernel_size if stride is None else stride
    out = pool_output_size(size, kernel_size, stride)
    return f"⌊({size} − {kernel_size}) / {stride}⌋ + 1 = ⌊{size - kernel_size} / {stride}⌋ + 1 = {out}"


# ---------------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------------


def conv1d(signal, kernel) -> np.ndarray:
    """The full discrete convolution ``y[n] = sum_i x[i] h[n - i]`` (what ``np.convolve`` does):
    flip the kernel, slide it over the zero-padded signal, multiply and sum."""
    x = np.asarray(signal, dtype=float)
    h = np.asarray(kernel, dtype=float)
    if x.ndim != 1 or h.ndim != 1 or len(x) == 0 or len(h) == 0:
        raise ValueError(f"conv1d expects two non-empty 1D sequences, got shapes {x.shape} and {h.shape}")
    k = len(h)
    padded = np.pad(x, k - 1)
    windows = sliding_window_view(padded, k)  # (len(x) + k - 1, k)
    return windows @ h[::-1]


def conv1d_steps(signal, kernel) -> list[dict]:
    """Every output of :func:`conv1d`, spelled out: for output ``n`` the pairs ``(x[i], h[n-i])``
    that meet, their products and their sum."""
    x = [float(v) for v in signal]
    h = [float(v) for v in kernel]
    steps = []
    for n in range(len(x) + len(h) - 1):
        terms = [(i, x[i], n - i, h[n - i]) for i in range(len(x)) if 0 <= n - i < len(h)]
        products = [xi * hj for _, xi, _, hj in terms]
        steps.append(dict(n=n, terms=terms, products=products, value=sum(products)))
    return steps


def _num(v: float) -> str:
    return f"{v:g}" if v >= 0 else f"({v:g})"


def describe_conv1d(signal, kernel) -> str:
    """A text table of the flip-and-slide computation of :func:`conv1d`: the zero-padded
    signal, then one line per output with the flipped kernel under the values it meets."""
    x = [float(v) for v in signal]
    h = [float(v) for v in kernel]
    k = len(h)
    width = max(len(f"{v:g}") for v in x + h) + 1
    cells = lambda values: "".join(f"{v:>{width}}" for v in values)  # noqa: E731
    lines = ["x, zero-padded " + cells(["0"] * (k - 1) + [f"{v:g}" for v in x] + ["0"] * (k - 1)),
             "flipped h at shift n:"]
    flipped = [f"{v:g}" for v in h[::-1]]
    for step in conv1d_steps(x, h):
        n = step["n"]
        row = [""] * n + flipped + [""] * (len(x) + k - 2 - n)
        sums = " + ".join(f"{_num(xi)}·{_num(hj)}" for _, xi, _, hj in step["terms"])
        lines.append(f"{'n = ' + str(n):>14} " + cells(row) + f"  y[{n}] = {sums} = {step['value']:g}")
    return "\n".join(lines)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1) -> np.ndarray:
    """2D cross-correlation, vectorised, with the same conventions as ``torch.nn.functional.conv2d``.

    Shapes: ``x`` is ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``; ``weight`` is
    ``(C_out, C, kH, kW)``, or ``(kH, kW)`` for a single channel in and out. The output drops the
    dimensions the input did not have. ``stride``, ``padding`` and ``dilation`` are integers or
    ``(height, width)`` pairs; padding adds zeros.
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(weight, dtype=float)
    if w.ndim == 2:
        if x.ndim not in (2, 3, 4) or (x.ndim >= 3 and x.shape[-3] != 1):
            raise ValueError(f"a 2D kernel {w.shape} needs a one-channel input, got shape {x.shape}")
        out = conv2d(x if x.ndim >= 3 else x[None], w[None, None], bias, stride, padding, dilation)
        return out if x.ndim >= 3 else out[0]
    if w.ndim != 4:
        raise ValueError(f"weight must have shape (C_out, C_in, kH, kW) or (kH, kW), got {w.shape}")
    squeeze = x.ndim == 3
    if squeeze:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), (C, H, W) or (H, W), got {x.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"the input has {x.shape[1]} channels but the weight expects {w.shape[1]} "
                         f"(weight shape {w.shape})")
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    kh, kw = w.shape[2:]
    h_out = conv_output_size(x.shape[2], kh, sh, ph, dh)
    w_out = conv_output_size(x.shape[3], kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    # every window of the dilated kernel's span, then keep every stride-th window and every
    # dilation-th pixel inside it: (N, C, H_out, W_out, kH, kW)
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    windows = sliding_window_view(xp, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    windows = windows[:, :, :h_out, :w_out]
    out = np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)
    if bias is not None:
        b = np.asarray(bias, dtype=float)
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
        out = out + b[None, :, None, None]
    return out[0] if squeeze else out


def conv_window(image, kernel, stride: int = 1, padding: int = 0, row: int = 0, col: int = 0) -> dict:
    """The window that produces output ``(row, col)`` of a single-channel :func:`conv2d`.

    Returns ``top``/``left`` (in padded coordinates), the ``patch`` of the padded image, the
    element-wise ``products`` with the kernel and their sum ``value``.
    """
    image = np.asarray(image, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    k = kernel.shape[0]
    h_out = conv_output_size(image.shape[0], k, stride, padding)
    w_out = conv_output_size(image.shape[1], kernel.shape[1], stride, padding)
    if not (0 <= row < h_out and 0 <= col < w_out):
        raise ValueError(f"window ({row}, {col}) is outside the {h_out}x{w_out} output")
    padded = np.pad(image, padding)
    top, left = row * stride, col * stride
    patch = padded[top:top + k, left:left + kernel.shape[1]]
    products = patch * kernel
    return dict(top=top, left=left, patch=patch, products=products, value=float(products.sum()))


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------

POOL_MODES = ("max", "average")


def _pool_mode(mode: str) -> str:
    mode = {"avg": "average", "mean": "average"}.get(mode, mode)
    if mode not in POOL_MODES:
        raise ValueError(f"mode must be 'max' or 'average', got {mode!r}")
    return mode


def _pool_windows(x: np.ndarray, kernel_size, stride):
    (kh, kw) = _pair(kernel_size, "kernel_size")
    (sh, sw) = _pair(kernel_size if stride is None else stride, "stride")
    if x.ndim < 2:
        raise ValueError(f"pooling needs at least a 2D map (H, W), got shape {x.shape}")
    h_out = conv_output_size(x.shape[-2], kh, sh)
    w_out = conv_output_size(x.shape[-1], kw, sw)
    windows = sliding_window_view(x, (kh, kw), axis=(-2, -1))[..., ::sh, ::sw, :, :]
    return windows[..., :h_out, :w_out, :, :], (kh, kw), (sh, sw)


def pool2d(x, kernel_size=2, stride=None, mode: str = "max") -> np.ndarray:
    """Max or average pooling over the last two axes of ``x`` (any leading axes), vectorised.

    ``stride`` defaults to ``kernel_size``; no padding. Matches ``F.max_pool2d`` /
    ``F.avg_pool2d`` with the same ``kernel_size`` and ``stride``.
    """
    mode = _pool_mode(mode)
    windows, _, _ = _pool_windows(np.asarray(x, dtype=float), kernel_size, stride)
    return windows.max(axis=(-2, -1)) if mode == "max" else windows.mean(axis=(-2, -1))


def max_pool2d_backward(x, grad_out, kernel_size=2, stride=None) -> np.ndarray:
    """The gradient of max pooling with respect to its input, from scratch.

    Each window passes its upstream gradient ``grad_out[..., i, j]`` to the one input that was
    its maximum; every other input of the window gets nothing. Where windows overlap
    (stride < kernel size) an input can be the maximum of several windows and collects the sum.
    """
    x = np.asarray(x, dtype=float)
    windows, (kh, kw), (sh, sw) = _pool_windows(x, kernel_size, stride)
    grad_out = np.asarray(grad_out, dtype=float)
    if grad_out.shape != windows.shape[:-2]:
        raise ValueError(f"grad_out must have the pooled shape {windows.shape[:-2]}, got {grad_out.shape}")
    flat = windows.reshape(*windows.shape[:-2], kh * kw).argmax(axis=-1)
    h_out, w_out = windows.shape[-4:-2]
    rows = np.arange(h_out)[:, None] * sh + flat // kw
    cols = np.arange(w_out)[None, :] * sw + flat % kw
    grad = np.zeros_like(x)
    lead = np.indices(x.shape[:-2]).reshape(len(x.shape[:-2]), -1).T if x.ndim > 2 else [()]
    for idx in lead:
        idx = tuple(idx)
        np.add.at(grad[idx], (rows[idx], cols[idx]), grad_out[idx])
    return grad


def pool_window(fmap, kernel_size: int = 2, stride: int | None = None, mode: str = "max",
                row: int = 0, col: int = 0) -> dict:
    """The window behind output ``(row, col)`` of :func:`pool2d` on a 2D map: ``top``, ``left``,
    the window ``values``, the pooled ``value`` and (for max) the ``argmax`` as (row, col) in the map."""
    fmap = np.asarray(fmap, dtype=float)
    mode = _pool_mode(mode)
    stride = kernel_size if stride is None else stride
    h_out = pool_output_size(fmap.shape[0], kernel_size, stride)
    w_out = pool_output_size(fmap.shape[1], kernel_size, stride)
    if not (0 <= row < h_out and 0 <= col < w_out):
        raise ValueError(f"window ({row}, {col}) is outside the {h_out}x{w_out} output")
    top, left = row * stride, col * stride
    values = fmap[top:top + kernel_size, left:left + kernel_size]
    i = int(values.argmax())
    argmax = (top + i // kernel_size, left + i % kernel_size)
    value = float(values.max() if mode == "max" else values.mean())
    return dict(top=top, left=left, values=values, value=value, argmax=argmax)


# ---------------------------------------------------------------------------------------------
# Kernels: presets and parsing typed kernels
# ---------------------------------------------------------------------------------------------

#: Classic kernels, written as a reader would type them (rows on lines, fractions allowed).
KERNEL_PRESETS: dict[str, str] = {
    "identity": "0 0 0\n0 1 0\n0 0 0",
    "box blur 3×3": "1/9 1/9 1/9\n1/9 1/9 1/9\n1/9 1/9 1/9",
    "Gaussian blur 3×3": "1/16 2/16 1/16\n2/16 4/16 2/16\n1/16 2/16 1/16",
    "Gaussian blur 5×5": "\n".join(
        " ".join(f"{a * b}/256" for b in (1, 4, 6, 4, 1)) for a in (1, 4, 6, 4, 1)),
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
            raise ValueError(f"row {i} has {len(row)} number{'s' if len(row) != 1 else ''} but there are {n} rows: "
                             f"a kernel is square ({allowed})")
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

#: The worked pooling example of the pooling chapter.
WORKED_POOLING_MAP = np.array([[1, 3, 2, 1], [4, 6, 5, 0], [3, 1, 1, 2], [0, 2, 4, 7]], dtype=float)


def one_per_class(images, labels, classes=range(10)) -> tuple[np.ndarray, list[int]]:
    """The first image of each class, as floats in [0, 1] if the images are bytes.

    Returns ``(images (n, H, W), labels)``; a class without images is a ValueError.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"expected images (N, H, W) and N labels, got {images.shape} and {labels.shape}")
    picked = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            raise ValueError(f"no image of class {c}")
        picked.append(idx[0])
    out = images[picked].astype(float)
    if images.dtype == np.uint8:
        out /= 255.0
    return out, [int(c) for c in classes]


def shift(image, dy: int = 0, dx: int = 0) -> np.ndarray:
    """``image`` (..., H, W) moved by ``dy`` rows and ``dx`` columns, filling with zeros."""
    image = np.asarray(image, dtype=float)
    out = np.zeros_like(image)
    h, w = image.shape[-2:]
    src_r = slice(max(0, -dy), h - max(0, dy))
    dst_r = slice(max(0, dy), h - max(0, -dy))
    src_c = slice(max(0, -dx), w - max(0, dx))
    dst_c = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_r, dst_c] = image[..., src_r, src_c]
    return out


def relative_change(a, b) -> float:
    """``||a - b|| / ||a||``: how much a map changed, independent of its size and scale."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    norm = np.linalg.norm(a)
    if norm == 0:
        raise ValueError("the reference map is all zeros")
    return float(np.linalg.norm(a - b) / norm)


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------

#: Diverging colours for signed maps (negative blue, zero white, positive vermillion) and the
#: window highlight; taken from the course's colour-blind-safe palette.
NEGATIVE, POSITIVE, HIGHLIGHT = "#0072B2", "#D55E00", "#E69F00"


def map_style(values) -> dict:
    """``imshow`` settings for a map: grey from 0 to its maximum when it has no negative
    values, else a diverging blue-white-vermillion scale symmetric around 0."""
    from matplotlib.colors import LinearSegmentedColormap

    values = np.asarray(values, dtype=float)
    top = float(np.abs(values).max()) or 1.0
    if values.min() >= 0:
        return dict(cmap="gray", vmin=0.0, vmax=top)
    cmap = LinearSegmentedColormap.from_list("signed", [NEGATIVE, "#ffffff", POSITIVE])
    return dict(cmap=cmap, vmin=-top, vmax=top)


def show_map(ax, values, title: str, numbers: bool = False):
    """Draw a 2D map on ``ax`` with :func:`map_style`, optionally writing each value."""
    values = np.asarray(values, dtype=float)
    ax.imshow(values, **map_style(values))
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if numbers:
        style = map_style(values)
        mid = (style["vmin"] + style["vmax"]) / 2
        for (r, c), v in np.ndenumerate(values):
            dark = v < mid if style["cmap"] == "gray" else False
            ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=9,
                    color="white" if dark else "black")
    return ax


def show_kernels_on_digits(digits, kernels: dict, labels=None, padding: int | None = None):
    """A grid: one row per digit, one column per kernel (the first column is the digit itself).
    Each feature map is ``conv2d(digit, kernel, padding=padding)``; the default padding keeps
    the digit's size (``(k - 1) // 2``). Returns the Figure."""
    import matplotlib.pyplot as plt

    digits = np.asarray(digits, dtype=float)
    names = list(kernels)
    fig, axes = plt.subplots(len(digits), len(names) + 1, squeeze=False,
                             figsize=(1.45 * (len(names) + 1), 1.55 * len(digits)))
    for r, digit in enumerate(digits):
        show_map(axes[r, 0], digit, "input" if labels is None else f"digit {labels[r]}")
        for c, name in enumerate(names, 1):
            k = np.asarray(kernels[name], dtype=float)
            show_map(axes[r, c], conv2d(digit, k, padding=(k.shape[0] - 1) // 2 if padding is None else padding),
                     name.replace(" (", "\n(") if r == 0 else "")
            axes[r, c].title.set_fontsize(8)
    fig.suptitle("Classic kernels applied to MNIST digits\n(grey: maps without negative values; "
                 "blue / vermillion: negative / positive values)", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# The ipywidgets explorers (JupyterLab, Colab, VS Code: anywhere a kernel runs)
# ---------------------------------------------------------------------------------------------

TYPED = "typed below"


def _error_html(message: str) -> str:
    return (f'<div style="color:{POSITIVE};font-weight:bold" role="alert">⚠ {html.escape(message)}'
            "</div>")


def _grid_html(values, fmt="{:.2f}", title="") -> str:
    rows = "".join("<tr>" + "".join(f'<td style="padding:1px 5px;text-align:right">{fmt.format(v)}</td>'
                                      for v in row) + "</tr>" for row in np.asarray(values))
    return (f'<table style="display:inline-table;border-collapse:collapse;font-family:monospace;'
            f'font-size:11px;margin:0 6px;vertical-align:middle"><caption style="font-size:11px">{title}'
            f"</caption>{rows}</table>")


def _show_in(out, fig) -> None:
    """Replace what the Output widget ``out`` shows by ``fig``, rendered to PNG here, so it
    looks the same whatever matplotlib backend the notebook uses."""
    import io

    from IPython.display import Image, clear_output, display

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    with out:
        clear_output(wait=True)
        display(Image(data=buffer.getvalue(), format="png"))


def _import_widgets():
    try:
        import ipywidgets as widgets
    except ImportError as err:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError("the explorers need ipywidgets: pip install ipywidgets") from err
    return widgets


class KernelExplorer:
    """Pick a digit and a kernel (a preset or typed values), a stride and a padding; see the
    input, the kernel, the output feature map, the output-size formula with the numbers filled
    in and the window being computed.

    Display it in a notebook (it is the last expression of a cell, or ``display(explorer)``).
    ``explorer.widget`` is the ipywidgets ``VBox``; the controls are attributes (``digit``,
    ``kernel``, ``text``, ``apply``, ``stride``, ``padding``, ``row``, ``col``) and the current
    results are ``explorer.kernel_values`` and ``explorer.result``.
    """

    def __init__(self, images, labels=None, presets: dict[str, str] | None = None):
        widgets = _import_widgets()
        self.images = np.asarray(images, dtype=float)
        if self.images.ndim != 3:
            raise ValueError(f"images must have shape (N, H, W), got {self.images.shape}")
        self.labels = list(range(len(self.images))) if labels is None else list(labels)
        self.presets = dict(KERNEL_PRESETS if presets is None else presets)
        first = next(iter(self.presets))
        self.kernel_values = parse_kernel(self.presets[first])
        self._busy = False
        style = {"description_width": "initial"}
        self.digit = widgets.Dropdown(options=[(f"digit {lab}", i) for i, lab in enumerate(self.labels)],
                                      value=0, description="Digit:", style=style)
        self.kernel = widgets.Dropdown(options=list(self.presets) + [TYPED], value=first,
                                       description="Kernel:", style=style)
        self.text = widgets.Textarea(value=self.presets[first], rows=5, description="Values:",
                                     continuous_update=False, style=style,
                                     layout=widgets.Layout(width="300px"))
        self.apply = widgets.Button(description="Use typed kernel", button_style="info",
                                    tooltip="read the numbers in the box as a 3×3 or 5×5 kernel")
        self.stride = widgets.IntSlider(value=1, min=1, max=3, description="Stride:",
                                        continuous_update=False, style=style)
        self.padding = widgets.IntSlider(value=0, min=0, max=3, description="Padding:",
                                         continuous_update=False, style=style)
        self.row = widgets.IntSlider(value=12, min=0, max=25, description="Window row:",
                                     continuous_update=False, style=style)
        self.col = widgets.IntSlider(value=12, min=0, max=25, description="Window column:",
                                     continuous_update=False, style=style)
        self.message = widgets.HTML("")
        self.formula = widgets.HTML("")
        self.window = widgets.HTML("")
        self.out = widgets.Output()
        # start with the window on the strongest response of the first digit
        first_map = conv2d(self.images[0], self.kernel_values)
        self.row.max, self.col.max = first_map.shape[0] - 1, first_map.shape[1] - 1
        self.row.value, self.col.value = (int(v) for v in np.unravel_index(np.abs(first_map).argmax(), first_map.shape))
        self.widget = widgets.VBox([
            widgets.HBox([widgets.VBox([self.digit, self.kernel, self.stride, self.padding]),
                          widgets.VBox([self.text, self.apply])]),
            self.message,
            widgets.HBox([self.row, self.col]),
            self.out, self.formula, self.window,
        ])
        self.kernel.observe(self._on_preset, names="value")
        self.text.observe(lambda change: self._on_text(), names="value")
        self.apply.on_click(lambda button: self._on_text())
        for w in (self.digit, self.stride, self.padding, self.row, self.col):
            w.observe(lambda change: self.update(), names="value")
        self.update()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _on_preset(self, change):
        if self._busy or change["new"] == TYPED:
            return
        self.kernel_values = parse_kernel(self.presets[change["new"]])
        self._busy = True
        try:
            self.text.value = self.presets[change["new"]]
        finally:
            self._busy = False
        self.message.value = ""
        self.update()

    def _on_text(self):
        if self._busy:
            return
        try:
            values = parse_kernel(self.text.value)
        except ValueError as err:
            self.message.value = _error_html(f"Could not read the kernel: {err}. "
                                             "The explorer keeps the last kernel that worked.")
            return
        self.message.value = ""
        self.kernel_values = values
        match = [n for n, t in self.presets.items() if np.array_equal(parse_kernel(t), values)]
        self._busy = True
        try:
            self.kernel.value = match[0] if match else TYPED
        finally:
            self._busy = False
        self.update()

    def update(self):
        """Recompute the feature map and redraw (called by every control)."""
        if self._busy:
            return
        image = self.images[self.digit.value]
        k, s, p = self.kernel_values.shape[0], self.stride.value, self.padding.value
        self.result = conv2d(image, self.kernel_values, stride=s, padding=p)
        n_out = self.result.shape[0]
        self._busy = True
        try:
            for slider in (self.row, self.col):
                slider.max = n_out - 1
                slider.value = min(slider.value, n_out - 1)
        finally:
            self._busy = False
        r, c = self.row.value, self.col.value
        win = conv_window(image, self.kernel_values, s, p, r, c)
        self.window_info = win
        size = image.shape[0]
        self.formula.value = (
            f"<b>Output size</b> H<sub>out</sub> = ⌊(H<sub>in</sub> + 2·padding − dilation·(k − 1) − 1)"
            f" / stride⌋ + 1 = {html.escape(conv_size_formula(size, k, s, p))} "
            f"→ the feature map is {n_out}×{self.result.shape[1]}.")
        self.window.value = (
            f"<b>Window ({r}, {c})</b>: rows {win['top']}–{win['top'] + k - 1}, columns "
            f"{win['left']}–{win['left'] + k - 1} of the padded input.<br>"
            + _grid_html(win["patch"], title="input patch") + " ⊙ "
            + _grid_html(self.kernel_values, "{:.3g}", "kernel") + " = "
            + _grid_html(win["products"], title="products")
            + f" → sum = <b>{win['value']:.3f}</b> = output[{r}, {c}]")
        self._draw(image, win)

    def _draw(self, image, win):
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        k, p = self.kernel_values.shape[0], self.padding.value
        padded = np.pad(image, p)
        fig = Figure(figsize=(10, 3.4))
        axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1, 0.55, 1]))
        show_map(axes[0], padded, f"input {image.shape[0]}×{image.shape[1]}, padding {p}")
        axes[0].add_patch(Rectangle((win["left"] - 0.5, win["top"] - 0.5), k, k, fill=False,
                                    edgecolor=HIGHLIGHT, linewidth=2.5))
        if p:
            axes[0].add_patch(Rectangle((p - 0.5, p - 0.5), image.shape[1], image.shape[0], fill=False,
                                        edgecolor="#56B4E9", linestyle="--", linewidth=1))
        show_map(axes[1], self.kernel_values, f"kernel {k}×{k}", numbers=k <= 5)
        show_map(axes[2], self.result, f"output {self.result.shape[0]}×{self.result.shape[1]}, "
                 f"stride {self.stride.value}")
        axes[2].add_patch(Rectangle((self.col.value - 0.5, self.row.value - 0.5), 1, 1, fill=False,
                                    edgecolor=HIGHLIGHT, linewidth=2.5))
        fig.suptitle(f"Kernel explorer: {self.kernel.value}", fontsize=11)
        _show_in(self.out, fig)


class PoolingExplorer:
    """Pick a map (the worked 4×4 example or a digit), the window size, the stride and max or
    average pooling; see the windows on the map, the pooled result, the output-size formula and
    the values of one window.

    ``explorer.widget`` is the ipywidgets ``VBox``; the controls are attributes (``source``,
    ``size``, ``stride``, ``mode``, ``row``, ``col``) and the pooled map is ``explorer.result``.
    """

    def __init__(self, images=None, labels=None):
        widgets = _import_widgets()
        self.maps = {"worked example 4×4": WORKED_POOLING_MAP}
        if images is not None:
            images = np.asarray(images, dtype=float)
            labels = list(range(len(images))) if labels is None else list(labels)
            self.maps.update({f"digit {lab}": img for lab, img in zip(labels, images)})
        style = {"description_width": "initial"}
        self.source = widgets.Dropdown(options=list(self.maps), description="Map:", style=style)
        self.size = widgets.IntSlider(value=2, min=1, max=4, description="Window:",
                                      continuous_update=False, style=style)
        self.stride = widgets.IntSlider(value=2, min=1, max=4, description="Stride:",
                                        continuous_update=False, style=style)
        self.mode = widgets.Dropdown(options=list(POOL_MODES), value="max", description="Pooling:",
                                     style=style)
        self.row = widgets.IntSlider(value=0, min=0, max=1, description="Window row:",
                                     continuous_update=False, style=style)
        self.col = widgets.IntSlider(value=0, min=0, max=1, description="Window column:",
                                     continuous_update=False, style=style)
        self.formula = widgets.HTML("")
        self.window = widgets.HTML("")
        self.out = widgets.Output()
        self.widget = widgets.VBox([
            widgets.HBox([self.source, self.mode]), widgets.HBox([self.size, self.stride]),
            widgets.HBox([self.row, self.col]), self.out, self.formula, self.window,
        ])
        self._busy = False
        for w in (self.source, self.size, self.stride, self.mode, self.row, self.col):
            w.observe(lambda change: self.update(), names="value")
        self.update()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def update(self):
        """Recompute the pooled map and redraw (called by every control)."""
        if self._busy:
            return
        fmap = self.maps[self.source.value]
        k, s, mode = self.size.value, self.stride.value, self.mode.value
        self.result = pool2d(fmap, k, s, mode)
        h_out, w_out = self.result.shape
        self._busy = True
        try:
            for slider, n in ((self.row, h_out), (self.col, w_out)):
                slider.max = n - 1
                slider.value = min(slider.value, n - 1)
        finally:
            self._busy = False
        r, c = self.row.value, self.col.value
        win = pool_window(fmap, k, s, mode, r, c)
        self.window_info = win
        self.formula.value = (f"<b>Output size</b> H<sub>out</sub> = ⌊(H<sub>in</sub> − window) / stride⌋ + 1 = "
                              f"{html.escape(pool_size_formula(fmap.shape[0], k, s))} → the pooled map is "
                              f"{h_out}×{w_out}.")
        how = "maximum" if mode == "max" else "average"
        self.window.value = (f"<b>Window ({r}, {c})</b>: rows {win['top']}–{win['top'] + k - 1}, columns "
                             f"{win['left']}–{win['left'] + k - 1}. "
                             + _grid_html(win["values"], "{:.3g}", "values")
                             + f" → {how} = <b>{win['value']:.3g}</b> = output[{r}, {c}]")
        self._draw(fmap, win)

    def _draw(self, fmap, win):
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle

        k, s = self.size.value, self.stride.value
        small = fmap.shape[0] <= 8
        fig = Figure(figsize=(8, 3.8))
        axes = fig.subplots(1, 2)
        show_map(axes[0], fmap, f"map {fmap.shape[0]}×{fmap.shape[1]}: windows {k}×{k}, stride {s}",
                 numbers=small)
        h_out, w_out = self.result.shape
        for i, j in itertools.product(range(h_out), range(w_out)):
            axes[0].add_patch(Rectangle((j * s - 0.5, i * s - 0.5), k, k, fill=False,
                                        edgecolor="#56B4E9", linewidth=0.8, alpha=0.8))
        axes[0].add_patch(Rectangle((win["left"] - 0.5, win["top"] - 0.5), k, k, fill=False,
                                    edgecolor=HIGHLIGHT, linewidth=2.5))
        if self.mode.value == "max":
            axes[0].plot(win["argmax"][1], win["argmax"][0], "o", mfc="none", mec=POSITIVE,
                         ms=150 / fmap.shape[0], mew=2)
        show_map(axes[1], self.result, f"{self.mode.value} pooled {h_out}×{w_out}", numbers=small)
        axes[1].add_patch(Rectangle((self.col.value - 0.5, self.row.value - 0.5), 1, 1, fill=False,
                                    edgecolor=HIGHLIGHT, linewidth=2.5))
        fig.suptitle("Pooling explorer", fontsize=11)
        _show_in(self.out, fig)


def kernel_explorer(images, labels=None) -> KernelExplorer:
    """The ipywidgets kernel explorer for ``images`` (N, H, W) in [0, 1]."""
    return KernelExplorer(images, labels)


def pooling_explorer(images=None, labels=None) -> PoolingExplorer:
    """The ipywidgets pooling explorer (the worked example plus ``images``, if given)."""
    return PoolingExplorer(images, labels)


# ---------------------------------------------------------------------------------------------
# The same explorers as self-contained HTML + JavaScript (the static book; also runs in
# JupyterLab and Colab). No external scripts: the page computes with the embedded data.
# ---------------------------------------------------------------------------------------------

_counter = itertools.count()


def _explorer_html(kind: str, data: dict):
    from IPython.display import HTML

    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    uid = f"scnn-{kind}-{next(_counter)}-{hashlib.sha1(payload.encode()).hexdigest()[:8]}"
    markup = (
        f'<div class="scnn-explorer scnn-{kind}-explorer mathjax_ignore" id="{uid}" data-kind="{kind}">'
        f'<noscript>This interactive explorer needs JavaScript.</noscript>'
        f'<script type="application/json" class="scnn-data">{payload}</script></div>'
        f"<style>{_EXPLORER_CSS}</style>"
        f"<script>{_EXPLORER_JS}\n(function () {{ var root = document.getElementById({json.dumps(uid)});"
        f" if (root) SimpleCNNExplorers.{kind}(root); }})();</script>"
    )
    return HTML(markup)


def kernel_explorer_data(images, labels=None) -> dict:
    """What the JavaScript kernel explorer embeds: digits as bytes, the presets as text."""
    images = np.asarray(images, dtype=float)
    labels = list(range(len(images))) if labels is None else [int(v) for v in labels]
    return dict(
        digits=[dict(label=lab, pixels=np.rint(img * 255).astype(int).tolist()) for lab, img in zip(labels, images)],
        presets=[dict(name=n, text=t) for n, t in KERNEL_PRESETS.items()],
        sizes=list(KERNEL_SIZES), max_stride=3, max_padding=3, max_value=MAX_KERNEL_VALUE,
        colors=dict(negative=NEGATIVE, positive=POSITIVE, highlight=HIGHLIGHT),
    )


def pooling_explorer_data(images=None, labels=None) -> dict:
    """What the JavaScript pooling explorer embeds: the worked example and the digits."""
    maps = [dict(name="worked example 4×4", values=WORKED_POOLING_MAP.tolist(), scale=1)]
    if images is not None:
        images = np.asarray(images, dtype=float)
        labels = list(range(len(images))) if labels is None else [int(v) for v in labels]
        maps += [dict(name=f"digit {lab}", values=np.rint(img * 255).astype(int).tolist(), scale=255)
                 for lab, img in zip(labels, images)]
    return dict(maps=maps, max_size=4, max_stride=4, modes=list(POOL_MODES),
                colors=dict(negative=NEGATIVE, positive=POSITIVE, highlight=HIGHLIGHT))


def kernel_explorer_html(images, labels=None):
    """The kernel explorer as a self-contained HTML/JavaScript widget (``IPython.display.HTML``).

    Digits are embedded as bytes and divided by 255 in the page, like the Python version."""
    return _explorer_html("kernel", kernel_explorer_data(images, labels))


def pooling_explorer_html(images=None, labels=None):
    """The pooling explorer as a self-contained HTML/JavaScript widget (``IPython.display.HTML``)."""
    return _explorer_html("pooling", pooling_explorer_data(images, labels))


_EXPLORER_CSS = """
.scnn-explorer{border:1px solid rgba(128,128,128,.45);border-radius:6px;padding:10px 12px;margin:8px 0;
 font-size:14px;line-height:1.4;background:#fff;color:#1a1a1a}
.scnn-explorer .scnn-controls{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:flex-start;margin-bottom:6px}
.scnn-explorer label{display:inline-flex;align-items:center;gap:6px}
.scnn-explorer select,.scnn-explorer textarea{font:inherit;font-size:13px}
.scnn-explorer textarea{font-family:monospace;width:15em}
.scnn-explorer .scnn-panels{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.scnn-explorer figure{margin:0;text-align:center}
.scnn-explorer figcaption{font-size:12px;margin-top:2px;color:#333}
.scnn-explorer canvas{image-rendering:pixelated;border:1px solid rgba(128,128,128,.6);cursor:crosshair}
.scnn-explorer table.scnn-grid{display:inline-table;border-collapse:collapse;font-family:monospace;
 font-size:12px;margin:2px 6px;vertical-align:middle}
.scnn-explorer table.scnn-grid td{padding:1px 4px;text-align:right;border:1px solid rgba(128,128,128,.3)}
.scnn-explorer table.scnn-grid caption{font-size:11px;caption-side:top;color:#333}
.scnn-explorer .scnn-message{color:#A33A00;font-weight:bold;min-height:1.2em}
.scnn-explorer .scnn-formula,.scnn-explorer .scnn-window{margin-top:6px}
.scnn-explorer .scnn-hint{font-size:12px;opacity:.8}
"""

_EXPLORER_JS = r"""
window.SimpleCNNExplorers = (function () {
  "use strict";
  var NUMBER = "[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?";
  var TOKEN = new RegExp("^(" + NUMBER + ")(?:/(" + NUMBER + "))?$");

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }

  // A typed kernel is matched against a number pattern, never evaluated (same rules as
  // explorers.parse_kernel in Python).
  function parseNumber(token, maxValue) {
    var m = TOKEN.exec(token);
    if (!m) throw new Error("'" + token + "' is not a number (write numbers like 2, -0.5 or 1/9)");
    var v = parseFloat(m[1]);
    if (m[2] !== undefined) {
      var d = parseFloat(m[2]);
      if (d === 0) throw new Error("'" + token + "' divides by zero");
      v = v / d;
    }
    if (!(Math.abs(v) <= maxValue)) throw new Error("'" + token + "' is too large (keep values within ±" + maxValue + ")");
    return v;
  }

  function parseKernel(text, sizes, maxValue) {
    var allowed = sizes.map(function (s) { return s + "×" + s; }).join(" or ");
    var rows = [];
    text.replace(/[\[\]]/g, " ").split(/[;\n]/).forEach(function (line) {
      var tokens = line.trim().split(/[\s,]+/).filter(function (t) { return t.length > 0; });
      if (tokens.length) rows.push(tokens.map(function (t) { return parseNumber(t, maxValue); }));
    });
    if (!rows.length) throw new Error("the kernel is empty: type " + allowed + " numbers, one row per line");
    var n = rows.length;
    rows.forEach(function (row, i) {
      if (row.length !== n) throw new Error("row " + (i + 1) + " has " + row.length + (row.length === 1 ? " number" : " numbers") + " but there are " +
        n + " rows: a kernel is square (" + allowed + ")");
    });
    if (sizes.indexOf(n) < 0) throw new Error("a " + n + "×" + n + " kernel is not offered here: type " + allowed + " numbers");
    return rows;
  }

  function outputSize(n, k, s, p) {
    if (s < 1) throw new Error("stride must be at least 1");
    if (k > n + 2 * p) throw new Error("the kernel (" + k + ") is larger than the padded input (" + (n + 2 * p) + ")");
    return Math.floor((n + 2 * p - (k - 1) - 1) / s) + 1;
  }

  function pad(img, p) {
    var h = img.length, w = img[0].length, out = [];
    for (var r = 0; r < h + 2 * p; r++) {
      var row = [];
      for (var c = 0; c < w + 2 * p; c++) {
        var rr = r - p, cc = c - p;
        row.push(rr >= 0 && rr < h && cc >= 0 && cc < w ? img[rr][cc] : 0);
      }
      out.push(row);
    }
    return out;
  }

  // Cross-correlation with zero padding, as torch.nn.functional.conv2d computes it.
  function conv2d(img, ker, s, p) {
    var k = ker.length, x = pad(img, p);
    var ho = outputSize(img.length, k, s, p), wo = outputSize(img[0].length, k, s, p), out = [];
    for (var i = 0; i < ho; i++) {
      var row = [];
      for (var j = 0; j < wo; j++) {
        var acc = 0;
        for (var a = 0; a < k; a++) for (var b = 0; b < k; b++) acc += x[i * s + a][j * s + b] * ker[a][b];
        row.push(acc);
      }
      out.push(row);
    }
    return out;
  }

  function pool2d(m, k, s, mode) {
    var ho = outputSize(m.length, k, s, 0), wo = outputSize(m[0].length, k, s, 0), out = [];
    for (var i = 0; i < ho; i++) {
      var row = [];
      for (var j = 0; j < wo; j++) {
        var best = -Infinity, sum = 0;
        for (var a = 0; a < k; a++) for (var b = 0; b < k; b++) {
          var v = m[i * s + a][j * s + b];
          sum += v; if (v > best) best = v;
        }
        row.push(mode === "max" ? best : sum / (k * k));
      }
      out.push(row);
    }
    return out;
  }

  function hex(c) { return [parseInt(c.substr(1, 2), 16), parseInt(c.substr(3, 2), 16), parseInt(c.substr(5, 2), 16)]; }

  // Grey from 0 to the maximum for maps without negative values, else blue-white-vermillion
  // symmetric around 0 (the same rule as explorers.map_style).
  function colorizer(m, colors) {
    var lo = Infinity, top = 0;
    m.forEach(function (row) { row.forEach(function (v) { lo = Math.min(lo, v); top = Math.max(top, Math.abs(v)); }); });
    top = top || 1;
    var neg = hex(colors.negative), pos = hex(colors.positive);
    if (lo >= 0) return function (v) { var g = Math.round(255 * v / top); return [g, g, g]; };
    return function (v) {
      var t = Math.max(-1, Math.min(1, v / top)), c = t < 0 ? neg : pos, a = Math.abs(t);
      return [0, 1, 2].map(function (i) { return Math.round(255 + (c[i] - 255) * a); });
    };
  }

  function fmt(v, digits) {
    var s = Math.abs(v) < 1e-12 ? "0" : v.toPrecision(digits === undefined ? 3 : digits);
    if (s.indexOf("e") < 0 && s.indexOf(".") >= 0) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s;
  }

  // Draw a map on a canvas, cell by cell; opts.boxes are {r, c, h, w, color, width, dash}.
  function drawMap(canvas, m, colors, opts) {
    opts = opts || {};
    var h = m.length, w = m[0].length, size = opts.size || 200;
    var cell = Math.max(1, Math.floor(size / Math.max(h, w)));
    canvas.width = cell * w; canvas.height = cell * h;
    var ctx = canvas.getContext("2d"), color = colorizer(m, colors);
    for (var r = 0; r < h; r++) for (var c = 0; c < w; c++) {
      var rgb = color(m[r][c]);
      ctx.fillStyle = "rgb(" + rgb.join(",") + ")";
      ctx.fillRect(c * cell, r * cell, cell, cell);
      if (opts.numbers) {
        var lum = (rgb[0] * 299 + rgb[1] * 587 + rgb[2] * 114) / 1000;
        ctx.fillStyle = lum < 128 ? "#fff" : "#000";
        ctx.font = Math.round(cell / 3.2) + "px sans-serif";
        ctx.textAlign = "center"; ctx.textBaseline = "middle";
        ctx.fillText(fmt(m[r][c]), c * cell + cell / 2, r * cell + cell / 2);
      }
    }
    (opts.boxes || []).forEach(function (b) {
      ctx.save();
      ctx.lineWidth = b.width || 2;
      ctx.setLineDash(b.dash || []);
      if (b.halo) { ctx.strokeStyle = "#000"; ctx.lineWidth = (b.width || 2) + 2; ctx.strokeRect(b.c * cell, b.r * cell, b.w * cell, b.h * cell); ctx.lineWidth = b.width || 2; }
      ctx.strokeStyle = b.color;
      ctx.strokeRect(b.c * cell + 1, b.r * cell + 1, b.w * cell - 2, b.h * cell - 2);
      ctx.restore();
    });
    (opts.rings || []).forEach(function (g) {
      ctx.save(); ctx.strokeStyle = g.color; ctx.lineWidth = 2.5;
      ctx.beginPath(); ctx.arc(g.c * cell + cell / 2, g.r * cell + cell / 2, cell * 0.38, 0, 2 * Math.PI); ctx.stroke();
      ctx.restore();
    });
    return cell;
  }

  function gridTable(m, caption, digits) {
    var t = el("table", { "class": "scnn-grid" }, [el("caption", { text: caption })]);
    m.forEach(function (row) {
      t.appendChild(el("tr", {}, row.map(function (v) { return el("td", { text: fmt(v, digits) }); })));
    });
    return t;
  }

  function slider(label, min, max, value) {
    var input = el("input", { type: "range", min: min, max: max, step: 1, value: value });
    var shown = el("output", { text: String(value) });
    input.addEventListener("input", function () { shown.textContent = input.value; });
    var wrap = el("label", {}, [label, input, shown]);
    return { wrap: wrap, input: input, set: function (v, hi) {
      if (hi !== undefined) input.max = hi;
      input.value = v; shown.textContent = String(v);
    } };
  }

  function select(label, options, value) {
    var s = el("select", {});
    options.forEach(function (o) { s.appendChild(el("option", { value: o[0], text: o[1] })); });
    s.value = value;
    return { wrap: el("label", {}, [label, s]), input: s };
  }

  function cellAt(canvas, cell, event) {
    var rect = canvas.getBoundingClientRect();
    var sx = canvas.width / rect.width, sy = canvas.height / rect.height;
    return { r: Math.floor((event.clientY - rect.top) * sy / cell), c: Math.floor((event.clientX - rect.left) * sx / cell) };
  }

  function readData(root) { return JSON.parse(root.querySelector("script.scnn-data").textContent); }

  function kernel(root) {
    var data = readData(root), colors = data.colors;
    var digits = data.digits.map(function (d) {
      var px = d.pixels.map(function (row) { return row.map(function (v) { return v / 255; }); });
      return { label: d.label, pixels: px };
    });
    var TYPED = "typed";
    var state = { digit: 0, kernel: parseKernel(data.presets[0].text, data.sizes, data.max_value), preset: "0",
                  stride: 1, padding: 0, row: 12, col: 12 };
    var digitSel = select("Digit", digits.map(function (d, i) { return [String(i), "digit " + d.label]; }), "0");
    var kernelSel = select("Kernel", data.presets.map(function (p, i) { return [String(i), p.name]; })
      .concat([[TYPED, "typed values (edit the box)"]]), "0");
    var text = el("textarea", { rows: 5, spellcheck: "false", "aria-label": "kernel values" });
    text.value = data.presets[0].text;
    var stride = slider("Stride", 1, data.max_stride, 1), padding = slider("Padding", 0, data.max_padding, 0);
    var row = slider("Window row", 0, 25, 12), col = slider("Window column", 0, 25, 12);
    var message = el("div", { "class": "scnn-message", role: "alert", "aria-live": "polite" });
    var inCanvas = el("canvas", { "class": "scnn-input", role: "img", "aria-label": "input digit with the current window" });
    var outCanvas = el("canvas", { "class": "scnn-output", role: "img", "aria-label": "output feature map" });
    var inCap = el("figcaption"), outCap = el("figcaption"), kerBox = el("div", { "class": "scnn-kernel" });
    var formula = el("div", { "class": "scnn-formula" }), windowBox = el("div", { "class": "scnn-window" });
    root.appendChild(el("div", { "class": "scnn-controls" }, [
      el("div", {}, [digitSel.wrap, el("br"), kernelSel.wrap, el("br"), stride.wrap, el("br"), padding.wrap]),
      el("div", {}, [el("label", {}, ["Kernel values", text]),
        el("div", { "class": "scnn-hint", text: "3×3 or 5×5 numbers, one row per line; 1/9 or -0.5 are fine." })]),
    ]));
    root.appendChild(message);
    root.appendChild(el("div", { "class": "scnn-controls" }, [row.wrap, col.wrap,
      el("span", { "class": "scnn-hint", text: "or click the output map to pick a window" })]));
    root.appendChild(el("div", { "class": "scnn-panels" }, [
      el("figure", {}, [inCanvas, inCap]), el("figure", {}, [kerBox]), el("figure", {}, [outCanvas, outCap])]));
    root.appendChild(formula);
    root.appendChild(windowBox);
    var outCell = 1;

    function render() {
      var img = digits[state.digit].pixels, k = state.kernel.length, s = state.stride, p = state.padding;
      var out = conv2d(img, state.kernel, s, p), n = out.length;
      state.row = Math.min(state.row, n - 1); state.col = Math.min(state.col, n - 1);
      row.set(state.row, n - 1); col.set(state.col, n - 1);
      var top = state.row * s, left = state.col * s, padded = pad(img, p);
      var boxes = [{ r: top, c: left, h: k, w: k, color: colors.highlight, width: 3, halo: true }];
      if (p > 0) boxes.unshift({ r: p, c: p, h: img.length, w: img[0].length, color: "#56B4E9", width: 1, dash: [4, 3] });
      drawMap(inCanvas, padded, colors, { boxes: boxes });
      inCap.textContent = "input " + img.length + "×" + img[0].length + ", padding " + p;
      outCell = drawMap(outCanvas, out, colors, { boxes: [{ r: state.row, c: state.col, h: 1, w: 1, color: colors.highlight, width: 3, halo: true }] });
      outCap.textContent = "output " + n + "×" + out[0].length + ", stride " + s;
      kerBox.replaceChildren(gridTable(state.kernel, "kernel " + k + "×" + k, 3));
      kerBox.firstChild.style.fontSize = k > 3 ? "10px" : "13px";
      var H = img.length, num = H + 2 * p - (k - 1) - 1;
      formula.replaceChildren(el("b", { text: "Output size " }),
        "H_out = ⌊(H_in + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1 = ⌊(" + H + " + 2·" + p + " − 1·(" + k +
        " − 1) − 1) / " + s + "⌋ + 1 = ⌊" + num + " / " + s + "⌋ + 1 = " + n + " → the feature map is " + n + "×" + out[0].length + ".");
      var patch = [], prods = [], sum = 0;
      for (var a = 0; a < k; a++) {
        patch.push([]); prods.push([]);
        for (var b = 0; b < k; b++) {
          var v = padded[top + a][left + b], q = v * state.kernel[a][b];
          patch[a].push(v); prods[a].push(q); sum += q;
        }
      }
      windowBox.replaceChildren(el("b", { text: "Window (" + state.row + ", " + state.col + ")" }),
        ": rows " + top + "–" + (top + k - 1) + ", columns " + left + "–" + (left + k - 1) + " of the padded input. ",
        el("br"), gridTable(patch, "input patch", 2), " ⊙ ", gridTable(state.kernel, "kernel", 3), " = ",
        gridTable(prods, "products", 2), " → sum = ", el("b", { "class": "scnn-sum", text: sum.toFixed(3) }),
        " = output[" + state.row + ", " + state.col + "]");
      root.simplecnnState = { digit: state.digit, kernel: state.kernel, stride: s, padding: p,
                              row: state.row, col: state.col, output: out, windowSum: sum };
    }

    function readText() {
      try {
        state.kernel = parseKernel(text.value, data.sizes, data.max_value);
        message.textContent = "";
        var match = data.presets.findIndex(function (p) { return p.text.trim() === text.value.trim(); });
        kernelSel.input.value = match >= 0 ? String(match) : TYPED;
        render();
      } catch (err) {
        message.textContent = "⚠ Could not read the kernel: " + err.message + ". The explorer keeps the last kernel that worked.";
      }
    }

    digitSel.input.addEventListener("change", function () { state.digit = +digitSel.input.value; render(); });
    kernelSel.input.addEventListener("change", function () {
      if (kernelSel.input.value === TYPED) { text.focus(); return; }
      text.value = data.presets[+kernelSel.input.value].text;
      readText();
    });
    text.addEventListener("input", readText);
    stride.input.addEventListener("input", function () { state.stride = +stride.input.value; render(); });
    padding.input.addEventListener("input", function () { state.padding = +padding.input.value; render(); });
    row.input.addEventListener("input", function () { state.row = +row.input.value; render(); });
    col.input.addEventListener("input", function () { state.col = +col.input.value; render(); });
    outCanvas.addEventListener("click", function (e) {
      var at = cellAt(outCanvas, outCell, e); state.row = Math.max(0, at.r); state.col = Math.max(0, at.c); render();
    });
    var first = conv2d(digits[0].pixels, state.kernel, 1, 0), best = -1;
    first.forEach(function (r, i) { r.forEach(function (v, j) { if (Math.abs(v) > best) { best = Math.abs(v); state.row = i; state.col = j; } }); });
    render();
  }

  function pooling(root) {
    var data = readData(root), colors = data.colors;
    var maps = data.maps.map(function (m) {
      return { name: m.name, values: m.values.map(function (row) { return row.map(function (v) { return v / m.scale; }); }) };
    });
    var state = { map: 0, size: 2, stride: 2, mode: "max", row: 0, col: 0 };
    var mapSel = select("Map", maps.map(function (m, i) { return [String(i), m.name]; }), "0");
    var modeSel = select("Pooling", data.modes.map(function (m) { return [m, m]; }), "max");
    var size = slider("Window", 1, data.max_size, 2), stride = slider("Stride", 1, data.max_stride, 2);
    var row = slider("Window row", 0, 1, 0), col = slider("Window column", 0, 1, 0);
    var message = el("div", { "class": "scnn-message", role: "alert", "aria-live": "polite" });
    var inCanvas = el("canvas", { "class": "scnn-input", role: "img", "aria-label": "feature map with the pooling windows" });
    var outCanvas = el("canvas", { "class": "scnn-output", role: "img", "aria-label": "pooled map" });
    var inCap = el("figcaption"), outCap = el("figcaption");
    var formula = el("div", { "class": "scnn-formula" }), windowBox = el("div", { "class": "scnn-window" });
    root.appendChild(el("div", { "class": "scnn-controls" }, [mapSel.wrap, modeSel.wrap, size.wrap, stride.wrap]));
    root.appendChild(el("div", { "class": "scnn-controls" }, [row.wrap, col.wrap,
      el("span", { "class": "scnn-hint", text: "or click the pooled map to pick a window" })]));
    root.appendChild(message);
    root.appendChild(el("div", { "class": "scnn-panels" }, [el("figure", {}, [inCanvas, inCap]), el("figure", {}, [outCanvas, outCap])]));
    root.appendChild(formula);
    root.appendChild(windowBox);
    var outCell = 1;

    function render() {
      var m = maps[state.map].values, k = state.size, s = state.stride, out;
      try { out = pool2d(m, k, s, state.mode); message.textContent = ""; }
      catch (err) { message.textContent = "⚠ " + err.message; return; }
      var ho = out.length, wo = out[0].length, small = m.length <= 8;
      state.row = Math.min(state.row, ho - 1); state.col = Math.min(state.col, wo - 1);
      row.set(state.row, ho - 1); col.set(state.col, wo - 1);
      var boxes = [];
      for (var i = 0; i < ho; i++) for (var j = 0; j < wo; j++)
        boxes.push({ r: i * s, c: j * s, h: k, w: k, color: "rgba(86,180,233,0.6)", width: 1 });
      var top = state.row * s, left = state.col * s, vals = [], best = -Infinity, arg = null, sum = 0;
      for (var a = 0; a < k; a++) {
        vals.push([]);
        for (var b = 0; b < k; b++) {
          var v = m[top + a][left + b]; vals[a].push(v); sum += v;
          if (v > best) { best = v; arg = { r: top + a, c: left + b }; }
        }
      }
      boxes.push({ r: top, c: left, h: k, w: k, color: colors.highlight, width: 3, halo: true });
      drawMap(inCanvas, m, colors, { numbers: small, boxes: boxes, size: 252,
        rings: state.mode === "max" ? [{ r: arg.r, c: arg.c, color: colors.positive }] : [] });
      inCap.textContent = "map " + m.length + "×" + m[0].length + ": windows " + k + "×" + k + ", stride " + s;
      var inCell = Math.max(1, Math.floor(252 / Math.max(m.length, m[0].length)));
      outCell = drawMap(outCanvas, out, colors, { numbers: small, size: Math.max(48, Math.min(252, inCell * s * Math.max(ho, wo))),
        boxes: [{ r: state.row, c: state.col, h: 1, w: 1, color: colors.highlight, width: 3, halo: true }] });
      outCap.textContent = state.mode + " pooled " + ho + "×" + wo;
      formula.replaceChildren(el("b", { text: "Output size " }), "H_out = ⌊(H_in − window) / stride⌋ + 1 = ⌊(" +
        m.length + " − " + k + ") / " + s + "⌋ + 1 = ⌊" + (m.length - k) + " / " + s + "⌋ + 1 = " + ho +
        " → the pooled map is " + ho + "×" + wo + ".");
      var value = state.mode === "max" ? best : sum / (k * k);
      windowBox.replaceChildren(el("b", { text: "Window (" + state.row + ", " + state.col + ")" }),
        ": rows " + top + "–" + (top + k - 1) + ", columns " + left + "–" + (left + k - 1) + ". ",
        gridTable(vals, "values", 3), " → " + (state.mode === "max" ? "maximum" : "average") + " = ",
        el("b", { "class": "scnn-value", text: fmt(value) }), " = output[" + state.row + ", " + state.col + "]");
      root.simplecnnState = { map: state.map, size: k, stride: s, mode: state.mode, row: state.row, col: state.col,
                              output: out, windowValue: value };
    }

    mapSel.input.addEventListener("change", function () { state.map = +mapSel.input.value; render(); });
    modeSel.input.addEventListener("change", function () { state.mode = modeSel.input.value; render(); });
    size.input.addEventListener("input", function () { state.size = +size.input.value; render(); });
    stride.input.addEventListener("input", function () { state.stride = +stride.input.value; render(); });
    row.input.addEventListener("input", function () { state.row = +row.input.value; render(); });
    col.input.addEventListener("input", function () { state.col = +col.input.value; render(); });
    outCanvas.addEventListener("click", function (e) {
      var at = cellAt(outCanvas, outCell, e); state.row = Math.max(0, at.r); state.col = Math.max(0, at.c); render();
    });
    render();
  }

  function safely(fn) {
    return function (root) {
      try { fn(root); }
      catch (err) { root.appendChild(el("div", { "class": "scnn-message", role: "alert", text: "⚠ The explorer could not start: " + err.message })); }
    };
  }

  return { kernel: safely(kernel), pooling: safely(pooling), parseKernel: parseKernel, conv2d: conv2d, pool2d: pool2d };
})();
"""
