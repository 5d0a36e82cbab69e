"""Tests of cnnkit.scratch: convolution and pooling from scratch, checked against PyTorch."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnkit import scratch

RNG = np.random.default_rng(0)


# --- output sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,k,stride,padding,dilation",
    list(itertools.product((5, 12, 28), (1, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2))),
)
def test_conv_output_size_matches_nn_conv2d(size, k, stride, padding, dilation):
    layer = nn.Conv2d(1, 1, k, stride=stride, padding=padding, dilation=dilation)
    if dilation * (k - 1) + 1 > size + 2 * padding:
        with pytest.raises(ValueError, match="larger than the padded input"):
            scratch.conv_output_size(size, k, stride, padding, dilation)
        return
    out = layer(torch.zeros(1, 1, size, size))
    assert out.shape[-1] == scratch.conv_output_size(size, k, stride, padding, dilation)


def test_simple_cnn_sizes():
    assert scratch.conv_output_size(28, 5) == 24
    assert scratch.pool_output_size(24, 2) == 12
    assert scratch.conv_output_size(12, 5) == 8
    assert scratch.pool_output_size(8, 2) == 4
    assert scratch.conv_size_formula(28, 5).endswith("= 24")
    assert (
        scratch.conv_size_formula(28, 3, stride=2, padding=1)
        == "⌊(28 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = ⌊27 / 2⌋ + 1 = 14"
    )
    assert scratch.pool_size_formula(24, 3, 2) == "⌊(24 − 3) / 2⌋ + 1 = ⌊21 / 2⌋ + 1 = 11"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(size=4, kernel_size=5), "kernel \\(5\\) is larger than the padded input \\(4 \\+ 2\\*0 = 4\\)"),
        (dict(size=5, kernel_size=3, dilation=3), "dilated to span 7"),
        (dict(size=28, kernel_size=3, stride=0), "stride must be at least 1"),
        (dict(size=28, kernel_size=3, padding=-1), "padding must be 0 or more"),
        (dict(size=28, kernel_size=0), "kernel_size must be at least 1"),
        (dict(size=28, kernel_size=3, dilation=0), "dilation must be at least 1"),
        (dict(size=28, kernel_size=2.5), "kernel_size must be an integer"),
    ],
)
def test_bad_settings_get_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scratch.conv_output_size(**kwargs)


# --- convolution ---------------------------------------------------------------------------------


def test_worked_1d_example():
    assert scratch.conv1d([3, 2, 1, 0], [1, 0, -1]).tolist() == [3, 2, -2, -2, -1, 0]
    steps = scratch.conv1d_steps([3, 2, 1, 0], [1, 0, -1])
    assert [s["value"] for s in steps] == [3, 2, -2, -2, -1, 0]
    assert steps[2]["products"] == [-3, 0, 1]
    text = scratch.describe_conv1d([3, 2, 1, 0], [1, 0, -1])
    assert "y[2] = 3·(-1) + 2·0 + 1·1 = -2" in text


def test_conv1d_matches_np_convolve():
    for _ in range(100):
        x, h = RNG.normal(size=RNG.integers(1, 20)), RNG.normal(size=RNG.integers(1, 7))
        assert np.allclose(scratch.conv1d(x, h), np.convolve(x, h))
    with pytest.raises(ValueError, match="non-empty 1D"):
        scratch.conv1d([], [1])


@pytest.mark.parametrize(
    "stride,padding,dilation", list(itertools.product((1, 2, (2, 3)), (0, 2, (1, 0)), (1, 2)))
)
@pytest.mark.parametrize("c_in,c_out,k", [(1, 1, 3), (3, 4, 5), (2, 3, (3, 2))])
def test_conv2d_matches_torch(stride, padding, dilation, c_in, c_out, k):
    kh, kw = (k, k) if isinstance(k, int) else k
    x = RNG.normal(size=(2, c_in, 13, 11))
    w = RNG.normal(size=(c_out, c_in, kh, kw))
    b = RNG.normal(size=c_out)
    expected = F.conv2d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=stride, padding=padding, dilation=dilation
    ).numpy()
    out = scratch.conv2d(x, w, b, stride, padding, dilation)
    assert out.shape == expected.shape
    assert np.allclose(out, expected)
    assert np.allclose(scratch.conv2d(x[0], w, b, stride, padding, dilation), expected[0])  # (C, H, W)


def test_conv2d_2d_kernel_and_errors():
    img = RNG.normal(size=(7, 7))
    k = RNG.normal(size=(3, 3))
    expected = F.conv2d(torch.tensor(img)[None, None], torch.tensor(k)[None, None], padding=1)[0, 0]
    assert np.allclose(scratch.conv2d(img, k, padding=1), expected.numpy())
    with pytest.raises(ValueError, match="3 channels but the weight expects 2"):
        scratch.conv2d(np.zeros((3, 5, 5)), np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        scratch.conv2d(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="stride must be at least 1"):
        scratch.conv2d(img, k, stride=0)


def test_conv_window_explains_one_output():
    img = RNG.random((10, 10))
    k = RNG.normal(size=(3, 3))
    out = scratch.conv2d(img, k, stride=2, padding=1)
    for r, c in [(0, 0), (2, 3), (4, 4)]:
        win = scratch.conv_window(img, k, 2, 1, r, c)
        assert (win["top"], win["left"]) == (2 * r, 2 * c)
        assert np.isclose(win["value"], out[r, c])
        assert np.allclose(win["products"], win["patch"] * k)
    with pytest.raises(ValueError, match="outside the 5x5 output"):
        scratch.conv_window(img, k, 2, 1, 5, 0)


# --- pooling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,stride", list(itertools.product((1, 2, 3), (None, 1, 2, 3))))
def test_pool2d_and_backward_match_torch(k, stride):
    x = RNG.normal(size=(2, 3, 10, 9))
    t = torch.tensor(x, requires_grad=True)
    out = F.max_pool2d(t, k, stride)
    assert np.allclose(scratch.pool2d(x, k, stride, "max"), out.detach().numpy())
    assert np.allclose(
        scratch.pool2d(x, k, stride, "average"), F.avg_pool2d(torch.tensor(x), k, stride).numpy()
    )
    upstream = RNG.normal(size=tuple(out.shape))
    out.backward(torch.tensor(upstream))
    assert np.allclose(scratch.max_pool2d_backward(x, upstream, k, stride), t.grad.numpy())


def test_worked_pooling_example():
    assert scratch.pool2d(scratch.WORKED_POOLING_MAP, 2).tolist() == [[6, 5], [3, 7]]
    assert scratch.pool2d(scratch.WORKED_POOLING_MAP, 2, mode="average").tolist() == [[3.5, 2], [1.5, 3.5]]
    win = scratch.pool_window(scratch.WORKED_POOLING_MAP, 2, 2, "max", 1, 1)
    assert win["value"] == 7 and win["argmax"] == (3, 3)


def test_pooling_errors():
    with pytest.raises(ValueError, match="mode must be 'max' or 'average'"):
        scratch.pool2d(np.zeros((4, 4)), 2, mode="median")
    with pytest.raises(ValueError, match="larger than the padded input"):
        scratch.pool2d(np.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match="grad_out must have the pooled shape"):
        scratch.max_pool2d_backward(np.zeros((4, 4)), np.zeros((3, 3)), 2)


def test_relative_change():
    img = np.arange(16.0).reshape(4, 4)
    assert scratch.relative_change(img, img) == 0
    assert scratch.relative_change(img, 2 * img) == 1
    with pytest.raises(ValueError):
        scratch.relative_change(np.zeros(3), np.ones(3))
