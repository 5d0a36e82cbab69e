"""Exercises of chapter 8, inside the trained model (notebook 08-inside-the-model)."""

import torch
import torch.nn as nn

from cnnkit import digitlab
from cnnkit.exercises import Wrong, answered, exercise, whole_number
from simplecnn import SimpleCNN

NOTEBOOK = "08-inside-the-model"


def _numbers(value, what: str) -> tuple[int, ...]:
    """The reader's tuple of whole numbers, or Wrong that says what shape the answer has."""
    try:
        return tuple(int(v) for v in answered(value, what))
    except (TypeError, ValueError) as err:
        raise Wrong(f"give {what} as a tuple of whole numbers, like (1, 2); got {value!r}.") from err


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
    wrong=[
        """
        def hardest_class(cm):
            c = int((cm.diagonal() / cm.sum(1)).argmax())
            return c, int(cm[c].sum() - cm[c, c])
        """,
        """
        def hardest_class(cm):
            c = int(cm.diagonal().argmin())
            return c, int(cm[c].sum() - cm[c, c])
        """,
        """
        def hardest_class(cm):
            c = int((cm.sum(1) - cm.diagonal()).argmax())
            return c, int(cm[c].sum() - cm[c, c])
        """,
        """
        def hardest_class(cm):
            c = int((cm.diagonal() / cm.sum(1)).argmin())
            return c, int(cm[:, c].sum() - cm[c, c])
        """,
        """
        def hardest_class(cm):
            c = int((cm.diagonal() / cm.sum(1)).argmin())
            return c, float(cm[c, c] / cm[c].sum())
        """,
    ],
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
        "n_weights = 832\nshare = 0.0014",
        "n_weights = 25\nshare = 0.0",
        "n_weights = 800\nshare = 0.14",
        "n_weights = 800\nshare = 0.014",
        "n_weights = 800.5\nshare = 0.0014",
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


@exercise(
    "8.3",
    NOTEBOOK,
    "padding",
    hint="with padding p the side becomes 28 + 2·p − 5 + 1; max-pooling 2×2 then halves it. The "
    "number of channels does not change.",
    solution="shape_after_pool1 = (32, 14, 14)",
    wrong=[
        "shape_after_pool1 = (32, 12, 12)",
        "shape_after_pool1 = (32, 28, 28)",
        "shape_after_pool1 = (14, 14)",
        "shape_after_pool1 = (32, 16, 16)",
    ],
)
def _(shape_after_pool1):
    shape = _numbers(shape_after_pool1, "the shape")
    layers = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.MaxPool2d(2))
    expected = tuple(layers(torch.zeros(1, 1, 28, 28)).shape[1:])
    if len(shape) != 3:
        raise Wrong(
            f"give the shape of one digit's maps as (channels, height, width); you gave {len(shape)} numbers."
        )
    if shape[0] != expected[0]:
        raise Wrong(f"{shape[0]} channels: padding changes the height and width, not the 32 channels.")
    if shape == (32, 12, 12):
        raise Wrong("that is the shape without padding: two rows and columns of zeros on each side add 4.")
    if shape == (32, 28, 28):
        raise Wrong("28 × 28 is the size after conv1; pool1 halves it.")
    if shape != expected:
        raise Wrong(
            f"{shape[1]} × {shape[2]}: the side after conv1 is 28 + 2·2 − 5 + 1, then pooling halves it."
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
        "tall_size = (20, 20)\nwide_size = (20, 20)",
        "tall_size = (28, 14)\nwide_size = (7, 28)",
        "tall_size = (10, 20)\nwide_size = (20, 5)",
        "tall_size = (20, 10)\nwide_size = (20, 5)",
    ],
)
def _(tall_size, wide_size):
    for given, (h, w) in ((tall_size, (60, 30)), (wide_size, (12, 48))):
        size = _numbers(given, "the size")
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
