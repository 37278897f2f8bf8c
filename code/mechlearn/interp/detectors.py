"""Head detectors: how much of each head's attention sits where a known head type puts it.

A head's attention pattern ``A[q, k]`` (query position ``q``, key position ``k``, rows summing to 1)
is a matrix per input. Some heads put nearly all of it in one place, and the place names the head:

* a *previous-token* head attends from ``q`` to ``q - 1`` (the sub-diagonal);
* a *current-token* head attends from ``q`` to itself (the diagonal);
* a *first-token* head attends to position 0, a resting place when there is nothing to do;
* an *induction* head, on a sequence whose second half repeats its first half (length ``h``),
  attends from ``q`` in the second half to ``q - h + 1``: the token *after* the earlier copy of the
  current token, whose value it then copies (Elhage et al. 2021; Olsson et al. 2022).

Each score is the mean of the pattern over those entries, averaged over the batch: a number in
``[0, 1]`` per head, returned as a ``(n_layers, n_heads)`` table (ARENA 1.2, "Finding induction
heads": ``current_attn_detector``, ``prev_attn_detector``, ``first_attn_detector``,
``induction_attn_detector``, which threshold the same means). `heads_above` turns a table into the
list of ``(layer, head)`` pairs above a threshold.

The scores work because attention is a probability distribution per query: the mean over a
diagonal is the share of attention that the head spends on the positions the hypothesis names, so
a score near 1 means the hypothesis describes the head almost completely, and a head that spreads
its attention uniformly over ``n`` keys scores about ``1/n``.

TransformerLens's ``head_detector.detect_head`` with ``error_measure="mul"`` divides the same sum by
*all* query rows instead of the rows that have an entry (it counts row 0 for the previous-token
head, and the first half for the induction head): its score is ours times ``(n - 1) / n`` and
``h / n`` respectively (tested).
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.interp.core import check_tokens, hook_name, model_spec, run_with_cache

__all__ = [
    "attention_patterns", "previous_token_scores", "current_token_scores", "first_token_scores",
    "induction_scores", "repeat_length", "heads_above",
]


def attention_patterns(model: Any, tokens: Int[Tensor, "*batch pos"]) -> Float[Tensor, "n_seq n_layers n_heads pos pos"]:
    """Every head's attention pattern on ``tokens``, stacked over layers (from ``blocks.L.attn.hook_pattern``).

    Raises:
        TypeError, ValueError: ``tokens`` are not ``(batch, pos)`` ids the model accepts.
    """
    return _patterns(model, tokens)


def _patterns(model: Any, tokens: Any) -> Tensor:
    tokens = check_tokens(model, tokens)
    names = [hook_name("pattern", layer) for layer in range(model_spec(model).n_layers)]
    with torch.no_grad():
        _, cache = run_with_cache(model, tokens, names_filter=names)
    return torch.stack([cache[name] for name in names], dim=1)


def _diagonal_mean(patterns: Tensor, offset: int) -> Tensor:
    """Mean over batch and query positions of ``A[q, q + offset]`` (``offset <= 0``)."""
    return patterns.diagonal(offset=offset, dim1=-2, dim2=-1).mean(dim=(0, -1))


def previous_token_scores(model: Any, tokens: Int[Tensor, "*batch pos"]) -> Float[Tensor, "n_layers n_heads"]:
    """Mean attention from each position ``q >= 1`` to ``q - 1``, per head.

    Raises:
        ValueError: fewer than 2 positions (no query has a previous token), or bad ``tokens``.
    """
    patterns = _patterns(model, tokens)
    if patterns.shape[-1] < 2:
        raise ValueError("previous_token_scores needs sequences of at least 2 tokens (position 0 has no previous token)")
    return _diagonal_mean(patterns, -1)


def current_token_scores(model: Any, tokens: Int[Tensor, "*batch pos"]) -> Float[Tensor, "n_layers n_heads"]:
    """Mean attention from each position to itself, per head (position 0 included: it can only attend to itself).

    Raises:
        TypeError, ValueError: ``tokens`` are not ``(batch, pos)`` ids the model accepts.
    """
    return _diagonal_mean(_patterns(model, tokens), 0)


def first_token_scores(model: Any, tokens: Int[Tensor, "*batch pos"]) -> Float[Tensor, "n_layers n_heads"]:
    """Mean attention from each position to position 0, per head (position 0 included, as ARENA's detector).

    Raises:
        TypeError, ValueError: ``tokens`` are not ``(batch, pos)`` ids the model accepts.
    """
    return _patterns(model, tokens)[..., 0].mean(dim=(0, -1))


def repeat_length(tokens: Int[Tensor, "*batch pos"]) -> int:
    """The length ``h`` of the repeated half of ``tokens``: the last ``2h`` tokens are a block of ``h`` twice.

    ``h = pos // 2``; an odd length allows one leading token before the two copies (ARENA prepends a
    BOS token to its repeated sequences).

    Raises:
        ValueError: fewer than 2 tokens, or the two halves differ in some row.
    """
    return _repeat_length(tokens)


def _repeat_length(tokens: Any) -> int:
    if not isinstance(tokens, Tensor):
        raise TypeError(f"tokens should be a torch.Tensor of token ids, got {type(tokens).__name__}")
    if tokens.ndim == 1:
        tokens = tokens.unsqueeze(0)
    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise ValueError(f"repeated sequences should have shape (batch, pos) with pos >= 2, got {tuple(tokens.shape)}")
    h = tokens.shape[1] // 2
    first, second = tokens[:, -2 * h : -h], tokens[:, -h:]
    if not torch.equal(first, second):
        bad = int((first != second).any(dim=1).nonzero()[0])
        raise ValueError(
            f"induction scores need repeated sequences (the last {h} tokens equal the {h} before them, as "
            f"repeated_random_tokens makes), but row {bad} differs"
        )
    return h


def induction_scores(
    model: Any, tokens: Int[Tensor, "*batch pos"], shift: int = 0
) -> Float[Tensor, "n_layers n_heads"]:
    """Mean attention from each position ``q`` of the second copy to ``q - h + 1``, per head.

    ``tokens`` are repeated sequences (`repeat_length` checks): the earlier copy of token ``q`` sits
    at ``q - h``, and an induction head attends to the token after it, ``q - h + 1``, to predict
    that the sequence continues the same way. ARENA's ``induction_attn_detector`` averages the
    same diagonal (its mean also takes in the one or two entries just before the second copy).

    Args:
        shift: score the stripe ``q - h + 1 + shift`` instead (0 is the induction score). A circuit
            can solve a copying task with its stripe a few positions off (matching the token two
            back, say); ``shift`` finds it. Queries whose key would fall before position 0 are left
            out of the mean.

    Raises:
        ValueError: ``tokens`` are not repeated sequences or not ids the model accepts, or
            ``|shift| >= h``.
    """
    tokens = check_tokens(model, tokens)
    h = _repeat_length(tokens)
    if isinstance(shift, bool) or not isinstance(shift, int) or abs(shift) >= h:
        raise ValueError(f"shift should be an int with |shift| < {h} (the repeated block's length), got {shift!r}")
    patterns = _patterns(model, tokens)
    # the diagonal q - k = h - 1 - shift; its last h entries (or all, if fewer) are the second copy's queries
    second_copy = patterns.diagonal(offset=-(h - 1 - shift), dim1=-2, dim2=-1)[..., -h:]
    return second_copy.mean(dim=(0, -1))


def heads_above(scores: Float[Tensor, "n_layers n_heads"], threshold: float | int) -> list[tuple[int, int]]:
    """The ``(layer, head)`` pairs whose score exceeds ``threshold``, in layer then head order.

    Raises:
        ValueError: ``scores`` is not a 2-D table, or ``threshold`` is not a finite number.
    """
    if not isinstance(scores, Tensor) or scores.ndim != 2:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"scores should be a (n_layers, n_heads) tensor, got {shape}")
    if isinstance(threshold, bool) or not torch.isfinite(torch.tensor(float(threshold))):
        raise ValueError(f"threshold should be a finite number, got {threshold!r}")
    return [(int(layer), int(head)) for layer, head in (scores > threshold).nonzero().tolist()]
