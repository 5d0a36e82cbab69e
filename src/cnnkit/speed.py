"""Appendix B's speed-ups that leave the network as it is: a cheaper dropout mask.

``fast_dropout(model)`` swaps every ``nn.Dropout`` of a model for :class:`FastDropout`, in place.
Dropout layers hold no parameters, so the model's ``state_dict`` (and any checkpoint) is the
same before and after; only the way the random mask is drawn changes.
"""

from __future__ import annotations

import torch
import torch.nn as nn


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
