"""The validation runs behind the reference recipe (README, "The reference model").

Trains the Simple CNN on the course's 48,000 training images (seed 0 split) with the reference
recipe or a variant of it, and prints validation accuracy after every epoch, for the model and
for exponential moving averages of its weights (``torch.optim.swa_utils.AveragedModel``, batch
norm statistics averaged too). The test set is never loaded: a recipe is chosen here, and only
the chosen one is trained on all 60,000 images and tested (``python -m simplecnn train
--recipe reference --val-fraction 0``).

Usage (from the repository root, with the environment active; about 15 minutes per 30 epochs
on one thread of a small machine)::

    python bench/reference_search.py                       # the reference recipe itself
    python bench/reference_search.py --epochs 60
    python bench/reference_search.py --elastic 34 --rotation 0 --scale 0 --epochs 40
    python bench/reference_search.py --label-smoothing 0 --out runs/search-ls0.json
    python bench/reference_search.py --weight-decay 1e-4 --seed 1
    python bench/reference_search.py --clean-epochs 3 --seed 2
    python bench/reference_search.py --seed 1 --save runs/search/teacher1.pt    # (and seeds 0, 2)
    python bench/reference_search.py --seed 3 --teachers runs/search/teacher{0,1,2}.pt
    python bench/reference_search.py --label-smoothing 0.2
    python bench/reference_search.py --adamw --weight-decay 0.05     # decoupled weight decay
    python bench/reference_search.py --mixup 0.2                      # mixup, Beta(0.2, 0.2)
    python bench/reference_search.py --sam 0.05                       # sharpness-aware steps

After the last epoch it also prints the validation accuracy after batch norm's running statistics
are recomputed on the undistorted training images (``torch.optim.swa_utils.update_bn``), since
the model is tested on undistorted digits.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

import simplecnn as sc
from cnnkit import augment, checkpoints, mnist, speed

DISTORTION = asdict(augment.REFERENCE.augment)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=augment.REFERENCE.epochs)
    p.add_argument("--shift", type=float, default=augment.REFERENCE.max_shift, help="pixels")
    p.add_argument("--rotation", type=float, default=DISTORTION["max_rotation"], help="degrees")
    p.add_argument("--scale", type=float, default=DISTORTION["max_scale"], help="fraction")
    p.add_argument("--elastic", type=float, default=DISTORTION["elastic"], help="pixels")
    p.add_argument("--batch-size", type=int, default=augment.REFERENCE.batch_size)
    p.add_argument("--lr", type=float, default=augment.REFERENCE.lr)
    p.add_argument("--beta2", type=float, default=augment.REFERENCE.betas[1], help="Adam's beta2")
    p.add_argument(
        "--weight-decay",
        type=float,
        default=augment.REFERENCE.weight_decay,
        help="Adam's L2 term (with --adamw: AdamW's decay)",
    )
    p.add_argument("--adamw", action="store_true", help="decoupled weight decay (AdamW) instead of L2")
    p.add_argument("--mixup", type=float, default=0.0, help="mixup's Beta(alpha, alpha); 0: none")
    p.add_argument("--sam", type=float, default=0.0, help="sharpness-aware minimisation's rho; 0: none")
    p.add_argument("--label-smoothing", type=float, default=augment.REFERENCE.label_smoothing)
    p.add_argument("--precision", choices=speed.PRECISIONS, default="auto")
    p.add_argument(
        "--clean-epochs",
        type=int,
        default=0,
        help="train the last N epochs on undistorted images (the schedule is unchanged)",
    )
    p.add_argument("--ema", type=float, nargs="*", default=[0.999, 0.9998], help="decays")
    p.add_argument("--teachers", nargs="*", default=[], help="saved models (--save) to learn from")
    p.add_argument("--distill", type=float, default=0.5, help="with --teachers: their share of each target")
    p.add_argument("--save", help="write the trained model here (a checkpoint, for --teachers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-subset", type=int, help="only the first N training images (a smoke test)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-root")
    p.add_argument("--out", help="write the per-epoch rows here as JSON")
    return p.parse_args(argv)


def train_epoch(model, batches, optimizer, loss_fn, scheduler, after_step) -> float:
    """sc.train_epoch's steps for targets that may be probabilities (distillation, mixup);
    returns the mean training loss."""
    model.train()
    total, seen = 0.0, 0
    for x, y in batches:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        after_step.update(1)
        total, seen = total + loss.item() * len(x), seen + len(x)
    return total / seen


class Taught:
    """Knowledge distillation (Hinton, Vinyals and Dean, 2015): batches whose targets mix the
    one-hot label with the teachers' averaged probabilities for the same distorted image."""

    def __init__(self, batches, teachers, share, precision):
        self.batches, self.teachers, self.share = batches, teachers, share
        self.low_precision = speed.resolve_precision(precision) == "bfloat16"

    def __len__(self):
        return len(self.batches)

    @torch.no_grad()  # not inference_mode: the loss keeps the targets for its backward pass
    def taught(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.low_precision):
            return torch.stack([t(x).float().softmax(1) for t in self.teachers]).mean(0)

    def __iter__(self):
        for x, y in self.batches:
            label = torch.nn.functional.one_hot(y, sc.NUM_CLASSES).float()
            yield x, (1 - self.share) * label + self.share * self.taught(x)


class Mixed:
    """mixup (Zhang et al., 2018): each batch blended with a shuffled copy of itself, by a share
    drawn from Beta(alpha, alpha), and the targets blended alike. The permutation comes from
    ``generator``, the share from torch's global random numbers (``torch.manual_seed``)."""

    def __init__(self, batches, alpha, generator):
        self.batches, self.generator = batches, generator
        self.beta = torch.distributions.Beta(alpha, alpha)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for x, y in self.batches:
            share = self.beta.sample()
            perm = torch.randperm(len(y), generator=self.generator)
            label = y if y.dim() > 1 else torch.nn.functional.one_hot(y, sc.NUM_CLASSES).float()
            yield share * x + (1 - share) * x[perm], share * label + (1 - share) * label[perm]


def optimizer_for(model, recipe, steps_per_epoch, epochs, decoupled=False):
    """The recipe's Adam and one-cycle schedule; with ``decoupled``, AdamW (Loshchilov and Hutter,
    2019): the weight decay shrinks the weights directly instead of joining the gradient that
    Adam rescales (PyTorch's AdamW is this Adam with ``decoupled_weight_decay``)."""
    optimizer, scheduler = sc.make_optimizer(model, recipe, steps_per_epoch, epochs)
    for group in optimizer.param_groups:
        group["decoupled_weight_decay"] = decoupled
    return optimizer, scheduler


class SharpnessAware:
    """Sharpness-aware minimisation (Foret et al., 2021) around Adam: each step moves the weights
    ``rho`` uphill along the normalised gradient, takes the gradient there on the same batch,
    moves back, and lets Adam step with that gradient. Twice the work per step. It wraps the
    optimizer that ``train_epoch`` steps, so the batch is remembered from the forward pass
    and the loss."""

    def __init__(self, model, optimizer, loss_fn, rho):
        self.model, self.base, self.rho, self.batch = model, optimizer, rho, [None, None]
        self.device = sc.model_device(model)
        self.param_groups = optimizer.param_groups
        self.norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        model.register_forward_pre_hook(lambda _, args: self.batch.__setitem__(0, args[0]))
        self.plain_loss = loss_fn

        def loss(logits, y):
            self.batch[1] = y
            return loss_fn(logits, y)

        self.loss_fn = loss

    def zero_grad(self, set_to_none=True):
        self.base.zero_grad(set_to_none)

    def step(self):
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.stack([p.grad.norm() for p in params]).norm()
        uphill = [p.grad * (self.rho / (norm + 1e-12)) for p in params]
        here = [p.detach().clone() for p in params]
        momenta = [m.momentum for m in self.norms]
        for m in self.norms:  # the second pass leaves batch norm's running statistics alone
            m.momentum = 0.0
        with torch.no_grad():
            torch._foreach_add_(params, uphill)
        self.base.zero_grad(set_to_none=True)
        x, y = self.batch
        loss = self.plain_loss(self.model(x), y)  # the model's own mixed precision (speed.speed_up)
        loss.backward()
        with torch.no_grad():  # back exactly where the step started
            torch._foreach_copy_(params, here)
        for m, momentum in zip(self.norms, momenta):
            m.momentum = momentum
        self.base.step()


def main(argv=None) -> int:
    a = parse(argv)
    if a.teachers and a.clean_epochs:
        raise SystemExit("--clean-epochs and --teachers do not combine (clean epochs have no teachers)")
    if a.adamw and not a.weight_decay:
        raise SystemExit("--adamw changes how the weight decay is applied: give --weight-decay too")
    if a.save and a.out and Path(a.out).resolve() == Path(a.save).with_suffix(".json").resolve():
        raise SystemExit(f"--out {a.out} would overwrite the record that --save writes beside {a.save}")
    torch.set_num_threads(a.threads)
    data = mnist.load(a.data_root, val_fraction=0.2, seed=0, train_subset=a.train_subset)
    recipe = replace(augment.REFERENCE, epochs=a.epochs, max_shift=a.shift, batch_size=a.batch_size,
                     lr=a.lr, betas=(augment.REFERENCE.betas[0], a.beta2), weight_decay=a.weight_decay,
                     label_smoothing=a.label_smoothing)  # fmt: skip
    print(recipe, f"rotation {a.rotation}, scale {a.scale}, elastic {a.elastic}", flush=True)
    torch.manual_seed(a.seed)
    model = speed.speed_up(sc.SimpleCNN(), a.precision)
    generator = torch.Generator().manual_seed(a.seed)
    distort = augment.random_affine(a.shift, a.rotation, a.scale, a.elastic, generator)
    train_batches = sc.Batches(data.x_train, data.y_train, recipe.batch_size, True, generator, distort)
    # the same generator: with no clean epochs a run draws exactly what it drew before
    clean_batches = sc.Batches(data.x_train, data.y_train, recipe.batch_size, True, generator)
    val_batches = sc.Batches(data.x_val, data.y_val, sc.EVAL_BATCH_SIZE)
    if a.teachers:  # the student learns from their averaged answers on its distorted images
        teachers = [checkpoints.load(path).to(memory_format=torch.channels_last) for path in a.teachers]
        probs = torch.stack([sc.predict(t, data.x_val) for t in teachers])
        wrong = probs.argmax(2) != data.y_val  # (teachers, images)
        print(
            f"teachers' validation mistakes: each {wrong.sum(1).tolist()}, made by all {wrong.all(0).sum()}"
        )
        print(
            f"teachers' averaged validation accuracy {(probs.mean(0).argmax(1) == data.y_val).double().mean():.4f}"
        )
        train_batches = Taught(train_batches, teachers, a.distill, a.precision)
    if a.mixup:
        train_batches = Mixed(train_batches, a.mixup, generator)
    optimizer, scheduler = optimizer_for(model, recipe, len(train_batches), a.epochs, a.adamw)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    averages = {
        d: AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(d), use_buffers=True) for d in a.ema
    }

    class AfterEachStep:  # this file's train_epoch calls after_step.update(1) after every step
        def update(self, _):
            for average in averages.values():
                average.update_parameters(model)

    if a.sam:
        optimizer = SharpnessAware(model, optimizer, loss_fn, a.sam)
        loss_fn = optimizer.loss_fn
    rows, start = [], time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        batches = clean_batches if epoch > a.epochs - a.clean_epochs else train_batches
        train_loss = train_epoch(model, batches, optimizer, loss_fn, scheduler, AfterEachStep())
        row = dict(epoch=epoch, train_loss=train_loss, val_acc=sc.evaluate(model, val_batches)[1])
        row.update({f"ema{d}": sc.evaluate(avg.module, val_batches)[1] for d, avg in averages.items()})
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        print(
            "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
            flush=True,
        )
    if a.save:  # as trained, before the statistics below are recomputed
        checkpoints.save(model, a.save, rows, args=vars(a), recipe=str(recipe))
    # batch norm's running statistics, recomputed on undistorted images (dropout as in training)
    update_bn((x for x, _ in clean_batches), model)
    recal = dict(bn_clean=sc.evaluate(model, val_batches)[1])
    for d, avg in averages.items():
        update_bn((x for x, _ in clean_batches), avg.module)
        recal[f"ema{d}_bn_clean"] = sc.evaluate(avg.module, val_batches)[1]
    print("  ".join(f"{k} {v:.4f}" for k, v in recal.items()), flush=True)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(dict(args=vars(a), rows=rows, after=recal), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
