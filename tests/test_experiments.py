"""Tests of the side-by-side experiment runner, cnnkit.experiments."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit import experiments as ex
from cnnkit.mnist import Splits, subset


def tiny_splits(n_train=96, n_val=40, seed=0, margin=0.0):
    """Random 28x28 'digits' whose label is decided by the mean brightness of a quadrant:
    learnable in a few steps, so the tests need no MNIST and run in seconds. ``margin`` brightens
    (class 3) or darkens (class 0) that quadrant further, which makes the classes easy to tell
    apart."""
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_val
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = (x[:, 0, :14, :14].mean((1, 2)) > 0).long() * 3  # two classes: 0 and 3
    x[:, 0, :14, :14] += margin * (y[:, None, None] / 1.5 - 1)
    return Splits(x[:n_train], y[:n_train], x[n_train:], y[n_train:], x[:10], y[:10])


def sgd(params):
    return torch.optim.SGD(params, lr=0.05)


def test_compare_returns_one_result_per_variant_with_histories():
    data = tiny_splits()
    variants = [ex.Variant("adam"), ex.Variant("sgd", optimizer=sgd)]
    results = ex.compare(variants, data, epochs=2, batch_size=32, log=None)
    assert [r.name for r in results] == ["adam", "sgd"]
    for r in results:
        assert [h["epoch"] for h in r.history] == [1, 2]
        steps = 2 * math.ceil(96 / 32)
        assert len(r.step_loss) == len(r.step_acc) == steps
        assert all(0.0 <= a <= 1.0 for a in r.step_acc)
        assert r.seconds == pytest.approx(sum(h["seconds"] for h in r.history))
        assert r.val_acc == r.history[-1]["val_acc"]


def test_same_seed_gives_identical_runs_and_same_initial_weights():
    data = tiny_splits()
    a, b = ex.compare([ex.Variant("x")], data, 1, seed=3, batch_size=32, log=None) + ex.compare(
        [ex.Variant("x")], data, 1, seed=3, batch_size=32, log=None
    )
    assert a.step_loss == b.step_loss
    assert a.val_loss == b.val_loss
    # Two variants with the same architecture start from the same weights: the first step's
    # loss (measured before any update) is the same whatever the optimizer.
    r = ex.compare(
        [ex.Variant("adam"), ex.Variant("sgd", optimizer=sgd)], data, 1, seed=3, batch_size=32, log=None
    )
    assert r[0].step_loss[0] == r[1].step_loss[0]
    assert r[0].step_loss[1] != r[1].step_loss[1]


def test_the_training_loss_is_used_and_recorded():
    data = tiny_splits()
    calls, values = [], []

    def loss_fn(logits, y):
        calls.append(len(y))
        loss = nn.functional.multi_margin_loss(logits, y)
        values.append(float(loss.detach()))
        return loss

    (r,) = ex.compare([ex.Variant("hinge", loss_fn=loss_fn)], data, 1, batch_size=32, log=None)
    assert calls == [32, 32, 32]
    assert r.step_loss == values  # the recorded curve is the training loss itself
    assert r.history[0]["val_loss"] > 0


def test_eval_train_and_table():
    data = tiny_splits()
    results = ex.compare(
        [ex.Variant("with bn"), ex.Variant("no bn", model=lambda: sc.SimpleCNN(batch_norm=False))],
        data,
        1,
        batch_size=48,
        eval_train=True,
        log=None,
    )
    for r in results:
        loss, acc = r.train_eval
        assert loss > 0 and 0 <= acc <= 1
    text = ex.table(results)
    lines = text.splitlines()
    assert len(lines) == 2 + 2
    assert "train loss (eval)" in lines[0] and "val acc" in lines[0]
    assert lines[2].startswith("with bn") and lines[3].startswith("no bn")
    assert f"{results[1].val_acc:.2%}" in lines[3]
    assert ex.rows(results)[0]["train_eval_acc"] == results[0].train_eval[1]


def test_log_gets_one_line_per_variant():
    lines = []
    ex.compare([ex.Variant("a"), ex.Variant("b")], tiny_splits(), 1, batch_size=96, log=lines.append)
    assert len(lines) == 2 and "val acc" in lines[0] and lines[1].strip().startswith("b:")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learning_happens_on_a_learnable_problem(seed):
    data = tiny_splits(n_train=512, n_val=256, margin=0.5)
    (r,) = ex.compare([ex.Variant("adam")], data, epochs=3, batch_size=64, seed=seed, log=None)
    assert r.step_loss[-1] < r.step_loss[0]
    assert r.val_acc > 0.9  # two balanced classes: chance is 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(variants=[]), "at least one Variant"),
        (dict(variants=["relu"]), "sequence of Variant"),
        (dict(variants=[ex.Variant("a"), ex.Variant("a")]), "unique"),
        (dict(epochs=0), "epochs must be at least 1"),
        (dict(batch_size=0), "batch_size must be at least 1"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs, message):
    args = dict(variants=[ex.Variant("a")], data=tiny_splits(), epochs=1, log=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ex.compare(**args)


def test_subset_keeps_the_first_images_and_checks_its_sizes():
    data = tiny_splits()
    small = subset(data, train=10, val=5)
    assert small.sizes() == {"train": 10, "validation": 5, "test": 10}
    assert torch.equal(small.x_train, data.x_train[:10]) and torch.equal(small.y_val, data.y_val[:5])
    assert subset(data).sizes() == data.sizes()
    with pytest.raises(ValueError, match="train must be between 1 and 96"):
        subset(data, train=1000)
    with pytest.raises(ValueError, match="val must be between 1 and 40"):
        subset(data, val=0)


def test_moving_average():
    assert ex.moving_average([1, 2, 3, 4], 2) == [1, 1.5, 2.5, 3.5]
    assert ex.moving_average([5.0], 10) == [5.0]
    with pytest.raises(ValueError, match="window"):
        ex.moving_average([1], 0)


def test_plot_curves_draws_one_labelled_line_per_result():
    results = ex.compare(
        [ex.Variant("a"), ex.Variant("b", optimizer=sgd)], tiny_splits(), 2, batch_size=32, log=None
    )
    ax = ex.plot_curves(results, "step_loss", smooth=2, title="loss")
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert len(ax.get_lines()[0].get_xdata()) == len(results[0].step_loss)
    assert ax.get_title() == "loss"
    assert ax.get_lines()[0].get_linestyle() != ax.get_lines()[1].get_linestyle()
    ax = ex.plot_curves(results, "val_acc")
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2]
    assert ax.get_title()  # every figure gets a title
    with pytest.raises(ValueError, match="unknown metric"):
        ex.plot_curves(results, "accuracy")
    with pytest.raises(ValueError, match="at least one Result"):
        ex.plot_curves([])


def test_beats_chance():
    (r,) = ex.compare([ex.Variant("a")], tiny_splits(), 1, batch_size=96, log=None)
    r.history[-1]["val_acc"] = 0.5
    assert ex.beats_chance(r)
    r.history[-1]["val_acc"] = 0.15
    assert not ex.beats_chance(r)
    r.history[-1]["val_acc"], r.history[-1]["val_loss"] = 0.9, float("nan")
    assert not ex.beats_chance(r)  # a diverged run does not count


@pytest.mark.slow
def test_on_real_mnist_every_activation_beats_chance(mnist):
    data = subset(mnist, train=2000, val=1000)
    variants = [
        ex.Variant(name, model=lambda a=a: sc.SimpleCNN(activation=a))
        for name, a in [("relu", nn.ReLU), ("tanh", nn.Tanh)]
    ]
    for r in ex.compare(variants, data, 1, batch_size=64, log=None):
        assert ex.beats_chance(r), (r.name, r.val_acc)


def test_onecycle_schedule_raises_then_lowers_each_learning_rate(mnist):
    small = subset(mnist, train=512, val=256)
    seen = []

    class Spy(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    variant = ex.Variant("spy", optimizer=lambda p: Spy(p, lr=0.01))
    ex.compare([variant], small, epochs=2, batch_size=128, schedule="onecycle", log=None)
    assert len(seen) == 8
    peak = seen.index(max(seen))
    assert 0 < peak < 7 and max(seen) == pytest.approx(0.01, rel=0.05)
    assert seen[0] < 0.01 / 5 and seen[-1] < 0.01 / 100
    with pytest.raises(ValueError, match="unknown schedule"):
        ex.compare([variant], small, epochs=1, schedule="cosine")


def test_machine_names_the_cpu_and_its_bfloat16_hardware(monkeypatch):
    text = ex.machine()
    assert text.count(",") >= 2 and "logical CPUs" in text
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True, "avx512_bf16": True})
    assert ex.machine().endswith("bfloat16 hardware: AMX, AVX-512 BF16")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    assert ex.machine().endswith("bfloat16 hardware: none")
