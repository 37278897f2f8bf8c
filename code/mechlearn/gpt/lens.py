"""The logit lens: read the residual stream mid-way as if it were the last layer.

Every block adds to the residual stream and the unembedding reads only its final state.
If the stream is a shared channel in a common basis, then applying the final LayerNorm and
``W_U`` to the stream *after block k* should already give a sensible (if cruder)
next-token guess, improving layer by layer. nostalgebraist's "logit lens" (2020) found this
in GPT-2; `logit_lens` computes it for our model, and `lens_scores` turns it into per-layer
next-token accuracy and loss.

Follows ARENA 1.2 (the residual stream; direct logit attribution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.gpt.model import GPT

__all__ = ["residual_stack", "logit_lens", "lens_scores"]


@torch.no_grad()
def residual_stack(model: GPT, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer_plus_1 batch pos d_model"]:
    """The residual stream before block 0 (embeddings) and after every block, stacked."""
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    return torch.stack([cache[n] for n in names])


@torch.no_grad()
def logit_lens(model: GPT, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer_plus_1 batch pos d_vocab"]:
    """Logits read from the stream after 0, 1, …, ``n_layers`` blocks (the last equals the model's logits)."""
    return model.unembed(model.ln_final(residual_stack(model, tokens)))


@torch.no_grad()
def lens_scores(model: GPT, tokens: Int[Tensor, "batch pos"]) -> dict[str, list[float]]:
    """Per-layer top-1 next-token accuracy and mean cross-entropy (nats) of the logit lens.

    Position ``i``'s logits are scored against token ``i + 1``.
    """
    lens = logit_lens(model, tokens)[:, :, :-1]  # (L+1, batch, pos-1, vocab)
    target = tokens[:, 1:]
    acc = (lens.argmax(-1) == target).double().mean(dim=(1, 2))
    loss = torch.stack([F.cross_entropy(l.flatten(0, 1), target.flatten()) for l in lens])
    return {"accuracy": acc.tolist(), "loss": loss.tolist()}
