"""Benchmark: the original guide's training loop against this course's fast path, side by side.

Both train the same Simple CNN on the same 48,000 MNIST training images (the course's seeded
split), in one process on the same machine, alternating per seed (guide first for even seeds,
fast first for odd ones):

* guide: torchvision ``MNIST`` with ``transforms.Compose([ToTensor(), Normalize(...)])``, so every
  image goes through PIL and the transforms one at a time inside a ``DataLoader`` (batch 256,
  shuffled), a contiguous float32 model with ``nn.Dropout``, constant Adam 1e-3, plain
  cross-entropy, ``loss.item()`` every step, and validation/test passes through the same kind
  of loaders under ``torch.no_grad()``;
* fast: ``simplecnn.train`` with the course's default recipe ``simplecnn.FAST`` (one epoch:
  batch 128, one-cycle Adam with beta2 0.9, label smoothing, one-pixel random shifts) on
  preloaded, standardised tensors, a ``channels_last`` model,
  ``cnnkit.speed.FastDropout`` masks, bfloat16 arithmetic in the forward pass where the CPU
  has it (``--precision`` overrides this) and evaluation in float32 under
  ``torch.inference_mode()``.

After every epoch both measure validation and test accuracy. The guide's run stops once its test
accuracy first reaches the target (99.0 %) or after ``--max-epochs`` epochs; the fast path runs
its recipe's epochs (one), so its table row shows whether one epoch reaches the target. The wall time to the target
counts everything from the start of the run: preparing the data, training, and the validation
and test passes of every epoch.

Usage (from the repository root, with the environment active)::

    make bench                                   # 3 seeds
    make bench BENCH_ARGS=--quick                # 1 seed, at most 2 epochs each (a few minutes)
    python bench/bench_training.py --help

Timings depend on the machine and on whatever else runs on it: the script prints the load
average (``/proc/loadavg``) before and after every run. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit import experiments, mnist, speed


def scheduling() -> str:
    """This process's nice value and, on Linux, its autogroup (whose nice value decides how the
    CPU is shared with other sessions)."""
    text = f"nice {os.nice(0)}"
    try:
        with open("/proc/self/autogroup") as f:
            text += f", {f.read().strip()}"
    except OSError:
        pass
    return text


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


# ---------------------------------------------------------------------------------------------
# The guide's loop, as the original guide writes it
# ---------------------------------------------------------------------------------------------


def guide_loaders(root, seed: int, batch_size: int = 256, train_subset: int | None = None):
    """Train, validation and test ``DataLoader``s over torchvision MNIST with per-sample
    ``ToTensor`` + ``Normalize``; the train/validation split is the course's (seed 0)."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mnist.MEAN,), (mnist.STD,))])
    train_full = datasets.MNIST(root, train=True, transform=transform)
    test_set = datasets.MNIST(root, train=False, transform=transform)
    train_idx, val_idx = mnist.split_indices(len(train_full), 0.2, seed=0)
    if train_subset is not None:
        train_idx = train_idx[:train_subset]
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(
        Subset(train_full, train_idx.tolist()), batch_size=batch_size, shuffle=True, generator=generator
    )
    val = DataLoader(Subset(train_full, val_idx.tolist()), batch_size=batch_size)
    test = DataLoader(test_set, batch_size=batch_size)
    return train, val, test


def guide_model() -> nn.Module:
    """The Simple CNN as the guide builds it (its dropout layers are ``nn.Dropout``)."""
    return sc.SimpleCNN()


def guide_accuracy(model, loader) -> float:
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            outputs = model(images)
            _, predicted = torch.max(outputs, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return correct / total


def run_guide(root, seed: int, target: float, max_epochs: int, train_subset=None) -> dict:
    start = time.perf_counter()
    torch.manual_seed(seed)
    train_loader, val_loader, test_loader = guide_loaders(root, seed, train_subset=train_subset)
    model = guide_model()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs = []
    for epoch in range(1, max_epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        running_loss = 0.0
        for images, labels in train_loader:
            optimizer.zero_grad()
            outputs = model(images)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        seconds = time.perf_counter() - epoch_start
        val_acc = guide_accuracy(model, val_loader)
        test_start = time.perf_counter()
        test_acc = guide_accuracy(model, test_loader)
        test_seconds = time.perf_counter() - test_start
        epochs.append(
            dict(
                epoch=epoch,
                seconds=seconds,
                val_acc=val_acc,
                test_acc=test_acc,
                test_seconds=test_seconds,
                wall=time.perf_counter() - start,
            )
        )
        print(f"    guide epoch {epoch}: {seconds:5.1f} s, test acc {test_acc:.2%}", flush=True)
        if test_acc >= target:
            break
    return dict(path="guide", seed=seed, epochs=epochs)


# ---------------------------------------------------------------------------------------------
# The course's fast path
# ---------------------------------------------------------------------------------------------


def run_fast(
    root, seed: int, target: float, max_epochs: int, train_subset=None, precision: str = "auto"
) -> dict:
    recipe = sc.FAST
    start = time.perf_counter()
    data = mnist.load(root, seed=0, train_subset=train_subset, download=False)
    torch.manual_seed(seed)
    model = speed.speed_up(sc.SimpleCNN(), precision)  # appendix B: the same network, faster
    epochs = []

    measure_test = experiments.measure_test(data.x_test, data.y_test)

    def stop(model, row):
        measure_test(model, row)
        row["wall"] = time.perf_counter() - start
        epochs.append(row)
        print(
            f"    fast  epoch {row['epoch']}: {row['seconds']:5.1f} s, test acc {row['test_acc']:.2%}",
            flush=True,
        )
        return row["test_acc"] >= target or row["epoch"] >= max_epochs

    # the whole recipe (its one-cycle schedule spans all its epochs); we stop at the target
    sc.train(model, data, recipe, seed=seed, after_epoch=stop)
    return dict(path="fast", seed=seed, epochs=epochs)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def time_to_target(run: dict, target: float):
    for e in run["epochs"]:
        if e["test_acc"] >= target:
            return e["wall"], e["epoch"]
    return None, None


def sec_per_epoch(run: dict) -> float:
    return statistics.mean(e["seconds"] for e in run["epochs"])


def eval_seconds(run: dict) -> float:
    return statistics.median(e["test_seconds"] for e in run["epochs"])


def report(runs: list[dict], target: float) -> str:
    lines = [
        f"{'seed':>4}  {'path':5}  {'s/epoch':>7}  {'eval 10k':>8}  {'to ' + format(target, '.1%'):>14}  "
        f"test accuracy after each epoch",
        "-" * 100,
    ]
    for r in runs:
        t, ep = time_to_target(r, target)
        reach = f"{t:6.1f} s (ep {ep})" if t is not None else f"not in {len(r['epochs'])} ep"
        accs = " ".join(f"{e['test_acc']:.2%}" for e in r["epochs"])
        lines.append(
            f"{r['seed']:>4}  {r['path']:5}  {sec_per_epoch(r):7.1f}  {eval_seconds(r):7.2f}s  "
            f"{reach:>14}  {accs}"
        )
    lines.append("-" * 100)
    seeds = sorted({r["seed"] for r in runs})
    by = {(r["seed"], r["path"]): r for r in runs}
    for seed in seeds:
        g, f = by[(seed, "guide")], by[(seed, "fast")]
        tg, tf = time_to_target(g, target)[0], time_to_target(f, target)[0]
        ratio_t = f"{tg / tf:.2f}x" if tg is not None and tf is not None else "n/a"
        lines.append(
            f"seed {seed}: fast path {sec_per_epoch(g) / sec_per_epoch(f):.2f}x faster per epoch, "
            f"time to {target:.1%} {ratio_t} shorter, evaluation {eval_seconds(g) / eval_seconds(f):.1f}x faster"
        )
    g_all = [e["seconds"] for r in runs if r["path"] == "guide" for e in r["epochs"]]
    f_all = [e["seconds"] for r in runs if r["path"] == "fast" for e in r["epochs"]]
    lines.append(
        f"all seeds: guide {statistics.mean(g_all):.1f} s/epoch, fast {statistics.mean(f_all):.1f} "
        f"s/epoch, ratio {statistics.mean(g_all) / statistics.mean(f_all):.2f}x"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach (default 0.99)")
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=8,
        help="stop a run after this many epochs even below the target (default 8)",
    )
    parser.add_argument("--train-subset", type=int, help="train on only the first N training images")
    parser.add_argument("--threads", type=int, help="torch threads for both (default: torch's choice)")
    parser.add_argument(
        "--precision",
        choices=speed.PRECISIONS,
        default="auto",
        help="arithmetic of the fast path (default 'auto': bfloat16 where the CPU has it)",
    )
    parser.add_argument("--quick", action="store_true", help="one seed, at most 2 epochs each")
    parser.add_argument("--data-root", help="data folder (default $SIMPLECNN_DATA or ./data)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.max_epochs = args.seeds[:1], min(args.max_epochs, 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = mnist.data_root(args.data_root)
    mnist.verify(root)
    print(experiments.machine())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"seeds {args.seeds}; target {args.target:.1%}; at most {args.max_epochs} epochs per run",
        flush=True,
    )
    print(f"fast recipe: {sc.FAST}; arithmetic here: {speed.resolve_precision(args.precision)}", flush=True)
    print(f"scheduling: {scheduling()}; load average {loadavg()}", flush=True)
    runs = []
    bench_start = time.perf_counter()
    for seed in args.seeds:
        order = [run_guide, run_fast] if seed % 2 == 0 else [run_fast, run_guide]
        for fn in order:
            before = loadavg()
            print(f"  seed {seed}, {fn.__name__[4:]}: load average {before}", flush=True)
            extra = dict(precision=args.precision) if fn is run_fast else {}
            run = fn(root, seed, args.target, args.max_epochs, args.train_subset, **extra)
            run["loadavg"] = (before, loadavg())
            runs.append(run)
    print()
    print(report(runs, args.target))
    print(
        "load average (1, 5, 15 min) before/after each run: "
        + "; ".join(f"{r['path']}/{r['seed']} {r['loadavg'][0]} -> {r['loadavg'][1]}" for r in runs)
    )
    print(f"benchmark took {time.perf_counter() - bench_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
