"""A GPT-2-style transformer from scratch, with TransformerLens's names, shapes and hook points.

The model is a stack of pre-LayerNorm blocks around a *residual stream*:

    resid_0   = W_E[tokens] + W_pos[positions]
    resid_mid = resid_pre + Attention(LN1(resid_pre))
    resid_post = resid_mid + MLP(LN2(resid_mid))
    logits    = LN_final(resid_final) W_U + b_U

Every block *reads* from and *adds* to the stream, never overwrites it; that is what makes
the stream a communication channel (Day 33's logit lens reads it mid-way).

Parameter names match TransformerLens (``embed.W_E``, ``blocks.0.attn.W_Q``,
``blocks.0.mlp.W_in``, ``unembed.W_U``...) and hook points sit where TransformerLens puts
them (``hook_embed``, ``blocks.0.hook_resid_pre``, ``blocks.0.attn.hook_pattern``...), so
weights and caches line up one to one with ``mechlearn.gpt.interop``.

Follows ARENA 1.1 ("Transformer from scratch"); GPT-2 (Radford et al., 2019); nanoGPT's
``model.py`` for the shape of the code.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from mechlearn.gpt.attention import Attention, affine
from mechlearn.gpt.config import GPTConfig
from mechlearn.gpt.hooks import HookedRootModule, HookPoint
from mechlearn.gpt.kv_cache import KVCache

__all__ = ["LayerNorm", "Embed", "PosEmbed", "MLP", "TransformerBlock", "Unembed", "GPT", "gelu_new"]


def gelu_new(x: Tensor) -> Tensor:
    """GPT-2's GELU: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


# The model calls torch's fused kernels; gelu_new above is the same function written out (tested equal).
_ACT = {"gelu_new": lambda x: F.gelu(x, approximate="tanh"), "gelu": F.gelu, "relu": F.relu}


class LayerNorm(nn.Module):
    """``(x - mean) / sqrt(var + eps) * w + b`` over ``d_model``, with the biased variance (as ``nn.LayerNorm``)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.eps = cfg.layer_norm_eps
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch d_model"]:
        """The normalised stream; through `from_scratch` when a hook watches its steps."""
        if self.hook_scale.n_hooks or self.hook_normalized.n_hooks:
            return self.from_scratch(x)
        # Nothing observes or edits the intermediate values, so torch's fused kernel may compute the
        # same formula in one pass; the tests hold it to `from_scratch`, and that to nn.LayerNorm.
        return F.layer_norm(x, (x.shape[-1],), self.w, self.b, self.eps)

    def from_scratch(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch d_model"]:
        """The formula step by step, with hook points on the scale and on the normalised stream."""
        x = x - x.mean(dim=-1, keepdim=True)
        # The biased variance, as nn.LayerNorm; eps goes inside the square root (sqrt(var) + eps differs).
        scale = self.hook_scale(((x * x).mean(dim=-1, keepdim=True) + self.eps).sqrt())
        # As in TransformerLens 4.x, hook_normalized is the stream *before* the learned affine map.
        return self.hook_normalized(x / scale) * self.w + self.b


class Embed(nn.Module):
    """Token embedding: row ``W_E[t]`` for token ``t``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))
        nn.init.normal_(self.W_E, std=cfg.init_range)

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        """``W_E[tokens]``: one row per token."""
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    """Learned absolute positional embedding: row ``W_pos[p]`` for position ``p``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))
        nn.init.normal_(self.W_pos, std=cfg.init_range)

    def forward(self, tokens: Int[Tensor, "batch pos"], offset: int = 0) -> Float[Tensor, "batch pos d_model"]:
        """``W_pos`` rows ``offset .. offset + pos``, repeated over the batch."""
        batch, pos = tokens.shape
        return self.W_pos[offset : offset + pos].expand(batch, pos, -1)


class MLP(nn.Module):
    """``act(x W_in + b_in) W_out + b_out``, applied to every position independently."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        nn.init.normal_(self.W_in, std=cfg.init_range)
        nn.init.normal_(self.W_out, std=cfg.init_range)
        self.act = _ACT[cfg.act_fn]
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """``act(x W_in + b_in) W_out + b_out`` at every position."""
        pre = self.hook_pre(affine(x, self.W_in, self.b_in))
        post = self.hook_post(self.act(pre))
        return affine(post, self.W_out, self.b_out)


class TransformerBlock(nn.Module):
    """One pre-LayerNorm block: attention then MLP, each added to the residual stream (attention alone if ``cfg.attn_only``)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.attn_only = cfg.attn_only
        self.ln1, self.attn = LayerNorm(cfg), Attention(cfg)
        self.hook_resid_pre, self.hook_attn_out, self.hook_resid_post = HookPoint(), HookPoint(), HookPoint()
        if not cfg.attn_only:  # an attention-only block has no MLP, and no resid_mid or mlp_out (as TransformerLens)
            self.ln2, self.mlp = LayerNorm(cfg), MLP(cfg)
            self.hook_resid_mid, self.hook_mlp_out = HookPoint(), HookPoint()

    def forward(
        self, resid_pre: Float[Tensor, "batch pos d_model"], past_kv: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Float[Tensor, "batch pos d_model"], tuple[Tensor, Tensor]]:
        """``(resid_post, (keys, values))``: attention then MLP added to the stream; ``past_kv`` continues a cached sequence."""
        resid_pre = self.hook_resid_pre(resid_pre)
        attn_out, kv = self.attn(self.ln1(resid_pre), past_kv)
        if self.attn_only:
            return self.hook_resid_post(resid_pre + self.hook_attn_out(attn_out)), kv
        resid_mid = self.hook_resid_mid(resid_pre + self.hook_attn_out(attn_out))
        resid_post = self.hook_resid_post(resid_mid + self.hook_mlp_out(self.mlp(self.ln2(resid_mid))))
        return resid_post, kv


class Unembed(nn.Module):
    """Logits ``x W_U + b_U``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))
        nn.init.normal_(self.W_U, std=cfg.init_range)

    def forward(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch d_vocab"]:
        """Logits ``x W_U + b_U``."""
        return affine(x, self.W_U, self.b_U)


class GPT(HookedRootModule):
    """A GPT-2-style decoder-only transformer.

    ``model(tokens)`` returns logits of shape ``(batch, pos, d_vocab)``; the logits at
    position ``i`` predict token ``i + 1``. Pass a `KVCache` to process a sequence in pieces:
    the cache holds the keys and values of earlier positions and is updated in place.
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        if not isinstance(cfg, GPTConfig):
            raise TypeError(f"GPT expects a GPTConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.embed, self.pos_embed = Embed(cfg), PosEmbed(cfg)
        self.hook_embed, self.hook_pos_embed = HookPoint(), HookPoint()
        self.blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final, self.unembed = LayerNorm(cfg), Unembed(cfg)
        self.setup_hooks()

    def check_tokens(self, tokens: Any, offset: int = 0) -> Tensor:
        """Return ``tokens`` as a ``(batch, pos)`` long tensor, or raise naming what was expected."""
        if not isinstance(tokens, Tensor):
            raise TypeError(f"tokens should be a torch.Tensor of token ids, got {type(tokens).__name__}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise TypeError(f"tokens should be an integer tensor (torch.long), got dtype {tokens.dtype}")
        if tokens.ndim == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.ndim != 2 or tokens.shape[1] == 0:
            raise ValueError(f"tokens should have shape (batch, pos) with pos >= 1, got {tuple(tokens.shape)}")
        if offset + tokens.shape[1] > self.cfg.n_ctx:
            where = f" after {offset} cached positions" if offset else ""
            raise ValueError(
                f"sequence of length {tokens.shape[1]}{where} is longer than n_ctx={self.cfg.n_ctx}: "
                "the model has no positional embedding beyond n_ctx"
            )
        lo, hi = (int(v) for v in torch.aminmax(tokens))
        if lo < 0 or hi >= self.cfg.d_vocab:
            bad = lo if lo < 0 else hi
            raise ValueError(f"token id {bad} is out of range: ids should lie in [0, d_vocab={self.cfg.d_vocab})")
        return tokens.long()

    def forward(self, tokens: Int[Tensor, "batch pos"], cache: KVCache | None = None) -> Float[Tensor, "batch pos d_vocab"]:
        """Logits for every position; with a ``cache``, ``tokens`` continue the cached sequence."""
        offset = 0 if cache is None else cache.n_pos
        tokens = self.check_tokens(tokens, offset)
        if cache is not None:
            cache.check_compatible(self.cfg, tokens.shape[0])
        resid = self.hook_embed(self.embed(tokens)) + self.hook_pos_embed(self.pos_embed(tokens, offset))
        for i, block in enumerate(self.blocks):
            resid, kv = block(resid, None if cache is None else cache.get(i))
            if cache is not None:
                cache.set(i, kv)
        return self.unembed(self.ln_final(resid))

    @contextmanager
    def reuse_fused_qkv(self) -> Iterator[None]:
        """Inside this block, with gradients off, every attention layer builds its fused QKV weight once.

        `mechlearn.gpt.generate` and `beam_search` use it; see `Attention.reuse_fused_qkv`.
        """
        with ExitStack() as stack:
            for block in self.blocks:
                stack.enter_context(block.attn.reuse_fused_qkv())
            yield

    # -- checkpoints -------------------------------------------------------------------------

    def save(self, path: str | Path, **extra: Any) -> None:
        """Save the config and weights (plus any plain-data ``extra``) in one torch file."""
        torch.save({"config": self.cfg.to_dict(), "state_dict": self.state_dict(), **extra}, path)

    @classmethod
    def load(cls, path: str | Path) -> "GPT":
        """Rebuild a model saved with `save`, in the dtype it was saved in (tensors and plain data only: ``weights_only=True``)."""
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
            raise ValueError(f"{path} is not a GPT checkpoint: expected a dict with 'config' and 'state_dict'")
        model = cls(GPTConfig(**blob["config"]))
        dtypes = {v.dtype for v in blob["state_dict"].values() if v.is_floating_point()}
        if len(dtypes) == 1:
            model = model.to(dtypes.pop())  # load_state_dict copies into float32 parameters otherwise
        model.load_state_dict(blob["state_dict"])
        return model
