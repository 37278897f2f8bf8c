"""Weight initialisation and the per-layer diagnostics that show why it matters (Day 8).

A linear layer with ``fan_in`` inputs of variance ``v`` and weights of variance ``s^2`` produces
outputs of variance ``fan_in · s^2 · v``. Across ``L`` layers that factor is raised to the power
``L``: unless ``fan_in · s^2`` (times what the nonlinearity keeps) is 1, activations and
gradients shrink or grow geometrically with depth. Hence:

* **Xavier/Glorot** (2010): ``s^2 = gain^2 · 2 / (fan_in + fan_out)``, balancing forward and backward
  passes for (nearly) linear units; tanh's gain is 5/3 (not its slope, tanh'(0) = 1, but a
  factor that offsets the variance tanh's saturation removes).
* **Kaiming/He** (2015): ``s^2 = 2 / fan_in`` for ReLU, which zeroes half of its input and so halves
  the variance.

The ``gain`` values follow ``torch.nn.init.calculate_gain``.

References: Glorot & Bengio, *Understanding the difficulty of training deep feedforward neural
networks* (2010); He et al., *Delving Deep into Rectifiers* (2015); ARENA chapters 0.2 and 0.4.
"""

from __future__ import annotations

import numpy as np

from mechlearn.backprop import functional as F
from mechlearn.backprop.nn import Linear, Module, cross_entropy
from mechlearn.backprop.tensor import Tensor

__all__ = ["calculate_gain", "init_std", "reinitialise", "layer_statistics"]

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": float(np.sqrt(2.0))}


def calculate_gain(nonlinearity: str) -> float:
    """The factor by which a nonlinearity's recommended weight std is scaled (as torch's)."""
    if nonlinearity not in _GAINS:
        raise ValueError(f"nonlinearity should be one of {sorted(_GAINS)}, got {nonlinearity!r}")
    return _GAINS[nonlinearity]


def init_std(scheme: str | float, fan_in: int, fan_out: int, nonlinearity: str = "relu") -> float:
    """The standard deviation of a normal initialisation.

    Args:
        scheme: ``"xavier"``, ``"kaiming"``, or a number used as the std itself.
        fan_in, fan_out: the layer's input and output sizes.
        nonlinearity: what follows the layer, for the gain.
    """
    if isinstance(scheme, (int, float)) and not isinstance(scheme, bool):
        if scheme <= 0:
            raise ValueError(f"a numeric init std must be positive, got {scheme}")
        return float(scheme)
    gain = calculate_gain(nonlinearity)
    if scheme == "xavier":
        return gain * float(np.sqrt(2.0 / (fan_in + fan_out)))
    if scheme == "kaiming":
        return gain / float(np.sqrt(fan_in))
    raise ValueError(f"scheme should be 'xavier', 'kaiming' or a positive std, got {scheme!r}")


def reinitialise(model: Module, scheme: str | float, rng: np.random.Generator, nonlinearity: str = "relu") -> Module:
    """Draw every ``Linear`` weight from ``N(0, init_std(...)^2)`` and zero every bias, in place."""
    for module in _linears(model):
        std = init_std(scheme, module.in_features, module.out_features, nonlinearity)
        module.weight.array = rng.normal(0.0, std, size=module.weight.shape).astype(module.weight.dtype)
        if module.bias is not None:
            module.bias.array = np.zeros_like(module.bias.array)
    return model


def _linears(model: Module) -> list[Linear]:
    found: list[Linear] = []

    def visit(m: Module) -> None:
        if isinstance(m, Linear):
            found.append(m)
        for child in m._modules.values():
            visit(child)

    visit(model)
    return found


def layer_statistics(model: Module, x: np.ndarray, y: np.ndarray) -> list[dict[str, int | float]]:
    """For each ``Linear`` layer of a sequential ``model.layers``: the std of its output, and the
    norm of the cross-entropy gradient with respect to its weight (one forward and backward pass).

    Returns:
        One ``{"layer", "activation_std", "grad_norm"}`` per linear layer, input side first.
    """
    layers = getattr(model, "layers", None)
    if layers is None:
        raise ValueError("layer_statistics needs a model with a sequential `layers` attribute, such as nn.MLP")
    for p in model.parameters():
        p.grad = None
    h = Tensor(x)
    outputs = []
    for module in layers._modules.values():
        h = module(h)
        if isinstance(module, Linear):
            outputs.append(h)
    cross_entropy(h, y).backward()
    return [
        {"layer": i, "activation_std": float(out.array.std()), "grad_norm": float(np.linalg.norm(lin.weight.grad.array))}
        for i, (lin, out) in enumerate(zip(_linears(model), outputs))
    ]


_ = F  # functional is imported so that Tensor has its operators when this module is used alone
