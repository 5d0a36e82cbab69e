"""Exercises of chapter 7, the Simple CNN on MNIST (notebook 07-simple-cnn-mnist).

The two code exercises run the reader's loop on a tiny network and tiny random batches, so a
check takes milliseconds; they compare with reference loops, including the usual mistakes, to
say which mistake was made.
"""

import math

import torch
import torch.nn as nn

from cnnkit.exercises import Wrong, exercise, real_number, whole_number

NOTEBOOK = "07-simple-cnn-mnist"


@exercise(
    "7.3",
    NOTEBOOK,
    "sizes with 'same' padding",
    hint="with padding 2 a 5×5 convolution keeps 28×28; each 2×2 pooling halves the size; fc1 has "
    "one weight per input and unit, plus one bias per unit.",
    solution="""
        flat_size = 64 * 7 * 7
        fc1_params = flat_size * 512 + 512
    """,
    mistakes={
        "no padding": ("64 * 7 * 7", "1024", "1024 is the Simple CNN without padding"),
        "one pooling": ("64 * 7 * 7", "64 * 14 * 14", "forgets the second pooling"),
        "32 channels": ("64 * 7 * 7", "32 * 7 * 7", "conv2 has 64 output channels, not 32"),
        "no biases": (" + 512", "", "counts the weights only"),
        "weights added": ("flat_size * 512", "flat_size", "one weight for every (input, unit) pair"),
    },
)
def _(flat_size, fc1_params):
    features = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2)
    )
    with torch.no_grad():
        expected = features(torch.zeros(1, 1, 28, 28)).numel()
    flat_size = whole_number(flat_size, "flat_size")
    if flat_size == 64 * 4 * 4:
        raise Wrong(
            "1024 is the Simple CNN without padding; with padding 2 each 5×5 convolution keeps "
            "its input's height and width."
        )
    if flat_size == 64 * 14 * 14:
        raise Wrong("64 × 14 × 14 forgets the second pooling: 28 → 14 after pool1, 14 → 7 after pool2.")
    if flat_size % 64 != 0 and flat_size % 32 == 0:
        raise Wrong(f"{flat_size} = 32 × {flat_size // 32}: conv2 has 64 output channels, not 32.")
    if flat_size != expected:
        raise Wrong(f"{flat_size} values: flatten gives channels × height × width of conv2's pooled output.")
    params = whole_number(fc1_params, "fc1_params")
    if params == flat_size * 512:
        raise Wrong(f"{params} counts the weights only; each of the 512 units also has a bias.")
    if params != flat_size * 512 + 512:
        raise Wrong(
            f"{params} parameters: a linear layer from {flat_size} inputs to 512 units has one "
            "weight for every (input, unit) pair plus 512 biases."
        )
    return f"(fc1 would hold {params / (64 * 4 * 4 * 512 + 512):.1f} times as many parameters as without padding)"


@exercise(
    "7.4",
    NOTEBOOK,
    "the loss before training",
    hint="an untrained classifier gives every one of C classes a probability of about 1/C, and "
    "cross-entropy is −ln(probability of the right class).",
    solution="""
        import math

        start_loss_100 = math.log(100)
        start_loss_2 = math.log(2)
    """,
    wrong=[
        ("start_loss_100 = 2.0\nstart_loss_2 = 0.30103", "is log base 10"),
        ("start_loss_100 = 0.01\nstart_loss_2 = 0.5", "is the probability of the right class"),
        ("start_loss_100 = 6.643856\nstart_loss_2 = 1.0", "is log base 2 (bits)"),
        ("start_loss_100 = 4.60517\nstart_loss_2 = 2.302585", "ln 10 is MNIST's start"),
    ],
)
def _(start_loss_100, start_loss_2):
    for value, k in ((start_loss_100, 100), (start_loss_2, 2)):
        value = real_number(value, f"the loss for {k} classes")
        if math.isclose(value, math.log(k), rel_tol=5e-3):  # 4.6 and 0.69 are right too
            continue
        if math.isclose(value, math.log10(k), rel_tol=1e-3):
            raise Wrong(f"{value:g} for {k} classes is log base 10; cross-entropy uses ln (base e).")
        if math.isclose(value, math.log2(k), rel_tol=1e-3):
            raise Wrong(f"{value:g} for {k} classes is log base 2 (bits); PyTorch's loss uses ln.")
        if math.isclose(value, 1 / k, rel_tol=1e-3):
            raise Wrong(f"{value:g} is the probability of the right class; the loss is −ln of it.")
        if math.isclose(value, math.log(10), rel_tol=1e-3):
            raise Wrong(f"ln 10 is MNIST's start; with {k} classes each gets about 1/{k}.")
        raise Wrong(f"{value:g} for {k} classes: the loss of a uniform guess is −ln(1/{k}) = ln {k}.")


# --- The code exercises: a tiny network on tiny batches, checked against reference loops -----


def _tiny_batches(sizes=(16, 16, 6), features=8, classes=3, seed=7):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, features, generator=generator), torch.randint(classes, (n,), generator=generator))
        for n in sizes
    ]


class _Spy(nn.Module):
    """Wraps a network and notes, at each forward call, the mode and whether gradients are on."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.net(x)


def _evaluation_setup():
    """A network with batch norm and dropout (so training mode changes its answers) and three
    batches of 16, 16 and 6 whose labels make the per-batch accuracies 3/4, 3/4 and 0."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)
        )
        net.train()
        net(torch.randn(64, 8))  # running statistics that differ from a fresh layer's
    net.eval()
    batches = []
    for i, (x, _) in enumerate(_tiny_batches()):
        with torch.no_grad():
            pred = net(x).argmax(1)
        y = pred.clone()
        wrong = torch.arange(len(y)) % 4 == 0 if i < 2 else torch.ones(len(y), dtype=torch.bool)
        y[wrong] = (pred[wrong] + 1) % 3
        batches.append((x, y))
    net.train()
    return net, batches


@exercise(
    "7.5",
    NOTEBOOK,
    "the evaluation loop",
    kind="code",
    hint="model.eval(); then, inside torch.no_grad(), count the correct predictions of every batch "
    "(logits.argmax(1) == y) and the images seen; return correct / seen.",
    solution="""
        def accuracy(model, batches):
            model.eval()  # dropout off; batch norm uses its running statistics
            correct, seen = 0, 0
            with torch.no_grad():  # no graph for gradients: less memory, less time
                for x, y in batches:
                    correct += (model(x).argmax(1) == y).sum().item()
                    seen += len(y)
            return correct / seen
    """,
    mistakes={
        "no eval": ("model.eval()", "pass", "the model was in training mode"),
        "no no_grad": ("with torch.no_grad():", "if True:", "gradients were on"),
        "per batch": ((".sum()", "len(y)"), (".float().mean()", "1"), "the mean of the per-batch accuracies"),
        "a percentage": ("return correct / seen", "return 100 * correct / seen", "is a percentage"),
        "a count": ("correct / seen", "correct", "is the number of correct predictions"),
        "one batch": ("for x, y in batches:", "for x, y in batches[:1]:", "the model saw 1 of the 3 batches"),
    },
)
def _(accuracy):
    net, batches = _evaluation_setup()
    spy = _Spy(net)
    with torch.random.fork_rng():
        value = real_number(accuracy(spy, batches), "what accuracy(model, batches) returns")
    seen = sum(len(y) for _, y in batches)
    correct = 12 + 12 + 0  # by construction: 3/4 of each batch of 16, none of the last 6
    if len(spy.calls) < len(batches):
        raise Wrong(f"the model saw {len(spy.calls)} of the {len(batches)} batches: loop over all of them.")
    if any(training for training, _ in spy.calls):
        raise Wrong(
            "the model was in training mode: dropout dropped values and batch norm used the "
            "batch's statistics. Call model.eval() before the loop."
        )
    if any(grad for _, grad in spy.calls):
        raise Wrong(
            "gradients were on: PyTorch kept every layer's inputs for a backward pass that never "
            "comes. Put the loop inside `with torch.no_grad():`."
        )
    if math.isclose(value, correct / seen):
        return None
    if math.isclose(value, 100 * correct / seen):
        raise Wrong(f"{value:g} is a percentage; return a fraction between 0 and 1.")
    if math.isclose(value, correct):
        raise Wrong(f"{value:g} is the number of correct predictions; divide by the number of images.")
    if math.isclose(value, (0.75 + 0.75 + 0.0) / 3):
        raise Wrong(
            "that is the mean of the per-batch accuracies, but the last batch holds only 6 images: "
            "add up the correct predictions and the images over all batches, then divide."
        )
    raise Wrong(f"{value:g}, but {correct} of the {seen} images are classified correctly.")
