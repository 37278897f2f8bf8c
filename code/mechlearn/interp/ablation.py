"""Ablating attention heads: zero, mean and resample ablation through hooks on
``hook_z``.

To ask "what does this head do for the task?", remove it and measure how much a metric
(the loss on repeated tokens, the IOI logit difference) gets worse. A head's output is
``z_h W_O[h]`` with ``z`` its mixed values (``blocks.{l}.attn.hook_z``, shape ``batch
pos head_index d_head``), so replacing ``z_h`` by something else removes what the head
computed while leaving every other head alone. What to replace it with is the whole
question:

* **zero** ablation sets ``z_h = 0``. Simple, but a head's output is rarely centred on
  zero: it often carries a constant offset that later layers (and the LayerNorms) have
  learned to expect, so zeroing it moves the stream off-distribution and over-states the
  head's importance.
* **mean** ablation sets ``z_h`` to its average over a reference batch *and* over
  positions, one ``d_head`` vector per head. It keeps the constant part and removes only
  the information that varies from prompt to prompt, which is what "what does the head
  compute?" asks (ARENA 1.4.1 uses mean ablation to measure the IOI circuit's
  faithfulness; Wang et al., 2022). The mean is over positions as well as prompts so
  that it is one constant vector per head: replacing ``z_h`` by a constant ``m_h`` is
  then exactly zeroing the head's ``W_O`` rows and adding ``m_h W_O[h]`` to ``b_O``
  (tested). ``per_position=True`` averages over the batch only, one vector per position
  (the reference must then have the same length as the prompts), for tasks where
  positions mean different things.
* **resample** ablation sets ``z_h`` to the head's activation on a *different* prompt (a
  random other row of the reference batch, or of the batch itself): the value stays
  on-distribution, only the prompt-specific information is scrambled (Chan et al., 2022,
  "causal scrubbing").

`head_ablation_scores` ablates one head at a time and returns the change in the metric
as an ``(n_layers, n_heads)`` table. Everything runs through
`mechlearn.interp.core.run_with_hooks`, so the same call works on our `GPT` and on a
TransformerLens bridge (tested equal).

Follows ARENA 1.2 ("Intro to mechanistic interpretability": ablations) and 1.4.1
(indirect object identification: mean ablation and faithfulness).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.interp.core import (
    Metric,
    check_head,
    check_scalar_metric,
    check_tokens,
    hook_name,
    model_spec,
    run_with_cache,
    run_with_hooks,
)

__all__ = [
    "ABLATION_METHODS",
    "ablation_values",
    "ablate_heads",
    "head_ablation_scores",
]

AblationMethod = Literal["zero", "mean", "resample"]
"""How an ablated head's ``z`` is replaced."""
ABLATION_METHODS = ("zero", "mean", "resample")
"""The supported ablation methods: ``z`` set to zero, to its reference mean, or to
another prompt's ``z``.
"""


def _check_heads(model: Any, heads: Any) -> list[tuple[int, int]]:
    """``heads`` as a list of valid ``(layer, head)`` tuples."""
    if (
        isinstance(heads, tuple)
        and len(heads) == 2
        and all(isinstance(x, int) for x in heads)
    ):
        heads = [heads]
    if isinstance(heads, (str, bytes)) or not isinstance(heads, Iterable):
        raise TypeError(
            "heads should be a list of (layer, head) tuples, "
            f"got {type(heads).__name__}"
        )
    out = []
    for item in heads:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(
                f"heads should be a list of (layer, head) tuples, got an item {item!r}"
            )
        out.append(check_head(model, *item))
    return out


def ablation_values(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    method: str = "mean",
    reference_tokens: Int[Tensor, "ref_batch ref_pos"] | None = None,
    generator: torch.Generator | None = None,
    per_position: bool = False,
) -> dict[int, Tensor | None]:
    """What replaces ``z`` of every head, per layer: the values the ablation hooks
    write.

    Returns ``{layer: value}`` with value None (zero ablation), ``(n_heads, d_head)``
    (mean over the reference batch and positions), ``(pos, n_heads, d_head)`` (mean with
    ``per_position=True``) or ``(batch, pos, n_heads, d_head)`` (resample: row ``i`` is
    another prompt's ``z``).

    Args:
        tokens: the prompts that will be ablated.
        method: one of `ABLATION_METHODS`.
        reference_tokens: the batch the mean or the resampled values come from;
            ``tokens`` if None (resample then gives each prompt the ``z`` of a
            *different* prompt of the batch, a random nonzero cyclic shift of the rows,
            so the batch needs at least 2 prompts).
        generator: the randomness of resampling; None means a fresh generator seeded 0
            (deterministic).
        per_position: for ``"mean"``, average over the batch only, one value per
            position.

    Raises:
        ValueError: an unknown method, or a reference whose length does not line up with
            ``tokens`` where it must (resample, per-position mean).
    """
    tokens = check_tokens(model, tokens)
    if method not in ABLATION_METHODS:
        raise ValueError(f"method should be one of {ABLATION_METHODS}, got {method!r}")
    spec = model_spec(model)
    if method == "zero":
        return {layer: None for layer in range(spec.n_layers)}
    reference = (
        tokens if reference_tokens is None else check_tokens(model, reference_tokens)
    )
    if (method == "resample" or per_position) and reference.shape[1] != tokens.shape[1]:
        raise ValueError(
            f"{method} ablation{' per position' if per_position else ''} takes values "
            "position by position, so reference_tokens should have the prompts' "
            f"length {tokens.shape[1]}, got {reference.shape[1]}"
        )
    names = [hook_name("z", layer) for layer in range(spec.n_layers)]
    with torch.no_grad():
        _, cache = run_with_cache(model, reference, names_filter=names)
    if method == "mean":
        dims = (0,) if per_position else (0, 1)
        return {
            layer: cache[names[layer]].mean(dim=dims) for layer in range(spec.n_layers)
        }
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    batch, n_ref = tokens.shape[0], reference.shape[0]
    if reference_tokens is None:
        if batch < 2:
            raise ValueError(
                "resample ablation without reference_tokens needs a batch of "
                "at least 2 prompts"
            )
        shift = int(torch.randint(1, batch, (), generator=generator))
        rows = (torch.arange(batch) + shift) % batch
    else:
        rows = torch.randint(0, n_ref, (batch,), generator=generator)
    return {layer: cache[names[layer]][rows] for layer in range(spec.n_layers)}


def _ablation_hooks(
    heads: list[tuple[int, int]], values: dict[int, Tensor | None]
) -> list[tuple[str, Any]]:
    """One ``hook_z`` hook per layer that replaces the listed heads' ``z`` by
    ``values[layer]``.
    """
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def make(layer: int, heads_here: list[int]) -> Any:
        value = values[layer]

        def hook(z: Tensor, hook: Any) -> Tensor:
            z = z.clone()
            z[..., heads_here, :] = (
                0.0 if value is None else value[..., heads_here, :].to(z.dtype)
            )
            return z

        return hook

    return [
        (hook_name("z", layer), make(layer, hs))
        for layer, hs in sorted(by_layer.items())
    ]


def ablate_heads(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    heads: Iterable[tuple[int, int]] | tuple[int, int],
    method: str = "zero",
    reference_tokens: Int[Tensor, "ref_batch ref_pos"] | None = None,
    generator: torch.Generator | None = None,
    per_position: bool = False,
) -> Float[Tensor, "batch pos d_vocab"]:
    """The logits on ``tokens`` with every head in ``heads`` ablated at once.

    Args:
        model: our `GPT` or a TransformerLens bridge.
        tokens: ``(batch, pos)`` prompts.
        heads: ``(layer, head)`` tuples (a single tuple is accepted too).
        method, reference_tokens, generator, per_position: see `ablation_values`.

    Raises:
        ValueError: a head out of range, an unknown method, or a mismatched reference.
    """
    heads = _check_heads(model, heads)
    values = ablation_values(
        model, tokens, method, reference_tokens, generator, per_position
    )
    return run_with_hooks(model, tokens, _ablation_hooks(heads, values))


def head_ablation_scores(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    method: str = "zero",
    reference_tokens: Int[Tensor, "ref_batch ref_pos"] | None = None,
    generator: torch.Generator | None = None,
    per_position: bool = False,
) -> Float[Tensor, "n_layers n_heads"]:
    """``metric(ablated) - metric(clean)`` for each head ablated alone, as an
    ``(n_layers, n_heads)`` table.

    The ablation values are computed once (one resampling draw shared by every head).
    With a loss as the metric a positive entry is a head the model needs; with a logit
    difference, a negative one.

    Args:
        metric: ``fn(logits) -> scalar tensor``.
        method, reference_tokens, generator, per_position: see `ablation_values`.

    Raises:
        TypeError, ValueError: the metric does not return a scalar tensor.
    """
    spec = model_spec(model)
    tokens = check_tokens(model, tokens)
    values = ablation_values(
        model, tokens, method, reference_tokens, generator, per_position
    )
    with torch.no_grad():
        clean = check_scalar_metric(metric(run_with_hooks(model, tokens, [])))
        scores = torch.zeros(spec.n_layers, spec.n_heads, dtype=clean.dtype)
        for layer in range(spec.n_layers):
            for head in range(spec.n_heads):
                logits = run_with_hooks(
                    model, tokens, _ablation_hooks([(layer, head)], values)
                )
                scores[layer, head] = check_scalar_metric(metric(logits)) - clean
    return scores
