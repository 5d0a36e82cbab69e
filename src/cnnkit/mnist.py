"""MNIST for the Simple CNN: download, verify, standardize, split, hold in memory.

``load()`` is the one call the notebooks make: it returns :class:`Splits`, six tensors (train,
validation and test images and labels), with the images standardized to zero mean and unit
standard deviation (the training set's 0.1307 and 0.3081). torchvision downloads the files the
first time; every file is checked against its published MD5 sum before anything trains on it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: Environment variable that names the data root (else ``./data``).
DATA_ENV = "SIMPLECNN_DATA"
#: MD5 of the four uncompressed MNIST files, as torchvision's ``MNIST`` reads them.
FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: Mean and standard deviation of the MNIST training pixels (scaled to [0, 1]).
MEAN, STD = 0.1307, 0.3081
#: A black (background) pixel after standardizing.
BACKGROUND = (0.0 - MEAN) / STD


class DataError(RuntimeError):
    """A data set is missing or damaged; the message says which files and where."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: the ``root`` argument, else ``$SIMPLECNN_DATA``, else ``./data``."""
    if root is not None:
        return Path(root)
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else Path("data")


def _md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _missing_message(raw: Path, reason: str) -> str:
    files = "\n".join(f"  {raw / name}" for name in FILES)
    return (
        f"MNIST is not available: {reason}\n"
        f"Put the four uncompressed MNIST files here:\n{files}\n"
        f"(from the .gz files at https://ossci-datasets.s3.amazonaws.com/mnist/ , gunzipped), "
        f"or set ${DATA_ENV} to a folder whose MNIST/raw/ holds them."
    )


def verify(root: str | os.PathLike | None = None) -> Path:
    """Check the four raw files under ``root/MNIST/raw`` against their MD5 sums.

    Returns the raw folder. Raises :class:`DataError` naming every missing or damaged file;
    nothing is deleted, so a partial download can be inspected.
    """
    raw = data_root(root) / "MNIST" / "raw"
    missing = [n for n in FILES if not (raw / n).is_file()]
    if missing:
        raise DataError(_missing_message(raw, "missing " + ", ".join(missing) + "."))
    bad = [n for n, md5 in FILES.items() if _md5(raw / n) != md5]
    if bad:
        raise DataError(
            f"MNIST files are damaged (checksum mismatch): {', '.join(bad)} in {raw}.\n"
            "They may be a partial download. Delete them and run again to download fresh "
            "copies (nothing is trained on damaged files)."
        )
    return raw


def datasets(root=None, download: bool = True, transform=None):
    """torchvision's MNIST training and test sets, verified; downloaded when missing.

    ``transform`` is passed to both (for example ``transforms.ToTensor()`` in a DataLoader
    pipeline); without one, an item is a PIL image and ``.data`` holds all images as uint8.
    """
    from torchvision import datasets as tv_datasets

    root = data_root(root)
    raw = root / "MNIST" / "raw"
    if download and not all((raw / n).is_file() for n in FILES):
        try:
            tv_datasets.MNIST(root, train=True, download=True)
            tv_datasets.MNIST(root, train=False, download=True)
        except Exception as err:  # offline, firewall, server error, ...
            raise DataError(
                _missing_message(raw, f"the download failed ({type(err).__name__}: {err}).")
            ) from err
    verify(root)
    return (
        tv_datasets.MNIST(root, train=True, transform=transform),
        tv_datasets.MNIST(root, train=False, transform=transform),
    )


def standardize(images: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """uint8 images ``(N, H, W)`` or ``(N, C, H, W)`` -> float ``(N, C, H, W)``: scaled to
    [0, 1], minus ``mean``, divided by ``std`` (numbers, or per-channel tensors)."""
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
    """Train, validation and test tensors, standardized: ``x`` is (N, C, H, W) float."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}


def load(
    root=None,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_subset: int | None = None,
    download: bool = True,
) -> Splits:
    """MNIST as standardized tensors in memory, split into train / validation / test.

    A seeded ``val_fraction`` of the 60,000 training images is held out for validation;
    ``train_subset`` keeps only the first N of the remaining (shuffled) training images. The
    validation and test sets are never cut.
    """
    if train_subset is not None and train_subset < 1:
        raise ValueError(f"train_subset must be at least 1, got {train_subset}")
    train_set, test_set = datasets(root, download=download)
    x_all, y_all = standardize(train_set.data), train_set.targets.clone()
    train_idx, val_idx = split_indices(len(y_all), val_fraction, seed)
    if train_subset is not None:
        train_idx = train_idx[:train_subset]
    return Splits(
        x_all[train_idx],
        y_all[train_idx],
        x_all[val_idx],
        y_all[val_idx],
        standardize(test_set.data),
        test_set.targets.clone(),
    )


def subset(data: Splits, train: int | None = None, val: int | None = None, test: int | None = None) -> Splits:
    """A copy of ``data`` keeping only the first ``train`` training, ``val`` validation and
    ``test`` test images (``None``, the default, keeps all). The training and validation splits
    are shuffled already, so their first N are a random sample."""
    from dataclasses import replace

    counts = (
        ("train", train, len(data.y_train)),
        ("val", val, len(data.y_val)),
        ("test", test, len(data.y_test)),
    )
    for label, n, have in counts:
        if n is not None and not 1 <= n <= have:
            raise ValueError(f"{label} must be between 1 and {have} (the images available), got {n}")
    return replace(
        data,
        x_train=data.x_train[:train],
        y_train=data.y_train[:train],
        x_val=data.x_val[:val],
        y_val=data.y_val[:val],
        x_test=data.x_test[:test],
        y_test=data.y_test[:test],
    )


def one_per_class(images, labels, classes=range(10)) -> tuple[np.ndarray, list[int]]:
    """The first image of each class, as floats in [0, 1] if the images are bytes.

    Returns ``(images (n, H, W), labels)``; a class without images is a ValueError.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"expected images (N, H, W) and N labels, got {images.shape} and {labels.shape}")
    picked = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            raise ValueError(f"no image of class {c}")
        picked.append(idx[0])
    out = images[picked].astype(float)
    if images.dtype == np.uint8:
        out /= 255.0
    return out, [int(c) for c in classes]
