"""One seed for every random number generator a page, test or recipe touches.

Call `set_seed` once, at an entry point (the top of a page, a test, a training recipe),
never inside library code: library functions take an explicit ``np.random.Generator`` or
``torch.Generator`` instead, so that what they draw depends only on their arguments.
"""

from __future__ import annotations

import random
import sys

import numpy as np

__all__ = ["set_seed"]


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's global state and torch (when installed).

    Args:
        seed: a non-negative integer below 2**32.

    Returns:
        A fresh ``np.random.Generator`` seeded with ``seed``, to pass to library code.

    Raises:
        TypeError: if ``seed`` is not an integer.
        ValueError: if ``seed`` is outside ``[0, 2**32)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_seed expects an integer seed, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"set_seed expects a seed in [0, 2**32), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    # Seed torch whenever it is installed, even if nothing has imported it yet: a page may import
    # it after calling set_seed, and its draws must still be reproducible. (The import costs a
    # second or two the first time; a NumPy-only page without torch installed skips it.)
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch  # noqa: F811
        except ImportError:
            torch = None
    if torch is not None:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)
