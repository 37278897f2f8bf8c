"""Day 1: the scalar autograd against torch.autograd (float64) and finite differences."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import unchecked
from mechlearn.backprop import Value, topological_order
from mechlearn.testing import FLOAT64, GRADCHECK, assert_close, numerical_gradient, random_expression


def _torch_grads(f, xs):
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    out = f(*ts)
    out.backward()
    return out.item(), [t.grad.item() if t.grad is not None else 0.0 for t in ts]


def _value_grads(f, xs):
    vs = [Value(x) for x in xs]
    out = f(*vs)
    out.backward()
    return out.data, [v.grad for v in vs]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_inputs=st.integers(1, 4), n_ops=st.integers(1, 16))
def test_random_expressions_match_torch(seed, n_inputs, n_ops):
    rng = np.random.default_rng(seed)
    f, text = random_expression(rng, n_inputs, n_ops)
    xs = list(rng.normal(size=n_inputs))
    ours, ours_grad = _value_grads(f, xs)
    ref, ref_grad = _torch_grads(f, xs)
    assert_close(ours, ref, FLOAT64, name=f"value of {text}")
    assert_close(ours_grad, ref_grad, FLOAT64, name=f"gradients of {text}")


@pytest.mark.parametrize("seed", range(10))
def test_random_expressions_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    f, text = random_expression(rng, 3, 10)
    x = rng.normal(size=3)
    _, grad = _value_grads(f, list(x))
    # relu has a kink at 0; random normal inputs land there with probability 0.
    fd = numerical_gradient(lambda v: f(*[Value(float(t)) for t in v]).data, x)
    assert_close(grad, fd, GRADCHECK, name=f"gradients of {text}")


def test_every_op_and_its_reverse_matches_torch():
    def f(a, b):
        return ((a * b + 2.0) / (b - 3.0) - 1.5 / a + (-a) ** 3 + (a**2 + 1).log() * b.exp() + a.tanh() * b.sigmoid()
                + (a - b).relu() + 2.0 - b + 3.0 * a)

    xs = [0.7, -1.3]
    ours, grad = _value_grads(f, xs)
    ref, ref_grad = _torch_grads(f, xs)
    assert_close(ours, ref, FLOAT64)
    assert_close(grad, ref_grad, FLOAT64)


def test_shared_parent_accumulates_gradient():
    # y = x*x + x: the two uses of x must add, dy/dx = 2x + 1.
    x = Value(3.0)
    y = x * x + x
    y.backward()
    assert x.grad == 7.0


def test_backward_twice_gives_the_same_gradients():
    x = Value(2.0)
    y = (x * x).tanh()
    y.backward()
    first = x.grad
    y.backward()
    assert x.grad == first


def test_topological_order_puts_parents_first_and_handles_deep_graphs():
    x = Value(1.0)
    y = x
    for _ in range(5000):  # deeper than Python's default recursion limit
        y = y * 1.0
    order = topological_order(y)
    assert order[-1] is y and len(order) == 5001 + 5000  # x, 5000 constants 1.0, 5000 products
    position = {id(node): i for i, node in enumerate(order)}
    assert all(position[id(p)] < position[id(node)] for node in order for p in node._prev)
    y.backward()
    assert x.grad == 1.0


def test_sigmoid_does_not_overflow():
    for x in (-1000.0, 1000.0):
        v = Value(x)
        s = v.sigmoid()
        s.backward()
        assert math.isfinite(s.data) and math.isfinite(v.grad)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: unchecked(Value.__init__)(Value(0.0), "3"), TypeError, "real number"),
        (lambda: unchecked(Value.__init__)(Value(0.0), True), TypeError, "real number"),
        (lambda: unchecked(Value.__add__)(Value(1.0), "a"), TypeError, "other operand"),
        (lambda: Value(-1.0).log(), ValueError, "positive"),
        (lambda: unchecked(Value.__pow__)(Value(2.0), Value(2.0)), TypeError, "exponent"),
        (lambda: Value(-2.0) ** 0.5, ValueError, "not real"),
        (lambda: Value(1.0) / 0.0, ZeroDivisionError, "0"),
        (lambda: Value(1000.0).exp(), OverflowError, "overflows"),
        (lambda: unchecked(topological_order)(3.0), TypeError, "expects a Value"),
    ],
)
def test_bad_input_raises_a_clear_error(make, error, words):
    with pytest.raises(error, match=words):
        make()
