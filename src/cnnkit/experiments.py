"""Side-by-side experiments on the Simple CNN: same data, same seed, same budget.

The chapters on activations, losses, optimizers and regularization each change one ingredient
of the Simple CNN and ask what difference it makes. This module runs such a comparison with the
training loop of :mod:`simplecnn` (``simplecnn.train``), so every variant sees the same
initial weights (where the architectures agree), the same mini-batches in the same order and
the same number of steps:

* :class:`Variant`: a name plus how to build the model, the optimizer and the training loss.
* :func:`compare`: train every variant and return one :class:`Result` each (per-epoch history,
  per-step training loss and accuracy, final validation numbers, seconds).
* :func:`measure_test`: test accuracy after every epoch of ``sc.train``, for reports only.
* :func:`table`: the results as a fixed-width text table; :func:`plot_curves`: several curves
  on one axis.
* :func:`machine`: the CPU a timing came from (timings compare only on one machine).
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit import speed
from cnnkit.mnist import Splits
from cnnkit.plots import COLORS


def adam(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The Simple CNN's optimizer: Adam with learning rate 1e-3 (the default of :class:`Variant`)."""
    return torch.optim.Adam(params, lr=1e-3)


@dataclass
class Variant:
    """One configuration to train.

    ``model`` builds a fresh network (called after seeding, so variants with the same
    architecture start from the same weights); ``optimizer`` maps the model's parameters to a
    ``torch.optim`` optimizer; ``loss_fn(logits, labels)`` is the training loss (``None``:
    plain cross-entropy). Validation is always measured with plain cross-entropy.
    """

    name: str
    model: Callable[[], nn.Module] = sc.SimpleCNN
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] = adam
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


@dataclass
class Result:
    """What :func:`compare` measured for one variant."""

    name: str
    history: list[dict]  # one dict per epoch, as returned by simplecnn.train
    step_loss: list[float]  # training loss of every mini-batch, in order
    step_acc: list[float]  # training accuracy of every mini-batch, in order
    seconds: float  # training time (sum over epochs, without validation)
    model: nn.Module = field(repr=False)
    train_eval: tuple[float, float] | None = None  # (loss, acc) on the training set, eval mode

    @property
    def final(self) -> dict:
        """The last epoch's row of the history."""
        return self.history[-1]

    @property
    def val_acc(self) -> float:
        return self.final["val_acc"]

    @property
    def val_loss(self) -> float:
        return self.final["val_loss"]


class StepRecorder(nn.Module):
    """Wraps a training loss and records each mini-batch's loss and accuracy.

    ``simplecnn.train`` reports one number per epoch; the recorder sees every call the
    training loop makes, which gives curves with one point per optimisation step.
    """

    def __init__(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.loss_fn = loss_fn
        self.losses: list[float] = []
        self.accs: list[float] = []

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(logits, y)
        self.losses.append(float(loss.detach()))
        self.accs.append(float((logits.detach().argmax(1) == y).float().mean()))
        return loss


def compare(
    variants: Sequence[Variant],
    data: Splits,
    epochs: int,
    seed: int = 0,
    batch_size: int = 128,
    eval_train: bool = False,
    log: Callable[[str], None] | None = print,
    schedule: str = "constant",
    warmup: float = 0.15,
) -> list[Result]:
    """Train every variant on ``data`` for ``epochs`` with the same ``seed`` and batch size.

    Each variant gets the same initial weights (when the architectures agree) and the same
    shuffled mini-batches; there is no augmentation or label smoothing, so the only difference
    is the variant itself. ``schedule="onecycle"`` runs every variant under a one-cycle
    learning-rate schedule (its optimizer's learning rate is the peak, reached after ``warmup``
    of the steps; momentum is not cycled), which reaches a given accuracy in fewer epochs than
    the default constant rate. With ``eval_train`` each result also holds
    the loss and accuracy on the training set measured in evaluation mode (no dropout), the
    fair number to compare with the validation loss. ``log`` gets one line per variant.
    """
    variants = list(variants)
    if not variants:
        raise ValueError("compare needs at least one Variant")
    if not all(isinstance(v, Variant) for v in variants):
        raise ValueError("compare expects a sequence of Variant objects")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if schedule not in ("constant", "onecycle"):
        raise ValueError(f"unknown schedule {schedule!r}; use 'constant' or 'onecycle'")
    recipe = sc.Recipe(name="experiment", epochs=epochs, batch_size=batch_size)
    steps = sc.Batches(data.x_train, data.y_train, batch_size).__len__() * epochs
    results = []
    for v in variants:
        torch.manual_seed(seed)
        model = speed.speed_up(v.model(), "float32")  # the same network, faster (appendix B)
        optimizer = v.optimizer(model.parameters())
        scheduler = None
        if schedule == "onecycle":
            scheduler = sc.one_cycle(optimizer, steps, warmup)
        recorder = StepRecorder(v.loss_fn if v.loss_fn is not None else nn.CrossEntropyLoss())
        history = sc.train(
            model,
            data,
            recipe,
            epochs=epochs,
            seed=seed,
            optimizer=optimizer,
            scheduler=scheduler,
            loss_fn=recorder,
        )
        train_eval = None
        if eval_train:
            train_eval = sc.evaluate(model, sc.Batches(data.x_train, data.y_train, 1000))
        result = Result(
            v.name,
            history,
            recorder.losses,
            recorder.accs,
            sum(h["seconds"] for h in history),
            model,
            train_eval,
        )
        results.append(result)
        if log is not None:
            log(
                f"{v.name:>16s}: val acc {result.val_acc:.2%}, val loss {result.val_loss:.4f} "
                f"({result.seconds:.1f} s)"
            )
    return results


def measure_test(x_test: torch.Tensor, y_test: torch.Tensor):
    """An ``after_epoch`` for :func:`simplecnn.train` that adds ``test_loss``, ``test_acc`` and
    ``test_seconds`` to each epoch's row: to report how training went, never to choose by."""
    batches = sc.Batches(x_test, y_test, sc.EVAL_BATCH_SIZE)

    def measure(model: nn.Module, row: dict) -> None:
        start = time.perf_counter()
        row["test_loss"], row["test_acc"] = sc.evaluate(model, batches)
        row["test_seconds"] = time.perf_counter() - start

    return measure


def rows(results: Sequence[Result]) -> list[dict]:
    """One dict per result: name, final training and validation numbers, seconds."""
    out = []
    for r in results:
        row = dict(
            name=r.name,
            train_loss=r.final["train_loss"],
            train_acc=r.final["train_acc"],
            val_loss=r.val_loss,
            val_acc=r.val_acc,
            seconds=r.seconds,
        )
        if r.train_eval is not None:
            row["train_eval_loss"], row["train_eval_acc"] = r.train_eval
        out.append(row)
    return out


def table(results: Sequence[Result]) -> str:
    """The results as a fixed-width text table (one line per variant)."""
    if not results:
        raise ValueError("table needs at least one Result")
    with_eval = all(r.train_eval is not None for r in results)
    header = f"{'variant':<18s}{'train loss':>11s}{'train acc':>10s}"
    if with_eval:
        header += f"{'train loss (eval)':>18s}"
    header += f"{'val loss':>10s}{'val acc':>9s}{'seconds':>9s}"
    lines = [header, "-" * len(header)]
    for row in rows(results):
        line = f"{row['name']:<18s}{row['train_loss']:>11.4f}{row['train_acc']:>10.2%}"
        if with_eval:
            line += f"{row['train_eval_loss']:>18.4f}"
        line += f"{row['val_loss']:>10.4f}{row['val_acc']:>9.2%}{row['seconds']:>9.1f}"
        lines.append(line)
    return "\n".join(lines)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Mean of each run of ``window`` consecutive values (shorter at the start)."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


_STYLES = ["-", "--", "-.", ":"]
_STEP_METRICS = {"step_loss": "training loss per step", "step_acc": "training accuracy per step"}


def plot_curves(
    results: Sequence[Result],
    metric: str = "step_loss",
    ax=None,
    title: str | None = None,
    smooth: int = 1,
    ylabel: str | None = None,
    log_y: bool = False,
):
    """Draw one curve per result on a single axis and return the Axes.

    ``metric`` is ``"step_loss"`` or ``"step_acc"`` (one point per mini-batch, averaged over
    ``smooth`` consecutive steps) or any key of the per-epoch history (``"val_loss"``,
    ``"val_acc"``, ``"train_loss"``, ...). Colours come from ``cnnkit.plots.COLORS`` and each
    curve also gets its own line style, so the plot reads without colour.
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("plot_curves needs at least one Result")
    per_step = metric in _STEP_METRICS
    if not per_step and metric not in results[0].history[0]:
        known = sorted(set(_STEP_METRICS) | set(results[0].history[0]))
        raise ValueError(f"unknown metric {metric!r}; use one of {known}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    for i, r in enumerate(results):
        style = dict(color=COLORS[i % len(COLORS)], linestyle=_STYLES[i % len(_STYLES)], label=r.name)
        if per_step:
            values = moving_average(getattr(r, metric), smooth)
            ax.plot(range(1, len(values) + 1), values, linewidth=1.6, **style)
        else:
            ax.plot([h["epoch"] for h in r.history], [h[metric] for h in r.history], marker="o", **style)
    ax.set_xlabel("training step (mini-batch)" if per_step else "epoch")
    default_label = _STEP_METRICS.get(metric, metric.replace("_", " "))
    if per_step and smooth > 1:
        default_label += f" (mean of {smooth})"
    ax.set_ylabel(ylabel or default_label)
    if log_y:
        ax.set_yscale("log")
    if not per_step:
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_title(title or default_label)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def beats_chance(result: Result, classes: int = sc.NUM_CLASSES, margin: float = 0.1) -> bool:
    """True when the validation accuracy clears chance (1/classes) by ``margin``."""
    return math.isfinite(result.val_loss) and result.val_acc > 1 / classes + margin


__all__ = [
    "Variant",
    "Result",
    "StepRecorder",
    "adam",
    "compare",
    "rows",
    "table",
    "moving_average",
    "plot_curves",
    "beats_chance",
    "measure_test",
    "machine",
]


def machine() -> str:
    """The CPU's name, its number of logical CPUs and its bfloat16 hardware, for timing reports."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:  # Linux names the model here; platform does not
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    bf16 = speed.bfloat16_hardware()
    return f"{name}, {os.cpu_count()} logical CPUs, bfloat16 hardware: {', '.join(bf16) or 'none'}"
