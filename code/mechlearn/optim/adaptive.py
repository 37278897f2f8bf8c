"""Adaptive optimisers: RMSprop, Adam and AdamW (ARENA 0.3).

**RMSprop** divides each coordinate's step by a running root-mean-square of its gradients,
``v ← α v + (1 − α) g²``, ``θ ← θ − η g / (√v + ε)``: coordinates with consistently large gradients
take smaller steps, rescaling an ill-conditioned problem towards a round one.

**Adam** combines that with momentum on the gradient itself, and corrects both running averages
for their start at zero: after ``t`` steps ``m`` is a biased estimate of ``E[g]`` by a factor
``1 − β₁ᵗ``, so ``m̂ = m / (1 − β₁ᵗ)``, likewise ``v̂``; then ``θ ← θ − η m̂ / (√v̂ + ε)``.

**AdamW** decouples weight decay from the adaptive scaling: Adam with L2 adds ``λθ`` to ``g`` and
then divides it by ``√v̂``, so heavily-updated weights are barely decayed; AdamW shrinks the weights
directly, ``θ ← θ (1 − ηλ)``, before the Adam step.

Formulas and defaults follow ``torch.optim.RMSprop``, ``Adam`` and ``AdamW`` (the references in the
tests), including where ``ε`` is added.

References: Tieleman & Hinton, lecture 6.5 (2012); Kingma & Ba, *Adam* (2015); Loshchilov & Hutter,
*Decoupled Weight Decay Regularization* (2019).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from mechlearn.optim.base import Optimizer

__all__ = ["RMSprop", "Adam", "AdamW"]


class RMSprop(Optimizer):
    """RMSprop with optional momentum, centring and weight decay (torch's defaults)."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if not 0 <= group["alpha"] < 1 or not group["eps"] > 0:
            raise ValueError(f"need 0 <= alpha < 1 and eps > 0, got alpha={group['alpha']}, eps={group['eps']}")

    def _update(self, p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        g = grad + group["weight_decay"] * p if group["weight_decay"] else grad
        alpha = group["alpha"]
        v = state.setdefault("square_avg", torch.zeros_like(p))
        v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if group["centered"]:  # divide by a running std of g rather than its RMS
            g_avg = state.setdefault("grad_avg", torch.zeros_like(p))
            g_avg.mul_(alpha).add_(g, alpha=1 - alpha)
            denom = (v - g_avg * g_avg).sqrt().add_(group["eps"])
        else:
            denom = v.sqrt().add_(group["eps"])
        if group["momentum"] > 0:
            buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
            buf.mul_(group["momentum"]).addcdiv_(g, denom)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.addcdiv_(g, denom, value=-group["lr"])


class Adam(Optimizer):
    """Adam with bias correction and optional L2 weight decay (added to the gradient, as torch's Adam)."""

    decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1) or not group["eps"] > 0:
            raise ValueError(f"need betas in [0, 1) and eps > 0, got betas={group['betas']}, eps={group['eps']}")

    def _update(self, p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
        if self.decoupled:
            p.mul_(1 - lr * wd)
            g = grad
        else:
            g = grad + wd * p if wd else grad
        state["step"] = t = state.get("step", 0) + 1
        m = state.setdefault("exp_avg", torch.zeros_like(p))
        v = state.setdefault("exp_avg_sq", torch.zeros_like(p))
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        # θ ← θ − η m̂ / (√v̂ + ε), with m̂ = m / (1 − β₁ᵗ) and √v̂ = √v / √(1 − β₂ᵗ)
        denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(group["eps"])
        p.addcdiv_(m, denom, value=-lr / (1 - b1**t))


class AdamW(Adam):
    """Adam with decoupled weight decay: ``θ ← θ (1 − ηλ)`` before the Adam step (torch's default λ = 0.01)."""

    decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
