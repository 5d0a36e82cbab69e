"""Saving and loading trained weights, safely.

* :func:`save` writes ``model.state_dict()`` and, beside it, a ``.json`` record (history,
  recipe, SHA-256); :func:`load` reads it back with ``torch.load(..., weights_only=True)``,
  which refuses pickled code, so a file from elsewhere cannot run anything.
* :func:`load_reference`: the course's trained Simple CNN, from the clone or, in Colab,
  downloaded once and checked against :data:`REFERENCE_SHA256`.
* :func:`load_guide_weights`: weights saved by the original Simple-CNN-Guide script, whose
  layers have other names, loaded into the course's :class:`simplecnn.SimpleCNN`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.nn as nn

from cnnkit.mnist import MEAN, STD, DataError
from simplecnn import SimpleCNN

#: The repository the course lives in (also named in _config.yml); the reference checkpoint is
#: downloaded from it when the package runs outside a clone (for example in Colab).
REPOSITORY = "https://github.com/simplecnn/simple-cnn"
#: The reference checkpoint, relative to the repository root, and its SHA-256.
REFERENCE_CHECKPOINT = "checkpoints/simplecnn.pt"
REFERENCE_SHA256 = "22e12a408269a64b778ea3b4478d97a980d266d5650b6ea49da21d34257491bb"


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def save(model: nn.Module, path, history: list[dict] | None = None, **meta) -> Path:
    """Save ``model.state_dict()`` to ``path`` and ``<path>.json`` beside it (the history,
    ``meta`` and the checkpoint's SHA-256). Returns the checkpoint path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, path)
    info = dict(meta, history=history or [], sha256=sha256(path))
    path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return path


def read_state_dict(path, expected_sha256: str | None = None) -> dict:
    """The tensors in a weights-only checkpoint file, after checking ``expected_sha256``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if expected_sha256 is not None and (actual := sha256(path)) != expected_sha256:
        raise ValueError(f"checkpoint {path} has SHA-256 {actual}, expected {expected_sha256}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable weights-only checkpoint: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors (got {type(state).__name__})")
    return state


def load(path, model: nn.Module | None = None, expected_sha256: str | None = None) -> nn.Module:
    """Load a checkpoint written by :func:`save` into ``model`` (a new :class:`SimpleCNN` by
    default) and return it in evaluation mode."""
    model = model if model is not None else SimpleCNN()
    model.load_state_dict(read_state_dict(path, expected_sha256))
    return model.eval()


# ---------------------------------------------------------------------------------------------
# The reference model
# ---------------------------------------------------------------------------------------------


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


def reference_path(download: bool = True) -> Path:
    """Path of the reference checkpoint ``checkpoints/simplecnn.pt``, hash checked.

    In a clone of the repository it is the committed file. Elsewhere (the package installed
    with pip, as in Colab) it is downloaded once from the repository into
    ``~/.cache/simplecnn/`` together with its ``.json`` record.
    """
    local = Path(__file__).resolve().parents[2] / REFERENCE_CHECKPOINT
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
    if (actual := sha256(path)) != REFERENCE_SHA256:
        raise ValueError(f"reference checkpoint {path} has SHA-256 {actual}, expected {REFERENCE_SHA256}")
    return path


def load_reference(download: bool = True) -> tuple[nn.Module, dict]:
    """The trained reference Simple CNN (in evaluation mode) and its training record (the
    ``.json``: recipe, per-epoch history, test accuracy, SHA-256)."""
    path = reference_path(download)
    info = json.loads(path.with_suffix(".json").read_text())
    return load(path, expected_sha256=REFERENCE_SHA256), info


# ---------------------------------------------------------------------------------------------
# Weights of the original Simple-CNN-Guide
# ---------------------------------------------------------------------------------------------

#: The guide's layer names -> the course's.
GUIDE_NAMES = {
    "conv1": "features.conv1",
    "batch1": "features.bn1",
    "conv2": "features.conv2",
    "batch2": "features.bn2",
    "fc1": "classifier.fc1",
    "fc2": "classifier.fc2",
}


def load_guide_weights(state, model: nn.Module | None = None, standardized_inputs: bool = True) -> nn.Module:
    """Load weights saved by the original Simple-CNN-Guide script into a course model.

    ``state`` is the guide model's ``state_dict()`` (or the path of a file holding one; it is
    read with ``weights_only=True``). Its keys (``conv1.weight``, ``batch1.running_mean``,
    ``fc2.bias``, ...) are renamed to the course's (``features.conv1.weight``, ...); any other
    key, a missing one, or a tensor of the wrong shape is a ValueError that names it.

    The guide feeds the network pixels in [0, 1]; the course standardizes them first. With
    ``standardized_inputs=True`` the standardization is folded into ``conv1`` (weights times
    0.3081, the mean's share added to the bias), so the returned model gives on standardized
    images the logits the guide's model gives on raw ones. Returns the model in evaluation mode.
    """
    if isinstance(state, (str, os.PathLike)):
        state = read_state_dict(state)
    model = model if model is not None else SimpleCNN()
    expected = model.state_dict()
    renamed, unknown = {}, []
    for key, value in state.items():
        layer, _, rest = key.partition(".")
        if layer not in GUIDE_NAMES or f"{GUIDE_NAMES[layer]}.{rest}" not in expected:
            unknown.append(key)
        else:
            renamed[f"{GUIDE_NAMES[layer]}.{rest}"] = value
    missing = sorted(set(expected) - set(renamed))
    if unknown or missing:
        raise ValueError(
            "not a Simple-CNN-Guide state dict: "
            + (f"unexpected keys {unknown}" if unknown else "")
            + ("; " if unknown and missing else "")
            + (
                f"missing {len(missing)} keys, e.g. {missing[:3]} (guide names: {', '.join(GUIDE_NAMES)})"
                if missing
                else ""
            )
        )
    wrong = [
        f"{k}: {tuple(v.shape)} instead of {tuple(expected[k].shape)}"
        for k, v in renamed.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise ValueError("the guide's tensors do not fit the Simple CNN: " + "; ".join(wrong))
    if standardized_inputs:
        # conv1(raw) = conv1(STD * standardized + MEAN): scale the kernels, move MEAN into the bias
        weight = renamed["features.conv1.weight"].float()
        renamed["features.conv1.bias"] = renamed["features.conv1.bias"] + MEAN * weight.sum((1, 2, 3))
        renamed["features.conv1.weight"] = weight * STD
    model.load_state_dict(renamed)
    return model.eval()
