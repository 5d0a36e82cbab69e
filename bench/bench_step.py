"""Where the fast path's speed comes from: one training step of the Simple CNN, setting by setting.

Times a full training step (forward, loss, backward, Adam) on one fixed batch of random images
for every combination of

* dropout: ``nn.Dropout`` (masks from ``bernoulli_``) or ``cnnkit.speed.FastDropout`` (``rand >= p``);
* arithmetic: float32, or bfloat16 under ``torch.autocast`` (skipped, with a note, when the CPU
  has no bfloat16 hardware, where it would only be emulated);
* memory format: contiguous (NCHW) or ``channels_last`` (NHWC),

and prints milliseconds per step (the median of ``--repeats`` rounds) and the speed-up over the
original setting (``nn.Dropout``, float32, contiguous). The settings take turns within each
round, so a change in machine load affects them all alike.

Usage (from the repository root, with the environment active)::

    python bench/bench_step.py                 # batch 256, 5 rounds of 10 steps (about a minute)
    python bench/bench_step.py --threads 1 --batch-size 128
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit import experiments, speed


def build(fast_dropout: bool, channels_last: bool) -> nn.Module:
    torch.manual_seed(0)
    model = sc.SimpleCNN()  # nn.Dropout
    if fast_dropout:
        speed.fast_dropout(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train()


def make_step(model: nn.Module, bfloat16: bool, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="steps per setting and round (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    has_bf16 = speed.resolve_precision("auto") == "bfloat16"
    print(experiments.machine())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"batch {args.batch_size}" + ("" if has_bf16 else "; bfloat16 rows skipped (no bfloat16 hardware)")
    )
    x = torch.randn(args.batch_size, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (args.batch_size,), generator=torch.Generator().manual_seed(1))
    settings = [
        s for s in itertools.product([False, True], [False, True], [False, True]) if has_bf16 or not s[1]
    ]  # (fast dropout, bfloat16, channels_last)
    steps = {s: make_step(build(s[0], s[2]), s[1], x, y) for s in settings}
    for step in steps.values():  # warm up: the first steps set up the kernels
        for _ in range(3):
            step()
    times = {s: [] for s in settings}
    for _ in range(args.repeats):
        for s, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[s].append((time.perf_counter() - start) / args.steps * 1000)
    base = statistics.median(times[settings[0]])
    print(f"{'dropout':12s} {'arithmetic':10s} {'memory format':14s} {'ms/step':>8s} {'speed-up':>9s}")
    for (fast, bf16, cl), t in times.items():
        ms = statistics.median(t)
        print(
            f"{'FastDropout' if fast else 'nn.Dropout':12s} {'bfloat16' if bf16 else 'float32':10s} "
            f"{'channels_last' if cl else 'contiguous':14s} {ms:8.1f} {base / ms:8.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
