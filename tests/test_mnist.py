"""Tests of cnnkit.mnist: download errors, checksums, standardizing, splits."""

import shutil

import numpy as np
import pytest
import torch

from cnnkit import mnist as mnist_data

# --- data ------------------------------------------------------------------------------------


def test_split_is_seeded_and_disjoint():
    a_train, a_val = mnist_data.split_indices(1000, 0.2, seed=3)
    b_train, b_val = mnist_data.split_indices(1000, 0.2, seed=3)
    c_train, _ = mnist_data.split_indices(1000, 0.2, seed=4)
    assert torch.equal(a_train, b_train) and torch.equal(a_val, b_val)
    assert not torch.equal(a_train, c_train)
    assert len(a_val) == 200 and len(a_train) == 800
    assert len(set(a_train.tolist()) | set(a_val.tolist())) == 1000


def test_mnist_loads_with_the_documented_sizes(mnist):
    assert mnist.sizes() == {"train": 48_000, "validation": 12_000, "test": 10_000}
    assert mnist.x_train.shape[1:] == (1, 28, 28) and mnist.x_train.dtype == torch.float32
    # normalised with the training-set statistics: mean near 0, std near 1
    assert abs(mnist.x_train.mean().item()) < 0.02
    assert abs(mnist.x_train.std().item() - 1) < 0.02
    assert set(mnist.y_test.unique().tolist()) == set(range(10))


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(mnist_data.DATA_ENV, str(tmp_path / "env"))
    assert mnist_data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert mnist_data.data_root() == tmp_path / "env"
    monkeypatch.delenv(mnist_data.DATA_ENV)
    assert str(mnist_data.data_root()) == "data"


def test_offline_error_names_the_folder_and_the_four_files(monkeypatch, tmp_path):
    from torchvision import datasets

    def no_network(self, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets.MNIST, "download", no_network)
    with pytest.raises(mnist_data.DataError) as info:
        mnist_data.load(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "network is unreachable" in message
    for name in mnist_data.FILES:
        assert name in message


def test_damaged_file_is_refused_and_kept(mnist_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist_data.FILES:
        shutil.copy(mnist_root / "MNIST" / "raw" / name, raw / name)
    damaged = raw / "t10k-labels-idx1-ubyte"
    damaged.write_bytes(damaged.read_bytes()[:5000])  # a truncated download
    with pytest.raises(mnist_data.DataError, match="t10k-labels-idx1-ubyte"):
        mnist_data.load(tmp_path)
    assert damaged.stat().st_size == 5000  # nothing deleted behind the user's back


def test_standardize_scales_and_adds_a_channel():
    images = torch.tensor([[[0, 255]]], dtype=torch.uint8)  # (1, 1, 2)
    out = mnist_data.standardize(images)
    assert out.shape == (1, 1, 1, 2)
    torch.testing.assert_close(
        out[0, 0, 0], torch.tensor([-mnist_data.MEAN, 1 - mnist_data.MEAN]) / mnist_data.STD
    )
    assert out[0, 0, 0, 0].item() == pytest.approx(mnist_data.BACKGROUND)


def test_subset_keeps_the_first_images_and_by_default_the_whole_test_set(mnist):
    small = mnist_data.subset(mnist, train=100, val=50)
    assert small.sizes() == {"train": 100, "validation": 50, "test": 10_000}
    assert torch.equal(small.x_train, mnist.x_train[:100]) and torch.equal(small.y_val, mnist.y_val[:50])
    assert torch.equal(small.x_test, mnist.x_test)
    tiny = mnist_data.subset(mnist, train=10, val=5, test=3)
    assert tiny.sizes() == {"train": 10, "validation": 5, "test": 3}
    assert torch.equal(tiny.y_test, mnist.y_test[:3])
    assert mnist_data.subset(mnist).sizes() == mnist.sizes()
    with pytest.raises(ValueError, match="between 1 and"):
        mnist_data.subset(mnist, train=0)
    with pytest.raises(ValueError, match="test must be between 1 and 10000"):
        mnist_data.subset(mnist, test=10_001)


def test_one_per_class_takes_the_first_of_each_class():
    images = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2)
    picked, labels = mnist_data.one_per_class(images, [1, 0, 1, 2, 0], classes=range(3))
    assert labels == [0, 1, 2]
    np.testing.assert_allclose(picked, images[[1, 0, 3]] / 255.0)
    with pytest.raises(ValueError, match="no image of class 3"):
        mnist_data.one_per_class(images, [1, 0, 1, 2, 0], classes=range(4))
