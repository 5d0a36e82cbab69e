"""Shared fixtures: the MNIST data root, loaded once per test process."""

import pytest

from cnnkit import mnist as mnist_data


@pytest.fixture(scope="session")
def mnist_root():
    """The real MNIST files (``$SIMPLECNN_DATA`` or ./data); the tests need them, offline."""
    root = mnist_data.data_root()
    try:
        mnist_data.verify(root)
    except mnist_data.DataError as err:
        pytest.fail(f"these tests need MNIST under {root}: {err}")
    return root


@pytest.fixture(scope="session")
def mnist(mnist_root):
    """MNIST split 48k/12k/10k, as standardized tensors."""
    return mnist_data.load(mnist_root, download=False)
