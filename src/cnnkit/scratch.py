"""Convolution and pooling written from scratch in NumPy (chapters 1 and 2).

Each function does what a PyTorch function does, in a form short enough to read, and the
chapters check it against PyTorch before using the library version:

* output sizes: :func:`conv_output_size`, :func:`pool_output_size` (and the formulas with the
  numbers filled in, for printing);
* :func:`conv1d` (``np.convolve``), :func:`conv2d` (``F.conv2d``, a cross-correlation),
  :func:`pool2d` (``F.max_pool2d``, ``F.avg_pool2d``) and :func:`max_pool2d_backward`;
* :func:`conv_window`, :func:`pool_window`: the numbers behind one output value.
* :data:`WORKED_POOLING_MAP`: the 4×4 map of chapter 2's worked example.

Bad settings raise a ``ValueError`` that says what was expected.
"""

from __future__ import annotations

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


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
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


def conv_size_formula(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> str:
    """The output-size formula with the numbers filled in, as plain text, e.g.
    ``⌊(28 + 2·0 − 1·(5 − 1) − 1) / 1⌋ + 1 = 24``."""
    out = conv_output_size(size, kernel_size, stride, padding, dilation)
    return (
        f"⌊({size} + 2·{padding} − {dilation}·({kernel_size} − 1) − 1) / {stride}⌋ + 1 "
        f"= ⌊{size + 2 * padding - dilation * (kernel_size - 1) - 1} / {stride}⌋ + 1 = {out}"
    )


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
    lines = [
        "x, zero-padded " + cells(["0"] * (k - 1) + [f"{v:g}" for v in x] + ["0"] * (k - 1)),
        "flipped h at shift n:",
    ]
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
        raise ValueError(
            f"the input has {x.shape[1]} channels but the weight expects {w.shape[1]} "
            f"(weight shape {w.shape})"
        )
    (sh, sw), (ph, pw), (dh, dw) = (
        _pair(stride, "stride"),
        _pair(padding, "padding"),
        _pair(dilation, "dilation"),
    )
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
    patch = padded[top : top + k, left : left + kernel.shape[1]]
    products = patch * kernel
    return dict(top=top, left=left, patch=patch, products=products, value=float(products.sum()))


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------

POOL_MODES = ("max", "average")

#: The 4×4 map of the pooling chapter's worked example (its explorers start on it, and its
#: exercises pool it).
WORKED_POOLING_MAP = np.array([[1, 3, 2, 1], [4, 6, 5, 0], [3, 1, 1, 2], [0, 2, 4, 7]], dtype=float)


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


def pool_window(
    fmap, kernel_size: int = 2, stride: int | None = None, mode: str = "max", row: int = 0, col: int = 0
) -> dict:
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
    values = fmap[top : top + kernel_size, left : left + kernel_size]
    i = int(values.argmax())
    argmax = (top + i // kernel_size, left + i % kernel_size)
    value = float(values.max() if mode == "max" else values.mean())
    return dict(top=top, left=left, values=values, value=value, argmax=argmax)


def relative_change(a, b) -> float:
    """``||a - b|| / ||a||``: how much a map changed, independent of its size and scale."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    norm = np.linalg.norm(a)
    if norm == 0:
        raise ValueError("the reference map is all zeros")
    return float(np.linalg.norm(a - b) / norm)
