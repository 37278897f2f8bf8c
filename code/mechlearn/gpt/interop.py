"""Move weights between our `GPT` and a TransformerLens model built offline.

TransformerLens 4.x builds a model from a config alone with
``TransformerBridge.boot_native(TransformerBridgeConfig(...))``: no download, random
weights. Its state dict stores each linear map the ``nn.Linear`` way, ``(out, in)``, with the
heads folded into one axis; ours stores TransformerLens's analysis shapes, heads split out:

    ours blocks.i.attn.W_Q  (n_heads, d_model, d_head)  <->  blocks.i.attn.q.weight  (n_heads·d_head, d_model)
    ours blocks.i.attn.W_O  (n_heads, d_head, d_model)  <->  blocks.i.attn.o.weight  (d_model, n_heads·d_head)
    ours blocks.i.mlp.W_in  (d_model, d_mlp)            <->  blocks.i.mlp.in.weight  (d_mlp, d_model)
    ours unembed.W_U        (d_model, d_vocab)          <->  unembed.weight          (d_vocab, d_model)

Given the same weights the two models' logits agree to float rounding (tested at 1e-5 in
float32, tighter in float64), and weights round-trip exactly in both directions.

Hugging Face ``transformers``' ``GPT2LMHeadModel``, what most engineers would reach for, is the
second reference (`to_hf_gpt2`), also built from a config alone. GPT-2 stores its maps as
``Conv1D``, ``(in, out)`` like ours, with query, key and value of all heads in one matrix:

    ours W_Q, W_K, W_V  (n_heads, d_model, d_head)  ->  transformer.h.i.attn.c_attn.weight  (d_model, 3·n_heads·d_head)
    ours W_O            (n_heads, d_head, d_model)  ->  transformer.h.i.attn.c_proj.weight  (n_heads·d_head, d_model)
    ours unembed.W_U    (d_model, d_vocab)          ->  lm_head.weight                      (d_vocab, d_model)

Two things do not map one to one. GPT-2 ties ``lm_head`` to the token embedding; ours has its
own ``W_U``, so the config unties them (``tie_word_embeddings=False``). GPT-2's ``lm_head`` has no
bias; ours has ``b_U``, so when ``b_U`` is not all zeros (after training) `to_hf_gpt2` gives the
model a biased ``lm_head`` (a plain ``nn.Linear``) in place of the stock one. A config whose
``n_heads · d_head`` differs from ``d_model`` has no GPT-2 counterpart and is refused.
"""

from __future__ import annotations

from typing import Any

import einops
import torch
from torch import Tensor

from mechlearn._optional import require
from mechlearn.gpt.config import GPTConfig
from mechlearn.gpt.model import GPT

__all__ = [
    "to_transformer_lens_config", "to_transformer_lens", "from_transformer_lens", "state_dict_to_tl", "state_dict_from_tl",
    "to_hf_gpt2_config", "state_dict_to_hf", "to_hf_gpt2",
]


def to_transformer_lens_config(cfg: GPTConfig) -> Any:
    """The ``TransformerBridgeConfig`` with the same sizes as ``cfg``."""
    TransformerBridgeConfig = require("transformer_lens", "mechlearn.gpt.interop").TransformerBridgeConfig

    return TransformerBridgeConfig(
        d_model=cfg.d_model, d_head=cfg.d_head, n_heads=cfg.n_heads, n_layers=cfg.n_layers, n_ctx=cfg.n_ctx,
        d_vocab=cfg.d_vocab, d_mlp=None if cfg.attn_only else cfg.d_mlp, act_fn=None if cfg.attn_only else cfg.act_fn,
        eps=cfg.layer_norm_eps, attn_only=cfg.attn_only, normalization_type="LN", positional_embedding_type="standard",
    )


def state_dict_to_tl(model: GPT) -> dict[str, Tensor]:
    """Our weights, renamed and reshaped into a TransformerLens bridge's state dict."""
    sd: dict[str, Tensor] = {"embed.weight": model.embed.W_E, "pos_embed.weight": model.pos_embed.W_pos}
    for i, block in enumerate(model.blocks):
        p, a = f"blocks.{i}.", block.attn
        for name, W, b in (("q", a.W_Q, a.b_Q), ("k", a.W_K, a.b_K), ("v", a.W_V, a.b_V)):
            sd[p + f"attn.{name}.weight"] = einops.rearrange(W, "h m e -> (h e) m")
            sd[p + f"attn.{name}.bias"] = einops.rearrange(b, "h e -> (h e)")
        sd[p + "attn.o.weight"] = einops.rearrange(a.W_O, "h e m -> m (h e)")
        sd[p + "attn.o.bias"] = a.b_O
        sd[p + "ln1.weight"], sd[p + "ln1.bias"] = block.ln1.w, block.ln1.b
        if model.cfg.attn_only:
            continue
        sd[p + "ln2.weight"], sd[p + "ln2.bias"] = block.ln2.w, block.ln2.b
        sd[p + "mlp.in.weight"], sd[p + "mlp.in.bias"] = block.mlp.W_in.T, block.mlp.b_in
        sd[p + "mlp.out.weight"], sd[p + "mlp.out.bias"] = block.mlp.W_out.T, block.mlp.b_out
    sd["ln_final.weight"], sd["ln_final.bias"] = model.ln_final.w, model.ln_final.b
    sd["unembed.weight"], sd["unembed.bias"] = model.unembed.W_U.T, model.unembed.b_U
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def state_dict_from_tl(tl_state: dict[str, Tensor], cfg: GPTConfig) -> dict[str, Tensor]:
    """A TransformerLens bridge's state dict, renamed and reshaped into ours."""
    h = cfg.n_heads
    sd: dict[str, Tensor] = {"embed.W_E": tl_state["embed.weight"], "pos_embed.W_pos": tl_state["pos_embed.weight"]}
    for i in range(cfg.n_layers):
        p = f"blocks.{i}."
        for name in ("q", "k", "v"):
            sd[p + f"attn.W_{name.upper()}"] = einops.rearrange(tl_state[p + f"attn.{name}.weight"], "(h e) m -> h m e", h=h)
            sd[p + f"attn.b_{name.upper()}"] = einops.rearrange(tl_state[p + f"attn.{name}.bias"], "(h e) -> h e", h=h)
        sd[p + "attn.W_O"] = einops.rearrange(tl_state[p + "attn.o.weight"], "m (h e) -> h e m", h=h)
        sd[p + "attn.b_O"] = tl_state[p + "attn.o.bias"]
        sd[p + "ln1.w"], sd[p + "ln1.b"] = tl_state[p + "ln1.weight"], tl_state[p + "ln1.bias"]
        if cfg.attn_only:
            continue
        sd[p + "ln2.w"], sd[p + "ln2.b"] = tl_state[p + "ln2.weight"], tl_state[p + "ln2.bias"]
        sd[p + "mlp.W_in"], sd[p + "mlp.b_in"] = tl_state[p + "mlp.in.weight"].T, tl_state[p + "mlp.in.bias"]
        sd[p + "mlp.W_out"], sd[p + "mlp.b_out"] = tl_state[p + "mlp.out.weight"].T, tl_state[p + "mlp.out.bias"]
    sd["ln_final.w"], sd["ln_final.b"] = tl_state["ln_final.weight"], tl_state["ln_final.bias"]
    sd["unembed.W_U"], sd["unembed.b_U"] = tl_state["unembed.weight"].T, tl_state["unembed.bias"]
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def to_transformer_lens(model: GPT, dtype: torch.dtype | None = None) -> Any:
    """A TransformerLens ``TransformerBridge`` with our model's config and weights."""
    TransformerBridge = require("transformer_lens", "mechlearn.gpt.interop").TransformerBridge

    if not isinstance(model, GPT):
        raise TypeError(f"to_transformer_lens expects a mechlearn GPT, got {type(model).__name__}")
    dtype = dtype or model.embed.W_E.dtype
    bridge = TransformerBridge.boot_native(to_transformer_lens_config(model.cfg), dtype=dtype)
    bridge.load_state_dict({k: v.to(dtype) for k, v in state_dict_to_tl(model).items()}, strict=True)
    return bridge.eval()


def from_transformer_lens(bridge: Any) -> GPT:
    """Our `GPT` with a TransformerLens bridge's config and weights."""
    c = bridge.cfg
    if getattr(c, "normalization_type", "LN") != "LN" or getattr(c, "positional_embedding_type", "standard") != "standard":
        raise ValueError("only GPT-2-style models (LayerNorm, learned absolute positions) can be converted")
    cfg = GPTConfig(
        d_vocab=c.d_vocab, n_ctx=c.n_ctx, d_model=c.d_model, n_layers=c.n_layers, n_heads=c.n_heads,
        d_head=c.d_head, layer_norm_eps=c.eps, attn_only=bool(getattr(c, "attn_only", False)),
        **({} if getattr(c, "attn_only", False) else {"d_mlp": c.d_mlp, "act_fn": c.act_fn}),
    )
    tl_state = bridge.state_dict()
    model = GPT(cfg).to(tl_state["embed.weight"].dtype)
    model.load_state_dict(state_dict_from_tl(tl_state, cfg), strict=True)
    return model.eval()


# -- Hugging Face transformers' GPT2LMHeadModel -------------------------------------------

_HF_ACT = {"gelu_new": "gelu_new", "gelu": "gelu", "relu": "relu"}
"""Our ``act_fn`` names and ``transformers``' ``activation_function`` names for the same function."""


def to_hf_gpt2_config(cfg: GPTConfig) -> Any:
    """The ``transformers.GPT2Config`` with the same sizes as ``cfg``, dropout off and ``lm_head`` untied."""
    GPT2Config = require("transformers", "mechlearn.gpt.interop").GPT2Config

    if cfg.attn_only:
        raise ValueError("GPT-2 has an MLP in every block: an attn_only config has no GPT2LMHeadModel counterpart")
    if cfg.n_heads * cfg.d_head != cfg.d_model:
        raise ValueError(
            f"GPT-2 needs n_heads * d_head == d_model, got {cfg.n_heads} * {cfg.d_head} != {cfg.d_model}: "
            "this config has no GPT2LMHeadModel counterpart"
        )
    return GPT2Config(
        vocab_size=cfg.d_vocab, n_positions=cfg.n_ctx, n_embd=cfg.d_model, n_layer=cfg.n_layers, n_head=cfg.n_heads,
        n_inner=cfg.d_mlp, activation_function=_HF_ACT[cfg.act_fn], layer_norm_epsilon=cfg.layer_norm_eps,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False,
        # GPT-2's default special ids (50256) lie outside a small vocabulary; generation stops on no token.
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )


def state_dict_to_hf(model: GPT) -> dict[str, Tensor]:
    """Our weights, renamed and reshaped into a ``GPT2LMHeadModel`` state dict.

    ``lm_head.bias`` is included only when ``b_U`` is not all zeros (the stock model has no such bias).
    """
    if not isinstance(model, GPT):
        raise TypeError(f"state_dict_to_hf expects a mechlearn GPT, got {type(model).__name__}")
    to_hf_gpt2_config(model.cfg)  # refuses a config GPT-2 cannot express
    sd: dict[str, Tensor] = {"transformer.wte.weight": model.embed.W_E, "transformer.wpe.weight": model.pos_embed.W_pos}
    for i, block in enumerate(model.blocks):
        p, a = f"transformer.h.{i}.", block.attn
        sd[p + "ln_1.weight"], sd[p + "ln_1.bias"] = block.ln1.w, block.ln1.b
        sd[p + "attn.c_attn.weight"] = torch.cat([einops.rearrange(W, "h m e -> m (h e)") for W in (a.W_Q, a.W_K, a.W_V)], dim=1)
        sd[p + "attn.c_attn.bias"] = torch.cat([b.flatten() for b in (a.b_Q, a.b_K, a.b_V)])
        sd[p + "attn.c_proj.weight"] = einops.rearrange(a.W_O, "h e m -> (h e) m")
        sd[p + "attn.c_proj.bias"] = a.b_O
        sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = block.ln2.w, block.ln2.b
        sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = block.mlp.W_in, block.mlp.b_in
        sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"] = block.mlp.W_out, block.mlp.b_out
    sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = model.ln_final.w, model.ln_final.b
    sd["lm_head.weight"] = model.unembed.W_U.T
    if bool((model.unembed.b_U != 0).any()):
        sd["lm_head.bias"] = model.unembed.b_U
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def to_hf_gpt2(model: GPT, dtype: torch.dtype | None = None, attn_implementation: str | None = None) -> Any:
    """A ``transformers.GPT2LMHeadModel`` with our model's config and weights, in eval mode.

    Built from a config alone (no download). ``attn_implementation`` is passed to ``transformers``
    (``"eager"`` or ``"sdpa"``; ``None`` takes its default). When ``b_U`` is not all zeros,
    ``lm_head`` is a biased ``nn.Linear`` instead of the stock bias-free one.
    """
    GPT2LMHeadModel = require("transformers", "mechlearn.gpt.interop").GPT2LMHeadModel

    sd = state_dict_to_hf(model)
    dtype = dtype or model.embed.W_E.dtype
    config = to_hf_gpt2_config(model.cfg)
    if attn_implementation is not None:
        config._attn_implementation = attn_implementation
    hf = GPT2LMHeadModel(config)
    if "lm_head.bias" in sd:
        hf.lm_head = torch.nn.Linear(model.cfg.d_model, model.cfg.d_vocab, bias=True)
    hf = hf.to(dtype)
    hf.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True)
    return hf.eval()
