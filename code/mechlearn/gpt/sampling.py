"""Turning logits into text: greedy, temperature, top-k, top-p, frequency penalty, beam search.

A language model gives a distribution over the next token; a *sampler* decides which token
to emit. The knobs, applied in this order to the last position's logits:

1. **frequency penalty** ``α``: subtract ``α · count(t)`` from token ``t``'s logit, where
   ``count`` is how often ``t`` already appears, to discourage loops;
2. **temperature** ``T``: divide logits by ``T``; ``T → 0`` is greedy (argmax), ``T = 1`` is the
   model's own distribution, ``T > 1`` flattens it;
3. **top-k**: keep the ``k`` largest logits (and any tied with the ``k``-th), renormalise;
4. **top-p** (nucleus, Holtzman et al., 2019): keep the smallest set of most likely tokens
   whose total probability reaches ``p``, renormalise.

`sampling_probs` returns the distribution the sampler draws from, so a test can compare
empirical frequencies with an independent computation of it (a χ² test). **Beam search**
keeps the ``beam_width`` most probable partial sequences instead of one; with width 1 it is
greedy decoding, which the tests check.

Follows ARENA 1.1 ("Transformer from scratch", sampling and beam search).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.gpt.kv_cache import KVCache
from mechlearn.gpt.model import GPT

__all__ = ["sampling_probs", "sample_next", "generate", "Beam", "beam_search", "sequence_logprob"]


def _check_knobs(temperature: float, top_k: int | None, top_p: float | None, frequency_penalty: float) -> None:
    if not 0 <= temperature < float("inf"):  # also refuses NaN
        raise ValueError(f"temperature should be >= 0 and finite (0 means greedy), got {temperature}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k should be a positive int or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p should lie in (0, 1] or be None, got {top_p!r}")
    if not 0 <= frequency_penalty < float("inf"):
        raise ValueError(f"frequency_penalty should be >= 0 and finite, got {frequency_penalty}")


def _check_logits(logits: Tensor, previous: Tensor | None) -> None:
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError(f"logits should be a floating-point torch.Tensor, got {getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.ndim not in (1, 2) or logits.shape[-1] == 0:
        raise ValueError(f"logits should have shape (batch, d_vocab) or (d_vocab,) with d_vocab >= 1, got {tuple(logits.shape)}")
    if logits.isnan().any():
        raise ValueError("logits contain NaN")
    if not (logits.amax(dim=-1) > float("-inf")).all():
        raise ValueError("every row of logits needs at least one finite or +inf entry (a row of -inf has no distribution)")
    if previous is not None:
        if not isinstance(previous, Tensor) or previous.is_floating_point() or previous.ndim != logits.ndim:
            raise ValueError(
                f"previous should be an integer tensor of token ids with the same number of axes as logits ({logits.ndim}), "
                f"got {getattr(previous, 'shape', type(previous).__name__)}"
            )
        if previous.ndim == 2 and previous.shape[0] != logits.shape[0]:
            raise ValueError(f"previous has {previous.shape[0]} rows but logits has {logits.shape[0]}")
        if previous.numel() and (previous.min() < 0 or previous.max() >= logits.shape[-1]):
            raise ValueError(f"previous holds token ids outside [0, d_vocab={logits.shape[-1]})")


def sampling_probs(
    logits: Float[Tensor, "*batch d_vocab"],
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    frequency_penalty: float = 0.0,
    previous: Int[Tensor, "*batch prev"] | None = None,
) -> Float[Tensor, "*batch d_vocab"]:
    """The distribution `sample_next` draws from (one-hot on the argmax when ``temperature == 0``).

    ``logits`` may also be one row, ``(d_vocab,)`` (with ``previous`` of shape ``(prev,)``); the result
    then has shape ``(d_vocab,)``. As ``temperature → 0`` the distribution tends to the greedy one
    (split equally among tied maxima), and a tiny positive temperature gives that limit, not NaN.
    """
    _check_knobs(temperature, top_k, top_p, frequency_penalty)
    _check_logits(logits, previous)
    if logits.ndim == 1:
        return sampling_probs(logits[None], temperature, top_k, top_p, frequency_penalty,
                              None if previous is None else previous[None])[0]
    logits = logits.double()
    if frequency_penalty and previous is not None and previous.numel():
        counts = torch.zeros_like(logits).scatter_add_(1, previous.long(), torch.ones_like(previous, dtype=logits.dtype))
        logits = logits - frequency_penalty * counts
    if temperature == 0:
        return torch.zeros_like(logits).scatter_(1, logits.argmax(dim=-1, keepdim=True), 1.0)
    # Subtract each row's maximum before dividing: the largest logit becomes 0 and the rest <= 0,
    # so a tiny temperature sends them to -inf (probability 0) instead of inf - inf = NaN.
    top = logits.amax(dim=-1, keepdim=True)
    logits = (logits - top).nan_to_num(nan=0.0) / temperature  # +inf logits: inf - inf -> 0 (the maxima)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(dim=-1) - sorted_p  # mass of strictly more likely tokens
        keep_sorted = before < top_p  # the most likely token always survives
        keep = torch.zeros_like(keep_sorted).scatter_(1, order, keep_sorted)
        probs = probs * keep
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample_next(
    logits: Float[Tensor, "*batch d_vocab"],
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    frequency_penalty: float = 0.0,
    previous: Int[Tensor, "*batch prev"] | None = None,
    generator: torch.Generator | None = None,
) -> Int[Tensor, "*batch"]:
    """Draw one token per row; see the module docstring for the order of the knobs.

    For one row of logits, ``(d_vocab,)``, returns a 0-d tensor (one token).
    """
    if temperature == 0 and not (frequency_penalty and previous is not None and previous.numel()):
        # Greedy with nothing to penalise is the argmax of the logits themselves (float32 -> float64
        # is exact and keeps the order, so this is the token `sampling_probs` puts its mass on).
        _check_knobs(temperature, top_k, top_p, frequency_penalty)
        _check_logits(logits, previous)
        return logits.argmax(dim=-1)
    probs = sampling_probs(logits, temperature, top_k, top_p, frequency_penalty, previous)
    if temperature == 0:
        return probs.argmax(dim=-1)
    if probs.ndim == 1:
        return torch.multinomial(probs, 1, generator=generator)[0]
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model: GPT,
    tokens: Int[Tensor, "batch pos"],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    frequency_penalty: float = 0.0,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> Int[Tensor, "batch new_pos"]:
    """Continue ``tokens`` by ``max_new_tokens`` sampled tokens; returns prompt and continuation.

    With ``use_cache`` each step feeds only the newest token and reuses stored keys and
    values; the prompt plus continuation must then fit in ``n_ctx``. Without it, each step
    re-runs the last ``n_ctx`` tokens (a sliding window, as nanoGPT does).
    """
    tokens = model.check_tokens(tokens)
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens should be a non-negative int, got {max_new_tokens!r}")
    _check_knobs(temperature, top_k, top_p, frequency_penalty)
    n_ctx = model.cfg.n_ctx
    if use_cache and tokens.shape[1] + max_new_tokens > n_ctx:
        raise ValueError(
            f"prompt ({tokens.shape[1]}) + max_new_tokens ({max_new_tokens}) exceeds n_ctx={n_ctx}: a KV cache "
            "cannot slide past n_ctx with absolute positions; pass use_cache=False to use a sliding window"
        )
    was_training = model.training
    model.eval()
    cache = KVCache(model.cfg.n_layers) if use_cache else None
    step_input = tokens
    try:
        with model.reuse_fused_qkv():
            for _ in range(max_new_tokens):
                logits = model(step_input if use_cache else tokens[:, -n_ctx:], cache=cache)[:, -1]
                nxt = sample_next(logits, temperature, top_k, top_p, frequency_penalty, tokens, generator)
                tokens = torch.cat([tokens, nxt[:, None]], dim=1)
                step_input = nxt[:, None]
    finally:
        model.train(was_training)
    return tokens


@dataclass(frozen=True)
class Beam:
    """A finished beam: its tokens (prompt included) and the log-probability of its continuation."""

    tokens: Tensor
    logprob: float


@torch.no_grad()
def sequence_logprob(model: GPT, prompt: Int[Tensor, " pos"], continuation: Int[Tensor, " new"]) -> float:
    """``log P(continuation | prompt)`` under the model, from one forward pass."""
    full = torch.cat([prompt, continuation])[None]
    logprobs = model(full).double().log_softmax(dim=-1)[0, len(prompt) - 1 : -1]
    return float(logprobs.gather(1, continuation[:, None].long()).sum())


@torch.no_grad()
def beam_search(model: GPT, prompt: Int[Tensor, " pos"], beam_width: int, max_new_tokens: int) -> list[Beam]:
    """The ``beam_width`` most probable continuations found by beam search, best first.

    Every step extends each beam by every token, scores the extensions by total
    log-probability, and keeps the best ``beam_width``. Ties are broken towards lower token ids.
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width should be a positive int, got {beam_width!r}")
    if prompt.ndim != 1:
        raise ValueError(f"beam_search takes one prompt of shape (pos,), got shape {tuple(prompt.shape)}")
    prompt = model.check_tokens(prompt)[0]
    if len(prompt) + max_new_tokens > model.cfg.n_ctx:
        raise ValueError(f"prompt ({len(prompt)}) + max_new_tokens ({max_new_tokens}) exceeds n_ctx={model.cfg.n_ctx}")
    was_training = model.training
    model.eval()
    beams = prompt[None]  # (n_beams, pos)
    scores = torch.zeros(1, dtype=torch.float64)
    cache = KVCache(model.cfg.n_layers)
    step_input = beams
    V = model.cfg.d_vocab
    try:
        with model.reuse_fused_qkv():
            for _ in range(max_new_tokens):
                logprobs = model(step_input, cache=cache)[:, -1].double().log_softmax(dim=-1)
                total = (scores[:, None] + logprobs).flatten()  # (n_beams * d_vocab,)
                # A stable sort keeps lower (beam, token) indices first among equal scores.
                best = torch.sort(total, descending=True, stable=True).indices[:beam_width]
                parent, token = best // V, best % V
                beams = torch.cat([beams[parent], token[:, None]], dim=1)
                scores = total[best]
                cache = cache.select(parent)
                step_input = token[:, None]
    finally:
        model.train(was_training)
    return [Beam(tokens=b, logprob=float(s)) for b, s in zip(beams, scores)]
