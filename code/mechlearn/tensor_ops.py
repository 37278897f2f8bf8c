"""Einops and einsum as a language for tensors (ARENA 0.0, "Einops, einsum and tensor manipulation").

Named axes say what a reshape *means*: ``rearrange(x, "b (h w) -> b h w", h=8)`` documents
itself and fails loudly if the sizes do not fit, where ``x.reshape(b, 8, -1)`` silently reads
memory in whatever order it is in. ``einsum`` does the same for products: the axes that appear in
the inputs but not in the output are summed over, so one notation covers traces, dot products,
matrix-vector and matrix-matrix products, and outer products.

Each function here has a plain NumPy twin in the tests (``reshape``, ``transpose``, ``@``), which
is the reference it is checked against.
"""

from __future__ import annotations

import numpy as np
from einops import rearrange, reduce, repeat
from jaxtyping import Float

__all__ = [
    "image_grid",
    "daily_means",
    "normalise_rows",
    "cosine_similarity_matrix",
    "einsum_trace",
    "einsum_mv",
    "einsum_mm",
    "einsum_inner",
    "einsum_outer",
    "tile_pattern",
]


def image_grid(images: Float[np.ndarray, "n h w"], n_rows: int) -> Float[np.ndarray, "H W"]:
    """Tile ``n`` images into one picture of ``n_rows`` rows (``n`` must be a multiple of ``n_rows``)."""
    if images.shape[0] % n_rows:
        raise ValueError(f"{images.shape[0]} images do not fill {n_rows} rows evenly")
    return rearrange(images, "(rows cols) h w -> (rows h) (cols w)", rows=n_rows)


def daily_means(hourly: Float[np.ndarray, " hours"], per_day: int = 24) -> Float[np.ndarray, " days"]:
    """Average consecutive blocks of ``per_day`` readings: ``reduce("(day hour) -> day", "mean")``."""
    if hourly.shape[0] % per_day:
        raise ValueError(f"{hourly.shape[0]} readings are not a whole number of {per_day}-reading days")
    return reduce(hourly, "(day hour) -> day", "mean", hour=per_day)


def normalise_rows(x: Float[np.ndarray, "m n"]) -> Float[np.ndarray, "m n"]:
    """Divide each row by its Euclidean norm."""
    norms = np.sqrt(reduce(x**2, "m n -> m 1", "sum"))
    if np.any(norms == 0):
        raise ValueError("a row of zeros has no direction to normalise to")
    return x / norms


def cosine_similarity_matrix(x: Float[np.ndarray, "m n"]) -> Float[np.ndarray, "m m"]:
    """``S[i, j] = cos(angle between rows i and j)``."""
    u = normalise_rows(x)
    return np.einsum("i n, j n -> i j", u, u)


def _check_einsum(spec: str, *operands: np.ndarray) -> None:
    """Raise ``ValueError`` unless the operands have the axes that ``spec`` names, with matching sizes."""
    inputs = [term.split() for term in spec.split("->")[0].split(",")]
    sizes: dict[str, int] = {}
    for k, (axes, op) in enumerate(zip(inputs, operands)):
        shape = np.shape(op)
        if len(shape) != len(axes):
            raise ValueError(f"operand {k} should have {len(axes)} axes ({' '.join(axes)}) for '{spec}', got shape {shape}")
        for axis, size in zip(axes, shape):
            if sizes.setdefault(axis, size) != size:
                raise ValueError(f"axis {axis} of '{spec}' should have one size, got {sizes[axis]} and {size}")


def einsum_trace(a: Float[np.ndarray, "n n"]) -> float:
    """The sum of the diagonal: the repeated index ``i`` on one input, absent from the output."""
    _check_einsum("i i ->", a)
    return float(np.einsum("i i ->", a))


def einsum_mv(m: Float[np.ndarray, "i j"], v: Float[np.ndarray, " j"]) -> Float[np.ndarray, " i"]:
    """Matrix–vector product ``m @ v``: the index ``j`` is summed because it is absent from the output."""
    _check_einsum("i j, j -> i", m, v)
    return np.einsum("i j, j -> i", m, v)


def einsum_mm(a: Float[np.ndarray, "i j"], b: Float[np.ndarray, "j k"]) -> Float[np.ndarray, "i k"]:
    """Matrix product ``a @ b``: the shared index ``j`` is summed."""
    _check_einsum("i j, j k -> i k", a, b)
    return np.einsum("i j, j k -> i k", a, b)


def einsum_inner(u: Float[np.ndarray, " i"], v: Float[np.ndarray, " i"]) -> float:
    """Inner product ``u · v``: every index is summed, so the output is a scalar."""
    _check_einsum("i, i ->", u, v)
    return float(np.einsum("i, i ->", u, v))


def einsum_outer(u: Float[np.ndarray, " i"], v: Float[np.ndarray, " j"]) -> Float[np.ndarray, "i j"]:
    """Outer product: no index is shared or summed, so ``out[i, j] = u[i] * v[j]``."""
    _check_einsum("i, j -> i j", u, v)
    return np.einsum("i, j -> i j", u, v)


def tile_pattern(tile: Float[np.ndarray, "h w"], times_down: int, times_across: int) -> Float[np.ndarray, "H W"]:
    """Repeat a tile into a ``times_down × times_across`` wallpaper: ``repeat`` with composed axes."""
    if times_down < 1 or times_across < 1:
        raise ValueError(f"repeat counts must be at least 1, got {times_down} and {times_across}")
    return repeat(tile, "h w -> (a h) (b w)", a=times_down, b=times_across)
