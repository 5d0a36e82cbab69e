"""Exercises of chapter 6, regularization (notebook 06-regularization).

The checks run the reader's code on small random tensors with a fixed seed (inside
``torch.random.fork_rng``, so the notebook's own random numbers are left alone) and compare with
the rule itself and with the usual mistakes.
"""

import math

import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit.exercises import Wrong, answered, exercise, function, whole_number

NOTEBOOK = "06-regularization"


# ---------------------------------------------------------------------------------------------
# 6.1 Dropout the original way
# ---------------------------------------------------------------------------------------------


def _as_tensor(value, what: str, like: torch.Tensor) -> torch.Tensor:
    value = answered(value, what)
    if not isinstance(value, torch.Tensor) or value.shape != like.shape:
        raise Wrong(f"{what} should be a tensor shaped like x {tuple(like.shape)}; got {value!r:.60}.")
    return value


@exercise(
    "6.1",
    NOTEBOOK,
    "dropout the original way",
    kind="code",
    hint="training: zero each value with probability p and leave the others as they are; "
    "evaluation: no randomness, multiply every value by the keep probability 1 − p.",
    solution="""
        def dropout_old(x, p, training):
            if not training:
                return x * (1 - p)  # the expected value of a training-mode output
            keep = torch.rand_like(x) >= p  # kept with probability 1 - p
            return x * keep  # no scaling in training
    """,
    mistakes={
        "no correction": ("return x * (1 - p)", "return x", "evaluation returns x"),
        "inverted": ("return x * keep", "return x * keep / (1 - p)", "that is inverted dropout"),
        "p kept": (("x * (1 - p)", ">= p"), ("x * p", "< p"), "training dropped 70.0% of the values"),
        "1 − p dropped": (">= p", "< p", "training dropped 70.0% of the values"),
        "not random": ("if not training:\n        return", "return", "training mode gives the same output"),
    },
)
def _(dropout_old):
    function(dropout_old, "dropout_old(x, p, training)")
    p = 0.3
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x = torch.rand(200_000) + 0.5  # positive values, so a dropped value is exactly 0
        evaluation = _as_tensor(dropout_old(x, p, False), "dropout_old(x, p, training=False)", x)
        training = _as_tensor(dropout_old(x, p, True), "dropout_old(x, p, training=True)", x)
    if torch.equal(training, evaluation):
        raise Wrong(
            "training mode gives the same output as evaluation mode: in training, drop values at random."
        )
    dropped = (training == 0).float().mean().item()
    se = math.sqrt(p * (1 - p) / x.numel())  # standard error of the share dropped
    if abs(dropped - (1 - p)) < 5 * se:
        raise Wrong(
            f"training dropped {dropped:.1%} of the values; drop each with probability p = {p}, keep 1 − p."
        )
    if abs(dropped - p) > 5 * se:
        raise Wrong(f"training dropped {dropped:.1%} of the values, but p = {p}.")
    kept = training != 0
    if torch.allclose(training[kept], x[kept] / (1 - p)):
        raise Wrong(
            "the survivors are scaled by 1/(1 − p) in training: that is inverted dropout. The original "
            "leaves them as they are and corrects at evaluation time."
        )
    if not torch.equal(training[kept], x[kept]):
        raise Wrong("in training the values that survive should pass unchanged.")
    if torch.allclose(evaluation, x):
        raise Wrong(
            f"evaluation returns x, but on average training passed only {1 - p:.0%} of each value: the "
            "next layer would see larger values after training than during it. Multiply by 1 − p."
        )
    if torch.allclose(evaluation, x * p):
        raise Wrong(f"evaluation multiplies by p = {p}; each value was kept with probability 1 − p.")
    if not torch.allclose(evaluation, x * (1 - p)):
        raise Wrong(
            "in evaluation every value should be multiplied by the same factor, the keep probability 1 − p."
        )
    gap = (training.mean() - evaluation.mean()).abs().item()
    return f"(mean in training {training.mean():.4f}, in evaluation {evaluation.mean():.4f}: {gap:.4f} apart)"


# ---------------------------------------------------------------------------------------------
# 6.2 What batch norm keeps
# ---------------------------------------------------------------------------------------------


def _batch_norm_counts() -> tuple[int, int, list[int]]:
    layers = [m for m in sc.SimpleCNN().modules() if isinstance(m, nn.BatchNorm2d)]
    learned = sum(p.numel() for m in layers for p in m.parameters())
    running = sum(m.running_mean.numel() + m.running_var.numel() for m in layers)
    return learned, running, [m.num_features for m in layers]


@exercise(
    "6.2",
    NOTEBOOK,
    "what the Simple CNN's batch norm keeps",
    hint="bn1 follows conv1 (32 channels), bn2 follows conv2 (64 channels); per channel each layer "
    "learns γ and β, and keeps a running mean and a running variance.",
    solution="""
        learned = 2 * (32 + 64)  # gamma and beta per channel
        running = 2 * (32 + 64)  # running mean and running variance per channel
    """,
    wrong=[
        ("learned = 2 * 64\nrunning = 2 * 64", "counts bn2 only"),
        ("learned = 32 + 64\nrunning = 32 + 64", "is one number per channel"),
        ("learned = 2 * (32 + 64)\nrunning = 2 * (32 + 64) + 2", "num_batches_tracked is a counter"),
        ("learned = 4 * (32 + 64)\nrunning = 0", "not learned by gradient descent: they are buffers"),
        ("learned = 2 * (1 + 32)\nrunning = 2 * (1 + 32)", "one γ and β per output channel"),
    ],
)
def _(learned, running):
    expected_learned, expected_running, channels = _batch_norm_counts()
    learned = whole_number(learned, "learned")
    running = whole_number(running, "running")
    total = sum(channels)
    if learned != expected_learned:
        if learned == 2 * channels[-1]:
            raise Wrong(f"{learned} counts bn2 only; bn1 normalises conv1's {channels[0]} channels too.")
        if learned == total:
            raise Wrong(f"{learned} is one number per channel; each channel has a scale γ and a shift β.")
        if learned == 2 * (1 + 32):
            raise Wrong(
                "batch norm follows a convolution and has one γ and β per output channel of it: 32 and 64."
            )
        if learned == 4 * total:
            raise Wrong(
                "the running mean and variance are not learned by gradient descent: they are buffers."
            )
        raise Wrong(f"{learned} learned numbers: γ and β for each of the {total} channels of bn1 and bn2.")
    if running != expected_running:
        if running == expected_running + len(channels):
            raise Wrong("num_batches_tracked is a counter of batches, not a statistic: leave it out.")
        raise Wrong(f"{running} running statistics: a mean and a variance for each of the {total} channels.")
    return f"(layers with {channels} channels)"


# ---------------------------------------------------------------------------------------------
# 6.3 Folding batch norm into the convolution
# ---------------------------------------------------------------------------------------------


def _conv_and_bn():
    with torch.random.fork_rng():
        torch.manual_seed(3)
        conv = nn.Conv2d(3, 4, kernel_size=3)
        bn = nn.BatchNorm2d(4, eps=0.1)  # a large eps, so that forgetting it shows
        with torch.no_grad():
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.2, 3.0)
        x = torch.randn(2, 3, 8, 8)
    return conv, bn.eval(), x


def _fold(conv, bn, mistake=None):
    var = bn.running_var + (0 if mistake == "no eps" else bn.eps)
    a = bn.weight / (var if mistake == "no sqrt" else var.sqrt())
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * a[:, None, None, None])
        bias = conv.bias if mistake == "bias unscaled" else a * conv.bias
        folded.bias.copy_(bias - a * bn.running_mean + bn.bias)
    return folded


@exercise(
    "6.3",
    NOTEBOOK,
    "folding batch norm into the convolution",
    kind="code",
    hint="in evaluation mode bn(z) = a·z + c per channel, with a = γ/√(running_var + eps) and "
    "c = β − a·running_mean; scale conv's kernel for output channel o by a[o], and make its bias "
    "a·b + c.",
    solution="""
        def fold_batch_norm(conv, bn):
            a = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # the scale per channel
            c = bn.bias - a * bn.running_mean  # the offset per channel
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size)
            with torch.no_grad():
                folded.weight.copy_(conv.weight * a[:, None, None, None])
                folded.bias.copy_(a * conv.bias + c)
            return folded
    """,
    wrong=[("def fold_batch_norm(conv, bn):\n    return conv", "that computes conv(x) alone")],
    mistakes={
        "no eps": (" + bn.eps", "", "the eps is missing"),
        "bias unscaled": ("a * conv.bias + c", "conv.bias + c", "the new bias is a·b + c, not b + c"),
        "the variance": ("torch.sqrt(", "(", "not by the variance"),
        "no shift": ("a * conv.bias + c", "conv.bias", "each channel is off by a constant"),
    },
)
def _(fold_batch_norm):
    function(fold_batch_norm, "fold_batch_norm(conv, bn)")
    conv, bn, x = _conv_and_bn()
    with torch.no_grad():
        expected = bn(conv(x))
    with torch.random.fork_rng():
        folded = answered(fold_batch_norm(conv, bn), "what fold_batch_norm returns")
    if not isinstance(folded, nn.Module):
        raise Wrong(f"return a layer (an nn.Conv2d) that computes bn(conv(x)); got {type(folded).__name__}.")
    if folded is bn:
        raise Wrong("that is the batch-norm layer itself; return one convolution that does the work of both.")
    with torch.no_grad():
        out = folded(x)
    if out.shape != expected.shape:
        raise Wrong(
            f"the folded layer gives shape {tuple(out.shape)}, but bn(conv(x)) has {tuple(expected.shape)}."
        )
    if torch.allclose(out, expected, rtol=1e-5, atol=1e-5):
        return f"(largest difference from bn(conv(x)): {(out - expected).abs().max():.1e})"
    fresh_conv, fresh_bn, _ = _conv_and_bn()
    with torch.no_grad():
        if torch.allclose(out, fresh_conv(x), atol=1e-6):
            raise Wrong("that computes conv(x) alone: the batch norm's scale and shift are missing.")
    for mistake, message in (
        ("no eps", "batch norm divides by √(running_var + eps); the eps is missing."),
        (
            "no sqrt",
            "batch norm divides by the standard deviation √(running_var + eps), not by the variance.",
        ),
        (
            "bias unscaled",
            "the convolution's bias passes through batch norm too: the new bias is a·b + c, not b + c.",
        ),
    ):
        with torch.no_grad():
            if torch.allclose(out, _fold(fresh_conv, fresh_bn, mistake)(x), rtol=1e-5, atol=1e-5):
                raise Wrong(message)
    with torch.no_grad():
        if torch.allclose(
            out - out.mean((0, 2, 3), keepdim=True),
            expected - expected.mean((0, 2, 3), keepdim=True),
            atol=1e-4,
        ):
            raise Wrong(
                "the kernel is right but each channel is off by a constant: check the bias, a·b + β − a·running_mean."
            )
    raise Wrong(
        "the folded layer's outputs differ from bn(conv(x)) in evaluation mode: scale each output channel's kernel by a."
    )


# ---------------------------------------------------------------------------------------------
# 6.4 How many shifted copies
# ---------------------------------------------------------------------------------------------


def _shifted_versions(max_shift: int) -> tuple[int, float]:
    """Distinct outputs of sc.random_shift on one image with all-different pixels, and the share
    of copies it leaves where they were."""
    image = torch.arange(1.0, 28 * 28 + 1).view(1, 1, 28, 28)
    batch = image.expand(4000, 1, 28, 28).contiguous()
    out = sc.random_shift(max_shift, torch.Generator().manual_seed(0))(batch)
    versions = len(torch.unique(out.flatten(1), dim=0))
    unmoved = (out == image).flatten(1).all(1).float().mean().item()
    return versions, unmoved


@exercise(
    "6.4",
    NOTEBOOK,
    "how many shifted copies",
    hint="the shift across (dx) and the shift down (dy) are drawn independently, each from −m, …, 0, …, m.",
    solution="""
        versions = (2 * 2 + 1) ** 2  # 5 choices of dx times 5 of dy
        p_unmoved = 1 / versions  # dx = 0 and dy = 0
    """,
    wrong=[
        ("versions = 5\np_unmoved = 1 / 5", "counts the shifts along one axis"),
        ("versions = 16\np_unmoved = 1 / 16", "dx takes 2·2 + 1 values"),
        ("versions = 25\np_unmoved = 1 / 5", "the chance that dx = 0"),
        ("versions = 9\np_unmoved = 1 / 9", "9 versions: count the pairs"),
        ("versions = 24\np_unmoved = 0", "the image can also stay where it is"),
    ],
)
def _(versions, p_unmoved):
    seen, unmoved = _shifted_versions(2)
    versions = whole_number(versions, "versions")
    if versions != seen:
        if versions == 5:
            raise Wrong("5 counts the shifts along one axis; dx and dy are drawn independently.")
        if versions == 16:
            raise Wrong("dx takes 2·2 + 1 values: −2, −1, 0, 1 and 2 (the same for dy).")
        if versions == 24:
            raise Wrong("the image can also stay where it is (dx = dy = 0): that is one of the versions.")
        raise Wrong(f"{versions} versions: count the pairs (dx, dy) with each from −2 to 2.")
    p = float(answered(p_unmoved, "p_unmoved"))
    if not math.isclose(p, 1 / seen, rel_tol=1e-3):
        if math.isclose(p, 1 / 5, rel_tol=1e-3):
            raise Wrong("1/5 is the chance that dx = 0; the image stays put only when dy = 0 too.")
        raise Wrong(
            f"p_unmoved = {p:g}: each of the {seen} versions is equally likely, and one of them is unmoved."
        )
    return f"(sc.random_shift(2) on 4000 copies of one image: {seen} versions, {unmoved:.1%} unmoved)"
