"""Tests of cnnkit.kernels: the presets, and typed kernels read as numbers, never as code."""

import builtins

import numpy as np
import pytest

from cnnkit import kernels

# --- kernels typed by the reader --------------------------------------------------------------------


def test_presets_parse_and_have_the_classic_properties():
    k = kernels.kernel_presets()
    assert set(k) == set(kernels.KERNEL_PRESETS)
    for name in ("box blur 3×3", "Gaussian blur 3×3", "Gaussian blur 5×5", "sharpen", "identity"):
        assert np.isclose(k[name].sum(), 1), name
    for name in ("Sobel x (vertical edges)", "Sobel y (horizontal edges)", "outline (Laplacian)"):
        assert k[name].sum() == 0, name
    assert k["Gaussian blur 5×5"].shape == (5, 5)
    for name, values in k.items():
        assert np.array_equal(kernels.parse_kernel(kernels.format_kernel(values)), values), name


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1 2 3\n4 5 6\n7 8 9", np.arange(1, 10).reshape(3, 3)),
        ("[1, 2, 3]; [4,5,6]; [7, 8, 9]", np.arange(1, 10).reshape(3, 3)),
        ("  1/9 1/9 1/9 \n\n 1/9 1/9 1/9\n1/9 1/9 1/9\n", np.full((3, 3), 1 / 9)),
        ("-0.5 +.5 1e-1\n0 0 0\n0 0 0", np.array([[-0.5, 0.5, 0.1], [0, 0, 0], [0, 0, 0]])),
    ],
)
def test_parse_kernel_reads_numbers(text, expected):
    assert np.allclose(kernels.parse_kernel(text), expected)


@pytest.mark.parametrize(
    "text,match",
    [
        ("", "the kernel is empty"),
        ("1 2\n3 4", "a 2×2 kernel is not offered here: type 3×3 or 5×5"),
        ("1 2 3\n4 5\n6 7 8", "row 2 has 2 numbers but there are 3 rows"),
        ("1 1 1\n1 x 1\n1 1 1", "'x' is not a number"),
        ("__import__('os').system('echo hi') 0 0\n0 0 0\n0 0 0", "is not a number"),
        ("2**8 0 0\n0 0 0\n0 0 0", "'2\\*\\*8' is not a number"),
        ("nan 0 0\n0 0 0\n0 0 0", "'nan' is not a number"),
        ("inf 0 0\n0 0 0\n0 0 0", "'inf' is not a number"),
        ("1e999 0 0\n0 0 0\n0 0 0", "too large"),
        ("1/0 0 0\n0 0 0\n0 0 0", "divides by zero"),
        ("1_000 0 0\n0 0 0\n0 0 0", "is not a number"),
    ],
)
def test_parse_kernel_rejects_malformed_input_with_a_message(text, match):
    with pytest.raises(ValueError, match=match):
        kernels.parse_kernel(text)


def test_parse_kernel_never_evaluates(monkeypatch):

    def forbidden(*args, **kwargs):
        raise AssertionError("parse_kernel must not evaluate text")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert kernels.parse_kernel("1 0 0\n0 1 0\n0 0 1").trace() == 3
    with pytest.raises(ValueError):
        kernels.parse_kernel("(1).__class__ 0 0\n0 0 0\n0 0 0")
