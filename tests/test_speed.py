"""Tests of cnnkit.speed: appendix B's speed-ups leave the network as it is."""

import pytest
import torch
import torch.nn as nn

import simplecnn
from cnnkit import speed
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


# --- precision and speed_up ------------------------------------------------------------------


def test_resolve_precision_reads_the_cpu_features(monkeypatch):
    assert speed.resolve_precision("float32") == "float32"
    assert speed.resolve_precision("bfloat16") == "bfloat16"
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True, "avx512_bf16": False})
    assert speed.resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    assert speed.resolve_precision("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    assert speed.resolve_precision("auto") == "float32"

    def unsupported():
        raise RuntimeError("not reported here")

    monkeypatch.setattr(torch.cpu, "get_capabilities", unsupported)
    assert speed.resolve_precision("auto") == "float32"
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        speed.resolve_precision("half")


def test_resolve_precision_on_a_gpu_asks_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert speed.resolve_precision("auto", "cuda") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert speed.resolve_precision("auto", torch.device("cuda")) == "float32"


def _one_epoch(model):
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return simplecnn.train_epoch(model, simplecnn.Batches(x, y, 32), optimizer)


def test_speed_up_changes_no_weight_and_keeps_them_float32_while_training():
    torch.manual_seed(0)
    plain = SimpleCNN()
    model = speed.speed_up(SimpleCNN(), "bfloat16")
    model.load_state_dict(plain.state_dict())  # the same names and shapes: checkpoints fit both
    assert model.features.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    before = model.features.conv1.weight.detach().clone()
    loss, acc = _one_epoch(model)
    assert loss > 0 and 0 <= acc <= 1
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(model.features.conv1.weight, before)


def test_mixed_precision_runs_training_in_bfloat16_and_evaluation_in_float32():
    torch.manual_seed(0)
    plain = SimpleCNN()
    model = speed.mixed_precision(SimpleCNN(), "bfloat16")
    model.load_state_dict(plain.state_dict())
    x = torch.randn(32, 1, 28, 28)
    plain.eval(), model.eval()
    assert torch.equal(model(x), plain(x))  # evaluation: float32, bit for bit
    plain.train(), model.train()
    torch.manual_seed(1)
    low = model(x)
    torch.manual_seed(1)
    high = plain(x)
    assert low.dtype == torch.float32  # the loss gets float32 logits
    assert not torch.equal(low, high)  # but they were computed in bfloat16
    torch.testing.assert_close(low, high, atol=0.15, rtol=0.05)
    assert not torch.is_autocast_enabled("cpu")  # autocast ends with the forward pass


def test_mixed_precision_ends_autocast_even_when_the_forward_pass_fails():
    model = speed.mixed_precision(SimpleCNN(), "bfloat16").train()
    with pytest.raises(ValueError, match="expects input of shape"):
        model(torch.randn(2, 28, 28))
    assert not torch.is_autocast_enabled("cpu")


def test_float32_and_auto_without_bfloat16_hardware_leave_the_arithmetic_alone(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    torch.manual_seed(0)
    plain = SimpleCNN().train()
    for precision in ("float32", "auto"):
        model = speed.mixed_precision(SimpleCNN(), precision).train()
        model.load_state_dict(plain.state_dict())
        x = torch.randn(8, 1, 28, 28)
        torch.manual_seed(2)
        a = model(x)
        torch.manual_seed(2)
        assert torch.equal(a, plain(x))
    with pytest.raises(ValueError, match="unknown precision"):
        speed.mixed_precision(SimpleCNN(), "half")
