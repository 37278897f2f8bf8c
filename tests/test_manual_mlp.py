"""Day 2: hand-derived MLP gradients against torch.autograd and finite differences."""

import numpy as np
import pytest
import torch

from conftest import unchecked
from mechlearn.backprop import ManualMLP, mse_loss, mse_loss_backward, train_regression
from mechlearn.testing import FLOAT64, GRADCHECK, assert_close, gradcheck


def _torch_grads(model, x, y):
    params = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = torch.tensor(x)
    for l in range(1, model.n_layers + 1):
        h = h @ params[f"W{l}"] + params[f"b{l}"]
        if l < model.n_layers:
            h = torch.relu(h)
    loss = torch.nn.functional.mse_loss(h, torch.tensor(y))
    loss.backward()
    return loss.item(), {k: p.grad.numpy() for k, p in params.items()}


@pytest.mark.parametrize("sizes", [(3, 5, 2), (1, 16, 16, 1), (4, 8, 8, 8, 3)])
def test_gradients_match_torch(sizes):
    rng = np.random.default_rng(0)
    model = ManualMLP(sizes, rng)
    x, y = rng.normal(size=(7, sizes[0])), rng.normal(size=(7, sizes[-1]))
    y_hat = model.forward(x)
    grads = model.backward(mse_loss_backward(y_hat, y))
    ref_loss, ref_grads = _torch_grads(model, x, y)
    assert_close(mse_loss(y_hat, y), ref_loss, FLOAT64, name="loss")
    assert grads.keys() == ref_grads.keys()
    for k in grads:
        assert_close(grads[k], ref_grads[k], FLOAT64, name=f"dL/d{k}")


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    model = ManualMLP((3, 6, 4, 2), rng)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    grads = model.backward(mse_loss_backward(model.forward(x), y))
    for name, param in model.params.items():
        def loss_at(p, name=name):
            saved = model.params[name]
            model.params[name] = p
            try:
                return mse_loss(model.forward(x), y)
            finally:
                model.params[name] = saved

        result = gradcheck(loss_at, grads[name], param.copy(), GRADCHECK, name=f"dL/d{name}")
        assert result, result.message


def test_training_reduces_loss_deterministically():
    def run():
        rng = np.random.default_rng(2)
        x = np.linspace(-1, 1, 64)[:, None]
        model = ManualMLP((1, 16, 1), rng)
        return train_regression(model, x, np.sin(3 * x), lr=0.1, steps=300)

    h1, h2 = run(), run()
    assert h1 == h2
    assert h1[-1]["loss"] < 0.2 * h1[0]["loss"]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: ManualMLP((3,), np.random.default_rng(0)), "at least two"),
        (lambda: ManualMLP((3, 0, 1), np.random.default_rng(0)), "positive integers"),
        (lambda: unchecked(ManualMLP.__init__)(object.__new__(ManualMLP), (3, 2), 0), "np.random.Generator"),
        (lambda: ManualMLP((3, 2), np.random.default_rng(0)).forward(np.zeros((4, 2))), r"shape \(batch, 3\)"),
        (lambda: ManualMLP((3, 2), np.random.default_rng(0)).backward(np.zeros((4, 2))), "forward before backward"),
        (lambda: unchecked(mse_loss)(np.zeros((2, 1)), np.zeros((2,))), "shapes differ"),
        (lambda: train_regression(ManualMLP((1, 2), np.random.default_rng(0)), np.zeros((2, 1)), np.zeros((2, 2)), lr=0.0), "lr"),
    ],
)
def test_bad_input_raises_a_clear_error(make, words):
    with pytest.raises((ValueError, TypeError, RuntimeError), match=words):
        make()


def test_backward_checks_gradient_shape():
    model = ManualMLP((3, 2), np.random.default_rng(0))
    model.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="output's shape"):
        unchecked(ManualMLP.backward)(model, np.zeros((4, 3)))
