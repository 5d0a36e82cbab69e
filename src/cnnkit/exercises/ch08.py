"""Exercises of chapter 8, inside the trained model (notebook 08-inside-the-model)."""

import math

import torch

from cnnkit import digitlab
from cnnkit.exercises import (
    Wrong,
    answered,
    exercise,
    function,
    reader_call,
    real_number,
    whole_number,
    whole_numbers,
)
from simplecnn import SimpleCNN

NOTEBOOK = "08-inside-the-model"


# Confusion matrices the check of 8.1 tries (rows: true class, columns: predicted class). In the
# first, the hardest class (2: 40 of 50 right) is neither the one with the fewest right images
# (3), nor the one with the most wrong images (1), and its column differs from its row.
_MATRICES = (
    torch.tensor([[50, 0, 0, 0], [4, 300, 8, 0], [0, 6, 40, 4], [0, 0, 0, 20]]),
    torch.tensor([[97, 1, 2], [0, 88, 0], [5, 3, 400]]),
    torch.ones(10, 10, dtype=torch.long) + torch.diag(torch.tensor([99, 90, 95, 99, 97, 92, 70, 99, 93, 96])),
)


@exercise(
    "8.1",
    NOTEBOOK,
    "the hardest class",
    kind="code",
    hint="row i of cm holds the images of class i, and its diagonal entry those predicted right: "
    "compare the share right in each row, then count the rest of the worst row.",
    solution="""
        def hardest_class(cm):
            per_class = cm.diagonal() / cm.sum(1)
            c = int(per_class.argmin())
            return c, int(cm[c].sum() - cm[c, c])
    """,
    mistakes={
        "the easiest": ("argmin", "argmax", "is the easiest one"),
        "fewest right": ("cm.diagonal() / cm.sum(1)", "cm.diagonal()", "has the fewest correct images"),
        "most wrong": ("cm.diagonal() / cm.sum(1)", "cm.diagonal() - cm.sum(1)", "has the most wrong images"),
        "its column": ("cm[c].sum()", "cm[:, c].sum()", "counts its column"),
        "a share": ("int(cm[c].sum() - cm[c, c])", "float(cm[c, c] / cm[c].sum())", "is a share"),
    },
)
def _(hardest_class):
    for cm in _MATRICES:
        got = answered(hardest_class(cm.clone()), "hardest_class(cm)")
        try:
            c, n = int(got[0]), got[1]
            n = n.item() if isinstance(n, torch.Tensor) else n
        except (TypeError, IndexError, ValueError) as err:
            raise Wrong(f"return two numbers, (class, number wrong); got {got!r}.") from err
        per_class = cm.diagonal() / cm.sum(1)
        best = int(per_class.argmin())
        wrong = int(cm[best].sum() - cm[best, best])
        if c != best:
            if c == int(per_class.argmax()):
                raise Wrong(f"class {c} is the easiest one: the hardest has the lowest per-class accuracy.")
            if c == int(cm.diagonal().argmin()):
                raise Wrong(
                    f"class {c} has the fewest correct images, but also few images: divide the diagonal "
                    "by the row sums to compare classes of different sizes."
                )
            if c == int((cm.sum(1) - cm.diagonal()).argmax()):
                raise Wrong(
                    f"class {c} has the most wrong images, but it is also large: compare the share "
                    "wrong (or right) in each row, not the count."
                )
            raise Wrong(f"class {c} is not the one with the lowest per-class accuracy (diagonal / row sum).")
        if n == int(cm[:, c].sum() - cm[c, c]) and n != wrong:
            raise Wrong(
                f"the class is right, but {n} counts its column: images of other classes predicted as "
                f"{c}. Its row holds the images of class {c}."
            )
        if isinstance(n, float) and 0 < n < 1:
            raise Wrong(
                f"the class is right; {n:.3f} is a share, the exercise asks how many images are wrong."
            )
        if n != wrong:
            raise Wrong(
                f"the class is right; its images wrongly predicted are its row sum minus the diagonal, not {n}."
            )


@exercise(
    "8.2",
    NOTEBOOK,
    "where is a kernel's weight",
    hint="conv1 has 32 kernels of 1 × 5 × 5 weights; divide by inspection.count_parameters(model).",
    solution="""
        n_weights = 32 * 1 * 5 * 5
        share = round(800 / 582_218, 4)
    """,
    wrong=[
        ("n_weights = 832\nshare = 0.0014", "counts the 32 biases too"),
        ("n_weights = 25\nshare = 0.0", "25 is one kernel"),
        ("n_weights = 800\nshare = 0.14", "is a percentage"),
        ("n_weights = 800\nshare = 0.014", "is not 800 / 582,218 rounded to four decimals"),
        ("n_weights = 800.5\nshare = 0.0014", "it should be a whole number"),
    ],
)
def _(n_weights, share):
    model = SimpleCNN()
    weights = model.features.conv1.weight.numel()
    total = sum(p.numel() for p in model.parameters())
    n_weights = whole_number(n_weights, "the number of weights")
    if n_weights == weights + model.features.conv1.bias.numel():
        raise Wrong(f"{n_weights} counts the 32 biases too; the exercise asks for the weights only.")
    if n_weights == 25:
        raise Wrong("25 is one kernel; conv1 has 32 of them (one per output channel).")
    if n_weights != weights:
        raise Wrong(f"{n_weights} weights: count out_channels × in_channels × 5 × 5.")
    share = float(answered(share, "share"))
    if abs(share - 100 * weights / total) < 0.005:
        raise Wrong(f"{share} is a percentage; give the fraction (a number between 0 and 1).")
    if abs(share - weights / total) > 5e-5:
        raise Wrong(f"{share} is not {weights} / {total:,} rounded to four decimals.")


def _confidence_tables():
    """Probability tables (one row per image) and labels that the check of 8.3 tries. In the
    first, every usual mistake gives other numbers than the right answer: the wrong images'
    true-class probabilities differ from their largest ones, the means differ from the medians,
    and the mean over all images differs from both parts."""
    first = torch.tensor(
        [
            [0.90, 0.05, 0.05],  # right (label 0)
            [0.10, 0.80, 0.10],  # right (label 1)
            [0.20, 0.20, 0.60],  # right (label 2)
            [0.02, 0.97, 0.01],  # right (label 1)
            [0.15, 0.30, 0.55],  # wrong: label 1, predicted 2
            [0.70, 0.10, 0.20],  # wrong: label 2, predicted 0
            [0.05, 0.45, 0.50],  # wrong: label 0, predicted 2
        ]
    )
    first_labels = torch.tensor([0, 1, 2, 1, 1, 2, 0])
    generator = torch.Generator().manual_seed(8)
    second = torch.softmax(3 * torch.randn(40, 10, generator=generator), 1)
    second_labels = second.argmax(1)
    second_labels[::3] = torch.randint(10, (len(second_labels[::3]),), generator=generator)
    return (first, first_labels), (second, second_labels)


def _near(a, b) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6) for x, y in zip(a, b))


def _pair(got) -> tuple[float, float]:
    try:
        wrong, right = got
        return real_number(wrong, "the first number"), real_number(right, "the second number")
    except (TypeError, ValueError) as err:
        raise Wrong(
            f"return two numbers, (over the wrong images, over the right ones); got {got!r:.80}."
        ) from err


@exercise(
    "8.3",
    NOTEBOOK,
    "how sure when wrong",
    kind="code",
    hint="probs.max(1) gives each row's largest probability and its class; compare the class with "
    "the labels, then average the largest probabilities over the wrong rows and over the right ones.",
    solution="""
        def mean_confidence(probs, labels):
            confidence, predicted = probs.max(1)  # how sure it is of each prediction, and the prediction
            wrong = predicted != labels
            return confidence[wrong].mean().item(), confidence[~wrong].mean().item()
    """,
    mistakes={
        "swapped": ("!=", "==", "the two are the other way round"),
        "the true class": (
            "probs.max(1)",
            "probs[torch.arange(len(labels)), labels], probs.argmax(1)",
            "the probability of the true class",
        ),
        "every image": ("confidence[wrong].mean()", "confidence.mean()", "is the mean over every image"),
        "percentages": ("    wrong =", "    confidence *= 100\n    wrong =", "are percentages"),
        "medians": (
            ("[wrong].mean()", "[~wrong].mean()"),
            ("[wrong].median()", "[~wrong].median()"),
            "those are the medians",
        ),
        "counts": (
            ("confidence[wrong].mean().item()", "confidence[~wrong].mean().item()"),
            ("wrong.sum()", "(~wrong).sum()"),
            "count the images",
        ),
    },
)
def _(mean_confidence):
    function(mean_confidence, "mean_confidence(probs, labels)")
    for probs, labels in _confidence_tables():
        got = answered(
            reader_call(
                mean_confidence, probs.clone(), labels.clone(), what="mean_confidence(probs, labels)"
            ),
            "what mean_confidence returns",
        )
        wrong, right = _pair(got)
        confidence, predicted = probs.max(1)
        missed = predicted != labels
        expected = (confidence[missed].mean().item(), confidence[~missed].mean().item())

        if _near((wrong, right), expected):
            continue
        p_true = probs[torch.arange(len(labels)), labels]
        if _near((wrong, right), expected[::-1]):
            raise Wrong(
                "the two are the other way round: first the images it gets wrong, then the right ones."
            )
        if _near((wrong, right), (100 * expected[0], 100 * expected[1])):
            raise Wrong(f"{wrong:g} and {right:g} are percentages; return fractions between 0 and 1.")
        if _near((wrong, right), (missed.sum().item(), (~missed).sum().item())):
            raise Wrong(
                f"{wrong:g} and {right:g} count the images; the exercise asks how sure the model is: "
                "the mean of its largest probabilities."
            )
        if math.isclose(wrong, p_true[missed].mean().item(), rel_tol=1e-5):
            raise Wrong(
                "on the wrong images that is the probability of the true class; how sure the model is of "
                "its own prediction is the largest probability of each row."
            )
        everything = confidence.mean().item()
        if math.isclose(wrong, everything, rel_tol=1e-5) or math.isclose(right, everything, rel_tol=1e-5):
            raise Wrong(
                f"{everything:.4f} is the mean over every image: split them first into the ones "
                "predicted wrongly (largest probability not on the label) and the right ones."
            )
        median = (confidence[missed].median().item(), confidence[~missed].median().item())
        if _near((wrong, right), median):
            raise Wrong("those are the medians (the middle values); the exercise asks for the means.")
        raise Wrong(
            f"on a table of {len(labels)} images it returns ({wrong:.4f}, {right:.4f}), but the "
            f"largest probabilities average {expected[0]:.4f} over the wrong images and {expected[1]:.4f} "
            "over the right ones."
        )


@exercise(
    "8.4",
    NOTEBOOK,
    "into the box",
    hint="the longer side becomes 20, and the other side shrinks by the same factor (rounded); "
    "give (rows, columns).",
    solution="""
        tall_size = (20, 10)
        wide_size = (5, 20)
    """,
    wrong=[
        ("tall_size = (20, 20)\nwide_size = (20, 20)", "stretches the drawing"),
        ("tall_size = (28, 14)\nwide_size = (7, 28)", "28 is the frame"),
        ("tall_size = (10, 20)\nwide_size = (20, 5)", "for 60 rows and 30 columns you swapped the two"),
        ("tall_size = (20, 10)\nwide_size = (20, 5)", "for 12 rows and 48 columns you swapped the two"),
    ],
)
def _(tall_size, wide_size):
    for given, (h, w) in ((tall_size, (60, 30)), (wide_size, (12, 48))):
        size = whole_numbers(given, "the size", "(rows, columns)")
        expected = digitlab.scaled_size(h, w)
        if len(size) != 2:
            raise Wrong(f"give the size as (rows, columns); you gave {len(size)} numbers.")
        if size == (digitlab.BOX, digitlab.BOX):
            raise Wrong(
                "20 × 20 stretches the drawing: only the longer side becomes 20, so the shape is kept."
            )
        if max(size) == digitlab.FRAME:
            raise Wrong("28 is the frame; the drawing is scaled into the 20 × 20 box inside it.")
        if size == expected[::-1]:
            raise Wrong(f"for {h} rows and {w} columns you swapped the two: rows come first.")
        if size != expected:
            raise Wrong(f"for {h} rows and {w} columns: scale both by 20 / {max(h, w)} and round.")
