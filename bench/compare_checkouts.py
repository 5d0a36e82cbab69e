"""The course's fast path in two checkouts, side by side: did a change slow it down?

Runs ``bench_training.run_fast`` (one epoch of the default recipe with appendix B's speed-ups,
then the test accuracy) from this checkout and from another one, alternating which goes first,
for each seed, each run in a fresh Python process with one thread setting for both. Prints
seconds per epoch and test accuracy per run and the ratio of the medians::

    git worktree add /tmp/before <commit>          # the checkout to compare with
    python bench/compare_checkouts.py /tmp/before --seeds 0 1 2

Timings compare only within one run on one machine (it names the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# What each fresh process runs: the checkout's own bench_training.run_fast, one epoch.
PROBE = """
import importlib.util, json, sys, torch
torch.set_num_threads(int(sys.argv[3]))
spec = importlib.util.spec_from_file_location("bench_training", sys.argv[1] + "/bench/bench_training.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
subset = int(sys.argv[4]) or None
run = bench.run_fast(bench.mnist.data_root(None), int(sys.argv[2]), target=1.0, max_epochs=1, train_subset=subset)
print("RESULT " + json.dumps(run["epochs"][0]))
"""


def run(checkout: Path, seed: int, threads: int, train_subset: int = 0) -> dict:
    env_path = str(checkout / "src")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(checkout), str(seed), str(threads), str(train_subset)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": env_path, "OMP_NUM_THREADS": str(threads)},
        check=False,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    if result.returncode or line is None:
        raise SystemExit(f"{checkout} (seed {seed}) failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(line.removeprefix("RESULT "))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", type=Path, help="the other checkout (a git worktree)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=0, help="train on the first N images (0: all)")
    a = p.parse_args(argv)
    sys.path.insert(0, str(HERE / "src"))
    from cnnkit.experiments import machine

    print(machine(), flush=True)
    checkouts = {"this": HERE, "other": a.other.resolve()}
    rows = {name: [] for name in checkouts}
    for i, seed in enumerate(a.seeds):
        order = list(checkouts) if i % 2 == 0 else list(reversed(checkouts))
        for name in order:
            row = run(checkouts[name], seed, a.threads, a.train_subset)
            rows[name].append(row)
            print(
                f"seed {seed}  {name:5s}  {row['seconds']:6.2f} s/epoch  test {row['test_acc']:.2%}",
                flush=True,
            )
    median = {name: statistics.median(r["seconds"] for r in rs) for name, rs in rows.items()}
    print(
        f"median s/epoch: this {median['this']:.2f}, other {median['other']:.2f}; "
        f"this / other = {median['this'] / median['other']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
