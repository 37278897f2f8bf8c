"""Day 7: modules on our engine equal torch.nn with copied weights, and train identically.

The headline check: the same MLP, with the same initial weights and the same minibatches,
trained in float64 with our engine and with torch, gives the same loss curve to 1e-8 and the
same test accuracy on scikit-learn's digits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import unchecked
from mechlearn.backprop import Tensor, nn
from mechlearn.data import load_digits_split, minibatch_indices
from mechlearn.testing import FLOAT64, Tolerance, assert_close

LOSS_CURVE = Tolerance("LOSS_CURVE", rtol=0.0, atol=1e-8)
"""Two float64 training runs of the same maths: every step's loss within 1e-8."""


def torch_mlp(ours: nn.MLP) -> torch.nn.Module:
    """The torch module with the same architecture and parameter names, holding a copy of our weights."""

    class TorchMLP(torch.nn.Module):
        def __init__(self, sizes):
            super().__init__()
            layers = []
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(torch.nn.Linear(a, b, dtype=torch.float64))
                if i < len(sizes) - 2:
                    layers.append(torch.nn.ReLU())
            self.layers = torch.nn.Sequential(*layers)

        def forward(self, x):
            return self.layers(x)

    model = TorchMLP(ours.sizes)
    model.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return model


def test_linear_and_mlp_outputs_match_torch_with_copied_weights():
    rng = np.random.default_rng(0)
    ours = nn.MLP((5, 7, 3), rng=rng)
    ref = torch_mlp(ours)
    x = rng.normal(size=(4, 5))
    assert_close(ours(Tensor(x)).array, ref(torch.tensor(x)), FLOAT64, name="MLP forward")
    assert set(ours.state_dict()) == set(ref.state_dict()), "parameter names should match torch's"


def test_to_torch_gives_the_same_function_and_names():
    rng = np.random.default_rng(4)
    ours = nn.MLP((6, 5, 4, 3), rng=rng)
    converted, independent = ours.to_torch(), torch_mlp(ours)
    x = torch.tensor(rng.normal(size=(2, 6)))
    assert set(converted.state_dict()) == set(independent.state_dict())
    assert_close(converted(x).detach(), independent(x).detach(), FLOAT64, name="to_torch() forward")


def test_state_dict_round_trips_both_ways():
    rng = np.random.default_rng(1)
    ours = nn.MLP((3, 4, 2), rng=rng)
    ref = torch_mlp(ours)
    with torch.no_grad():
        for p in ref.parameters():
            p.mul_(2.0)
    ours.load_state_dict(ref.state_dict())
    for name, value in ref.state_dict().items():
        assert_close(ours.state_dict()[name], value, FLOAT64, name=name)


def test_headline_same_init_same_batches_same_loss_curve_and_accuracy():
    x_train, y_train, x_test, y_test = load_digits_split(seed=0)
    rng = np.random.default_rng(0)
    ours = nn.MLP((64, 32, 10), rng=rng)
    ref = torch_mlp(ours)
    batches = [idx for epoch in range(5)
               for idx in minibatch_indices(len(y_train), 64, np.random.default_rng(epoch))]

    opt_ours = nn.SGD(ours.parameters(), lr=0.5)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.5)
    curve_ours, curve_ref = [], []
    for idx in batches:
        loss = nn.cross_entropy(ours(Tensor(x_train[idx])), y_train[idx])
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()
        curve_ours.append(loss.item())

        loss_ref = torch.nn.functional.cross_entropy(ref(torch.tensor(x_train[idx])), torch.tensor(y_train[idx]))
        opt_ref.zero_grad()
        loss_ref.backward()
        opt_ref.step()
        curve_ref.append(loss_ref.item())

    assert_close(curve_ours, curve_ref, LOSS_CURVE, name="loss curve, ours vs torch")
    assert np.mean(curve_ours[-10:]) < 0.25 * curve_ours[0], "training should have learned something"
    acc_ours = nn.accuracy(ours, x_test, y_test)
    with torch.no_grad():
        acc_ref = float((ref(torch.tensor(x_test)).argmax(-1).numpy() == y_test).mean())
    assert acc_ours == acc_ref and acc_ours > 0.8


def test_cross_entropy_matches_torch_and_its_gradient():
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(6, 4)) * 30, rng.integers(0, 4, size=6)
    ours = Tensor(z.copy(), requires_grad=True)
    ref = torch.tensor(z.copy(), requires_grad=True)
    loss, loss_ref = nn.cross_entropy(ours, y), torch.nn.functional.cross_entropy(ref, torch.tensor(y))
    loss.backward()
    loss_ref.backward()
    assert_close(loss.item(), loss_ref.item(), FLOAT64)
    assert_close(ours.grad.array, ref.grad, FLOAT64)


def test_train_classifier_is_deterministic_and_learns():
    x_train, y_train, x_test, y_test = load_digits_split(seed=0)

    def run():
        rng = np.random.default_rng(3)
        model = nn.MLP((64, 32, 10), rng=rng)
        history = nn.train_classifier(model, x_train, y_train, lr=0.1, epochs=10, batch_size=32, rng=rng)
        return history, nn.accuracy(model, x_test, y_test)

    (h1, a1), (h2, a2) = run(), run()
    assert h1 == h2 and a1 == a2 and a1 > 0.85


def test_modules_need_super_init_and_sgd_checks_arguments():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(AttributeError, match="super"):
        Broken()
    with pytest.raises(ValueError, match="empty"):
        nn.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="positive"):
        nn.SGD(nn.MLP((2, 2), rng=np.random.default_rng(0)).parameters(), lr=0.0)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: nn.cross_entropy(Tensor(np.zeros(3)), np.array([0])), r"\(batch, n_classes\)"),
        (lambda: nn.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0])), "integer class indices"),
        (lambda: nn.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3])), r"\[0, 3\)"),
        (lambda: nn.Linear(3, 2, rng=np.random.default_rng(0))(Tensor(np.zeros((1, 4)))), "last axis 3"),
        (lambda: nn.MLP((3,), rng=np.random.default_rng(0)), "at least input and output"),
        (lambda: nn.MLP((3, 2), rng=np.random.default_rng(0)).load_state_dict({"x": np.zeros(1)}), "keys differ"),
        (lambda: load_digits_split(test_fraction=1.5), r"\(0, 1\)"),
        (lambda: next(minibatch_indices(10, 0, np.random.default_rng(0))), "at least 1"),
    ],
)
def test_bad_input_raises_a_clear_error(make, words):
    with pytest.raises((ValueError, KeyError), match=words):
        unchecked(make)()
