"""The `SAE` base class: encoder and decoder weights, unit-norm decoder rows, and `SAEOutput`.

A sparse autoencoder (SAE) rewrites an activation ``x`` (width ``d_in``) as a sparse, non-negative
combination of ``d_sae`` learned directions, the rows of ``W_dec``:

    f = encode(x)                  latents, shape (..., d_sae), mostly zero
    x_hat = f W_dec + b_dec        reconstruction, shape (..., d_in)

If a model stores more features than it has dimensions (superposition, Elhage et al. 2022), the
features are not the neuron basis nor any orthogonal basis, but each input uses only a few of them.
Asking for a reconstruction that is good *and* sparse makes the cheapest dictionary the one whose
rows are the model's feature directions: any other basis needs more active latents per input
(Bricken et al. 2023, "Towards Monosemanticity"; ARENA 1.5.4 and 1.3.3).

The four architectures (`mechlearn.sae.standard`, ``gated``, ``jumprelu``, ``topk``) differ only in
how they compute the latents and what sparsity penalty they add, so a subclass overrides `SAE.encode`
and `SAE.sparsity_loss` (and `SAE.auxiliary_loss` if it has an extra term); decoding, the loss's
reconstruction term, the input check and the decoder normalisation live here. Shapes and names
follow ARENA and SAELens: ``W_enc (d_in, d_sae)``, ``b_enc (d_sae)``, ``W_dec (d_sae, d_in)``,
``b_dec (d_in)``.

Initialisation follows Anthropic's April 2024 update and ARENA: random unit-norm decoder rows and a
tied encoder ``W_enc = W_decᵀ``, so at step 0 each latent reads along the direction it writes;
biases start at zero. The reconstruction term is the squared error summed over ``d_in`` and
averaged over examples, ``mean ‖x − x̂‖²`` (Bricken et al.; Rajamanoharan et al.); ARENA 1.5.4
averages over ``d_in`` instead, which only rescales the sparsity coefficient by ``d_in``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["SAEOutput", "SAE", "DECODER_NORM_EPS"]

DECODER_NORM_EPS = 1e-8
"""The smallest norm a decoder row is divided by, so an all-zero row does not become NaN."""


@dataclass
class SAEOutput:
    """What `SAE.forward` returns: the reconstruction, the latents and the terms of the loss.

    ``loss = reconstruction_loss + sparsity_loss + auxiliary_loss`` exactly; the scalars are means
    over every leading (batch) axis of the input.
    """

    x_hat: Float[Tensor, "*batch d_in"]
    """The reconstruction ``f W_dec + b_dec``."""
    latents: Float[Tensor, "*batch d_sae"]
    """The latent activations ``f`` (non-negative; zero where a latent does not fire)."""
    loss: Float[Tensor, ""]
    """What training minimises."""
    reconstruction_loss: Float[Tensor, ""]
    """``mean ‖x − x̂‖²`` (squared error summed over ``d_in``, averaged over examples)."""
    sparsity_loss: Float[Tensor, ""]
    """The sparsity penalty as it enters the loss (its coefficient included)."""
    reconstruction_error: Float[Tensor, "*batch"]
    """Per-example ``‖x − x̂‖²``: resampling draws inputs in proportion to its square."""
    auxiliary_loss: Float[Tensor, ""] | None = None
    """An architecture's extra term (gated: the gate path's reconstruction; TopK: AuxK); None if none."""


class SAE(nn.Module):
    """Base class of the sparse autoencoders: weights, decoding, the loss's skeleton, input checks.

    A subclass sets `architecture`, `unit_norm_decoder`, overrides `encode` and `sparsity_loss`
    (and `auxiliary_loss` and `config` if it has more hyperparameters).

    Args:
        d_in: width of the activations the SAE reads.
        d_sae: number of latents (the dictionary size).
        generator: the random generator for the initial decoder (None: torch's global one).
    """

    architecture: ClassVar[str] = "base"
    """The name `mechlearn.sae.training.make_sae` knows this class by."""
    unit_norm_decoder: ClassVar[bool] = True
    """Whether training keeps the rows of ``W_dec`` at unit norm (`normalize_decoder` after each step)."""

    def __init__(self, d_in: int, d_sae: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        for name, value in (("d_in", d_in), ("d_sae", d_sae)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.d_in, self.d_sae = d_in, d_sae
        W_dec = torch.randn(d_sae, d_in, generator=generator)
        W_dec /= W_dec.norm(dim=-1, keepdim=True).clamp_min(DECODER_NORM_EPS)
        self.W_dec = nn.Parameter(W_dec)  # (d_sae, d_in): row i is latent i's direction
        self.W_enc = nn.Parameter(W_dec.T.clone())  # (d_in, d_sae): tied at initialisation
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def encode(self, x: Float[Tensor, "*batch d_in"]) -> Float[Tensor, "*batch d_sae"]:
        """The latent activations of ``x``; each architecture defines its own."""
        raise NotImplementedError(f"{type(self).__name__} must define encode(x)")

    def decode(self, latents: Float[Tensor, "*batch d_sae"]) -> Float[Tensor, "*batch d_in"]:
        """The reconstruction ``x̂ = f W_dec + b_dec``."""
        return latents @ self.W_dec + self.b_dec

    def sparsity_loss(
        self, x: Float[Tensor, "*batch d_in"], latents: Float[Tensor, "*batch d_sae"]
    ) -> Float[Tensor, ""]:
        """The sparsity penalty, coefficient included, averaged over examples; each architecture defines its own."""
        raise NotImplementedError(f"{type(self).__name__} must define sparsity_loss(x, latents)")

    def auxiliary_loss(
        self,
        x: Float[Tensor, "*batch d_in"],
        latents: Float[Tensor, "*batch d_sae"],
        x_hat: Float[Tensor, "*batch d_in"],
    ) -> Float[Tensor, ""] | None:
        """An extra loss term beyond reconstruction and sparsity (None here: the standard SAE has none)."""
        return None

    def forward(self, x: Float[Tensor, "*batch d_in"]) -> SAEOutput:
        """Encode, decode and compute the loss: ``mean ‖x − x̂‖² + sparsity (+ auxiliary)``."""
        self.check_input(x)
        latents = self.encode(x)
        x_hat = self.decode(latents)
        reconstruction_error = (x - x_hat).pow(2).sum(-1)
        reconstruction_loss = reconstruction_error.mean()
        sparsity_loss = self.sparsity_loss(x, latents)
        auxiliary_loss = self.auxiliary_loss(x, latents, x_hat)
        loss = reconstruction_loss + sparsity_loss
        if auxiliary_loss is not None:
            loss = loss + auxiliary_loss
        return SAEOutput(x_hat, latents, loss, reconstruction_loss, sparsity_loss,
                         reconstruction_error, auxiliary_loss)

    def reset_latents(self, dead: Tensor) -> None:
        """Reset an architecture's own per-latent parameters of the ``dead`` latents (bool ``(d_sae,)``).

        `mechlearn.sae.training.resample_dead_latents` calls it after re-pointing ``W_enc``,
        ``b_enc`` and ``W_dec``; the base class has no other per-latent parameter, so nothing here.
        """

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Scale every row of ``W_dec`` to unit L2 norm, in place."""
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(DECODER_NORM_EPS)

    def check_input(self, x: Any) -> None:
        """Raise a clear error unless ``x`` is a floating tensor ``(..., d_in)`` of the SAE's dtype.

        Raises:
            TypeError: ``x`` is not a floating-point tensor, or its dtype differs from the weights'.
            ValueError: its last axis is not ``d_in`` wide.
        """
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"activations must be a floating-point torch.Tensor of shape (..., d_in={self.d_in}), "
                            f"got {type(x).__name__}" + (f" of dtype {x.dtype}" if isinstance(x, Tensor) else ""))
        if x.ndim == 0 or x.shape[-1] != self.d_in:
            raise ValueError(f"activations must have shape (..., d_in={self.d_in}); got shape {tuple(x.shape)}")
        if x.dtype != self.W_dec.dtype:
            raise TypeError(f"activations are {x.dtype} but the SAE's weights are {self.W_dec.dtype}; "
                            "convert one of them (sae.to(x.dtype) or x.to(...))")

    def config(self) -> dict[str, Any]:
        """The keyword arguments `mechlearn.sae.training.make_sae` needs to rebuild this SAE (weights aside)."""
        return {"architecture": self.architecture, "d_in": self.d_in, "d_sae": self.d_sae}

    def extra_repr(self) -> str:
        """One line for ``print(sae)``: its `config` without the architecture."""
        return ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "architecture")
