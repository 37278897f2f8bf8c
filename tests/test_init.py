"""Day 8: initialisation scales against torch.nn.init, and per-layer gradient norms against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import unchecked
from mechlearn.backprop import Tensor, init, nn
from mechlearn.testing import FLOAT64, Tolerance, assert_close

SAMPLE_STD = Tolerance("SAMPLE_STD", rtol=0.02, atol=0.0)


@pytest.mark.parametrize("nonlinearity", ["linear", "sigmoid", "tanh", "relu"])
def test_gains_match_torch(nonlinearity):
    assert init.calculate_gain(nonlinearity) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity), rel=1e-12)


@pytest.mark.parametrize("scheme, torch_init", [
    ("xavier", lambda w, nl: torch.nn.init.xavier_normal_(w, gain=torch.nn.init.calculate_gain(nl))),
    ("kaiming", lambda w, nl: torch.nn.init.kaiming_normal_(w, nonlinearity=nl)),
])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_init_std_matches_torch_sample_std(scheme, torch_init, nonlinearity):
    fan_in, fan_out = 300, 700
    model = nn.Linear(fan_in, fan_out, rng=np.random.default_rng(0))
    init.reinitialise(model, scheme, np.random.default_rng(1), nonlinearity=nonlinearity)
    w = torch.empty(fan_out, fan_in, dtype=torch.float64)
    torch_init(w, nonlinearity)
    assert_close(model.weight.array.std(), w.std().item(), SAMPLE_STD, name=f"{scheme}/{nonlinearity} std")
    assert_close(model.weight.array.std(), init.init_std(scheme, fan_in, fan_out, nonlinearity), SAMPLE_STD)
    assert not model.bias.array.any()


def test_layer_statistics_match_torch_gradients():
    rng = np.random.default_rng(2)
    model = nn.MLP((5, 8, 8, 3), rng=rng, activation="tanh")
    x, y = rng.normal(size=(16, 5)), rng.integers(0, 3, size=16)
    stats = init.layer_statistics(model, x, y)
    ref = model.to_torch()
    torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y)).backward()
    norms = [p.grad.norm().item() for name, p in ref.named_parameters() if name.endswith("weight")]
    assert_close([s["grad_norm"] for s in stats], norms, FLOAT64)
    with torch.no_grad():
        first = torch.tensor(x) @ ref.layers[0].weight.T + ref.layers[0].bias
    assert_close(stats[0]["activation_std"], first.numpy().std(), FLOAT64)


def test_tanh_activation_matches_torch():
    rng = np.random.default_rng(3)
    model = nn.MLP((4, 6, 2), rng=rng, activation="tanh")
    x = rng.normal(size=(3, 4))
    assert_close(model(Tensor(x)).array, model.to_torch()(torch.tensor(x)).detach(), FLOAT64)


@pytest.mark.parametrize("make, words", [
    (lambda: init.calculate_gain("gelu"), "nonlinearity should be one of"),
    (lambda: init.init_std("orthogonal", 3, 3), "scheme should be"),
    (lambda: init.init_std(-0.1, 3, 3), "positive"),
    (lambda: init.layer_statistics(nn.Linear(2, 2, rng=np.random.default_rng(0)), np.zeros((1, 2)), np.zeros(1, dtype=int)), "sequential"),
    (lambda: nn.MLP((2, 2), rng=np.random.default_rng(0), activation="gelu"), "activation should be"),
])
def test_bad_input_raises_a_clear_error(make, words):
    with pytest.raises(ValueError, match=words):
        unchecked(make)()
