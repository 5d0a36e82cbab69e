"""The digit lab of chapter 8: the reference Simple CNN, running in the reader's browser.

The lab is plain JavaScript: ``static/simplecnn.js`` (the network's forward pass and the
preprocessing) and ``static/digitlab.js`` (the page: drawing, probabilities, feature maps);
:func:`cnnkit.webdemos.digit_lab` puts them into a notebook output. This module is the Python
side, in three parts.

* **Preprocessing**, :func:`preprocess`: a drawing (a grid of ink values in [0, 1]) becomes a
  model input the way the MNIST digits were made: crop to the ink, scale the longer side to
  20 pixels keeping the aspect ratio, place the result in a 28x28 frame with its centre of mass
  at the centre, standardise. The resampling is *area averaging* (:func:`area_weights`): each
  new pixel is the mean of the old ones under it, partly covered pixels counted by the share
  covered. The JavaScript does the same operations, so the two agree to rounding error.
* **Export**, :func:`export` (``python -m cnnkit export-weights``): the reference checkpoint's
  tensors, written compactly to ``static/digitlab-weights.bin``, and beside it a manifest
  ``digitlab-weights.json`` with the layout, the checkpoint's SHA-256, and the accuracy cost of
  the compact format measured on the 10,000 test images. :func:`read_exported` refuses weights
  exported from another checkpoint than :data:`cnnkit.checkpoints.REFERENCE_SHA256`.
* **What the page embeds**, :func:`payload`: the weights (base64), a few test digits, the
  preprocessing constants and the colours.

When the reference checkpoint changes: put the new ``simplecnn.pt`` and ``.json`` in
``checkpoints/``, set ``checkpoints.REFERENCE_SHA256``, run ``python -m cnnkit export-weights``
(a few seconds to a minute: it measures the accuracy cost) and commit the two weight files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from cnnkit import checkpoints
from cnnkit.mnist import MEAN, STD
from cnnkit.plots import HIGHLIGHT, NEGATIVE, POSITIVE
from simplecnn import SimpleCNN, predict

#: MNIST digits were scaled to fit a 20x20 box, then centred in a 28x28 frame by centre of mass.
BOX, FRAME = 20, 28
#: The lab's drawing grid (GRID x GRID cells); a test digit is drawn on it at 4 cells per pixel.
GRID = 112
#: Offsets are rounded half up; a centre of mass within TIE of a half pixel counts as on it, so
#: that rounding error in the sums cannot move the digit by a pixel in one language only.
TIE = 1e-9

#: The exported weights: package data, so a pip install (Colab) has them too.
STATIC = Path(__file__).resolve().parent / "static"
WEIGHTS_NAME = "digitlab-weights"
FORMAT = "simplecnn-digitlab-weights/1"
#: Weight tensors with at least this many numbers (conv2, fc1: 99 % of the parameters) are
#: stored as int8 with one scale per output channel; everything else as float16.
INT8_MIN_SIZE = 10_000
ENCODINGS = ("int8", "float16")


# ---------------------------------------------------------------------------------------------
# Preprocessing: a drawing -> what the model sees (twin of preprocess() in simplecnn.js)
# ---------------------------------------------------------------------------------------------


def round_half_up(x: float) -> int:
    """``x`` rounded to the nearest integer, halves up (JavaScript's ``Math.floor(x + 0.5)``)."""
    return math.floor(x + 0.5)


def scaled_size(height: int, width: int, box: int = BOX) -> tuple[int, int]:
    """The size of a ``height`` x ``width`` crop scaled so that its longer side is ``box``."""
    longer = max(height, width)
    return max(1, round_half_up(height * box / longer)), max(1, round_half_up(width * box / longer))


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of area resampling: output pixel ``i`` covers the input span
    ``[i * n_in / n_out, (i + 1) * n_in / n_out)``, and averages the input pixels over it."""
    step = n_in / n_out
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = i * step, (i + 1) * step
        for j in range(math.floor(lo), min(n_in, math.ceil(hi))):
            w[i, j] = (min(hi, j + 1) - max(lo, j)) / step
    return w


def _ink(ink) -> np.ndarray:
    g = np.asarray(ink.detach().cpu() if isinstance(ink, torch.Tensor) else ink, dtype=np.float64)
    if g.ndim != 2 or min(g.shape) < 1:
        raise ValueError(f"a drawing is a 2-D grid of ink values, got shape {g.shape}")
    if not np.isfinite(g).all() or g.min() < 0 or g.max() > 1:
        raise ValueError(
            f"ink values must lie in [0, 1] (0 paper, 1 ink), got [{g.min():.3g}, {g.max():.3g}]"
        )
    return g


def frame(ink) -> np.ndarray:
    """A drawing ``(H, W)`` with ink in [0, 1] -> the 28x28 MNIST-style image, pixels in [0, 1].

    Raises ValueError for an empty drawing: there is nothing to read.
    """
    g = _ink(ink)
    rows, cols = np.flatnonzero(g.sum(1) > 0), np.flatnonzero(g.sum(0) > 0)
    if len(rows) == 0:
        raise ValueError("the drawing is empty: there is no ink to read")
    crop = g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    nh, nw = scaled_size(h, w)
    small = np.clip(area_weights(h, nh) @ (crop @ area_weights(w, nw).T), 0.0, 1.0)
    total = small.sum()
    cy = (small.sum(1) @ np.arange(nh)) / total
    cx = (small.sum(0) @ np.arange(nw)) / total
    # (FRAME - 1) / 2 is the centre of the frame; round_half_up(c - cy) with the tie margin
    top = math.floor((FRAME - 1) / 2 - cy + 0.5 + TIE)
    left = math.floor((FRAME - 1) / 2 - cx + 0.5 + TIE)
    top, left = min(max(top, 0), FRAME - nh), min(max(left, 0), FRAME - nw)
    image = np.zeros((FRAME, FRAME))
    image[top : top + nh, left : left + nw] = small
    return image


def preprocess(ink) -> torch.Tensor:
    """A drawing ``(H, W)`` with ink in [0, 1] -> the standardised model input ``(1, 1, 28, 28)``
    (see :func:`frame`)."""
    return torch.from_numpy((frame(ink) - MEAN) / STD).float()[None, None]


def _pixels(image) -> np.ndarray:
    """A 28x28 image, standardised (it has negative values) or not, as pixels in [0, 1]."""
    x = np.asarray(torch.as_tensor(image, dtype=torch.float32).reshape(FRAME, FRAME))
    if x.min() < -1e-6:  # standardised: back to pixels
        x = x * STD + MEAN
    return np.clip(x, 0, 1)


def image_to_ink(image, cells: int = GRID // FRAME) -> np.ndarray:
    """A 28x28 image (standardised, or pixels in [0, 1]) drawn on the lab's grid: each pixel
    becomes a ``cells`` x ``cells`` square of ink, as the lab's test-digit buttons do."""
    return np.kron(_pixels(image), np.ones((cells, cells)))


# ---------------------------------------------------------------------------------------------
# Export: the checkpoint's tensors, compact, tied to the checkpoint's SHA-256
# ---------------------------------------------------------------------------------------------


def _align(buf: bytearray, to: int = 4) -> int:
    buf.extend(b"\0" * (-len(buf) % to))
    return len(buf)


def encode(state: dict, encoding: str = "int8") -> tuple[list[dict], bytes]:
    """The float tensors of a state dict as one little-endian byte string, and its layout.

    ``encoding="int8"``: weight tensors of at least :data:`INT8_MIN_SIZE` numbers become int8
    ``q`` with one float32 scale per output channel (``weight = q * scale``, the largest
    magnitude of each channel mapped to 127); the other tensors become float16.
    ``encoding="float16"``: every tensor becomes float16.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    layout, data = [], bytearray()
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            continue  # num_batches_tracked: a counter the forward pass does not use
        t = tensor.detach().cpu().float().numpy()
        entry = dict(name=name, shape=list(t.shape), offset=_align(data))
        if encoding == "int8" and name.endswith("weight") and t.ndim > 1 and t.size >= INT8_MIN_SIZE:
            rows = t.reshape(t.shape[0], -1)
            scale = (np.abs(rows).max(1) / 127).astype(np.float32)
            scale[scale == 0] = 1.0
            q = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
            data.extend(q.tobytes())
            entry.update(dtype="int8", scales=_align(data))
            data.extend(scale.astype("<f4").tobytes())
        else:
            entry["dtype"] = "float16"
            data.extend(t.astype("<f2").tobytes())
        layout.append(entry)
    return layout, bytes(data)


def decode(layout: list[dict], data: bytes) -> dict[str, torch.Tensor]:
    """The float32 tensors that :func:`encode` wrote (what the browser computes with)."""
    out = {}
    for e in layout:
        n = math.prod(e["shape"])
        if e["dtype"] == "int8":
            q = np.frombuffer(data, np.int8, n, e["offset"]).reshape(e["shape"][0], -1)
            scale = np.frombuffer(data, "<f4", e["shape"][0], e["scales"])
            t = q.astype(np.float32) * scale[:, None]
        elif e["dtype"] == "float16":
            t = np.frombuffer(data, "<f2", n, e["offset"]).astype(np.float32)
        else:
            raise ValueError(f"{e['name']}: unknown dtype {e['dtype']!r}")
        out[e["name"]] = torch.from_numpy(t.reshape(e["shape"]).copy())
    return out


def model_from(layout: list[dict], data: bytes) -> SimpleCNN:
    """A :class:`SimpleCNN` (evaluation mode) holding the exported weights."""
    model = SimpleCNN()
    state = model.state_dict()
    state.update(decode(layout, data))
    model.load_state_dict(state)
    return model.eval()


def compare(reference, exported, x: torch.Tensor, y: torch.Tensor) -> dict:
    """How the exported model's predictions on ``x`` differ from the reference model's."""
    p_ref, p_exp = predict(reference, x), predict(exported, x)
    return dict(
        images=len(y),
        float32_accuracy=(p_ref.argmax(1) == y).float().mean().item(),
        exported_accuracy=(p_exp.argmax(1) == y).float().mean().item(),
        same_prediction=int((p_ref.argmax(1) == p_exp.argmax(1)).sum()),
        max_probability_difference=(p_ref - p_exp).abs().max().item(),
    )


def export(
    checkpoint=None,
    out_dir=None,
    encoding: str = "int8",
    data_root=None,
    test_images: int | None = None,
    log=print,
) -> dict:
    """Export a checkpoint (the reference one by default) for the digit lab; return the manifest.

    Writes ``digitlab-weights.bin`` and ``digitlab-weights.json`` to ``out_dir`` (the package's
    ``static`` folder by default), after measuring on the MNIST test set (all of it, or the
    first ``test_images``) how the compact weights' predictions differ from the original ones.
    """
    from cnnkit import mnist

    if checkpoint is None:
        model, _ = checkpoints.load_reference()
        path = checkpoints.reference_path()
    else:
        path = Path(checkpoint)
        model = checkpoints.load(path)
    digest = checkpoints.sha256(path)
    layout, data = encode(model.state_dict(), encoding)
    test_set = mnist.datasets(data_root)[1]
    x, y = mnist.standardize(test_set.data[:test_images]), test_set.targets[:test_images]
    measured = compare(model, model_from(layout, data), x, y)
    manifest = dict(
        format=FORMAT,
        checkpoint=path.name,
        checkpoint_sha256=digest,
        encoding=encoding,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        bn_eps=model.features.bn1.eps,
        tensors=layout,
        test=measured,
        command="python -m cnnkit export-weights",
    )
    out = Path(out_dir) if out_dir is not None else STATIC
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{WEIGHTS_NAME}.bin").write_bytes(data)
    (out / f"{WEIGHTS_NAME}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log(
        f"exported {path.name} (SHA-256 {digest[:12]}...) as {encoding}: {len(data):,} bytes to {out}\n"
        f"on {measured['images']:,} test images: accuracy {measured['float32_accuracy']:.2%} (float32) -> "
        f"{measured['exported_accuracy']:.2%} ({encoding}); same prediction for "
        f"{measured['same_prediction']:,}; largest probability difference "
        f"{measured['max_probability_difference']:.4f}"
    )
    return manifest


def read_exported(directory=None, expected_sha256: str | None = None):
    """``(manifest, bytes)`` of the exported weights in ``directory`` (the package's ``static``
    folder by default), checked: the bytes against the manifest's SHA-256, and the checkpoint
    they came from against ``expected_sha256`` (by default the reference checkpoint's,
    :data:`cnnkit.checkpoints.REFERENCE_SHA256`). A mismatch is a ValueError that says which
    command writes fresh weights."""
    expected_sha256 = expected_sha256 or checkpoints.REFERENCE_SHA256
    folder = Path(directory) if directory is not None else STATIC
    json_path, bin_path = folder / f"{WEIGHTS_NAME}.json", folder / f"{WEIGHTS_NAME}.bin"
    if not (json_path.is_file() and bin_path.is_file()):
        raise FileNotFoundError(f"no exported weights in {folder}: run `python -m cnnkit export-weights`")
    manifest = json.loads(json_path.read_text())
    data = bin_path.read_bytes()
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not a digit-lab manifest ({FORMAT})")
    if hashlib.sha256(data).hexdigest() != manifest["sha256"] or len(data) != manifest["bytes"]:
        raise ValueError(f"{bin_path} does not match its manifest (damaged or half written)")
    if manifest["checkpoint_sha256"] != expected_sha256:
        raise ValueError(
            f"the digit lab's weights in {folder} are stale: exported from checkpoint "
            f"{manifest['checkpoint_sha256'][:12]}... instead of {expected_sha256[:12]}... "
            "Run `python -m cnnkit export-weights` and commit the two files it writes."
        )
    return manifest, data


def exported_model(directory=None) -> SimpleCNN:
    """The Simple CNN with the weights the browser uses (checked against the reference)."""
    manifest, data = read_exported(directory)
    return model_from(manifest["tensors"], data)


def payload(images, labels, directory=None) -> dict:
    """What the lab's HTML embeds: the exported weights (base64), test digits ``images``
    (28x28, standardised or in [0, 1]) with their ``labels``, the constants, the colours."""
    manifest, data = read_exported(directory)
    examples = []
    for image, label in zip(images, labels):
        pixels = np.rint(_pixels(image) * 255).astype(np.uint8)
        examples.append(dict(label=int(label), pixels=base64.b64encode(pixels.tobytes()).decode("ascii")))
    return dict(
        weights=base64.b64encode(data).decode("ascii"),
        tensors=manifest["tensors"],
        bn_eps=manifest["bn_eps"],
        encoding=manifest["encoding"],
        bytes=manifest["bytes"],
        checkpoint_sha256=manifest["checkpoint_sha256"],
        examples=examples,
        constants=dict(box=BOX, frame=FRAME, grid=GRID, mean=MEAN, std=STD, tie=TIE),
        colors=dict(negative=NEGATIVE, positive=POSITIVE, highlight=HIGHLIGHT, bar="#0072B2"),
    )
