"""Exercises of chapter 5, optimization (notebook 05-optimization).

The two code exercises run the reader's function on a few float64 tensors and compare with
``torch.optim``: the same gradients, the same steps, nothing to train, so a check takes
milliseconds. Usual mistakes are recognised by comparing with the rules that make them.
"""

import math

import torch

from cnnkit.exercises import Wrong, answered, exercise, function

NOTEBOOK = "05-optimization"


# ---------------------------------------------------------------------------------------------
# 5.1 Nesterov momentum
# ---------------------------------------------------------------------------------------------

_LR, _MOMENTUM, _STEPS = 0.1, 0.9, 8


def _gradients(seed=5):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(6, dtype=torch.float64, generator=generator) for _ in range(_STEPS)]


def _torch_nesterov() -> torch.Tensor:
    """The parameters after _STEPS steps of torch.optim.SGD(nesterov=True) with given gradients."""
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=_LR, momentum=_MOMENTUM, nesterov=True)
    for g in _gradients():
        w.grad = g.clone()
        optimizer.step()
    return w.detach()


def _rule(name: str) -> torch.Tensor:
    """The parameters after _STEPS steps of a rule a reader may write by mistake."""
    w, v = torch.zeros(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    for g in _gradients():
        v = _MOMENTUM * v + (1 - _MOMENTUM if name == "dampened" else 1) * g
        step = {"classical": v, "dampened": g + _MOMENTUM * v, "no gradient": _MOMENTUM * v, "plain": g}[name]
        w = w - _LR * step
    return w


def _run_update(update) -> tuple[torch.Tensor, dict]:
    w = torch.zeros(6, dtype=torch.float64)
    state: dict = {}
    for g in _gradients():
        step = answered(update(g.clone(), state, _LR, _MOMENTUM), "what nesterov_update returns")
        if not isinstance(step, torch.Tensor) or step.shape != g.shape:
            raise Wrong(f"return the step as a tensor shaped like g {tuple(g.shape)}; got {step!r:.60}.")
        w = w - step
    return w, state


@exercise(
    "5.1",
    NOTEBOOK,
    "Nesterov momentum",
    kind="code",
    hint="update the velocity as classical momentum does, v ← βv + g (kept in state['v']), then "
    "return lr · (g + β·v) with the new v.",
    solution="""
        def nesterov_update(g, state, lr, momentum):
            state["v"] = momentum * state.get("v", torch.zeros_like(g)) + g  # the velocity
            return lr * (g + momentum * state["v"])  # look ahead along the new velocity
    """,
    mistakes={
        "classical": ('lr * (g + momentum * state["v"])', 'lr * state["v"]', "that is classical momentum"),
        "no gradient": ('(g + momentum * state["v"])', 'momentum * state["v"]', "the step is β·v only"),
        "no lr": ("lr * (", "(", "the steps are 1/lr times too large"),
        "fresh": ('state["v"] = momentum', 'state = {}\n    state["v"] = momentum', "state is still empty"),
        "dampened": (" + g  #", " + (1 - momentum) * g  #", "the velocity adds (1 − β)·g"),
    },
)
def _(nesterov_update):
    function(nesterov_update, "nesterov_update(g, state, lr, momentum)")
    w, state = _run_update(nesterov_update)
    expected = _torch_nesterov()
    if torch.allclose(w, expected, rtol=1e-12, atol=1e-12):
        return "(the same parameters as torch.optim.SGD(nesterov=True) after 8 steps)"
    if not state:
        raise Wrong(
            "state is still empty after 8 calls: the velocity must live in state['v'] so that the "
            "next call can build on it."
        )
    if torch.allclose(w * _LR, expected, rtol=1e-9):
        raise Wrong("the steps are 1/lr times too large: multiply the step by lr.")
    for name, message in (
        ("classical", "that is classical momentum, a step along v; Nesterov steps along g + β·v."),
        ("dampened", "the velocity adds (1 − β)·g; PyTorch's, like this chapter's, adds g itself."),
        ("no gradient", "the step is β·v only; Nesterov's step is g + β·v."),
        ("plain", "that is plain SGD: the velocity never enters the step."),
    ):
        if torch.allclose(w, _rule(name), rtol=1e-12, atol=1e-12):
            raise Wrong(message)
    raise Wrong(
        "after 8 steps the parameters differ from torch.optim.SGD(nesterov=True)'s: the velocity is "
        "v ← β·v + g (no factor on g) and the step lr · (g + β·v)."
    )


# ---------------------------------------------------------------------------------------------
# 5.2 The largest stable learning rate
# ---------------------------------------------------------------------------------------------

_CURVATURES = (4.0, 50.0)  # f(w) = (4 w1² + 50 w2²) / 2


def _gd_final(lr: float, steps: int = 400) -> float:
    """f after ``steps`` of gradient descent on the exercise's quadratic, from (1, 1)."""
    w = [1.0, 1.0]
    for _ in range(steps):
        w = [wi * (1 - lr * c) for wi, c in zip(w, _CURVATURES)]
    return 0.5 * sum(c * wi * wi for c, wi in zip(_CURVATURES, w))


@exercise(
    "5.2",
    NOTEBOOK,
    "the largest stable learning rate",
    hint="one step multiplies each coordinate by (1 − η·curvature); it must shrink in both "
    "directions, |1 − η·λ| < 1, and the steeper direction gives the tighter limit.",
    solution="lr_max = 2 / 50",
    wrong=[
        ("lr_max = 2 / 4", "is the limit for w1 alone"),
        ("lr_max = 1 / 50", "reaches w2 = 0 in one step"),
        ("lr_max = 2 / 54", "the directions do not add up"),
        ("lr_max = 0.03", "converges, but larger rates do too"),
        ("lr_max = 2 / 30", "the limit of the notebook's function"),
    ],
)
def _(lr_max):
    lr = float(answered(lr_max, "lr_max"))
    steep = max(_CURVATURES)
    expected = 2 / steep
    if math.isclose(lr, expected, rel_tol=1e-3):
        return f"(at 0.98 × {lr:g}, f falls to {_gd_final(0.98 * lr):.1e}; at 1.02 ×, it grows to {_gd_final(1.02 * lr):.1e})"
    if math.isclose(lr, 2 / min(_CURVATURES), rel_tol=1e-3):
        raise Wrong(
            f"{lr:g} is the limit for w1 alone; along w2, 50 times steeper per unit, the factor "
            f"1 − {lr:g}·50 is far below −1 and w2 explodes."
        )
    if math.isclose(lr, 1 / steep, rel_tol=1e-3):
        raise Wrong(
            f"at {lr:g} gradient descent reaches w2 = 0 in one step; it stays stable up to twice that, "
            "where the factor 1 − η·50 reaches −1."
        )
    if math.isclose(lr, 2 / sum(_CURVATURES), rel_tol=1e-3):
        raise Wrong(
            "the directions do not add up: each must shrink on its own, and the steeper one sets the limit."
        )
    if math.isclose(lr, 2 / 30, rel_tol=1e-3):
        raise Wrong("2/30 is the limit of the notebook's function; this one is (4·w1² + 50·w2²)/2.")
    if lr < expected:
        raise Wrong(
            f"{lr:g} converges, but larger rates do too (f after 400 steps at 0.98 × 2/50: "
            f"{_gd_final(0.98 * expected):.1e}): find where |1 − η·50| reaches 1."
        )
    raise Wrong(f"at {lr:g} gradient descent diverges (f after 400 steps: {_gd_final(lr):.1e}).")


# ---------------------------------------------------------------------------------------------
# 5.3 The first step of Adam and of RMSProp
# ---------------------------------------------------------------------------------------------


def _first_steps(make_optimizer) -> torch.Tensor:
    """How far one step moves parameters whose gradients range over six orders of magnitude."""
    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    w.grad = torch.tensor([1e-3, -0.5, 20.0, -3e3], dtype=torch.float64)
    make_optimizer([w]).step()
    return w.detach().abs()


@exercise(
    "5.3",
    NOTEBOOK,
    "the first step of Adam and RMSProp",
    hint="after one step, Adam's bias-corrected averages are m̂ = g and v̂ = g², so the step is "
    "η·g/|g|; RMSProp has no correction: s = (1 − α)·g².",
    solution="""
        adam_step = 0.01  # m_hat / sqrt(v_hat) = g / |g|
        rmsprop_step = 0.01 / (1 - 0.99) ** 0.5  # g / sqrt(0.01 g^2) = 10 sign(g)
    """,
    wrong=[
        ("adam_step = 0.001\nrmsprop_step = 0.1", "without bias correction of m alone"),
        ("adam_step = 0.01 * 0.1 / 0.001 ** 0.5\nrmsprop_step = 0.1", "is the step without bias correction;"),
        ("adam_step = 0.01\nrmsprop_step = 0.01", "RMSProp has none"),
        ("adam_step = 0.01\nrmsprop_step = 1.0", "RMSProp's first step is η·g/√((1 − α)·g²)"),
        ("adam_step = 0.01\nrmsprop_step = 0.01 / 0.99 ** 0.5", "gets weight 1 − α = 0.01 in the average"),
    ],
)
def _(adam_step, rmsprop_step):
    adam = _first_steps(lambda p: torch.optim.Adam(p, lr=0.01))
    rmsprop = _first_steps(lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99))
    a = float(answered(adam_step, "adam_step"))
    r = float(answered(rmsprop_step, "rmsprop_step"))
    if not math.isclose(a, adam.mean().item(), rel_tol=1e-3):
        if math.isclose(a, 0.01 * 0.1, rel_tol=1e-3):
            raise Wrong("0.001 is the step without bias correction of m alone; Adam divides m by 1 − β1.")
        if math.isclose(a, 0.01 * 0.1 / math.sqrt(0.001), rel_tol=1e-3):
            raise Wrong(f"{a:g} is the step without bias correction; with it m̂ = g and v̂ = g².")
        raise Wrong(f"Adam's first step moves every parameter by {a:g}? Work out η·m̂/√v̂ with m̂ = g, v̂ = g².")
    if not math.isclose(r, rmsprop.mean().item(), rel_tol=1e-3):
        if math.isclose(r, 0.01, rel_tol=1e-3):
            raise Wrong(
                "0.01 would be right with bias correction, but RMSProp has none: s = 0.01·g² after "
                "one step, so it divides g by 0.1·|g|."
            )
        if math.isclose(r, 0.01 / math.sqrt(0.99), rel_tol=1e-3):
            raise Wrong("the new g² gets weight 1 − α = 0.01 in the average, not α.")
        raise Wrong(f"RMSProp's first step is η·g/√((1 − α)·g²); {r:g} is not that.")
    return (
        f"(torch.optim moved gradients from 0.001 to 3000 by {adam.min():.4g} to {adam.max():.4g} "
        f"with Adam, {rmsprop.min():.4g} to {rmsprop.max():.4g} with RMSProp)"
    )


# ---------------------------------------------------------------------------------------------
# 5.4 The one-cycle schedule by hand
# ---------------------------------------------------------------------------------------------

_SETTINGS = ((100, 0.01, 0.25), (40, 0.5, 0.3), (7, 1.0, 0.5))


def _torch_schedule(total: int, peak: float, warmup: float, **kwargs) -> list[float]:
    w = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=peak)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peak, total_steps=total, pct_start=warmup, cycle_momentum=False, **kwargs
    )
    lrs = []
    for step in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if step < total - 1:
            scheduler.step()
    return lrs


def _close(a, b) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12) for x, y in zip(a, b))


@exercise(
    "5.4",
    NOTEBOOK,
    "the one-cycle schedule by hand",
    kind="code",
    hint="start = peak / 25, end = start / 10⁴, t_peak = warmup · total − 1; before t_peak go from "
    "start to peak, after it from peak to end, each along half a cosine: "
    "a + (b − a)·(1 − cos(π·f))/2 with f the fraction of the phase done.",
    solution="""
        import math

        def one_cycle(step, total, peak, warmup):
            start, end = peak / 25, peak / 25 / 1e4
            t_peak = warmup * total - 1  # the step at which the peak is reached
            if step <= t_peak:
                a, b, f = start, peak, step / t_peak
            else:
                a, b, f = peak, end, (step - t_peak) / (total - 1 - t_peak)
            return a + (b - a) * (1 - math.cos(math.pi * f)) / 2
    """,
    mistakes={
        "linear": ("(1 - math.cos(math.pi * f)) / 2", "f", "your schedule is linear"),
        "no warmup": (
            ("step <= t_peak", "(step - t_peak) / (total - 1 - t_peak)"),
            ("step < 0", "step / (total - 1)"),
            "step 0 gives 0.01; the schedule starts at peak / 25",
        ),
        "back to the start": ("peak / 25 / 1e4", "peak / 25", "the schedule ends at peak / 25 / 10⁴"),
        "peak one step late": ("warmup * total - 1", "warmup * total", "your peak is at step 25"),
        "upside down": ("(1 - math.cos", "(1 + math.cos", "step 0 gives 0.01; the schedule starts"),
    },
)
def _(one_cycle):
    function(one_cycle, "one_cycle(step, total, peak, warmup)")
    for total, peak, warmup in _SETTINGS:
        mine = [answered(one_cycle(t, total, peak, warmup), "what one_cycle returns") for t in range(total)]
        try:
            mine = [float(v) for v in mine]
        except (TypeError, ValueError):
            raise Wrong(f"one_cycle should return a number; it returned {mine[0]!r}.") from None
        expected = _torch_schedule(total, peak, warmup)
        if _close(mine, expected):
            continue
        where = f"for total={total}, peak={peak}, warmup={warmup}"
        if not math.isclose(mine[0], peak / 25, rel_tol=1e-6):
            raise Wrong(
                f"{where} step 0 gives {mine[0]:.4g}; the schedule starts at peak / 25 = {peak / 25:.4g}."
            )
        if _close(mine, _torch_schedule(total, peak, warmup, anneal_strategy="linear")):
            raise Wrong(f"{where} your schedule is linear; both phases follow half a cosine.")
        top = max(range(total), key=mine.__getitem__)
        best = max(range(total), key=expected.__getitem__)
        if top != best:
            raise Wrong(
                f"{where} your peak is at step {top}, the schedule's at step {best} (warmup · total − 1)."
            )
        if not math.isclose(mine[-1], expected[-1], rel_tol=1e-6):
            raise Wrong(
                f"{where} the last step gives {mine[-1]:.4g}; the schedule ends at peak / 25 / 10⁴ = "
                f"{expected[-1]:.4g}, far below where it started."
            )
        bad = next(t for t in range(total) if not math.isclose(mine[t], expected[t], rel_tol=1e-6))
        raise Wrong(
            f"{where} step {bad} gives {mine[bad]:.6g} instead of {expected[bad]:.6g}: within a phase from "
            "a to b, the rate is a + (b − a)·(1 − cos(π·f))/2, where f goes from 0 to 1."
        )
    return "(equal to torch.optim.lr_scheduler.OneCycleLR at every step, for three settings)"
