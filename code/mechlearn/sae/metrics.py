"""SAE metrics: L0, fraction of variance explained, dead fraction, mean max cosine similarity (MMCS).

The numbers SAE papers report (Bricken et al. 2023; Rajamanoharan et al. 2024a, b; Gao et al. 2024;
ARENA 1.3.3 and 1.5.4):

* **L0**: how many latents fire on an input, on average (sparsity; lower is sparser).
* **Fraction of variance explained** (FVE): ``1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²`` over a set of inputs,
  with ``x̄`` their mean: 1 is a perfect reconstruction, 0 is no better than always answering the
  mean. It is scikit-learn's ``r2_score(x, x_hat, multioutput="variance_weighted")`` (tested).
* **Dead fraction**: the share of latents that fire on none of a set of inputs; a dead latent
  costs parameters and explains nothing.
* **MMCS** (Sharkey et al. 2022, "Taking features out of superposition with sparse autoencoders";
  ARENA 1.5.4): when the true features are known (a toy model), for each true feature the largest
  cosine similarity with any decoder row, averaged over the true features. The average is over
  the *true* features because the question is "was every feature found?": an SAE with more latents
  than features may keep spare or duplicate latents without being wrong, and averaging over decoder
  rows instead would punish them. The cosine is signed: latents are non-negative, so a decoder row
  pointing at ``−d`` adds the opposite of feature ``d`` and does not recover it.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["l0", "fraction_variance_explained", "dead_fraction", "max_cosine_similarities", "mmcs"]


def _check_tensor(x: Any, name: str, ndim: int | None = None) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {tuple(x.shape)}")
    if ndim is None and x.ndim == 0:
        raise ValueError(f"{name} must have a last (feature) axis, got a scalar")


def l0(latents: Float[Tensor, "*batch d_sae"]) -> float:
    """The mean number of non-zero latents per example."""
    _check_tensor(latents, "latents")
    return (latents != 0).sum(-1).double().mean().item()


def fraction_variance_explained(x: Float[Tensor, "*batch d_in"], x_hat: Float[Tensor, "*batch d_in"]) -> float:
    """``1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²`` over all examples (every leading axis), ``x̄`` their mean.

    Raises:
        ValueError: shapes differ, or ``x`` is constant (its variance, the denominator, is zero).
    """
    _check_tensor(x, "x")
    _check_tensor(x_hat, "x_hat")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    x, x_hat = x.reshape(-1, x.shape[-1]).double(), x_hat.reshape(-1, x.shape[-1]).double()
    total = (x - x.mean(0)).pow(2).sum()
    if total == 0:
        raise ValueError("x is constant (zero variance): the fraction of variance explained is undefined")
    return 1.0 - ((x - x_hat).pow(2).sum() / total).item()


def dead_fraction(latents: Float[Tensor, "*batch d_sae"]) -> float:
    """The fraction of latents that are zero on every example given (every leading axis)."""
    _check_tensor(latents, "latents")
    fired = (latents.reshape(-1, latents.shape[-1]) != 0).any(0)
    return 1.0 - fired.double().mean().item()


def max_cosine_similarities(
    W_dec: Float[Tensor, "d_sae d_in"], true_features: Float[Tensor, "n_features d_in"]
) -> Float[Tensor, " n_features"]:
    """For each true feature, the largest (signed) cosine similarity with any row of ``W_dec``.

    Raises:
        ValueError: the two matrices' rows have different widths.
    """
    _check_tensor(W_dec, "W_dec", 2)
    _check_tensor(true_features, "true_features", 2)
    if W_dec.shape[1] != true_features.shape[1]:
        raise ValueError(f"W_dec rows have width {W_dec.shape[1]} but the true features have "
                         f"width {true_features.shape[1]}: both must live in the same space")
    dec = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    true = true_features / true_features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (true @ dec.T).max(dim=1).values  # (n_features, d_sae) cosines -> best per feature


def mmcs(W_dec: Float[Tensor, "d_sae d_in"], true_features: Float[Tensor, "n_features d_in"]) -> float:
    """Mean over the true features of their best cosine similarity with a decoder row (1 = all found)."""
    return max_cosine_similarities(W_dec, true_features).mean().item()
