"""The TopK SAE (Gao et al., 2024, "Scaling and evaluating sparse autoencoders").

Instead of pricing sparsity with a penalty, fix it: keep the k largest pre-activations of each
input and zero the rest,

    π = (x − b_dec) W_enc + b_enc,        f = ReLU(TopK_k(π)),        L = ‖x − x̂(f)‖²,

so every input uses at most k latents (exactly k unless some of the top k are negative) and the
loss is reconstruction alone. With no penalty on the magnitudes nothing shrinks them, and L0 is
set directly instead of through a coefficient whose effect has to be found by a sweep. TopK is
differentiable where it matters: the gradient reaches the k selected pre-activations unchanged
and the others get none (a piecewise-linear map, like ReLU).

**AuxK** (optional, Gao et al.): a latent that has not fired for ``dead_tokens`` inputs is
dead, and since it is never selected it never gets a gradient. AuxK gives dead latents one: take
the ``aux_k`` largest pre-activations *among the dead latents*, decode them without ``b_dec``, and
ask them to reconstruct the main model's residual ``e = x − x̂`` (held fixed):
``L_aux = α · mean ‖e − ê‖²`` with α = 1/32 by default. (Gao et al. use ``aux_k`` = 512 and call
a latent dead after 10 million tokens without firing; the default ``dead_tokens`` = 10,000 suits
toy-scale runs.) The count of inputs since each latent last
fired is a buffer that `forward` updates while the module is in training mode.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from mechlearn.sae.base import SAE
from mechlearn.sae.standard import check_coefficient

__all__ = ["TopKSAE", "topk_activation"]


def _check_k(k: Any, d_sae: int, name: str = "k") -> int:
    """``k`` after checking it is an int in [1, d_sae]."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{name} must be an int in [1, d_sae={d_sae}], got {k!r}")
    if not 1 <= k <= d_sae:
        raise ValueError(f"{name} must be in [1, d_sae={d_sae}], got {k}")
    return k


def topk_activation(
    pre: Float[Tensor, "*batch d_sae"], k: int
) -> Float[Tensor, "*batch d_sae"]:
    """``ReLU(TopK_k(pre))``: each row's k largest entries through a ReLU, zeros elsewhere.

    Ties are broken as `torch.topk` breaks them.

    Raises:
        TypeError: ``pre`` is not a floating-point tensor with at least one axis, or ``k`` not an int.
        ValueError: ``k`` is outside [1, d_sae].
    """
    if not isinstance(pre, Tensor) or not pre.is_floating_point() or pre.ndim == 0:
        got = (f"shape {tuple(pre.shape)}, dtype {pre.dtype}"
               if isinstance(pre, Tensor) else type(pre).__name__)
        raise TypeError(
            f"pre should be a floating-point torch.Tensor (..., d_sae), got {got}"
        )
    k = _check_k(k, pre.shape[-1])
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))


class TopKSAE(SAE):
    """A TopK SAE: the k largest pre-activations of each input fire, no sparsity penalty.

    Args:
        d_in: width of the activations.
        d_sae: number of latents.
        k: latents per input, in [1, d_sae].
        aux_k: how many dead latents the AuxK loss uses (None: no AuxK loss).
        aux_coefficient: α, the weight of the AuxK loss (finite, >= 0).
        dead_tokens: a latent is dead after this many training inputs without firing.
        generator: random generator for the initial decoder (the encoder starts tied to it).
    """

    architecture = "topk"
    unit_norm_decoder = True

    def __init__(self, d_in: int, d_sae: int, k: int, aux_k: int | None = None,
                 aux_coefficient: float | int = 1 / 32, dead_tokens: int = 10_000,
                 generator: torch.Generator | None = None) -> None:
        k = _check_k(k, d_sae)
        if aux_k is not None:
            aux_k = _check_k(aux_k, d_sae, "aux_k")
        aux_coefficient = check_coefficient(aux_coefficient, "aux_coefficient")
        if isinstance(dead_tokens, bool) or not isinstance(dead_tokens, int) or dead_tokens < 1:
            raise ValueError(f"dead_tokens must be a positive int, got {dead_tokens!r}")
        super().__init__(d_in, d_sae, generator)
        self.k, self.aux_k = k, aux_k
        self.aux_coefficient, self.dead_tokens = aux_coefficient, dead_tokens
        self.register_buffer("tokens_since_fired", torch.zeros(d_sae, dtype=torch.long))

    def pre_activations(self, x: Float[Tensor, "*batch d_in"]) -> Float[Tensor, "*batch d_sae"]:
        """``π = (x − b_dec) W_enc + b_enc``."""
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: Float[Tensor, "*batch d_in"]) -> Float[Tensor, "*batch d_sae"]:
        """``f = ReLU(TopK_k(π))``."""
        return topk_activation(self.pre_activations(x), self.k)

    def sparsity_loss(
        self, x: Float[Tensor, "*batch d_in"], latents: Float[Tensor, "*batch d_sae"]
    ) -> Float[Tensor, ""]:
        """Zero: the sparsity is the architecture's, not a penalty's."""
        return latents.new_zeros(())

    @property
    def dead(self) -> Tensor:
        """Boolean ``(d_sae,)``: the latents that have not fired for ``dead_tokens`` training inputs."""
        return self.tokens_since_fired >= self.dead_tokens

    @torch.no_grad()
    def _count_firing(self, latents: Tensor) -> None:
        """Reset the count of the latents that fired on this batch; add the batch size to the others."""
        fired = (latents.reshape(-1, self.d_sae) > 0).any(0)
        self.tokens_since_fired += latents[..., 0].numel()
        self.tokens_since_fired[fired] = 0

    def auxiliary_loss(
        self,
        x: Float[Tensor, "*batch d_in"],
        latents: Float[Tensor, "*batch d_sae"],
        x_hat: Float[Tensor, "*batch d_in"],
    ) -> Float[Tensor, ""] | None:
        """The AuxK loss ``α · mean ‖(x − x̂) − ê‖²`` from the dead latents (None without ``aux_k``).

        In training mode this also updates the dead-latent counts, before choosing the dead latents.
        """
        if self.aux_k is None:
            return None
        if self.training:
            self._count_firing(latents)
        dead = self.dead
        if not bool(dead.any()):
            return latents.new_zeros(())
        pre = self.pre_activations(x).masked_fill(~dead, -torch.inf)
        aux_latents = topk_activation(pre, min(self.aux_k, int(dead.sum())))
        residual = (x - x_hat).detach()
        return self.aux_coefficient * (residual - aux_latents @ self.W_dec).pow(2).sum(-1).mean()

    def config(self) -> dict[str, Any]:
        """`SAE.config` plus ``k``, ``aux_k``, ``aux_coefficient`` and ``dead_tokens``."""
        return super().config() | {"k": self.k, "aux_k": self.aux_k, "aux_coefficient": self.aux_coefficient,
                                   "dead_tokens": self.dead_tokens}
