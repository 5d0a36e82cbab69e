"""Exercises of appendix B, training fast (notebook B-training-fast)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnkit.exercises import Wrong, answered, exercise, function, whole_numbers

NOTEBOOK = "B-training-fast"


@exercise(
    "B.1",
    NOTEBOOK,
    "the gaps between bfloat16 numbers",
    hint="bfloat16 keeps 7 fraction bits, so between 1 and 2 its numbers are 2**-7 apart; between "
    "256 = 2**8 and 512 the gap is 2**8 times as large.",
    solution="""
        gap_at_1 = 2**-7
        gap_at_256 = 2**8 * 2**-7
    """,
    wrong=[
        ("gap_at_1 = 2**-23\ngap_at_256 = 2**-15", "is float32's gap after 1"),
        ("gap_at_1 = 2**-10\ngap_at_256 = 2**-2", "is float16's gap after 1"),
        ("gap_at_1 = 2**-8\ngap_at_256 = 1", "the last bit is worth 2**-7, not 2**-8"),
        ("gap_at_1 = 2**-7\ngap_at_256 = 2**-7", "the gaps grow with the numbers"),
        ("gap_at_1 = 2**-7\ngap_at_256 = 1", "scale the gap after 1 by 256"),
    ],
)
def _(gap_at_1, gap_at_256):
    eps = torch.finfo(torch.bfloat16).eps  # the gap between 1 and the next bfloat16 number
    gap1 = float(answered(gap_at_1, "the gap after 1"))
    if gap1 == torch.finfo(torch.float32).eps:
        raise Wrong("2**-23 is float32's gap after 1 (23 fraction bits); bfloat16 keeps only 7 of them.")
    if gap1 == torch.finfo(torch.float16).eps:
        raise Wrong("2**-10 is float16's gap after 1 (10 fraction bits); bfloat16 has 7.")
    if gap1 == eps / 2:
        raise Wrong("with 7 fraction bits the last bit is worth 2**-7, not 2**-8.")
    if gap1 != eps:
        raise Wrong(f"{gap1:g}: bfloat16 has 7 fraction bits, so the next number after 1 is 1 + 2**-7.")
    gap256 = float(answered(gap_at_256, "the gap after 256"))
    if gap256 == gap1:
        raise Wrong(
            "the gaps grow with the numbers: 256 = 2**8 has the same 7 fraction bits, each worth "
            "2**8 times as much as near 1."
        )
    if gap256 != 256 * eps:
        raise Wrong(f"{gap256:g}: scale the gap after 1 by 256 = 2**8.")
    return "So in bfloat16, 256 + 1 is 256 again: an update smaller than half the gap is lost."


@exercise(
    "B.2",
    NOTEBOOK,
    "strides in the two memory formats",
    hint="a stride is how many numbers further on in memory the next index along a dimension "
    "lies. Contiguous (N, C, H, W): W is innermost. channels_last stores (N, H, W, C): C is "
    "innermost, then W, then H.",
    solution="""
        strides_contiguous = (32 * 12 * 12, 12 * 12, 12, 1)
        strides_channels_last = (12 * 12 * 32, 1, 12 * 32, 32)
    """,
    mistakes={
        "the same": ("(12 * 12 * 32, 1, 12 * 32, 32)", "strides_contiguous", "the contiguous strides"),
        "reversed": ("(32 * 12 * 12, 12 * 12, 12, 1)", "(1, 12, 144, 4608)", "those are reversed"),
        "H and W swapped": ("12 * 32, 32)", "32, 12 * 32)", "H and W are swapped"),
        "channels outermost": ("1, 12 * 32, 32)", "12 * 32, 32, 1)", "the channel index has stride 1"),
    },
)
def _(strides_contiguous, strides_channels_last):
    x = torch.empty(256, 32, 12, 12)
    expected = x.stride()
    cl = x.to(memory_format=torch.channels_last).stride()
    given = whole_numbers(strides_contiguous, "the contiguous strides", "(N, C, H, W)")
    if given == tuple(reversed(expected)):
        raise Wrong("those are reversed: the last dimension (W) is the innermost, with stride 1.")
    if given != expected:
        raise Wrong(
            f"{given}: in (N, C, H, W) order W has stride 1, H stride W = 12, C stride H·W, N stride C·H·W."
        )
    given_cl = whole_numbers(strides_channels_last, "the channels_last strides", "(N, C, H, W)")
    if given_cl == expected:
        raise Wrong("those are the contiguous strides; in channels_last the channel index is innermost.")
    if given_cl == (cl[0], cl[3], cl[2], cl[1]) or given_cl == (cl[0], cl[1], cl[3], cl[2]):
        raise Wrong("H and W are swapped: memory order is (N, H, W, C), so W's stride is C and H's is W·C.")
    if given_cl[1] != 1:
        raise Wrong(
            "in channels_last the channel index has stride 1: a pixel's 32 channel values lie side by side."
        )
    if given_cl != cl:
        raise Wrong(
            f"{given_cl}: memory order (N, H, W, C): C stride 1, W stride C, H stride W·C, N stride H·W·C."
        )
    return "The strides still list dimensions in (N, C, H, W) order: the tensor's shape does not change."


@exercise(
    "B.3",
    NOTEBOOK,
    "dropout with the cheaper mask",
    kind="code",
    hint="draw u = torch.rand_like(x); keep where u >= p (that happens with probability 1 − p); "
    "multiply the kept values by 1 / (1 − p); return a new tensor.",
    solution="""
        def cheap_dropout(x, p):
            keep = torch.rand_like(x) >= p
            return x * keep / (1 - p)
    """,
    mistakes={
        "keeps p": (">= p", "< p", "that is p: keep where"),
        "unscaled": (" / (1 - p)", "", "the kept values are unchanged"),
        "times 1 − p": ("/ (1 - p)", "* (1 - p)", "you multiply by 1 − p"),
        "in place": ("x * keep / (1 - p)", "x.mul_(keep / (1 - p))", "changed its input x in place"),
        "fixed": ("rand_like(x)", "linspace(0, 1, x.numel()).view(x.shape)", "exactly the same values"),
    },
)
def _(cheap_dropout):
    function(cheap_dropout, "cheap_dropout(x, p)")
    x = torch.randn(400, 500, generator=torch.Generator().manual_seed(0)).add_(3.0)  # no zeros
    original = x.clone()
    for p in (0.3, 0.6):
        out = answered(cheap_dropout(x, p), "what cheap_dropout returns")
        if not torch.equal(x, original):
            raise Wrong(
                "cheap_dropout changed its input x in place: return a new tensor (x * mask, not x.mul_)."
            )
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            raise Wrong(f"return a tensor of the input's shape {tuple(x.shape)}.")
        kept = out != 0
        share = kept.float().mean().item()
        se = (p * (1 - p) / x.numel()) ** 0.5
        if abs(share - p) < 5 * se:
            raise Wrong(
                f"with p = {p} you keep {share:.1%} of the values, that is p: keep where the random "
                "number is at least p (u >= p), which happens with probability 1 − p."
            )
        if abs(share - (1 - p)) > 5 * se:
            raise Wrong(f"with p = {p} you keep {share:.1%} of the values; expected 1 − p = {1 - p:.0%}.")
        ratio = (out[kept] / x[kept]).mean().item()
        if abs(ratio - 1) < 1e-4:
            raise Wrong("the kept values are unchanged: scale them by 1 / (1 − p), or the mean shrinks.")
        if abs(ratio - (1 - p)) < 1e-4:
            raise Wrong("you multiply by 1 − p: inverted dropout divides the kept values by 1 − p.")
        if not torch.allclose(out[kept], x[kept] / (1 - p), rtol=1e-5):
            raise Wrong("the kept values should be the inputs times 1 / (1 − p).")
    a, b = cheap_dropout(x, 0.5) != 0, cheap_dropout(x, 0.5) != 0
    if torch.equal(a, b):
        raise Wrong("two calls drop exactly the same values: the mask must be drawn at random every time.")
    out = cheap_dropout(x, 0.0)
    if not torch.equal(out, x):
        raise Wrong("with p = 0 nothing should be dropped or scaled.")


# ---------------------------------------------------------------------------------------------
# B.4: a mixed-precision step
# ---------------------------------------------------------------------------------------------


class _RecordingSGD(torch.optim.SGD):
    """SGD that keeps a copy of the gradient it sees at every step."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.seen = []

    def step(self, closure=None):
        self.seen.append(
            [None if p.grad is None else p.grad.detach().clone() for p in self.param_groups[0]["params"]]
        )
        return super().step(closure)


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


@exercise(
    "B.4",
    NOTEBOOK,
    "a mixed-precision training step",
    kind="code",
    hint="inside `with torch.autocast('cpu', dtype=torch.bfloat16):` compute the logits and the "
    "loss; outside it: optimizer.zero_grad(), loss.backward(), optimizer.step(); return the loss.",
    solution="""
        def mixed_step(model, x, y, optimizer):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
    """,
    mistakes={
        "no autocast": ("dtype=torch.bfloat16", "enabled=False", "computed in torch.float32"),
        "all bfloat16": ("model(x)", "model.bfloat16()(x.bfloat16())", "the weights are torch.bfloat16"),
        "no zero_grad": ("optimizer.zero_grad()", "pass", "the second step's gradient is twice the first"),
        "no step": ("optimizer.step()", "pass", "the weights did not change"),
    },
)
def _(mixed_step):
    function(mixed_step, "mixed_step(model, x, y, optimizer)")
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)

    model = _tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    dtypes = []
    hook = model[-1].register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    try:
        loss = answered(mixed_step(model, x, y, torch.optim.SGD(model.parameters(), lr=0.1)), "the loss")
    finally:
        hook.remove()
    weights = {p.dtype for p in model.parameters()}
    if weights != {torch.float32}:
        raise Wrong(
            f"after the step the weights are {', '.join(map(str, weights))}: keep the model in "
            "float32 and let torch.autocast convert on the fly, so small updates are not lost."
        )
    if not dtypes:
        raise Wrong("mixed_step never ran the model on x.")
    if dtypes[0] != torch.bfloat16:
        raise Wrong(
            f"the forward pass computed in {dtypes[0]}: run the model and the loss inside "
            "`with torch.autocast('cpu', dtype=torch.bfloat16):`."
        )
    if all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
        raise Wrong("the weights did not change: after loss.backward(), call optimizer.step().")
    with torch.no_grad():
        reference = F.cross_entropy(_tiny_model()(x), y).item()
    value = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
    if abs(value - reference) > 0.05 * reference:
        raise Wrong(
            f"it returned {value:.4f}; the cross-entropy of that batch before the step is {reference:.4f}."
        )

    model = _tiny_model()
    optimizer = _RecordingSGD(model.parameters(), lr=0.0)  # the weights stay put: same gradient twice
    mixed_step(model, x, y, optimizer)
    mixed_step(model, x, y, optimizer)
    first, second = optimizer.seen[0][-1], optimizer.seen[1][-1]
    if torch.allclose(second, 2 * first, rtol=1e-3, atol=1e-6):
        raise Wrong(
            "the second step's gradient is twice the first: call optimizer.zero_grad() in every step."
        )
    if not torch.allclose(second, first, rtol=1e-3, atol=1e-6):
        raise Wrong("the same batch with the same weights gave a different gradient in the second step.")
