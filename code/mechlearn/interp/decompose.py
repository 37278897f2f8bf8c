"""The residual stream as a sum of components: per-head results, layer outputs, and the
final LayerNorm.

Every block *adds* to the residual stream (Day 26), so the stream that reaches the
unembedding is a sum: the token embedding, the positional embedding, and each layer's
attention and MLP outputs,

    resid_final = embed + pos_embed + sum_l (attn_out_l + mlp_out_l).

Each attention output splits further into one term per head plus the shared bias,
``attn_out_l = sum_h z_{l,h} W_O[l, h] + b_O[l]``, where ``z`` is the head's mixed
values (``hook_z``). Elhage et al. (2021, "A Mathematical Framework for Transformer
Circuits") read a transformer this way: the stream is a shared channel and every
component writes into it independently.

What stops the logits from being a sum over components is the final LayerNorm. It is an
affine map *given its scale*: ``LN(x) = (x - mean(x)) / scale * w + b`` with ``scale``
one number per (batch, position). Freezing the scale at the value the real run cached
makes the map linear, so each component's contribution can be pushed through it on its
own and the pieces still add up (`apply_ln_to_stack`). This is what direct logit
attribution (`mechlearn.interp.attribution`) needs.

The functions mirror TransformerLens's ``ActivationCache`` methods of the same names,
with the same labels (``"embed"``, ``"pos_embed"``, ``"0_attn_out"``, ``"0_mlp_out"``,
``"L0H1"``, ``"1_pre"``, ``"final_post"``) and the same component-first shapes, and they
take ``(model, cache)`` so that they work on our `GPT` and on a TransformerLens bridge
alike (the cache from `mechlearn.interp.core.run_with_cache`, or a TransformerLens
``ActivationCache``). Two differences from TransformerLens: they always return ``(stack,
labels)`` (TransformerLens's ``return_labels=True``), and per-head results are computed
from ``hook_z`` and ``W_O`` (`mechlearn.interp.core.weights`) rather than read from a
``hook_result`` cache entry.

Follows ARENA 1.2 ("Intro to mechanistic interpretability": direct logit attribution)
and 1.4.1 (indirect object identification: "logit difference", "accumulated residual
stream").
"""

from __future__ import annotations

from typing import Any, Literal

import einops
import torch
from jaxtyping import Float
from torch import Tensor

from mechlearn.interp.core import check_layer, hook_name, model_spec, weights

__all__ = [
    "stack_head_results",
    "decompose_resid",
    "accumulated_resid",
    "apply_ln_to_stack",
]

PosSlice = int | slice | None
"""Which positions to keep: an int (that position, dropping the axis), a slice, or None
for all.
"""


def _get(cache: Any, name: str) -> Tensor:
    """``cache[name]``, with an error that says how to get the activation into the
    cache.
    """
    try:
        return cache[name]
    except KeyError:
        raise KeyError(
            f"the cache has no {name!r}: run run_with_cache without a names_filter, "
            f"or include {name!r} in it"
        ) from None


def _slice_pos(x: Tensor, pos_slice: Any, dim: int) -> Tensor:
    """TransformerLens's ``Slice(pos_slice).apply(x, dim)``: an int drops the axis, a
    slice keeps it.
    """
    if pos_slice is None:
        return x
    if isinstance(pos_slice, bool) or not isinstance(pos_slice, (int, slice)):
        raise TypeError(
            "pos_slice should be an int, a slice or None, "
            f"got {type(pos_slice).__name__}"
        )
    index = [slice(None)] * x.ndim
    index[dim] = pos_slice
    return x[tuple(index)]


def _layer_upto(model: Any, layer: int | None) -> int:
    """TransformerLens's ``layer`` argument: None or -1 mean "after the last block"
    (``n_layers``).
    """
    n = model_spec(model).n_layers
    if layer is None or layer == -1:
        return n
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= n:
        raise ValueError(
            f"layer should be an int in [0, {n}] (or -1/None for the unembedding), "
            f"got {layer!r}"
        )
    return layer


def stack_head_results(
    model: Any,
    cache: Any,
    layer: int | None = None,
    pos_slice: PosSlice = None,
    incl_remainder: bool = False,
) -> tuple[Float[Tensor, "component *batch_and_pos d_model"], list[str]]:
    """What each head writes into the residual stream, ``z[l, h] @ W_O[l, h]``, stacked
    as ``(layer head)``.

    The head's result excludes the bias ``b_O[l]``, which belongs to no single head; so
    ``sum_h result[l, h] + b_O[l] == attn_out_l`` (tested).

    Args:
        model: our `GPT` or a TransformerLens bridge (for ``W_O``).
        cache: the cache of a run of ``model`` holding ``blocks.{l}.attn.hook_z``.
        layer: heads of layers strictly before ``layer``; None or -1 for every layer.
        pos_slice: positions to keep (an int drops the position axis).
        incl_remainder: append one more component, labelled ``"remainder"``: the
            residual stream after layer ``layer - 1`` minus the heads' sum (embeddings,
            biases, MLPs).

    Returns:
        ``(stack, labels)``: ``stack`` is ``(layer·n_heads, batch, pos, d_model)`` (pos
        dropped for an int ``pos_slice``), labels ``["L0H0", "L0H1", ...]``.

    Raises:
        ValueError: a layer out of range. KeyError: ``hook_z`` missing from the cache.
    """
    upto = _layer_upto(model, layer)
    W_O = weights(model).W_O
    parts, labels = [], []
    for l in range(upto):
        z = _slice_pos(_get(cache, hook_name("z", l)), pos_slice, dim=-3)
        W = W_O[l].to(z.dtype)
        parts.append(
            einops.einsum(
                z, W, "... head d_head, head d_head d_model -> head ... d_model"
            )
        )
        labels += [f"L{l}H{h}" for h in range(W.shape[0])]
    if parts:
        stack = torch.cat(parts, dim=0)
    else:
        like = _slice_pos(_get(cache, hook_name("embed")), pos_slice, dim=-2)
        stack = like.new_zeros((0, *like.shape))
    if incl_remainder:
        total = _final_resid(model, cache, upto, pos_slice)
        stack = torch.cat([stack, (total - stack.sum(dim=0))[None]], dim=0)
        labels.append("remainder")
    return stack, labels


def _final_resid(model: Any, cache: Any, upto: int, pos_slice: PosSlice) -> Tensor:
    """The residual stream entering layer ``upto`` (the unembedding when ``upto ==
    n_layers``).
    """
    name = hook_name("resid_post", upto - 1) if upto > 0 else None
    if name is None:
        return _slice_pos(
            _get(cache, hook_name("embed")) + _get(cache, hook_name("pos_embed")),
            pos_slice,
            -2,
        )
    return _slice_pos(_get(cache, name), pos_slice, dim=-2)


def decompose_resid(
    model: Any,
    cache: Any,
    layer: int | None = None,
    mlp_input: bool = False,
    mode: Literal["all", "mlp", "attn"] = "all",
    incl_embeds: bool = True,
    pos_slice: PosSlice = None,
) -> tuple[Float[Tensor, "component *batch_and_pos d_model"], list[str]]:
    """The residual stream entering layer ``layer`` as a stack of the components that
    wrote it.

    The components are ``embed``, ``pos_embed`` and, for each earlier layer ``l``,
    ``{l}_attn_out`` and (if the model has MLPs) ``{l}_mlp_out``; they sum exactly to
    ``resid_pre`` of ``layer`` (to the final stream for the default ``layer=None``).
    Each ``attn_out`` includes that layer's ``b_O``.

    Args:
        model: our `GPT` or a TransformerLens bridge.
        cache: the cache of a run of ``model``.
        layer: the layer whose input is decomposed; None or -1 for the input to the
            unembedding.
        mlp_input: decompose the input to layer ``layer``'s MLP instead (adds
            ``{layer}_attn_out``).
        mode: ``"all"``, or only the ``"attn"`` or ``"mlp"`` components (embeddings stay
            if ``incl_embeds``).
        incl_embeds: include ``embed`` and ``pos_embed``.
        pos_slice: positions to keep (an int drops the position axis).

    Returns:
        ``(stack, labels)`` with ``stack`` of shape ``(component, batch, pos,
        d_model)``.

    Raises:
        ValueError: a bad ``layer`` or ``mode``, or ``mlp_input`` on a model without
            MLPs.
    """
    upto = _layer_upto(model, layer)
    attn_only = model_spec(model).attn_only
    if mode not in ("all", "mlp", "attn"):
        raise ValueError(f"mode should be 'all', 'mlp' or 'attn', got {mode!r}")
    if mlp_input and (attn_only or upto == model_spec(model).n_layers):
        raise ValueError(
            "mlp_input=True needs a layer with an MLP: an attn-only model "
            "or the unembedding has none"
        )
    names, labels = [], []
    if incl_embeds:
        names += [hook_name("embed"), hook_name("pos_embed")]
        labels += ["embed", "pos_embed"]
    for l in range(upto + (1 if mlp_input else 0)):
        if mode in ("all", "attn"):
            names.append(hook_name("attn_out", l))
            labels.append(f"{l}_attn_out")
        if mode in ("all", "mlp") and not attn_only and l < upto:
            names.append(hook_name("mlp_out", l))
            labels.append(f"{l}_mlp_out")
    if not names:
        raise ValueError(
            "nothing to decompose: incl_embeds=False with no layers before `layer`"
        )
    parts = [_slice_pos(_get(cache, name), pos_slice, dim=-2) for name in names]
    batch_shape = torch.broadcast_shapes(*(p.shape for p in parts))
    return torch.stack([p.expand(batch_shape) for p in parts]), labels


def accumulated_resid(
    model: Any,
    cache: Any,
    layer: int | None = None,
    incl_mid: bool = False,
    pos_slice: PosSlice = None,
) -> tuple[Float[Tensor, "component *batch_and_pos d_model"], list[str]]:
    """The residual stream as it stands before each layer: the logit lens's stack.

    Entries are ``resid_pre`` of layers ``0 .. layer-1`` (labels ``"0_pre"``,
    ``"1_pre"``...), optionally ``resid_mid`` between them (``"0_mid"``; models with
    MLPs only), and for the default ``layer=None`` the final stream (``"final_post"``).
    Entry ``k`` is the sum of the `decompose_resid` components written before it. Push
    it through the final LayerNorm with `apply_ln_to_stack` (the cached scale, as ARENA
    1.4.1) to read each stage's logit difference.

    Raises:
        ValueError: a bad ``layer``, or ``incl_mid`` on an attn-only model (no
            ``resid_mid``).
    """
    spec = model_spec(model)
    upto = _layer_upto(model, layer)
    if incl_mid and spec.attn_only:
        raise ValueError(
            "incl_mid=True needs resid_mid, which an attn-only model does not have"
        )
    names, labels = [], []
    for l in range(upto + 1):
        if l == spec.n_layers:
            names.append(hook_name("resid_post", l - 1))
            labels.append("final_post")
            continue
        names.append(hook_name("resid_pre", l))
        labels.append(f"{l}_pre")
        if incl_mid and l < upto:
            names.append(hook_name("resid_mid", l))
            labels.append(f"{l}_mid")
    return (
        torch.stack(
            [_slice_pos(_get(cache, name), pos_slice, dim=-2) for name in names]
        ),
        labels,
    )


def apply_ln_to_stack(
    model: Any,
    cache: Any,
    stack: Float[Tensor, "component *batch_and_pos d_model"],
    layer: int | None = None,
    mlp_input: bool = False,
    pos_slice: PosSlice = None,
) -> Float[Tensor, "component *batch_and_pos d_model"]:
    """Each component of ``stack`` centred and divided by a LayerNorm's *cached* scale.

    With the scale frozen at the value of the real run, LayerNorm is linear, so the
    scaled components still sum to the normalised stream: ``sum_i apply_ln(c_i) == (x -
    mean x) / scale``. As in TransformerLens, the LayerNorm's own weight ``w`` and bias
    ``b`` are *not* applied (TransformerLens assumes they were folded into the next
    weights); `mechlearn.interp.attribution` multiplies ``w`` into its directions and
    names ``b``'s term.

    Args:
        model: our `GPT` or a TransformerLens bridge.
        cache: the cache holding the scale (``ln_final.hook_scale``, or
            ``blocks.{l}.ln1.hook_scale``).
        stack: ``(component, batch, pos, d_model)``, already sliced to ``pos_slice``.
        layer: whose input LayerNorm: None or -1 for the final one, else layer
            ``layer``'s ``ln1``.
        mlp_input: layer ``layer``'s ``ln2`` instead of ``ln1``.
        pos_slice: the positions ``stack`` was sliced to, applied here to the cached
            scale.

    Raises:
        KeyError: the scale is not in the cache. ValueError: the stack does not line up
            with it.
    """
    upto = _layer_upto(model, layer)
    if upto == model_spec(model).n_layers:
        if mlp_input:
            raise ValueError(
                "mlp_input=True names a block's ln2; the unembedding has only ln_final"
            )
        name = hook_name("scale")
    else:
        check_layer(model, upto)
        if mlp_input and model_spec(model).attn_only:
            raise ValueError(
                "mlp_input=True names ln2, which an attn-only model does not have"
            )
        name = f"blocks.{upto}.ln{2 if mlp_input else 1}.hook_scale"
    scale = _slice_pos(_get(cache, name), pos_slice, dim=-2)
    if (
        stack.shape[-1] != model_spec(model).d_model
        or stack.shape[1:-1] != scale.shape[:-1]
    ):
        raise ValueError(
            f"stack should be (component, {', '.join(map(str, scale.shape[:-1]))}, "
            f"d_model) to line up with the cached scale {name!r} after "
            f"pos_slice={pos_slice!r}, got {tuple(stack.shape)}"
        )
    centred = stack - stack.mean(dim=-1, keepdim=True)
    return centred / scale.to(stack.dtype)
