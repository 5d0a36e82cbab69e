"""cnnkit.augment: rotations, zoom, fractional shifts and elastic distortions, and the recipes
that use them."""

import torch

import simplecnn as sc
from cnnkit import augment
from cnnkit.mnist import Splits


def test_random_affine_without_limits_is_the_identity():
    x = torch.randn(8, 1, 28, 28)
    assert torch.allclose(augment.random_affine(0, 0, 0)(x), x, atol=1e-5)


def test_random_affine_moves_rotates_and_zooms_within_its_limits():
    img = torch.full((1, 1, 28, 28), -0.5)
    img[0, 0, 10:18, 12:16] = 2.0  # a bright bar in the middle, on a dark background
    batch = img.repeat(200, 1, 1, 1)
    out = augment.random_affine(2, 10, 0.1, 0, torch.Generator().manual_seed(0))(batch)
    assert out.shape == batch.shape
    assert torch.allclose(out[:, :, 0, :], torch.tensor(-0.5))  # the background fills the borders
    ink = out > 0.75
    assert torch.all(ink.flatten(1).sum(1) > 0)  # no bar is lost
    rows = torch.arange(28.0)[:, None].expand(28, 28)
    centre = (ink * rows).flatten(1).sum(1) / ink.flatten(1).sum(1)
    assert (centre - 13.5).abs().max() <= 2.6 and centre.std() > 0.3  # moved, by at most ~2 pixels
    assert len({tuple(o.flatten().tolist()) for o in out[:20]}) == 20  # every image differently
    again = augment.random_affine(2, 10, 0.1, 0, torch.Generator().manual_seed(0))(batch)
    assert torch.equal(out, again)  # a seeded generator gives the same augmentation


def test_elastic_distortion_bends_the_digit_without_destroying_it():
    img = torch.full((1, 1, 28, 28), -0.5)
    img[0, 0, 6:22, 13:15] = 2.0  # a vertical stroke
    batch = img.repeat(100, 1, 1, 1)
    out = augment.random_affine(0, 0, 0, 15, torch.Generator().manual_seed(0))(batch)
    ink_in, ink_out = (batch + 0.5).sum((1, 2, 3)), (out + 0.5).sum((1, 2, 3))
    assert not torch.allclose(out, batch, atol=1e-3)  # bent ...
    assert ((ink_out / ink_in - 1).abs() < 0.4).all()  # ... stretched here, squeezed there, not lost
    rows_with_ink = ((out > 0.75).sum(3) > 0).sum((1, 2)).float()
    assert (rows_with_ink >= 12).all()  # the stroke is still a stroke


def test_each_recipe_gets_its_augmentation(mnist):
    assert sc.GUIDE.augment is None and sc.FAST.augment is None  # shifts only
    make = augment.REFERENCE.augment
    x = mnist.x_train[:64]
    out = make(torch.Generator().manual_seed(0))(x)
    assert out.shape == x.shape
    assert not set(out.flatten().tolist()) <= set(x.flatten().tolist())  # not whole pixels
    assert torch.equal(out, make(torch.Generator().manual_seed(0))(x))  # the run's generator decides


def test_train_uses_the_augmentation_it_is_given(mnist):
    """A recipe's ``augment`` replaces its shifts: every training batch goes through it."""
    seen = []

    def spy(generator):
        def apply(x):
            seen.append(len(x))
            return x

        return apply

    m = mnist
    small = Splits(m.x_train[:300], m.y_train[:300], m.x_val[:99], m.y_val[:99], m.x_test[:9], m.y_test[:9])
    recipe = sc.Recipe(name="tiny", epochs=1, batch_size=100, max_shift=1, augment=spy)
    sc.train(sc.SimpleCNN(), small, recipe)
    assert seen == [100, 100, 100]
    assert set(augment.RECIPES) == {"guide", "fast", "reference"}
