"""Small float64 GPTs with every weight far from its init, shared by the interp tests.

Random weights of a few tenths make every head, LayerNorm weight and bias matter, so a test that
drops a term or swaps an axis fails; float64 lets the comparisons with TransformerLens be tight.
"""

from __future__ import annotations

import torch

from mechlearn.gpt import GPT, GPTConfig

SMALL_VOCAB = 23
"""Vocabulary of `small_gpt`."""


def random_gpt(*, seed: int = 0, attn_only: bool = True, weight_std: float = 0.3, bias_std: float = 0.2,
               **sizes) -> GPT:
    """A float64 GPT of the given sizes: matrices ~ N(0, weight_std²), vectors shifted by N(0, bias_std²)."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**sizes, attn_only=attn_only)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, weight_std) if p.ndim > 1 else p.add_(torch.randn_like(p) * bias_std)
    return model.eval()


def small_gpt(attn_only: bool = True, seed: int = 0) -> GPT:
    """2 layers of 3 heads of width 4, d_model 16, 12 positions, `SMALL_VOCAB` tokens."""
    return random_gpt(seed=seed, attn_only=attn_only, d_vocab=SMALL_VOCAB, n_ctx=12, d_model=16, n_layers=2,
                      n_heads=3, d_head=4)


def small_tokens(batch: int = 4, pos: int = 9, seed: int = 1) -> torch.Tensor:
    """Uniform token ids for `small_gpt`, from a seeded generator."""
    return torch.randint(0, SMALL_VOCAB, (batch, pos), generator=torch.Generator().manual_seed(seed))
