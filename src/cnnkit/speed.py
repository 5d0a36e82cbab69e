"""Appendix B's speed-ups: the same network, trained faster.

``speed_up(model)`` applies all three to a model, in place, and returns it:

* a cheaper dropout mask: every ``nn.Dropout`` becomes a :class:`FastDropout` with the same ``p``
  (``fast_dropout``);
* the ``channels_last`` memory layout, which the CPU's convolution routines prefer;
* bfloat16 arithmetic in the training forward pass where the hardware multiplies it natively
  (``precision="auto"``, see :func:`resolve_precision`), through ``torch.autocast``; the weights
  stay float32, and evaluation stays float32.

None of them adds, removes or renames a parameter: the ``state_dict`` and any checkpoint are the
same before and after.
"""

from __future__ import annotations

import torch
import torch.nn as nn

PRECISIONS = ("auto", "float32", "bfloat16")


class FastDropout(nn.Dropout):
    """Dropout (chapter 6) with a cheaper random mask (appendix B): ``torch.rand(...) >= p``
    instead of ``bernoulli_``, which is slower on CPUs. It zeroes and scales like ``nn.Dropout``;
    the two agree in distribution, not bit for bit."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x.mul_(0.0) if self.inplace else x * 0.0
        # float32 random numbers even under bfloat16 autocast, so that p is not rounded
        mask = torch.rand_like(x, dtype=torch.float32).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        mask = mask.to(x.dtype)
        return x.mul_(mask) if self.inplace else x * mask


def fast_dropout(model: nn.Module) -> nn.Module:
    """``model`` with each ``nn.Dropout`` replaced by a :class:`FastDropout` of the same ``p``
    (in place; returned for chaining). Subclasses of ``nn.Dropout`` are left alone."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                fast = FastDropout(child.p, child.inplace)
                fast.train(child.training)
                setattr(parent, name, fast)
    return model


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``"float32"`` or ``"bfloat16"``: what ``precision`` means on ``device``. ``"auto"`` is
    bfloat16 where the hardware multiplies it natively (a CUDA GPU that supports it, a CPU with
    AMX or AVX-512 BF16), float32 where emulating it would be slower."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if torch.device(device).type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if bfloat16_hardware() else "float32"


def bfloat16_hardware() -> list[str]:
    """The CPU's instructions that multiply bfloat16 natively ("AMX", "AVX-512 BF16"), if any."""
    try:
        caps = torch.cpu.get_capabilities()
    except Exception:  # an older PyTorch, or a platform that does not report its features
        return []
    return [label for key, label in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16")) if caps.get(key)]


def mixed_precision(model: nn.Module, precision: str = "auto") -> nn.Module:
    """Run ``model``'s forward pass under bfloat16 autocast while it is in training mode, where
    ``precision`` resolves to bfloat16 on the device the model is on at that moment, and hand
    float32 logits to the loss (in place; returned for chaining). Evaluation mode stays float32."""
    resolve_precision(precision)  # an unknown precision fails here, not in the first step
    if hasattr(model, "_speed_precision"):  # hooks already in place: only the setting changes
        model._speed_precision = precision
        return model
    model._speed_precision = precision
    resolved: dict[str, str] = {}  # device type -> "float32" / "bfloat16", looked up once
    contexts = []

    def enter(module, inputs):
        device = next(module.parameters()).device.type
        key = f"{module._speed_precision}/{device}"
        if key not in resolved:
            resolved[key] = resolve_precision(module._speed_precision, device)
        if module.training and resolved[key] == "bfloat16":
            context = torch.autocast(device, dtype=torch.bfloat16)
            context.__enter__()
            contexts.append(context)

    def leave(module, inputs, output):
        if contexts:  # also after an exception (always_call), so autocast never stays on
            contexts.pop().__exit__(None, None, None)
            if isinstance(output, torch.Tensor):
                return output.float()
        return output

    model.register_forward_pre_hook(enter)
    model.register_forward_hook(leave, always_call=True)
    return model


def speed_up(model: nn.Module, precision: str = "auto") -> nn.Module:
    """``model`` with appendix B's three speed-ups (in place; returned for chaining): the cheaper
    dropout mask, ``channels_last`` weights and mixed precision (``precision``: "auto", "float32"
    or "bfloat16")."""
    fast_dropout(model)
    model.to(memory_format=torch.channels_last)
    return mixed_precision(model, precision)
