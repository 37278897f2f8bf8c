"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay (ARENA 0.3).

Plain SGD steps against the gradient: ``θ ← θ − η g``. On a long narrow valley (the Rosenbrock
function, an ill-conditioned quadratic) the gradient points mostly *across* the valley, so SGD
zig-zags. **Momentum** keeps a running sum of past gradients, ``b ← μ b + g``, and steps along
``b``: the across-valley components alternate in sign and cancel, the along-valley components
add up. **Nesterov** momentum steps along ``g + μ b`` instead, a look-ahead that damps overshoot.
**Weight decay** adds ``λ θ`` to the gradient, the gradient of ``λ/2 ‖θ‖²``.

The update order (weight decay, then momentum with dampening, then Nesterov) matches
``torch.optim.SGD``, which is the reference in the tests.

Reference: Sutskever et al., *On the importance of initialization and momentum in deep learning* (2013).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from mechlearn.optim.base import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and (L2) weight decay.

    Args:
        params: tensors or parameter groups.
        lr: the learning rate η.
        momentum: μ in ``b ← μ b + (1 − dampening) g``; 0 for plain SGD.
        dampening: scales the new gradient in the momentum buffer.
        weight_decay: λ, added to the gradient as ``λ θ``.
        nesterov: step along ``g + μ b`` instead of ``b`` (needs momentum > 0 and no dampening).
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if not 0 <= group["momentum"] < 1:
            raise ValueError(f"momentum should be in [0, 1), got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        g = grad
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        mu = group["momentum"]
        if mu:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.clone()  # the first step has no history to damp
            else:
                state["momentum_buffer"].mul_(mu).add_(g, alpha=1 - group["dampening"])
            b = state["momentum_buffer"]
            g = g + mu * b if group["nesterov"] else b
        p.add_(g, alpha=-group["lr"])
