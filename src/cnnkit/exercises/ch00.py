"""Exercises of chapter 0, the whole picture (notebook 00-whole-picture).

They ask for the facts the first chapter names: the shape of a batch, the steps of an epoch,
softmax and cross-entropy for one image, and two lines of PyTorch that turn logits into
predictions and predictions into an accuracy.
"""

import math

import torch

import simplecnn as sc
from cnnkit.exercises import Wrong, exercise, reader_call, real_number, tensor, whole_numbers

NOTEBOOK = "00-whole-picture"


@exercise(
    "0.1",
    NOTEBOOK,
    "the shape of a batch",
    hint="a batch is written (N, C, H, W): images, channels, height, width; an MNIST digit is "
    "grayscale and 28×28 pixels.",
    solution="batch_shape = (64, 1, 28, 28)",
    wrong=[
        ("batch_shape = (64, 28, 28)", "leaves out the channel axis"),
        ("batch_shape = (64, 784)", "each digit flattened into a row"),
        ("batch_shape = (64, 28, 28, 1)", "the channel axis comes second"),
        ("batch_shape = (1, 64, 28, 28)", "the number of images comes first"),
        ("batch_shape = (64, 3, 28, 28)", "3 channels is a colour image"),
        ("batch_shape = (1, 28, 28)", "is one digit; a batch adds the number of images"),
        ("batch_shape = 64 * 28 * 28", "give the shape as a tuple, (N, C, H, W)"),
    ],
)
def _(batch_shape):
    shape = whole_numbers(batch_shape, "the shape", "(N, C, H, W)")
    expected = (64, *sc.MNIST_SHAPE)
    if shape == expected:
        return None
    if shape == (64, 28, 28):
        raise Wrong(
            "(64, 28, 28) leaves out the channel axis: the network takes (N, C, H, W) even when "
            "there is only one channel."
        )
    if shape == (64, 28 * 28):
        raise Wrong("(64, 784) is each digit flattened into a row; the network takes the images as grids.")
    if shape == (64, 28, 28, 1):
        raise Wrong("the channel axis comes second, before height and width: (N, C, H, W).")
    if shape == (1, 64, 28, 28):
        raise Wrong("the number of images comes first and MNIST has one channel: (N, C, H, W).")
    if len(shape) == 4 and shape[1] == 3:
        raise Wrong("3 channels is a colour image; an MNIST digit is grayscale, one channel.")
    if shape == sc.MNIST_SHAPE:
        raise Wrong("(1, 28, 28) is one digit; a batch adds the number of images in front.")
    raise Wrong(f"{shape}: write (N, C, H, W) with N = 64 images, C channels, H × W pixels.")


@exercise(
    "0.2",
    NOTEBOOK,
    "steps per epoch",
    hint="one optimiser step per batch; an epoch uses each of the 48,000 training images once, and "
    "a last batch may be smaller than the others.",
    solution="""
        import math

        steps_128 = math.ceil(48_000 / 128)
        steps_256 = math.ceil(48_000 / 256)
    """,
    wrong=[
        ("steps_128 = 375\nsteps_256 = 187", "they make one more, smaller batch"),
        ("steps_128 = 375\nsteps_256 = 187.5", "is 48,000 / 256; a step uses a whole batch"),
        ("steps_128 = 469\nsteps_256 = 235", "469 counts 60,000 images"),
        ("steps_128 = 48_000 * 128\nsteps_256 = 48_000 * 256", "multiplies the images by the batch size"),
        ("steps_128 = 375\nsteps_256 = 750", "larger batches mean fewer of them"),
        ("steps_128 = 1\nsteps_256 = 1", "one step would use all the images at once"),
    ],
)
def _(steps_128, steps_256):
    for value, batch in ((steps_128, 128), (steps_256, 256)):
        what = f"the steps with batches of {batch}"
        value = real_number(value, what)
        expected = len(sc.Batches(torch.zeros(48_000), torch.zeros(48_000), batch))
        if value == expected:
            continue
        if value == 48_000 / batch:
            raise Wrong(
                f"{value:g} is 48,000 / {batch}; a step uses a whole batch, so count the batches: "
                "the last one holds the images that are left."
            )
        if value == 48_000 // batch:
            raise Wrong(
                f"{value:g} batches of {batch} leave {48_000 % batch} images out; they make one more, "
                "smaller batch, and one more step."
            )
        if value == math.ceil(60_000 / batch):
            raise Wrong(
                f"{value:g} counts 60,000 images; 12,000 of them are the validation set, so the "
                "network trains on 48,000."
            )
        if value == 48_000 * batch:
            raise Wrong(
                f"{value:,.0f} multiplies the images by the batch size; each step takes {batch} images, so divide."
            )
        if value == 1:
            raise Wrong("one step would use all the images at once; each step uses one batch.")
        if batch == 256 and value > 375:
            raise Wrong(f"{value:g} steps: larger batches mean fewer of them per epoch, so fewer steps.")
        raise Wrong(
            f"{value:g} steps with batches of {batch}: one step per batch, and 48,000 images make "
            f"⌈48,000 / {batch}⌉ batches."
        )


@exercise(
    "0.3",
    NOTEBOOK,
    "softmax and the loss by hand",
    hint="softmax gives class 7 the share e^(ln 9) / (e^(ln 9) + nine times e^0); the loss is "
    "−ln of that probability.",
    solution="""
        import math

        p_seven = 9 / (9 + 9 * 1)
        loss = -math.log(p_seven)
    """,
    wrong=[
        ("p_seven = 0.9\nloss = 0.10536", "counts the other classes once"),
        ("p_seven = 1.0\nloss = 0.0", "the zeros become e^0 = 1, not 0"),
        ("p_seven = 0.5\nloss = 0.5", "that is the probability again"),
        ("p_seven = 0.5\nloss = 0.30103", "uses the logarithm in base 10"),
        ("p_seven = 0.5\nloss = 1.0", "uses the logarithm in base 2"),
        ("p_seven = 0.5\nloss = -0.693147", "the loss is minus the logarithm"),
        ("p_seven = 0.5\nloss = 2.302585", "ln 10 is the loss of an even guess"),
        ("p_seven = 0.1\nloss = 2.302585", "0.1 is an even guess"),
    ],
)
def _(p_seven, loss):
    logits = torch.zeros(10, dtype=torch.float64)
    logits[7] = math.log(9)
    expected_p = torch.softmax(logits, 0)[7].item()
    p = real_number(p_seven, "the probability of class 7")
    if not math.isclose(p, expected_p, rel_tol=5e-3):
        if math.isclose(p, 0.9, rel_tol=1e-3):
            raise Wrong(
                "0.9 = 9 / (9 + 1) counts the other classes once; each of the nine adds e^0 = 1 "
                "to the denominator."
            )
        if math.isclose(p, 1.0):
            raise Wrong(
                "softmax takes e to the power of every logit: the zeros become e^0 = 1, not 0, so "
                "the other classes keep a share."
            )
        if math.isclose(p, 0.1):
            raise Wrong("0.1 is an even guess; class 7's logit is larger than the others, so it gets more.")
        if not 0 < p < 1:
            raise Wrong(f"{p:g} is not a probability: softmax gives numbers between 0 and 1.")
        raise Wrong(f"{p:g}: the probability is e^(ln 9) divided by the sum of e^z over all ten logits.")
    value = real_number(loss, "the loss")
    expected = -math.log(expected_p)
    if math.isclose(value, expected, rel_tol=5e-3):
        return f"(ln 2 ≈ {expected:.3f}, against ln 10 ≈ {math.log(10):.3f} for an even guess)"
    if math.isclose(value, -expected, rel_tol=5e-3):
        raise Wrong(f"{value:g} is ln 0.5; the loss is minus the logarithm, a positive number.")
    if math.isclose(value, -math.log10(expected_p), rel_tol=1e-3):
        raise Wrong(f"{value:g} uses the logarithm in base 10; cross-entropy uses ln (base e).")
    if math.isclose(value, -math.log2(expected_p), rel_tol=1e-3):
        raise Wrong(f"{value:g} uses the logarithm in base 2; cross-entropy uses ln (base e).")
    if math.isclose(value, expected_p, rel_tol=1e-3):
        raise Wrong("that is the probability again; the loss is −ln of it.")
    if math.isclose(value, math.log(10), rel_tol=1e-3):
        raise Wrong("ln 10 is the loss of an even guess; here class 7 gets more than 1/10.")
    raise Wrong(f"{value:g}: the loss is −ln(probability of the right class), with the probability above.")


def _logits_and_labels(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, generator=generator), torch.randint(10, (n,), generator=generator)


@exercise(
    "0.4",
    NOTEBOOK,
    "the prediction",
    kind="code",
    hint="the predicted class of an image is the position of its largest logit: argmax along the "
    "class axis, dim=1.",
    solution="""
        def predicted_class(logits):
            return logits.argmax(dim=1)
    """,
    mistakes={
        "along the batch axis": ("dim=1", "dim=0", "it returns 10 numbers for 6 images"),
        "over the whole tensor": ("argmax(dim=1)", "argmax()", "a single number for 6 images"),
        "the largest logit itself": ("argmax(dim=1)", "max(dim=1).values", "it returns fractions"),
        "the smallest logit": ("argmax", "argmin", "the classes with the smallest logits"),
        "the probabilities": ("logits.argmax(", "torch.softmax(logits, ", "ten numbers per image"),
    },
)
def _(predicted_class):
    logits, _ = _logits_and_labels(6, seed=0)
    expected = logits.argmax(1)
    given = reader_call(predicted_class, logits.clone(), what="predicted_class(logits)")
    given = tensor(given, "what predicted_class returns")
    if given.shape == (6, 10):
        raise Wrong(
            "it returns a (6, 10) tensor, ten numbers per image; the prediction is one class "
            "number per image."
        )
    if given.dim() == 0:
        raise Wrong(
            "it returns a single number for 6 images: argmax without dim=1 looks for the largest "
            "logit of the whole tensor."
        )
    if given.shape == (10,):
        raise Wrong(
            "it returns 10 numbers for 6 images, one per class: argmax along dim=1, the class "
            "axis, gives one per image."
        )
    if given.shape != (6,):
        raise Wrong(f"it returns shape {tuple(given.shape)} for logits of shape (6, 10); expected (6,).")
    if given.is_floating_point() and not torch.equal(given, given.round()):
        raise Wrong(
            "it returns fractions; a prediction is a class number, the position of the largest logit."
        )
    if torch.equal(given.long(), logits.argmin(1)):
        raise Wrong("those are the classes with the smallest logits; the prediction takes the largest.")
    if not torch.equal(given.long(), expected):
        raise Wrong(
            f"for 6 images it predicts {given.tolist()}, and the largest logits are at {expected.tolist()}."
        )


@exercise(
    "0.5",
    NOTEBOOK,
    "accuracy",
    kind="code",
    hint="(predictions == labels) gives True or False for each image; as floats those are 1 and 0, "
    "and their mean is the share of right answers.",
    solution="""
        def accuracy(predictions, labels):
            return (predictions == labels).float().mean().item()
    """,
    mistakes={
        "a count": (".float().mean()", ".sum()", "is the number of right answers out of 8"),
        "a percentage": ("return (", "return 100 * (", "is a percentage"),
        "the mean of booleans": (".float().mean().item()", ".mean()", "needs .float() before .mean()"),
        "the wrong answers": ("==", "!=", "compare with ==, not !="),
        "// division": (".float().mean().item()", ".sum().item() // len(labels)", "// is integer division"),
        "a fixed number of images": (".float().mean().item()", ".sum().item() / 8", "not a fixed number"),
    },
)
def _(accuracy):
    for n, right in ((8, 6), (20, 7)):
        labels = torch.arange(n) % 10
        predictions = labels.clone()
        predictions[right:] = (labels[right:] + 1) % 10  # the first `right` predictions are right
        value = reader_call(
            accuracy,
            predictions.clone(),
            labels.clone(),
            what="accuracy(predictions, labels)",
            hint="a tensor of booleans needs .float() before .mean()",
        )
        value = real_number(value, "what accuracy returns")
        share = right / n
        if math.isclose(value, share, rel_tol=1e-6):
            continue
        if value == right:
            raise Wrong(
                f"{value:g} is the number of right answers out of {n}; divide by the number of images."
            )
        if math.isclose(value, 100 * share, rel_tol=1e-6):
            raise Wrong(f"{value:g} is a percentage; give the share as a number between 0 and 1.")
        if math.isclose(value, 1 - share, rel_tol=1e-6):
            raise Wrong(f"{value:g} is the share of wrong answers: compare with ==, not !=.")
        if value == 0 and right > 0:
            raise Wrong("0 for predictions that are partly right: // is integer division; divide with /.")
        raise Wrong(
            f"{value:g} for {right} right predictions out of {n}; the accuracy is {share:g}. Divide by "
            "the number of images you were given, not a fixed number."
        )
