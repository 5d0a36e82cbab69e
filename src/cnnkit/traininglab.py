"""The training lab of chapter 7: the reader trains the Simple CNN in their own browser.

The lab is plain JavaScript: ``static/cnntrain.js`` (the network's forward and backward pass,
batch norm with running statistics, dropout, the label-smoothed cross-entropy and Adam) runs in
a Web Worker; ``static/traininglab.js`` is the page (controls, curves, the conv1 kernels, a
drawing pad for the trained network) and reuses the digit lab's preprocessing and forward pass
from ``static/simplecnn.js``. This module is the Python side.

* **The digits**, :func:`choose`, :func:`encode`, :func:`export_data`
  (``python -m cnnkit export-training-data``): 6,000 digits of the course's training split and
  1,000 test digits, chosen with a fixed seed, written as bytes and compressed with gzip to
  ``static/traininglab-mnist.bin`` (about 1.1 MB). The browser unpacks it with its own
  ``DecompressionStream``. :func:`read_data` reads it back.
* **The notebook output**, :func:`training_lab`: HTML that carries the digits (base64), the
  scripts and the style, so only the page that shows it loads the data, and it works from a file
  on disk, in JupyterLab and in Colab alike, asking nothing of another site.

The file is committed (package data, like the digit lab's weights); run the command again only
to change the choice of digits. The settings the page offers are :data:`LEARNING_RATES` and
:data:`BATCH_SIZES`, preselected :data:`DEFAULTS`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import torch

from cnnkit import digitlab
from cnnkit.mnist import MEAN, STD
from cnnkit.plots import HIGHLIGHT, NEGATIVE, POSITIVE
from simplecnn import FAST

STATIC = Path(__file__).resolve().parent / "static"
DATA_NAME = "traininglab-mnist.bin"
#: The file starts (once unpacked) with these 8 bytes, then the two counts as little-endian
#: uint32, the labels (train, then test) and the pixels (train, then test), one byte each.
MAGIC = b"SCNNTL01"
HEADER = struct.Struct("<8sII")
SIDE = 28
N_TRAIN, N_TEST, SEED = 6_000, 1_000, 0
#: SHA-256 of the unpacked bytes that export_data writes from MNIST (tests compare).
DATA_SHA256 = "aa00d3ee2bbbc6f4d4bb64f9c0f0914e33a2204fdc030269fa70969746952ec2"

#: The choices the page offers. The learning rate stays constant, so that the reader can train
#: for as long as they like (a one-cycle schedule needs the run's length in advance); the preset
#: was chosen with PyTorch on validation images (README: "The training lab"). The recipe's batch
#: size, 128, is in the list.
LEARNING_RATES = (5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2)
BATCH_SIZES = (16, 32, 64, 128)
DEFAULTS = dict(
    lr=2e-3,
    batch_size=32,
    betas=(0.9, 0.999),
    label_smoothing=FAST.label_smoothing,  # the course's recipe
    max_shift=FAST.max_shift,  # the course's recipe: random shifts of up to one pixel
    seed=0,
)
#: Training stops after this many passes over the training digits.
MAX_EPOCHS = 10
#: Times (seconds of training) at which the page keeps a copy of the weights and measures it.
MILESTONES = (30, 60, 120)


# ---------------------------------------------------------------------------------------------
# The digits
# ---------------------------------------------------------------------------------------------


def choose(root=None, n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = SEED):
    """``(x_train, y_train, x_test, y_test)`` as uint8 arrays: the first ``n_train`` digits of
    the course's training split (``mnist.split_indices``: 48,000 of the 60,000, shuffled with
    ``seed``) and ``n_test`` test digits drawn with ``seed``. Images are ``(n, 28, 28)``."""
    from cnnkit import mnist

    train_set, test_set = mnist.datasets(root)
    train_idx, _ = mnist.split_indices(len(train_set.targets), 0.2, seed)
    if not 1 <= n_train <= len(train_idx) or not 1 <= n_test <= len(test_set.targets):
        raise ValueError(f"n_train must be in 1..{len(train_idx)} and n_test in 1..{len(test_set.targets)}")
    test_idx = torch.randperm(len(test_set.targets), generator=torch.Generator().manual_seed(seed))
    picks = train_idx[:n_train], test_idx[:n_test]
    (x_tr, y_tr), (x_te, y_te) = [
        (s.data[i].numpy().astype(np.uint8), s.targets[i].numpy().astype(np.uint8))
        for s, i in zip((train_set, test_set), picks)
    ]
    return x_tr, y_tr, x_te, y_te


def pack(x_train, y_train, x_test, y_test) -> bytes:
    """The digits as the unpacked bytes of the data file (see :data:`MAGIC`)."""
    x_train, x_test = np.asarray(x_train, np.uint8), np.asarray(x_test, np.uint8)
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if x.shape[1:] != (SIDE, SIDE) or len(x) != len(y):
            raise ValueError(f"expected images (n, 28, 28) and n labels, got {x.shape} and {len(y)}")
    labels = np.concatenate([np.asarray(y_train), np.asarray(y_test)])
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError("labels must be digits 0..9")
    return b"".join(
        [HEADER.pack(MAGIC, len(x_train), len(x_test)), labels.astype(np.uint8).tobytes()]
        + [x_train.tobytes(), x_test.tobytes()]
    )


def unpack(raw: bytes):
    """The inverse of :func:`pack`: ``(x_train, y_train, x_test, y_test)``."""
    magic, n_train, n_test = HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ValueError("not the training lab's digits (wrong magic bytes)")
    n, pixels = n_train + n_test, SIDE * SIDE
    if len(raw) != HEADER.size + n * (1 + pixels):
        raise ValueError(f"damaged data: {len(raw)} bytes for {n_train} + {n_test} digits")
    labels = np.frombuffer(raw, np.uint8, n, HEADER.size)
    images = np.frombuffer(raw, np.uint8, n * pixels, HEADER.size + n).reshape(n, SIDE, SIDE)
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]


def encode(x_train, y_train, x_test, y_test) -> bytes:
    """:func:`pack`, compressed with gzip (no time stamp, so the same digits give the same file)."""
    return gzip.compress(pack(x_train, y_train, x_test, y_test), compresslevel=9, mtime=0)


def decode(blob: bytes):
    """The digits of a data file's bytes (what the page does with DecompressionStream)."""
    return unpack(gzip.decompress(blob))


def data_path(path=None) -> Path:
    return Path(path) if path is not None else STATIC / DATA_NAME


def export_data(path=None, root=None, log=print) -> Path:
    """Choose the digits from MNIST (:func:`choose`) and write the data file (by default the
    package's ``static/traininglab-mnist.bin``); return its path."""
    digits = choose(root)
    out = data_path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    blob = encode(*digits)
    out.write_bytes(blob)
    raw = pack(*digits)
    log(
        f"wrote {out}: {len(digits[1]):,} training and {len(digits[3]):,} test digits, {len(raw):,} bytes "
        f"packed in {len(blob):,} (SHA-256 of the digits {hashlib.sha256(raw).hexdigest()[:12]}...)"
    )
    return out


def read_data(path=None):
    """The digits of the data file (by default the one shipped with the package)."""
    return decode(data_path(path).read_bytes())


def standardize(pixels) -> torch.Tensor:
    """uint8 images -> the network's input ``(n, 1, 28, 28)``: ``mnist.standardize``."""
    from cnnkit import mnist

    return mnist.standardize(torch.from_numpy(np.array(pixels, np.uint8).reshape(-1, SIDE, SIDE)))


# ---------------------------------------------------------------------------------------------
# The notebook output
# ---------------------------------------------------------------------------------------------


def payload(path=None) -> dict:
    """What the lab's HTML embeds: the data file (base64), the settings, the constants of the
    digit lab's preprocessing (the drawing pad) and the colours."""
    blob = data_path(path).read_bytes()
    magic, n_train, n_test = HEADER.unpack_from(gzip.decompress(blob))
    return dict(
        data=base64.b64encode(blob).decode("ascii"),
        bytes=len(blob),
        n_train=n_train,
        n_test=n_test,
        learning_rates=list(LEARNING_RATES),
        batch_sizes=list(BATCH_SIZES),
        defaults=dict(DEFAULTS, betas=list(DEFAULTS["betas"])),
        max_epochs=MAX_EPOCHS,
        milestones=list(MILESTONES),
        constants=dict(
            box=digitlab.BOX, frame=digitlab.FRAME, grid=digitlab.GRID, mean=MEAN, std=STD, tie=digitlab.TIE
        ),
        colors=dict(
            negative=NEGATIVE, positive=POSITIVE, highlight=HIGHLIGHT, line="#0072B2", accent="#D55E00"
        ),
    )


SCRIPTS = ("simplecnn.js", "cnntrain.js", "traininglab.js")  # the forward pass, training, the page


def training_lab(path=None):
    """Chapter 7's training lab as HTML that runs in the browser (an ``IPython.display.HTML``).

    The reader presses Start and watches the Simple CNN learn: the training loss, the accuracy
    on the test digits and the 32 kernels of conv1, then draws a digit for the network they
    trained. Nothing is trained in Python: the cell only builds the page's output.
    """
    from cnnkit import webdemos

    return webdemos._demo_html(
        "traininglab", payload(path), "scnn-train", "traininglab.css", SCRIPTS, "SimpleCNNTrainingLab.start"
    )
