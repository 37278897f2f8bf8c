"""Softmax, log-sum-exp and cross-entropy: a stable forward pass and a derived backward pass.

**Why subtract the max.** ``exp`` overflows float64 above about 709.78, so ``exp(1000)`` is
``inf`` and the naive ``softmax = exp(x) / sum(exp(x))`` returns ``inf/inf = nan``. Softmax is
unchanged by shifting every logit by the same constant ``c`` (it cancels between numerator and
denominator), and with ``c = max(x)`` every exponent is at most 0, so nothing overflows and at
least one term of the sum is exactly 1, so nothing underflows to ``log(0)`` either::

    logsumexp(x) = m + log(sum(exp(x - m))),    m = max(x)
    log_softmax(x) = x - logsumexp(x)

**The backward pass.** With ``p = softmax(z)`` the Jacobian is ``dp_i/dz_j = p_i (δ_ij - p_j)``,
so a vector-Jacobian product needs no matrix: ``dL/dz = p * (g - <g, p>)`` for ``g = dL/dp``.
For the mean cross-entropy ``L = -(1/N) sum_n log p[n, y_n]`` this collapses to::

    dL/dz = (softmax(z) - onehot(y)) / N

Reference: ARENA chapters 0.0 and 0.4; Goodfellow, Bengio & Courville, *Deep Learning*, §4.1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from jaxtyping import Float, Int

__all__ = [
    "logsumexp",
    "softmax",
    "softmax_naive",
    "log_softmax",
    "softmax_backward",
    "cross_entropy",
    "cross_entropy_backward",
]


def _check_logits(x: Any, what: str = "logits") -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{what} should be a floating-point array, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{what} should have at least one axis, got a scalar")
    if x.shape[-1] == 0:
        raise ValueError(f"{what} has an empty last axis: softmax over zero classes is undefined")
    return x


def logsumexp(x: Float[np.ndarray, "*batch n"]) -> Float[np.ndarray, "*batch"]:
    """``log(sum(exp(x)))`` over the last axis, computed without overflow."""
    x = _check_logits(x, "x")
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # all -inf (or an inf) row: avoid inf - inf = nan
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]


def softmax_naive(x: Float[np.ndarray, "*batch n"]) -> Float[np.ndarray, "*batch n"]:
    """The textbook formula, kept to show what goes wrong: overflows for logits above ~709."""
    x = _check_logits(x, "x")
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=-1, keepdims=True)


def softmax(x: Float[np.ndarray, "*batch n"]) -> Float[np.ndarray, "*batch n"]:
    """``exp(x - max) / sum(exp(x - max))`` over the last axis."""
    x = _check_logits(x, "x")
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: Float[np.ndarray, "*batch n"]) -> Float[np.ndarray, "*batch n"]:
    """``x - logsumexp(x)`` over the last axis: exact where ``log(softmax(x))`` would give ``-inf``."""
    x = _check_logits(x, "x")
    return x - logsumexp(x)[..., None]


def softmax_backward(
    p: Float[np.ndarray, "*batch n"], grad_p: Float[np.ndarray, "*batch n"]
) -> Float[np.ndarray, "*batch n"]:
    """Vector-Jacobian product of softmax: ``dL/dz = p * (g - sum(g * p))`` for ``p = softmax(z)``, ``g = dL/dp``."""
    if p.shape != grad_p.shape:
        raise ValueError(f"p and grad_p should have the same shape, got {p.shape} and {grad_p.shape}")
    return p * (grad_p - (grad_p * p).sum(axis=-1, keepdims=True))


def _check_targets(logits: np.ndarray, targets: Any) -> np.ndarray:
    if logits.ndim != 2:
        raise ValueError(f"logits should have shape (batch, n_classes), got {logits.shape}")
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"targets should be integer class indices, got dtype {targets.dtype}")
    if targets.shape != (logits.shape[0],):
        raise ValueError(f"targets should have shape ({logits.shape[0]},) to match the logits, got {targets.shape}")
    n_classes = logits.shape[1]
    if targets.size and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(
            f"targets should be class indices in [0, {n_classes}), got values from {targets.min()} to {targets.max()}"
        )
    if logits.shape[0] == 0:
        raise ValueError("cross-entropy of an empty batch is undefined (the mean of nothing)")
    return targets


def cross_entropy(logits: Float[np.ndarray, "batch n"], targets: Int[np.ndarray, " batch"]) -> float:
    """Mean negative log-likelihood of the targets: ``-(1/N) sum_n log_softmax(z_n)[y_n]``."""
    logits = _check_logits(logits)
    targets = _check_targets(logits, targets)
    return float(-log_softmax(logits)[np.arange(len(targets)), targets].mean())


def cross_entropy_backward(
    logits: Float[np.ndarray, "batch n"], targets: Int[np.ndarray, " batch"]
) -> Float[np.ndarray, "batch n"]:
    """dL/d(logits) for `cross_entropy`: ``(softmax(z) - onehot(y)) / N``."""
    logits = _check_logits(logits)
    targets = _check_targets(logits, targets)
    grad = softmax(logits)
    grad[np.arange(len(targets)), targets] -= 1.0
    return grad / len(targets)
