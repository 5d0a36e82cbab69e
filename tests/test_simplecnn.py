"""Tests of the model and its training loop, src/simplecnn.py."""

import pytest
import torch
import torch.nn as nn

import simplecnn
from cnnkit import augment
from cnnkit.inspection import count_parameters, layer_shapes
from cnnkit.mnist import Splits
from simplecnn import SimpleCNN

# conv1 32*1*5*5+32, bn1 2*32, conv2 64*32*5*5+64, bn2 2*64, fc1 1024*512+512, fc2 512*10+10
EXPECTED_PARAMETERS = 832 + 64 + 51_264 + 128 + 524_800 + 5_130


# --- the model -------------------------------------------------------------------------------


def _first(data, n_train: int, n_eval: int) -> Splits:
    """The first ``n_train`` training images and the first ``n_eval`` of the other splits."""
    return Splits(data.x_train[:n_train], data.y_train[:n_train], data.x_val[:n_eval], data.y_val[:n_eval],
                  data.x_test[:n_eval], data.y_test[:n_eval])  # fmt: skip


def test_parameter_count_matches_the_architecture():
    assert count_parameters(SimpleCNN()) == EXPECTED_PARAMETERS == 582_218


def test_layer_shapes_follow_the_formula():
    shapes = dict(layer_shapes(SimpleCNN()))
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
    [
        ((28, 28), "x[None, None]"),
        ((1, 28, 28), "unsqueeze(0)"),
        ((5, 28, 28), "unsqueeze(1)"),
        ((5, 3, 28, 28), ""),
        ((5, 1, 32, 32), ""),
    ],
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
    assert count_parameters(model) == EXPECTED_PARAMETERS - 64 - 128


# --- dropout ---------------------------------------------------------------------------------


def test_the_simple_cnn_uses_pytorchs_dropout_as_the_guide_does():
    model = SimpleCNN()
    assert type(model.features.drop1) is nn.Dropout and model.features.drop1.p == 0.45
    assert type(model.features.drop2) is nn.Dropout and model.features.drop2.p == 0.35


def test_empty_data_gives_no_batches_and_no_step():
    empty = simplecnn.Batches(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long), shuffle=True)
    assert len(empty) == 0 and list(empty) == []
    model = SimpleCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="no batches"):
        simplecnn.train_epoch(model, empty, torch.optim.Adam(model.parameters()))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was learnt


def test_train_keeps_an_optimizer_made_before_it_moves_the_model(mnist):
    small = _first(mnist, 256, 64)
    model = SimpleCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # made before train moves the model
    before = model.classifier.fc1.weight.detach().clone()
    simplecnn.train(model, small, simplecnn.GUIDE, epochs=1, optimizer=optimizer)
    assert not torch.equal(model.classifier.fc1.weight, before)


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


def test_format_epoch_leaves_out_a_missing_validation_set():
    row = dict(epoch=1, train_loss=0.5, train_acc=0.9, val_loss=0.2, val_acc=0.95, seconds=3.0)
    assert "val loss 0.2000  acc 95.00%" in simplecnn.format_epoch(row, 2)
    row.update(val_loss=float("nan"), val_acc=float("nan"), test_acc=0.97)
    assert "val" not in simplecnn.format_epoch(row, 2) and "test acc 97.00%" in simplecnn.format_epoch(row, 2)


def test_short_training_run_learns(mnist):
    """A real run on 3,000 MNIST images: the loss falls and accuracy rises well above chance."""
    torch.manual_seed(0)
    small = _first(mnist, 3000, 2000)
    model = SimpleCNN()
    before_loss, before_acc = simplecnn.evaluate(model, simplecnn.Batches(small.x_val, small.y_val, 500))
    history = simplecnn.train(model, small, simplecnn.GUIDE, epochs=3, seed=0)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_loss"] < before_loss
    assert history[-1]["val_acc"] > max(before_acc + 0.5, 0.85)
    assert set(history[0]) >= {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"}


def test_training_is_reproducible_with_a_seed(mnist):
    small = _first(mnist, 512, 256)
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


def test_default_device_is_the_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert simplecnn.default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert simplecnn.default_device() == torch.device("cuda")


def test_train_puts_the_model_on_the_device_it_is_given(mnist):
    small = _first(mnist, 256, 64)
    model = SimpleCNN()
    history = simplecnn.train(model, small, simplecnn.GUIDE, epochs=1, device="cpu")
    assert simplecnn.model_device(model) == torch.device("cpu") and len(history) == 1


def test_predict_returns_probabilities_and_keeps_the_mode():
    torch.manual_seed(0)
    model = SimpleCNN().train()
    probs = simplecnn.predict(model, torch.randn(7, 1, 28, 28), batch_size=3)
    assert probs.shape == (7, 10) and model.training
    torch.testing.assert_close(probs.sum(1), torch.ones(7))
    assert simplecnn.predict(model, torch.zeros(0, 1, 28, 28)).shape == (0, 10)  # no images, no rows


def test_adam_betas_come_from_the_recipe():
    recipe = simplecnn.Recipe(name="b", epochs=1, betas=(0.7, 0.9))
    optimizer, scheduler = simplecnn.make_optimizer(SimpleCNN(), recipe, 10, 1)
    assert optimizer.param_groups[0]["betas"] == (0.7, 0.9) and scheduler is None


def test_one_cycle_dips_adams_beta1_and_keeps_beta2():
    recipe = simplecnn.Recipe(name="c", epochs=1, lr=0.01, betas=(0.95, 0.9), schedule="onecycle", warmup=0.5)
    optimizer, scheduler = simplecnn.make_optimizer(SimpleCNN(), recipe, steps_per_epoch=11, epochs=1)
    beta1 = [optimizer.param_groups[0]["betas"][0]]
    for _ in range(10):
        optimizer.step()
        scheduler.step()
        beta1.append(optimizer.param_groups[0]["betas"][0])
        assert optimizer.param_groups[0]["betas"][1] == 0.9
    assert (
        beta1[0] == pytest.approx(0.95) and min(beta1) == pytest.approx(0.85, abs=0.01) and beta1[-1] > 0.94
    )
    assert simplecnn.FAST.betas[0] == augment.REFERENCE.betas[0] == 0.95  # what one-cycle starts from


def test_one_cycle_on_very_few_steps_still_warms_up_and_cools_down():
    recipe = simplecnn.Recipe(name="tiny", epochs=1, lr=0.01, schedule="onecycle", warmup=0.25)
    optimizer, scheduler = simplecnn.make_optimizer(SimpleCNN(), recipe, steps_per_epoch=4, epochs=1)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(0.01) and rates[0] < 0.01 and rates[-1] < 0.01
    with pytest.raises(ValueError, match="at least 3 steps"):
        simplecnn.make_optimizer(SimpleCNN(), recipe, steps_per_epoch=2, epochs=1)
