"""Stronger augmentation than ``simplecnn``'s random shifts, and the recipe that uses it.

The reference checkpoint (chapter 8) learned from digits that were rotated, zoomed, moved and
bent a little, so that it met more ways of writing each digit than the 60,000 images show::

    history = sc.train(model, data, augment.REFERENCE)  # the recipe says its augmentation

or, from the command line, ``python -m cnnkit train --recipe reference``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

import simplecnn as sc


def random_affine(max_shift=2.0, max_rotation=0.0, max_scale=0.0, elastic=0.0, generator=None):
    """Rotate each image of a batch by up to ``max_rotation`` degrees, zoom it by up to
    ``max_scale``, move it by up to ``max_shift`` pixels and, with ``elastic``, bend it by a
    smooth random field (Simard et al., 2003); bilinear, with background in the corners."""

    def augment(x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape

        def uniform(limit, *shape):  # random values in [-limit, limit]
            return (torch.rand(*(shape or (n,)), generator=generator) * 2 - 1) * limit

        angle, zoom = torch.deg2rad(uniform(max_rotation)), 1 + uniform(max_scale)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        dx, dy = uniform(2 * max_shift / w), uniform(2 * max_shift / h)  # affine_grid spans [-1, 1]
        theta = torch.stack([cos, -sin, dx, sin, cos, dy], 1).view(n, 2, 3).to(x)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        if elastic:  # white noise blurred by a Gaussian (sigma 4 pixels): neighbours move together
            r, sigma = 16, 4.0
            kernel = torch.exp(-0.5 * (torch.arange(-r, r + 1.0) / sigma) ** 2)
            kernel = (kernel / kernel.sum()).to(x)
            field = uniform(1.0, 2 * n, 1, h, w).to(x)
            field = F.conv2d(F.pad(field, (r, r, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
            field = F.conv2d(F.pad(field, (0, 0, r, r), mode="reflect"), kernel.view(1, 1, -1, 1))
            grid = grid + field.view(n, 2, h, w).permute(0, 2, 3, 1) * (2 * elastic / w)
        background = x.amin()
        return F.grid_sample(x - background, grid, align_corners=False) + background

    return augment


@dataclass(frozen=True)
class Distortion:
    """A recipe's augmentation (``Recipe.augment``) by :func:`random_affine`; as data, so that a
    run's record can say what it did."""

    max_shift: float = 2.0
    max_rotation: float = 0.0
    max_scale: float = 0.0
    elastic: float = 0.0

    def __call__(self, generator: torch.Generator | None = None):
        return random_affine(self.max_shift, self.max_rotation, self.max_scale, self.elastic, generator)


#: The reference checkpoint's recipe: the fast recipe for longer with stronger augmentation
#: (shifts by fractions of a pixel, rotations, zoom and elastic distortion), a lower peak
#: learning rate, and Adam's usual beta2 of 0.999: over 30 epochs a long memory of gradient
#: sizes suits the small late steps better than the fast recipe's 0.9.
REFERENCE = sc.Recipe(name="reference", epochs=30, batch_size=128, lr=1e-2, betas=(0.95, 0.999),
                      schedule="onecycle", warmup=0.25, label_smoothing=0.1, max_shift=2,
                      augment=Distortion(max_shift=2, max_rotation=10.0, max_scale=0.1, elastic=15.0))  # fmt: skip
RECIPES = {r.name: r for r in (sc.GUIDE, sc.FAST, REFERENCE)}  # the recipes the command line knows
