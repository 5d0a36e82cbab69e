"""Exercises of chapter 1, convolution (notebook 01-convolution)."""

import numpy as np
import torch
import torch.nn as nn

from cnnkit import scratch
from cnnkit.exercises import Wrong, answered, exercise

NOTEBOOK = "01-convolution"


@exercise(
    "1.1",
    NOTEBOOK,
    "shape and size of a convolution layer",
    hint="one output channel per filter; height and width from ⌊(32 + 2·1 − 5) / 2⌋ + 1; each "
    "filter has 3 × 5 × 5 weights and one bias.",
    solution="""
        shape = (16, 15, 15)
        params = 16 * (3 * 5 * 5) + 16
    """,
    wrong=[
        "shape = (16, 14, 14)\nparams = 1216",
        "shape = (16, 15, 15)\nparams = 16 * 3 * 5 * 5",
        "shape = (3, 15, 15)\nparams = 1216",
    ],
)
def _(shape, params):
    layer = nn.Conv2d(3, 16, kernel_size=5, stride=2, padding=1)
    expected = tuple(layer(torch.zeros(1, 3, 32, 32)).shape[1:])
    shape = tuple(answered(shape, "the shape"))
    if len(shape) != 3:
        raise Wrong(
            f"give the shape of one output as (channels, height, width); you gave {len(shape)} numbers."
        )
    if shape[0] != expected[0]:
        raise Wrong(f"{shape[0]} channels: a convolution has one output channel per filter.")
    if shape[1:] != expected[1:]:
        raise Wrong(
            f"height and width {shape[1:]}: put size 32, kernel 5, stride 2 and padding 1 into "
            "⌊(size + 2·padding − kernel) / stride⌋ + 1."
        )
    n = sum(p.numel() for p in layer.parameters())
    if params == n - 16:
        raise Wrong(f"{params} counts the weights only; each of the 16 filters also has a bias.")
    if params != n:
        raise Wrong(f"{params} parameters: each filter has in_channels × 5 × 5 weights and one bias.")


@exercise(
    "1.2",
    NOTEBOOK,
    "padding that keeps the size",
    hint="with stride 1 the output is size + 2·padding − span + 1, where a k×k kernel with "
    "dilation d spans d·(k − 1) + 1 pixels.",
    solution="""
        padding_5x5 = 2
        padding_3x3_dilated = 2
    """,
    wrong=["padding_5x5 = 2\npadding_3x3_dilated = 1", "padding_5x5 = 4\npadding_3x3_dilated = 2"],
)
def _(padding_5x5, padding_3x3_dilated):
    for padding, k, d in ((padding_5x5, 5, 1), (padding_3x3_dilated, 3, 2)):
        out = scratch.conv_output_size(28, k, padding=int(answered(padding)), dilation=d)
        if out != 28:
            what = f"a {k}×{k} kernel" + (f" with dilation {d}" if d > 1 else "")
            raise Wrong(f"with padding {padding}, {what} turns 28 pixels into {out}.")


@exercise(
    "1.3",
    NOTEBOOK,
    "a full convolution by hand",
    hint="flip the kernel to [0.5, 1, 0] and slide it over the signal padded with two zeros on "
    "each side; the result has 3 + 3 − 1 = 5 values.",
    solution="full = [0, 1, 2.5, 4, 1.5]",
    wrong=["full = [0, 1, 2.5, 4]", "full = [0.5, 2, 3.5, 3, 0]", "full = [1.5, 4, 2.5, 1, 0]"],
)
def _(full):
    full = np.asarray(answered(full), dtype=float)
    expected = np.convolve([1, 2, 3], [0, 1, 0.5])
    if full.shape != expected.shape:
        raise Wrong(f"{full.size} values: a full convolution of 3 values with 3 values has 3 + 3 − 1 = 5.")
    if np.allclose(full, np.correlate([1, 2, 3], [0, 1, 0.5], mode="full")):
        raise Wrong("that is the cross-correlation: a convolution flips the kernel before sliding it.")
    if np.allclose(full, expected[::-1]):
        raise Wrong("the values are right but reversed: y[0] = x[0]·h[0] comes first.")
    if not np.allclose(full, expected):
        bad = int(np.flatnonzero(~np.isclose(full, expected))[0])
        raise Wrong(f"y[{bad}] is off: it is the sum of x[i]·h[{bad} − i] over the i where both exist.")


@exercise(
    "1.4",
    NOTEBOOK,
    "a kernel for horizontal strokes",
    kind="code",
    hint="a 3×3 array whose weights sum to 0, positive in the middle row and negative above and below it.",
    solution="""
        kernel = np.array([[-1, -1, -1],
                           [ 2,  2,  2],
                           [-1, -1, -1]])
    """,
    wrong=[
        "kernel = np.array([[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]])",
        "kernel = np.ones((3, 3))",
        "kernel = np.array([[1, 1, 1], [2, 2, 2], [1, 1, 1]])",
        "kernel = np.zeros((5, 5))",
    ],
)
def _(kernel):
    kernel = np.asarray(answered(kernel, "the kernel"), dtype=float)
    if kernel.shape != (3, 3):
        raise Wrong(f"the kernel has shape {kernel.shape}; make it 3×3.")
    if not np.allclose(scratch.conv2d(np.ones((5, 5)), kernel), 0):
        raise Wrong(f"on a flat patch it answers {kernel.sum():g}, not 0: make the weights sum to 0.")
    line = np.zeros((9, 9))
    line[4, :] = 1.0
    on_horizontal = scratch.conv2d(line, kernel).max()
    on_vertical = scratch.conv2d(line.T, kernel).max()
    if on_horizontal <= 0 or on_horizontal < 2 * max(on_vertical, 0):
        raise Wrong(
            f"its strongest response is {on_horizontal:g} to a horizontal line and {on_vertical:g} "
            "to a vertical one; the horizontal line should win by at least a factor of 2."
        )
    return f"(horizontal line {on_horizontal:g}, vertical line {on_vertical:g})"
