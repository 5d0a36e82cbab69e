"""Exercises of chapter 1, convolution (notebook 01-convolution)."""

import numpy as np
import torch
import torch.nn as nn

from cnnkit import scratch
from cnnkit.exercises import Wrong, exercise, number_array, whole_number, whole_numbers

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
        ("shape = (16, 14, 14)\nparams = 1216", "that is the size without padding"),
        ("shape = (16, 30, 30)\nparams = 1216", "that is the size with stride 1"),
        ("shape = (16, 15, 15)\nparams = 16 * 3 * 5 * 5", "counts the weights only"),
        ("shape = (16, 15, 15)\nparams = 16 * 5 * 5 + 16", "counts one 5×5 kernel per filter"),
        ("shape = (3, 15, 15)\nparams = 1216", "one output channel per filter"),
        ("shape = (1, 16, 15, 15)\nparams = 1216", "leave out the batch size"),
        ("shape = 16 * 15 * 15\nparams = 1216", "give the shape as a tuple"),
    ],
)
def _(shape, params):
    layer = nn.Conv2d(3, 16, kernel_size=5, stride=2, padding=1)
    expected = tuple(layer(torch.zeros(1, 3, 32, 32)).shape[1:])
    shape = whole_numbers(shape, "the shape", "(channels, height, width)")
    if len(shape) == 4:
        raise Wrong("you gave 4 numbers: leave out the batch size and give (channels, height, width).")
    if len(shape) != 3:
        raise Wrong(
            f"give the shape of one output as (channels, height, width); you gave {len(shape)} numbers."
        )
    if shape[0] != expected[0]:
        raise Wrong(f"{shape[0]} channels: a convolution has one output channel per filter.")
    if shape[1:] != expected[1:]:
        side = shape[1]
        if side == scratch.conv_output_size(32, 5, stride=2):
            why = "that is the size without padding: the padding adds 2·1 pixels to each side's length."
        elif side == scratch.conv_output_size(32, 5, padding=1):
            why = "that is the size with stride 1: stride 2 visits every second position."
        else:
            why = "put size 32, kernel 5, stride 2 and padding 1 into ⌊(size + 2·padding − kernel) / stride⌋ + 1."
        raise Wrong(f"height and width {shape[1:]}: {why}")
    params = whole_number(params, "the number of parameters")
    n = sum(p.numel() for p in layer.parameters())
    if params == n - 16:
        raise Wrong(f"{params} counts the weights only; each of the 16 filters also has a bias.")
    if params == 16 * 5 * 5 + 16:
        raise Wrong(
            f"{params} counts one 5×5 kernel per filter; a filter has one kernel per input "
            "channel, 3 × 5 × 5 weights."
        )
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
    wrong=[
        ("padding_5x5 = 2\npadding_3x3_dilated = 1", "with dilation 2 turns 28 pixels into 26"),
        ("padding_5x5 = 4\npadding_3x3_dilated = 2", "a 5×5 kernel turns 28 pixels into 32"),
        ("padding_5x5 = 2.5\npadding_3x3_dilated = 2", "it should be a whole number"),
        ("padding_5x5 = -2\npadding_3x3_dilated = 2", "padding adds zeros, so it is 0 or more"),
    ],
)
def _(padding_5x5, padding_3x3_dilated):
    for padding, k, d in ((padding_5x5, 5, 1), (padding_3x3_dilated, 3, 2)):
        what = f"a {k}×{k} kernel" + (f" with dilation {d}" if d > 1 else "")
        padding = whole_number(padding, f"the padding for {what}")
        if padding < 0:
            raise Wrong(f"the padding for {what} is {padding}: padding adds zeros, so it is 0 or more.")
        out = scratch.conv_output_size(28, k, padding=padding, dilation=d)
        if out != 28:
            raise Wrong(
                f"with padding {padding}, {what} turns 28 pixels into {out}; each extra unit of "
                "padding adds 2 pixels to the output."
            )


@exercise(
    "1.3",
    NOTEBOOK,
    "a full convolution by hand",
    hint="flip the kernel to [0.5, 1, 0] and slide it over the signal padded with two zeros on "
    "each side; the result has 3 + 3 − 1 = 5 values.",
    solution="full = [0, 1, 2.5, 4, 1.5]",
    wrong=[
        ("full = [0, 1, 2.5, 4]", "4 values: a full convolution of 3 values with 3 values has"),
        ("full = [2.5]", "the one position where the kernel fits inside the signal"),
        ("full = [1, 2.5, 4]", "those are the middle 3 values"),
        ("full = [0.5, 2, 3.5, 3, 0]", "that is the cross-correlation"),
        ("full = [1.5, 4, 2.5, 1, 0]", "the values are right but reversed"),
        ("full = [0, 1, 2.5, 4, 1]", "y[4] is off"),
    ],
)
def _(full):
    full = number_array(full, "full").ravel()
    signal, kernel = [1, 2, 3], [0, 1, 0.5]
    expected = np.convolve(signal, kernel)
    if full.shape != expected.shape:
        valid, same = (np.convolve(signal, kernel, mode=m) for m in ("valid", "same"))
        if full.shape == valid.shape and np.allclose(full, valid):
            raise Wrong(
                "that is the one position where the kernel fits inside the signal; the full "
                "convolution also counts the positions where it hangs over the ends (5 values)."
            )
        if full.shape == same.shape and np.allclose(full, same):
            raise Wrong("those are the middle 3 values; the full convolution has 3 + 3 − 1 = 5.")
        raise Wrong(f"{full.size} values: a full convolution of 3 values with 3 values has 3 + 3 − 1 = 5.")
    if np.allclose(full, np.correlate(signal, kernel, mode="full")):
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
        ("kernel = np.array([[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]])", "the horizontal line should win"),
        ("kernel = np.ones((3, 3))", "on a flat patch it answers 9, not 0"),
        ("kernel = np.array([[1, 1, 1], [2, 2, 2], [1, 1, 1]])", "on a flat patch it answers 12, not 0"),
        ("kernel = np.zeros((5, 5))", "make it 3×3"),
        ("kernel = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])", "(as Sobel y does)"),
        ("kernel = np.array([[1, 1, 1], [-2, -2, -2], [1, 1, 1]])", "Swap the signs"),
    ],
)
def _(kernel):
    kernel = number_array(kernel, "the kernel")
    if kernel.shape != (3, 3):
        raise Wrong(f"the kernel has shape {kernel.shape}; make it 3×3.")
    if not np.allclose(scratch.conv2d(np.ones((5, 5)), kernel), 0):
        raise Wrong(f"on a flat patch it answers {kernel.sum():g}, not 0: make the weights sum to 0.")
    line = np.zeros((9, 9))
    line[4, :] = 1.0  # a horizontal stroke along row 4
    # with padding 1, output (r, c) is centred on pixel (r, c); the ends of the line are left out
    on_horizontal = scratch.conv2d(line, kernel, padding=1)[:, 1:-1]
    on_vertical = scratch.conv2d(line.T, kernel, padding=1)[1:-1, :].max()
    best = on_horizontal.max()
    if best <= 0 or best < 2 * max(on_vertical, 0):
        raise Wrong(
            f"its strongest response is {best:g} to a horizontal line and {on_vertical:g} "
            "to a vertical one; the horizontal line should win by at least a factor of 2."
        )
    if on_horizontal[4].max() < 0:
        raise Wrong(
            f"centred on the line it answers {on_horizontal[4].max():g}: it is negative where the "
            "stroke is and positive next to it. Swap the signs."
        )
    rows = sorted({int(r) for r in np.flatnonzero(np.isclose(on_horizontal.max(axis=1), best))})
    if rows != [4]:
        raise Wrong(
            f"its strongest response to the line on row 4 is on row(s) {rows}, next to the line "
            "rather than on it: it finds the edges of the stroke (as Sobel y does), not the stroke. "
            "Make the weights of the middle row positive and those of the rows around it negative."
        )
    return f"(horizontal line {best:g}, vertical line {on_vertical:g})"
