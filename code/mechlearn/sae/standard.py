"""The standard SAE: ReLU latents with an L1 penalty (Bricken et al. 2023; ARENA 1.5.4).

    f = ReLU((x − b_dec) W_enc + b_enc)
    loss = mean ‖x − x̂‖² + λ · mean Σᵢ fᵢ

Subtracting ``b_dec`` before encoding centres the input on the point the decoder reconstructs
from, so the encoder only has to read deviations from it. The L1 norm is the convex stand-in for the
number of active latents (L0): it makes most latents zero on most inputs, at the cost of shrinking
the ones that fire (which is what the gated and JumpReLU SAEs are built to avoid).

Which L1: the plain sum ``Σᵢ fᵢ``, with the decoder rows held at unit norm by training (projected
gradients and renormalisation, `SAE.unit_norm_decoder` is True) — the setting of "Towards
Monosemanticity", ARENA 1.5.4 and SAELens's default. Without that constraint the L1 term could be
shrunk for free by scaling ``f`` down and ``W_dec`` up; Anthropic's April 2024 update instead drops
the constraint and weights the penalty by the decoder norms, ``Σᵢ fᵢ ‖W_dec,i‖``. While the rows
are unit norm the two penalties are the same number; they differ in the gradients they give
``W_dec``, which the constraint here removes anyway.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from mechlearn.sae.base import SAE

__all__ = ["StandardSAE", "check_coefficient"]


def check_coefficient(value: Any, name: str) -> float:
    """``value`` as a float, after checking it is a finite, non-negative real number.

    Raises:
        TypeError: not a real number (a bool counts as not a number).
        ValueError: negative, NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a non-negative real number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return float(value)


class StandardSAE(SAE):
    """ReLU latents and an L1 penalty on them, with unit-norm decoder rows.

    Args:
        d_in: width of the activations.
        d_sae: number of latents.
        l1_coefficient: λ, the weight of the L1 penalty (finite, >= 0).
        generator: random generator for the initial decoder.
    """

    architecture = "standard"
    unit_norm_decoder = True

    def __init__(self, d_in: int, d_sae: int, l1_coefficient: float | int,
                 generator: torch.Generator | None = None) -> None:
        l1_coefficient = check_coefficient(l1_coefficient, "l1_coefficient")
        super().__init__(d_in, d_sae, generator)
        self.l1_coefficient = l1_coefficient

    def encode(self, x: Float[Tensor, "*batch d_in"]) -> Float[Tensor, "*batch d_sae"]:
        """``f = ReLU((x − b_dec) W_enc + b_enc)``."""
        return F.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def sparsity_loss(
        self, x: Float[Tensor, "*batch d_in"], latents: Float[Tensor, "*batch d_sae"]
    ) -> Float[Tensor, ""]:
        """``λ · mean over examples of Σᵢ fᵢ`` (the latents are non-negative, so this is their L1 norm)."""
        return self.l1_coefficient * latents.abs().sum(-1).mean()

    def config(self) -> dict[str, Any]:
        """`SAE.config` plus ``l1_coefficient``."""
        return super().config() | {"l1_coefficient": self.l1_coefficient}
