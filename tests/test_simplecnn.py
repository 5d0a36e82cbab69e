"""Tests of the shared model and pipeline in src/simplecnn.py."""

import json
import shutil

import pytest
import torch
import torch.nn as nn

import simplecnn
from simplecnn import SimpleCNN

# conv1 32*1*5*5+32, bn1 2*32, conv2 64*32*5*5+64, bn2 2*64, fc1 1024*512+512, fc2 512*10+10
EXPECTED_PARAMETERS = 832 + 64 + 51_264 + 128 + 524_800 + 5_130


# --- the model -------------------------------------------------------------------------------

def test_parameter_count_matches_the_architecture():
    assert simplecnn.count_parameters(SimpleCNN()) == EXPECTED_PARAMETERS == 582_218


def test_layer_shapes_follow_the_formula():
    shapes = dict(simplecnn.layer_shapes(SimpleCNN()))
    assert shapes["features.conv1"] == (1, 32, 24, 24)  # 28 - 5 + 1
    assert shapes["features.pool1"] == (1, 32, 12, 12)
    assert shapes["features.conv2"] == (1, 64, 8, 8)  # 12 - 5 + 1
    assert shapes["features.pool2"] == (1, 64, 4, 4)
    assert shapes["classifier.flatten"] == (1, 1024)
    assert shapes["classifier.fc2"] == (1, 10)


def test_architecture_is_the_simple_cnn():
    model = SimpleCNN()
    f, c = model.features, model.classifier
    assert (f.conv1.in_channels, f.conv1.out_channels, f.conv1.kernel_size) == (1, 32, (5, 5))
    assert (f.conv2.in_channels, f.conv2.out_channels, f.conv2.kernel_size) == (32, 64, (5, 5))
    assert isinstance(f.bn1, nn.BatchNorm2d) and isinstance(f.bn2, nn.BatchNorm2d)
    assert f.drop1.p == 0.45 and f.drop2.p == 0.35
    assert f.pool1.kernel_size == 2 and f.pool2.kernel_size == 2
    assert (c.fc1.in_features, c.fc1.out_features, c.fc2.out_features) == (1024, 512, 10)


def test_forward_gives_logits_for_a_batch():
    out = SimpleCNN().eval()(torch.randn(7, 1, 28, 28))
    assert out.shape == (7, 10)
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1))  # logits, not probabilities


@pytest.mark.parametrize(
    "shape, hint",
    [((28, 28), "x[None, None]"), ((1, 28, 28), "unsqueeze(0)"), ((5, 28, 28), "unsqueeze(1)"),
     ((5, 3, 28, 28), ""), ((5, 1, 32, 32), "")],
)
def test_wrong_input_shape_gets_a_clear_error(shape, hint):
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 1, 28, 28\)") as info:
        SimpleCNN()(torch.zeros(shape))
    assert str(tuple(shape)) in str(info.value)
    assert hint in str(info.value)


def test_experiment_options_change_the_network():
    model = SimpleCNN(activation=nn.Tanh, batch_norm=False, dropout=(0.0, 0.0))
    assert isinstance(model.features.act1, nn.Tanh)
    assert isinstance(model.features.bn1, nn.Identity)
    assert simplecnn.count_parameters(model) == EXPECTED_PARAMETERS - 64 - 128


# --- dropout ---------------------------------------------------------------------------------

def test_the_simple_cnn_uses_fast_dropout_which_is_an_nn_dropout():
    model = SimpleCNN()
    assert type(model.features.drop1) is simplecnn.FastDropout
    assert isinstance(model.features.drop2, nn.Dropout)


@pytest.mark.parametrize("p", [0.1, 0.45, 0.8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_dropout_keeps_each_value_with_probability_one_minus_p_and_rescales(p, dtype):
    torch.manual_seed(0)
    x = (torch.rand(64, 32, 12, 12) + 0.5).to(dtype)  # no zeros of its own
    out = simplecnn.FastDropout(p).train()(x)
    assert out.dtype == dtype and out.shape == x.shape
    kept = out != 0
    # 294,912 draws: the kept share is within 0.5 percentage points of 1 - p
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005
    torch.testing.assert_close(out[kept], (x.float() / (1 - p)).to(dtype)[kept])
    # the mean is preserved, as for nn.Dropout (the reason for the rescaling)
    assert out.float().mean().item() == pytest.approx(x.float().mean().item(), rel=0.01)


def test_fast_dropout_matches_nn_dropout_in_distribution_and_in_evaluation_mode():
    torch.manual_seed(0)
    x = torch.randn(128, 32, 12, 12)
    ours, theirs = simplecnn.FastDropout(0.45), nn.Dropout(0.45)
    a, b = ours.train()(x), theirs.train()(x)
    assert abs((a == 0).float().mean() - (b == 0).float().mean()) < 0.005
    assert a.std().item() == pytest.approx(b.std().item(), rel=0.02)
    assert not torch.equal(a, x)
    assert ours.eval()(x) is x  # evaluation mode: the input passes through unchanged
    assert simplecnn.FastDropout(0.0).train()(x) is x
    assert torch.count_nonzero(simplecnn.FastDropout(1.0).train()(x)) == 0


def test_fast_dropout_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(16, 8, 6, 6, requires_grad=True)
    out = simplecnn.FastDropout(0.3).train()(x)
    out.sum().backward()
    expected = (out != 0).float() / 0.7
    torch.testing.assert_close(x.grad, expected)


def test_fast_dropout_in_place_changes_its_input():
    torch.manual_seed(0)
    x = torch.randn(10, 4, 5, 5)
    y = simplecnn.FastDropout(0.5, inplace=True).train()(x)
    assert y is x and (x == 0).any()


# --- precision -------------------------------------------------------------------------------

def test_resolve_precision(monkeypatch):
    assert simplecnn.resolve_precision("float32") == "float32"
    assert simplecnn.resolve_precision("bfloat16") == "bfloat16"
    monkeypatch.setattr(simplecnn, "cpu_has_bfloat16", lambda: True)
    assert simplecnn.resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(simplecnn, "cpu_has_bfloat16", lambda: False)
    assert simplecnn.resolve_precision("auto") == "float32"
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        simplecnn.resolve_precision("half")


def test_cpu_has_bfloat16_reads_the_cpu_features(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True, "avx512_bf16": False})
    assert simplecnn.cpu_has_bfloat16()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    assert not simplecnn.cpu_has_bfloat16()

    def unsupported():
        raise RuntimeError("not reported here")

    monkeypatch.setattr(torch.cpu, "get_capabilities", unsupported)
    assert not simplecnn.cpu_has_bfloat16()


def test_recipes_choose_their_arithmetic():
    assert simplecnn.GUIDE.precision == "float32"  # the original recipe, unchanged
    assert simplecnn.FAST.precision == "auto"


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_train_epoch_in_either_precision_keeps_float32_weights(precision):
    torch.manual_seed(0)
    model = SimpleCNN()
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = model.features.conv1.weight.detach().clone()
    loss, acc = simplecnn.train_epoch(model, simplecnn.Batches(x, y, 32), optimizer, precision=precision)
    assert loss > 0 and 0 <= acc <= 1
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(model.features.conv1.weight, before)


def test_bfloat16_forward_pass_stays_close_to_float32():
    torch.manual_seed(0)
    model = SimpleCNN().eval()
    x = torch.randn(32, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), model(x), atol=0.1, rtol=0.05)


def test_train_stores_the_weights_channels_last_without_breaking_the_optimizer(mnist):
    small = simplecnn.Splits(mnist.x_train[:256], mnist.y_train[:256], mnist.x_val[:64],
                             mnist.y_val[:64], mnist.x_test[:64], mnist.y_test[:64])
    model = SimpleCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # made before the conversion
    before = model.classifier.fc1.weight.detach().clone()
    simplecnn.train(model, small, simplecnn.GUIDE, epochs=1, optimizer=optimizer)
    assert model.features.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(model.classifier.fc1.weight, before)


# --- data ------------------------------------------------------------------------------------

def test_split_is_seeded_and_disjoint():
    a_train, a_val = simplecnn.split_indices(1000, 0.2, seed=3)
    b_train, b_val = simplecnn.split_indices(1000, 0.2, seed=3)
    c_train, _ = simplecnn.split_indices(1000, 0.2, seed=4)
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
    monkeypatch.setenv(simplecnn.DATA_ENV, str(tmp_path / "env"))
    assert simplecnn.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert simplecnn.data_root() == tmp_path / "env"
    monkeypatch.delenv(simplecnn.DATA_ENV)
    assert str(simplecnn.data_root()) == "data"


def test_offline_error_names_the_folder_and_the_four_files(monkeypatch, tmp_path):
    from torchvision import datasets

    def no_network(self, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets.MNIST, "download", no_network)
    with pytest.raises(simplecnn.DataError) as info:
        simplecnn.load_mnist(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "network is unreachable" in message
    for name in simplecnn.MNIST_FILES:
        assert name in message


def test_damaged_file_is_refused_and_kept(mnist_root, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in simplecnn.MNIST_FILES:
        shutil.copy(mnist_root / "MNIST" / "raw" / name, raw / name)
    damaged = raw / "t10k-labels-idx1-ubyte"
    damaged.write_bytes(damaged.read_bytes()[:5000])  # a truncated download
    with pytest.raises(simplecnn.DataError, match="t10k-labels-idx1-ubyte"):
        simplecnn.load_mnist(tmp_path)
    assert damaged.stat().st_size == 5000  # nothing deleted behind the user's back


def test_batches_cover_every_sample_once():
    x, y = torch.arange(10.0).view(10, 1), torch.arange(10)
    batches = simplecnn.Batches(x, y, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    assert len(batches) == 3
    seen = torch.cat([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="differ in length"):
        simplecnn.Batches(x, y[:5])


def test_random_shift_moves_the_image_without_changing_its_content():
    img = torch.full((1, 1, 28, 28), -1.0)
    img[0, 0, 10:14, 10:14] = 2.0
    out = simplecnn.random_shift(2, torch.Generator().manual_seed(1))(img.repeat(50, 1, 1, 1))
    assert out.shape == (50, 1, 28, 28)
    assert torch.all((out == 2.0).sum(dim=(1, 2, 3)) == 16)  # the blob is whole, only moved
    assert len({tuple(torch.nonzero(o[0] == 2.0)[0].tolist()) for o in out}) > 5


# --- training --------------------------------------------------------------------------------

def test_short_training_run_learns(mnist):
    """A real run on 3,000 MNIST images: the loss falls and accuracy rises well above chance."""
    torch.manual_seed(0)
    small = simplecnn.Splits(mnist.x_train[:3000], mnist.y_train[:3000], mnist.x_val[:2000],
                             mnist.y_val[:2000], mnist.x_test[:2000], mnist.y_test[:2000])
    model = SimpleCNN()
    before_loss, before_acc = simplecnn.evaluate(model, simplecnn.Batches(small.x_val, small.y_val, 500))
    history = simplecnn.train(model, small, simplecnn.GUIDE, epochs=3, seed=0)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_loss"] < before_loss
    assert history[-1]["val_acc"] > max(before_acc + 0.5, 0.85)
    assert set(history[0]) >= {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"}


def test_training_is_reproducible_with_a_seed(mnist):
    small = simplecnn.Splits(mnist.x_train[:512], mnist.y_train[:512], mnist.x_val[:256],
                             mnist.y_val[:256], mnist.x_test[:256], mnist.y_test[:256])
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = SimpleCNN()
        runs.append(simplecnn.train(model, small, simplecnn.FAST, epochs=1, seed=1)[0]["val_loss"])
    assert runs[0] == pytest.approx(runs[1], rel=1e-5)


def test_unknown_schedule_is_refused():
    recipe = simplecnn.Recipe(name="odd", epochs=1, schedule="cosine-ish")
    with pytest.raises(ValueError, match="unknown schedule"):
        simplecnn.make_optimizer(SimpleCNN(), recipe, 10, 1)


# --- checkpoints -----------------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SimpleCNN().eval()
    x = torch.randn(4, 1, 28, 28)
    path = simplecnn.save_checkpoint(model, tmp_path / "m.pt", [{"epoch": 1}], note="test")
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["history"] == [{"epoch": 1}] and info["note"] == "test"
    assert info["sha256"] == simplecnn.sha256(path)
    loaded = simplecnn.load_checkpoint(path, expected_sha256=info["sha256"])
    assert not loaded.training
    assert torch.equal(loaded(x), model(x))


def test_checkpoint_with_wrong_hash_is_refused(tmp_path):
    path = simplecnn.save_checkpoint(SimpleCNN(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="SHA-256"):
        simplecnn.load_checkpoint(path, expected_sha256="0" * 64)


def test_untrusted_pickle_is_refused(tmp_path):
    """weights_only=True: a file holding arbitrary Python objects is not unpickled."""
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(1), "payload": shutil.rmtree}, path)
    with pytest.raises(ValueError, match="not a readable weights-only checkpoint"):
        simplecnn.load_checkpoint(path)


def test_corrupt_or_missing_checkpoint_gets_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        simplecnn.load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        simplecnn.load_checkpoint(tmp_path / "missing.pt")


# --- command line ----------------------------------------------------------------------------

def test_cli_trains_and_writes_checkpoint_and_history(mnist_root, tmp_path, capsys):
    out = tmp_path / "run" / "model.pt"
    code = simplecnn.main(["train", "--recipe", "guide", "--epochs", "1", "--train-subset", "2000", "--no-progress",
                           "--data-root", str(mnist_root), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "epoch  1/1" in printed and "test accuracy" in printed
    info = json.loads(out.with_suffix(".json").read_text())
    assert len(info["history"]) == 1 and 0.5 < info["test_acc"] <= 1  # 8 steps of Adam: well above 10 %
    simplecnn.load_checkpoint(out, expected_sha256=info["sha256"])


def test_cli_precision_option_is_used_and_recorded(mnist_root, tmp_path, capsys):
    out = tmp_path / "model.pt"
    code = simplecnn.main(["train", "--epochs", "1", "--train-subset", "512", "--no-progress",
                           "--precision", "float32", "--data-root", str(mnist_root), "--out", str(out)])
    assert code == 0
    assert "training arithmetic: float32" in capsys.readouterr().out
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["precision"] == "float32" and info["recipe"]["precision"] == "float32"
    with pytest.raises(SystemExit):
        simplecnn.main(["train", "--precision", "half"])


def test_cli_reports_missing_data_without_a_traceback(tmp_path, capsys, monkeypatch):
    from torchvision import datasets

    monkeypatch.setattr(datasets.MNIST, "download", lambda self: (_ for _ in ()).throw(OSError("offline")))
    code = simplecnn.main(["train", "--epochs", "1", "--data-root", str(tmp_path), "--no-progress"])
    assert code == 2
    assert "MNIST is not available" in capsys.readouterr().err
