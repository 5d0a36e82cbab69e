"""The Simple CNN's colour cousin: a small CNN for CIFAR-10 (32x32 RGB photos, 10 classes).

Only the network and the data are new here. Training, evaluation and batching are the
functions the MNIST chapters use, from :mod:`simplecnn`:

* ``CifarCNN``: conv 3x3 3->16 (padding 1), ReLU, max-pool 2; conv 3x3 16->32 (padding 1),
  ReLU, max-pool 2; linear 32*8*8->128, ReLU; linear 128->10.
* ``RECIPE``: Adam with a constant learning rate of 1e-3, mini-batches of 32
  (a :class:`simplecnn.Recipe`, so ``simplecnn.train`` runs it).
* ``load``: CIFAR-10 as standardized in-memory tensors (a :class:`cnnkit.mnist.Splits` with
  the class names), with a seeded validation split as in the MNIST path. By default torchvision
  downloads the original data set; offline, a folder in ``ImageFolder`` layout
  (``train/<class>/*.jpg``, ``test/<class>/*.jpg``) can stand in for it, named by the ``folder``
  argument or the environment variable ``SIMPLECNN_CIFAR10_DIR``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit.mnist import DataError, Splits, data_root, split_indices
from cnnkit.mnist import standardize as standardize_pixels
from cnnkit.plots import COLORS

#: The ten CIFAR-10 classes, in the order of their labels 0..9 (torchvision's order).
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
SHAPE = (3, 32, 32)
#: Per-channel mean and standard deviation used to standardize: pixels in [0, 1] -> [-1, 1].
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
#: Environment variable naming an ImageFolder copy of CIFAR-10 to use instead of downloading.
DIR_ENV = "SIMPLECNN_CIFAR10_DIR"

#: The training recipe of the CIFAR-10 model: Adam, constant learning rate 1e-3, batch 32.
RECIPE = sc.Recipe(name="cifar", epochs=10, batch_size=32, lr=1e-3)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class CifarCNN(nn.Module):
    """A small CNN for 32x32 colour images.

    =====================  ==============  =========================================
    block                  output shape    what it does
    =====================  ==============  =========================================
    input                  (N, 3, 32, 32)
    conv1 3x3, 3->16, p=1  (N, 16, 32, 32) padding 1 keeps the size: 32 + 2 - 3 + 1
    relu1, pool1 2x2       (N, 16, 16, 16)
    conv2 3x3, 16->32, p=1 (N, 32, 16, 16)
    relu2, pool2 2x2       (N, 32, 8, 8)
    flatten                (N, 2048)       32 * 8 * 8
    fc1 2048->128, relu3   (N, 128)
    fc2 128->10            (N, 10)         logits
    =====================  ==============  =========================================

    The defaults are the network as published. ``batch_norm`` adds a BatchNorm2d after each
    convolution and ``dropout`` a dropout layer before the last linear layer (the experiments
    of the appendix). ``in_channels`` and ``image_size`` let the same design run on other
    square images, e.g. ``CifarCNN(in_channels=1, image_size=28)`` for MNIST.
    """

    def __init__(
        self, batch_norm: bool = False, dropout: float = 0.0, in_channels: int = 3, image_size: int = 32
    ):
        super().__init__()
        if image_size % 4 or image_size < 4:
            raise ValueError(
                f"image_size must be a positive multiple of 4 (two 2x2 poolings), got {image_size}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_shape = (in_channels, image_size, image_size)
        side = image_size // 4
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 16, kernel_size=3, padding=1),
                bn1=nn.BatchNorm2d(16) if batch_norm else nn.Identity(),
                act1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(16, 32, kernel_size=3, padding=1),
                bn2=nn.BatchNorm2d(32) if batch_norm else nn.Identity(),
                act2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(32 * side * side, 128),
                act3=nn.ReLU(),
                drop=nn.Dropout(dropout) if dropout else nn.Identity(),
                fc2=nn.Linear(128, sc.NUM_CLASSES),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sc.check_input(x, self.input_shape, type(self).__name__)
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------


@dataclass
class ImageSplits(Splits):
    """:class:`cnnkit.mnist.Splits` plus the class names and where the images came from."""

    classes: tuple[str, ...] = CLASSES
    source: str = ""


def image_folder(folder: str | os.PathLike | None = None) -> Path | None:
    """The ImageFolder copy to read: the ``folder`` argument, else ``$SIMPLECNN_CIFAR10_DIR``,
    else ``None`` (download the original data set with torchvision)."""
    if folder is not None:
        return Path(folder)
    env = os.environ.get(DIR_ENV, "").strip()
    return Path(env) if env else None


def standardize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images ``(N, 3, 32, 32)`` -> float, scaled to [0, 1], minus ``MEAN`` and
    divided by ``STD`` per channel (:func:`cnnkit.mnist.standardize` with these numbers)."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return standardize_pixels(images, mean, std)


_LAYOUT = "train/<class>/*.jpg and test/<class>/*.jpg, one folder per CIFAR-10 class"


def _read_image_folder(split_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of one split folder as uint8 ``(N, 3, 32, 32)`` and their labels."""
    import numpy as np
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import IMG_EXTENSIONS, pil_loader

    if not split_dir.is_dir():
        raise DataError(
            f"CIFAR-10 folder {split_dir.parent} has no '{split_dir.name}' "
            f"subfolder; expected the layout {_LAYOUT}."
        )
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if tuple(found) != CLASSES:
        missing = [c for c in CLASSES if c not in found]
        extra = [c for c in found if c not in CLASSES]
        raise DataError(
            f"{split_dir} must hold exactly the ten CIFAR-10 class folders "
            f"({', '.join(CLASSES)}); "
            + (f"missing: {', '.join(missing)}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected: {', '.join(extra)}" if extra else "")
            + "."
        )
    for name in CLASSES:
        if not any(p.suffix.lower() in IMG_EXTENSIONS for p in (split_dir / name).iterdir()):
            raise DataError(
                f"class folder {split_dir / name} holds no images "
                f"(expected files ending in {', '.join(IMG_EXTENSIONS)})."
            )
    dataset = ImageFolder(split_dir)  # lists the files and numbers the classes alphabetically
    assert tuple(dataset.classes) == CLASSES
    images = np.empty((len(dataset), 32, 32, 3), dtype=np.uint8)
    for i, (path, _) in enumerate(dataset.samples):
        try:
            image = pil_loader(path)  # RGB, as ImageFolder reads it
        except Exception as err:
            raise DataError(f"cannot read image {path}: {type(err).__name__}: {err}") from err
        if image.size != (32, 32):
            raise DataError(
                f"image {path} is {image.size[0]}x{image.size[1]} pixels; CIFAR-10 images are 32x32."
            )
        images[i] = np.asarray(image)
    labels = torch.tensor(dataset.targets, dtype=torch.long)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels


def _missing_cifar_message(root: Path, reason: str) -> str:
    return (
        f"CIFAR-10 is not available: {reason}\n"
        f"torchvision downloads it (about 170 MB) into {root / 'cifar-10-batches-py'} when there "
        f"is an internet connection. Offline, either put 'cifar-10-python.tar.gz' (from "
        f"https://www.cs.toronto.edu/~kriz/cifar.html) into {root} (torchvision unpacks it), or set "
        f"${DIR_ENV} to a folder holding the images as {_LAYOUT}."
    )


def _download_cifar10(root=None, download: bool = True):
    """The torchvision CIFAR-10 sets as uint8 tensors ``(train x, y, test x, y)``."""
    from torchvision import datasets

    root = data_root(root)
    try:
        train_set = datasets.CIFAR10(root, train=True, download=download)
        test_set = datasets.CIFAR10(root, train=False, download=download)
    except Exception as err:  # offline, firewall, damaged archive, ...
        what = "the download failed" if download else "it is not in the data folder"
        raise DataError(_missing_cifar_message(root, f"{what} ({type(err).__name__}: {err}).")) from err
    if tuple(train_set.classes) != CLASSES:
        raise DataError(f"unexpected CIFAR-10 classes from torchvision: {train_set.classes}")

    def tensors(ds):
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> NCHW
        return x, torch.tensor(ds.targets, dtype=torch.long)

    return (*tensors(train_set), *tensors(test_set))


def load(
    folder: str | os.PathLike | None = None,
    root=None,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_subset: int | None = None,
    download: bool = True,
) -> ImageSplits:
    """CIFAR-10 as standardized in-memory tensors, split into train / validation / test.

    The images come from ``folder`` (or ``$SIMPLECNN_CIFAR10_DIR``), an ImageFolder copy laid
    out as ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``; without one, torchvision's
    ``CIFAR10`` reads (and, with ``download=True``, first downloads) the original data set
    under the data root (``root``, ``$SIMPLECNN_DATA`` or ``./data``).

    As in :func:`cnnkit.mnist.load`, a seeded ``val_fraction`` of the training images is
    held out for validation, and ``train_subset`` keeps only the first N of the remaining
    (shuffled) training images. The test set is never cut.
    """
    path = image_folder(folder)
    if path is not None:
        if not path.is_dir():
            origin = "the folder argument" if folder is not None else f"${DIR_ENV}"
            raise DataError(
                f"no CIFAR-10 folder at {path} (named by {origin}; resolved against "
                f"{Path.cwd()}). Expected {_LAYOUT}; or unset ${DIR_ENV} to let "
                "torchvision download CIFAR-10."
            )
        x_train, y_train = _read_image_folder(path / "train")
        x_test, y_test = _read_image_folder(path / "test")
        source = f"image folder {path}"
    else:
        x_train, y_train, x_test, y_test = _download_cifar10(root, download)
        source = "torchvision CIFAR10"
    x_all = standardize(x_train)
    train_idx, val_idx = split_indices(len(y_train), val_fraction, seed)
    if train_subset is not None:
        if train_subset < 1:
            raise ValueError(f"train_subset must be at least 1, got {train_subset}")
        train_idx = train_idx[:train_subset]
    return ImageSplits(
        x_all[train_idx],
        y_train[train_idx],
        x_all[val_idx],
        y_train[val_idx],
        standardize(x_test),
        y_test,
        classes=CLASSES,
        source=source,
    )


# ---------------------------------------------------------------------------------------------
# Per-class results and accuracy curves
# ---------------------------------------------------------------------------------------------


def plot_per_class(
    accuracies: dict[str, torch.Tensor], classes=CLASSES, ax=None, title: str = "Test accuracy per class"
):
    """Grouped bars: one group per class, one bar per model in ``accuracies``; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(accuracies)
    for i, (label, acc) in enumerate(accuracies.items()):
        xs = [c + (i - (len(accuracies) - 1) / 2) * width for c in range(len(classes))]
        ax.bar(xs, [100 * a for a in acc.tolist()], width, color=COLORS[i % len(COLORS)], label=label)
    ax.set_xticks(range(len(classes)), classes, rotation=30)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.axhline(100 / len(classes), color="gray", ls=":", lw=1, label="chance")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_accuracy(
    runs: dict[str, list[dict]], keys=("test_acc",), ax=None, title: str = "Accuracy per epoch"
):
    """Accuracy per epoch for one or more training runs; returns the Axes.

    ``runs`` maps a label to a history from :func:`simplecnn.train`; ``keys`` names the
    columns to draw (``"train_acc"``, ``"val_acc"``, ``"test_acc"``), one line per run and key.
    """
    import matplotlib.pyplot as plt

    names = {"train_acc": "training", "val_acc": "validation", "test_acc": "test"}
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    markers, styles = "osd^v<>", ["-", "--", ":", "-."]
    i = 0
    for label, history in runs.items():
        for k, key in enumerate(keys):
            if any(key not in h for h in history):
                raise ValueError(
                    f"run {label!r} has no {key!r} in its history "
                    "(train with after_epoch=experiments.measure_test(...) for 'test_acc')"
                )
            name = (
                label
                if len(keys) == 1
                else (names.get(key, key) if len(runs) == 1 else f"{label}, {names.get(key, key)}")
            )
            ax.plot(
                [h["epoch"] for h in history],
                [100 * h[key] for h in history],
                marker=markers[i % len(markers)],
                ls=styles[k % len(styles)],
                color=COLORS[i % len(COLORS)],
                label=name,
            )
            i += 1
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
