"""Exercises of appendix A, CIFAR-10 (notebook A-cifar10)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnkit import cifar
from cnnkit.exercises import Wrong, answered, exercise, function

NOTEBOOK = "A-cifar10"


def _side(size: int, padding: int) -> int:
    """Side length after a 3x3 convolution (stride 1) with ``padding``, then a 2x2 pooling."""
    return (size + 2 * padding - 3 + 1) // 2


@exercise(
    "A.1",
    NOTEBOOK,
    "the network without padding",
    hint="a 3×3 convolution without padding trims one pixel from each side (32 → 30); each 2×2 "
    "pooling halves and rounds down; fc1 gets 32 channels × side × side.",
    solution="""
        side_after_conv1 = 30
        fc1_inputs = 32 * 6 * 6
    """,
    wrong=[
        ("side_after_conv1 = 32\nfc1_inputs = 2048", "32 is the side with padding 1"),
        ("side_after_conv1 = 28\nfc1_inputs = 32 * 5 * 5", "28 pixels: a 3×3 kernel fits"),
        ("side_after_conv1 = 30\nfc1_inputs = 32 * 7 * 7", "pooling rounds 13 / 2 down to 6"),
        ("side_after_conv1 = 30\nfc1_inputs = 16 * 6 * 6", "come from conv2, which has 32 filters"),
        ("side_after_conv1 = 30\nfc1_inputs = 2048", "2048 is fc1's input with padding"),
    ],
)
def _(side_after_conv1, fc1_inputs):
    side = int(answered(side_after_conv1, "the side length"))
    conv = nn.Conv2d(3, 16, kernel_size=3)  # no padding
    expected_side = conv(torch.zeros(1, 3, 32, 32)).shape[-1]
    if side == 32:
        raise Wrong("32 is the side with padding 1; without padding a 3×3 kernel fits 32 − 3 + 1 times.")
    if side != expected_side:
        raise Wrong(f"{side} pixels: a 3×3 kernel fits 32 − 3 + 1 times along a side of 32.")
    n = int(answered(fc1_inputs, "the number of inputs of fc1"))
    side2 = _side(_side(32, 0), 0)
    if n == 32 * 8 * 8:
        raise Wrong("2048 is fc1's input with padding; without it every convolution shrinks the maps too.")
    if n == 32 * 7 * 7:
        raise Wrong("the second convolution gives 13 × 13, and pooling rounds 13 / 2 down to 6, not up to 7.")
    if n == 16 * side2 * side2:
        raise Wrong("the maps that reach fc1 come from conv2, which has 32 filters, not 16.")
    if n != 32 * side2 * side2:
        raise Wrong(
            f"{n} inputs: follow the side through 32 → conv → pool → conv → pool (30, 15, 13, 6), "
            "then multiply by conv2's 32 channels."
        )


@exercise(
    "A.2",
    NOTEBOOK,
    "bigger images",
    hint="with padding 1 only the two poolings shrink the maps: 64 / 4 = 16 per side, 32 channels; "
    "fc1 has one weight per input for each of its 128 units, and 128 biases.",
    solution="""
        fc1_inputs_64 = 32 * 16 * 16
        fc1_params_64 = 32 * 16 * 16 * 128 + 128
    """,
    wrong=[
        ("fc1_inputs_64 = 2048\nfc1_params_64 = 2048 * 128 + 128", "2048 is fc1's input for 32×32 images"),
        ("fc1_inputs_64 = 32768\nfc1_params_64 = 32768 * 128 + 128", "there are two 2×2 poolings"),
        ("fc1_inputs_64 = 8192\nfc1_params_64 = 8192 * 128", "counts the weights only"),
        ("fc1_inputs_64 = 8192\nfc1_params_64 = 8192 * 10 + 10", "fc1 maps 8,192 inputs to 128 units"),
    ],
)
def _(fc1_inputs_64, fc1_params_64):
    fc1 = cifar.CifarCNN(image_size=64).classifier.fc1
    n = int(answered(fc1_inputs_64, "the number of inputs"))
    if n == 2048:
        raise Wrong(
            "2048 is fc1's input for 32×32 images; with 64×64 images every map is twice as wide and high."
        )
    if n == 32 * 32 * 32:
        raise Wrong("there are two 2×2 poolings, so the side shrinks from 64 to 16, not to 32.")
    if n != fc1.in_features:
        raise Wrong(f"{n} inputs: flatten gives channels × height × width of conv2's pooled maps.")
    params = int(answered(fc1_params_64, "the number of parameters"))
    expected = sum(p.numel() for p in fc1.parameters())
    if params == fc1.weight.numel():
        raise Wrong(f"{params:,} counts the weights only; each of the 128 units also has a bias.")
    if params != expected:
        raise Wrong(f"{params:,} parameters: fc1 maps {n:,} inputs to 128 units, each with a bias.")
    return f"(four times the parameters of fc1 for 32×32 images: {expected:,} against 262,272)"


# ---------------------------------------------------------------------------------------------
# A.3: the published loop, corrected
# ---------------------------------------------------------------------------------------------


class _ScriptedBatches:
    """A tiny data set whose label is hidden in the input; it counts the epochs started."""

    def __init__(self, batches: int = 3, batch_size: int = 4):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for _ in range(batches):
            y = torch.randint(0, 10, (batch_size,), generator=g)
            self.items.append((y.float().unsqueeze(1), y))
        self.epochs_started = 0

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        self.epochs_started += 1
        return iter(self.items)


class _ScriptedModel(nn.Module):
    """Right about every image in the first epoch and wrong about every image after it, so a
    correct loop reports accuracies 1, 0, 0, ... It remembers the gradient that one batch alone
    gives its only parameter (a bias for each class), for the optimiser to compare."""

    def __init__(self, batches: _ScriptedBatches):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(10))
        self.batches = batches
        self.expected_grad = None

    def forward(self, x):
        y = x[:, 0].long()
        target = y if self.batches.epochs_started <= 1 else (y + 1) % 10
        logits = 4.0 * F.one_hot(target, 10).float() + self.bias
        with torch.no_grad():
            self.expected_grad = (logits.softmax(1) - F.one_hot(y, 10).float()).mean(0)
        return logits


class _CheckingSGD(torch.optim.SGD):
    """SGD with learning rate 0 that checks, at every step, that the gradient is this batch's."""

    def __init__(self, model: _ScriptedModel):
        super().__init__(model.parameters(), lr=0.0)
        self.model = model
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        grad = self.model.bias.grad
        if grad is None or self.model.expected_grad is None:
            raise Wrong("optimizer.step() ran without a gradient: call loss.backward() before it.")
        if not torch.allclose(grad, self.model.expected_grad, atol=1e-5):
            raise Wrong(
                f"at step {self.steps} the gradient is not that batch's gradient: gradients add up "
                "from step to step unless you call optimizer.zero_grad() in every step."
            )
        return super().step(closure)


@exercise(
    "A.3",
    NOTEBOOK,
    "the published loop, corrected",
    kind="code",
    hint="loop over range(num_epochs); inside it set correct and total to 0, then for every batch: "
    "zero the gradients, forward, loss (nn.CrossEntropyLoss), backward, step, and count; after the "
    "batches append correct / total.",
    solution="""
        def train_epochs(model, batches, optimizer, num_epochs):
            loss_fn = nn.CrossEntropyLoss()
            accuracies = []
            for epoch in range(num_epochs):
                correct, total = 0, 0
                for images, labels in batches:
                    optimizer.zero_grad()
                    outputs = model(images)
                    loss = loss_fn(outputs, labels)
                    loss.backward()
                    optimizer.step()
                    correct += (outputs.argmax(1) == labels).sum().item()
                    total += labels.size(0)
                accuracies.append(correct / total)
            return accuracies
    """,
    mistakes={
        "the published bugs": (
            ("range(num_epochs)", "        correct, total = 0, 0\n"),
            ("range(5)", ""),
            "A counter must be set to 0 before the first `+=` adds to it",
        ),
        "counters set once": (
            ("    accuracies = []\n", "        correct, total = 0, 0\n"),
            ("    accuracies = []\n    correct, total = 0, 0\n", ""),
            "the counts carry over from earlier epochs",
        ),
        "the epoch count ignored": ("range(num_epochs)", "range(5)", "not a fixed number"),
        "gradients never reset": ("optimizer.zero_grad()", "pass", "unless you call optimizer.zero_grad()"),
        "counts, not accuracies": ("append(correct / total)", "append(correct)", "are larger than 1"),
    },
)
def _(train_epochs):
    function(train_epochs, "train_epochs(model, batches, optimizer, num_epochs)")
    for num_epochs in (3, 2):
        batches = _ScriptedBatches()
        model = _ScriptedModel(batches)
        optimizer = _CheckingSGD(model)
        try:
            result = train_epochs(model, batches, optimizer, num_epochs)
        except Wrong:
            raise
        except Exception as err:
            hint = ""
            if isinstance(err, (NameError, UnboundLocalError)):
                hint = " A counter must be set to 0 before the first `+=` adds to it."
            raise Wrong(f"the function stopped with {type(err).__name__}: {err}.{hint}") from err
        result = answered(result, "what train_epochs returns")
        accuracies = [float(a) for a in result]
        if batches.epochs_started != num_epochs:
            raise Wrong(
                f"asked for {num_epochs} epochs, the loop went over the data {batches.epochs_started} "
                "times: loop over range(num_epochs), not a fixed number."
            )
        if optimizer.steps != num_epochs * len(batches):
            raise Wrong(
                f"{optimizer.steps} optimiser steps for {num_epochs} epochs of {len(batches)} batches: "
                "call optimizer.step() once per batch."
            )
        if len(accuracies) != num_epochs:
            raise Wrong(f"return one accuracy per epoch: {num_epochs} epochs, {len(accuracies)} numbers.")
        expected = [1.0] + [0.0] * (num_epochs - 1)
        if any(a > 1 for a in accuracies):
            raise Wrong(
                f"the accuracies {accuracies} are larger than 1: divide the correct count by the "
                "number of images seen in that epoch (total)."
            )
        if accuracies[0] != 1.0:
            raise Wrong(
                f"epoch 1 reports {accuracies[0]:.0%}, but the model got every image of it right: "
                "count (outputs.argmax(1) == labels) over all images of the epoch."
            )
        if accuracies != expected:
            raise Wrong(
                f"epoch 2 reports {accuracies[1]:.0%}, but the model got every image of that epoch "
                "wrong: the counts carry over from earlier epochs. Set correct and total to 0 at "
                "the start of every epoch."
            )
    return "(on a model that is right about every image in epoch 1 and wrong in every later epoch)"


@exercise(
    "A.4",
    NOTEBOOK,
    "dropout in the classifier",
    kind="code",
    hint="cifar.CifarCNN takes dropout=...; it puts an nn.Dropout between fc1 and fc2.",
    solution="""
        from cnnkit import cifar

        dropped = cifar.CifarCNN(dropout=0.5)
    """,
    wrong=[
        (
            """
            dropped = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Dropout(0.5), nn.Linear(2048, 128), nn.ReLU(), nn.Linear(128, 10),
            )
            """,
            "put it on fc1's 128 outputs",
        )
    ],
    mistakes={
        "no dropout": ("dropout=0.5", "", "the network has no dropout layer"),
        "p = 0.2": ("0.5", "0.2", "found p = 0.2"),
        "batch norm too": ("(dropout", "(batch_norm=True, dropout", "batch norm adds 96"),
    },
)
def _(dropped):
    model = answered(dropped, "the model")
    if not isinstance(model, nn.Module):
        raise Wrong(f"dropped should be a network (an nn.Module), not a {type(model).__name__}.")
    n = sum(p.numel() for p in model.parameters())
    base = sum(p.numel() for p in cifar.CifarCNN().parameters())
    if n != base:
        extra = " (batch norm adds 96)" if n == base + 96 else ""
        raise Wrong(
            f"{n:,} parameters, the baseline has {base:,}{extra}: dropout has none, so change "
            "nothing but the dropout."
        )
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    if not drops:
        raise Wrong("the network has no dropout layer (nn.Dropout).")
    if len(drops) > 1 or drops[0].p != 0.5:
        raise Wrong(f"use one dropout layer with p = 0.5; found p = {', '.join(str(d.p) for d in drops)}.")
    seen = []
    hook = drops[0].register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape)))
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    try:
        model.train()
        with torch.no_grad():
            out = model(x)
    finally:
        hook.remove()
    if tuple(out.shape) != (8, 10):
        raise Wrong(f"for 8 images the network gives shape {tuple(out.shape)}, not (8, 10).")
    if seen != [(8, 128)]:
        raise Wrong(
            f"the dropout acts on {seen[0][1:] if seen else 'nothing'}: put it on fc1's 128 outputs, "
            "just before fc2."
        )
