"""Exercise 6.5 of chapter 6 (notebook 06-regularization): without batch norm, predict the
parameter count and the accuracy, then measure them. The check re-measures the reader's trained
network on the notebook's validation images, so a typed-in accuracy cannot pass."""

import functools

import torch
import torch.nn as nn

import simplecnn as sc
from cnnkit.exercises import Wrong, answered, exercise, real_number, variants, whole_number
from cnnkit.exercises.ch06 import NOTEBOOK, _batch_norm_counts

#: The notebook's ``shift_data``: the first 8,000 training and 2,000 validation images of the
#: seed-0 split. The check measures the reader's network on the same 2,000 validation images.
_SHIFT_TRAIN, _SHIFT_VAL = 8_000, 2_000


@functools.lru_cache(maxsize=1)
def _shift_validation() -> tuple[torch.Tensor, torch.Tensor]:
    from cnnkit import mnist

    data = mnist.load(seed=0)
    return data.x_val[:_SHIFT_VAL], data.y_val[:_SHIFT_VAL]


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _parameter_mistake(n: int, full: int, channels: list[int]) -> str:
    """What a wrong prediction of the parameter count left out or added."""
    c1, c2 = channels
    messages = {
        full: f"{full:,} is the Simple CNN with batch norm: bn1 and bn2 learn a scale γ and a shift β "
        f"for each of their {c1} + {c2} channels, and those go with them.",
        full - (c1 + c2): "that takes out one number per channel; batch norm learns two per channel, "
        "the scale γ and the shift β.",
        full - 4 * (c1 + c2): "that also takes out the running means and variances: they are buffers, "
        "kept in the state dict but not parameters (exercise 6.2).",
        full - 2 * c2: f"that takes out bn2's parameters only; bn1 has 2 × {c1} too.",
        full - 2 * c1: f"that takes out bn1's parameters only; bn2 has 2 × {c2} too.",
        full - 3 * (c1 + c2): "the convolutions keep their biases: batch_norm=False takes out bn1 and bn2 "
        "and nothing else.",
        full - 2 * (c1 + c2) - 2: "num_batches_tracked is a counter of batches, not a parameter.",
    }
    return messages.get(
        n,
        f"{n:,} parameters: start from the Simple CNN's {full:,} and take out what bn1 and bn2 "
        "learn by gradient descent.",
    )


#: Answers to 6.5 that the tests try: a network never trained, and one trained briefly.
_UNTRAINED = """
predicted_params = 582_026
predicted_accuracy = 0.95
without_bn = sc.SimpleCNN(batch_norm=False)
accuracy = 0.95
"""
_BRIEF = """
from cnnkit import mnist

brief = mnist.subset(mnist.load(seed=0), train=3_000, val=2_000)
predicted_params = 582_026
predicted_accuracy = 0.95
torch.manual_seed(0)
without_bn = sc.SimpleCNN(batch_norm=False)
history = sc.train(without_bn, brief, sc.FAST, seed=0)
"""


@exercise(
    "6.5",
    NOTEBOOK,
    "without batch norm: predict, then measure",
    hint="predict first: the Simple CNN has 582,218 parameters, and batch_norm=False takes out bn1 "
    "and bn2. Then build sc.SimpleCNN(batch_norm=False), train it as the max_shift = 1 network "
    "(torch.manual_seed(SEED), then sc.train(without_bn, shift_data, sc.FAST, seed=SEED)) and keep "
    'the validation accuracy it reports (history[-1]["val_acc"]).',
    solution="""
        predicted_params = 582_218 - 2 * (32 + 64)  # bn1 and bn2 learn γ and β for each channel
        predicted_accuracy = 0.95  # your guess, typed before measuring

        from cnnkit import mnist

        shift_data = mnist.subset(mnist.load(seed=0), train=8_000, val=2_000)  # as in the notebook
        torch.manual_seed(0)  # SEED: the same starting weights as the network with batch norm
        without_bn = sc.SimpleCNN(batch_norm=False)
        history = sc.train(without_bn, shift_data, sc.FAST, seed=0)
        accuracy = history[-1]["val_acc"]  # on shift_data's 2,000 validation images
    """,
    wrong=[
        (_UNTRAINED, "it has not been trained"),  # an accuracy typed in for a network never trained
        (  # measured, but never trained
            """
            from cnnkit import mnist

            shift_data = mnist.subset(mnist.load(seed=0), train=8_000, val=2_000)
            predicted_params = 582_026
            predicted_accuracy = 0.95
            without_bn = sc.SimpleCNN(batch_norm=False)
            accuracy = sc.evaluate(without_bn, sc.Batches(shift_data.x_val, shift_data.y_val, 500))[1]
            """,
            "it has not been trained",
        ),
        # trained (briefly), but the accuracy typed in, or given as a percentage
        (_BRIEF + "accuracy = 0.95", "not a number typed in"),
        (_BRIEF + 'accuracy = 100 * history[-1]["val_acc"]', "is a percentage; give the fraction"),
        *variants(
            _UNTRAINED,
            {
                "with batch norm's": ("582_026", "582_218", "is the Simple CNN with batch norm"),
                "one per channel": ("582_026", "582_218 - (32 + 64)", "takes out one number per channel"),
                "buffers": ("582_026", "582_218 - 4 * (32 + 64)", "also takes out the running means"),
                "bn2 only": ("582_026", "582_218 - 2 * 64", "takes out bn2's parameters only"),
                "a percentage": ("_accuracy = 0.95", "_accuracy = 95", "is a percentage; give a fraction"),
                "still with batch norm": ("(batch_norm=False)", "()", "still has batch-norm layers"),
            },
        ),
    ],
)
def _(predicted_params, predicted_accuracy, without_bn, accuracy):
    full = _count(sc.SimpleCNN())
    expected = _count(sc.SimpleCNN(batch_norm=False))
    _, _, channels = _batch_norm_counts()
    n = whole_number(predicted_params, "predicted_params")
    if n != expected:
        raise Wrong(_parameter_mistake(n, full, channels))
    guess = real_number(predicted_accuracy, "predicted_accuracy")
    if 1 < guess <= 100:
        raise Wrong(f"predicted_accuracy {guess:g} is a percentage; give a fraction, like 0.95.")
    if not 0 <= guess <= 1:
        raise Wrong(f"predicted_accuracy {guess:g}: an accuracy is a fraction between 0 and 1.")
    network = answered(without_bn, "without_bn")
    if not isinstance(network, nn.Module):
        raise Wrong(f"without_bn should be the trained network (an nn.Module); got {network!r:.60}.")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in network.modules()):
        raise Wrong(
            "without_bn still has batch-norm layers (bn1, bn2): build it with sc.SimpleCNN(batch_norm=False)."
        )
    if _count(network) != expected:
        raise Wrong(
            f"without_bn has {_count(network):,} parameters, not the {expected:,} of "
            "sc.SimpleCNN(batch_norm=False): build it with that call."
        )
    given = real_number(accuracy, "accuracy")
    x_val, y_val = _shift_validation()
    _, measured = sc.evaluate(network, sc.Batches(x_val, y_val, sc.EVAL_BATCH_SIZE))
    same = abs(given - measured) < 0.5 / len(y_val)  # the same number of images right
    if not same and abs(given - 100 * measured) < 50 / len(y_val):
        raise Wrong(f"accuracy {given:g} is a percentage; give the fraction, {measured:.4f}.")
    if measured < 0.2:
        raise Wrong(
            f"without_bn gets {measured:.1%} of shift_data's validation images right, what guessing "
            "gets: it has not been trained. Train it first, then take the accuracy the training reports."
        )
    if not same:
        raise Wrong(
            f"accuracy is {given:.2%}, but without_bn gets {measured:.2%} of shift_data's "
            f"{len(y_val):,} validation images right: give the accuracy the training measured "
            '(history[-1]["val_acc"] or sc.evaluate), not a number typed in.'
        )
    off = 100 * (guess - measured)
    verdict = f"{abs(off):.1f} points too {'high' if off > 0 else 'low'}" if abs(off) >= 0.05 else "right on"
    return (
        f"(without batch norm: {measured:.2%} of shift_data's validation images right; your prediction "
        f"was {verdict}. Batch norm's {full - expected} parameters are {(full - expected) / full:.2%} "
        "of the network.)"
    )
