"""The JumpReLU SAE and its straight-through estimator (Rajamanoharan et al., 2024b, "Jumping Ahead").

A JumpReLU latent passes its pre-activation through unchanged above a learned threshold and is 0
below it:

    π = (x − b_dec) W_enc + b_enc,     f = JumpReLU_θ(π) = π · H(π − θ),     θ = exp(log_threshold) > 0,

and the loss penalises the number of active latents, not their size:

    L = ‖x − x̂(f)‖² + λ ‖f‖₀,          ‖f‖₀ = Σ_i H(π_i − θ_i).

**Why no shrinkage.** An L1 penalty λ Σ f_i pulls every active latent towards 0 by λ, so a
standard SAE systematically under-reads the features it finds. ‖f‖₀ costs the same whatever the
size of an active latent, so the reconstruction alone sets magnitudes; a latent either pays λ to
fire or stays off.

**Why a straight-through estimator.** H(π − θ) is a step: its derivative with respect to θ is 0
almost everywhere, so plain autograd gives the thresholds no gradient at all (and the L0 term
none anywhere). What training needs is the gradient of the *expected* loss over the data, which is
smooth in θ: for the L0 term, ∂/∂θ E[H(π − θ)] = −p(θ), minus the density of π at the threshold.
The estimator replaces the Dirac delta −δ(π − θ) by a kernel of bandwidth ε,

    ∂/∂θ H(π − θ)      := −(1/ε) K((π − θ)/ε),
    ∂/∂θ JumpReLU_θ(π) := −(θ/ε) K((π − θ)/ε),          K(u) = 1[|u| < 1/2] (rectangle),

so averaged over a batch it is a kernel density estimate of −p(θ) (times θ for the JumpReLU,
whose jump at the threshold has height θ). With the rectangle kernel the batch average is exactly
a central difference of the batch's mean L0 with step ε. Gradients with respect to π are the
ordinary ones: H(π − θ) through the JumpReLU, 0 through the step; so the L0 term trains only the
thresholds and the reconstruction trains the encoder and decoder.

The paper encodes ``x`` itself, ``π = x W_enc + b_enc``; here ``b_dec`` is subtracted first, as in
the other architectures of this package. That is a reparameterisation of ``b_enc``
(``b_enc − b_dec W_enc``): the same functions, slightly different gradients.

`JumpReLU` and `Heaviside` are those two autograd functions, as in the paper's appendix pseudo-code
and ARENA 1.5.4's exercises; `JumpReLUSAE` is the SAE.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from mechlearn.sae.base import SAE
from mechlearn.sae.standard import check_coefficient

__all__ = ["rectangle", "Heaviside", "JumpReLU", "jump_relu", "heaviside", "JumpReLUSAE"]


def rectangle(u: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """The rectangle kernel K(u) = 1[|u| < 1/2], in ``u``'s dtype (unit area, width 1)."""
    return (u.abs() < 0.5).to(u.dtype)


def _check_bandwidth(bandwidth: float | int) -> float:
    """``bandwidth`` as a float, after checking it is a positive finite number."""
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)):
        raise TypeError(f"bandwidth should be a positive number, got {type(bandwidth).__name__}")
    if not (0 < bandwidth < float("inf")):
        raise ValueError(f"bandwidth should be a positive finite number (the kernel's width ε), got {bandwidth}")
    return float(bandwidth)


def _sum_to(grad: Tensor, like: Tensor) -> Tensor:
    """``grad`` summed over the axes along which ``like`` was broadcast (the batch axes for θ)."""
    return grad.sum_to_size(like.shape) if grad.shape != like.shape else grad


class Heaviside(torch.autograd.Function):
    """H(π − θ) = 1[π > θ] with the straight-through pseudo-derivative in θ.

    Backward: ∂/∂π := 0 (the step is flat almost everywhere) and
    ∂/∂θ := −(1/ε) K((π − θ)/ε), summed over the axes θ was broadcast along.
    """

    @staticmethod
    def forward(ctx: Any, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        """1[pre > threshold] in ``pre``'s dtype; saves what backward needs."""
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, None]:
        """Zero for ``pre``; the kernel pseudo-derivative for ``threshold``."""
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        kernel = rectangle((pre - threshold) / eps)
        grad_threshold = -(1.0 / eps) * kernel * grad_output
        return torch.zeros_like(pre), _sum_to(grad_threshold, threshold), None


class JumpReLU(torch.autograd.Function):
    """JumpReLU_θ(π) = π · 1[π > θ] with the straight-through pseudo-derivative in θ.

    Backward: ∂/∂π := 1[π > θ] (the ordinary derivative) and
    ∂/∂θ := −(θ/ε) K((π − θ)/ε), summed over the axes θ was broadcast along.
    """

    @staticmethod
    def forward(ctx: Any, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        """pre · 1[pre > threshold]; saves what backward needs."""
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, None]:
        """The step for ``pre``; the kernel pseudo-derivative for ``threshold``."""
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = (pre > threshold).to(pre.dtype) * grad_output
        kernel = rectangle((pre - threshold) / eps)
        grad_threshold = -(threshold / eps) * kernel * grad_output
        return grad_pre, _sum_to(grad_threshold, threshold), None


def _check_pair(pre: Any, threshold: Any) -> None:
    """Clear errors for non-float tensors and a threshold that does not match the pre-activations."""
    for name, t in (("pre", pre), ("threshold", threshold)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} should be a floating-point torch.Tensor, got {type(t).__name__}"
                            + (f" of dtype {t.dtype}" if isinstance(t, Tensor) else ""))
    if pre.ndim == 0:
        raise ValueError("pre should have shape (..., d_sae), got a scalar")
    if threshold.ndim > 1 or (threshold.ndim == 1 and pre.shape[-1:] != threshold.shape):
        raise ValueError(
            f"threshold should have shape (d_sae,) = {tuple(pre.shape[-1:])} to match the last axis of "
            f"the pre-activations {tuple(pre.shape)}, got {tuple(threshold.shape)}"
        )


def jump_relu(
    pre: Float[Tensor, "... d_sae"], threshold: Float[Tensor, " d_sae"], bandwidth: float | int
) -> Float[Tensor, "... d_sae"]:
    """JumpReLU_θ(pre) = pre · H(pre − θ), differentiable in θ through the straight-through estimator.

    Args:
        pre: pre-activations π, shape ``(..., d_sae)``.
        threshold: θ, one positive threshold per latent, shape ``(d_sae,)``.
        bandwidth: the kernel width ε > 0 of the pseudo-derivative.
    """
    _check_pair(pre, threshold)
    return JumpReLU.apply(pre, threshold, _check_bandwidth(bandwidth))


def heaviside(
    pre: Float[Tensor, "... d_sae"], threshold: Float[Tensor, " d_sae"], bandwidth: float | int
) -> Float[Tensor, "... d_sae"]:
    """H(pre − θ) = 1[pre > θ], differentiable in θ through the straight-through estimator.

    Summed over latents it is the L0 of the JumpReLU latents; its θ-gradient is what the L0
    penalty contributes to training.
    """
    _check_pair(pre, threshold)
    return Heaviside.apply(pre, threshold, _check_bandwidth(bandwidth))


class JumpReLUSAE(SAE):
    """JumpReLU latents with learned thresholds and an L0 penalty, trained by the straight-through estimator.

    ``π = (x − b_dec) W_enc + b_enc``, ``f = JumpReLU_θ(π)``, loss ``‖x − x̂‖² + λ Σ_i H(π_i − θ_i)``.
    The thresholds are stored as ``log_threshold`` so they stay positive. The paper's defaults are
    ε = θ₀ = 0.001 for activations rescaled to unit mean squared norm, ``E‖x‖² = 1`` (the DeepMind
    convention, stated in Gemma Scope §3.1); both scale with the data.

    Args:
        d_in: width of the activations.
        d_sae: number of latents.
        sparsity_coefficient: λ, the price of one active latent (finite, >= 0).
        bandwidth: ε > 0, the width of the rectangle kernel in the pseudo-derivatives.
        threshold_init: θ₀ > 0, every latent's initial threshold.
        generator: random generator for the initial decoder (the encoder starts tied to it).
    """

    architecture = "jumprelu"
    unit_norm_decoder = True

    def __init__(self, d_in: int, d_sae: int, sparsity_coefficient: float | int,
                 bandwidth: float | int = 0.001, threshold_init: float | int = 0.001,
                 generator: torch.Generator | None = None) -> None:
        sparsity_coefficient = check_coefficient(sparsity_coefficient, "sparsity_coefficient")
        bandwidth = _check_bandwidth(bandwidth)
        if isinstance(threshold_init, bool) or not isinstance(threshold_init, (int, float)) \
                or not 0 < threshold_init < math.inf:
            raise ValueError(f"threshold_init should be a positive finite number, got {threshold_init!r}")
        super().__init__(d_in, d_sae, generator)
        self.sparsity_coefficient, self.bandwidth = sparsity_coefficient, bandwidth
        self.threshold_init = float(threshold_init)
        self.log_threshold = nn.Parameter(torch.full((d_sae,), math.log(threshold_init)))

    @property
    def threshold(self) -> Float[Tensor, " d_sae"]:
        """θ = exp(log_threshold), one positive threshold per latent."""
        return self.log_threshold.exp()

    def pre_activations(self, x: Float[Tensor, "*batch d_in"]) -> Float[Tensor, "*batch d_sae"]:
        """``π = (x − b_dec) W_enc + b_enc``."""
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: Float[Tensor, "*batch d_in"]) -> Float[Tensor, "*batch d_sae"]:
        """``f = JumpReLU_θ(π)``: π where it exceeds its latent's threshold, else 0."""
        return JumpReLU.apply(self.pre_activations(x), self.threshold, self.bandwidth)

    def sparsity_loss(
        self, x: Float[Tensor, "*batch d_in"], latents: Float[Tensor, "*batch d_sae"]
    ) -> Float[Tensor, ""]:
        """``λ · mean over examples of Σ_i H(π_i − θ_i)``: λ times the mean L0.

        Its θ-gradient comes from the straight-through estimator; π gets none.
        """
        step = Heaviside.apply(self.pre_activations(x), self.threshold, self.bandwidth)
        return self.sparsity_coefficient * step.sum(-1).mean()

    @torch.no_grad()
    def reset_latents(self, dead: Tensor) -> None:
        """Reset the thresholds of the ``dead`` latents (bool ``(d_sae,)``) to ``threshold_init``.

        For resampling: a latent usually dies because its threshold outgrew its pre-activations,
        so re-initialising its encoder alone would leave it dead.
        """
        self.log_threshold[dead] = math.log(self.threshold_init)

    def config(self) -> dict[str, Any]:
        """`SAE.config` plus ``sparsity_coefficient``, ``bandwidth`` and ``threshold_init``."""
        return super().config() | {"sparsity_coefficient": self.sparsity_coefficient,
                                   "bandwidth": self.bandwidth, "threshold_init": self.threshold_init}
