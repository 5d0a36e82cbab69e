"""Exercises of chapter 3, activations (notebook 03-activations).

The checks compare the reader's functions with PyTorch's (``F.softplus``, autograd, two real
``nn.Linear`` layers) and the reader's numbers with values computed from real layers, so a
check takes milliseconds.
"""

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnkit.exercises import Wrong, answered, exercise, reader_call, real_number, tensor

NOTEBOOK = "03-activations"


_tensor = functools.partial(tensor, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# 3.1 softplus and its derivative
# ---------------------------------------------------------------------------------------------


@exercise(
    "3.1",
    NOTEBOOK,
    "softplus and its derivative",
    kind="code",
    hint="softplus(x) = log(1 + eˣ); write it as max(x, 0) + log(1 + e^(−|x|)) so that nothing "
    "overflows. Its derivative eˣ / (1 + eˣ) is a function you already know.",
    solution="""
        def softplus(x):
            return torch.log1p(torch.exp(-x.abs())) + x.clamp(min=0)  # log(1 + e^x), no overflow

        def softplus_grad(x):
            return torch.sigmoid(x)  # e^x / (1 + e^x) = 1 / (1 + e^-x)
    """,
    mistakes={
        "naive": ("log1p(torch.exp(-x.abs())) + x.clamp(min=0)", "log(1 + torch.exp(x))", "e^100 overflows"),
        "naive slope": ("sigmoid(x)", "exp(x) / (1 + torch.exp(x))", "softplus_grad(100) is not a number"),
        "ReLU's slope": ("torch.sigmoid(x)", "(x > 0).float()", "that is ReLU's derivative"),
        "ReLU": ("torch.log1p(torch.exp(-x.abs())) + ", "", "softplus(0) gives 0"),
        "sigmoid's slope": ("sigmoid(x)", "sigmoid(x) * (1 - torch.sigmoid(x))", "that is σ(x)(1 − σ(x))"),
    },
)
def _(softplus, softplus_grad):
    x = torch.arange(-200, 201) / 10  # -20 to 20 in steps of 0.1, with 0 itself
    mine = _tensor(reader_call(softplus, x.clone(), what="softplus(x)"), "what softplus(x) returns")
    if mine.shape != x.shape:
        raise Wrong(
            f"softplus(x) has shape {tuple(mine.shape)} for x of shape {tuple(x.shape)}: work element by element."
        )
    if not torch.allclose(mine, F.softplus(x), rtol=1e-4, atol=1e-5):
        bad = int((mine - F.softplus(x)).abs().argmax())
        raise Wrong(
            f"softplus({x[bad].item():g}) gives {mine[bad].item():.5g}, but log(1 + e^x) is "
            f"{F.softplus(x)[bad].item():.5g} there."
        )
    far = torch.tensor([-100.0, 100.0])
    mine_far = _tensor(reader_call(softplus, far.clone(), what="softplus(x)"), "what softplus(x) returns")
    if not torch.isfinite(mine_far).all():
        raise Wrong(
            f"softplus(100) gives {mine_far[1].item()}: e^100 overflows float32. Use "
            "log(1 + eˣ) = max(x, 0) + log(1 + e^(−|x|)), which never exponentiates a positive number."
        )
    if not torch.allclose(mine_far, F.softplus(far), rtol=1e-4):
        raise Wrong(f"softplus(±100) gives {mine_far.tolist()}; it should be about [0, 100].")

    wide = torch.cat([x, far])
    grad = wide.clone().requires_grad_(True)
    F.softplus(grad).backward(torch.ones_like(grad))  # the true derivative, by autograd
    yours = _tensor(
        reader_call(softplus_grad, wide.clone(), what="softplus_grad(x)"), "what softplus_grad(x) returns"
    )
    if yours.shape != wide.shape:
        raise Wrong(f"softplus_grad(x) has shape {tuple(yours.shape)}; it should match x.")
    if not torch.isfinite(yours).all():
        raise Wrong(
            "softplus_grad(100) is not a number: e^100 / (1 + e^100) is ∞/∞ in float32. Divide "
            "numerator and denominator by eˣ: 1 / (1 + e^(−x)), the sigmoid."
        )
    if torch.equal(yours[:401], (x > 0).float()):
        raise Wrong("that is ReLU's derivative, a step; softplus is smooth, and so is its derivative.")
    if torch.allclose(yours, torch.sigmoid(wide) * (1 - torch.sigmoid(wide)), atol=1e-6):
        raise Wrong(
            "that is σ(x)(1 − σ(x)), the slope of the sigmoid; the slope of softplus is "
            "eˣ / (1 + eˣ), a function one derivative earlier."
        )
    if not torch.allclose(yours, grad.grad, rtol=1e-4, atol=1e-6):
        bad = int((yours - grad.grad).abs().argmax())
        raise Wrong(
            f"softplus_grad({wide[bad].item():g}) gives {yours[bad].item():.4g}, but the slope of "
            f"softplus there is {grad.grad[bad].item():.4g}: differentiate log(1 + eˣ) once."
        )


# ---------------------------------------------------------------------------------------------
# 3.2 a bound on vanishing
# ---------------------------------------------------------------------------------------------


@exercise(
    "3.2",
    NOTEBOOK,
    "a bound on vanishing",
    hint="each sigmoid layer multiplies the gradient by σ'(x) = σ(x)(1 − σ(x)); find its largest "
    "value, then take ten such factors.",
    solution="largest_factor = 0.25**10",
    wrong=[
        ("largest_factor = 0.25", "is the bound for one layer"),
        ("largest_factor = 0.25 * 10", "adds the factors"),
        ("largest_factor = 4**10", "how many times smaller the gradient gets"),
        ("largest_factor = 0.5**10", "0.5 is σ(0), the sigmoid's value"),
        ("largest_factor = 1.0", "would not shrink the gradient at all"),
    ],
)
def _(largest_factor):
    value = real_number(largest_factor, "largest_factor")
    x = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    peak = (torch.sigmoid(x) * (1 - torch.sigmoid(x))).max().item()  # the largest slope, 1/4
    expected = peak**10
    if math.isclose(value, expected, rel_tol=1e-2):
        return f"(about one millionth: {expected:.2e})"
    if math.isclose(value, peak, rel_tol=1e-2):
        raise Wrong(f"{value:g} is the bound for one layer; ten layers multiply ten such factors.")
    if math.isclose(value, 10 * peak, rel_tol=1e-2):
        raise Wrong(f"{value:g} adds the factors; back-propagation multiplies them, one per layer.")
    if math.isclose(value, 1 / expected, rel_tol=1e-2):
        raise Wrong(
            f"{value:g} is how many times smaller the gradient gets; the factor itself is 1 over that."
        )
    if math.isclose(value, 0.5**10, rel_tol=1e-2):
        raise Wrong("0.5 is σ(0), the sigmoid's value; the factor is its slope σ(0)(1 − σ(0)).")
    if value >= 1:
        raise Wrong(f"{value:g} would not shrink the gradient at all, but σ'(x) is below 1 everywhere.")
    raise Wrong(f"{value:g}: the largest slope of the sigmoid is σ'(0) = 1/4; take it to the 10th power.")


# ---------------------------------------------------------------------------------------------
# 3.3 two linear layers collapse to one
# ---------------------------------------------------------------------------------------------


@exercise(
    "3.3",
    NOTEBOOK,
    "two linear layers are one",
    kind="code",
    hint="expand W2 (W1 x + b1) + b2: the matrix in front of x is W, the rest is b. With "
    "nn.Linear's weights, a matrix product is @.",
    solution="""
        def collapse(W1, b1, W2, b2):
            return W2 @ W1, W2 @ b1 + b2
    """,
    mistakes={
        "W1 W2": ("W2 @ W1,", "W1 @ W2,", "mat1 and mat2 shapes cannot be multiplied"),
        "b1 + b2": ("W2 @ b1 + b2", "b1 + b2", "must match the size of tensor b"),
        "b2 alone": ("W2 @ b1 + b2", "b2", "b misses W2 b1"),
        "no b2": ("W2 @ b1 + b2", "W2 @ b1", "b misses b2"),
        "no b": (", W2 @ b1 + b2", "", "collapse should return two things"),
    },
)
def _(collapse):
    with torch.random.fork_rng():
        torch.manual_seed(3)
        first, second = nn.Linear(4, 3), nn.Linear(3, 2)
        x = torch.randn(100, 4)
    W1, b1, W2, b2 = (p.detach() for p in (first.weight, first.bias, second.weight, second.bias))
    shapes = "W1 is 3×4, b1 has 3 values, W2 is 2×3, b2 has 2"
    result = answered(
        reader_call(collapse, W1, b1, W2, b2, what="collapse(W1, b1, W2, b2)", hint=shapes),
        "what collapse returns",
    )
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Wrong("collapse should return two things, W and b: `return W, b`.")
    W, b = _tensor(result[0], "W"), _tensor(result[1], "b")
    if W.shape != (2, 4):
        raise Wrong(f"W has shape {tuple(W.shape)}; it maps 4 inputs to 2 outputs, so it is 2×4.")
    if b.shape != (2,):
        raise Wrong(f"b has shape {tuple(b.shape)}; there is one bias per output, 2 of them.")
    with torch.no_grad():
        target = second(first(x))
    if not torch.allclose(W, W2 @ W1, atol=1e-5):
        raise Wrong("W is off: the stack applies W1 first and W2 second, so W = W2 W1 (in that order).")
    if torch.allclose(b, b2, atol=1e-5):
        raise Wrong("b misses W2 b1: the first layer's bias also goes through the second layer's weights.")
    if torch.allclose(b, W2 @ b1, atol=1e-5):
        raise Wrong("b misses b2, the second layer's own bias.")
    if not torch.allclose(x @ W.T + b, target, atol=1e-5):
        raise Wrong(
            "with your W and b, one layer does not give the outputs of the two: expand W2 (W1 x + b1) + b2."
        )


# ---------------------------------------------------------------------------------------------
# 3.4 and 3.5 initialisation
# ---------------------------------------------------------------------------------------------


def _fan_in(shape) -> int:
    """Inputs per output unit: in_features, or in_channels × kernel height × kernel width."""
    return math.prod(shape[1:])


@exercise(
    "3.4",
    NOTEBOOK,
    "the initial weights of conv2",
    hint="a filter of nn.Conv2d(32, 64, kernel_size=5) sees fan_in = 32 × 5 × 5 inputs; PyTorch "
    "draws from U(−1/√fan_in, 1/√fan_in), and He's standard deviation is √(2/fan_in).",
    solution="""
        fan_in = 32 * 5 * 5
        default_bound = 1 / fan_in**0.5
        he_std = (2 / fan_in) ** 0.5
    """,
    mistakes={
        "input channels only": ("32 * 5 * 5", "32", "counts the input channels only"),
        "fan_out": ("32 * 5 * 5", "64 * 5 * 5", "uses fan_out"),
        "He's uniform bound": ("1 / fan_in**0.5", "(6 / fan_in) ** 0.5", "the bound of He's uniform version"),
        "b/√3": ("1 / fan_in**0.5", "1 / (3 * fan_in) ** 0.5", "the standard deviation of U(−b, b)"),
        "no ReLU factor": ("(2 / fan_in)", "(1 / fan_in)", "a ReLU zeroes half of it"),
        "the variance": ("(2 / fan_in) ** 0.5", "2 / fan_in", "2/fan_in is He's variance"),
    },
)
def _(default_bound, he_std):
    with torch.random.fork_rng():
        layer = nn.Conv2d(32, 64, kernel_size=5)
    fan_in = _fan_in(layer.weight.shape)
    bound, std = 1 / math.sqrt(fan_in), math.sqrt(2 / fan_in)
    assert layer.weight.abs().max().item() <= bound  # the formula is PyTorch's
    value = real_number(default_bound, "default_bound")
    if not math.isclose(value, bound, rel_tol=1e-2):
        if math.isclose(value, 1 / math.sqrt(32), rel_tol=1e-2):
            raise Wrong(
                "1/√32 counts the input channels only; each of them brings a 5×5 kernel: fan_in = 32 × 25."
            )
        if math.isclose(value, 1 / math.sqrt(64 * 25), rel_tol=1e-2):
            raise Wrong("1/√1600 uses fan_out (64 × 25); PyTorch's default uses fan_in = 32 × 25 = 800.")
        if math.isclose(value, math.sqrt(6 / fan_in), rel_tol=1e-2):
            raise Wrong(
                "√(6/fan_in) is the bound of He's uniform version; PyTorch's default (a = √5) is 1/√fan_in."
            )
        if math.isclose(value, bound / math.sqrt(3), rel_tol=1e-2):
            raise Wrong(f"{value:.4g} is the standard deviation of U(−b, b), b/√3; the question asks for b.")
        raise Wrong(
            f"default_bound {value:.4g}: PyTorch draws from U(−1/√fan_in, 1/√fan_in), fan_in = 32 × 5 × 5."
        )
    value = real_number(he_std, "he_std")
    if not math.isclose(value, std, rel_tol=1e-2):
        if math.isclose(value, 2 / fan_in, rel_tol=1e-2):
            raise Wrong("2/fan_in is He's variance; the standard deviation is its square root.")
        if math.isclose(value, math.sqrt(1 / fan_in), rel_tol=1e-2):
            raise Wrong(
                "√(1/fan_in) keeps the signal's size through linear layers, but a ReLU zeroes half of "
                "it: He doubles the variance, √(2/fan_in)."
            )
        raise Wrong(f"he_std {value:.4g}: He's standard deviation is √(2/fan_in) with fan_in = 32 × 5 × 5.")
    return f"(He's weights are {std / (bound / math.sqrt(3)):.2f} times as spread as PyTorch's default)"


def _signal_ratio(weights) -> float:
    """Standard deviation after a stack of bias-free ReLU layers with these weights, over that
    after the first layer."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        h = torch.randn(1000, weights[0].shape[1])
    stds = []
    for w in weights:
        h = F.relu(h @ w.T)
        stds.append(h.std().item())
    return stds[-1] / stds[0]


@exercise(
    "3.5",
    NOTEBOOK,
    "He initialisation",
    kind="code",
    hint="fan_in is the product of every size but the first (shape[1] for a linear layer, "
    "in_channels × kh × kw for a convolution); return torch.randn(shape) * √(2 / fan_in).",
    solution="""
        import math

        def he_weights(shape):
            fan_in = math.prod(shape[1:])  # inputs per output unit
            return torch.randn(shape) * math.sqrt(2 / fan_in)
    """,
    mistakes={
        "in_channels only": ("math.prod(shape[1:])", "shape[1]", "√(2/32): 32 is the input channels only"),
        "fan_out": ("math.prod(shape[1:])", "shape[0]", "√(2/512): 512 is the number of outputs"),
        "a fixed scale": ("math.sqrt(2 / fan_in)", "0.01", "the standard deviation is 0.01"),
        "no ReLU factor": ("2 / fan_in", "1 / fan_in", "standard deviation √(1/fan_in)"),
        "the variance": ("math.sqrt(2 / fan_in)", "2 / fan_in", "is 2/fan_in, He's variance"),
        "the shape reversed": ("randn(shape)", "randn(shape[::-1])", "has shape (1024, 512)"),
    },
)
def _(he_weights):
    def draw(shape, seed=1):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            w = answered(reader_call(he_weights, shape, what=f"he_weights({shape})"), f"he_weights({shape})")
        w = _tensor(w, f"he_weights({shape})")
        if tuple(w.shape) != shape:
            raise Wrong(
                f"he_weights({shape}) has shape {tuple(w.shape)}; it should have the shape it is given."
            )
        return w

    for shape in ((512, 1024), (64, 32, 5, 5)):  # fc1's weight and conv2's: fan_in 1024 and 800
        w = draw(shape)
        std, mean = w.std().item(), w.mean().item()
        kind = "a linear layer" if len(shape) == 2 else "a convolution"
        fans = {"fan_in": _fan_in(shape), "fan_out": shape[0] * math.prod(shape[2:]), "in_channels": shape[1]}
        target = math.sqrt(2 / fans["fan_in"])
        if abs(mean) > 5 * std / math.sqrt(w.numel()):
            raise Wrong(f"the weights of {kind} {shape} average {mean:.3g}; He's weights are centred on 0.")
        if math.isclose(std, target, rel_tol=0.05):
            continue
        for name, fan in fans.items():
            if (
                name != "fan_in"
                and fan != fans["fan_in"]
                and math.isclose(std, math.sqrt(2 / fan), rel_tol=0.05)
            ):
                what = "the number of outputs" if name == "fan_out" else "the input channels only"
                raise Wrong(
                    f"for {kind} of shape {shape} the standard deviation is √(2/{fan}): {fan} is {what}. "
                    f"fan_in is every size but the first: {' × '.join(map(str, shape[1:]))}"
                    + (f" = {fans['fan_in']}." if len(shape) > 2 else ".")
                )
        if math.isclose(std, math.sqrt(1 / fans["fan_in"]), rel_tol=0.05):
            raise Wrong(
                f"standard deviation √(1/fan_in) = {std:.3g}: right for linear layers, but a ReLU zeroes "
                "half of the signal. He doubles the variance: √(2/fan_in)."
            )
        if math.isclose(std, 2 / fans["fan_in"], rel_tol=0.05):
            raise Wrong(f"standard deviation {std:.3g} is 2/fan_in, He's variance; take its square root.")
        raise Wrong(
            f"for {kind} of shape {shape} the standard deviation is {std:.3g}, He's is √(2/fan_in) = {target:.3g}."
        )
    ratio = _signal_ratio([draw((256, 256), seed) for seed in range(20)])
    if not 0.25 < ratio < 4:  # a failure here means the weights are not independent draws
        raise Wrong(
            f"through 20 ReLU layers your weights change the signal's size {ratio:.2g} times; draw "
            "each weight independently from a normal distribution."
        )
    return f"(20 ReLU layers with your weights: the signal ends at {ratio:.2f} times its first layer's size)"
