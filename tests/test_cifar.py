"""Tests of the CIFAR-10 model and loader, cnnkit.cifar."""

import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import simplecnn
from cnnkit import cifar, experiments, inspection
from cnnkit import mnist as mnist_data
from cnnkit.cifar import CifarCNN
from cnnkit.mnist import DataError, Splits

# conv1 16*3*3*3+16, conv2 32*16*3*3+32, fc1 (32*8*8)*128+128, fc2 128*10+10
EXPECTED_PARAMETERS = 448 + 4_640 + 262_272 + 1_290


# --- the model -------------------------------------------------------------------------------


def test_parameter_count_matches_the_architecture():
    assert inspection.count_parameters(CifarCNN()) == EXPECTED_PARAMETERS == 268_650


def test_layer_shapes_for_colour_input():
    shapes = dict(inspection.layer_shapes(CifarCNN(), input_shape=(1, 3, 32, 32)))
    assert shapes["features.conv1"] == (1, 16, 32, 32)  # 3x3 with padding 1 keeps 32x32
    assert shapes["features.pool1"] == (1, 16, 16, 16)
    assert shapes["features.conv2"] == (1, 32, 16, 16)
    assert shapes["features.pool2"] == (1, 32, 8, 8)
    assert shapes["classifier.flatten"] == (1, 32 * 8 * 8)
    assert shapes["classifier.fc1"] == (1, 128)
    assert shapes["classifier.fc2"] == (1, 10)


def test_architecture_is_the_published_one():
    model = CifarCNN()
    f, c = model.features, model.classifier
    assert (f.conv1.in_channels, f.conv1.out_channels, f.conv1.kernel_size, f.conv1.padding) == (
        3,
        16,
        (3, 3),
        (1, 1),
    )
    assert (f.conv2.in_channels, f.conv2.out_channels, f.conv2.kernel_size, f.conv2.padding) == (
        16,
        32,
        (3, 3),
        (1, 1),
    )
    assert isinstance(f.act1, nn.ReLU) and isinstance(f.act2, nn.ReLU) and isinstance(c.act3, nn.ReLU)
    assert f.pool1.kernel_size == 2 and f.pool2.kernel_size == 2
    assert (c.fc1.in_features, c.fc1.out_features, c.fc2.out_features) == (2048, 128, 10)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in model.modules())


def test_recipe_trains_with_adam_at_a_constant_rate_in_mini_batches_of_32():
    """The published recipe as simplecnn.train runs it: Adam at 1e-3 throughout, 32 images a step."""
    torch.manual_seed(0)
    model = CifarCNN()
    x, y = torch.randn(96, 3, 32, 32), torch.randint(0, 10, (96,))
    optimizer, scheduler = simplecnn.make_optimizer(model, cifar.RECIPE, steps_per_epoch=3, epochs=2)
    assert type(optimizer) is torch.optim.Adam and scheduler is None
    data = Splits(x, y, x[:32], y[:32], x[:32], y[:32])
    simplecnn.train(model, data, cifar.RECIPE, epochs=2, optimizer=optimizer, device="cpu")
    assert int(optimizer.state[model.features.conv1.weight]["step"]) == 6  # 96 images a epoch, 32 a step
    assert [group["lr"] for group in optimizer.param_groups] == [1e-3]  # no schedule moved it


def test_forward_gives_ten_logits_per_image():
    out = CifarCNN().eval()(torch.randn(5, 3, 32, 32))
    assert out.shape == (5, 10)


@pytest.mark.parametrize(
    "shape, hint",
    [((3, 32, 32), "unsqueeze(0)"), ((5, 1, 28, 28), ""), ((5, 32, 32, 3), ""), ((5, 3, 28, 28), "")],
)
def test_wrong_input_shape_gets_a_clear_error(shape, hint):
    with pytest.raises(ValueError, match=r"CifarCNN expects input of shape \(N, 3, 32, 32\)") as info:
        CifarCNN()(torch.zeros(shape))
    assert str(tuple(shape)) in str(info.value)
    assert hint in str(info.value)


def test_options_add_batch_norm_and_dropout():
    model = CifarCNN(batch_norm=True, dropout=0.5)
    assert isinstance(model.features.bn1, nn.BatchNorm2d) and model.features.bn2.num_features == 32
    assert model.classifier.drop.p == 0.5
    assert inspection.count_parameters(model) == EXPECTED_PARAMETERS + 2 * 16 + 2 * 32
    with pytest.raises(ValueError, match="dropout"):
        CifarCNN(dropout=1.0)


def test_the_same_design_runs_on_mnist_digits():
    model = CifarCNN(in_channels=1, image_size=28)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert model.classifier.fc1.in_features == 32 * 7 * 7
    with pytest.raises(ValueError, match="multiple of 4"):
        CifarCNN(image_size=30)


# --- per-class accuracy ----------------------------------------------------------------------

# --- the loader: an ImageFolder made on the fly ----------------------------------------------


def _write_folder(root: Path, per_class: int = 2, classes=cifar.CLASSES, size=(32, 32)):
    from PIL import Image

    for split in ("train", "test"):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", size, (20 * label, 100, 200 - 10 * i)).save(folder / f"{i:04d}.png")
    return root


def test_folder_loader_gives_normalised_splits(tmp_path):
    data = cifar.load(_write_folder(tmp_path, per_class=5), val_fraction=0.2)
    assert isinstance(data, Splits) and data.classes == cifar.CLASSES
    assert data.sizes() == {"train": 40, "validation": 10, "test": 50}
    assert data.x_train.shape[1:] == (3, 32, 32) and data.x_train.dtype == torch.float32
    assert str(tmp_path) in data.source
    # class k was painted red = 20k, green = 100: after (x/255 - 0.5)/0.5 the values are exact
    for k in range(10):
        img = data.x_test[data.y_test == k][0]
        assert img[0, 0, 0].item() == pytest.approx((20 * k / 255 - 0.5) / 0.5, abs=1e-6)
        assert img[1, 5, 5].item() == pytest.approx((100 / 255 - 0.5) / 0.5, abs=1e-6)


def test_folder_comes_from_the_argument_or_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cifar.DIR_ENV, str(tmp_path / "env"))
    assert cifar.image_folder(tmp_path / "arg") == tmp_path / "arg"
    assert cifar.image_folder() == tmp_path / "env"
    monkeypatch.delenv(cifar.DIR_ENV)
    assert cifar.image_folder() is None  # torchvision downloads the original


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10 folder at .*nowhere"):
        cifar.load(tmp_path / "nowhere")


def test_missing_split_folder_is_named(tmp_path):
    root = _write_folder(tmp_path)
    for p in sorted((root / "test").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (root / "test").rmdir()
    with pytest.raises(DataError, match="has no 'test' subfolder"):
        cifar.load(root)


def test_wrong_class_folders_are_listed(tmp_path):
    classes = list(cifar.CLASSES)
    classes[classes.index("cat")] = "kitten"
    with pytest.raises(DataError, match="missing: cat; unexpected: kitten"):
        cifar.load(_write_folder(tmp_path, classes=classes))


def test_empty_class_folder_is_named(tmp_path):
    root = _write_folder(tmp_path)
    for p in (root / "train" / "frog").iterdir():
        p.unlink()
    with pytest.raises(DataError, match=r"frog holds no images"):
        cifar.load(root)


def test_unreadable_image_is_named(tmp_path):
    root = _write_folder(tmp_path)
    (root / "test" / "ship" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.jpg"):
        cifar.load(root)


def test_wrong_image_size_is_refused(tmp_path):
    with pytest.raises(DataError, match="is 28x28 pixels; CIFAR-10 images are 32x32"):
        cifar.load(_write_folder(tmp_path, size=(28, 28)))


def test_failed_download_says_what_to_do(monkeypatch, tmp_path):
    from torchvision import datasets

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.delenv(cifar.DIR_ENV, raising=False)
    monkeypatch.setattr(datasets, "CIFAR10", no_network)
    with pytest.raises(DataError) as info:
        cifar.load(root=tmp_path)
    message = str(info.value)
    assert "network is unreachable" in message and "download failed" in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert cifar.DIR_ENV in message


# --- the loader on the shared CIFAR-10 subset, and a short training run ----------------------


@pytest.fixture(scope="module")
def subset():
    folder = os.environ.get(cifar.DIR_ENV)
    if not folder:
        pytest.skip(
            f"${cifar.DIR_ENV} is not set: it names the offline CIFAR-10 copy "
            "(train/<class>/*.jpg, test/<class>/*.jpg) these tests read; CI sets it"
        )
    return cifar.load()


def test_shared_subset_loads(subset):
    assert subset.sizes() == {"train": 8_000, "validation": 2_000, "test": 2_000}
    assert subset.x_train.shape[1:] == (3, 32, 32)
    assert torch.bincount(subset.y_test).tolist() == [200] * 10
    assert subset.x_train.min() >= -1.0 and subset.x_train.max() <= 1.0
    assert abs(subset.x_train.mean().item()) < 0.2  # (x - 0.5) / 0.5 roughly centres the pixels
    # the pixels are the JPEG's own: undo the normalisation and compare with PIL
    import numpy as np
    from PIL import Image

    first = (
        Path(os.environ[cifar.DIR_ENV])
        / "test"
        / "airplane"
        / sorted(os.listdir(Path(os.environ[cifar.DIR_ENV]) / "test" / "airplane"))[0]
    )
    pixels = torch.from_numpy(np.array(Image.open(first).convert("RGB"))).permute(2, 0, 1)
    assert torch.equal((subset.x_test[0] * 0.5 + 0.5).mul(255).round().to(torch.uint8), pixels)


def test_split_is_seeded(subset):
    again = cifar.load(seed=0, train_subset=100)
    assert torch.equal(again.y_train, subset.y_train[:100])
    assert torch.equal(again.x_val, subset.x_val)


def test_training_loop_runs_the_asked_epochs_and_counts_right(subset):
    """The published loop ignored its epoch count and never reset its counters; ours must not."""
    small = mnist_data.subset(subset, train=2000, val=1000)
    torch.manual_seed(0)
    model = CifarCNN()
    measure = experiments.measure_test(small.x_test, small.y_test)
    history = simplecnn.train(model, small, cifar.RECIPE, epochs=2, seed=0, after_epoch=measure)
    assert [h["epoch"] for h in history] == [1, 2]  # exactly `epochs` rows, not RECIPE.epochs
    _, acc = simplecnn.evaluate(model, simplecnn.Batches(small.x_test, small.y_test, 500))
    recount = (simplecnn.predict(model, small.x_test).argmax(1) == small.y_test).sum().item()
    assert acc == recount / len(small.y_test) == history[-1]["test_acc"]
    assert 0.0 <= history[-1]["train_acc"] <= 1.0
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert acc > 0.25  # chance is 0.10
    pred = simplecnn.predict(model, small.x_test).argmax(1)
    per_class = inspection.per_class_accuracy(inspection.confusion_matrix(small.y_test, pred))
    assert per_class.mean().item() == pytest.approx(acc)  # balanced test set: mean of classes
