"""The gated SAE (Rajamanoharan et al., 2024a, "Improving Dictionary Learning with Gated Sparse Autoencoders").

A standard SAE uses one linear map for two jobs: deciding *which* latents fire and estimating *how
much*. Its L1 penalty is there for the first job, but it acts on the second as well and pulls
every active latent towards zero (shrinkage). The gated SAE gives each job its own path from the
same centred input ``x − b_dec``:

    π_gate = (x − b_dec) W_gate + b_gate                     which latents fire
    π_mag  = (x − b_dec) W_mag  + b_mag,  W_mag = W_gate ⊙ exp(r_mag)   how much
    f      = 1[π_gate > 0] ⊙ ReLU(π_mag)

and penalises only the gate:

    L = ‖x − x̂(f)‖²  +  λ ‖ReLU(π_gate)‖₁  +  ‖x − x̂_frozen(ReLU(π_gate))‖².

The magnitudes see no penalty, so nothing shrinks them. The step 1[π_gate > 0] passes no gradient,
so the first term trains only the magnitude path and the decoder; the gate learns from the other
two. The third, auxiliary term asks ``ReLU(π_gate)`` to reconstruct ``x`` on its own through a
*frozen* copy of the decoder (``W_dec`` and ``b_dec`` under a stop-gradient): a standard L1 SAE's
encoder learns from exactly that objective which latents should be on, and freezing the decoder
keeps the shrunken gate activations from distorting the dictionary.

**Weight sharing.** ``W_mag`` is not a free matrix: each latent's magnitude direction is its gate
direction rescaled by ``exp(r_mag_i)``, so a gated SAE has only ``2·d_sae`` more parameters than a
standard one (``r_mag`` and ``b_mag``), and the two paths agree on which direction a latent reads.
With that sharing the gate fires exactly when ``π_mag > b_mag − exp(r_mag) ⊙ b_gate``, so a
gated SAE computes a JumpReLU of ``π_mag`` with threshold ``max(0, b_mag − exp(r_mag) ⊙ b_gate)``
(Rajamanoharan et al., 2024b); only the training differs.

``W_gate`` and ``b_gate`` are the base class's ``W_enc`` and ``b_enc``. The decoder rows are held at
unit norm during training (as in the paper and ARENA 1.5.4), so the L1 term needs no decoder-norm
weights: with ``‖W_dec,i‖ = 1`` the paper's penalty and the plain sum are the same number.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from mechlearn.sae.base import SAE
from mechlearn.sae.standard import check_coefficient

__all__ = ["GatedSAE"]


class GatedSAE(SAE):
    """A gated SAE: a gate path decides which latents fire, a weight-shared magnitude path sets their size.

    Args:
        d_in: width of the activations.
        d_sae: number of latents.
        l1_coefficient: λ, the weight of the L1 penalty on ``ReLU(π_gate)`` (finite, >= 0).
        generator: random generator for the initial decoder (the encoder starts tied to it).
    """

    architecture = "gated"
    unit_norm_decoder = True

    def __init__(self, d_in: int, d_sae: int, l1_coefficient: float | int,
                 generator: torch.Generator | None = None) -> None:
        l1_coefficient = check_coefficient(l1_coefficient, "l1_coefficient")
        super().__init__(d_in, d_sae, generator)
        self.l1_coefficient = l1_coefficient
        self.r_mag = nn.Parameter(torch.zeros(d_sae))  # exp(0) = 1: both paths start identical
        self.b_mag = nn.Parameter(torch.zeros(d_sae))

    @property
    def W_gate(self) -> Float[Tensor, "d_in d_sae"]:
        """The gate path's weights (the base class's ``W_enc``)."""
        return self.W_enc

    @property
    def b_gate(self) -> Float[Tensor, " d_sae"]:
        """The gate path's bias (the base class's ``b_enc``)."""
        return self.b_enc

    @property
    def W_mag(self) -> Float[Tensor, "d_in d_sae"]:
        """The magnitude path's weights ``W_gate ⊙ exp(r_mag)`` (columns rescaled)."""
        return self.W_gate * self.r_mag.exp()

    def gate_pre_activations(self, x: Float[Tensor, "*batch d_in"]) -> Float[Tensor, "*batch d_sae"]:
        """``π_gate = (x − b_dec) W_gate + b_gate``."""
        return (x - self.b_dec) @ self.W_gate + self.b_gate

    def magnitude_pre_activations(
        self, x: Float[Tensor, "*batch d_in"]
    ) -> Float[Tensor, "*batch d_sae"]:
        """``π_mag = (x − b_dec) W_mag + b_mag``."""
        return (x - self.b_dec) @ self.W_mag + self.b_mag

    def encode(self, x: Float[Tensor, "*batch d_in"]) -> Float[Tensor, "*batch d_sae"]:
        """``f = 1[π_gate > 0] ⊙ ReLU(π_mag)``: the gate picks latents, π_mag sizes them."""
        gate = (self.gate_pre_activations(x) > 0).to(x.dtype)
        return gate * F.relu(self.magnitude_pre_activations(x))

    def sparsity_loss(
        self, x: Float[Tensor, "*batch d_in"], latents: Float[Tensor, "*batch d_sae"]
    ) -> Float[Tensor, ""]:
        """``λ · mean over examples of ‖ReLU(π_gate)‖₁``: the penalty sees only the gate."""
        return self.l1_coefficient * F.relu(self.gate_pre_activations(x)).sum(-1).mean()

    def auxiliary_loss(
        self,
        x: Float[Tensor, "*batch d_in"],
        latents: Float[Tensor, "*batch d_sae"],
        x_hat: Float[Tensor, "*batch d_in"],
    ) -> Float[Tensor, ""]:
        """``mean ‖x − (ReLU(π_gate) W_dec + b_dec)‖²`` through a frozen decoder.

        ``W_dec`` and ``b_dec`` are detached here: this term trains the gate only (``b_dec``
        still gets its gradient through the centring ``x − b_dec``).
        """
        gate = F.relu(self.gate_pre_activations(x))
        via_gate = gate @ self.W_dec.detach() + self.b_dec.detach()
        return (x - via_gate).pow(2).sum(-1).mean()

    @torch.no_grad()
    def reset_latents(self, dead: Tensor) -> None:
        """Reset the magnitude path of the ``dead`` latents (bool ``(d_sae,)``) to its initial values.

        For resampling: after `W_enc`, `b_enc` and `W_dec` are re-initialised, ``r_mag = 0`` and
        ``b_mag = 0`` make the magnitude path read the new direction exactly as the gate does
        (as ARENA 1.5.4 resamples gated SAEs).
        """
        self.r_mag[dead] = 0.0
        self.b_mag[dead] = 0.0

    def config(self) -> dict[str, Any]:
        """`SAE.config` plus ``l1_coefficient``."""
        return super().config() | {"l1_coefficient": self.l1_coefficient}
