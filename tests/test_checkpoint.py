"""The committed reference checkpoint and the accuracy gate.

CI loads ``checkpoints/simplecnn.pt`` exactly as a reader would (hash verified,
``weights_only=True``), measures it on the full, real 10,000-image MNIST test set, and fails when
it scores below the accuracy recorded when it was trained, minus a small tolerance. A short
training run with a fixed seed guards the training code itself.
"""

import json
import re
from pathlib import Path

import pytest
import torch

import simplecnn as sc

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / sc.REFERENCE_CHECKPOINT
#: How far (as a fraction) the measured test accuracy may fall below the recorded one:
#: 0.1 percentage point, 10 of the 10,000 test images (allows for other CPUs' arithmetic).
TOLERANCE = 0.001


def accuracy_gate(model, data: sc.Splits, recorded_acc: float, tolerance: float = TOLERANCE) -> float:
    """Test accuracy of ``model`` on all of ``data``'s test set; AssertionError when it falls
    below ``recorded_acc - tolerance``."""
    assert len(data.y_test) == 10_000, "the gate needs the full MNIST test set"
    _, acc = sc.evaluate(model, sc.Batches(data.x_test, data.y_test, sc.EVAL_BATCH_SIZE))
    assert acc >= recorded_acc - tolerance, (
        f"test accuracy {acc:.2%} is below the recorded {recorded_acc:.2%} minus {tolerance:.2%}")
    return acc


@pytest.fixture(scope="module")
def record():
    return json.loads(CHECKPOINT.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def reference():
    model, _ = sc.load_reference(download=False)
    return model


def test_checkpoint_hash_matches_its_record_and_the_package(record):
    assert sc.sha256(CHECKPOINT) == record["sha256"] == sc.REFERENCE_SHA256
    assert sc.reference_checkpoint(download=False) == CHECKPOINT


def test_checkpoint_is_a_plain_state_dict_of_the_simple_cnn():
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    expected = sc.SimpleCNN().state_dict()
    assert list(state) == list(expected)
    assert all(state[k].shape == expected[k].shape for k in expected)
    assert CHECKPOINT.stat().st_size < 5_000_000


def test_record_describes_a_full_reader_run(record):
    assert record["recipe"]["name"] == "fast" and record["train_subset"] is None
    assert len(record["history"]) == record["recipe"]["epochs"]
    assert record["test_acc"] >= 0.993  # the target for the reference model


def test_reference_passes_the_accuracy_gate(reference, record, mnist):
    acc = accuracy_gate(reference, mnist, record["test_acc"])
    assert acc == pytest.approx(record["test_acc"], abs=TOLERANCE)


def test_a_broken_model_fails_the_gate(record, mnist):
    torch.manual_seed(0)
    untrained = sc.SimpleCNN().eval()  # random initial weights, as if training never happened
    with pytest.raises(AssertionError, match="below the recorded"):
        accuracy_gate(untrained, mnist, record["test_acc"])


def test_a_damaged_reference_fails_the_gate(reference, record, mnist):
    damaged = sc.SimpleCNN()
    damaged.load_state_dict(reference.state_dict())
    with torch.no_grad():  # the first layer's 32 kernels shuffled: every later layer is confused
        damaged.features.conv1.weight.copy_(damaged.features.conv1.weight.roll(1, dims=0))
    with pytest.raises(AssertionError, match="below the recorded"):
        accuracy_gate(damaged.eval(), mnist, record["test_acc"])


def test_a_tampered_file_is_refused(tmp_path):
    tampered = tmp_path / "simplecnn.pt"
    data = bytearray(CHECKPOINT.read_bytes())
    data[-100] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        sc.load_checkpoint(tampered, expected_sha256=sc.REFERENCE_SHA256)


def test_outside_a_clone_the_reference_is_downloaded_and_verified(monkeypatch, tmp_path):
    """As in Colab: the package is installed without the repository, so the checkpoint comes from
    the repository on GitHub (here: a stand-in for the network) and must match the hash."""
    monkeypatch.setattr(sc, "__file__", str(tmp_path / "site-packages" / "simplecnn.py"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    fetched = []

    def fake_download(url, path):
        fetched.append(url)
        name = url.rsplit("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((CHECKPOINT.parent / name).read_bytes())

    with pytest.raises(FileNotFoundError, match="no reference checkpoint"):
        sc.reference_checkpoint(download=False)
    monkeypatch.setattr(sc, "_download", fake_download)
    path = sc.reference_checkpoint()
    assert path == tmp_path / "home" / ".cache" / "simplecnn" / "simplecnn.pt"
    assert fetched == [f"{sc.REPOSITORY}/raw/main/checkpoints/simplecnn.pt",
                       f"{sc.REPOSITORY}/raw/main/checkpoints/simplecnn.json"]
    model, info = sc.load_reference()
    assert info["sha256"] == sc.REFERENCE_SHA256 and not model.training
    assert len(fetched) == 2  # cached: not fetched again

    path.write_bytes(b"a damaged download")
    monkeypatch.setattr(sc, "_download", lambda url, p: p.write_bytes(b"still damaged"))
    with pytest.raises(ValueError, match="SHA-256"):
        sc.reference_checkpoint()


def test_download_location_is_the_configured_repository():
    config = (ROOT / "_config.yml").read_text()
    url = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", config, re.M).group(1)
    assert sc.REPOSITORY == url


def test_short_fast_training_reaches_a_minimum_accuracy(mnist):
    """The fast recipe, fixed seed, 10,000 images, 2 epochs (96.9 % test accuracy and 96.0 %
    validation accuracy in bfloat16 on the test CPU; 96.9 % and 95.8 % in float32): a change that
    breaks learning (data, model, loss, optimiser or schedule) fails here even when the checkpoint
    still loads."""
    small = sc.Splits(mnist.x_train[:10_000], mnist.y_train[:10_000], mnist.x_val[:2000],
                      mnist.y_val[:2000], mnist.x_test, mnist.y_test)
    torch.manual_seed(0)
    model = sc.SimpleCNN().to(memory_format=torch.channels_last)
    history = sc.train(model, small, sc.FAST, epochs=2, seed=0)
    _, acc = sc.evaluate(model, sc.Batches(small.x_test, small.y_test, sc.EVAL_BATCH_SIZE))
    assert history[-1]["val_acc"] > 0.94, history
    assert acc > 0.955, acc
