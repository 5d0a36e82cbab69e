"""Looking inside a Simple CNN: its shapes and size, its mistakes, its kernels, its feature maps.

* ``layer_shapes`` and ``count_parameters`` check a network's arithmetic (every chapter);
* ``code_lines`` shows the lines of ``src/simplecnn.py`` that a chapter's idea became, found by
  the names of what they show (a layer, a function, a recipe's field);

* ``confusion_matrix``, ``per_class_accuracy`` and ``confident_mistakes`` summarise where a
  classifier goes wrong;
* ``feature_maps`` runs one image through the convolutional blocks and keeps the output of
  every layer;
* ``shift``, ``rotate`` and ``invert`` make inputs the model never saw in training;
* ``plot_confusion_matrix``, ``plot_kernels``, ``plot_feature_maps`` and
  ``plot_probabilities`` draw them with the course's colour-blind-safe palette.

The image functions take and return tensors in the model's input convention: standardized
images of shape ``(N, 1, 28, 28)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnkit.mnist import BACKGROUND, MEAN, STD
from cnnkit.plots import COLORS
from simplecnn import MNIST_SHAPE, NUM_CLASSES

# ---------------------------------------------------------------------------------------------
# Shapes and size
# ---------------------------------------------------------------------------------------------


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_shapes(model: nn.Module, input_shape=(1, *MNIST_SHAPE)) -> list[tuple[str, tuple]]:
    """Trace one dummy batch through every leaf layer: ``[(name, output shape), ...]``."""
    shapes: list[tuple[str, tuple]] = []
    hooks = [
        module.register_forward_hook(lambda mod, inp, out, name=name: shapes.append((name, tuple(out.shape))))
        for name, module in model.named_modules()
        if len(list(module.children())) == 0
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return shapes


def code_lines(obj, *names: str, show: bool = True) -> list[tuple[int, str]]:
    """The lines of the course's code that define or use ``names`` inside ``obj`` (a class, a
    function or a module, such as ``sc.SimpleCNN``, ``sc.train_epoch`` or ``simplecnn``), as
    ``(line number in its file, text)``; printed unless ``show=False``. A name is a layer or
    keyword (``conv1=...``), a variable or argument, an attribute or method (``.step()``), or a
    function or class. Without names, every line of ``obj``. Lines are found by name in the
    parsed code, not by matching its text, and a name that ``obj`` does not have is a
    ValueError, so a notebook that points at the model notices when it changes."""
    import ast
    import inspect
    import textwrap

    obj = inspect.unwrap(obj)  # past decorators such as torch.inference_mode
    source, first = inspect.getsourcelines(obj)
    tree = ast.parse(textwrap.dedent("".join(source)))
    compound = (ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.If, ast.With, ast.Try)
    wanted = {name: set() for name in names}
    for statement in ast.walk(tree):
        if not isinstance(statement, ast.stmt):
            continue
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)) and statement.name in wanted:
            wanted[statement.name].add(statement.lineno)
        if isinstance(statement, compound):
            continue  # its own lines are statements of their own
        # a short statement is shown whole (a recipe over two lines); a long one by its line
        span = range(statement.lineno, statement.end_lineno + 1)
        for node in ast.walk(statement):
            name = getattr(node, "arg", None) or getattr(node, "id", None) or getattr(node, "attr", None)
            if name in wanted:
                wanted[name].update(span if len(span) <= 3 else [node.lineno])
    for node in ast.walk(tree):  # names in the headers of functions and classes (arguments)
        if isinstance(node, ast.arguments):
            for arg in node.args + node.kwonlyargs:
                if arg.arg in wanted:
                    wanted[arg.arg].add(arg.lineno)
    missing = [name for name, lines in wanted.items() if not lines]
    if missing:
        raise ValueError(f"{getattr(obj, '__name__', obj)} has no {', '.join(missing)}")
    numbers = sorted(set().union(*wanted.values())) if names else range(1, len(source) + 1)
    first = max(first, 1)  # a module starts at line 0 for inspect
    found = [(first + n - 1, source[n - 1].rstrip("\n")) for n in numbers]
    if show:
        file = inspect.getsourcefile(obj).rsplit("/", 1)[-1]
        for number, line in found:
            print(f"{file}:{number:<4d} {line}")
    return found


# ---------------------------------------------------------------------------------------------
# Where the model goes wrong
# ---------------------------------------------------------------------------------------------


def confusion_matrix(
    y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int = NUM_CLASSES
) -> torch.Tensor:
    """Counts ``cm[i, j]``: how many images of true class ``i`` were predicted as ``j``."""
    y_true, y_pred = torch.as_tensor(y_true).long(), torch.as_tensor(y_pred).long()
    if y_true.shape != y_pred.shape or y_true.dim() != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D and of equal length; got shapes "
            f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}"
        )
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} must hold class indices 0..{num_classes - 1}")
    return torch.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).view(
        num_classes, num_classes
    )


def per_class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """Share of each true class (a row of the confusion matrix) that was predicted correctly."""
    cm = torch.as_tensor(cm)
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"expected a square confusion matrix, got shape {tuple(cm.shape)}")
    return cm.diag().double() / cm.sum(1).clamp(min=1).double()


def confident_mistakes(probs: torch.Tensor, y_true: torch.Tensor, k: int = 12) -> torch.Tensor:
    """Indices of the ``k`` wrong predictions with the highest predicted probability, most
    confident first."""
    pred = probs.argmax(1)
    wrong = torch.nonzero(pred != y_true).flatten()
    confidence = probs[wrong].max(1).values
    return wrong[confidence.argsort(descending=True)[:k]]


# ---------------------------------------------------------------------------------------------
# What happens inside
# ---------------------------------------------------------------------------------------------


@torch.inference_mode()
def feature_maps(model: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Run ``x`` (N, 1, 28, 28) through ``model.features`` in eval mode, one layer at a time.

    Returns ``[("input", x), ("conv1", ...), ("bn1", ...), ("act1", ...), ...]``: the output of
    every layer of the two convolutional blocks, in order.
    """
    was_training = model.training
    model.eval()
    try:
        out = [("input", x)]
        for name, layer in model.features.named_children():
            x = layer(x)
            out.append((name, x))
    finally:
        model.train(was_training)
    return out


# ---------------------------------------------------------------------------------------------
# Inputs the model never saw
# ---------------------------------------------------------------------------------------------


def shift(x, dx: int = 0, dy: int = 0, fill: float = BACKGROUND):
    """Move images (a tensor or array ``(..., H, W)``) ``dx`` pixels right and ``dy`` pixels
    down; what moves in is ``fill``: the background of standardized images by default, pass
    ``fill=0`` for raw pixels and feature maps."""
    h, w = x.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        raise ValueError(f"a shift of ({dx}, {dy}) moves a {h}x{w} image out of the frame")
    if isinstance(x, torch.Tensor):
        out = torch.full_like(x, fill)
    else:
        x = np.asarray(x, dtype=float)
        out = np.full_like(x, fill)
    src_rows, dst_rows = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
    src_cols, dst_cols = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
    out[..., dst_rows, dst_cols] = x[..., src_rows, src_cols]
    return out


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate images counter-clockwise about their centre (bilinear; background fills corners)."""
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    # affine_grid maps output coordinates to input coordinates, so it takes the inverse rotation
    matrix = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype)
    grid = F.affine_grid(matrix.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    # rotate the pixels relative to the background so the corners that come in are background
    out = F.grid_sample(x - BACKGROUND, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + BACKGROUND


def invert(x: torch.Tensor) -> torch.Tensor:
    """White digits on black become black digits on white (255 - pixel, then standardised)."""
    pixels = x * STD + MEAN
    return (1.0 - pixels - MEAN) / STD


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def plot_confusion_matrix(cm: torch.Tensor, ax=None, title: str = "Confusion matrix (test set)"):
    """The confusion matrix with every non-zero count written in its cell.

    Colours follow ``log(1 + count)`` so that the few mistakes off the diagonal stay visible
    next to the thousand-odd correct predictions on it. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    cm = torch.as_tensor(cm)
    n = cm.shape[0]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.2, 5.4))
    image = ax.imshow(torch.log1p(cm.double()).numpy(), cmap="cividis")
    top = math.log1p(cm.max().item())
    for i in range(n):
        for j in range(n):
            count = int(cm[i, j])
            if count:
                light = math.log1p(count) < 0.6 * top
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if light else "black",
                )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label="log(1 + count)", fraction=0.046, pad=0.04)
    return ax


def plot_kernels(weight: torch.Tensor, ncols: int = 8, title: str = "First-layer kernels"):
    """Each kernel of a convolution ``(out, 1, k, k)`` as a small image; returns the Figure.

    One symmetric colour scale for all kernels: orange weights are positive, purple negative,
    white near zero, so kernels can be compared with each other.
    """
    import matplotlib.pyplot as plt

    weight = weight.detach().cpu()
    if weight.dim() != 4 or weight.shape[1] != 1:
        raise ValueError(f"expected kernels of shape (out, 1, k, k), got {tuple(weight.shape)}")
    n = weight.shape[0]
    nrows = math.ceil(n / ncols)
    limit = weight.abs().max().item()
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.2 * nrows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            image = ax.imshow(weight[i, 0].numpy(), cmap="PuOr_r", vmin=-limit, vmax=limit)
            ax.set_title(str(i), fontsize=8)
    fig.suptitle(title)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    return fig


def plot_feature_maps(
    maps: list[tuple[str, torch.Tensor]],
    names=None,
    channels: int = 8,
    title: str = "Feature maps of one digit",
):
    """One row per layer in ``names`` (default: every entry of ``maps``): its first ``channels``
    channels, with the layer's output shape in the row label. ``maps`` comes from
    :func:`feature_maps` for a single image. Returns the Figure."""
    import matplotlib.pyplot as plt

    chosen = [(n, m) for n, m in maps if names is None or n in names]
    if not chosen:
        raise ValueError(f"none of {names} is in the feature maps ({[n for n, _ in maps]})")
    fig, axes = plt.subplots(
        len(chosen), channels, figsize=(1.25 * channels, 1.45 * len(chosen)), squeeze=False
    )
    for row, (name, m) in zip(axes, chosen):
        m = m.detach().cpu()[0]
        for c, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < m.shape[0]:
                ax.imshow(m[c].numpy(), cmap="gray")
            else:
                ax.axis("off")
        row[0].set_ylabel(f"{name}\n{tuple(m.shape)}", rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_probabilities(
    probs: torch.Tensor, ax=None, label: int | None = None, title: str = "Predicted class probabilities"
):
    """A bar per class for one probability vector; the true class (if given) in a second colour."""
    import matplotlib.pyplot as plt

    probs = torch.as_tensor(probs).detach().cpu().flatten()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 2.6))
    colors = [COLORS[1] if label is not None and i == label else COLORS[0] for i in range(len(probs))]
    ax.bar(range(len(probs)), probs.numpy(), color=colors)
    ax.set_xticks(range(len(probs)))
    ax.set_ylim(0, 1)
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    ax.set_title(title)
    return ax


def plot_per_class_accuracy(acc: torch.Tensor, ax=None, title: str = "Accuracy per class (test set)"):
    """A bar per class; the y axis starts near the lowest value so small differences show.
    Returns the Axes."""
    import matplotlib.pyplot as plt

    acc = torch.as_tensor(acc).double()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 2.8))
    ax.bar(range(len(acc)), (100 * acc).numpy(), color=COLORS[0])
    for i, a in enumerate(acc.tolist()):
        ax.text(i, 100 * a, f"{100 * a:.1f}", ha="center", va="bottom", fontsize=8)
    low = 100 * acc.min().item()
    ax.set_ylim(max(0.0, math.floor(low - 1)), 100.5)
    ax.set_xticks(range(len(acc)))
    ax.set_xlabel("true class")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    return ax


def plot_robustness(
    values,
    accuracies,
    xlabel: str,
    ax=None,
    title: str = "Accuracy on changed inputs",
    label: str | None = None,
    color: str = COLORS[0],
):
    """Accuracy (in %) against the size of a change (a shift in pixels, an angle in degrees).
    Call again with the same ``ax`` to add a curve. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    ax.plot(list(values), [100 * a for a in accuracies], "o-", color=color, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.axhline(10, color="gray", linestyle=":", linewidth=1)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    if label is not None:
        ax.legend()
    return ax
