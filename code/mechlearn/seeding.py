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
    # Seed torch only if it is installed, and only import it when it is already in use or
    # cheap to find: importing torch costs a second or two and is not needed by every page.
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch  # noqa: F811
        except ImportError:
            torch = None
    if torch is not None:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)
