"""Tests of cnnkit.checkpoints: saving and loading safely, the reference model and its
accuracy gate, and weights saved by the original Simple-CNN-Guide.

CI loads ``checkpoints/simplecnn.pt`` exactly as a reader would (hash verified,
``weights_only=True``), measures it on the full, real 10,000-image MNIST test set, and fails when
it scores below the accuracy recorded when it was trained, minus a small tolerance. A short
training run with a fixed seed guards the training code itself.
"""

import json
import re
import shutil
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import simplecnn as sc
from cnnkit import augment, checkpoints
from cnnkit.mnist import MEAN, STD, Splits, subset
from simplecnn import SimpleCNN

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / checkpoints.REFERENCE_CHECKPOINT


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SimpleCNN().eval()
    x = torch.randn(4, 1, 28, 28)
    path = checkpoints.save(model, tmp_path / "m.pt", [{"epoch": 1}], note="test")
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["history"] == [{"epoch": 1}] and info["note"] == "test"
    assert info["sha256"] == checkpoints.sha256(path)
    loaded = checkpoints.load(path, expected_sha256=info["sha256"])
    assert not loaded.training
    assert torch.equal(loaded(x), model(x))


def test_checkpoint_with_wrong_hash_is_refused(tmp_path):
    path = checkpoints.save(SimpleCNN(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="SHA-256"):
        checkpoints.load(path, expected_sha256="0" * 64)


def test_untrusted_pickle_is_refused(tmp_path):
    """weights_only=True: a file holding arbitrary Python objects is not unpickled."""
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(1), "payload": shutil.rmtree}, path)
    with pytest.raises(ValueError, match="not a readable weights-only checkpoint"):
        checkpoints.load(path)


def test_corrupt_or_missing_checkpoint_gets_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        checkpoints.load(bad)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoints.load(tmp_path / "missing.pt")


# --- the reference model ----------------------------------------------------------------------

#: How far (as a fraction) the measured test accuracy may fall below the recorded one:
#: 0.1 percentage point, 10 of the 10,000 test images (allows for other CPUs' arithmetic).
TOLERANCE = 0.001


def accuracy_gate(model, data: Splits, recorded_acc: float, tolerance: float = TOLERANCE) -> float:
    """Test accuracy of ``model`` on all of ``data``'s test set; AssertionError when it falls
    below ``recorded_acc - tolerance``."""
    assert len(data.y_test) == 10_000, "the gate needs the full MNIST test set"
    _, acc = sc.evaluate(model, sc.Batches(data.x_test, data.y_test, sc.EVAL_BATCH_SIZE))
    assert acc >= recorded_acc - tolerance, (
        f"test accuracy {acc:.2%} is below the recorded {recorded_acc:.2%} minus {tolerance:.2%}"
    )
    return acc


@pytest.fixture(scope="module")
def record():
    return json.loads(CHECKPOINT.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def reference():
    model, _ = checkpoints.load_reference(download=False)
    return model


def test_checkpoint_hash_matches_its_record_and_the_package(record):
    assert checkpoints.sha256(CHECKPOINT) == record["sha256"] == checkpoints.REFERENCE_SHA256
    assert checkpoints.reference_path(download=False) == CHECKPOINT


def test_checkpoint_is_a_plain_state_dict_of_the_simple_cnn():
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    expected = sc.SimpleCNN().state_dict()
    assert list(state) == list(expected)
    assert all(state[k].shape == expected[k].shape for k in expected)
    assert CHECKPOINT.stat().st_size < 5_000_000


def test_record_describes_the_reference_recipe_on_all_training_images(record):
    assert record["recipe"]["name"] == "reference" and record["recipe"]["epochs"] == augment.REFERENCE.epochs
    assert record["train_subset"] is None and record["val_fraction"] == 0.0  # all 60,000 images
    assert len(record["history"]) == record["recipe"]["epochs"]
    assert record["recipe"]["betas"] == list(augment.REFERENCE.betas)
    distortion = asdict(augment.REFERENCE.augment)
    assert record["distortion"] == {k: v for k, v in distortion.items() if k != "max_shift"}
    assert distortion["max_shift"] == record["recipe"]["max_shift"]
    assert record["test_acc"] >= 0.9955  # what it measured: 99.57 %


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
        checkpoints.load(tampered, expected_sha256=checkpoints.REFERENCE_SHA256)


def test_outside_a_clone_the_reference_is_downloaded_and_verified(monkeypatch, tmp_path):
    """As in Colab: the package is installed without the repository, so the checkpoint comes from
    the repository on GitHub (here: a stand-in for the network) and must match the hash."""
    monkeypatch.setattr(
        checkpoints, "__file__", str(tmp_path / "site-packages" / "cnnkit" / "checkpoints.py")
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    fetched = []

    def fake_download(url, path):
        fetched.append(url)
        name = url.rsplit("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((CHECKPOINT.parent / name).read_bytes())

    with pytest.raises(FileNotFoundError, match="no reference checkpoint"):
        checkpoints.reference_path(download=False)
    monkeypatch.setattr(checkpoints, "_download", fake_download)
    path = checkpoints.reference_path()
    assert path == tmp_path / "home" / ".cache" / "simplecnn" / "simplecnn.pt"
    assert fetched == [
        f"{checkpoints.REPOSITORY}/raw/main/checkpoints/simplecnn.pt",
        f"{checkpoints.REPOSITORY}/raw/main/checkpoints/simplecnn.json",
    ]
    model, info = checkpoints.load_reference()
    assert info["sha256"] == checkpoints.REFERENCE_SHA256 and not model.training
    assert len(fetched) == 2  # cached: not fetched again

    path.write_bytes(b"a damaged download")
    monkeypatch.setattr(checkpoints, "_download", lambda url, p: p.write_bytes(b"still damaged"))
    with pytest.raises(ValueError, match="SHA-256"):
        checkpoints.reference_path()


def test_download_location_is_the_configured_repository():
    config = (ROOT / "_config.yml").read_text()
    url = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", config, re.M).group(1)
    assert checkpoints.REPOSITORY == url


def test_short_fast_training_reaches_a_minimum_accuracy(mnist):
    """The fast recipe, fixed seed, 10,000 images, 2 epochs (98.56 % test accuracy and 98.10 %
    validation accuracy in float32 on an AVX2 CPU): a change that breaks learning (data, model,
    loss, optimiser or schedule) fails here even when the checkpoint still loads."""
    small = subset(mnist, train=10_000, val=2000)
    torch.manual_seed(0)
    model = sc.SimpleCNN()
    history = sc.train(model, small, sc.FAST, epochs=2, seed=0)
    _, acc = sc.evaluate(model, sc.Batches(small.x_test, small.y_test, sc.EVAL_BATCH_SIZE))
    assert history[-1]["val_acc"] > 0.965, history
    assert acc > 0.975, acc


# --- weights of the original Simple-CNN-Guide ---------------------------------------------------


class GuideLayout(nn.Module):
    """A stand-in with the original guide's layer names and forward pass (pixels in [0, 1])."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 5), nn.Conv2d(32, 64, 5)
        self.batch1, self.batch2 = nn.BatchNorm2d(32), nn.BatchNorm2d(64)
        self.fc1, self.fc2 = nn.Linear(1024, 512), nn.Linear(512, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.batch1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.batch2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def _trained_looking_guide():
    torch.manual_seed(0)
    guide = GuideLayout()
    with torch.no_grad():  # running statistics that are not the defaults
        for bn in (guide.batch1, guide.batch2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return guide.eval()


def test_guide_weights_load_and_give_the_guides_outputs(tmp_path):
    guide = _trained_looking_guide()
    pixels = torch.rand(8, 1, 28, 28)  # what the guide's ToTensor() gives
    path = tmp_path / "guide.pt"
    torch.save(guide.state_dict(), path)
    model = checkpoints.load_guide_weights(path)
    assert not model.training
    with torch.no_grad():
        torch.testing.assert_close(model((pixels - MEAN) / STD), guide(pixels), atol=1e-4, rtol=1e-4)
        raw = checkpoints.load_guide_weights(guide.state_dict(), standardized_inputs=False)
        torch.testing.assert_close(raw(pixels), guide(pixels), atol=1e-5, rtol=1e-5)


def test_anything_but_a_guide_state_dict_is_refused():
    state = _trained_looking_guide().state_dict()
    with pytest.raises(ValueError, match=r"unexpected keys \['conv3.weight'\]"):
        checkpoints.load_guide_weights(OrderedDict(state, **{"conv3.weight": torch.zeros(1)}))
    with pytest.raises(ValueError, match="missing 2 keys"):
        checkpoints.load_guide_weights({k: v for k, v in state.items() if not k.startswith("fc2.")})
    with pytest.raises(ValueError, match="unexpected keys"):
        checkpoints.load_guide_weights(SimpleCNN().state_dict())  # the course's own names
    wrong = dict(state, **{"fc1.weight": torch.zeros(512, 2048)})
    with pytest.raises(ValueError, match=r"fc1.weight: \(512, 2048\) instead of \(512, 1024\)"):
        checkpoints.load_guide_weights(wrong)


def test_chapter_8_states_the_reference_models_own_figures(reference, record, mnist):
    """The figures chapter 8 quotes for the reference model (test accuracy, mistakes, the
    solutions to exercises 8.1 and 8.3) are this checkpoint's, not an earlier one's."""
    text = (ROOT / "chapters" / "08-inside-the-model.md").read_text()
    confidence, predicted = sc.predict(reference, mnist.x_test).max(1)
    wrong = int((predicted != mnist.y_test).sum())
    assert f"**{record['test_acc']:.2%} test accuracy**".replace("%", " %") in text
    assert f"({wrong} mistakes)" in text
    per_class = torch.bincount(mnist.y_test[predicted == mnist.y_test], minlength=10) / torch.bincount(
        mnist.y_test, minlength=10
    )
    hardest = int(per_class.argmin())
    total = int((mnist.y_test == hardest).sum())
    right = round(float(per_class[hardest]) * total)
    stated = re.search(r"returns the (\d): ([\d,]+) of its ([\d,]+) test images", text)
    assert stated, "chapter 8 no longer states the solution of exercise 8.1"
    assert tuple(int(g.replace(",", "")) for g in stated.groups()) == (hardest, right, total)
    missed = predicted != mnist.y_test
    stated = re.search(
        r"it returns (0\.\d+) over its (\d+) mistakes and (0\.\d+) over the ([\d,]+) right", text
    )
    assert stated, "chapter 8 no longer states the solution of exercise 8.3"
    assert stated.groups() == (
        f"{confidence[missed].mean():.3f}",
        str(wrong),
        f"{confidence[~missed].mean():.3f}",
        f"{len(missed) - wrong:,}",
    )
