"""The Simple CNN: the network this course builds, and the loop that trains it.

Read it top to bottom, in the order the chapters teach it: ``SimpleCNN``, ``Recipe``, ``Batches``,
``train_epoch``, ``evaluate``, ``predict``, ``train``; each part names its chapter. Everything else
(MNIST files, plots, checkpoints, the command line, the explorers, appendix B's speed-ups) lives
in the support package ``cnnkit``, which uses this file and never the other way round.
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

MNIST_SHAPE = (1, 28, 28)  # channels, height, width of one digit
NUM_CLASSES = 10
EVAL_BATCH_SIZE = 250  # large enough to be quick, small enough that activations stay in cache


def default_device() -> torch.device:
    """A CUDA GPU when PyTorch sees one, else the CPU (chapter 7)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --- The network (chapters 1-3 and 6; assembled in chapter 7) --------------------------------
def check_input(x: torch.Tensor, shape: tuple[int, int, int], model_name: str) -> None:
    """Raise a ValueError that says what was expected when ``x`` is not ``(N, *shape)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{model_name} expects a torch.Tensor, got {type(x).__name__}")
    got, shape = tuple(x.shape), tuple(shape)
    if len(got) == 4 and got[1:] == shape:
        return
    hints = {}
    if shape[0] == 1:  # grayscale: a 2D image lacks the channel dimension too
        hints[got[:1] + shape[1:]] = "A batch of 2D images needs a channel dimension: use x.unsqueeze(1)."
        hints[shape[1:]] = "A single 2D image needs batch and channel dimensions: use x[None, None]."
    hints[shape] = "A single image needs a batch dimension: use x.unsqueeze(0)."
    raise ValueError(
        f"{model_name} expects input of shape (N, {', '.join(map(str, shape))}) "
        f"(batch, channels, height, width); got {got}. {hints.get(got, '')}".rstrip()
    )


class SimpleCNN(nn.Module):
    """The course's network for 28x28 grayscale digits (input (N, 1, 28, 28)).

    layer               output shape     chapter
    conv1 5x5, 1->32    (N, 32, 24, 24)  1 convolution: 28 - 5 + 1 = 24
    bn1, act1 (ReLU)    (N, 32, 24, 24)  6 batch norm, 3 activations
    pool1 2x2, drop1    (N, 32, 12, 12)  2 pooling, 6 dropout (p = 0.45)
    conv2 5x5, 32->64   (N, 64, 8, 8)    1: 12 - 5 + 1 = 8; then bn2 and act2
    pool2 2x2, drop2    (N, 64, 4, 4)    2, 6 (p = 0.35)
    flatten, fc1, act3  (N, 512)         7 the classifier: 64 * 4 * 4 = 1024 inputs
    fc2 512->10         (N, 10)          4 logits; the softmax lives in the loss

    The keyword arguments exist for the chapters' experiments (another activation, no batch
    norm, no dropout); the defaults are the Simple CNN itself.
    """

    def __init__(self, activation: Callable[[], nn.Module] = nn.ReLU, batch_norm: bool = True,
                 dropout: tuple[float, float] = (0.45, 0.35)):  # fmt: skip
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(1, 32, kernel_size=5),
                bn1=nn.BatchNorm2d(32) if batch_norm else nn.Identity(),
                act1=activation(),
                pool1=nn.MaxPool2d(2),
                drop1=nn.Dropout(dropout[0]),
                conv2=nn.Conv2d(32, 64, kernel_size=5),
                bn2=nn.BatchNorm2d(64) if batch_norm else nn.Identity(),
                act2=activation(),
                pool2=nn.MaxPool2d(2),
                drop2=nn.Dropout(dropout[1]),
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


# --- How to train it (chapters 4-6) ----------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """Everything about training that is not the network."""

    name: str
    epochs: int
    batch_size: int = 256
    lr: float = 1e-3  # Adam's learning rate; the peak of the one-cycle schedule (chapter 5)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's decay rates; one-cycle dips beta1 (chapter 5)
    schedule: str = "constant"  # "constant" or "onecycle" (chapter 5)
    warmup: float = 0.3  # one-cycle: share of the steps spent raising the learning rate
    label_smoothing: float = 0.0  # chapter 4
    max_shift: int = 0  # random shifts of up to this many pixels (chapter 6)
    weight_decay: float = 0.0
    # in place of the shifts: augment(generator) returns the function that changes each batch
    augment: Callable[[torch.Generator], Callable[[torch.Tensor], torch.Tensor]] | None = None


#: The original Simple-CNN-Guide recipe: constant Adam 1e-3, batch 256, plain cross-entropy.
GUIDE = Recipe(name="guide", epochs=10)
#: The course's default: the same network, one epoch. A one-cycle schedule lets Adam take large
#: steps (beta2 0.9 forgets old gradient sizes sooner); small batches give more of them;
#: label smoothing and one-pixel shifts keep the fast learner from overfitting.
FAST = Recipe(name="fast", epochs=1, batch_size=128, lr=1.5e-2, betas=(0.95, 0.9), schedule="onecycle",
              warmup=0.25, label_smoothing=0.1, max_shift=1)  # fmt: skip


def make_optimizer(model: nn.Module, recipe: Recipe, steps_per_epoch: int, epochs: int):
    """Adam with the recipe's settings and, for ``onecycle``, its scheduler (chapter 5)."""
    optimizer = torch.optim.Adam(
        model.parameters(), lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay
    )
    if recipe.schedule == "constant":
        return optimizer, None
    if recipe.schedule != "onecycle":
        raise ValueError(f"unknown schedule {recipe.schedule!r}; use 'constant' or 'onecycle'")
    return optimizer, one_cycle(optimizer, steps_per_epoch * epochs, recipe.warmup, recipe.betas[0])


def one_cycle(optimizer, total_steps: int, warmup: float, beta1: float | None = None):
    """A one-cycle schedule (chapter 5): each learning rate of ``optimizer`` is its peak, reached
    after ``warmup`` of the steps. With ``beta1``, Adam's momentum falls from ``beta1`` to 0.85
    at the peak and rises back, so the largest steps lean less on old gradients."""
    if total_steps < 3:
        raise ValueError(f"a one-cycle schedule needs at least 3 steps, got {total_steps}")
    warmup = min(max(warmup, 2 / total_steps), 1 - 1 / total_steps)  # each phase gets a step or more
    peaks = [group["lr"] for group in optimizer.param_groups]
    beta = dict(max_momentum=beta1, base_momentum=min(0.85, beta1)) if beta1 else dict(cycle_momentum=False)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, peaks, total_steps, pct_start=warmup, **beta)


def random_shift(max_shift: int = 2, generator: torch.Generator | None = None):
    """Augmentation (chapter 6): move each image of a batch by up to ``max_shift`` pixels in x
    and y, filling with the darkest value of the batch (the background)."""

    def augment(x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        padded = F.pad(x, (max_shift,) * 4, value=float(x.amin()))
        dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(x.device)
        rows = dy[:, None] + torch.arange(h, device=x.device)  # (n, h): the window of each image
        cols = dx[:, None] + torch.arange(w, device=x.device)
        batch = torch.arange(n, device=x.device)[:, None, None]
        return padded[:, 0][batch, rows[:, :, None], cols[:, None, :]].unsqueeze(1)

    return augment


# --- Mini-batches, one epoch, evaluation (chapter 7) -----------------------------------------
class Batches:
    """Mini-batches sliced from tensors in memory (no per-image Python work). With ``shuffle``
    the order is redrawn each epoch from ``generator``; ``augment`` changes each input batch."""

    def __init__(self, x, y, batch_size=256, shuffle=False, generator=None, augment=None):
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.shuffle, self.generator, self.augment = shuffle, generator, augment

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.y.device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            xb, yb = self.x[idx], self.y[idx]
            yield (self.augment(xb) if self.augment is not None else xb), yb


def model_device(model: nn.Module) -> torch.device:
    """The device the model's weights are on."""
    return next(model.parameters()).device


def train_epoch(model, batches, optimizer, loss_fn=None, scheduler=None):
    """One pass over ``batches`` in training mode; returns ``(mean loss, accuracy)``."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = model_device(model)
    model.train()
    # running sums stay tensors, so the loop never waits to copy a number out of a step
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
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
    if seen == 0:
        raise ValueError("train_epoch got no batches")
    return total_loss.item() / seen, correct.item() / seen


@torch.inference_mode()
def evaluate(model, batches, loss_fn=None) -> tuple[float, float]:
    """Mean loss and accuracy over ``batches`` in evaluation mode (no dropout; batch norm
    uses its running statistics). The model's mode is restored afterwards."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device, was_training = model_device(model), model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct, seen = torch.zeros((), dtype=torch.long, device=device), 0
    try:
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
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
    """Class probabilities ``(N, 10)`` for inputs ``x``, in evaluation mode, on the CPU."""
    device, was_training = model_device(model), model.training
    model.eval()
    try:
        probabilities = [F.softmax(model(chunk.to(device)), dim=1).cpu() for chunk in x.split(batch_size)]
        return torch.cat(probabilities)
    finally:
        model.train(was_training)


# --- The whole run (chapter 7) ---------------------------------------------------------------
def train(model: nn.Module, data, recipe: Recipe = FAST, epochs: int | None = None, seed: int = 0,
          optimizer=None, scheduler=None, loss_fn=None, device=None, progress: bool = False,
          log: Callable[[str], None] | None = None, after_epoch=None) -> list[dict]:  # fmt: skip
    """Train ``model`` on ``data`` (``x_train``, ``y_train``, ``x_val``, ``y_val``; never the
    test set); return one dict per epoch: ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
    ``val_acc``, ``seconds``. ``optimizer``, ``scheduler``, ``loss_fn`` default to the recipe's,
    ``device`` to :func:`default_device`. ``progress`` shows a bar per epoch; ``log`` gets a line
    after it. ``after_epoch(model, row)`` may add to the row (the command line adds test accuracy);
    returning True ends training."""
    epochs = recipe.epochs if epochs is None else epochs
    device = torch.device(device) if device is not None else default_device()
    model.to(device)  # in place: an optimizer made before stays valid
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # the order of batches and the shifts
    on_device = [t.to(device) for t in (data.x_train, data.y_train, data.x_val, data.y_val)]
    augment = None
    if recipe.augment is not None:
        augment = recipe.augment(generator)
    elif recipe.max_shift:
        augment = random_shift(recipe.max_shift, generator)
    train_batches = Batches(*on_device[:2], recipe.batch_size, True, generator, augment)
    val_batches = Batches(*on_device[2:], EVAL_BATCH_SIZE)
    if optimizer is None:
        optimizer, scheduler = make_optimizer(model, recipe, len(train_batches), epochs)
    loss_fn = loss_fn or nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    plain_loss = nn.CrossEntropyLoss()  # reports compare with any training loss
    history = []
    for epoch in range(1, epochs + 1):
        batches = train_batches
        if progress:  # imported here, so that importing this file loads no widgets
            from tqdm.auto import tqdm  # a live bar in Jupyter, text in a terminal

            batches = tqdm(train_batches, desc=f"epoch {epoch}", unit="batch", leave=False)
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, batches, optimizer, loss_fn, scheduler)
        seconds = time.perf_counter() - start
        row = dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, seconds=seconds)
        row["val_loss"], row["val_acc"] = (
            evaluate(model, val_batches, plain_loss) if len(data.y_val) else (float("nan"),) * 2
        )
        done = after_epoch is not None and after_epoch(model, row)
        history.append(row)
        if log is not None:
            log(format_epoch(row, epochs))
        if done:
            break
    return history


def format_epoch(row: dict, epochs: int) -> str:
    """One summary line for an epoch of training history."""
    text = f"epoch {row['epoch']:>2}/{epochs}  train loss {row['train_loss']:.4f}  acc {row['train_acc']:.2%}"
    if row["val_acc"] == row["val_acc"]:  # NaN when there is no validation set
        text += f"  |  val loss {row['val_loss']:.4f}  acc {row['val_acc']:.2%}"
    if "test_acc" in row:
        text += f"  |  test acc {row['test_acc']:.2%}"
    return text + f"  ({row['seconds']:.1f} s)"
