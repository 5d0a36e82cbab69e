"""The course's plots: colours, style, figure descriptions, and the figures every chapter uses.

* :data:`COLORS`: the Okabe-Ito colour-blind-safe palette, used by every plot in the course.
* :func:`use_style`: call once at the top of a notebook. It sets the palette and an opaque
  white background, and in Jupyter gives each figure a text description (:func:`describe_figure`)
  that the book turns into the image's alt text. Importing this module changes nothing.
* :func:`plot_history`, :func:`show_images`: loss curves and grids of images.
* :func:`show_map`, :func:`map_style`, :func:`show_kernels_on_digits`: feature maps with signed
  values (chapters 1 and 2).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

#: Colour-blind-safe colours (Okabe & Ito), used by every plot in the course.
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def describe_figure(fig) -> str:
    """A short text description of a matplotlib figure, from its titles, axis labels and legend
    entries: the figure's text alternative (alt text) in the book. Empty if it has none of them."""

    def clean(text) -> str:
        return " ".join(str(text).split())

    parts = []
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and clean(suptitle.get_text()):
        parts.append(clean(suptitle.get_text()))
    axes = [ax for ax in fig.get_axes() if ax.get_visible()]
    # A grid of pictures (show_images): say how many, and list their titles (the labels).
    pictures = [ax for ax in axes if ax.images and not (ax.get_xlabel() or ax.get_ylabel())]
    if len(pictures) > 1:
        titles = [clean(ax.get_title()) for ax in pictures if clean(ax.get_title())]
        text = f"{len(pictures)} images"
        if titles:
            shown = ", ".join(titles[:40]) + (", ..." if len(titles) > 40 else "")
            text += f" titled {shown}"
        parts.append(text)
        axes = [ax for ax in axes if ax not in pictures]
    for ax in axes:
        bits = []
        title = clean(ax.get_title())
        x, y = clean(ax.get_xlabel()), clean(ax.get_ylabel())
        if y and x:
            bits.append(f"{y} against {x}")
        elif x or y:
            bits.append(x or y)
        legend = ax.get_legend()
        if legend is not None:
            labels = [clean(t.get_text()) for t in legend.get_texts() if clean(t.get_text())]
            if labels:
                bits.append("legend: " + ", ".join(labels))
        if title and bits:
            parts.append(f"{title}: " + "; ".join(bits))
        elif title or bits:
            parts.append(title or "; ".join(bits))
    return ". ".join(parts) + ("." if parts else "")


def use_style() -> None:
    """The course's matplotlib settings, for this session (call it once per notebook).

    * :data:`COLORS` (colour-blind safe) as the colour cycle;
    * an opaque white figure background, so plots stay readable on the book's dark theme;
    * in Jupyter, each PNG figure carries :func:`describe_figure` in its ``Description`` text
      chunk, which the book turns into the image's alt text.
    """
    import matplotlib

    matplotlib.rcParams["axes.prop_cycle"] = matplotlib.cycler(color=COLORS)
    matplotlib.rcParams["figure.facecolor"] = "white"
    matplotlib.rcParams["savefig.facecolor"] = "white"
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):
        return  # not a Jupyter kernel: figures are not turned into PNG outputs here
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters["image/png"]
    if Figure not in formatter.type_printers and not plt.get_fignums():
        # matplotlib loads its backend on first use; load it now, so that the inline backend
        # registers its PNG formatter before we wrap it (no figure exists to be closed).
        plt.switch_backend(matplotlib.get_backend())
    base = formatter.type_printers.get(Figure)
    if base is None or getattr(base, "describes_figures", False):
        return

    def png_with_description(fig, **kwargs):
        description = describe_figure(fig)
        if description:
            kwargs["metadata"] = {"Description": description}
        return base(fig, **kwargs)

    png_with_description.describes_figures = True
    formatter.for_type(Figure, png_with_description)


def plot_history(history: list[dict], ax=None, title: str = "Training and validation loss"):
    """Training and validation loss per epoch; returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", color=COLORS[0], label="training")
    if any(h["val_loss"] == h["val_loss"] for h in history):  # NaN: trained without a validation set
        ax.plot(epochs, [h["val_loss"] for h in history], "s--", color=COLORS[1], label="validation")
    if all("test_loss" in h for h in history):  # a record, for reading only: nothing is tuned on it
        ax.plot(epochs, [h["test_loss"] for h in history], "d:", color=COLORS[2], label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def show_images(images: torch.Tensor, labels=None, ncols: int = 8, title: str | None = None, cmap="gray"):
    """A grid of images ``(N, C, H, W)`` or ``(N, H, W)`` with optional labels; returns the Figure."""
    import matplotlib.pyplot as plt

    images = images.detach().cpu()
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.dim() == 4:  # colour: channels last for imshow, rescaled to [0, 1]
        images = images.permute(0, 2, 3, 1)
        images = (images - images.amin()) / (images.amax() - images.amin() + 1e-8)
    n = len(images)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.35 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].numpy(), cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


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
            ax.text(
                c, r, f"{v:.3g}", ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    return ax


def show_kernels_on_digits(digits, kernels: dict, labels=None, padding: int | None = None):
    """A grid: one row per digit, one column per kernel (the first column is the digit itself).
    Each feature map is ``conv2d(digit, kernel, padding=padding)``; the default padding keeps
    the digit's size (``(k - 1) // 2``). Returns the Figure."""
    import matplotlib.pyplot as plt

    from cnnkit.scratch import conv2d

    digits = np.asarray(digits, dtype=float)
    names = list(kernels)
    fig, axes = plt.subplots(
        len(digits), len(names) + 1, squeeze=False, figsize=(1.45 * (len(names) + 1), 1.55 * len(digits))
    )
    for r, digit in enumerate(digits):
        show_map(axes[r, 0], digit, "input" if labels is None else f"digit {labels[r]}")
        for c, name in enumerate(names, 1):
            k = np.asarray(kernels[name], dtype=float)
            show_map(
                axes[r, c],
                conv2d(digit, k, padding=(k.shape[0] - 1) // 2 if padding is None else padding),
                name.replace(" (", "\n(") if r == 0 else "",
            )
            axes[r, c].title.set_fontsize(8)
    fig.suptitle(
        "Classic kernels applied to MNIST digits\n(grey: maps without negative values; "
        "blue / vermillion: negative / positive values)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
