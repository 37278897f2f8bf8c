"""Small datasets that need no download: scikit-learn's bundled digits, and minibatch order.

Everything here is deterministic given its seed, so a page and a test that ask for the same
split and the same batches get exactly the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["load_digits_split", "minibatch_indices"]


def load_digits_split(test_fraction: float = 0.25, seed: int = 0, dtype: Any = np.float64) -> tuple[np.ndarray, ...]:
    """The 1,797 8×8 handwritten digits that ship with scikit-learn, scaled to [0, 1] and split.

    Args:
        test_fraction: the share of examples held out, in (0, 1).
        seed: seeds the shuffle before the split.
        dtype: the dtype of the images.

    Returns:
        ``(x_train, y_train, x_test, y_test)``; images flattened to 64 features, labels int64.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction should be in (0, 1), got {test_fraction}")
    from mechlearn._optional import require

    load_digits = require("sklearn.datasets", "mechlearn.data.load_digits_split").load_digits  # bundled: no download

    digits = load_digits()
    x = (digits.data / 16.0).astype(dtype)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def minibatch_indices(n: int, batch_size: int, rng: np.random.Generator, drop_last: bool = False) -> Iterator[np.ndarray]:
    """One epoch of shuffled minibatch indices into ``n`` examples."""
    if batch_size < 1:
        raise ValueError(f"batch_size should be at least 1, got {batch_size}")
    order = rng.permutation(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]
