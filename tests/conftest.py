"""Shared fixtures: the MNIST data root, loaded once per test process."""

import pytest

import simplecnn


@pytest.fixture(scope="session")
def mnist_root():
    """The real MNIST files (``$SIMPLECNN_DATA`` or ./data); the tests need them, offline."""
    root = simplecnn.data_root()
    try:
        simplecnn.verify_mnist(root)
    except simplecnn.DataError as err:
        pytest.fail(f"these tests need MNIST under {root}: {err}")
    return root


@pytest.fixture(scope="session")
def mnist(mnist_root):
    """MNIST split 48k/12k/10k, as normalised tensors."""
    return simplecnn.load_mnist(mnist_root, download=False)
