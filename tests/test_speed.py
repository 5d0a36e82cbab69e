"""Tests of cnnkit.speed: the cheaper dropout mask of appendix B."""

import pytest
import torch
import torch.nn as nn

from cnnkit.speed import FastDropout, fast_dropout
from simplecnn import SimpleCNN


def test_fast_dropout_swaps_every_dropout_and_keeps_the_network():
    model = SimpleCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert fast_dropout(model) is model
    assert type(model.features.drop1) is FastDropout and model.features.drop1.p == 0.45
    assert type(model.features.drop2) is FastDropout and model.features.drop2.p == 0.35
    assert list(dict(model.features.named_children())) == [
        "conv1", "bn1", "act1", "pool1", "drop1", "conv2", "bn2", "act2", "pool2", "drop2"
    ]  # fmt: skip
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    model.eval()
    fast_dropout(model)  # a second call changes nothing, and keeps the mode
    assert not model.features.drop1.training


@pytest.mark.parametrize("p", [0.1, 0.45, 0.8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_dropout_keeps_each_value_with_probability_one_minus_p_and_rescales(p, dtype):
    torch.manual_seed(0)
    x = (torch.rand(64, 32, 12, 12) + 0.5).to(dtype)  # no zeros of its own
    out = FastDropout(p).train()(x)
    assert out.dtype == dtype and out.shape == x.shape
    kept = out != 0
    # 294,912 draws: the kept share is within 0.5 percentage points of 1 - p
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005
    torch.testing.assert_close(out[kept], (x.float() / (1 - p)).to(dtype)[kept])
    # the mean is preserved, as for nn.Dropout (the reason for the rescaling)
    assert out.float().mean().item() == pytest.approx(x.float().mean().item(), rel=0.01)


def test_fast_dropout_matches_nn_dropout_in_distribution_and_in_evaluation_mode():
    torch.manual_seed(0)
    x = torch.randn(128, 32, 12, 12)
    ours, theirs = FastDropout(0.45), nn.Dropout(0.45)
    a, b = ours.train()(x), theirs.train()(x)
    assert abs((a == 0).float().mean() - (b == 0).float().mean()) < 0.005
    assert a.std().item() == pytest.approx(b.std().item(), rel=0.02)
    assert not torch.equal(a, x)
    assert ours.eval()(x) is x  # evaluation mode: the input passes through unchanged
    assert FastDropout(0.0).train()(x) is x
    assert torch.count_nonzero(FastDropout(1.0).train()(x)) == 0


def test_fast_dropout_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(16, 8, 6, 6, requires_grad=True)
    out = FastDropout(0.3).train()(x)
    out.sum().backward()
    expected = (out != 0).float() / 0.7
    torch.testing.assert_close(x.grad, expected)


def test_fast_dropout_in_place_changes_its_input():
    torch.manual_seed(0)
    x = torch.randn(10, 4, 5, 5)
    y = FastDropout(0.5, inplace=True).train()(x)
    assert y is x and (x == 0).any()
