"""Exercise 7.2: the reader writes the loop that trains the Simple CNN.

Proof 3 for the loop: from one seed, on the same small batches, the reader's ``train_epoch``
and ``simplecnn.train_epoch`` take the same three Adam steps under a one-cycle schedule (the same
losses, returned, and the same weights). When they differ the check names the first step whose
loss disagrees and, for the usual slips (no ``zero_grad``, the scheduler before the optimiser),
which one it was. The helpers that keep the course's loop out of reach are chapter 7's model
check's (:mod:`cnnkit.exercises.ch07_build`).
"""

from __future__ import annotations

import contextlib
import warnings

import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit.exercises import NotAnswered, Wrong, exercise, function
from cnnkit.exercises.ch07_build import NOTEBOOK, SEED, _course_model, _run

LOOP_SOLUTION = """
def train_epoch(model, batches, optimizer, loss_fn, scheduler=None):
    model.train()  # dropout on; batch norm uses each batch's statistics
    losses = []
    for x, y in batches:
        optimizer.zero_grad()  # forget the previous step's gradients
        logits = model(x)  # forward pass
        loss = loss_fn(logits, y)  # the loss against the labels
        loss.backward()  # back-propagation: a gradient for every parameter
        optimizer.step()  # move every parameter against its gradient
        if scheduler is not None:
            scheduler.step()  # the next step's learning rate
        losses.append(loss.item())
    return losses
"""

LOOP_MISTAKES = {
    "zero_grad missing": ("optimizer.zero_grad()  #", "pass  #", "the gradients pile up from step to step"),
    "train mode missing": ("model.train()", "pass", "the model ran in evaluation mode: call model.train()"),
    "scheduler before the optimiser": (
        "        optimizer.step()  # move every parameter against its gradient\n"
        "        if scheduler is not None:\n"
        "            scheduler.step()  # the next step's learning rate\n",
        "        if scheduler is not None:\n            scheduler.step()\n        optimizer.step()\n",
        "the scheduler steps before the optimiser",
    ),
    "scheduler never stepped": ("scheduler.step()", "pass", "scheduler.step() ran 0 times for 3 batches"),
    "zero_grad after backward": (
        "        optimizer.zero_grad()  # forget the previous step's gradients\n"
        "        logits = model(x)  # forward pass\n"
        "        loss = loss_fn(logits, y)  # the loss against the labels\n"
        "        loss.backward()  # back-propagation: a gradient for every parameter\n",
        "        logits = model(x)\n        loss = loss_fn(logits, y)\n        loss.backward()\n"
        "        optimizer.zero_grad()\n",
        "the weights did not change",
    ),
    "only the last loss": ("return losses", "return [loss.item()]", "3 steps here, and your list has 1"),
    "another loss": ("loss.item())", "logits.mean().item())", "the loss you return for step 1 is"),
    "a wrapper around sc.train_epoch": (
        LOOP_SOLUTION.strip(),
        "def train_epoch(model, batches, optimizer, loss_fn, scheduler=None):\n"
        "    return [sc.train_epoch(model, batches, optimizer, loss_fn, scheduler)[0]] * len(batches)",
        "uses the course's sc.train_epoch: write it yourself, step by step",
    ),
}


def _loop_setup():
    """The course's network, three small batches, Adam and a one-cycle schedule over 3 steps.
    The model starts in evaluation mode: the loop must switch it to training mode itself."""
    model = _course_model().eval()
    g = torch.Generator().manual_seed(2)
    batches = [
        (torch.randn(16, 1, 28, 28, generator=g), torch.randint(10, (16,), generator=g)) for _ in range(3)
    ]
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=len(batches))
    return model, batches, optimizer, scheduler


class _LossNoter(nn.Module):
    def __init__(self):
        super().__init__()
        self.loss_fn, self.losses = nn.CrossEntropyLoss(), []

    def forward(self, logits, y):
        loss = self.loss_fn(logits, y)
        self.losses.append(loss.item())
        return loss


def _course_steps():
    """Losses and weights after ``sc.train_epoch`` runs the three steps."""
    model, batches, optimizer, scheduler = _loop_setup()
    noter = _LossNoter()
    torch.manual_seed(SEED)  # the dropout masks
    sc.train_epoch(model, batches, optimizer, noter, scheduler)
    return noter.losses, [p.detach().clone() for p in model.parameters()]


def _plain_steps(mistake: str):
    """The weights after the three steps taken with one of the usual mistakes."""
    model, batches, optimizer, scheduler = _loop_setup()
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    torch.manual_seed(SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x, y in batches:
            if mistake != "no zero_grad":
                optimizer.zero_grad()
            if mistake == "scheduler first":
                scheduler.step()
            loss_fn(model(x), y).backward()
            optimizer.step()
            if mistake != "scheduler first":
                scheduler.step()
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b) -> bool:
    return all(torch.allclose(p, q, rtol=1e-5, atol=1e-6) for p, q in zip(a, b))


def check_loop(train_epoch) -> str:
    """Proof 3 for the reader's loop: the same steps as ``sc.train_epoch`` from one seed."""
    function(train_epoch, "train_epoch(model, batches, optimizer, loss_fn, scheduler=None)")
    model, batches, optimizer, scheduler = _loop_setup()
    start = [p.detach().clone() for p in model.parameters()]
    modes = []
    model.register_forward_pre_hook(lambda module, inputs: modes.append(module.training))
    torch.manual_seed(SEED)  # the dropout masks, as in _course_steps
    with warnings.catch_warnings():  # PyTorch warns when a scheduler steps before the optimiser
        warnings.simplefilter("ignore")
        returned = _run("your train_epoch", train_epoch, model, batches, optimizer, _LossNoter(), scheduler)
    weights = [p.detach() for p in model.parameters()]
    if not returned and _same(weights, start):
        raise NotAnswered("the loop does not train yet")
    course_losses, course_weights = _course_steps()
    if any(not training for training in modes):
        raise Wrong(
            "the model ran in evaluation mode: call model.train() before the loop, so that dropout "
            "drops and batch norm uses each batch's statistics (the model may arrive in evaluation mode)."
        )
    steps = scheduler.last_epoch
    if steps != len(batches):
        raise Wrong(
            f"scheduler.step() ran {steps} times for {len(batches)} batches: call it once per batch, "
            "after optimizer.step(), when a scheduler is given."
        )
    if not _same(weights, course_weights):
        if _same(weights, start):
            hint = (
                "the weights did not change: call loss.backward() and then optimizer.step() for every batch."
            )
        elif _same(weights, _plain_steps("no zero_grad")):
            hint = (
                "the gradients pile up from step to step: call optimizer.zero_grad() for every batch, "
                "before loss.backward()."
            )
        elif _same(weights, _plain_steps("scheduler first")):
            hint = (
                "the scheduler steps before the optimiser, so each step used the next step's learning "
                "rate: call scheduler.step() after optimizer.step()."
            )
        else:
            hint = "for each batch: zero_grad, forward, loss, backward, optimizer.step(), then the scheduler's step."
        noted = []
        with contextlib.suppress(Exception):  # the losses the loop returned, if they are numbers
            noted = [float(v) for v in returned]
        for k, (a, b) in enumerate(zip(noted, course_losses), 1):
            if abs(a - b) > 1e-5 * max(1.0, abs(b)):
                raise Wrong(f"step {k}'s loss is {a:.6f} where sc.train_epoch's is {b:.6f}: {hint}")
        raise Wrong(f"after {len(batches)} steps your weights differ from those of sc.train_epoch: {hint}")
    try:
        losses = [float(v) for v in returned]
    except (TypeError, ValueError):
        raise Wrong(f"return the list of the steps' losses (numbers); got {returned!r}.") from None
    if len(losses) != len(batches):
        raise Wrong(f"return one loss per step: {len(batches)} steps here, and your list has {len(losses)}.")
    for k, (a, b) in enumerate(zip(losses, course_losses), 1):
        if abs(a - b) > 1e-5 * max(1.0, abs(b)):
            raise Wrong(
                f"the training is right, but the loss you return for step {k} is {a:.6f} where the step's "
                f"loss was {b:.6f}: append loss.item() after each step."
            )
    return "Your loop takes the same steps as sc.train_epoch: the same losses and the same weights."


@exercise(
    "7.2",
    NOTEBOOK,
    "your training loop",
    kind="code",
    hint="model.train() once; then for each batch: optimizer.zero_grad(), logits = model(x), "
    "loss = loss_fn(logits, y), loss.backward(), optimizer.step(), scheduler.step() if there is a "
    "scheduler, and losses.append(loss.item()).",
    solution=LOOP_SOLUTION,
    mistakes=LOOP_MISTAKES,
)
def _(train_epoch):
    return check_loop(train_epoch)
