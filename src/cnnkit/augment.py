"""Stronger augmentation than ``simplecnn``'s random shifts, and the recipe that uses it.

The reference checkpoint (chapter 8) learned from digits that were rotated, zoomed, moved and
bent a little, so that it met more ways of writing each digit than the 60,000 images show::

    recipe = augment.REFERENCE
    history = sc.train(model, data, recipe, augment=augment.for_recipe(recipe))

or, from the command line, ``python -m cnnkit train --recipe reference``.
"""

from __future__ import annotations

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


#: The reference checkpoint's recipe: the fast recipe for longer (``max_shift`` also moves the
#: images here, by fractions of a pixel), with Adam's usual beta2 of 0.999: over 30 epochs a long
#: memory of gradient sizes suits the small late steps better than the fast recipe's 0.9.
REFERENCE = sc.Recipe(name="reference", epochs=30, batch_size=128, lr=1e-2, betas=(0.95, 0.999),
                      schedule="onecycle", warmup=0.25, label_smoothing=0.1, max_shift=2)  # fmt: skip
#: What else happens to each training image of a recipe, by the recipe's name.
DISTORTIONS = {REFERENCE.name: dict(max_rotation=10.0, max_scale=0.1, elastic=15.0)}
RECIPES = {**sc.RECIPES, REFERENCE.name: REFERENCE}  # every named recipe


def for_recipe(recipe: sc.Recipe):
    """What ``sc.train(..., augment=)`` needs for ``recipe``: a function of the run's random
    generator that makes the recipe's distortion, or ``None`` (plain shifts) if it has none."""
    distortion = DISTORTIONS.get(recipe.name)
    if not distortion:
        return None
    return lambda generator: random_affine(recipe.max_shift, **distortion, generator=generator)
