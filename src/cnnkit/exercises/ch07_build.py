"""Exercise 7.1: the reader writes the Simple CNN (exercise 7.2, the loop, is in ``ch07_loop``).

The checks are three proofs that the reader's code is the course's model and loop:

1. the same parameters, with the same names and shapes (``state_dict``);
2. the reference model's trained weights load into the reader's class and give the same logits;
3. from one seed, the same initial weights, the same training-mode output (same dropout
   masks) and, for the loop, the same losses and weights after the first steps as
   ``simplecnn.train_epoch``.

When a proof fails, the message says where: which name or shape, which layer's output first
differs (and how that layer differs from the course's), which step's loss first disagrees.
The reader's code must build everything itself: a subclass of, or a wrapper around,
``sc.SimpleCNN`` or ``sc.train_epoch`` is refused.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit.exercises import NotAnswered, Wrong, answered, exercise

NOTEBOOK = "07-simple-cnn-mnist"
SEED = 0

MODEL_SOLUTION = """
from collections import OrderedDict


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(1, 32, kernel_size=5),  # chapter 1: 32 filters of 5x5, 28 -> 24
                bn1=nn.BatchNorm2d(32),  # chapter 6
                act1=nn.ReLU(),  # chapter 3
                pool1=nn.MaxPool2d(2),  # chapter 2: 24 -> 12
                drop1=nn.Dropout(0.45),  # chapter 6
                conv2=nn.Conv2d(32, 64, kernel_size=5),  # 12 -> 8
                bn2=nn.BatchNorm2d(64),
                act2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),  # 8 -> 4
                drop2=nn.Dropout(0.35),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),  # (N, 64, 4, 4) -> (N, 1024)
                fc1=nn.Linear(64 * 4 * 4, 512),
                act3=nn.ReLU(),
                fc2=nn.Linear(512, 10),  # ten logits; the softmax lives in the loss (chapter 4)
            )
        )

    def forward(self, x):
        return self.classifier(self.features(x))
"""

#: Wrong versions of the model: what changed -> (text of the solution, its replacement, a part of
#: the message the check must give). The tests run each through the check, and chapter 7's
#: notebook test runs some of them in the notebook.
MODEL_MISTAKES = {
    "bn2 missing": ("                bn2=nn.BatchNorm2d(64),\n", "", "missing: features.bn2.weight"),
    "dropout 0.40": ("Dropout(0.45)", "Dropout(0.40)", "at features.drop1: yours is Dropout(p=0.4"),
    "ReLU before batch norm": (
        "bn1=nn.BatchNorm2d(32),  # chapter 6\n                act1=nn.ReLU(),  # chapter 3\n",
        "act1=nn.ReLU(),  # chapter 3\n                bn1=nn.BatchNorm2d(32),  # chapter 6\n",
        "Your layers run in the order conv1, act1, bn1",
    ),
    "act3 missing": ("                act3=nn.ReLU(),\n", "", "your network has no layer classifier.act3"),
    "drop2 missing": ("drop2=nn.Dropout(0.35),", "", "your network has no layer features.drop2"),
    "average pooling": ("pool1=nn.MaxPool2d", "pool1=nn.AvgPool2d", "at features.pool1: yours is AvgPool2d"),
    "fc1 from 5x5": ("64 * 4 * 4", "64 * 5 * 5", "classifier.fc1.weight is (512, 1600), the course's"),
    "3x3 kernels": ("64, kernel_size=5", "64, kernel_size=3", "features.conv2.weight is (64, 32, 3, 3)"),
    "layers created in another order": (
        "        self.features = nn.Sequential(",
        "        head = nn.Linear(512, 10)\n        self.features = nn.Sequential(",
        "the initial values of features.conv1.weight differ",
    ),
    "a subclass of sc.SimpleCNN": (
        MODEL_SOLUTION.strip(),
        "class SimpleCNN(sc.SimpleCNN):\n    pass",
        "is a subclass of the course's sc.SimpleCNN",
    ),
    "a wrapper around sc.SimpleCNN": (
        MODEL_SOLUTION.strip(),
        "class SimpleCNN(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        inner = sc.SimpleCNN()\n        self.features, self.classifier = inner.features, inner.classifier\n\n"
        "    def forward(self, x):\n        return self.classifier(self.features(x))",
        "uses the course's sc.SimpleCNN: write it yourself, layer by layer",
    ),
}


class _UsedTheCourse(Exception):
    pass


@contextlib.contextmanager
def _without_the_course():
    """While the reader's code runs, ``sc.SimpleCNN`` and ``sc.train_epoch`` raise: the reader's
    code must not build on them. (The checks hold their own references to both.)"""

    def refuse(name):
        def refused(*args, **kwargs):
            raise _UsedTheCourse(name)

        return refused

    saved = sc.SimpleCNN, sc.train_epoch
    sc.SimpleCNN, sc.train_epoch = refuse("sc.SimpleCNN"), refuse("sc.train_epoch")
    try:
        yield
    finally:
        sc.SimpleCNN, sc.train_epoch = saved


def _run(what: str, f, *args):
    """``f(*args)`` with the course's model and loop out of reach; errors become messages."""
    try:
        with _without_the_course():
            return f(*args)
    except _UsedTheCourse as used:
        how = "step by step" if "train_epoch" in str(used) else "layer by layer"
        raise Wrong(f"{what} uses the course's {used}: write it yourself, {how}.") from None
    except (NotAnswered, Wrong):
        raise
    except TypeError as err:
        if "ellipsis" in str(err):  # nn.Sequential was given a `...` where a layer belongs
            raise NotAnswered("some layers are still `...`") from None
        raise Wrong(f"{what} raised TypeError: {err}") from None
    except Exception as err:  # the reader's code: any error is an answer to explain
        raise Wrong(f"{what} raised {type(err).__name__}: {err}") from None


def _leaves(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if name and not list(m.children())}


def _order(model: nn.Module) -> str:
    return ", ".join(name.rsplit(".", 1)[-1] for name in _leaves(model))


def _outputs(model: nn.Module, x: torch.Tensor, seed: int | None) -> tuple[list[str], dict, torch.Tensor]:
    """Run ``model`` on ``x`` and note every leaf layer's output, in the order they ran."""
    ran, outs, handles = [], {}, []
    for name, module in _leaves(model).items():

        def note(module, inputs, output, name=name):
            ran.append(name)
            outs[name] = output.detach().clone()

        handles.append(module.register_forward_hook(note))
    try:
        if seed is not None:
            torch.manual_seed(seed)
        y = model(x)
    finally:
        for h in handles:
            h.remove()
    return ran, outs, y


def _where_they_differ(yours: nn.Module, course: nn.Module, x: torch.Tensor, seed: int | None) -> str:
    """A sentence naming the first layer (in the course's order) whose output differs."""
    _, mine, _ = _run("your forward pass", _outputs, yours, x, seed)
    ran, theirs, _ = _outputs(course, x, seed)
    your_layers, course_layers = _leaves(yours), _leaves(course)
    order = ""
    if _order(yours) != _order(course):
        order = f" Your layers run in the order {_order(yours)}; the course's in the order {_order(course)}."
    for name in ran:
        if name not in mine:
            what = "has no layer" if name not in your_layers else "never runs the layer"
            return f"your network {what} {name} ({course_layers[name]}).{order}"
        a, b = mine[name], theirs[name]
        if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-4, atol=1e-5):
            detail = ""
            if repr(your_layers[name]) != repr(course_layers[name]):
                detail = f": yours is {your_layers[name]}, the course's is {course_layers[name]}"
            elif order:
                detail = ", because its input already differs"
            shape = f" (shape {tuple(a.shape)} against {tuple(b.shape)})" if a.shape != b.shape else ""
            return f"the outputs first differ at {name}{shape}{detail}.{order}"
    return f"the layers agree, but the network's output does not: check forward().{order}"


def _course_model(seed: int = SEED) -> nn.Module:
    torch.manual_seed(seed)
    return sc.SimpleCNN()


def _shape_differences(mine: dict, course: dict) -> list[str]:
    missing = [k for k in course if k not in mine]
    extra = [k for k in mine if k not in course]
    shapes = [
        f"{k} is {tuple(mine[k].shape)}, the course's {tuple(course[k].shape)}"
        for k in course
        if k in mine and mine[k].shape != course[k].shape
    ]
    found = []
    if missing:
        found.append("missing: " + ", ".join(missing))
    if extra:
        found.append("not in the course's model: " + ", ".join(extra))
    return found + shapes


def check_model(cls) -> str:
    """The three proofs for the reader's class; returns a note for the pass."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise Wrong(f"SimpleCNN should be a class derived from nn.Module; got {cls!r}.")
    if issubclass(cls, sc.SimpleCNN):
        raise Wrong("your SimpleCNN is a subclass of the course's sc.SimpleCNN: derive it from nn.Module.")
    course = _course_model()
    torch.manual_seed(SEED)
    yours = _run("building your SimpleCNN", cls)
    # 1. the same names and shapes
    problems = _shape_differences(yours.state_dict(), course.state_dict())
    if problems:
        raise Wrong(
            "proof 1, names and shapes: your state_dict differs from the course's: "
            + "; ".join(problems)
            + f". Your layers: {_order(yours)}; the course's: {_order(course)}."
        )
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    yours.eval()
    answered(_run("your forward pass", yours, x), "what forward() returns")

    # 2. the reference weights give the same logits
    from cnnkit import checkpoints

    reference, _ = checkpoints.load_reference()
    yours.load_state_dict(reference.state_dict())
    yours.eval()
    reference.eval()
    with torch.no_grad():
        same = torch.allclose(_run("your forward pass", yours, x), reference(x), rtol=1e-4, atol=1e-5)
        if not same:
            where = _where_they_differ(yours, reference, x, None)
            raise Wrong(f"proof 2, trained weights: with the reference weights your logits differ; {where}")

    # 3. one seed, the same start and the same training-mode output (dropout masks included)
    torch.manual_seed(SEED)
    yours = _run("building your SimpleCNN", cls)
    for (name, a), b in zip(yours.state_dict().items(), course.state_dict().values()):
        if not torch.equal(a, b):
            raise Wrong(
                f"proof 3, one seed: the initial values of {name} differ from the course's. Creating a "
                "layer draws its random initial weights, so create the layers in the course's order, "
                "each once, and nothing else in between."
            )
    yours.train()
    course.train()
    torch.manual_seed(SEED)
    mine = _run("your forward pass", yours, x)
    torch.manual_seed(SEED)
    theirs = course(x)
    if mine.shape != theirs.shape or not torch.allclose(mine, theirs, rtol=1e-4, atol=1e-5):
        where = _where_they_differ(yours, course, x, SEED)
        raise Wrong(f"proof 3, training mode: from the same seed your network's output differs; {where}")
    names = len(course.state_dict())
    return (
        f"Your class is the Simple CNN: the same {names} names and shapes, the same logits with the "
        "reference weights, and from one seed the same start and the same training-mode output."
    )


@exercise(
    "7.1",
    NOTEBOOK,
    "your Simple CNN",
    kind="code",
    hint="replace each `...` with its layer: nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, "
    "nn.Dropout, nn.Flatten, nn.Linear, with the sizes of the table on the theory page; forward() "
    "returns self.classifier(self.features(x)).",
    solution=MODEL_SOLUTION,
    mistakes=MODEL_MISTAKES,
)
def _(SimpleCNN):  # noqa: N803 (the reader's name for the class)
    return check_model(SimpleCNN)
