"""Day 3: stable softmax / log-sum-exp / cross-entropy against torch, at extreme logits too."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mechlearn.backprop import (
    cross_entropy,
    cross_entropy_backward,
    log_softmax,
    logsumexp,
    softmax,
    softmax_backward,
    softmax_naive,
)
from conftest import unchecked
from mechlearn.testing import FLOAT64, GRADCHECK, assert_close, gradcheck

TORCH_FLOAT64 = FLOAT64  # float64 on both sides: only rounding differs

logit_arrays = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 8)),
    elements=st.floats(-1e4, 1e4, allow_nan=False),
)


@settings(max_examples=80, deadline=None)
@given(x=logit_arrays)
def test_forward_matches_torch_even_at_extreme_logits(x):
    t = torch.tensor(x)
    assert_close(softmax(x), torch.softmax(t, -1), TORCH_FLOAT64, name="softmax")
    assert_close(log_softmax(x), torch.log_softmax(t, -1), TORCH_FLOAT64, name="log_softmax")
    assert_close(logsumexp(x), torch.logsumexp(t, -1), TORCH_FLOAT64, name="logsumexp")
    assert np.isfinite(softmax(x)).all() and np.isfinite(log_softmax(x)).all()


def test_naive_softmax_overflows_where_the_stable_one_does_not():
    x = np.array([[1e4, -1e4, 0.0]])
    assert np.isnan(softmax_naive(x)).any()
    assert_close(softmax(x), [[1.0, 0.0, 0.0]], FLOAT64)


@settings(max_examples=50, deadline=None)
@given(x=logit_arrays, seed=st.integers(0, 1000))
def test_cross_entropy_and_gradient_match_torch(x, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, x.shape[1], size=x.shape[0])
    t = torch.tensor(x, requires_grad=True)
    loss = F.cross_entropy(t, torch.tensor(y))
    loss.backward()
    assert_close(cross_entropy(x, y), loss.item(), TORCH_FLOAT64, name="cross-entropy")
    assert_close(cross_entropy_backward(x, y), t.grad, TORCH_FLOAT64, name="d cross-entropy / d logits")


def test_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 5)) * 3, rng.integers(0, 5, size=4)
    assert gradcheck(lambda z: cross_entropy(z, y), cross_entropy_backward(x, y), x, GRADCHECK)


def test_softmax_backward_matches_torch_and_finite_differences():
    rng = np.random.default_rng(1)
    z, g = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    t = torch.tensor(z, requires_grad=True)
    (torch.softmax(t, -1) * torch.tensor(g)).sum().backward()
    ours = softmax_backward(softmax(z), g)
    assert_close(ours, t.grad, FLOAT64, name="softmax vector-Jacobian product")
    assert gradcheck(lambda v: float((softmax(v) * g).sum()), ours, z, GRADCHECK)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: unchecked(softmax)(np.array([1, 2, 3])), TypeError, "floating-point"),
        (lambda: unchecked(softmax)(np.float64(1.0)), ValueError, "at least one axis"),
        (lambda: unchecked(softmax)(np.zeros((2, 0))), ValueError, "empty last axis"),
        (lambda: unchecked(cross_entropy)(np.zeros(3), np.array([0])), ValueError, r"\(batch, n_classes\)"),
        (lambda: unchecked(cross_entropy)(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError, "integer class indices"),
        (lambda: cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, r"\[0, 3\)"),
        (lambda: cross_entropy(np.zeros((2, 3)), np.array([0, -1])), ValueError, r"\[0, 3\)"),
        (lambda: unchecked(cross_entropy)(np.zeros((2, 3)), np.array([0])), ValueError, r"shape \(2,\)"),
        (lambda: unchecked(softmax_backward)(np.zeros((2, 3)), np.zeros((3, 2))), ValueError, "same shape"),
    ],
)
def test_bad_input_raises_a_clear_error(make, error, words):
    with pytest.raises(error, match=words):
        make()
