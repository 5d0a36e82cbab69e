"""Draw the figures of the theory pages: the pictures of a batch as a tensor, softmax, convolution
and dilation, pooling and its gradient, the receptive field, the input gradient of a convolution,
the area averaging that scales a drawing, the network and its training loop, dropout, batch norm,
memory layouts and floating-point formats, and the curves of activations, losses, optimization,
the one-cycle schedule, regularization and training and validation loss.

Run from the repository root: ``python chapters/figures/make_figures.py`` (``make book`` does it
first). It writes the SVG files next to this script, the same bytes on every run. Every number in
a figure is computed here (with NumPy, PyTorch or the course's own model), not typed in; the
notebooks draw the same curves from their own from-scratch code.
"""

from fractions import Fraction
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.colors import to_rgb
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.path import Path as GlyphPath
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

import simplecnn as sc
from cnnkit.digitlab import area_weights
from cnnkit.inspection import layer_shapes
from cnnkit.kernels import kernel_presets
from cnnkit.mnist import split_indices
from cnnkit.plots import COLORS
from cnnkit.scratch import WORKED_POOLING_MAP

OUT = Path(__file__).resolve().parent
STYLES = ["-", "--", "-.", ":"]
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "simplecnn", "font.size": 10})


def save(fig, name):
    # An opaque white background: the figures stay readable on the book's dark theme.
    fig.savefig(OUT / name, format="svg", bbox_inches="tight", metadata={"Date": None}, facecolor="white")
    plt.close(fig)


# --- Drawing helpers for the pictures (boxes, grids of numbers, arrows) -------------------------


def tint(color, amount=0.25):
    """``color`` mixed with white: ``amount`` 1 is the colour itself, 0 is white."""
    return tuple(1 - amount * (1 - c) for c in to_rgb(color))


def shade(color, amount=0.7):
    """``color`` darkened towards black (for text, which needs more contrast than a fill)."""
    return tuple(amount * c for c in to_rgb(color))


def num(value) -> str:
    """A number as the figures print it: integers without a decimal point, a true minus sign."""
    value = float(value)
    text = str(int(value)) if value.is_integer() else f"{value:g}"
    return text.replace("-", "\u2212")


def sci(value, digits=2) -> str:
    """A number in scientific notation as the figures print it: 1.5\u00b710\u207b\u00b2."""
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    superscript = str(int(exponent)).translate(
        str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
    )
    return f"{mantissa}\u00b710{superscript}"


def canvas(figsize, xlim, ylim, down=True):
    """A figure with one blank axes in data units; with ``down``, y grows downwards like the rows
    of a matrix."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(*xlim)
    ax.set_ylim(*(ylim[::-1] if down else ylim))
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig, ax


def cell(ax, x, y, text="", fill="white", edge="0.35", size=1.0, lw=0.8, ls="-", color="black", **kw):
    """One square cell with its top-left corner at (x, y) (y down) and a label in its middle."""
    ax.add_patch(Rectangle((x, y), size, size, facecolor=fill, edgecolor=edge, linewidth=lw, linestyle=ls))
    if text != "":
        ax.text(x + size / 2, y + size / 2, text, ha="center", va="center", color=color, **kw)


def grid(ax, values, x, y, fill="white", size=1.0, fontsize=11, **kw):
    """A matrix of numbers as a grid of cells, top-left corner at (x, y); ``fill`` is one colour or
    a function of (row, column)."""
    values = np.asarray(values)
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            colour = fill(r, c) if callable(fill) else fill
            cell(
                ax, x + c * size, y + r * size, num(values[r, c]), colour, size=size, fontsize=fontsize, **kw
            )


def outline(ax, x, y, w, h, color, lw=2.5, ls="-", zorder=4):
    ax.add_patch(
        Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=lw, linestyle=ls, zorder=zorder)
    )


def arrow(ax, start, end, color="0.25", lw=1.5, style="-|>", rad=0.0, ls="-", **kw):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=14,
            color=color,
            linewidth=lw,
            linestyle=ls,
            connectionstyle=f"arc3,rad={rad}",
            **kw,
        )
    )


def box(ax, x, y, w, h, text, edge="0.3", fill="white", ls="-", lw=1.5, fontsize=10, heading=None, **kw):
    """A rounded box with centred text, centre at (x, y); returns the patch (for arrows). A
    ``heading`` is set in bold as the text's first line."""
    patch = FancyBboxPatch(
        (x - w / 2, y - h / 2),
        w,
        h,
        boxstyle="round,pad=0,rounding_size=0.12",
        facecolor=fill,
        edgecolor=edge,
        linewidth=lw,
        linestyle=ls,
        zorder=2,
    )
    ax.add_patch(patch)
    style = dict(ha="center", va="center", fontsize=fontsize, zorder=3, linespacing=1.35, **kw)
    if heading is None:
        ax.text(x, y, text, **style)
        return patch
    lines = text.count("\n") + 1
    # Two texts of the same number of lines, so that their lines fall on the same places.
    ax.text(x, y, heading + "\n " * lines, weight="bold", **style)
    ax.text(x, y, " \n" + text, **style)
    return patch


# --- Chapter 1: convolution ---------------------------------------------------------------------


def conv1d_flip_slide():
    """The worked example of chapter 1: x = [3, 2, 1, 0] convolved with h = [1, 0, -1]."""
    x = np.array([3, 2, 1, 0])
    h = np.array([1, 0, -1])
    y = np.convolve(x, h)  # the full convolution, len(x) + len(h) - 1 values
    flipped = h[::-1]
    k = len(h)
    shown = (0, 2, 4)  # three positions of the flipped kernel: hanging over the left end, inside, right
    lo, hi = -(k - 1), len(y) - 1  # the columns the flipped kernel visits (x is zero outside 0..3)
    x0 = 5.6 - lo  # the column of x[0]
    right = x0 + hi + 1.6
    width = right + 13.2
    fig, ax = canvas((11, 5.5), (0, width), (-3.6, 10.0))
    ax.text(
        width / 2,
        -3.3,
        "1D convolution: flip the kernel, slide it along the signal, multiply and add",
        ha="center",
        va="center",
        fontsize=13,
        weight="bold",
    )

    # The kernel and its flipped copy.
    ax.text(x0 - 0.4, -1.2, "kernel h", ha="right", va="center", fontsize=11)
    for i, v in enumerate(h):
        cell(ax, x0 + i, -1.7, num(v), tint(COLORS[7], 0.12), fontsize=11)
        ax.text(x0 + i + 0.5, -2.0, f"h[{i}]", ha="center", va="center", fontsize=9, color="0.3")
    arrow(ax, (x0 + k + 0.2, -1.2), (x0 + k + 1.8, -1.2))
    ax.text(x0 + k + 1.0, -1.55, "flip", ha="center", va="bottom", fontsize=10)
    for i, v in enumerate(flipped):
        cell(ax, x0 + k + 2 + i, -1.7, num(v), tint(COLORS[7], 0.12), fontsize=11)
        ax.text(x0 + k + 2.5 + i, -2.0, f"h[{k - 1 - i}]", ha="center", va="center", fontsize=9, color="0.3")

    # The signal, padded with zeros where the kernel hangs over its ends.
    ax.text(x0 - 0.4 + lo, 0.9, "signal x", ha="right", va="center", fontsize=11)
    ax.text(x0 - 0.4 + lo, 1.35, "(0 outside)", ha="right", va="center", fontsize=9, color="0.35")
    for i in range(lo, hi + 1):
        inside = 0 <= i < len(x)
        ax.text(
            x0 + i + 0.5,
            0.05,
            str(i).replace("-", "\u2212"),
            ha="center",
            va="center",
            fontsize=9,
            color="0.35",
        )
        cell(
            ax,
            x0 + i,
            0.4,
            num(x[i]) if inside else "0",
            "white" if inside else "0.93",
            edge="0.35" if inside else "0.6",
            ls="-" if inside else "--",
            color="black" if inside else "0.45",
            fontsize=11,
        )
    ax.text(x0 + lo - 0.1, 0.05, "i", ha="right", va="center", fontsize=9, color="0.35", style="italic")

    # The flipped kernel at three positions n: h[0] lies under x[n].
    for row, n in enumerate(shown):
        top = 2.2 + 1.9 * row
        colour = COLORS[row]
        ax.text(
            x0 - 0.4 + lo,
            top + 0.5,
            f"position n = {n}",
            ha="right",
            va="center",
            fontsize=11,
            color=shade(colour),
            weight="bold",
        )
        terms = []
        for j, v in enumerate(flipped):
            i = n - (k - 1) + j  # the signal index this tap meets
            cell(ax, x0 + i, top, num(v), tint(colour, 0.3), edge=colour, lw=1.5, fontsize=11)
            if 0 <= i < len(x):
                terms.append((x[i], v))
        products = " + ".join(f"{num(a)}\u00b7{num(b) if b >= 0 else '(' + num(b) + ')'}" for a, b in terms)
        total = sum(a * b for a, b in terms)
        assert total == y[n]
        ax.text(
            right,
            top + 0.5,
            f"y[{n}] = {products} = {num(total)}",
            ha="left",
            va="center",
            fontsize=11,
            color=shade(colour),
        )

    # The output: y[n] in the column of x[n].
    out_top = 2.2 + 1.9 * len(shown) + 0.3
    ax.text(x0 - 0.4 + lo, out_top + 0.5, "output y = x \u2217 h", ha="right", va="center", fontsize=11)
    for n, v in enumerate(y):
        ax.text(x0 + n + 0.5, out_top + 1.4, f"y[{n}]", ha="center", va="center", fontsize=9, color="0.3")
        row = shown.index(n) if n in shown else None
        fill = tint(COLORS[row], 0.3) if row is not None else "white"
        cell(
            ax,
            x0 + n,
            out_top,
            num(v),
            fill,
            edge=COLORS[row] if row is not None else "0.35",
            lw=1.5 if row is not None else 0.8,
            fontsize=11,
            weight="bold" if row is not None else "normal",
        )
    ax.text(
        right,
        out_top + 0.5,
        f"{len(x)} + {len(h)} \u2212 1 = {len(y)} values; y[n] sits under x[n], where h[0] lands",
        ha="left",
        va="center",
        fontsize=10,
        color="0.25",
    )
    save(fig, "conv1d_flip_slide.svg")


def conv2d_padding_stride():
    """A 3x3 kernel over a 5x5 input with zero padding 1 and stride 2, computed by F.conv2d."""
    size, k, pad, stride = 5, 3, 1, 2
    image = torch.randint(0, 4, (1, 1, size, size), generator=torch.Generator().manual_seed(3)).float()
    kernel = torch.tensor(kernel_presets()["Sobel x (vertical edges)"], dtype=torch.float32)[None, None]
    out = F.conv2d(image, kernel, padding=pad, stride=stride)[0, 0]
    padded = F.pad(image, (pad,) * 4)[0, 0]
    n_out = (size + 2 * pad - k) // stride + 1
    assert out.shape == (n_out, n_out)
    side = size + 2 * pad
    marked = {(0, 0): COLORS[0], (0, 1): COLORS[3]}  # two neighbouring windows, drawn on the input

    fig, ax = canvas((12, 5.2), (-0.3, 28.2), (-2.2, 10.4))
    # The padded input, with two windows.
    ax.text(
        side / 2,
        -1.5,
        f"input {size}\u00d7{size} with zero padding $p$ = {pad}",
        ha="center",
        fontsize=11,
        weight="bold",
    )
    ax.text(side / 2, -0.75, f"({side}\u00d7{side} after padding)", ha="center", fontsize=10, color="0.3")
    for r in range(side):
        for c in range(side):
            inside = pad <= r < side - pad and pad <= c < side - pad
            cell(
                ax,
                c,
                r,
                num(padded[r, c]),
                "white" if inside else "0.9",
                color="black" if inside else "0.5",
                fontsize=11,
            )
    for (i, j), colour in marked.items():
        shift = 0.06 if j else -0.06  # the two windows share a column: keep both outlines visible
        outline(
            ax,
            j * stride + shift + 0.06,
            i * stride + 0.06,
            k - 0.12,
            k - 0.12,
            colour,
            lw=3,
            ls="-" if j else "--",
        )
    # The kernel.
    kx = side + 1.3
    ax.text(kx + k / 2, 1.1, f"kernel {k}\u00d7{k}, $k$ = {k}", ha="center", fontsize=11, weight="bold")
    grid(ax, kernel[0, 0], kx, 2.2, fill=tint(COLORS[7], 0.1))
    # Every window position, in the order of the output grid.
    mini, gap = 0.3, 0.45
    mx = kx + k + 1.4
    span = n_out * side * mini + (n_out - 1) * gap
    ax.text(
        mx + span / 2, -1.5, f"the {n_out * n_out} window positions", ha="center", fontsize=11, weight="bold"
    )
    ax.text(
        mx + span / 2,
        -0.75,
        f"stride $s$ = {stride}: {stride} cells per step",
        ha="center",
        fontsize=10,
        color="0.3",
    )
    for i in range(n_out):
        for j in range(n_out):
            x0, y0 = mx + j * (side * mini + gap), i * (side * mini + gap)
            colour = marked.get((i, j), "0.45")
            for r in range(side):
                for c in range(side):
                    in_window = i * stride <= r < i * stride + k and j * stride <= c < j * stride + k
                    inside = pad <= r < side - pad and pad <= c < side - pad
                    fill = tint(colour, 0.55) if in_window else ("white" if inside else "0.9")
                    cell(ax, x0 + c * mini, y0 + r * mini, fill=fill, edge="0.75", size=mini, lw=0.3)
            outline(ax, x0 + j * stride * mini, y0 + i * stride * mini, k * mini, k * mini, colour, lw=1.5)
    # The output grid.
    ox = mx + span + 1.4
    ax.text(ox + n_out / 2, 1.1, f"output {n_out}\u00d7{n_out}", ha="center", fontsize=11, weight="bold")
    grid(ax, out, ox, 2.2, fill=lambda r, c: tint(marked[(r, c)], 0.3) if (r, c) in marked else "white")
    for (i, j), colour in marked.items():
        outline(ax, ox + j, 2.2 + i, 1, 1, colour, lw=2.5)
    # The size rule with the numbers filled in.
    ax.text(
        14,
        side + 1.9,
        "$H_\\mathrm{out} = \\lfloor (H_\\mathrm{in} + 2p - k)\\,/\\,s \\rfloor + 1$"
        f" = \u230a({size} + 2\u00b7{pad} \u2212 {k}) / {stride}\u230b + 1"
        f" = \u230a{size + 2 * pad - k} / {stride}\u230b + 1 = {n_out}",
        ha="center",
        va="center",
        fontsize=12,
    )
    ax.text(
        14,
        side + 2.9,
        "grey: the zeros of the padding; the blue and the orange window give the outlined outputs",
        ha="center",
        va="center",
        fontsize=10,
        color="0.3",
    )
    save(fig, "conv2d_padding_stride.svg")


def conv_dilation():
    """The nine taps of a 3x3 kernel on a 7x7 input with dilation 1 and 2: the pixels that one
    output of F.conv2d reads, found as those with a non-zero gradient. The kernel holds 1 to 9, so
    the gradient at each tap names the weight (a to i) that reads it."""
    size, k = 7, 3
    letters = "abcdefghi"
    kernel = torch.arange(1.0, k * k + 1).reshape(1, 1, k, k)
    colours = {1: COLORS[0], 2: COLORS[3]}
    gap = 2.8
    fig, ax = canvas((8.4, 5.6), (-0.3, 2 * size + gap + 0.3), (-2.3, size + 1.3))
    for n, (d, colour) in enumerate(colours.items()):
        span = d * (k - 1) + 1
        x = torch.zeros(1, 1, size, size, requires_grad=True)
        out = F.conv2d(x, kernel, dilation=d)[0, 0]
        assert out.shape[-1] == size - span + 1  # the size rule with p = 0, s = 1
        centre = (out.shape[-1] - 1) // 2  # the output whose taps sit in the middle of the input
        (taps,) = torch.autograd.grad(out[centre, centre], x)
        taps = taps[0, 0]
        rows, cols = taps.nonzero(as_tuple=True)
        assert len(rows) == k * k and int(rows.max() - rows.min()) + 1 == span
        left = n * (size + gap)
        title = f"dilation {d}: {span}\u00d7{span} area" + (", same nine weights" if d > 1 else "")
        ax.text(left + size / 2, -1.45, title, ha="center", va="center", fontsize=12, weight="bold")
        ax.text(
            left + size / 2,
            -0.6,
            "neighbouring pixels, no gaps" if d == 1 else f"pixels {d} apart, one skipped in between",
            ha="center",
            va="center",
            fontsize=10.5,
            color="0.3",
        )
        for r in range(size):
            for c in range(size):
                tap = float(taps[r, c])
                if tap:
                    cell(
                        ax,
                        left + c,
                        r,
                        f"${letters[int(tap) - 1]}$",
                        tint(colour, 0.45),
                        fontsize=14,
                        color=shade(colour, 0.6),
                    )
                else:
                    cell(ax, left + c, r)
        top, first = int(rows.min()), int(cols.min())
        outline(ax, left + first, top, span, span, colour, lw=2.2, ls="--" if d > 1 else "-")
        ax.text(
            left + size / 2,
            size + 0.65,
            f"span $d(k-1)+1$ = {d}\u00b7{k - 1} + 1 = {span}",
            ha="center",
            va="center",
            fontsize=11,
        )
    save(fig, "conv_dilation.svg")


def stack(ax, x, y, n, side, colours, step=0.6, cells=None, edge="0.25"):
    """``n`` squares of side ``side`` (y up), the first at the back with its bottom-left corner at
    (x, y), each next one shifted by ``step`` right and down: the channels of a map, or the kernels
    of one filter. ``cells`` draws a grid of that many cells per side."""
    for i in range(n):
        x0, y0 = x + i * step, y - i * step
        ax.add_patch(
            Rectangle(
                (x0, y0), side, side, facecolor=tint(colours[i], 0.4), edgecolor=edge, lw=1.2, zorder=2 + i
            )
        )
        if cells:
            pitch = side / cells
            for t in range(1, cells):
                ax.plot([x0 + t * pitch] * 2, [y0, y0 + side], color="white", lw=0.8, zorder=2 + i)
                ax.plot([x0, x0 + side], [y0 + t * pitch] * 2, color="white", lw=0.8, zorder=2 + i)


def conv_multichannel():
    """One convolutional layer with 3 input and 2 output channels: each filter is a stack of 3
    kernels and makes one output channel. Shapes and parameters from nn.Conv2d itself."""
    c_in, c_out, k, h = 3, 2, 3, 6
    layer = nn.Conv2d(c_in, c_out, kernel_size=k)
    x = torch.zeros(1, c_in, h, h)
    y = layer(x)
    w_shape, y_shape = tuple(layer.weight.shape), tuple(y.shape[1:])
    n_weights, n_bias = layer.weight.numel(), layer.bias.numel()
    chan = [COLORS[0], COLORS[1], COLORS[2]]
    filt = [COLORS[3], COLORS[4]]
    unit, step = 0.42, 0.6
    c_in_text, c_out_text = "$C_\\mathrm{in}$", "$C_\\mathrm{out}$"
    fig, ax = canvas((12, 6.6), (-0.6, 26.0), (-2.4, 11.6), down=False)
    ax.text(
        12.7,
        11.1,
        f"One convolutional layer: {c_in_text} = {c_in} input channels, {c_out_text} = {c_out} "
        f"filters of {k}\u00d7{k}",
        ha="center",
        va="center",
        fontsize=13,
        weight="bold",
    )

    # Input: C_in channels, front to back.
    side_in = h * unit
    ix, iy = 1.6, 4.6
    stack(ax, ix, iy, c_in, side_in, chan, step, cells=h)
    for i in range(c_in):
        ax.text(
            ix - 0.15,
            iy - i * step + side_in - 0.2,
            f"channel {i + 1}",
            ha="right",
            va="center",
            fontsize=9.5,
            color=shade(chan[i], 0.65),
            weight="bold",
        )
    centre_in = ix + (c_in - 1) * step / 2 + side_in / 2
    ax.text(centre_in, 2.45, f"input: {c_in_text} = {c_in} channels", ha="center", fontsize=11, weight="bold")
    ax.text(centre_in, 1.75, f"shape {tuple(x.shape[1:])}", ha="center", fontsize=10)
    ax.text(centre_in, 1.1, "(channels, height, width)", ha="center", fontsize=9, color="0.35")

    # Filters: each a stack of C_in kernels, one per input channel.
    side_k = k * unit
    depth = side_k + (c_in - 1) * step
    fx, rows = 9.2, [7.3, 2.3]  # bottom-left corner of each filter's back kernel
    for o in range(c_out):
        y0 = rows[o]
        stack(ax, fx, y0, c_in, side_k, chan, step, cells=k, edge=shade(filt[o]))
        ax.add_patch(
            Rectangle(
                (fx - 0.3, y0 + side_k - depth - 0.3),
                depth + 0.6,
                depth + 0.6,
                fill=False,
                edgecolor=filt[o],
                lw=2,
                ls="--",
                zorder=6,
            )
        )
        mid = y0 + side_k - depth / 2
        ax.text(
            fx + depth / 2,
            y0 + side_k + 0.65,
            f"filter {o + 1}: shape ({c_in}, {k}, {k})",
            ha="center",
            fontsize=10.5,
            weight="bold",
            color=shade(filt[o]),
        )
        right_in = ix + (c_in - 1) * step + side_in
        arrow(
            ax,
            (right_in + 0.25, iy - (c_in - 1) * step + side_in * (0.85 if o == 0 else 0.15)),
            (fx - 0.45, mid),
            rad=-0.12 if o == 0 else 0.12,
        )
        ax.text(
            fx + depth + 3.2,
            mid,
            f"slide each kernel\nover its channel, add\nthe {c_in} results + bias b{o + 1}",
            ha="center",
            va="center",
            fontsize=10,
        )
        arrow(ax, (fx + depth + 0.3, mid), (fx + depth + 0.9, mid))
        arrow(
            ax,
            (fx + depth + 5.7, mid),
            (19.9, 6.2 - o * step),
            color=shade(filt[o]),
            lw=1.8,
            rad=0.15 if o == 0 else -0.15,
        )
    ax.text(
        fx + depth / 2,
        rows[1] + side_k - depth - 0.85,
        "kernel c (colour) meets input channel c",
        ha="center",
        fontsize=9,
        color="0.35",
    )

    # Output: one channel per filter.
    side_out = y_shape[1] * unit
    ox, oy = 20.2, 5.2
    stack(ax, ox, oy, c_out, side_out, filt, step, cells=y_shape[1])
    for o in range(c_out):
        ax.text(
            ox + (c_out - 1) * step + side_out + 0.2,
            oy - o * step + side_out - 0.2,
            f"from filter {o + 1}",
            ha="left",
            va="center",
            fontsize=9.5,
            color=shade(filt[o], 0.65),
            weight="bold",
        )
    centre_out = ox + (c_out - 1) * step / 2 + side_out / 2
    ax.text(
        centre_out, 2.45, f"output: {c_out_text} = {c_out} channels", ha="center", fontsize=11, weight="bold"
    )
    ax.text(centre_out, 1.75, f"shape {y_shape}", ha="center", fontsize=10)
    ax.text(
        centre_out,
        1.1,
        f"{h} \u2212 {k} + 1 = {y_shape[1]} (no padding, stride 1)",
        ha="center",
        fontsize=9,
        color="0.35",
    )

    times = " \u00d7 "
    ax.text(
        12.7,
        -0.9,
        f"weights: {c_out_text}{times}{c_in_text}{times}$k${times}$k$ = {times.join(map(str, w_shape))} = "
        f"{n_weights}, plus {n_bias} biases: {n_weights + n_bias} parameters",
        ha="center",
        va="center",
        fontsize=11,
    )
    ax.text(
        12.7,
        -1.8,
        "each filter reads every input channel and gives one output channel",
        ha="center",
        va="center",
        fontsize=10,
        color="0.3",
    )
    save(fig, "conv_multichannel.svg")


# --- Chapter 2: pooling -------------------------------------------------------------------------


def pooling_max_avg():
    """Chapter 2's worked example: 2x2 windows with stride 2, max and average."""
    x = torch.tensor(WORKED_POOLING_MAP, dtype=torch.float32)
    k = 2
    max_out = F.max_pool2d(x[None, None], k, stride=k)[0, 0]
    avg_out = F.avg_pool2d(x[None, None], k, stride=k)[0, 0]
    window = [COLORS[0], COLORS[1], COLORS[2], COLORS[4]]

    def colour(r, c, scale=1):
        return window[(r // scale) * 2 + c // scale]

    fig, ax = canvas((10.5, 4.2), (-0.3, 17.4), (-1.6, 6.2))
    ax.text(2, -1.0, "feature map 4\u00d74", ha="center", fontsize=11, weight="bold")
    ax.text(2, -0.4, f"{k}\u00d7{k} windows, stride {k}", ha="center", fontsize=10, color="0.3")
    grid(ax, x, 0, 0.4, fill=lambda r, c: tint(colour(r, c, k), 0.3), fontsize=12)
    for wi in range(2):
        for wj in range(2):
            outline(ax, wj * k, 0.4 + wi * k, k, k, colour(wi, wj), lw=2.5)
            block = x[wi * k : (wi + 1) * k, wj * k : (wj + 1) * k]
            r, c = divmod(int(block.argmax()), k)
            ax.add_patch(
                plt.Circle(
                    (wj * k + c + 0.5, 0.4 + wi * k + r + 0.5),
                    0.36,
                    fill=False,
                    edgecolor=shade(colour(wi, wj), 0.6),
                    lw=1.8,
                    zorder=5,
                )
            )
    for out, top, name, what in (
        (max_out, -0.6, "max pooling", "the largest value of each window (circled)"),
        (avg_out, 3.6, "average pooling", "the mean of each window"),
    ):
        arrow(ax, (4.4, 2.4), (6.6, top + 1.4), rad=-0.15 if top < 0 else 0.15)
        grid(ax, out, 7, top + 0.4, fill=lambda r, c: tint(colour(r, c), 0.3), fontsize=12)
        for r in range(2):
            for c in range(2):
                outline(ax, 7 + c, top + 0.4 + r, 1, 1, colour(r, c), lw=2.5)
        ax.text(9.4, top + 0.9, name, ha="left", va="center", fontsize=11, weight="bold")
        ax.text(9.4, top + 1.5, what, ha="left", va="center", fontsize=10, color="0.25")
        ax.text(
            9.4,
            top + 2.1,
            "{}\u00d7{} \u2192 {}\u00d7{}".format(*x.shape, *out.shape),
            ha="left",
            va="center",
            fontsize=10,
            color="0.25",
        )
    top_left = x[:k, :k].flatten()
    values = ", ".join(num(v) for v in top_left)
    ax.text(
        0,
        5.2,
        f"blue window: max{{{values}}} = {num(top_left.max())}",
        ha="left",
        va="center",
        fontsize=10,
        color=shade(COLORS[0]),
    )
    ax.text(
        0,
        5.8,
        f"mean ({' + '.join(num(v) for v in top_left)}) / {top_left.numel()} = {num(top_left.mean())}",
        ha="left",
        va="center",
        fontsize=10,
        color=shade(COLORS[0]),
    )
    save(fig, "pooling_max_avg.svg")


def pooling_gradient():
    """The backward pass through chapter 2's worked example: each window's upstream gradient goes
    to the position of its maximum (max pooling) or is shared out evenly (average pooling), as
    autograd computes it."""
    k = 2
    upstream = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # one gradient per output, all different
    grads = {}
    for name, pool in (("max", F.max_pool2d), ("average", F.avg_pool2d)):
        x = torch.tensor(WORKED_POOLING_MAP, dtype=torch.float32, requires_grad=True)
        pool(x[None, None], k, stride=k)[0, 0].backward(upstream)
        grads[name] = x.grad
        assert float(x.grad.sum()) == float(upstream.sum())  # nothing lost, nothing added
    x = torch.tensor(WORKED_POOLING_MAP, dtype=torch.float32)
    window = [COLORS[0], COLORS[1], COLORS[2], COLORS[4]]

    def colour(r, c, scale=k):
        return window[(r // scale) * 2 + c // scale]

    def windows(left, top, size):
        for wi in range(2):
            for wj in range(2):
                outline(ax, left + wj * k * size, top + wi * k * size, k * size, k * size, colour(wi, wj, 1))

    size = 1.0
    side = 4 * size
    fig, ax = canvas((12, 5.6), (-0.3, 24.4), (-0.4, 10.8))
    tops = {"max": 0.0, "average": 5.6}
    right = 13.0  # the left edge of the two gradients of the input

    # The input map, with the maximum of each window circled.
    map_top = (tops["max"] + tops["average"] + side) / 2 - side / 2
    ax.text(side / 2, map_top - 1.0, "the input x", ha="center", fontsize=11, weight="bold")
    ax.text(side / 2, map_top - 0.45, "(the worked map)", ha="center", fontsize=10, color="0.3")
    grid(ax, x, 0, map_top, fill=lambda r, c: tint(colour(r, c), 0.3), size=size, fontsize=12)
    windows(0, map_top, size)
    for wi in range(2):
        for wj in range(2):
            block = x[wi * k : (wi + 1) * k, wj * k : (wj + 1) * k]
            r, c = divmod(int(block.argmax()), k)
            ax.add_patch(
                plt.Circle(
                    ((wj * k + c + 0.5) * size, map_top + (wi * k + r + 0.5) * size),
                    0.33,
                    fill=False,
                    edgecolor=shade(colour(wi, wj, 1), 0.6),
                    lw=1.8,
                    zorder=5,
                )
            )

    # The upstream gradient: one number per output of the pooling.
    up_left, up_top = 6.6, map_top + side / 2 - size
    ax.text(up_left + size, up_top - 1.0, "upstream gradient", ha="center", fontsize=11, weight="bold")
    ax.text(up_left + size, up_top - 0.45, "one per output", ha="center", fontsize=10, color="0.3")
    grid(ax, upstream, up_left, up_top, fill=lambda r, c: tint(colour(r, c, 1), 0.3), size=size, fontsize=12)
    for r in range(2):
        for c in range(2):
            outline(ax, up_left + c * size, up_top + r * size, size, size, colour(r, c, 1))
    ax.text(
        up_left + size,
        up_top + 2 * size + 0.55,
        "(how the loss depends\non each pooled value)",
        ha="center",
        va="top",
        fontsize=9.5,
        color="0.3",
    )

    # The gradients of the input, from autograd.
    texts = {
        "max": ("max pooling", "each window's gradient goes to its maximum;\nthe other three inputs get 0"),
        "average": ("average pooling", f"each input gets 1/{k * k} of its window's gradient"),
    }
    for name, top in tops.items():
        g = grads[name]
        winner = g != 0 if name == "max" else torch.ones_like(g, dtype=torch.bool)
        arrow(
            ax,
            (up_left + 2 * size + 0.25, up_top + size),
            (right - 0.3, top + side / 2),
            rad=0.15 if name == "max" else -0.15,
        )
        for r in range(4):
            for c in range(4):
                hit = bool(winner[r, c])
                cell(
                    ax,
                    right + c * size,
                    top + r * size,
                    num(g[r, c]),
                    tint(colour(r, c), 0.35) if hit else "white",
                    size=size,
                    fontsize=12 if name == "max" else 10.5,
                    color="black" if hit else "0.55",
                    weight="bold" if hit and name == "max" else "normal",
                )
        windows(right, top, size)
        heading, what = texts[name]
        ax.text(
            right + side + 0.4,
            top + 0.35,
            f"{heading}: gradient of x",
            ha="left",
            va="top",
            fontsize=11,
            weight="bold",
        )
        ax.text(right + side + 0.4, top + 1.0, what, ha="left", va="top", fontsize=10, color="0.25")
    ax.text(
        12.0,
        tops["average"] + side + 0.8,
        f"Both hand back the total of the upstream gradient, {num(upstream.sum())}: pooling only shares it out.",
        ha="center",
        va="center",
        fontsize=10,
        color="0.3",
    )
    save(fig, "pooling_gradient.svg")


def receptive_field():
    """The pixels one value of the Simple CNN sees after each layer of its two blocks, found with
    gradients: a pixel whose change can change the value has a non-zero gradient for some image."""
    torch.manual_seed(0)
    model = sc.SimpleCNN().eval().double()
    images = torch.randn(64, *sc.MNIST_SHAPE, dtype=torch.float64, requires_grad=True)
    side = images.shape[-1]
    # One value per layer, chosen so that each field lies inside the next.
    picks = {"conv1": (10, 10), "pool1": (5, 5), "conv2": (3, 3), "pool2": (1, 1)}
    fields, titles = {}, {}
    out = images
    r, jump = 1, 1  # the rule of chapter 2: r_out = r_in + (k - 1) j_in, j_out = j_in s
    for name, layer in model.features.named_children():
        out = layer(out)
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            k = layer.kernel_size if isinstance(layer, nn.MaxPool2d) else layer.kernel_size[0]
            stride = layer.stride if isinstance(layer, nn.MaxPool2d) else layer.stride[0]
            r, jump = r + (k - 1) * jump, jump * stride
            titles[name] = f"conv {k}\u00d7{k}" if isinstance(layer, nn.Conv2d) else f"max-pool {k}"
        if name in picks:
            i, j = picks[name]
            (grad,) = torch.autograd.grad(out[:, 0, i, j].sum(), images, retain_graph=True)
            seen = grad.abs().sum(0)[0] > 0
            rows, cols = seen.any(1).nonzero()[:, 0], seen.any(0).nonzero()[:, 0]
            top, left, height, width = int(rows[0]), int(cols[0]), len(rows), len(cols)
            assert seen.sum() == height * width and seen[top : top + height, left : left + width].all()
            assert height == width == r, (name, height, width, r)
            fields[name] = (top, left, height, width, tuple(out.shape[1:]))
    colours = dict(zip(picks, (COLORS[0], COLORS[1], COLORS[2], COLORS[3])))
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.9))
    for n, (ax, name) in enumerate(zip(axes, picks)):
        top, left, height, width, shape = fields[name]
        ax.set_xlim(0, side)
        ax.set_ylim(side, 0)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.add_patch(Rectangle((0, 0), side, side, facecolor="white", edgecolor="0.3", lw=1))
        for t in range(1, side):
            ax.plot([t, t], [0, side], color="0.88", lw=0.4)
            ax.plot([0, side], [t, t], color="0.88", lw=0.4)
        for earlier in list(picks)[:n]:  # the fields before, as outlines
            t0, l0, h0, w0, _ = fields[earlier]
            outline(ax, l0, t0, w0, h0, colours[earlier], lw=1.3, ls="--", zorder=5)
        ax.add_patch(
            Rectangle(
                (left, top),
                width,
                height,
                facecolor=tint(colours[name], 0.45),
                edgecolor=colours[name],
                lw=2,
                zorder=4,
            )
        )
        block = "block 1" if n < 2 else "block 2"
        ax.set_title(
            f"{block}, after {titles[name]}\n{shape[0]} maps of {shape[1]}\u00d7{shape[2]}", fontsize=11
        )
        ax.text(
            side / 2,
            side + 1.2,
            f"one value sees\n{height}\u00d7{width} pixels",
            ha="center",
            va="top",
            fontsize=12,
            weight="bold",
            color=shade(colours[name]),
            linespacing=1.3,
        )
    fig.suptitle(
        f"Receptive field: the pixels of the {side}\u00d7{side} input that can change one value "
        "(non-zero gradient)\ndashed: the fields of the layers before",
        fontsize=12,
        y=1.0,
    )
    save(fig, "receptive_field.svg")


# --- Chapter 5: the backward pass of a convolution ----------------------------------------------


def conv_input_gradient():
    """The gradient of a convolution's input: the upstream gradient G padded with k - 1 zeros and
    cross-correlated with the kernel K rotated by 180 degrees. Which weight meets which entry of G
    is found with autograd (one weight and one entry of G set to 1 at a time) and checked against
    the rotated-kernel picture."""
    size, k = 5, 3
    n_out, pad = size - k + 1, k - 1
    letters = "abcdefghi"
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    pairs = {}  # input pixel (p, q) -> {output (r, c): weight (u, v)}
    for u in range(k):
        for v in range(k):
            kernel = torch.zeros(1, 1, k, k)
            kernel[0, 0, u, v] = 1
            y = F.conv2d(x, kernel)
            assert y.shape[-1] == n_out
            for r in range(n_out):
                for c in range(n_out):
                    (grad,) = torch.autograd.grad(y[0, 0, r, c], x, retain_graph=True)
                    for p, q in grad[0, 0].nonzero().tolist():
                        pairs.setdefault((p, q), {})[(r, c)] = (u, v)
    # The picture: the window at (p, q) of the padded G, under the rotated kernel.
    for (p, q), found in pairs.items():
        drawn = {}
        for a in range(k):
            for b in range(k):
                r, c = p + a - pad, q + b - pad  # the cell of G under the window (outside: a zero)
                if 0 <= r < n_out and 0 <= c < n_out:
                    drawn[(r, c)] = (k - 1 - a, k - 1 - b)
        assert drawn == found, (p, q)
    # And with numbers: the rotated-kernel cross-correlation is autograd's input gradient.
    g = torch.Generator().manual_seed(0)
    kernel, upstream = torch.randn(1, 1, k, k, generator=g), torch.randn(1, 1, n_out, n_out, generator=g)
    x = torch.randn(1, 1, size, size, generator=g, requires_grad=True)
    F.conv2d(x, kernel).backward(upstream)
    assert torch.allclose(F.conv2d(F.pad(upstream, (pad,) * 4), kernel.flip(-2, -1)), x.grad, atol=1e-6)

    names = np.array(list(letters)).reshape(k, k)  # K[u, v]
    rotated = names[::-1, ::-1]
    centre, corner = (size // 2, size // 2), (0, 0)
    blue, orange = COLORS[0], COLORS[3]

    s = 1.5  # the side of a cell of the padded G (which holds products) and of the input gradient
    fig, ax = canvas((12, 8.2), (-0.4, 27.0), (-2.7, 15.3))
    ax.text(
        13.3,
        -2.2,
        "The input gradient: $G$ padded with $k - 1$ zeros, slid under the kernel rotated by 180\u00b0",
        ha="center",
        va="center",
        fontsize=13,
        weight="bold",
    )
    # The kernel and its rotated copy.
    ax.text(k / 2, 0.35, f"kernel $K$, {k}\u00d7{k}", ha="center", fontsize=11, weight="bold")
    for u in range(k):
        for v in range(k):
            cell(ax, v, 0.8 + u, f"${names[u, v]}$", tint(COLORS[7], 0.1), fontsize=13)
    arrow(ax, (k / 2, k + 1.0), (k / 2, k + 2.3))
    ax.text(k / 2 + 0.3, k + 1.65, "rotate 180\u00b0", ha="left", va="center", fontsize=10)
    rot_top = k + 3.4
    ax.text(k / 2, rot_top - 0.45, "$K$ rotated", ha="center", fontsize=11, weight="bold")
    for a in range(k):
        for b in range(k):
            cell(
                ax, b, rot_top + a, f"${rotated[a, b]}$", tint(blue, 0.3), fontsize=13, color=shade(blue, 0.6)
            )
    outline(ax, 0, rot_top, k, k, blue, lw=2.2)

    # The padded upstream gradient; under the blue window, each entry times the rotated kernel's
    # weight that lies on it.
    gx, gy = 5.8, 0.8
    side = n_out + 2 * pad
    ax.text(
        gx + side * s / 2,
        gy - 1.25,
        f"$G$ padded with $k - 1$ = {pad} zeros",
        ha="center",
        fontsize=11,
        weight="bold",
    )
    ax.text(
        gx + side * s / 2,
        gy - 0.5,
        f"$G$: the {n_out}\u00d7{n_out} upstream gradient, $g_{{rc}}$ = $G[r, c]$",
        ha="center",
        fontsize=10,
        color="0.3",
    )
    windows = {centre: (blue, "-"), corner: (orange, "--")}
    for r in range(side):
        for c in range(side):
            a, b = r - centre[0], c - centre[1]
            inside = pad <= r < side - pad and pad <= c < side - pad
            at = (gx + c * s, gy + r * s)
            if inside and 0 <= a < k and 0 <= b < k:
                text = f"${rotated[a, b]}\\,g_{{{r - pad}{c - pad}}}$"
                cell(ax, *at, text, tint(blue, 0.3), size=s, fontsize=12, color=shade(blue, 0.6))
            elif inside:
                cell(ax, *at, f"$g_{{{r - pad}{c - pad}}}$", tint(blue, 0.12), size=s, fontsize=12.5)
            else:
                cell(ax, *at, "0", "0.94", edge="0.7", size=s, color="0.6", fontsize=10.5)
    for (p, q), (colour, ls) in windows.items():
        inset = 0.05 if ls == "-" else 0.12  # the two windows share a cell: keep both outlines visible
        outline(
            ax,
            gx + q * s + inset,
            gy + p * s + inset,
            k * s - 2 * inset,
            k * s - 2 * inset,
            colour,
            lw=2.6,
            ls=ls,
            zorder=6,
        )
    arrow(ax, (k + 0.15, rot_top + 1.0), (gx - 0.1, gy + (centre[0] + 1.5) * s), color=blue, rad=-0.2)
    ax.text(
        k + 0.3,
        rot_top + k - 0.35,
        "laid over\none window",
        ha="left",
        va="center",
        fontsize=10,
        color=shade(blue, 0.7),
    )

    # The input gradient.
    xx, xy = gx + side * s + 2.8, gy + (side - size) * s / 2
    arrow(ax, (gx + side * s + 0.25, gy + side * s / 2), (xx - 0.25, gy + side * s / 2))
    ax.text(
        gx + side * s + 1.4, gy + side * s / 2 - 0.35, "multiply,\nadd", ha="center", va="bottom", fontsize=10
    )
    ax.text(
        xx + size * s / 2,
        xy - 1.25,
        f"$\\partial L / \\partial X$, {size}\u00d7{size}",
        ha="center",
        fontsize=11,
        weight="bold",
    )
    ax.text(xx + size * s / 2, xy - 0.5, "the size of the input $X$", ha="center", fontsize=10, color="0.3")
    for p in range(size):
        for q in range(size):
            colour = windows.get((p, q), (None,))[0]
            cell(ax, xx + q * s, xy + p * s, fill=tint(colour, 0.35) if colour else "white", size=s)
    for (p, q), (colour, ls) in windows.items():
        outline(ax, xx + q * s, xy + p * s, s, s, colour, lw=2.6, ls=ls)
        ax.text(
            xx + (q + 0.5) * s,
            xy + (p + 0.5) * s,
            f"[{p}, {q}]",
            ha="center",
            va="center",
            fontsize=10,
            color=shade(colour, 0.6),
        )

    # What the two windows add up.
    notes = [
        f"$X[{centre[0]}, {centre[1]}]$ fed all {k * k} outputs of the layer, and collects from each of them",
        f"$X[0, 0]$ fed only $Y[0, 0]$: the other {k * k - 1} weights of the orange window meet zeros",
    ]
    for n, ((p, q), (colour, _)) in enumerate(windows.items()):
        terms = [f"{names[u, v]}\\,g_{{{r}{c}}}" for (r, c), (u, v) in sorted(pairs[(p, q)].items())]
        line = f"$\\partial L / \\partial X[{p}, {q}] = " + " + ".join(terms) + "$"
        y0 = gy + side * s + 1.4 + n * 1.55
        ax.text(13.3, y0, line, ha="center", va="center", fontsize=12.5, color=shade(colour, 0.7))
        ax.text(13.3, y0 + 0.65, notes[n], ha="center", va="center", fontsize=10, color="0.3")
    save(fig, "conv_input_gradient.svg")


# --- Chapter 8: scaling a drawing by area averaging ---------------------------------------------


VULGAR = {(1, 2): "\u00bd", (1, 3): "\u2153", (2, 3): "\u2154", (1, 4): "\u00bc", (3, 4): "\u00be"}


def frac(value: Fraction) -> str:
    """An exact fraction as the figures print it: \u2153 for 1/3 (one glyph), 7/3, or 2."""
    pair = (value.numerator, value.denominator)
    return str(value.numerator) if value.denominator == 1 else VULGAR.get(pair, "{}/{}".format(*pair))


def area_averaging():
    """Chapter 8's area averaging along one row: 8 old pixels (a stroke with hard edges) become 3
    new ones, s = 8/3, and new pixel 1 is worked out. The shared lengths
    |[is, (i+1)s) & [j, j+1)| of the page's formula are computed here as exact fractions; they must
    give the weights of the course's own resampling, cnnkit.digitlab.area_weights (which the digit
    lab's JavaScript repeats), and the new pixels are that function's output."""
    x = np.array([0, 0, 1, 1, 1, 0, 0, 0])
    n_in, n_out, i = len(x), 3, 1
    s = Fraction(n_in, n_out)

    def overlaps(k):  # new pixel k: {j: |[ks, (k+1)s) & [j, j+1)|} for the old pixels it touches
        lo, hi = k * s, (k + 1) * s
        return {j: min(hi, j + 1) - max(lo, j) for j in range(n_in) if min(hi, j + 1) > max(lo, j)}

    weights = area_weights(n_in, n_out)
    for k in range(n_out):
        assert sum(overlaps(k).values()) == s  # each interval is covered exactly once
        exact = [float(overlaps(k).get(j, 0) / s) for j in range(n_in)]
        assert np.allclose(weights[k], exact, rtol=0, atol=1e-12), (k, weights[k], exact)
    y = weights @ x
    lo, hi, shared = i * s, (i + 1) * s, overlaps(i)
    total = sum(part * int(x[j]) for j, part in shared.items())
    assert abs(y[i] - float(total / s)) < 1e-12
    assert np.allclose(y, [0.25, 0.875, 0], rtol=0, atol=1e-12)  # the values the caption quotes
    colour = COLORS[0]

    def grey(v):  # ink 1 is dark, paper 0 is white
        return str(1 - 0.8 * float(v))

    def ink(v):
        return "white" if v > 0.55 else "black"

    fig, ax = canvas((9.0, 6.0), (-3.9, n_in + 0.4), (-2.1, 7.2))
    ax.text(
        n_in / 2 - 1.75,
        -1.55,
        f"$n_{{\\mathrm{{in}}}}$ = {n_in} old pixels \u2192 $n_{{\\mathrm{{out}}}}$ = {n_out} new ones: "
        f"$s$ = {frac(s)}; new pixel $i$ = {i} in detail",
        ha="center",
        va="center",
        fontsize=12,
        weight="bold",
    )
    # The old row, and the interval [is, (i+1)s) that new pixel i covers in it.
    for j, v in enumerate(x):
        cell(ax, j, 0, num(v), grey(v), fontsize=12, color=ink(v))
        ax.text(j + 0.5, -0.45, f"$x_{j}$", ha="center", va="center", fontsize=12)
    for edge in (lo, hi):  # broken where the shared lengths are written
        for span in ([-0.2, 1.7], [2.3, 3.0]):
            ax.plot([edge, edge], span, color=colour, lw=2.2, ls="--", zorder=5)
    outline(ax, float(lo), 0, float(s), 1, colour, lw=3, zorder=6)
    for j, part in shared.items():
        left = max(lo, j)
        ax.add_patch(
            Rectangle(
                (float(left), 1.25),
                float(part),
                0.4,
                facecolor=tint(colour, 0.75 if part == 1 else 0.4),
                edgecolor=shade(colour, 0.7),
                lw=1.0,
            )
        )
        ax.text(float(left + part / 2), 2.0, frac(part), ha="center", va="center", fontsize=13)
    ax.text(
        float(hi) + 0.3, 1.45, f"together {frac(s)} = $s$", ha="left", va="center", fontsize=10.5, color="0.3"
    )
    ax.text(float(lo) - 0.1, 2.65, f"$is$ = {frac(lo)}", ha="right", va="center", fontsize=11)
    ax.text(float(hi) + 0.1, 2.65, f"$(i+1)s$ = {frac(hi)}", ha="left", va="center", fontsize=11)
    # The new row: each new pixel is as wide as the s old pixels it averages.
    for k, v in enumerate(y):
        left = float(k * s)
        ax.add_patch(Rectangle((left, 3.0), float(s), 1, facecolor=grey(v), edgecolor="0.35", lw=0.8))
        ax.text(
            left + float(s) / 2,
            3.5,
            f"$y_{k}$ = {num(v)}",
            ha="center",
            va="center",
            fontsize=12,
            color=ink(v),
        )
    outline(ax, float(lo), 3.0, float(s), 1, colour, lw=3, zorder=6)
    for top, text in (
        (0.5, "old pixels $x_j$"),
        (1.45, "part of $[j, j+1)$ shared\nwith $[is, (i+1)s)$"),
        (3.5, "new pixels $y_i$"),
    ):
        ax.text(-0.3, top, text, ha="right", va="center", fontsize=11, linespacing=1.5)
    # The new pixel's value: the shared lengths weight the old pixels, and 1/s makes it a mean.
    terms = " + ".join(f"{frac(part)}$\\,x_{j}$" for j, part in shared.items())
    values = " + ".join(f"{frac(part)}\u00b7{int(x[j])}" for j, part in shared.items())
    for top, line in (
        (5.0, f"$y_{i}$ = ({terms}) / $s$"),
        (5.8, f"= ({values}) / ({frac(s)}) = ({frac(total)}) / ({frac(s)}) = {num(y[i])}"),
    ):
        ax.text(n_in / 2 - 1.75, top, line, ha="center", va="center", fontsize=13, color=shade(colour, 0.7))
    ax.text(
        n_in / 2 - 1.75,
        6.85,
        "the stroke's hard edges become the greys " + " and ".join(num(v) for v in y if 0 < v < 1),
        ha="center",
        va="center",
        fontsize=10.5,
        color="0.3",
    )
    save(fig, "area_averaging.svg")


# --- The whole network and its training (the first chapter and chapter 7) -----------------------

#: Images in MNIST's training file; the course holds out a seeded share of them for validation.
MNIST_TRAIN_IMAGES = 60_000


def chapter_titles() -> dict[int, str]:
    """The titles of chapters 1 to 7, read from their pages."""
    titles = {}
    for page in sorted((OUT.parent).glob("0[1-7]-*.md")):
        titles[int(page.name[:2])] = page.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
    return titles


#: Each chapter's colour in the map of the network.
CHAPTER_COLOURS = {
    1: COLORS[0],
    2: COLORS[1],
    3: COLORS[2],
    4: COLORS[3],
    5: COLORS[4],
    6: COLORS[5],
    7: COLORS[7],
}


def network_map():
    """The Simple CNN layer by layer: what each layer is, the shape it hands on (traced through
    simplecnn.SimpleCNN) and the chapter that opens it up."""
    model = sc.SimpleCNN()
    shapes = {name.split(".")[-1]: ("N",) + shape[1:] for name, shape in layer_shapes(model)}
    layers = dict(model.features.named_children()) | dict(model.classifier.named_children())
    n_params = sum(p.numel() for p in model.parameters())

    def shape(name):
        return "(" + ", ".join(map(str, shapes[name])) + ")"

    def describe(name):
        layer = layers[name]
        if isinstance(layer, nn.Conv2d):
            k = layer.kernel_size
            return f"conv {k[0]}\u00d7{k[1]}, {layer.in_channels}\u2192{layer.out_channels}", 1
        if isinstance(layer, nn.BatchNorm2d):
            return "batch norm", 6
        if isinstance(layer, nn.ReLU):
            return "ReLU", 3
        if isinstance(layer, nn.MaxPool2d):
            return f"max-pool {layer.kernel_size}\u00d7{layer.kernel_size}", 2
        if isinstance(layer, nn.Dropout):
            return f"dropout {layer.p:g}", 6
        if isinstance(layer, nn.Flatten):
            return "flatten", 7
        if isinstance(layer, nn.Linear):
            return f"linear {layer.in_features}\u2192{layer.out_features}", 7
        raise ValueError(f"no description for layer {name}: {layer}")

    names = list(layers)
    rows = [names[:5], names[5:10], names[10:]]
    assert rows[0][0] == "conv1" and rows[1][0] == "conv2" and rows[2][0] == "flatten", names
    pitch, w, h = 2.0, 1.74, 0.86
    ys = [2.15, 3.95, 5.75]  # the centres of the three rows of layers
    y_train = 7.35
    fig, ax = canvas((10.6, 8.6), (-0.1, 5 * pitch + 0.55), (-0.25, 8.35))
    ax.text(
        2.5 * pitch,
        0.05,
        "The Simple CNN: the shape after each layer for a batch of N digits,\n"
        "and the chapter that opens each piece up",
        ha="center",
        va="center",
        fontsize=11.5,
        weight="bold",
    )

    def piece(col, y, text, chapter, ls="-", width=w):
        x = col * pitch + w / 2
        colour = CHAPTER_COLOURS.get(chapter, "0.45")
        box(
            ax,
            x,
            y,
            width,
            h,
            text,
            edge=colour,
            fill=tint(colour, 0.18 if chapter != 7 else 0.08),
            ls=ls,
            fontsize=9.5,
        )
        if chapter:
            ax.text(
                x,
                y + h / 2 + 0.16,
                f"ch. {chapter}",
                ha="center",
                va="center",
                fontsize=9.5,
                weight="bold",
                color=shade(colour, 0.75) if chapter != 7 else "0.2",
            )

    def right_arrow(col, y, ls="-"):
        arrow(ax, (col * pitch + w + 0.02, y), ((col + 1) * pitch - 0.02, y), ls=ls)

    piece(0, 0.95, "input: digits\n(" + ", ".join(map(str, ("N", *sc.MNIST_SHAPE))) + ")", None)
    arrow(ax, (w / 2, 0.95 + h / 2), (w / 2, ys[0] - h / 2))
    for r, row in enumerate(rows):
        y = ys[r]
        ax.add_patch(
            FancyBboxPatch(
                (-0.07, y - h / 2 - 0.3),
                5 * pitch - (pitch - w) + 0.14,
                h + 0.62,
                boxstyle="round,pad=0,rounding_size=0.1",
                facecolor="0.96",
                edgecolor="0.8",
                lw=0.8,
                zorder=0,
            )
        )
        label = ("block 1", "block 2", "classifier")[r]
        ax.text(
            0.0, y - h / 2 - 0.15, label, ha="left", va="center", fontsize=9.5, color="0.3", style="italic"
        )
        for c, name in enumerate(row):
            text, chapter = describe(name)
            extra = "\nlogits" if name == names[-1] else ""
            piece(c, y, f"{text}\n{shape(name)}{extra}", chapter)
            if c:
                right_arrow(c - 1, y)
        if r + 1 < len(rows):  # from the end of this row, round to the start of the next
            x_out, y_gap = 4 * pitch + w + 0.22, (y + ys[r + 1]) / 2 - 0.02
            ax.plot(
                [4 * pitch + w, x_out, x_out, w / 2], [y, y, y_gap, y_gap], color="0.25", lw=1.3, zorder=1
            )
            arrow(ax, (w / 2, y_gap), (w / 2, ys[r + 1] - h / 2))
    # After the network: softmax gives probabilities; in training, the loss and the optimiser.
    piece(len(rows[2]), ys[2], f"softmax\n{shape(names[-1])}\nprobabilities", 3, ls="--")
    right_arrow(len(rows[2]) - 1, ys[2], ls="--")
    col_fc2 = len(rows[2]) - 1
    piece(col_fc2, y_train, "cross-entropy loss\nlogits vs labels", 4, ls="--")
    arrow(
        ax,
        (col_fc2 * pitch + w / 2, ys[2] + h / 2 + 0.3),
        (col_fc2 * pitch + w / 2, y_train - h / 2),
        ls="--",
    )
    adam_width = 2.55
    box(
        ax,
        pitch + adam_width / 2,
        y_train,
        adam_width,
        h,
        f"Adam changes the weights\nall {n_params:,} of them",
        edge=CHAPTER_COLOURS[5],
        fill=tint(CHAPTER_COLOURS[5], 0.18),
        ls="--",
        fontsize=9.5,
    )
    ax.text(
        pitch + adam_width / 2,
        y_train + h / 2 + 0.16,
        "ch. 5",
        ha="center",
        va="center",
        fontsize=9.5,
        weight="bold",
        color=shade(CHAPTER_COLOURS[5], 0.75),
    )
    arrow(ax, (col_fc2 * pitch - 0.02, y_train), (pitch + adam_width + 0.02, y_train), ls="--")
    ax.text(
        (col_fc2 * pitch + pitch + adam_width) / 2,
        y_train - 0.17,
        "gradients",
        ha="center",
        va="center",
        fontsize=9,
        color="0.3",
    )
    ax.text(
        w / 2,
        y_train,
        "dashed: not layers\nof the model; loss\nand Adam: training",
        ha="center",
        va="center",
        fontsize=9.5,
        color="0.3",
        style="italic",
    )
    titles = chapter_titles()
    handles = [
        Patch(
            facecolor=tint(CHAPTER_COLOURS[c], 0.18 if c != 7 else 0.08),
            edgecolor=CHAPTER_COLOURS[c],
            label=f"ch. {c}  {titles[c]}",
        )
        for c in sorted(titles)
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.035),
        ncol=4,
        fontsize=9.5,
        frameon=False,
        handlelength=1.4,
        columnspacing=1.2,
    )
    save(fig, "network_map.svg")


def training_loop():
    """One training step as a cycle, with the shapes of the course's recipe (sc.FAST) traced
    through the model and the number of steps in one epoch counted with sc.Batches."""
    batch = sc.FAST.batch_size
    train_idx, val_idx = split_indices(MNIST_TRAIN_IMAGES)
    steps = len(sc.Batches(train_idx, train_idx, batch))
    images, labels = torch.zeros(batch, *sc.MNIST_SHAPE), torch.zeros(batch, dtype=torch.long)
    logits = sc.SimpleCNN()(images)
    loss = F.cross_entropy(logits, labels)
    assert loss.dim() == 0

    def shape(t):
        return "(" + ", ".join(map(str, t.shape)) + ")"

    fig, ax = canvas((12.3, 6.2), (-0.7, 13.7), (-0.4, 6.6))
    cx, cy, rx, ry = 4.1, 3.1, 3.45, 2.6
    w, h = 3.2, 1.12
    steps_text = [
        ("a batch of images", f"{batch} images {shape(images)}\nand their {len(labels)} labels", COLORS[0]),
        ("forward pass", "the images go through\nthe model's layers", COLORS[2]),
        ("logits", f"{shape(logits)}: ten numbers\nfor each image", COLORS[2]),
        ("loss", "cross-entropy of logits\nand labels: one number", COLORS[3]),
        ("backward pass", "the gradient of the loss\nfor every weight", COLORS[4]),
        ("optimiser step", "Adam changes every\nweight a little", COLORS[4]),
    ]
    angles = np.deg2rad([150, 90, 30, -30, -90, -150])  # clockwise from the top left
    centres = [(cx + rx * np.cos(a), cy - ry * np.sin(a)) for a in angles]
    patches = []
    for (x, y), (heading, text, colour) in zip(centres, steps_text):
        patches.append(
            box(ax, x, y, w, h, text, edge=colour, fill=tint(colour, 0.15), fontsize=10, heading=heading)
        )
    for i, (start, end) in enumerate(zip(patches, patches[1:] + patches[:1])):
        ax.add_patch(
            FancyArrowPatch(
                centres[i],
                centres[(i + 1) % len(centres)],
                patchA=start,
                patchB=end,
                arrowstyle="-|>",
                mutation_scale=16,
                color="0.25",
                lw=1.7,
                connectionstyle="arc3,rad=-0.3",
                shrinkA=3,
                shrinkB=3,
            )
        )
    y5, (x0, y0) = centres[5][1], centres[0]
    ax.text(
        x0 - 0.55,
        (y5 + y0) / 2,
        "next\nbatch",
        ha="right",
        va="center",
        fontsize=10.5,
        weight="bold",
        color="0.2",
    )
    ax.text(
        cx,
        cy - 0.4,
        "one epoch = one pass\nover all training batches",
        ha="center",
        va="center",
        fontsize=11,
        weight="bold",
    )
    ax.text(
        cx,
        cy + 0.45,
        f"{len(train_idx):,} images / {batch} per batch\n= {steps} steps round this loop",
        ha="center",
        va="center",
        fontsize=10,
        color="0.25",
    )
    # After each epoch: validation.
    vw, vh = 3.9, 1.6
    vx, vy = 13.6 - vw / 2, cy
    box(
        ax,
        vx,
        vy,
        vw,
        vh,
        f"forward pass and loss on the\n{len(val_idx):,} validation images;\nno backward pass, no step",
        edge=COLORS[1],
        fill=tint(COLORS[1], 0.15),
        fontsize=10,
        heading="after each epoch: validation",
    )
    x_ring = centres[2][0] + w / 2
    arrow(ax, (x_ring + 0.1, cy), (vx - vw / 2 - 0.05, vy), ls="--", color="0.3")
    ax.text(
        (x_ring + vx - vw / 2) / 2,
        cy - 0.15,
        "end of\nepoch",
        ha="center",
        va="bottom",
        fontsize=9.5,
        color="0.3",
    )
    save(fig, "training_loop.svg")


# --- The first chapter: a batch as a tensor, softmax ---------------------------------------------


def digit_image(digit: int, size: int = 28, box: float = 20, shear: float = 0.0, sub: int = 4) -> np.ndarray:
    """A digit-like grayscale image, ``size`` x ``size`` bytes (0 to 255): the glyph of ``digit``
    in matplotlib's own font, slanted by ``shear``, scaled to fit ``box`` pixels in the middle (as
    MNIST centres its digits), each pixel the share of it that the glyph covers (``sub`` x ``sub``
    samples)."""
    path = TextPath((0, 0), str(digit), size=1, prop=FontProperties(family="DejaVu Sans"))
    path = path.transformed(Affine2D().skew(shear, 0))
    (x0, y0), (x1, y1) = path.get_extents().get_points()
    scale = box / max(x1 - x0, y1 - y0)
    t = (np.arange(size * sub) + 0.5) / sub
    cols, rows = np.meshgrid(t, t)
    points = np.stack(
        [
            ((x0 + x1) / 2 + (cols - size / 2) / scale).ravel(),
            ((y0 + y1) / 2 - (rows - size / 2) / scale).ravel(),
        ],
        1,
    )
    inside = np.zeros(len(points), dtype=bool)
    for polygon in path.to_polygons():  # even-odd: the holes of 0, 4, 6, 8 and 9 stay empty
        inside ^= GlyphPath(polygon).contains_points(points)
    return np.round(255 * inside.reshape(size, sub, size, sub).mean((1, 3))).astype(np.uint8)


def pixels(ax, image, x, y, unit, colour=(1.0, 1.0, 1.0), zorder=2):
    """A grayscale image with pixels of side ``unit``, top-left corner at (x, y) (y down): each
    pixel ``colour`` scaled by its brightness, on black. Embedded as the image itself, one value
    per pixel, drawn without smoothing."""
    h, w = image.shape
    rgb = (image[:, :, None] / 255.0) * np.asarray(colour)[None, None, :]
    ax.imshow(
        rgb,
        extent=(x, x + w * unit, y + h * unit, y),
        interpolation="none",
        zorder=zorder,
    )
    ax.add_patch(Rectangle((x, y), w * unit, h * unit, fill=False, edgecolor="0.3", lw=1, zorder=zorder))


def double_arrow(ax, start, end, color="0.2", lw=1.3):
    arrow(ax, start, end, color=color, lw=lw, style="<|-|>")


def batch_tensor():
    """A batch of four digit-like images as one tensor (N, C, H, W), with its four axes, and a
    colour image's three channels beside it."""
    digits, shears = (7, 2, 1, 0), (0.15, -0.1, 0.25, 0.05)
    batch = torch.stack([torch.from_numpy(digit_image(d, shear=s)) for d, s in zip(digits, shears)])[:, None]
    n, c, h, w = batch.shape
    assert (c, h, w) == sc.MNIST_SHAPE
    unit, gap = 0.1, 0.75
    side = w * unit
    x0, y0 = 1.9, 1.3  # the top-left corner of the first image
    fig, ax = canvas((11.5, 3.9), (-0.2, 22.2), (-1.1, 6.0))
    ax.text(
        11,
        -0.7,
        f"A batch of {n} digits is one tensor of shape ({n}, {c}, {h}, {w}) = (N, C, H, W)",
        ha="center",
        va="center",
        fontsize=13,
        weight="bold",
    )
    lefts = [x0 + i * (side + gap) for i in range(n)]
    for i, left in enumerate(lefts):
        pixels(ax, batch[i, 0].numpy(), left, y0, unit)
        ax.text(left + side / 2, y0 + side + 0.3, f"n = {i}", ha="center", va="center", fontsize=10)
    # One pixel of the third image, outlined, with its index and value.
    i = 2
    rows, cols = np.nonzero((batch[i, 0] > 80).numpy() & (batch[i, 0] < 200).numpy())
    r, col = int(rows[3 * len(rows) // 4]), int(cols[3 * len(cols) // 4])
    value = int(batch[i, 0, r, col])
    px, py = lefts[i] + col * unit, y0 + r * unit
    outline(ax, px - 0.05, py - 0.05, unit + 0.1, unit + 0.1, COLORS[1], lw=2, zorder=6)
    ax.text(
        lefts[i] + 0.85 * side,
        y0 + side + 1.35,
        f"one pixel: x[{i}, 0, {r}, {col}] = {value}",
        ha="center",
        va="center",
        fontsize=10,
        color=shade(COLORS[1], 0.75),
    )
    arrow(
        ax,
        (lefts[i] + 0.85 * side, y0 + side + 1.1),
        (px + unit / 2, py + unit + 0.1),
        color=COLORS[1],
        lw=1.3,
    )

    # The four axes: N across the batch, C for each image, H and W on the first image.
    right = lefts[-1] + side
    double_arrow(ax, (x0, y0 - 0.45), (right, y0 - 0.45))
    ax.text(
        (x0 + right) / 2,
        y0 - 0.75,
        f"axis 0, N = {n}: the images of the batch",
        ha="center",
        va="center",
        fontsize=11,
        weight="bold",
    )
    double_arrow(ax, (x0 - 0.3, y0), (x0 - 0.3, y0 + side))
    ax.text(
        x0 - 0.5, y0 + side / 2, f"axis 2\nH = {h}\nrows", ha="right", va="center", fontsize=11, weight="bold"
    )
    double_arrow(ax, (x0, y0 + side + 0.75), (x0 + side, y0 + side + 0.75))
    ax.text(
        x0 + side / 2,
        y0 + side + 1.1,
        f"axis 3, W = {w} columns",
        ha="center",
        va="center",
        fontsize=11,
        weight="bold",
    )
    ax.text(
        (x0 + right) / 2,
        y0 + side + 1.95,
        f"axis 1, C = {c}: each digit has one channel, its brightness (grayscale, 0 to 255)",
        ha="center",
        va="center",
        fontsize=11,
        weight="bold",
    )

    # A colour image: the same H x W, three channels.
    colour_image = digit_image(3, shear=0.1)
    channels = [("red", (0.9, 0.2, 0.1)), ("green", (0.1, 0.75, 0.3)), ("blue", (0.2, 0.45, 1.0))]
    cx, cy, step = right + 1.5, y0 + 0.6, 0.55  # the front sheet's top-left corner
    for j, (name, colour) in enumerate(channels):  # the red channel at the back, up and to the right
        left, top = cx + (2 - j) * step, cy - (2 - j) * step
        fade = np.round(colour_image * (1.0 - 0.25 * j)).astype(np.uint8)
        pixels(ax, fade, left, top, unit, colour=colour, zorder=2 + j)
        ax.text(
            left - 0.1,
            top + 0.2,
            name,
            ha="right",
            va="center",
            fontsize=9.5,
            color=shade(colour, 0.8),
            weight="bold",
        )
    mid = cx + step + side / 2
    ax.text(
        mid, y0 + side + 1.1, "a colour image: C = 3", ha="center", va="center", fontsize=11, weight="bold"
    )
    ax.text(
        mid,
        y0 + side + 1.55,
        f"red, green, blue: shape (3, {h}, {w})",
        ha="center",
        va="center",
        fontsize=10,
        color="0.3",
    )
    save(fig, "batch_tensor.svg")


def softmax_bars():
    """Ten example logits for an image of a 7, and the probabilities torch.softmax makes of them."""
    logits = torch.tensor([0.5, -1.2, 1.1, 2.0, -0.6, 0.2, -2.0, 3.4, 1.4, 0.9])
    probs = torch.softmax(logits, dim=0)
    assert abs(float(probs.sum()) - 1) < 1e-6
    best = int(probs.argmax())
    assert best == int(logits.argmax())
    classes = np.arange(10)
    colours = [COLORS[0] if k != best else COLORS[3] for k in classes]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"wspace": 0.42})
    ax1.bar(classes, logits, color=[tint(col, 0.6) for col in colours], edgecolor=colours, lw=1.2)
    ax1.axhline(0, color="0.3", lw=0.8)
    for k, z in zip(classes, logits.tolist()):
        ax1.text(
            k,
            z + (0.12 if z >= 0 else -0.12),
            num(round(z, 2)),
            ha="center",
            va="bottom" if z >= 0 else "top",
            fontsize=9,
        )
    ax1.set(title="logits z: any real numbers", xlabel="class", ylabel="logit", ylim=(-2.8, 4.2))
    ax2.bar(classes, probs, color=[tint(col, 0.6) for col in colours], edgecolor=colours, lw=1.2)
    for k, p in zip(classes, probs.tolist()):
        ax2.text(k, p + 0.012, f"{p:.3f}", ha="center", va="bottom", fontsize=8.5)
    ax2.set(
        title=f"softmax: probabilities, positive, sum = {float(probs.sum()):.0f}",
        xlabel="class",
        ylabel="probability",
        ylim=(0, 0.75),
    )
    for ax in (ax1, ax2):
        ax.set_xticks(classes)
        ax.grid(axis="y", alpha=0.3)
    middle = (ax1.get_position().x1 + ax2.get_position().x0) / 2 - 0.012
    fig.text(middle, 0.5, "\u2192", ha="center", va="center", fontsize=26, color="0.25")
    fig.text(middle, 0.6, "softmax", ha="center", va="center", fontsize=10, color="0.25")
    ax2.annotate(
        f"prediction: class {best}\nthe largest logit,\nthe largest probability",
        xy=(best - 0.45, float(probs[best]) - 0.03),
        xytext=(3.0, 0.5),
        fontsize=9.5,
        color=shade(COLORS[3], 0.8),
        ha="center",
        arrowprops=dict(arrowstyle="-|>", color=COLORS[3], lw=1.2),
    )
    save(fig, "softmax_bars.svg")


def activations():
    x = torch.linspace(-5, 5, 401).requires_grad_(True)
    funcs = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "ReLU": F.relu,
        "Leaky ReLU (a = 0.1)": lambda t: F.leaky_relu(t, 0.1),
    }
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (name, f) in enumerate(funcs.items()):
        y = f(x)
        (grad,) = torch.autograd.grad(y.sum(), x)
        style = dict(color=COLORS[i], linestyle=STYLES[i], linewidth=2, label=name)
        ax1.plot(x.detach(), y.detach(), **style)
        ax2.plot(x.detach(), grad, **style)
    ax1.set(title="Activation functions", xlabel="x", ylabel="f(x)", ylim=(-1.6, 3))
    ax2.set(title="Their derivatives", xlabel="x", ylabel="f'(x)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, "activations.svg")


def losses():
    e = torch.linspace(-3, 3, 301)
    m = torch.linspace(-3, 4, 301)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(e, e**2, color=COLORS[0], linewidth=2, label="squared error (MSE)")
    ax1.plot(e, e.abs(), color=COLORS[1], linestyle="--", linewidth=2, label="absolute error (MAE)")
    ax1.set(
        title="Regression: loss of one prediction", xlabel="error  $\\hat y - y$", ylabel="loss", ylim=(0, 4)
    )
    curves = {
        "0-1 loss (is it wrong?)": (m <= 0).float(),
        "hinge  $\\max(0, 1 - m)$": (1 - m).clamp(min=0),
        "cross-entropy  $\\log(1 + e^{-m})$": F.softplus(-m),
        "squared error on softmax": 2 * (1 - torch.sigmoid(m)) ** 2,
    }
    for i, (name, y) in enumerate(curves.items()):
        ax2.plot(m, y, color=COLORS[i + 2 if i else 7], linestyle=STYLES[i], linewidth=2, label=name)
    ax2.set(
        title="Two classes: loss against the margin",
        xlabel="margin  m = $z_y - z_{other}$",
        ylabel="loss",
        ylim=(0, 4),
    )
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, "losses.svg")


def optimization():
    curvature = torch.tensor([1.0, 30.0])

    def f(w):
        return 0.5 * (curvature * w**2).sum(-1)

    def path(make, steps):
        w = torch.tensor([-4.5, 1.5], requires_grad=True)
        opt = make([w])
        pts = [w.detach().clone()]
        for _ in range(steps):
            opt.zero_grad()
            f(w).backward()
            opt.step()
            pts.append(w.detach().clone())
        return torch.stack(pts)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.6, 1]})
    w1, w2 = torch.meshgrid(torch.linspace(-5, 5, 200), torch.linspace(-2, 2, 200), indexing="xy")
    ax1.contour(w1, w2, f(torch.stack([w1, w2], -1)), levels=20, colors="0.75", linewidths=0.7)
    runs = {
        "GD, lr 0.06": lambda p: torch.optim.SGD(p, lr=0.06),
        "momentum 0.9, lr 0.01": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
        "Adam, lr 0.3": lambda p: torch.optim.Adam(p, lr=0.3),
    }
    for i, (name, make) in enumerate(runs.items()):
        pts = path(make, 60)
        ax1.plot(
            pts[:, 0], pts[:, 1], marker=".", markersize=3, color=COLORS[i], linestyle=STYLES[i], label=name
        )
    ax1.plot(0, 0, "k*", markersize=10, label="minimum")
    ax1.set(title="60 steps on $f(w) = (w_1^2 + 30\\,w_2^2)/2$", xlabel="$w_1$", ylabel="$w_2$")
    ax1.legend(fontsize=8, loc="lower right")
    for i, lr in enumerate([0.005, 0.06, 0.07]):
        label = {0.005: "too small", 0.06: "about right", 0.07: "too large"}[lr]
        ax2.semilogy(
            f(path(lambda p, lr=lr: torch.optim.SGD(p, lr=lr), 50)),
            color=COLORS[i],
            linestyle=STYLES[i],
            label=f"{label}, lr {lr}",
        )
    ax2.set(title="Gradient descent: learning rate", xlabel="step", ylabel="f(w)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    save(fig, "optimization.svg")


def one_cycle():
    """The default recipe's learning rate and Adam's beta1 at each of its 375 steps, read from the
    optimiser that sc.make_optimizer builds, stepping its one-cycle scheduler."""
    steps = 375  # one epoch: 48,000 training images in batches of 128
    optimizer, scheduler = sc.make_optimizer(sc.SimpleCNN(), sc.FAST, steps, 1)
    rates, beta1 = [], []
    for t in range(steps):
        group = optimizer.param_groups[0]
        rates.append(group["lr"])
        beta1.append(group["betas"][0])
        optimizer.step()  # no gradients: nothing moves, but the scheduler sees a step was taken
        if t < steps - 1:
            scheduler.step()
    rates, beta1 = np.array(rates), np.array(beta1)
    peak = int(rates.argmax())
    # The peak lies between steps (at 0.25 * 375 - 1 = 92.75): the nearest step comes within 1e-4 of it.
    assert abs(rates[peak] / sc.FAST.lr - 1) < 1e-4 and int(beta1.argmin()) == peak
    guide_lr = sc.GUIDE.lr
    t = np.arange(steps)
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(9, 5.2), sharex=True, gridspec_kw={"height_ratios": [1.6, 1], "hspace": 0.12}
    )
    ax1.plot(t, rates * 1e3, color=COLORS[0], lw=2.2, label="one cycle (the default recipe)")
    ax1.axhline(guide_lr * 1e3, color=COLORS[3], ls="--", lw=1.5, label="constant (the original recipe)")
    ax1.axvline(peak, color="0.6", ls=":", lw=1.2)
    ax1.annotate(
        f"peak {sci(rates[peak])} at step {peak}",
        xy=(peak, rates[peak] * 1e3),
        xytext=(peak + 40, rates[peak] * 1e3 * 0.97),
        fontsize=9.5,
        va="center",
        arrowprops=dict(arrowstyle="-|>", color="0.3", lw=1),
    )
    ax1.annotate(
        f"start: peak / 25\n= {sci(rates[0])}",
        xy=(0, rates[0] * 1e3),
        xytext=(6, 10.0),
        fontsize=9.5,
        arrowprops=dict(arrowstyle="-|>", color="0.3", lw=1),
    )
    ax1.annotate(
        f"last step: peak / 250,000\n= {sci(rates[-1])}",
        xy=(steps - 1, rates[-1] * 1e3),
        xytext=(272, 8.5),
        fontsize=9.5,
        arrowprops=dict(arrowstyle="-|>", color="0.3", lw=1),
    )
    ax1.set(
        ylabel="learning rate (\u00d710\u207b\u00b3)",
        title="The default recipe over its one epoch of 375 steps",
    )
    ax1.set_ylim(0, 16.5)
    ax1.legend(fontsize=9, loc="upper right")
    ax2.plot(t, beta1, color=COLORS[2], lw=2.2, ls="-.")
    ax2.axvline(peak, color="0.6", ls=":", lw=1.2)
    ax2.set(xlabel="step", ylabel="Adam's $\\beta_1$", ylim=(0.83, 0.97), xlim=(0, steps - 1))
    ax2.set_yticks([0.85, 0.9, 0.95])
    ax2.annotate(
        f"{beta1.min():.2f} at the peak of the rate",
        xy=(peak, beta1[peak]),
        xytext=(peak + 30, 0.935),
        fontsize=9.5,
        va="center",
        arrowprops=dict(arrowstyle="-|>", color="0.3", lw=1),
    )
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    save(fig, "one_cycle.svg")


def regularization():
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 12, dtype=torch.float64)
    y = torch.sin(3 * x) + 0.2 * torch.randn(12, generator=g, dtype=torch.float64)
    xs = torch.linspace(-1, 1, 400, dtype=torch.float64)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharey=True)
    for ax, degree, verdict in zip(axes, (1, 3, 11), ("underfits", "fits", "overfits")):
        powers = lambda t, degree=degree: torch.stack([t**k for k in range(degree + 1)], 1)
        coef = torch.linalg.lstsq(powers(x), y[:, None]).solution
        ax.plot(xs, torch.sin(3 * xs), color="0.6", linestyle=":", label="true curve")
        ax.plot(xs, (powers(xs) @ coef).squeeze(1), color=COLORS[0], label=f"degree {degree}")
        ax.scatter(x, y, color=COLORS[3], s=18, zorder=3, label="training points")
        ax.set(title=f"degree {degree} {verdict}", xlabel="x", ylim=(-2, 2))
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("y")
    save(fig, "overfitting.svg")


def dropout_mask():
    """Inverted dropout on a small feature map: nn.Dropout(p = 0.45) in training mode, from a fixed
    seed; the mask is read off its output."""
    p, n = 0.45, 5
    x = torch.randint(1, 6, (n, n), generator=torch.Generator().manual_seed(4)).float()
    with torch.random.fork_rng():
        torch.manual_seed(6)
        y = nn.Dropout(p).train()(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / (1 - p)) and not y[~kept].any()
    scale = 1 / (1 - p)
    keep_fill, drop_fill = tint(COLORS[2], 0.3), "0.85"
    fig, ax = canvas((12, 4.6), (-0.3, 22.6), (-2.0, 7.3))
    ax.text(
        11.1,
        -1.5,
        f"Dropout with p = {p:g} during training: each value is dropped with probability {p:g}",
        ha="center",
        va="center",
        fontsize=13,
        weight="bold",
    )
    lefts = (0, 7.6, 15.2)
    headings = (
        ("feature map x", f"{n}\u00d7{n}, one channel of one image"),
        ("random mask m", f"1: kept (probability {1 - p:g}), 0: dropped"),
        (f"y = m \u00b7 x / (1 \u2212 {p:g})", f"survivors \u00d7 1/{1 - p:g} = \u00d7{scale:.2f}"),
    )
    for left, (heading, sub) in zip(lefts, headings):
        ax.text(left + n / 2, -0.75, heading, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(left + n / 2, -0.25, sub, ha="center", va="center", fontsize=9.5, color="0.3")
    grid(ax, x, lefts[0], 0.2, fill=tint(COLORS[0], 0.15), fontsize=12)
    for r in range(n):
        for c in range(n):
            on = bool(kept[r, c])
            cell(
                ax,
                lefts[1] + c,
                0.2 + r,
                "1" if on else "0",
                keep_fill if on else drop_fill,
                fontsize=12,
                color="black" if on else "0.4",
            )
            cell(
                ax,
                lefts[2] + c,
                0.2 + r,
                f"{float(y[r, c]):.2f}" if on else "0",
                keep_fill if on else drop_fill,
                fontsize=10.5,
                color="black" if on else "0.4",
            )
    for left, sign in ((lefts[0] + n, "\u00d7"), (lefts[1] + n, "\u2192")):
        ax.text(
            (left + left + 2.6) / 2, 0.2 + n / 2, sign, ha="center", va="center", fontsize=22, color="0.3"
        )
    count = int(kept.sum())
    ax.text(
        11.1,
        n + 0.85,
        f"this draw keeps {count} of {n * n} values (on average {n * n}\u00b7{1 - p:g} = {n * n * (1 - p):g}); "
        f"a new mask for every image and every step",
        ha="center",
        va="center",
        fontsize=10.5,
    )
    ax.text(
        11.1,
        n + 1.55,
        f"mean of x: {float(x.mean()):.2f}; mean of y: {float(y.mean()):.2f}; "
        "the same on average over many masks. In evaluation mode y = x.",
        ha="center",
        va="center",
        fontsize=10.5,
        color="0.3",
    )
    save(fig, "dropout_mask.svg")


def batchnorm_stats():
    """Which values batch norm averages: for one channel, every image of the batch and every
    position of the map. The mean and variance are checked against nn.BatchNorm2d."""
    n, c, h, w = 4, 3, 4, 4
    g = torch.Generator().manual_seed(2)
    x = (
        torch.randn(n, c, h, w, generator=g) * torch.tensor([1.0, 0.5, 2.0])[:, None, None]
        + torch.tensor([1.5, -0.5, 0.0])[:, None, None]
    )
    chosen = 0
    values = x[:, chosen]
    mu, var = values.mean(), values.var(unbiased=False)
    bn = nn.BatchNorm2d(c).train()
    out = bn(x)
    assert torch.allclose(out[:, chosen], (values - mu) / torch.sqrt(var + bn.eps), atol=1e-5)
    assert torch.allclose(bn.running_mean[chosen], bn.momentum * mu)
    side, step = 2.4, 0.45
    others = ["0.75"] * (c - 1)
    fig, ax = canvas((12.4, 3.6), (-0.3, 27.6), (-0.9, 6.9), down=False)
    ax.text(
        13.6,
        6.4,
        f"Batch norm: the mean and variance of channel {chosen} come from all {n} images and all {h}\u00d7{w} positions",
        ha="center",
        va="center",
        fontsize=12.5,
        weight="bold",
    )
    base = 1.0  # the bottom edge of the front sheets
    pitch = side + (c - 1) * step + 0.9
    for i in range(n):
        left = 0.9 + i * pitch
        stack(ax, left, base + (c - 1) * step, c, side, others + [COLORS[0]], step, cells=w)
        ax.text(
            left + (c - 1) * step + side / 2,
            base - 0.4,
            f"image {i}",
            ha="center",
            va="center",
            fontsize=10,
        )
    right = 0.9 + n * pitch - 0.9
    double_arrow(ax, (0.9, base - 0.95), (right, base - 0.95))
    ax.text(
        (0.9 + right) / 2,
        base - 1.4,
        f"N = {n} images, each of shape (C, H, W) = ({c}, {h}, {w})",
        ha="center",
        va="center",
        fontsize=10.5,
    )
    tx = right + 0.9
    lines = [
        (f"blue: channel {chosen} of every image (front)", shade(COLORS[0], 0.8)),
        (f"m = N\u00b7H\u00b7W = {n}\u00b7{h}\u00b7{w} = {values.numel()} values", "black"),
        (f"their mean \u03bc = {float(mu):.2f}, variance \u03c3\u00b2 = {float(var):.2f}", "black"),
        ("each blue value becomes (x \u2212 \u03bc) / \u221a(\u03c3\u00b2 + \u03b5)", "black"),
        (f"grey: channels 1 and {c - 1}, each with its own", "0.35"),
        (f"\u03bc and \u03c3\u00b2 from its own {values.numel()} values", "0.35"),
    ]
    for k, (text, colour) in enumerate(lines):
        weight = "bold" if k == 0 else "normal"
        ax.text(
            tx,
            base + 3.7 - 0.62 * k,
            text,
            ha="left",
            va="center",
            fontsize=10.5,
            color=colour,
            weight=weight,
        )
    save(fig, "batchnorm_stats.svg")


def loss_curves():
    """Three shapes of training and validation loss, drawn from simple formulas (illustrations,
    not measurements): both high and flat, both falling together, validation turning upward."""
    epochs = np.arange(1, 21)
    decay = np.exp(-(epochs - 1) / 3)
    shapes = {
        "both high and flat: underfitting": (1.75 + 0.3 * decay, 1.85 + 0.25 * decay),
        "both falling together: a good fit": (0.12 + 1.9 * decay, 0.2 + 1.8 * decay),
        "validation turns upward: overfitting": (0.03 + 2.0 * decay, 0.3 + 1.75 * decay + 0.035 * epochs),
    }
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.6), sharey=True)
    for ax, (title, (train, val)) in zip(axes, shapes.items()):
        ax.plot(epochs, train, color=COLORS[0], lw=2, marker="o", markersize=3.5, label="training loss")
        ax.plot(
            epochs, val, color=COLORS[3], lw=2, ls="--", marker="s", markersize=3.5, label="validation loss"
        )
        ax.set(title=title, xlabel="epoch", ylim=(0, 2.3), xlim=(0.5, 20.5), xticks=[1, 5, 10, 15, 20])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8.5, loc="upper right")
    axes[0].set_ylabel("loss")
    # Overfitting: where the validation loss is lowest, and the gap at the end.
    train, val = shapes["validation turns upward: overfitting"]
    best = int(val.argmin())
    assert 0 < best < len(epochs) - 1  # the validation curve does turn upward
    ax = axes[2]
    ax.plot(epochs[best], val[best], marker="v", color="black", markersize=8, zorder=5)
    ax.annotate(
        f"lowest validation loss\n(epoch {epochs[best]})",
        xy=(epochs[best], val[best] + 0.05),
        xytext=(epochs[best] + 1.5, 1.45),
        fontsize=8.5,
        ha="center",
        va="center",
        arrowprops=dict(arrowstyle="-|>", color="0.3", lw=1),
    )
    last = epochs[-1] - 0.4
    ax.annotate(
        "", xy=(last, train[-1]), xytext=(last, val[-1]), arrowprops=dict(arrowstyle="<|-|>", color="0.2")
    )
    ax.text(
        last - 0.5, (train[-1] + val[-1]) / 2, "generalisation\ngap", ha="right", va="center", fontsize=8.5
    )
    fig.suptitle(
        "Illustrations: the three typical shapes (drawn from simple formulas, not from a training run)",
        fontsize=10.5,
        color="0.25",
        y=1.02,
    )
    save(fig, "loss_curves.svg")


def memory_order(t: torch.Tensor) -> list[tuple[tuple[int, ...], float]]:
    """The (index, value) pairs of ``t`` in the order they lie in memory, from its strides; checked
    against the storage read straight through."""
    indices = sorted(np.ndindex(*t.shape), key=lambda idx: sum(i * s for i, s in zip(idx, t.stride())))
    values = [float(t[idx]) for idx in indices]
    assert values == torch.as_strided(t, (t.numel(),), (1,)).tolist()
    return list(zip(indices, values))


def memory_layout():
    """The twelve values of a (1, 3, 2, 2) tensor in memory, contiguous (NCHW) and channels last
    (NHWC), as their strides lay them out."""
    x = torch.arange(12.0).reshape(1, 3, 2, 2)
    layouts = {
        "NCHW (contiguous, the default)": x.contiguous(),
        "NHWC, channels last": x.contiguous(memory_format=torch.channels_last),
    }
    assert all(torch.equal(t, x) for t in layouts.values())  # the same tensor, value for value
    chan = [COLORS[0], COLORS[1], COLORS[2]]
    fig, ax = canvas((12.5, 4.1), (-0.6, 23.4), (-1.9, 7.0))
    ax.text(
        11.4,
        -1.45,
        f"One tensor of shape {tuple(x.shape)}, two orders in memory",
        ha="center",
        va="center",
        fontsize=13,
        weight="bold",
    )
    # The tensor: three 2x2 channel maps; pixel (0, 0) outlined in each.
    size, top = 1.0, 1.2
    for c in range(3):
        left = c * 2.7
        ax.text(
            left + 1,
            top - 0.35,
            f"channel {c}",
            ha="center",
            va="center",
            fontsize=10.5,
            weight="bold",
            color=shade(chan[c], 0.7),
        )
        grid(ax, x[0, c], left, top, fill=tint(chan[c], 0.35), size=size, fontsize=12)
        outline(ax, left + 0.06, top + 0.06, size - 0.12, size - 0.12, "black", lw=1.6, ls="--", zorder=5)
    ax.text(
        3.85,
        top + 2.55,
        "dashed: pixel (h, w) = (0, 0)\nin each channel",
        ha="center",
        va="top",
        fontsize=9.5,
        color="0.3",
    )
    ax.text(
        3.85,
        top + 3.7,
        "x[0, c, h, w]: image 0,\nchannel c, row h, column w",
        ha="center",
        va="top",
        fontsize=9.5,
        color="0.3",
    )

    # The memory: twelve cells in a row for each layout.
    mx, unit = 9.6, 1.1
    for row, (name, t) in enumerate(layouts.items()):
        y0 = 0.9 + row * 3.7
        order = memory_order(t)
        ax.text(mx, y0 - 0.95, name, ha="left", va="center", fontsize=11, weight="bold")
        ax.text(
            mx + 12 * unit,
            y0 - 0.95,
            "strides (" + ", ".join(map(str, t.stride())) + ")",
            ha="right",
            va="center",
            fontsize=10.5,
            family="monospace",
        )
        for k, ((_, c, h, w), value) in enumerate(order):
            ax.text(
                mx + (k + 0.5) * unit, y0 - 0.3, str(k), ha="center", va="center", fontsize=8, color="0.45"
            )
            cell(ax, mx + k * unit, y0, num(value), tint(chan[c], 0.35), size=unit, fontsize=12)
            if (h, w) == (0, 0):
                outline(
                    ax,
                    mx + k * unit + 0.06,
                    y0 + 0.06,
                    unit - 0.12,
                    unit - 0.12,
                    "black",
                    lw=1.6,
                    ls="--",
                    zorder=5,
                )
        # Brackets under the groups that lie together: a channel's map, or a pixel's channels.
        group = 4 if row == 0 else 3
        for g in range(12 // group):
            a, b = mx + g * group * unit + 0.1, mx + (g + 1) * group * unit - 0.1
            ax.plot(
                [a, a, b, b],
                [y0 + unit + 0.15, y0 + unit + 0.3, y0 + unit + 0.3, y0 + unit + 0.15],
                color="0.35",
                lw=1,
            )
            (_, c, h, w), _ = order[g * group]
            label = f"channel {c}" if row == 0 else f"pixel ({h}, {w})"
            ax.text(
                (a + b) / 2, y0 + unit + 0.65, label, ha="center", va="center", fontsize=9.5, color="0.25"
            )
    ax.text(mx - 0.25, 0.6, "memory\noffset", ha="right", va="center", fontsize=8, color="0.45")
    save(fig, "memory_layout.svg")


def float_formats():
    """The bit fields of float32, float16 and bfloat16 (widths from torch.finfo), filled with the
    bits each stores for pi."""
    formats = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    fields = {}
    for name, dtype in formats.items():
        info = torch.finfo(dtype)
        fraction = round(-np.log2(info.eps))
        fields[name] = (1, info.bits - 1 - fraction, fraction)
    assert fields == {"float32": (1, 8, 23), "float16": (1, 5, 10), "bfloat16": (1, 8, 7)}
    colours = [COLORS[3], COLORS[0], COLORS[2]]
    names = ["sign", "exponent", "fraction"]
    unit = 0.6
    fig, ax = canvas((12.5, 4.2), (-3.2, 31.6), (-1.6, 7.8))
    ax.text(
        14.2,
        -1.15,
        "Three floating-point formats, bit by bit, each storing \u03c0",
        ha="center",
        va="center",
        fontsize=13,
        weight="bold",
    )
    for row, (name, dtype) in enumerate(formats.items()):
        y0 = 0.3 + row * 2.3
        value = torch.tensor(np.pi, dtype=dtype)
        bits_total = sum(fields[name])
        integer = int(value.view(torch.int32 if bits_total == 32 else torch.int16)) & ((1 << bits_total) - 1)
        bits = format(integer, f"0{bits_total}b")
        ax.text(-0.3, y0 + unit / 2, name, ha="right", va="center", fontsize=11.5, weight="bold")
        k = 0
        for field, (width, colour, label) in enumerate(zip(fields[name], colours, names)):
            for _ in range(width):
                cell(
                    ax, k * unit, y0, bits[k], tint(colour, 0.35), size=unit, fontsize=10, edge="0.5", lw=0.6
                )
                k += 1
            left = (k - width) * unit
            outline(ax, left, y0, width * unit, unit, colour, lw=2, zorder=5)
            # The sign's one bit is too narrow for its label: that one goes a line lower, ending at the bit.
            ax.text(
                left + width * unit if field == 0 else left + width * unit / 2,
                y0 + unit + (0.75 if field == 0 else 0.35),
                f"{label} {width}",
                ha="right" if field == 0 else "center",
                va="center",
                fontsize=9.5,
                color=shade(colour, 0.75),
                weight="bold",
            )
        ax.text(
            20.0,
            y0 + unit / 2,
            f"largest {sci(torch.finfo(dtype).max) if torch.finfo(dtype).max > 1e6 else f'{torch.finfo(dtype).max:,.0f}'}"
            f";  \u03c0 is stored as {float(value):.8g}",
            ha="left",
            va="center",
            fontsize=10.5,
        )
    ax.text(
        14.2,
        7.35,
        "bfloat16 is the first 16 bits of float32 (rounded): the same exponent, so the same range, "
        "but 7 fraction bits instead of 23",
        ha="center",
        va="center",
        fontsize=10,
        color="0.3",
    )
    save(fig, "float_formats.svg")


if __name__ == "__main__":
    pictures = (conv1d_flip_slide, conv2d_padding_stride, conv_dilation, conv_multichannel, pooling_max_avg,
                pooling_gradient, receptive_field, conv_input_gradient, area_averaging)  # fmt: skip
    whole_picture = (network_map, training_loop, batch_tensor, softmax_bars)
    curves = (activations, losses, optimization, one_cycle, regularization, dropout_mask, batchnorm_stats)
    appendix = (loss_curves, memory_layout, float_formats)
    for draw in (*pictures, *whole_picture, *curves, *appendix):
        draw()
    print("figures written to", OUT)
