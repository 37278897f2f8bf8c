"""Causal multi-head self-attention from scratch, with TransformerLens's weight shapes.

Each head ``h`` reads the residual stream ``x`` through its own query, key and value maps,

    q = x W_Q[h] + b_Q[h],   k = x W_K[h] + b_K[h],   v = x W_V[h] + b_V[h]

scores every earlier position with ``q·k / sqrt(d_head)``, turns the scores into a
probability pattern with a softmax in which future positions are masked out (they get
exactly zero weight), averages the values with that pattern into ``z``, and writes back
into the residual stream through ``W_O[h]``. Keeping the weights per head,
``W_Q: (n_heads, d_model, d_head)`` and ``W_O: (n_heads, d_head, d_model)``, is
TransformerLens's convention: it makes a head's QK circuit ``W_Q[h] W_K[h]^T`` and OV
circuit ``W_V[h] W_O[h]`` one matrix product away, which Part IV relies on.

Divide by ``sqrt(d_head)`` because a dot product of ``d_head`` unit-variance terms has
variance ``d_head``: without the scale, a wider head would produce a sharper softmax.

Follows ARENA 1.1 ("Transformer from scratch", attention) and Vaswani et al. (2017).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from mechlearn.gpt.config import GPTConfig
from mechlearn.gpt.hooks import HookPoint

__all__ = ["Attention", "IGNORE", "affine"]

def affine(x: Float[Tensor, "*batch d_in"], W: Float[Tensor, "d_in d_out"], b: Float[Tensor, " d_out"]) -> Float[Tensor, "*batch d_out"]:
    """``x W + b`` over the last axis as one fused ``addmm`` (a separate bias add is a second pass over the output)."""
    return torch.addmm(b, x.reshape(-1, x.shape[-1]), W).view(*x.shape[:-1], W.shape[-1])


IGNORE = float("-inf")
"""Score given to masked (future) positions: ``exp(-inf) = 0`` exactly, so they get zero weight."""


class Attention(nn.Module):
    """Causal multi-head self-attention with per-head weights and TransformerLens hook names."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(h, d, dh))
        self.W_K = nn.Parameter(torch.empty(h, d, dh))
        self.W_V = nn.Parameter(torch.empty(h, d, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))
        self.b_Q = nn.Parameter(torch.zeros(h, dh))
        self.b_K = nn.Parameter(torch.zeros(h, dh))
        self.b_V = nn.Parameter(torch.zeros(h, dh))
        self.b_O = nn.Parameter(torch.zeros(d))
        for w in (self.W_Q, self.W_K, self.W_V, self.W_O):
            nn.init.normal_(w, std=cfg.init_range)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_scores, self.hook_pattern, self.hook_z = HookPoint(), HookPoint(), HookPoint()
        self._frozen_qkv: tuple[tuple[tuple[int, int], ...], Tensor, Tensor] | None = None

    def fused_qkv(self) -> tuple[Float[Tensor, "d_model three_heads_d_head"], Float[Tensor, " three_heads_d_head"]]:
        """``W_Q, W_K, W_V`` as one ``(d_model, 3·n_heads·d_head)`` matrix and ``b_Q, b_K, b_V`` as one vector."""
        W = torch.stack([self.W_Q, self.W_K, self.W_V]).permute(2, 0, 1, 3).reshape(self.cfg.d_model, -1)
        b = torch.stack([self.b_Q, self.b_K, self.b_V]).flatten()
        return W, b

    def _qkv_key(self) -> tuple[tuple[int, int], ...] | None:
        # Which tensors, at which in-place version: a new Parameter or an in-place edit (copy_,
        # load_state_dict) changes it. Edits through `.data` bump no counter, which is why the fused
        # weight is only kept for the length of a `reuse_fused_qkv` block, never across calls.
        # A parametrized weight (LoRA adapters, torch.nn.utils.parametrize) is computed on every
        # access and has no stable identity: None, and the fused weight is then never reused.
        params = self._parameters
        names = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V")
        if any(n not in params for n in names):
            return None
        return tuple((id(params[n]), params[n]._version) for n in names)

    @contextmanager
    def reuse_fused_qkv(self) -> Iterator[None]:
        """Inside this block, with gradients off, build the fused QKV weight once instead of on every call.

        Token-by-token generation calls attention hundreds of times with the same weights; rebuilding
        the fused matrix each time is a large share of a cached step. With gradients on (training),
        `forward` always rebuilds it, so gradients reach ``W_Q``, ``W_K``, ``W_V`` as usual.
        """
        with torch.no_grad():
            W, b = self.fused_qkv()
        self._frozen_qkv = (self._qkv_key(), W, b)
        try:
            yield
        finally:
            self._frozen_qkv = None

    def forward(
        self,
        x: Float[Tensor, "batch pos d_model"],
        past_kv: tuple[Float[Tensor, "batch n_heads past d_head"], Float[Tensor, "batch n_heads past d_head"]] | None = None,
    ) -> tuple[Float[Tensor, "batch pos d_model"], tuple[Tensor, Tensor]]:
        """Attend causally; with ``past_kv`` the queries sit after the cached keys and values.

        Returns:
            The attention output, and the keys and values of every position so far, each
            ``(batch, n_heads, pos, d_head)`` (what a KV cache stores).
        """
        # One matrix product computes all three maps for all heads: (b·p, d) @ (d, 3·h·e).
        batch, pos, d = x.shape
        frozen = self._frozen_qkv
        reuse = frozen is not None and frozen[0] is not None and not torch.is_grad_enabled()
        if reuse and frozen[0] == self._qkv_key():
            W, b = frozen[1], frozen[2]
        else:
            W, b = self.fused_qkv()
        qkv = affine(x, W, b).view(batch, pos, 3, self.cfg.n_heads, self.cfg.d_head)
        # Hooks see TransformerLens's (b, p, h, e); the products below want (b, h, p, e).
        q, k, v = (hook(t).transpose(1, 2) for hook, t in zip((self.hook_q, self.hook_k, self.hook_v), qkv.unbind(2)))
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        if self.hook_attn_scores.n_hooks or self.hook_pattern.n_hooks:
            z = self.from_scratch(q, k, v)
        else:
            # Nothing observes or edits the scores or the pattern, so torch's fused kernel may compute
            # the same softmax(q k^T / sqrt(d_head)) v without writing the (q_pos, k_pos) scores out
            # (as LayerNorm uses F.layer_norm); the tests hold it to `from_scratch`.
            n_q, n_k = q.shape[2], k.shape[2]
            mask = None
            if 1 < n_q < n_k:  # queries are the last n_q positions: query i sees keys up to n_k - n_q + i
                mask = torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).tril(diagonal=n_k - n_q)
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=1 < n_q == n_k)
        z = self.hook_z(z.transpose(1, 2))  # (b, q, h, e)
        # Sum over heads of z[h] @ W_O[h], as one matmul over the flattened (head, d_head) axis.
        out = affine(z.flatten(-2), self.W_O.flatten(0, 1), self.b_O)
        return out, (k, v)

    def from_scratch(
        self,
        q: Float[Tensor, "batch n_heads q_pos d_head"],
        k: Float[Tensor, "batch n_heads k_pos d_head"],
        v: Float[Tensor, "batch n_heads k_pos d_head"],
    ) -> Float[Tensor, "batch n_heads q_pos d_head"]:
        """``softmax(q k^T / sqrt(d_head), masked) v`` step by step, with hook points on the scores and the pattern."""
        # Scaling q (pos · d_head entries) instead of the scores (pos · pos) is the same product, cheaper.
        scores = (q / math.sqrt(self.cfg.d_head)) @ k.transpose(-1, -2)  # (b, h, q, k)
        scores = self.hook_attn_scores(self.apply_causal_mask(scores))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        return pattern @ v

    @staticmethod
    def apply_causal_mask(scores: Float[Tensor, "batch n_heads q_pos k_pos"]) -> Float[Tensor, "batch n_heads q_pos k_pos"]:
        """Set the score of every key after its query to `IGNORE`.

        Queries are the *last* ``q_pos`` positions of the ``k_pos`` keys, so with a KV cache
        query ``i`` sits at absolute position ``k_pos - q_pos + i``.
        """
        n_q, n_k = scores.shape[-2:]
        if n_q == 1:  # the newest position sees every key (one step of cached generation)
            return scores
        if n_q > n_k:  # some query would see no key at all: a softmax over nothing is NaN
            raise ValueError(f"more queries ({n_q}) than keys ({n_k}): queries must be the last positions of the keys")
        future = torch.ones(n_q, n_k, dtype=torch.bool, device=scores.device).triu(diagonal=n_k - n_q + 1)
        return scores.masked_fill(future, IGNORE)
