"""Tests of cnnkit.traininglab: the digits of chapter 7's training lab (the file's format, its
round trip, the shipped file against MNIST) and the notebook output (self-contained: no other
site, no external script). The training itself is compared with PyTorch in the browser tests
(tests/browser/test_traininglab.py)."""

import base64
import gzip
import hashlib
import json
import re
from importlib import resources

import numpy as np
import pytest
import torch

import simplecnn as sc
from cnnkit import cli, traininglab, webdemos

RNG = np.random.default_rng(0)


def _digits(n_train=5, n_test=3):
    return (
        RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        RNG.integers(0, 10, n_train, dtype=np.uint8),
        RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        RNG.integers(0, 10, n_test, dtype=np.uint8),
    )


# --- the data file ----------------------------------------------------------------------------------


def test_pack_and_unpack_round_trip():
    digits = _digits()
    raw = traininglab.pack(*digits)
    assert raw[:8] == traininglab.MAGIC and len(raw) == 16 + 8 * (1 + 784)
    for a, b in zip(traininglab.unpack(raw), digits):
        assert np.array_equal(a, b)
    blob = traininglab.encode(*digits)
    assert blob == traininglab.encode(*digits)  # no time stamp: the same digits, the same bytes
    for a, b in zip(traininglab.decode(blob), digits):
        assert np.array_equal(a, b)


def test_unpack_refuses_other_or_damaged_bytes():
    raw = traininglab.pack(*_digits())
    with pytest.raises(ValueError, match="magic"):
        traininglab.unpack(b"NOTDIGIT" + raw[8:])
    with pytest.raises(ValueError, match="damaged"):
        traininglab.unpack(raw[:-1])


def test_pack_refuses_wrong_shapes_and_labels():
    x, y, xt, yt = _digits()
    with pytest.raises(ValueError, match="28, 28"):
        traininglab.pack(x[:, :27], y, xt, yt)
    with pytest.raises(ValueError, match="28, 28"):
        traininglab.pack(x, y[:-1], xt, yt)
    with pytest.raises(ValueError, match="0..9"):
        traininglab.pack(x, np.full(len(y), 10), xt, yt)


def test_the_shipped_file_holds_the_chosen_digits():
    blob = traininglab.data_path().read_bytes()
    assert len(blob) < 1_500_000  # it travels inside a page
    raw = gzip.decompress(blob)
    assert hashlib.sha256(raw).hexdigest() == traininglab.DATA_SHA256
    x, y, xt, yt = traininglab.read_data()
    assert x.shape == (traininglab.N_TRAIN, 28, 28) and xt.shape == (traininglab.N_TEST, 28, 28)
    assert x.dtype == np.uint8 and y.max() == 9 and yt.max() == 9
    # every class is there, in roughly MNIST's shares
    assert np.bincount(y, minlength=10).min() > 0.07 * len(y)
    assert np.bincount(yt, minlength=10).min() > 0.06 * len(yt)


def test_the_shipped_file_is_what_export_makes_from_mnist(mnist_root, tmp_path):
    """The committed digits are exactly the seeded choice from MNIST: the course's training split
    for training, the test set for testing."""
    from cnnkit import mnist

    chosen = traininglab.choose(mnist_root)
    assert hashlib.sha256(traininglab.pack(*chosen)).hexdigest() == traininglab.DATA_SHA256
    train_idx, val_idx = mnist.split_indices(60_000, 0.2, traininglab.SEED)
    train_set, test_set = mnist.datasets(mnist_root, download=False)
    assert np.array_equal(chosen[0][:10], train_set.data[train_idx[:10]].numpy())
    assert np.array_equal(chosen[1], train_set.targets[train_idx[: traininglab.N_TRAIN]].numpy())
    out = tmp_path / "digits.bin"
    assert cli.main(["export-training-data", "--out", str(out), "--data-root", str(mnist_root)]) == 0
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(traininglab.data_path().read_bytes())


def test_standardize_is_the_courses():
    from cnnkit import mnist

    x = traininglab.read_data()[0][:4]
    s = traininglab.standardize(x)
    assert s.shape == (4, 1, 28, 28)
    assert np.array_equal(s.numpy(), mnist.standardize(torch.from_numpy(x.copy())).numpy())


# --- the notebook output ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def markup():
    return traininglab.training_lab().data


def _payload(markup):
    m = re.search(r'<script type="application/json" class="scnn-data">(.*?)</script>', markup, re.S)
    return json.loads(m.group(1))


def test_the_lab_is_self_contained(markup):
    assert 'class="scnn-train mathjax_ignore"' in markup and "SimpleCNNTrainingLab.start(root)" in markup
    for forbidden in (
        "require(",
        "eval(",
        "new Function",
        "fetch(",
        "XMLHttpRequest",
        "import(",
        "importScripts",
    ):
        assert forbidden not in markup, forbidden
    assert not re.search(r"<script[^>]+src=", markup)  # no external scripts
    assert not re.search(r"<link[^>]+href=", markup)  # no external style sheets
    assert not re.search(r"https?://", markup)  # no CDN, no network
    assert not re.search(r"\burl\(", markup)  # no fonts or pictures fetched by the style
    # the digits travel inside the page, as base64 in the JSON payload
    data = _payload(markup)
    blob = traininglab.data_path().read_bytes()
    assert base64.b64decode(data["data"]) == blob and data["bytes"] == len(blob)
    assert (data["n_train"], data["n_test"]) == (traininglab.N_TRAIN, traininglab.N_TEST)
    # the page's weight: the digits (base64) plus the scripts, the style and the settings
    assert len(markup) < 4 / 3 * len(blob) + 120_000


def test_the_payload_cannot_close_its_script_tag(markup):
    assert markup.count("</script>") == 2
    assert "</" not in re.search(r'class="scnn-data">(.*?)</script>', markup, re.S).group(1)
    for name in traininglab.SCRIPTS:
        assert "</script" not in webdemos._asset(name).lower()
    assert "</style" not in webdemos._asset("traininglab.css").lower()


def test_the_settings_offered(markup):
    data = _payload(markup)
    d = data["defaults"]
    assert d["lr"] in data["learning_rates"] and d["batch_size"] in data["batch_sizes"]
    assert d["label_smoothing"] == sc.FAST.label_smoothing  # the course's recipe
    assert sc.FAST.batch_size in data["batch_sizes"]
    assert data["milestones"] == [30, 60, 120]
    assert data["constants"]["grid"] == 112 and data["constants"]["mean"] == traininglab.MEAN


def test_the_files_are_package_data():
    for name in ("cnntrain.js", "traininglab.js", "traininglab.css", traininglab.DATA_NAME):
        assert resources.files("cnnkit").joinpath("static", name).is_file(), name
    source = webdemos._asset("cnntrain.js")
    # every piece of the training names the chapter that teaches it
    for piece in (
        "Convolution (chapter 1)",
        "Batch norm (chapter 6)",
        "The loss (chapter 4)",
        "Adam (chapter 5)",
    ):
        assert piece in source, piece
