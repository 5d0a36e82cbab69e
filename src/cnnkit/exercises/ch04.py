"""Exercises of chapter 4, loss functions (notebook 04-loss).

The expected values come from PyTorch's own losses (``F.cross_entropy``, ``nn.MultiMarginLoss``,
autograd), and the best confidence under label smoothing from the gradient of PyTorch's smoothed
loss, so no answer is typed into a check.
"""

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnkit.exercises import Wrong, exercise, reader_call, real_number, tensor

NOTEBOOK = "04-loss"


_tensor = functools.partial(tensor, dtype=torch.float64)


def _close(value: float, target: float, tol: float = 1e-3) -> bool:
    return math.isclose(value, target, rel_tol=tol, abs_tol=tol)


@exercise(
    "4.1",
    NOTEBOOK,
    "cross-entropy by hand",
    hint="ℓ = log(e^z₀ + e^z₁ + e^z₂) − z_y with the natural logarithm (math.log, math.exp).",
    solution="""
        import math

        loss = math.log(math.exp(2) + math.exp(1) + math.exp(0)) - 2
    """,
    mistakes={
        "log-sum-exp": (") - 2", ")", "is log Σ e^z, the log-sum-exp"),
        "p itself": (("math.log(", ") - 2"), ("math.exp(2) / (", ")"), "is the probability of class 0"),
        "sign flipped": (("loss = ", " - 2"), ("loss = 2 - ", ""), "the sign is flipped"),
        "log base 10": (("math.log(", ") - 2"), ("-math.log10(math.exp(2) / (", "))"), "uses log base 10"),
        "another class": ("- 2", "- 1", "would be the loss if the true class were 1"),
    },
)
def _(loss):
    value = real_number(loss, "loss")
    logits = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
    expected = F.cross_entropy(logits, torch.tensor([0])).item()
    p = math.exp(-expected)  # the softmax probability of class 0
    if _close(value, expected):
        return f"(the softmax gives class 0 a probability of e^−{expected:.4f} = {p:.3f})"
    if _close(value, torch.logsumexp(logits, 1).item()):
        raise Wrong(f"{value:.4f} is log Σ e^z, the log-sum-exp; subtract the true class's logit, 2.")
    if _close(value, -expected):
        raise Wrong(f"{value:.4f} is negative, but −log p is never below 0: the sign is flipped.")
    if _close(value, p):
        raise Wrong(f"{value:.4f} is the probability of class 0; the loss is −log of it.")
    if _close(value, -math.log10(p)):
        raise Wrong(f"{value:.4f} uses log base 10; cross-entropy uses the natural logarithm.")
    for y in (1, 2):
        if _close(value, F.cross_entropy(logits, torch.tensor([y])).item()):
            raise Wrong(f"{value:.4f} would be the loss if the true class were {y}; it is class 0, logit 2.")
    raise Wrong(f"{value:.4f}: compute log(e² + e¹ + e⁰) − 2.")


@exercise(
    "4.2",
    NOTEBOOK,
    "the gradient of cross-entropy",
    kind="code",
    hint="for one example the gradient with respect to the logits is p − t (softmax minus one-hot "
    "target); the mean over the batch divides every row by N.",
    solution="""
        def cross_entropy_grad(logits, y):
            p = torch.softmax(logits, dim=1)
            t = F.one_hot(y, logits.shape[1])
            return (p - t) / len(y)
    """,
    mistakes={
        "no mean": ("(p - t) / len(y)", "p - t", "8 times too large"),
        "t − p": ("(p - t)", "(t - p)", "the sign is flipped"),
        "softmax over the batch": ("dim=1", "dim=0", "the softmax runs over the batch"),
        "no target": ("(p - t)", "p", "that is p / N"),
        "mean over the batch": ("(p - t) / len(y)", "(p - t).mean(0)", "the gradient has shape (10,)"),
    },
)
def _(cross_entropy_grad):
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(8, 10, generator=generator) * 2
    y = torch.randint(0, 10, (8,), generator=generator)
    z = logits.clone().requires_grad_(True)
    F.cross_entropy(z, y).backward()
    expected = z.grad.double()
    grad = _tensor(
        reader_call(cross_entropy_grad, logits.clone(), y.clone(), what="cross_entropy_grad(logits, y)"),
        "what cross_entropy_grad returns",
    )
    if grad.shape != expected.shape:
        raise Wrong(
            f"the gradient has shape {tuple(grad.shape)}; like the logits it should be (N, C) = {tuple(expected.shape)}."
        )
    if torch.allclose(grad, expected, atol=1e-6):
        return None
    if torch.allclose(grad, expected * len(y), atol=1e-6):
        raise Wrong(f"{len(y)} times too large: the loss is the mean over the batch, so divide by N.")
    if torch.allclose(grad, -expected, atol=1e-6):
        raise Wrong("the sign is flipped: the gradient is p − t, positive on the wrong classes.")
    one_hot = F.one_hot(y, 10).double()
    if torch.allclose(grad, (torch.softmax(logits.double(), 0) - one_hot) / len(y), atol=1e-6):
        raise Wrong(
            "the softmax runs over the batch (dim 0); each example's probabilities are a row (dim=1)."
        )
    if torch.allclose(grad, torch.softmax(logits.double(), 1) / len(y), atol=1e-6):
        raise Wrong("that is p / N; the true class also gets −1: subtract the one-hot target t.")
    raise Wrong(
        "the gradient differs from autograd's; for each example it is p − t, and the mean divides by N."
    )


@exercise(
    "4.3",
    NOTEBOOK,
    "the hinge loss by hand",
    hint="charge every wrong class j with max(0, 1 − z_y + z_j), skip the true class, and divide "
    "the sum by the number of classes C = 3.",
    solution="hinge = (max(0, 1 - 3 + 2.5) + max(0, 1 - 3 - 1)) / 3",
    wrong=[
        ("hinge = ((1 - 3 + 2.5) + (1 - 3 - 1)) / 3", "not a negative amount: max(0, ·)"),
        ("hinge = (max(0, -3 + 2.5) + max(0, -3 - 1)) / 3", "0 would mean every class clears the margin"),
    ],
    mistakes={
        "the sum": (") / 3", ")", "is the sum of the charges"),
        "C − 1": ("/ 3", "/ 2", "divides by C − 1 = 2"),
    },
)
def _(hinge):
    value = real_number(hinge, "hinge")
    logits, y = torch.tensor([[3.0, 2.5, -1.0]]), torch.tensor([0])
    expected = nn.MultiMarginLoss()(logits, y).item()
    terms = (1 - logits[0, 0] + logits[0, 1:]).tolist()  # the two wrong classes, before max(0, .)
    if _close(value, expected):
        return None
    if _close(value, 3 * expected):
        raise Wrong(
            f"{value:g} is the sum of the charges (or their mean with the true class charged too); "
            "nn.MultiMarginLoss skips the true class and divides by C = 3."
        )
    if _close(value, 3 * expected / 2):
        raise Wrong(f"{value:g} divides by C − 1 = 2; PyTorch divides by the number of classes, C = 3.")
    if _close(value, sum(terms) / 3):
        raise Wrong(
            f"{value:g}: a class that clears the margin is charged 0, not a negative amount: max(0, ·)."
        )
    if _close(value, 0.0):
        raise Wrong(
            "0 would mean every class clears the margin; with Δ = 1, class 1 (2.5 against 3) does not."
        )
    raise Wrong(f"{value:g}: add max(0, 1 − 3 + z_j) over the two wrong classes and divide by 3.")


@exercise(
    "4.4",
    NOTEBOOK,
    "label-smoothed targets",
    kind="code",
    hint="start from the one-hot rows F.one_hot(y, num_classes), scale them by 1 − eps and add "
    "eps / num_classes to every entry.",
    solution="""
        def smooth_targets(y, num_classes, eps):
            one_hot = F.one_hot(y, num_classes).float()
            return (1 - eps) * one_hot + eps / num_classes
    """,
    mistakes={
        "others": ("eps / num_classes", "eps / (num_classes - 1) * (1 - one_hot)", "you spread ε over"),
        "no ε": (" + eps / num_classes", "", "each row sums to 0.9"),
        "ε everywhere": ("eps / num_classes", "eps", "each row sums to 1.9"),
        "no 1 − ε": ("(1 - eps) * one_hot", "one_hot", "each row sums to 1.1"),
        "one_hot without C": ("F.one_hot(y, num_classes)", "F.one_hot(y)", "have shape (4, 8)"),
        "uniform": ("(1 - eps) * one_hot + eps", "0 * one_hot + 1", "every class gets 1/C"),
    },
)
def _(smooth_targets):
    for y, classes, eps in ((torch.tensor([0, 3, 7, 3]), 10, 0.1), (torch.tensor([2, 0]), 3, 0.3)):
        q = _tensor(
            reader_call(smooth_targets, y.clone(), classes, eps, what="smooth_targets(y, num_classes, eps)"),
            "what smooth_targets returns",
        )
        if q.shape != (len(y), classes):
            raise Wrong(
                f"for {len(y)} labels and {classes} classes the targets have shape {tuple(q.shape)}; they "
                f"should be ({len(y)}, {classes}): one row per example (give F.one_hot the number of classes)."
            )
        expected = (1 - eps) * F.one_hot(y, classes).double() + eps / classes
        if torch.allclose(q, expected, atol=1e-6):
            continue
        total = q.sum(1)
        if not torch.allclose(total, torch.ones_like(total), atol=1e-6):
            raise Wrong(
                f"with ε = {eps} and C = {classes} each row sums to {total[0].item():.3g}; a distribution sums to 1."
            )
        true_share = q[0, y[0]].item()
        if math.isclose(true_share, 1 - eps, abs_tol=1e-6):
            raise Wrong(
                f"the true class gets 1 − ε = {1 - eps:g}: you spread ε over the other classes only. PyTorch "
                f"spreads ε over all C classes, so the true class gets 1 − ε + ε/C = {1 - eps + eps / classes:g}."
            )
        if torch.allclose(q, torch.full_like(q, 1 / classes)):
            raise Wrong(
                "every class gets 1/C: that forgets the label; the true class should keep most of the mass."
            )
        raise Wrong(
            f"with ε = {eps} and C = {classes} the true class should get {1 - eps + eps / classes:g} and the others {eps / classes:g}."
        )
    # the soft targets give exactly PyTorch's smoothed loss
    generator = torch.Generator().manual_seed(5)
    logits, y = torch.randn(16, 10, generator=generator), torch.randint(0, 10, (16,), generator=generator)
    q = reader_call(smooth_targets, y, 10, 0.1, what="smooth_targets(y, num_classes, eps)").float()
    soft = -(q * torch.log_softmax(logits, 1)).sum(1).mean()
    pytorch = F.cross_entropy(logits, y, label_smoothing=0.1)
    if not torch.allclose(soft, pytorch, atol=1e-5):
        raise Wrong(f"−Σ q log p with your targets gives {soft:.5f}, PyTorch's smoothed loss {pytorch:.5f}.")
    return f"(−Σ q log p with your targets is PyTorch's label-smoothed loss: {soft:.4f} on a random batch)"


def _smoothing_optimum(classes: int, eps: float) -> tuple[float, float]:
    """Where PyTorch's label-smoothed loss of one example is smallest: (p of the true class,
    logit gap to another class)."""
    y = torch.tensor([0])
    z = torch.zeros(1, classes, dtype=torch.float64, requires_grad=True)
    F.cross_entropy(z, y, label_smoothing=eps).backward()
    q = 1 / classes - z.grad[0]  # the gradient is p − q, and p is uniform at z = 0
    best = q.log().requires_grad_(True)  # softmax(log q) = q, where the gradient p − q vanishes
    F.cross_entropy(best[None], y, label_smoothing=eps).backward()
    assert best.grad.abs().max() < 1e-12, "the smoothed loss is not at its minimum"
    best = best.detach()
    return q[0].item(), (best[0] - best[1]).item()


@exercise(
    "4.5",
    NOTEBOOK,
    "how confident label smoothing wants a model",
    hint="the smoothed loss −Σ q log p is smallest when p equals the target q itself: 1 − ε + ε/C on "
    "the true class and ε/C on each other class; the logit gap is the log of their ratio.",
    solution="""
        import math

        eps, classes = 0.1, 100
        best_p = 1 - eps + eps / classes
        best_gap = math.log(best_p / (eps / classes))
    """,
    wrong=[("best_p = 1.0\nbest_gap = float('inf')", "1 is what plain cross-entropy pushes towards")],
    mistakes={
        "1 − ε": ("1 - eps + eps / classes", "1 - eps", "is 1 − ε, but the true class"),
        "MNIST's": ("eps, classes = 0.1, 100", "eps, classes = 0.1, 10", "0.91 is MNIST's value"),
        "the ratio": ("math.log(best_p", "(best_p", "is the ratio of the two probabilities"),
        "all the others": ("(eps / classes))", "(1 - best_p))", "with all the others together"),
    },
)
def _(best_p, best_gap):
    eps, classes = 0.1, 100
    p_star, gap_star = _smoothing_optimum(classes, eps)
    p = real_number(best_p, "best_p")
    if not math.isclose(p, p_star, abs_tol=3e-4):
        if math.isclose(p, 1.0, abs_tol=1e-6):
            raise Wrong(
                "1 is what plain cross-entropy pushes towards; with smoothing the target itself is below 1."
            )
        if math.isclose(p, 1 - eps, abs_tol=1e-6):
            raise Wrong(
                f"{p:g} is 1 − ε, but the true class also receives its share of ε: ε/C = {eps / classes:g}."
            )
        if math.isclose(p, 1 - eps + eps / 10, abs_tol=1e-6):
            raise Wrong(f"{p:g} is MNIST's value (C = 10); CIFAR-100 has C = 100 classes.")
        raise Wrong(f"best_p {p:g}: the loss is smallest where p equals the smoothed target, 1 − ε + ε/C.")
    gap = real_number(best_gap, "best_gap")
    if math.isclose(gap, gap_star, rel_tol=2e-3):
        return f"(on MNIST, C = 10, the gap is only {_smoothing_optimum(10, eps)[1]:.2f})"
    if math.isinf(gap):
        raise Wrong("an infinite gap is plain cross-entropy's direction; smoothing stops at a finite one.")
    if math.isclose(gap, math.exp(gap_star), rel_tol=2e-3):
        raise Wrong(
            f"{gap:g} is the ratio of the two probabilities; softmax turns a logit gap g into a ratio eᵍ, so g is its log."
        )
    if math.isclose(gap, math.log(p_star / (1 - p_star)), rel_tol=2e-3):
        raise Wrong(
            f"{gap:.3g} compares the true class with all the others together; the gap to one other class is "
            "log(p_true / p_other), with p_other = ε/C."
        )
    raise Wrong(
        f"best_gap {gap:.3g}: softmax gives p_true / p_other = e^(z_true − z_other), so the gap is log(p_true / p_other)."
    )
