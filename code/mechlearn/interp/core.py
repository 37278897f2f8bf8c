"""One interface over our `GPT` and a TransformerLens ``TransformerBridge``.

Every tool in `mechlearn.interp` takes a *model* that is either our `mechlearn.gpt.GPT` or a
TransformerLens 4.x ``TransformerBridge`` (built offline with ``TransformerBridge.boot_native``, or
from GPT-2 by a reader with internet). The two share TransformerLens's hook names
(``blocks.0.attn.hook_z``, ``blocks.1.hook_resid_pre``, ``ln_final.hook_scale``...) and its
analysis shapes (``W_Q`` is ``(n_layers, n_heads, d_model, d_head)``), so this module only has to
say where each lives:

* `model_spec`: the sizes, as a `ModelSpec`;
* `hook_name`: TransformerLens's ``utils.get_act_name`` (``hook_name("z", 1)`` is
  ``"blocks.1.attn.hook_z"``), and `check_hook_name`, which names the hooks a model does have;
* `run_with_cache` and `run_with_hooks`, the same call for both models; the cache is our
  `mechlearn.gpt.ActivationCache` (a dict with ``cache["z", 1]`` shorthand);
* `weights`: every weight stacked over layers in TransformerLens's shapes, as `Weights`;
* `CHECKPOINT_DIR` and `load_recipe_manifest` for the committed results of the recipes;
* argument checks that every tool shares, with errors that name what was expected: `check_head`,
  `check_layer`, `check_tokens`, `check_prompt_pair`, `check_scalar_metric`.

Follows ARENA 1.2 ("Intro to mechanistic interpretability": TransformerLens and hooks).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from mechlearn._recipes import load_manifest
from mechlearn.gpt.hooks import ActivationCache
from mechlearn.gpt.model import GPT

__all__ = [
    "ModelSpec", "model_spec", "is_bridge", "hook_name", "hook_names", "check_hook_name", "check_layer",
    "check_head", "check_tokens", "check_prompt_pair", "check_scalar_metric", "run_with_cache",
    "run_with_hooks", "Weights", "weights", "Metric", "CHECKPOINT_DIR", "load_recipe_manifest",
]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
"""Where the committed results of ``python -m mechlearn.interp RECIPE`` ship."""


def load_recipe_manifest(name: str, directory: str | Path | None = None) -> tuple[Path, dict]:
    """``(checkpoint path, manifest)`` for the recipe result ``<directory>/<name>.pt``, sha256 checked.

    Args:
        name: the file stem, e.g. ``"induction_2l"``.
        directory: a recipe's ``--out`` folder; the shipped `CHECKPOINT_DIR` by default.

    Raises:
        FileNotFoundError: no such checkpoint or manifest (the message gives the command that makes it).
        ValueError: the checkpoint's sha256 is not the one its manifest records.
    """
    folder = CHECKPOINT_DIR if directory is None else Path(directory)
    return load_manifest(name, folder, f"python -m mechlearn.interp {name.split('_')[0]} --out {folder}")

Metric = Callable[[Tensor], Tensor]
"""A metric: called on the logits ``(batch, pos, d_vocab)``, returns a scalar tensor (shape ``()``)."""

_RESID = {"resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"}
_ATTN = {"q", "k", "v", "z", "pattern", "attn_scores", "result"}
_MLP = {"pre", "post"}
_GLOBAL = {"embed": "hook_embed", "pos_embed": "hook_pos_embed", "scale": "ln_final.hook_scale",
           "normalized": "ln_final.hook_normalized"}


@dataclass(frozen=True)
class ModelSpec:
    """The sizes of a model, read from our `GPTConfig` or a TransformerLens config."""

    kind: str
    """``"mechlearn"`` for our `GPT`, ``"transformer_lens"`` for a ``TransformerBridge``."""
    n_layers: int
    """Number of transformer blocks."""
    n_heads: int
    """Attention heads per block."""
    d_model: int
    """Width of the residual stream."""
    d_head: int
    """Width of each head's queries, keys and values."""
    d_vocab: int
    """Number of token ids."""
    n_ctx: int
    """Longest sequence the model accepts."""
    attn_only: bool
    """True when the blocks have no MLPs."""


def is_bridge(model: Any) -> bool:
    """True when ``model`` is a TransformerLens ``TransformerBridge`` (without importing TransformerLens)."""
    return any(cls.__name__ == "TransformerBridge" for cls in type(model).__mro__)


def model_spec(model: Any) -> ModelSpec:
    """The `ModelSpec` of our `GPT` or of a TransformerLens ``TransformerBridge``.

    Raises:
        TypeError: ``model`` is neither.
    """
    if isinstance(model, GPT):
        kind = "mechlearn"
    elif is_bridge(model):
        kind = "transformer_lens"
    else:
        raise TypeError(
            f"expected a mechlearn GPT or a TransformerLens TransformerBridge, got {type(model).__name__}"
        )
    c = model.cfg
    return ModelSpec(kind, int(c.n_layers), int(c.n_heads), int(c.d_model), int(c.d_head), int(c.d_vocab),
                     int(c.n_ctx), bool(getattr(c, "attn_only", False)))


def hook_name(kind: str, layer: int | None = None) -> str:
    """The full hook name for a short name, as TransformerLens's ``utils.get_act_name``.

    ``hook_name("resid_pre", 0)`` is ``"blocks.0.hook_resid_pre"``; ``hook_name("z", 1)`` is
    ``"blocks.1.attn.hook_z"``; ``hook_name("post", 0)`` is ``"blocks.0.mlp.hook_post"``;
    ``hook_name("embed")`` is ``"hook_embed"`` and ``hook_name("scale")`` the final LayerNorm's
    ``"ln_final.hook_scale"``.

    Raises:
        ValueError: an unknown short name, or a layer missing (or given) where one is (not) needed.
    """
    if kind in _GLOBAL:
        if layer is not None:
            raise ValueError(f"{kind!r} is not per layer (it is {_GLOBAL[kind]!r}); call hook_name({kind!r})")
        return _GLOBAL[kind]
    known = sorted(_RESID | _ATTN | _MLP | set(_GLOBAL))
    if kind not in _RESID | _ATTN | _MLP:
        raise ValueError(f"unknown activation {kind!r}; expected one of {known}")
    if layer is None or isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
        raise ValueError(f"{kind!r} is per layer: pass a layer index >= 0, got {layer!r}")
    if kind in _ATTN:
        return f"blocks.{layer}.attn.hook_{kind}"
    if kind in _MLP:
        return f"blocks.{layer}.mlp.hook_{kind}"
    return f"blocks.{layer}.hook_{kind}"


def hook_names(model: Any) -> list[str]:
    """Every hook point name of ``model``."""
    model_spec(model)
    return list(model.hook_dict)


def check_hook_name(model: Any, name: str) -> str:
    """Return ``name`` if ``model`` has a hook point of that name.

    Raises:
        KeyError: it has none; the message lists the closest names it does have.
    """
    names = hook_names(model)
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=4, cutoff=0.5)
        raise KeyError(f"no hook point named {name!r} in this model; closest: {close or names[:4]}")
    return name


def check_layer(model: Any, layer: Any) -> int:
    """Return ``layer`` if it indexes a block of ``model``.

    Raises:
        ValueError: not an int in ``[0, n_layers)``.
    """
    n = model_spec(model).n_layers
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n:
        raise ValueError(f"layer should be an int in [0, {n}) for this {n}-layer model, got {layer!r}")
    return layer


def check_head(model: Any, layer: Any, head: Any) -> tuple[int, int]:
    """Return ``(layer, head)`` if it names a head of ``model``.

    Raises:
        ValueError: the layer is not in ``[0, n_layers)`` or the head not in ``[0, n_heads)``.
    """
    check_layer(model, layer)
    n = model_spec(model).n_heads
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < n:
        raise ValueError(f"head should be an int in [0, {n}) for this model's {n} heads per layer, got {head!r}")
    return layer, head


def check_tokens(model: Any, tokens: Any) -> Tensor:
    """``tokens`` as a ``(batch, pos)`` long tensor of ids the model accepts.

    Raises:
        TypeError: not an integer tensor.
        ValueError: wrong rank, longer than ``n_ctx``, or an id outside ``[0, d_vocab)``.
    """
    if isinstance(model, GPT):
        return model.check_tokens(tokens)
    spec = model_spec(model)
    if not isinstance(tokens, Tensor):
        raise TypeError(f"tokens should be a torch.Tensor of token ids, got {type(tokens).__name__}")
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise TypeError(f"tokens should be an integer tensor (torch.long), got dtype {tokens.dtype}")
    if tokens.ndim == 1:
        tokens = tokens.unsqueeze(0)
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(f"tokens should have shape (batch, pos) with pos >= 1, got {tuple(tokens.shape)}")
    if tokens.shape[1] > spec.n_ctx:
        raise ValueError(f"sequence of length {tokens.shape[1]} is longer than n_ctx={spec.n_ctx}")
    if int(tokens.min()) < 0 or int(tokens.max()) >= spec.d_vocab:
        raise ValueError(f"token ids should lie in [0, d_vocab={spec.d_vocab}), got [{int(tokens.min())}, {int(tokens.max())}]")
    return tokens.long()


def check_prompt_pair(model: Any, clean: Any, corrupted: Any) -> tuple[Tensor, Tensor]:
    """Clean and corrupted prompts as token tensors of the same ``(batch, pos)`` shape.

    Patching swaps activations position by position, so the two runs must line up.

    Raises:
        ValueError: the shapes differ (the message gives both).
    """
    clean, corrupted = check_tokens(model, clean), check_tokens(model, corrupted)
    if clean.shape != corrupted.shape:
        raise ValueError(
            "clean and corrupted prompts should have the same shape (batch, pos) so that positions line up, "
            f"got {tuple(clean.shape)} and {tuple(corrupted.shape)}"
        )
    return clean, corrupted


def check_scalar_metric(value: Any, name: str = "metric") -> Tensor:
    """Return ``value`` if it is a scalar tensor, as a metric must return.

    Raises:
        TypeError: not a tensor.
        ValueError: not a single number (shape ``()`` or one element).
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} should return a scalar torch.Tensor, got {type(value).__name__}")
    if value.numel() != 1:
        raise ValueError(
            f"{name} should return a scalar (shape ()), got shape {tuple(value.shape)}: "
            "average over the batch inside the metric"
        )
    return value.reshape(())


def _names_filter(model: Any, names_filter: Any) -> Any:
    if names_filter is None or callable(names_filter):
        return names_filter
    if isinstance(names_filter, str):
        return check_hook_name(model, names_filter)
    names = list(names_filter)
    for name in names:
        check_hook_name(model, name)
    return names


def run_with_cache(
    model: Any, tokens: Any, names_filter: str | Iterable[str] | Callable[[str], bool] | None = None
) -> tuple[Float[Tensor, "batch pos d_vocab"], ActivationCache]:
    """``(logits, cache)`` for our `GPT` or a bridge; the cache is our `ActivationCache`.

    Args:
        names_filter: None for every hook point, a name, a list of names, or a predicate on names.

    Raises:
        KeyError: a name the model has no hook point for.
    """
    tokens = check_tokens(model, tokens)
    names_filter = _names_filter(model, names_filter)
    logits, cache = model.run_with_cache(tokens, names_filter=names_filter)
    if isinstance(cache, ActivationCache):
        return logits, cache
    return logits, ActivationCache({name: cache[name] for name in cache.keys()})


def run_with_hooks(
    model: Any, tokens: Any, fwd_hooks: Iterable[tuple[str | Callable[[str], bool], Callable]]
) -> Float[Tensor, "batch pos d_vocab"]:
    """The logits with ``fwd_hooks`` (``(name or predicate, fn(activation, hook))`` pairs) attached.

    The hooks are removed afterwards, also when the run raises.

    Raises:
        KeyError: a name the model has no hook point for.
    """
    tokens = check_tokens(model, tokens)
    hooks = list(fwd_hooks)
    for name, fn in hooks:
        if isinstance(name, str):
            check_hook_name(model, name)
        if not callable(fn):
            raise TypeError(f"the hook for {name!r} should be callable as fn(activation, hook), got {type(fn).__name__}")
    return model.run_with_hooks(tokens, fwd_hooks=hooks)


@dataclass(frozen=True)
class Weights:
    """A model's weights stacked over layers, in TransformerLens's analysis shapes (``L`` layers, ``H`` heads)."""

    W_E: Float[Tensor, "d_vocab d_model"]
    """Token embedding."""
    W_pos: Float[Tensor, "n_ctx d_model"]
    """Positional embedding."""
    W_Q: Float[Tensor, "L H d_model d_head"]
    """Query maps."""
    W_K: Float[Tensor, "L H d_model d_head"]
    """Key maps."""
    W_V: Float[Tensor, "L H d_model d_head"]
    """Value maps."""
    W_O: Float[Tensor, "L H d_head d_model"]
    """Output maps."""
    b_Q: Float[Tensor, "L H d_head"]
    """Query biases."""
    b_K: Float[Tensor, "L H d_head"]
    """Key biases."""
    b_V: Float[Tensor, "L H d_head"]
    """Value biases."""
    b_O: Float[Tensor, "L d_model"]
    """Output biases (one per layer, shared by its heads)."""
    W_U: Float[Tensor, "d_model d_vocab"]
    """Unembedding."""
    b_U: Float[Tensor, "d_vocab"]
    """Unembedding bias."""


def weights(model: Any) -> Weights:
    """``model``'s weights as a `Weights` (tensors that share storage with the model where they can)."""
    spec = model_spec(model)
    if spec.kind == "transformer_lens":
        names = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_U", "b_U")
        return Weights(**{n: getattr(model, n) for n in names})
    attn = [block.attn for block in model.blocks]
    stack = lambda n: torch.stack([getattr(a, n) for a in attn])  # noqa: E731
    return Weights(
        W_E=model.embed.W_E, W_pos=model.pos_embed.W_pos, W_Q=stack("W_Q"), W_K=stack("W_K"), W_V=stack("W_V"),
        W_O=stack("W_O"), b_Q=stack("b_Q"), b_K=stack("b_K"), b_V=stack("b_V"), b_O=stack("b_O"),
        W_U=model.unembed.W_U, b_U=model.unembed.b_U,
    )
