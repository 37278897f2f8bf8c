"""Day 9: each einops/einsum drill equals the same computation in plain NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import unchecked
from mechlearn import tensor_ops as T
from mechlearn.testing import EXACT, FLOAT64, assert_close


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 4), cols=st.integers(1, 4), h=st.integers(1, 5), w=st.integers(1, 5), seed=st.integers(0, 1000))
def test_image_grid_equals_reshape_transpose(rows, cols, h, w, seed):
    imgs = np.random.default_rng(seed).normal(size=(rows * cols, h, w))
    plain = imgs.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    assert_close(T.image_grid(imgs, rows), plain, EXACT)


def test_reductions_products_and_repeats_equal_plain_numpy():
    rng = np.random.default_rng(0)
    hourly, x = rng.normal(size=48), rng.normal(size=(4, 3))
    a, b, v, w = rng.normal(size=(3, 3)), rng.normal(size=(3, 5)), rng.normal(size=3), rng.normal(size=5)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert_close(T.daily_means(hourly), hourly.reshape(2, 24).mean(1), FLOAT64)
    assert_close(T.normalise_rows(x), unit, FLOAT64)
    assert_close(T.cosine_similarity_matrix(x), unit @ unit.T, FLOAT64)
    assert_close(T.einsum_trace(a), np.trace(a), FLOAT64)
    assert_close(T.einsum_mv(b.T, v), b.T @ v, FLOAT64)
    assert_close(T.einsum_mm(a, b), a @ b, FLOAT64)
    assert_close(T.einsum_inner(v, v), v @ v, FLOAT64)
    assert_close(T.einsum_outer(v, w), np.outer(v, w), FLOAT64)
    assert_close(T.tile_pattern(a, 2, 4), np.tile(a, (2, 4)), EXACT)


@pytest.mark.parametrize("make, words", [
    (lambda: T.image_grid(np.zeros((5, 2, 2)), 2), "do not fill"),
    (lambda: T.daily_means(np.zeros(25)), "whole number"),
    (lambda: T.normalise_rows(np.zeros((2, 3))), "row of zeros"),
    (lambda: T.tile_pattern(np.zeros((2, 2)), 0, 1), "at least 1"),
])
def test_bad_input_raises_a_clear_error(make, words):
    with pytest.raises(ValueError, match=words):
        unchecked(make)()
