"""A smoke test of the training benchmark (bench/bench_training.py).

It checks that both loops run and that the report says what it measured; it does not time
anything (timings belong to ``make bench`` on an idle machine, not to a unit test).
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit import speed

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load_bench(name: str = "bench_training"):
    """A script of bench/ as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_guide_model_uses_the_original_dropout_and_the_same_weights():
    bench = load_bench()
    model = bench.guide_model()
    assert type(model.features.drop1) is nn.Dropout and model.features.drop1.p == 0.45
    assert type(model.features.drop2) is nn.Dropout and model.features.drop2.p == 0.35
    assert model.state_dict().keys() == sc.SimpleCNN().state_dict().keys()


def test_benchmark_runs_both_paths_and_prints_the_side_by_side_table(mnist_root, capsys):
    bench = load_bench()
    code = bench.main(
        [
            "--seeds",
            "0",
            "--max-epochs",
            "1",
            "--train-subset",
            "512",
            "--precision",
            "float32",
            "--data-root",
            str(mnist_root),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "arithmetic here: float32" in out
    assert "logical CPUs" in out.splitlines()[0]  # which CPU the timings came from
    rows = [line for line in out.splitlines() if re.match(r"\s+0\s+(guide|fast)\s", line)]
    assert len(rows) == 2  # one row per path for the one seed
    assert re.search(r"seed 0: fast path [\d.]+x faster per epoch", out)
    assert re.search(r"all seeds: guide [\d.]+ s/epoch, fast [\d.]+ s/epoch, ratio [\d.]+x", out)
    assert "load average" in out


def test_step_benchmark_times_every_setting(capsys):
    module = load_bench("bench_step")
    assert module.main(["--batch-size", "8", "--steps", "1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"(nn\.Dropout|FastDropout)\s", line)]
    expected = (
        8 if (speed.resolve_precision("auto") == "bfloat16") else 4
    )  # bfloat16 rows only with bfloat16 hardware
    assert len(rows) == expected
    assert rows[0].split()[:3] == ["nn.Dropout", "float32", "contiguous"] and rows[0].endswith("1.00x")
    assert "logical CPUs" in out.splitlines()[0]


def test_reference_search_reports_validation_for_the_model_and_its_averages(mnist_root, tmp_path, capsys):
    search = load_bench("reference_search")
    out = tmp_path / "search.json"
    argv = ["--data-root", str(mnist_root), "--train-subset", "2000", "--epochs", "2", "--out", str(out)]
    assert search.main(argv + ["--ema", "0.9"]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["val_acc"] > 0.5 and rows[-1]["ema0.9"] > 0.5  # chance is 0.1
    assert "elastic 15.0" in capsys.readouterr().out  # the reference recipe's distortion by default
    after = json.loads(out.read_text())["after"]  # batch norm re-estimated on undistorted images
    assert after["bn_clean"] > 0.5 and after["ema0.9_bn_clean"] > 0.5


def test_reference_search_can_train_the_last_epochs_on_undistorted_images(mnist_root, tmp_path):
    search = load_bench("reference_search")
    argv = ["--data-root", str(mnist_root), "--train-subset", "2000", "--epochs", "2", "--ema"]
    runs = {}
    for clean in (0, 1):
        out = tmp_path / f"clean{clean}.json"
        assert search.main(argv + ["--clean-epochs", str(clean), "--out", str(out)]) == 0
        runs[clean] = json.loads(out.read_text())["rows"]
    assert runs[1][0]["train_loss"] == runs[0][0]["train_loss"]  # the same first epoch
    # plain digits are easier than distorted ones: the clean last epoch has the lower loss
    assert runs[1][1]["train_loss"] < runs[0][1]["train_loss"]


def test_reference_search_distils_from_saved_teachers(mnist_root, tmp_path, capsys):
    search = load_bench("reference_search")
    argv = ["--data-root", str(mnist_root), "--train-subset", "2000", "--epochs", "1", "--ema"]
    teacher = tmp_path / "teacher.pt"
    assert search.main(argv + ["--save", str(teacher)]) == 0
    assert search.main(argv + ["--seed", "1", "--teachers", str(teacher), str(teacher)]) == 0
    out = capsys.readouterr().out
    assert "teachers' averaged validation accuracy" in out
    each, both = re.search(r"mistakes: each \[(\d+), \1\], made by all (\d+)", out).groups()
    assert each == both  # the same teacher twice makes the same mistakes
    assert json.loads(teacher.with_suffix(".json").read_text())["args"]["save"] == str(teacher)
    with pytest.raises(SystemExit, match="do not combine"):
        search.main(argv + ["--teachers", str(teacher), "--clean-epochs", "1"])
    with pytest.raises(SystemExit, match="would overwrite"):
        search.main(argv + ["--save", str(teacher), "--out", str(teacher.with_suffix(".json"))])

    class Says(nn.Module):  # a teacher certain that every image is a 7
        def forward(self, x):
            return (torch.arange(10) == 7).float().expand(len(x), 10) * 50

    y = torch.tensor([0, 7, 3])
    batches = [(torch.zeros(3, 1, 28, 28), y)]
    for share in (0, 0.5, 1):
        ((_, target),) = search.Taught(batches, [Says(), Says()], share, "float32")
        expected = (1 - share) * torch.eye(10)[y] + share * torch.eye(10)[[7, 7, 7]]
        assert torch.allclose(target, expected, atol=1e-6), share


def test_reference_search_mixes_images_and_targets_alike():
    search = load_bench("reference_search")
    y = torch.arange(8) % 10
    x = y.float().view(8, 1, 1, 1).expand(8, 1, 28, 28)  # each image holds its own label
    torch.manual_seed(0)
    ((mixed_x, target),) = search.Mixed([(x, y)], 0.4, torch.Generator().manual_seed(0))
    assert torch.allclose(target.sum(1), torch.ones(8))
    # the blend of the labels that each target names is the blend that each image shows
    assert torch.allclose(target @ torch.arange(10.0), mixed_x[:, 0, 0, 0], atol=1e-5)
    assert not torch.equal(mixed_x, x)  # something was mixed
    torch.manual_seed(0)  # the same seeds draw the same batch; targets given as probabilities mix too
    ((again_x, again),) = search.Mixed([(x, torch.eye(10)[y])], 0.4, torch.Generator().manual_seed(0))
    assert torch.equal(again_x, mixed_x) and torch.allclose(again, target)


def test_reference_search_decoupled_weight_decay_is_adamw():
    search = load_bench("reference_search")
    recipe = search.replace(search.augment.REFERENCE, weight_decay=0.5)
    weights = {}
    for name in ("adam", "adamw", "torch"):
        torch.manual_seed(0)
        model = nn.Linear(4, 3)
        optimizer, _ = search.optimizer_for(model, recipe, 10, 1, decoupled=name == "adamw")
        if name == "torch":  # PyTorch's own AdamW at the schedule's first learning rate
            lr, betas = optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["betas"]
            optimizer = torch.optim.AdamW(model.parameters(), lr, betas, weight_decay=0.5)
        model(torch.ones(2, 4)).sum().backward()
        optimizer.step()
        weights[name] = model.weight.detach()
    assert torch.allclose(weights["adamw"], weights["torch"])
    assert not torch.allclose(weights["adam"], weights["adamw"])
    with pytest.raises(SystemExit, match="give --weight-decay"):  # AdamW without a decay is Adam
        search.main(["--adamw"])


def test_reference_search_sharpness_aware_step_uses_the_gradient_uphill():
    search = load_bench("reference_search")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
    loss_fn = nn.CrossEntropyLoss()
    start = [p.detach().clone() for p in model.parameters()]
    first_mean = model[0](x).detach().mean(0)
    # by hand: the gradient at the weights moved 0.1 along the normalised gradient
    loss_fn(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    norm = torch.stack([g.norm() for g in grads]).norm()
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p.add_(g * 0.1 / norm)
            p.grad = None
    loss_fn(model(x), y).backward()
    expected = [w - 0.5 * p.grad for w, p in zip(start, model.parameters())]
    # the wrapper, from the same start, with plain gradient descent as its base
    with torch.no_grad():
        for p, w in zip(model.parameters(), start):
            p.copy_(w)
    model[1].reset_running_stats()
    sam = search.SharpnessAware(model, torch.optim.SGD(model.parameters(), lr=0.5), loss_fn, 0.1)
    sam.zero_grad()
    sam.loss_fn(model(x), y).backward()
    sam.step()
    for p, e in zip(model.parameters(), expected):
        assert torch.allclose(p, e, atol=1e-6)
    # batch norm's running mean moved once (momentum 0.1), by the first pass only, and its
    # momentum is back for the next step
    assert torch.allclose(model[1].running_mean, 0.1 * first_mean, atol=1e-6)
    assert model[1].momentum == 0.1


def test_compare_checkouts_times_both_and_gives_the_ratio(capsys):
    module = load_bench("compare_checkouts")
    root = Path(__file__).resolve().parents[1]
    assert module.main([str(root), "--seeds", "0", "--threads", "1", "--train-subset", "384"]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"seed 0  (this|other)\s+[\d.]+ s/epoch  test [\d.]+%", out)) == 2
    assert re.search(r"this / other = [\d.]+", out) and "logical CPUs" in out.splitlines()[0]
