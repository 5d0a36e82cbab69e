"""The Simple CNN: the one model this course builds, with its data, training loop and tools.

Everything the notebooks share lives here, so a notebook can narrate and experiment while
the mechanics stay in one tested place:

* ``SimpleCNN``: conv 5x5 1->32, BatchNorm, ReLU, max-pool 2, dropout 0.45;
  conv 5x5 32->64, BatchNorm, ReLU, max-pool 2, dropout 0.35;
  linear 1024->512, ReLU, linear 512->10.
* MNIST loading through ``torchvision.datasets.MNIST`` with file verification, a seeded
  train/validation split and normalisation, held in memory as tensors.
* ``train_epoch``, ``evaluate`` and ``train`` (returns a per-epoch history), a loss-curve plot,
  and checkpoint save/load (``weights_only=True``).
* Speed without changing the network: ``FastDropout`` (the model's dropout layers, with a
  cheaper mask), ``channels_last`` weights, and bfloat16 arithmetic where the CPU has it
  (``Recipe.precision``, ``resolve_precision``); ``FAST`` and ``GUIDE`` are the two recipes.
* A command line: ``python -m simplecnn train --epochs 1``.

Run ``python -m simplecnn --help`` for the command line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Settings shared by notebooks, tests and the command line
# ---------------------------------------------------------------------------------------------

#: Environment variable that switches every notebook to its short CI budget.
FAST_ENV = "SIMPLECNN_FAST"
#: Environment variable that names the data root (else ``./data``).
DATA_ENV = "SIMPLECNN_DATA"


def fast_mode() -> bool:
    """True when ``SIMPLECNN_FAST`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, fast):
    """Return ``fast`` in fast mode (CI), else ``full`` (the reader's setting).

    Notebooks write their budgets as ``EPOCHS = pick(full=10, fast=2)`` so a reader sees
    both numbers and CI can run every notebook in minutes.
    """
    return fast if fast_mode() else full


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: the ``root`` argument, else ``$SIMPLECNN_DATA``, else ``./data``."""
    if root is not None:
        return Path(root)
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else Path("data")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator and return a fresh generator with the same seed."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

MNIST_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


def check_input(x: torch.Tensor, shape: tuple[int, int, int], model_name: str) -> None:
    """Raise a ValueError that says what was expected when ``x`` is not ``(N, *shape)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{model_name} expects a torch.Tensor, got {type(x).__name__}")
    expected = "(N, " + ", ".join(str(s) for s in shape) + ")"
    if x.dim() == 4 and tuple(x.shape[1:]) == tuple(shape):
        return
    hint = ""
    if tuple(x.shape) == tuple(shape):
        hint = " A single image needs a batch dimension: use x.unsqueeze(0)."
    elif shape[0] == 1 and tuple(x.shape) == tuple(shape[1:]):
        hint = " A single 2D image needs batch and channel dimensions: use x[None, None]."
    elif x.dim() == 3 and tuple(x.shape[1:]) == tuple(shape[1:]) and shape[0] == 1:
        hint = " A batch of 2D images needs a channel dimension: use x.unsqueeze(1)."
    raise ValueError(
        f"{model_name} expects input of shape {expected} (batch, channels, height, width); "
        f"got {tuple(x.shape)}.{hint}"
    )


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper random mask; the Simple CNN's dropout layers.

    It does what ``nn.Dropout`` does: in training mode each value is set to zero with
    probability ``p`` and the others are multiplied by ``1 / (1 - p)``; in evaluation mode the
    input passes through unchanged. Only the way the mask is drawn differs. ``nn.Dropout``
    draws it with ``bernoulli_``: on the 2-core test CPU, forward and backward through one
    (256, 32, 12, 12) activation took about 15 ms, against about 4 ms with
    ``torch.rand(...) >= p``, which gives each value the same keep probability ``1 - p``. With
    the same seed the two modules zero different positions, so their outputs are equal in
    distribution, not bit for bit.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x.mul_(0.0) if self.inplace else x * 0.0
        # 1 / (1 - p) where rand >= p (probability 1 - p), else 0; float32 random numbers
        # also under bfloat16 autocast, so that p is not rounded
        mask = torch.rand_like(x, dtype=torch.float32).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        mask = mask.to(x.dtype)
        return x.mul_(mask) if self.inplace else x * mask


class SimpleCNN(nn.Module):
    """The course's network for 28x28 grayscale digits.

    =====================  ==============  =========================================
    block                  output shape    what it does
    =====================  ==============  =========================================
    input                  (N, 1, 28, 28)
    conv1 5x5, 1->32       (N, 32, 24, 24) 28 - 5 + 1 = 24
    bn1, relu1             (N, 32, 24, 24)
    pool1 2x2              (N, 32, 12, 12)
    drop1 p=0.45           (N, 32, 12, 12)
    conv2 5x5, 32->64      (N, 64, 8, 8)   12 - 5 + 1 = 8
    bn2, relu2             (N, 64, 8, 8)
    pool2 2x2              (N, 64, 4, 4)
    drop2 p=0.35           (N, 64, 4, 4)
    flatten                (N, 1024)       64 * 4 * 4 = 1024
    fc1 1024->512, relu3   (N, 512)
    fc2 512->10            (N, 10)         logits; softmax lives in the loss
    =====================  ==============  =========================================

    The keyword arguments exist for the chapters' experiments (swap the activation, drop batch
    norm or dropout); the defaults are the Simple CNN itself.
    """

    def __init__(
        self,
        activation: Callable[[], nn.Module] = nn.ReLU,
        batch_norm: bool = True,
        dropout: tuple[float, float] = (0.45, 0.35),
    ):
        super().__init__()
        norm1 = nn.BatchNorm2d(32) if batch_norm else nn.Identity()
        norm2 = nn.BatchNorm2d(64) if batch_norm else nn.Identity()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(1, 32, kernel_size=5),
                bn1=norm1,
                act1=activation(),
                pool1=nn.MaxPool2d(2),
                drop1=FastDropout(dropout[0]),
                conv2=nn.Conv2d(32, 64, kernel_size=5),
                bn2=norm2,
                act2=activation(),
                pool2=nn.MaxPool2d(2),
                drop2=FastDropout(dropout[1]),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(64 * 4 * 4, 512),
                act3=activation(),
                fc2=nn.Linear(512, NUM_CLASSES),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, MNIST_SHAPE, type(self).__name__)
        return self.classifier(self.features(x))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_shapes(model: nn.Module, input_shape=(1, *MNIST_SHAPE)) -> list[tuple[str, tuple]]:
    """Trace one dummy batch through every leaf layer: ``[(name, output shape), ...]``."""
    shapes: list[tuple[str, tuple]] = []
    hooks = [
        module.register_forward_hook(
            lambda mod, inp, out, name=name: shapes.append((name, tuple(out.shape)))
        )
        for name, module in model.named_modules()
        if len(list(module.children())) == 0
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return shapes


# ---------------------------------------------------------------------------------------------
# MNIST data
# ---------------------------------------------------------------------------------------------

#: MD5 of the four uncompressed MNIST files, as torchvision's ``MNIST`` reads them.
MNIST_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: Mean and standard deviation of the MNIST training pixels (scaled to [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class DataError(RuntimeError):
    """The data set is missing or damaged; the message says which files and where."""


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _missing_data_message(raw: Path, reason: str) -> str:
    files = "\n".join(f"  {raw / name}" for name in MNIST_FILES)
    return (
        f"MNIST is not available: {reason}\n"
        f"Put the four uncompressed MNIST files here:\n{files}\n"
        f"(from the .gz files at https://ossci-datasets.s3.amazonaws.com/mnist/ , gunzipped), "
        f"or set ${DATA_ENV} to a folder whose MNIST/raw/ holds them."
    )


def verify_mnist(root: str | os.PathLike | None = None) -> Path:
    """Check the four raw MNIST files under ``root/MNIST/raw`` against their MD5 sums.

    Returns the raw folder. Raises :class:`DataError` naming every missing or damaged file;
    nothing is deleted, so a partial download can be inspected.
    """
    raw = data_root(root) / "MNIST" / "raw"
    missing = [n for n in MNIST_FILES if not (raw / n).is_file()]
    if missing:
        raise DataError(_missing_data_message(raw, "missing " + ", ".join(missing) + "."))
    bad = [n for n, md5 in MNIST_FILES.items() if _md5(raw / n) != md5]
    if bad:
        raise DataError(
            f"MNIST files are damaged (checksum mismatch): {', '.join(bad)} in {raw}.\n"
            "They may be a partial download. Delete them and run again to download fresh "
            "copies (nothing is trained on damaged files)."
        )
    return raw


def mnist_datasets(root=None, download: bool = True):
    """The torchvision MNIST train and test sets, verified; downloads them when missing."""
    from torchvision import datasets

    root = data_root(root)
    raw = root / "MNIST" / "raw"
    if download and not all((raw / n).is_file() for n in MNIST_FILES):
        try:
            datasets.MNIST(root, train=True, download=True)
            datasets.MNIST(root, train=False, download=True)
        except Exception as err:  # offline, firewall, server error, ...
            raise DataError(
                _missing_data_message(raw, f"the download failed ({type(err).__name__}: {err}).")
            ) from err
    verify_mnist(root)
    return datasets.MNIST(root, train=True), datasets.MNIST(root, train=False)


def normalize(images: torch.Tensor, mean: float = MNIST_MEAN, std: float = MNIST_STD) -> torch.Tensor:
    """uint8 images ``(N, 28, 28)`` -> float ``(N, 1, 28, 28)`` scaled to [0, 1] and standardised."""
    x = images.float().div_(255.0)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x.sub_(mean).div_(std)


def split_indices(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(n)`` into (train, validation) index tensors."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    return perm[n_val:], perm[:n_val]


@dataclass
class Splits:
    """Train, validation and test tensors, already normalised: ``x`` is (N, C, H, W) float."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}


def load_mnist(
    root=None,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_subset: int | None = None,
    download: bool = True,
) -> Splits:
    """MNIST as normalised in-memory tensors, split into train / validation / test.

    ``train_subset`` keeps only the first N images of the (shuffled) training part: the
    fast-mode budget. The validation and test sets are never cut.
    """
    train_set, test_set = mnist_datasets(root, download=download)
    x_all, y_all = normalize(train_set.data), train_set.targets.clone()
    train_idx, val_idx = split_indices(len(y_all), val_fraction, seed)
    if train_subset is not None:
        train_idx = train_idx[:train_subset]
    return Splits(
        x_all[train_idx], y_all[train_idx], x_all[val_idx], y_all[val_idx],
        normalize(test_set.data), test_set.targets.clone(),
    )


class Batches:
    """Mini-batches sliced from in-memory tensors (no per-sample Python work).

    With ``shuffle=True`` the order is redrawn each epoch from ``generator``.
    ``augment`` is an optional function applied to each input batch (training only).
    """

    def __init__(self, x, y, batch_size=256, shuffle=False, generator=None, augment=None):
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.shuffle, self.generator, self.augment = shuffle, generator, augment

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                xb, yb = self.x[start:start + self.batch_size], self.y[start:start + self.batch_size]
            else:
                idx = order[start:start + self.batch_size]
                xb, yb = self.x[idx], self.y[idx]
            if self.augment is not None:
                xb = self.augment(xb)
            yield xb, yb


def random_shift(max_shift: int = 2, generator: torch.Generator | None = None):
    """An augmentation: shift each image by up to ``max_shift`` pixels in x and y (zero fill).

    Works on a whole batch at once (pad, then crop a random window per image), so it adds
    little cost to a training step.
    """

    def augment(x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        pad = max_shift
        # pad with the normalised value of a black pixel so the border stays "background"
        fill = float(x.amin())
        padded = F.pad(x, (pad, pad, pad, pad), value=fill)
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, h)
        cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, w)
        batch = torch.arange(n)[:, None, None]
        out = padded[:, 0][batch, rows[:, :, None], cols[:, None, :]]
        return out.unsqueeze(1)

    return augment


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How to train: optimiser settings, schedule, batch size, regularisation tricks, precision.

    ``GUIDE`` is the original recipe (constant Adam 1e-3, batch 256, 10 epochs, plain
    cross-entropy, float32). ``FAST`` keeps the same network and optimiser but uses a one-cycle
    learning-rate schedule (peak 3e-3, reached after 15 % of the steps), label smoothing 0.1,
    random shifts of up to 2 pixels, and bfloat16 arithmetic where the CPU has it
    (``precision="auto"``, see :func:`resolve_precision`).
    """

    name: str
    epochs: int
    batch_size: int = 256
    lr: float = 1e-3
    schedule: str = "constant"  # "constant" or "onecycle"
    warmup: float = 0.3  # one-cycle: share of the steps spent raising the learning rate
    label_smoothing: float = 0.0
    max_shift: int = 0  # random-shift augmentation, in pixels
    weight_decay: float = 0.0
    precision: str = "float32"  # training arithmetic: "float32", "bfloat16" or "auto"


#: Batch size for evaluation and prediction. Measured on a 2-core CPU (channels_last model, one
#: thread): 10,000 test images took about 1.2-2.3 s in batches of 128-250 and 2.5 s or more in
#: batches of 1,000 or 10,000, whose activations no longer fit the CPU caches.
EVAL_BATCH_SIZE = 250

GUIDE = Recipe(name="guide", epochs=10)
FAST = Recipe(name="fast", epochs=10, lr=3e-3, schedule="onecycle", warmup=0.15, label_smoothing=0.1,
              max_shift=2, precision="auto")
RECIPES = {r.name: r for r in (GUIDE, FAST)}
PRECISIONS = ("auto", "float32", "bfloat16")


def cpu_has_bfloat16() -> bool:
    """True when this CPU multiplies bfloat16 numbers in hardware (Intel AMX or AVX-512 BF16).

    Without such instructions PyTorch emulates bfloat16 and a training step gets slower, not
    faster, so ``precision="auto"`` stays in float32 there.
    """
    try:
        caps = torch.cpu.get_capabilities()
    except Exception:  # older PyTorch, or a platform that does not report its features
        return False
    return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))


def resolve_precision(precision: str) -> str:
    """``"float32"`` or ``"bfloat16"``: what ``precision`` means on this machine.

    ``"auto"`` picks bfloat16 when :func:`cpu_has_bfloat16` is true. In bfloat16 the
    convolutions and matrix products of the forward pass run in 16-bit floats under
    ``torch.autocast`` (their backward follows); the weights, the optimiser and evaluation stay
    in float32. On the 2-core test CPU (which has AMX) this made a training step of 256 images
    about twice as fast (``make bench-step``).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if cpu_has_bfloat16() else "float32"
    return precision


def train_epoch(model, batches: Iterable, optimizer, loss_fn=None, scheduler=None, progress=None,
                precision: str = "float32"):
    """One pass over ``batches`` in training mode. Returns ``(mean loss, accuracy)``.

    Loss and correct counts are summed as tensors and read once at the end, so the loop does
    not stop to copy a number out of every step. ``precision`` is ``"float32"``,
    ``"bfloat16"`` (forward pass under ``torch.autocast``) or ``"auto"`` (see
    :func:`resolve_precision`).
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    low_precision = resolve_precision(precision) == "bfloat16"
    model.train()
    total_loss = torch.zeros(())
    correct = torch.zeros((), dtype=torch.long)
    seen = 0
    for x, y in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low_precision):
            logits = model(x)
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        if progress is not None:
            progress.update(1)
    if seen == 0:
        raise ValueError("train_epoch got no batches")
    return total_loss.item() / seen, correct.item() / seen


@torch.inference_mode()
def evaluate(model, batches: Iterable, loss_fn=None) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` over ``batches``, in eval mode (no dropout, BN
    running statistics)."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.long)
    seen = 0
    try:
        for x, y in batches:
            logits = model(x)
            total_loss += loss_fn(logits, y).double() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate got no batches")
    return total_loss.item() / seen, correct.item() / seen


@torch.inference_mode()
def predict(model, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """Class probabilities ``(N, 10)`` for the inputs ``x``, in eval mode."""
    was_training = model.training
    model.eval()
    out = torch.cat([F.softmax(model(x[i:i + batch_size]), dim=1) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def make_optimizer(model, recipe: Recipe, steps_per_epoch: int, epochs: int):
    """Adam (with the recipe's learning rate) and, for ``onecycle``, its scheduler."""
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    scheduler = None
    if recipe.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, total_steps=steps_per_epoch * epochs, pct_start=recipe.warmup
        )
    elif recipe.schedule != "constant":
        raise ValueError(f"unknown schedule {recipe.schedule!r}; use 'constant' or 'onecycle'")
    return optimizer, scheduler


def train(
    model: nn.Module,
    data: Splits,
    recipe: Recipe = FAST,
    epochs: int | None = None,
    seed: int = 0,
    optimizer=None,
    scheduler=None,
    loss_fn=None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    test_each_epoch: bool = False,
    eval_batch_size: int = EVAL_BATCH_SIZE,
    stop: Callable[[dict], bool] | None = None,
) -> list[dict]:
    """Train ``model`` on ``data`` and return one dict per epoch.

    Each dict has ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` and
    ``seconds`` (training time of that epoch), plus ``test_loss``/``test_acc`` when
    ``test_each_epoch`` is true (with ``test_seconds``, the time that evaluation took).
    ``optimizer``/``scheduler``/``loss_fn`` default to the recipe's; pass your own to experiment
    (the chapters do). ``stop``, if given, is called with each epoch's dict after the epoch;
    when it returns True training ends there (the learning-rate schedule is not shortened).

    For speed, the model's weights are stored ``channels_last`` (in place; the optimiser's
    references stay valid), which made a training step up to 1.4x faster on the test CPU, and
    the recipe's ``precision`` decides whether the forward pass runs in bfloat16.
    """
    epochs = recipe.epochs if epochs is None else epochs
    precision = resolve_precision(recipe.precision)
    model.to(memory_format=torch.channels_last)
    generator = seed_everything(seed)
    augment = random_shift(recipe.max_shift, generator) if recipe.max_shift else None
    train_batches = Batches(data.x_train, data.y_train, recipe.batch_size, True, generator, augment)
    val_batches = Batches(data.x_val, data.y_val, eval_batch_size)
    test_batches = Batches(data.x_test, data.y_test, eval_batch_size)
    if optimizer is None:
        optimizer, scheduler = make_optimizer(model, recipe, len(train_batches), epochs)
    loss_fn = loss_fn or nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    eval_loss = nn.CrossEntropyLoss()  # report plain cross-entropy whatever the training loss
    history = []
    bar = None
    if progress:
        bar = progress_bar(total=len(train_batches) * epochs, unit="batch", desc="training")
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            train_loss, train_acc = train_epoch(model, train_batches, optimizer, loss_fn, scheduler, bar,
                                                precision)
            seconds = time.perf_counter() - start
            val_loss, val_acc = (
                evaluate(model, val_batches, eval_loss) if len(data.y_val) else (float("nan"), float("nan"))
            )
            row = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc,
                       val_loss=val_loss, val_acc=val_acc, seconds=seconds)
            if test_each_epoch:
                test_start = time.perf_counter()
                row["test_loss"], row["test_acc"] = evaluate(model, test_batches, eval_loss)
                row["test_seconds"] = time.perf_counter() - test_start
            history.append(row)
            if log is not None:
                (bar.write if bar is not None else log)(format_epoch(row, epochs))
            if stop is not None and stop(row):
                break
    finally:
        if bar is not None:
            bar.close()
    return history


#: Environment variable: ``text`` makes :func:`progress_bar` print one line of text when it
#: finishes instead of a live bar (a widget in Jupyter). The book is built this way: a static
#: page could show a saved widget only with scripts loaded from elsewhere.
PROGRESS_ENV = "SIMPLECNN_PROGRESS"


def progress_bar(total: int, desc: str = "", unit: str = "it"):
    """A tqdm progress bar: a widget in Jupyter, text in a terminal.

    With ``SIMPLECNN_PROGRESS=text`` the bar runs silently and prints its final state, one line
    like ``training: 100%|##########| 80/80 [00:20<00:00, 3.9batch/s]``, when it is closed.
    """
    if os.environ.get(PROGRESS_ENV, "").strip().lower() != "text":
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit)
    import io

    from tqdm import tqdm

    class FinalLineBar(tqdm):
        def close(self):
            line = None if self.disable else str(self)
            super().close()
            if line is not None:
                print(line, flush=True)

    return FinalLineBar(total=total, desc=desc, unit=unit, file=io.StringIO(), ascii=False)


def format_epoch(row: dict, epochs: int) -> str:
    """One summary line for an epoch of training history."""
    text = (f"epoch {row['epoch']:>2}/{epochs}  train loss {row['train_loss']:.4f}  "
            f"acc {row['train_acc']:.2%}  |  val loss {row['val_loss']:.4f}  acc {row['val_acc']:.2%}")
    if "test_acc" in row:
        text += f"  |  test acc {row['test_acc']:.2%}"
    return text + f"  ({row['seconds']:.1f} s)"


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------

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
    """The course's matplotlib settings; applied when ``simplecnn`` is imported.

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
    ax.plot(epochs, [h["val_loss"] for h in history], "s--", color=COLORS[1], label="validation")
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


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(model: nn.Module, path, history: list[dict] | None = None, **meta) -> Path:
    """Save ``model.state_dict()`` to ``path`` and, beside it, ``<path>.json`` with the
    history, metadata and the checkpoint's SHA-256. Returns the checkpoint path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, path)
    info = dict(meta, history=history or [], sha256=sha256(path))
    path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return path


def load_checkpoint(path, model: nn.Module | None = None, expected_sha256: str | None = None) -> nn.Module:
    """Load a state dict saved by :func:`save_checkpoint` into ``model`` (a new
    :class:`SimpleCNN` by default) and return it in eval mode.

    The file is read with ``torch.load(..., weights_only=True)``, which refuses arbitrary
    pickled objects, so an untrusted file cannot run code. ``expected_sha256`` is checked first.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if expected_sha256 is not None:
        actual = sha256(path)
        if actual != expected_sha256:
            raise ValueError(f"checkpoint {path} has SHA-256 {actual}, expected {expected_sha256}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable weights-only checkpoint: {err}") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    model = model if model is not None else SimpleCNN()
    model.load_state_dict(state)
    return model.eval()


#: The repository the course lives in (also named in _config.yml); the reference checkpoint is
#: downloaded from it when this package runs outside a clone (for example in Colab).
REPOSITORY = "https://github.com/simplecnn/simple-cnn"
#: The reference checkpoint, relative to the repository root, and its SHA-256.
REFERENCE_CHECKPOINT = "checkpoints/simplecnn.pt"
REFERENCE_SHA256 = "7edbc4727b8a33e080c3982871e1959a1e9a7a13d93c85f0df086886a395b165"


def _download(url: str, path: Path) -> None:
    import urllib.request

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
            for block in iter(lambda: response.read(1 << 20), b""):
                f.write(block)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"could not download {url}: {type(err).__name__}: {err}") from err
    tmp.replace(path)


def reference_checkpoint(download: bool = True) -> Path:
    """Path of the committed reference checkpoint ``checkpoints/simplecnn.pt``.

    In a clone of the repository it is the committed file. Elsewhere (the package installed
    with pip, as in Colab) it is downloaded once from the repository into
    ``~/.cache/simplecnn/`` together with its ``.json`` history. Either way its SHA-256 is
    checked against :data:`REFERENCE_SHA256` before the path is returned.
    """
    local = Path(__file__).resolve().parent.parent / REFERENCE_CHECKPOINT
    if local.is_file():
        path = local
    else:
        path = Path.home() / ".cache" / "simplecnn" / Path(REFERENCE_CHECKPOINT).name
        if not path.is_file() or sha256(path) != REFERENCE_SHA256:
            if not download:
                raise FileNotFoundError(f"no reference checkpoint at {local} or {path}")
            base = f"{REPOSITORY}/raw/main/"
            _download(base + REFERENCE_CHECKPOINT, path)
            _download(base + str(Path(REFERENCE_CHECKPOINT).with_suffix(".json")), path.with_suffix(".json"))
    actual = sha256(path)
    if actual != REFERENCE_SHA256:
        raise ValueError(f"reference checkpoint {path} has SHA-256 {actual}, expected {REFERENCE_SHA256}")
    return path


def load_reference(download: bool = True) -> tuple[nn.Module, dict]:
    """The trained reference Simple CNN (in eval mode) and its training record (the ``.json``:
    recipe, per-epoch history, test accuracy, SHA-256)."""
    path = reference_checkpoint(download)
    info = json.loads(path.with_suffix(".json").read_text())
    return load_checkpoint(path, expected_sha256=REFERENCE_SHA256), info


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _cmd_train(args) -> int:
    recipe = RECIPES[args.recipe]
    overrides = {k: v for k, v in dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                       precision=args.precision).items()
                 if v is not None}
    recipe = replace(recipe, **overrides)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"recipe: {recipe}", flush=True)
    print(f"training arithmetic: {resolve_precision(recipe.precision)}; "
          f"{torch.get_num_threads()} threads", flush=True)
    data = load_mnist(args.data_root, val_fraction=args.val_fraction, seed=args.seed,
                      train_subset=args.train_subset)
    print("data: " + ", ".join(f"{k} {v:,}" for k, v in data.sizes().items()), flush=True)
    torch.manual_seed(args.seed)
    model = SimpleCNN().to(memory_format=torch.channels_last)
    start = time.perf_counter()
    history = train(model, data, recipe, seed=args.seed, progress=not args.no_progress,
                    log=lambda s: print(s, flush=True), test_each_epoch=args.test_each_epoch)
    train_seconds = time.perf_counter() - start
    test_loss, test_acc = evaluate(model, Batches(data.x_test, data.y_test, EVAL_BATCH_SIZE))
    print(f"test accuracy {test_acc:.2%} (loss {test_loss:.4f}) on {len(data.y_test):,} images; "
          f"trained in {train_seconds:.0f} s", flush=True)
    out = save_checkpoint(model, args.out, history, recipe=asdict(recipe),
                          precision=resolve_precision(recipe.precision), seed=args.seed,
                          train_subset=args.train_subset, test_acc=test_acc, test_loss=test_loss,
                          train_seconds=train_seconds, threads=torch.get_num_threads(),
                          torch=torch.__version__)
    print(f"saved {out} and {out.with_suffix('.json')}")
    return 0


def _cmd_evaluate(args) -> int:
    model = load_checkpoint(args.checkpoint, expected_sha256=args.sha256)
    data = load_mnist(args.data_root)
    loss, acc = evaluate(model, Batches(data.x_test, data.y_test, EVAL_BATCH_SIZE))
    print(f"test accuracy {acc:.2%} (loss {loss:.4f}) on {len(data.y_test):,} images")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simplecnn", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the Simple CNN on MNIST and save a checkpoint")
    t.add_argument("--recipe", choices=sorted(RECIPES), default="fast",
                   help="'fast' (default: one-cycle, label smoothing, shifts) or 'guide' (constant Adam)")
    t.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's, 10)")
    t.add_argument("--lr", type=float, help="(peak) learning rate (default: the recipe's)")
    t.add_argument("--batch-size", type=int, help="mini-batch size (default 256)")
    t.add_argument("--precision", choices=PRECISIONS,
                   help="training arithmetic (default: the recipe's; 'auto' = bfloat16 where the CPU "
                        "has AMX or AVX-512 BF16, else float32)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--val-fraction", type=float, default=0.2, help="validation share (default 0.2)")
    t.add_argument("--train-subset", type=int, help="train on only the first N training images")
    t.add_argument("--data-root", help=f"data folder (default ${DATA_ENV} or ./data)")
    t.add_argument("--out", default="runs/simplecnn.pt", help="checkpoint path (.pt, default "
                   "runs/simplecnn.pt); the history goes beside it as .json")
    t.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    t.add_argument("--test-each-epoch", action="store_true",
                   help="also measure (never tune on) test accuracy after every epoch")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on the MNIST test set")
    e.add_argument("checkpoint")
    e.add_argument("--sha256", help="refuse the file unless its SHA-256 matches")
    e.add_argument("--data-root", help=f"data folder (default ${DATA_ENV} or ./data)")
    e.set_defaults(func=_cmd_evaluate)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


use_style()

if __name__ == "__main__":
    sys.exit(main())
