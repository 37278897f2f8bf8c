"""A key-value cache for fast autoregressive generation.

Generating token ``t+1`` needs attention from position ``t`` to every earlier position.
Without a cache the model recomputes the keys and values of all ``t`` earlier positions at
every step, so generating ``n`` tokens costs ``O(n^2)`` position-passes through every
layer. Keys and values of a position never change once computed (the mask stops later
tokens from influencing them), so we can store them and feed the model only the newest
token: ``O(n)`` position-passes, each attending to the stored keys.

The cache cannot slide past ``n_ctx``: the stored keys were computed with absolute
positional embeddings, so dropping the first position would shift every other one.
Day 30 measures the speed-up and checks that cached and uncached logits agree.

Follows ARENA 1.1 ("Transformer from scratch", bonus: KV caching).
"""

from __future__ import annotations

from torch import Tensor

from mechlearn.gpt.config import GPTConfig

__all__ = ["KVCache"]


class KVCache:
    """Per-layer keys and values, each ``(batch, n_heads, pos, d_head)``, for the positions seen so far."""

    def __init__(self, n_layers: int) -> None:
        self.entries: list[tuple[Tensor, Tensor] | None] = [None] * n_layers

    @property
    def n_pos(self) -> int:
        """How many positions are cached."""
        first = self.entries[0]
        return 0 if first is None else first[0].shape[2]

    def get(self, layer: int) -> tuple[Tensor, Tensor] | None:
        """The cached ``(keys, values)`` of ``layer``, or None before its first step."""
        return self.entries[layer]

    def set(self, layer: int, kv: tuple[Tensor, Tensor]) -> None:
        """Store ``(keys, values)`` of ``layer`` (detached: the cache carries no gradients)."""
        self.entries[layer] = (kv[0].detach(), kv[1].detach())

    def check_compatible(self, cfg: GPTConfig, batch: int) -> None:
        """Raise if this cache was built for another model or batch size."""
        if len(self.entries) != cfg.n_layers:
            raise ValueError(f"this KVCache has {len(self.entries)} layers but the model has n_layers={cfg.n_layers}")
        first = self.entries[0]
        if first is not None and first[0].shape[0] != batch:
            raise ValueError(f"this KVCache holds a batch of {first[0].shape[0]} sequences, got a batch of {batch}")

    def select(self, index: Tensor) -> "KVCache":
        """A cache whose sequences are ``index`` rows of this one (beam search reorders beams this way)."""
        out = KVCache(len(self.entries))
        out.entries = [None if e is None else (e[0][index], e[1][index]) for e in self.entries]
        return out
