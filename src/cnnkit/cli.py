"""The command line: train the Simple CNN, evaluate a checkpoint, export it for the browser.

python -m cnnkit train --epochs 1          (installed: simplecnn train --epochs 1)
python -m cnnkit evaluate runs/simplecnn.pt
python -m cnnkit export-weights            (the reference checkpoint -> chapter 8's digit lab)
python -m cnnkit export-training-data      (MNIST -> the digits of chapter 7's training lab)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace

import torch

import simplecnn as sc
from cnnkit import augment, checkpoints, experiments, mnist, speed


def _device(name: str | None) -> torch.device:
    if name is None or name == "auto":
        return sc.default_device()
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: PyTorch sees no CUDA GPU on this machine (use --device cpu)")
    return device


def _train(args) -> int:
    recipe = augment.RECIPES[args.recipe]
    overrides = dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size)
    recipe = replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
    device = _device(args.device)  # before loading data: a bad option fails at once
    if args.threads:
        torch.set_num_threads(args.threads)
    precision = speed.resolve_precision(args.precision, device)
    print(f"recipe: {recipe}", flush=True)
    print(f"device: {device}; arithmetic: {precision}; {torch.get_num_threads()} CPU threads", flush=True)
    data = mnist.load(
        args.data_root, val_fraction=args.val_fraction, seed=args.seed, train_subset=args.train_subset
    )
    print("data: " + ", ".join(f"{k} {v:,}" for k, v in data.sizes().items()), flush=True)
    torch.manual_seed(args.seed)
    model = speed.speed_up(sc.SimpleCNN().to(device), args.precision)  # the same network, faster (appendix B)
    start = time.perf_counter()
    history = sc.train(
        model,
        data,
        recipe,
        seed=args.seed,
        device=device,
        progress=not args.no_progress,
        log=lambda s: print(s, flush=True),
        after_epoch=experiments.measure_test(data.x_test, data.y_test) if args.test_each_epoch else None,
    )
    train_seconds = time.perf_counter() - start
    test_loss, test_acc = sc.evaluate(model, sc.Batches(data.x_test, data.y_test, sc.EVAL_BATCH_SIZE))
    print(
        f"test accuracy {test_acc:.2%} (loss {test_loss:.4f}) on {len(data.y_test):,} images; "
        f"trained in {train_seconds:.0f} s",
        flush=True,
    )
    out = checkpoints.save(
        model,
        args.out,
        history,
        recipe=asdict(recipe),
        precision=precision,
        device=str(device),
        seed=args.seed,
        train_subset=args.train_subset,
        val_fraction=args.val_fraction,
        test_acc=test_acc,
        test_loss=test_loss,
        train_seconds=train_seconds,
        threads=torch.get_num_threads(),
        torch=torch.__version__,
    )
    print(f"saved {out} and {out.with_suffix('.json')}")
    return 0


def _evaluate(args) -> int:
    device = _device(args.device)
    model = checkpoints.load(args.checkpoint, expected_sha256=args.sha256).to(device)
    data = mnist.load(args.data_root)
    loss, acc = sc.evaluate(model, sc.Batches(data.x_test, data.y_test, sc.EVAL_BATCH_SIZE))
    print(f"test accuracy {acc:.2%} (loss {loss:.4f}) on {len(data.y_test):,} images")
    return 0


def _export_weights(args) -> int:
    from cnnkit import digitlab

    digitlab.export(
        args.checkpoint,
        args.out_dir,
        encoding=args.encoding,
        data_root=args.data_root,
        test_images=args.test_images,
    )
    return 0


def _export_training_data(args) -> int:
    from cnnkit import traininglab

    traininglab.export_data(args.out, root=args.data_root)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="simplecnn", description="Train, evaluate or export the Simple CNN on MNIST."
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the Simple CNN on MNIST and save a checkpoint")
    t.add_argument(
        "--recipe",
        choices=sorted(augment.RECIPES),
        default="fast",
        help="'fast' (default: one epoch of one-cycle Adam, label smoothing, shifts), 'guide' "
        "(the original: constant Adam) or 'reference' (the reference checkpoint's: 30 epochs, "
        "rotations, zoom and elastic distortions)",
    )
    t.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    t.add_argument("--lr", type=float, help="(peak) learning rate (default: the recipe's)")
    t.add_argument("--batch-size", type=int, help="mini-batch size (default: the recipe's)")
    t.add_argument(
        "--precision",
        choices=speed.PRECISIONS,
        default="auto",
        help="training arithmetic (default 'auto': bfloat16 where the hardware has it, else float32)",
    )
    t.add_argument("--device", help="'cpu', 'cuda' or 'auto' (default: a CUDA GPU if there is one)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="validation share of the 60,000 training images (default 0.2; 0: train on all)",
    )
    t.add_argument("--train-subset", type=int, help="train on only the first N training images")
    t.add_argument("--data-root", help=f"data folder (default ${mnist.DATA_ENV} or ./data)")
    t.add_argument(
        "--out",
        default="runs/simplecnn.pt",
        help="checkpoint path (default runs/simplecnn.pt); the record goes beside it as .json",
    )
    t.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    t.add_argument(
        "--test-each-epoch",
        action="store_true",
        help="also measure (never tune on) test accuracy after every epoch",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on the MNIST test set")
    e.add_argument("checkpoint")
    e.add_argument("--sha256", help="refuse the file unless its SHA-256 matches")
    e.add_argument("--device", help="'cpu', 'cuda' or 'auto' (default)")
    e.add_argument("--data-root", help=f"data folder (default ${mnist.DATA_ENV} or ./data)")
    e.set_defaults(func=_evaluate)
    x = sub.add_parser(
        "export-weights",
        help="write the reference checkpoint's weights for chapter 8's digit lab (run it after "
        "every new reference checkpoint)",
    )
    x.add_argument("--checkpoint", help="a checkpoint file (default: the reference checkpoints/simplecnn.pt)")
    x.add_argument(
        "--encoding",
        choices=("int8", "float16"),
        default="int8",
        help="'int8' (default: the big weight tensors as int8 with a scale per output channel, "
        "the rest float16) or 'float16' (every tensor)",
    )
    x.add_argument("--out-dir", help="folder for digitlab-weights.bin/.json (default: cnnkit/static)")
    x.add_argument("--data-root", help=f"data folder (default ${mnist.DATA_ENV} or ./data)")
    x.add_argument(
        "--test-images",
        type=int,
        help="measure the accuracy cost on the first N test images (default: all 10,000)",
    )
    x.set_defaults(func=_export_weights)
    d = sub.add_parser(
        "export-training-data",
        help="write the digits of chapter 7's training lab (6,000 training and 1,000 test digits of MNIST)",
    )
    d.add_argument("--out", help="the file to write (default: cnnkit/static/traininglab-mnist.bin)")
    d.add_argument("--data-root", help=f"data folder (default ${mnist.DATA_ENV} or ./data)")
    d.set_defaults(func=_export_training_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (mnist.DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
