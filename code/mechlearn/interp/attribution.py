"""Logit difference and direct logit attribution (DLA).

The **logit difference** ``logit[correct] - logit[wrong]`` is the metric of choice for a two-way
decision such as IOI ("... John gave a drink to" → Mary rather than John; Wang et al., 2022): it
is the log-odds between the two answers, unaffected by what the model does with the rest of the
vocabulary, and it is *linear* in the final residual stream once the final LayerNorm's scale is
frozen. That linearity is what direct logit attribution uses. With the decomposition
``resid_final = sum_i c_i`` (`mechlearn.interp.decompose`) and the final LayerNorm
``LN(x) = (x - mean x) / scale * w + b``,

    logit_diff = sum_i  ((c_i - mean c_i) / scale) · (w ⊙ d)   +   b · d   +   (b_U[correct] - b_U[wrong])

where ``d = W_U[:, correct] - W_U[:, wrong]`` (`logit_diff_directions`). Term ``i`` of the sum is
component ``i``'s **direct** contribution: what it adds to the logit difference through the
residual stream straight to the unembedding, not through later layers (those indirect effects are
what ablation and patching measure). The two remaining terms belong to no component; `dla_bias_terms`
names them, and the tests check that the sum over components plus these two terms is the logit
difference to float64 precision.

TransformerLens's ``cache.logit_attrs`` computes the same dot product with ``d`` alone, assuming the
LayerNorm weight was folded into ``W_U`` (``fold_ln=True``); our models are not folded, so we
multiply ``w`` into the direction instead. The tests compare the two on a model whose final
LayerNorm is folded by hand.

Follows ARENA 1.2 ("direct logit attribution") and 1.4.1 ("logit difference", "direct logit
attribution"); Elhage et al. (2021) for the residual stream as a sum; Wang et al. (2022) for IOI.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.interp.core import model_spec, weights
from mechlearn.interp.decompose import PosSlice, apply_ln_to_stack

__all__ = ["logit_diff", "logit_diff_directions", "final_ln_params", "dla_bias_terms", "direct_logit_attribution"]

Answers = int | Int[Tensor, ""] | Int[Tensor, " batch"]
"""Answer token ids: one id for every prompt, or one per prompt."""


def _answers(ids: Any, batch: int, d_vocab: int, what: str) -> Tensor:
    """``ids`` as a ``(batch,)`` long tensor of ids in ``[0, d_vocab)``."""
    if isinstance(ids, bool) or not isinstance(ids, (int, Tensor)):
        raise TypeError(f"{what} should be a token id (int) or a (batch,) tensor of ids, got {type(ids).__name__}")
    ids = torch.as_tensor(ids)
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"{what} should hold integer token ids, got dtype {ids.dtype}")
    if ids.ndim == 0:
        ids = ids.expand(batch)
    if ids.ndim != 1 or ids.shape[0] != batch:
        raise ValueError(f"{what} should be one id or one per prompt (shape ({batch},)), got shape {tuple(ids.shape)}")
    if int(ids.min()) < 0 or int(ids.max()) >= d_vocab:
        raise ValueError(f"{what} ids should lie in [0, d_vocab={d_vocab}), got [{int(ids.min())}, {int(ids.max())}]")
    return ids.long()


def _answer_pair(model: Any, correct: Any, wrong: Any) -> tuple[Tensor, Tensor]:
    """Both answers as ``(batch,)`` ids; the batch is the length of whichever is a 1-d tensor (else 1)."""
    d_vocab = model_spec(model).d_vocab
    lengths = {int(x.shape[0]) for x in (correct, wrong) if isinstance(x, Tensor) and x.ndim == 1}
    if len(lengths) > 1:
        raise ValueError(f"correct and wrong should have the same length (one id per prompt), got {sorted(lengths)}")
    batch = lengths.pop() if lengths else 1
    return _answers(correct, batch, d_vocab, "correct"), _answers(wrong, batch, d_vocab, "wrong")


def logit_diff(
    logits: Float[Tensor, "batch pos d_vocab"],
    correct: Answers,
    wrong: Answers,
    pos: int = -1,
    per_prompt: bool = False,
) -> Float[Tensor, ""] | Float[Tensor, " batch"]:
    """``logit[correct] - logit[wrong]`` at position ``pos``, averaged over the batch (ARENA's ``logits_to_ave_logit_diff``).

    Args:
        logits: ``(batch, pos, d_vocab)``.
        correct, wrong: one token id for every prompt, or a ``(batch,)`` tensor of ids.
        pos: the position whose prediction is scored (the last by default).
        per_prompt: return the ``(batch,)`` differences instead of their mean.

    Raises:
        ValueError: logits not 3-d, ``pos`` out of range, or ids of the wrong shape or range.
    """
    if not isinstance(logits, Tensor) or logits.ndim != 3:
        raise ValueError(f"logits should be a (batch, pos, d_vocab) tensor, got {getattr(logits, 'shape', logits)!r}")
    batch, n_pos, d_vocab = logits.shape
    if isinstance(pos, bool) or not isinstance(pos, int) or not -n_pos <= pos < n_pos:
        raise ValueError(f"pos should be an int in [-{n_pos}, {n_pos}) for logits with {n_pos} positions, got {pos!r}")
    correct = _answers(correct, batch, d_vocab, "correct")
    wrong = _answers(wrong, batch, d_vocab, "wrong")
    rows = logits[torch.arange(batch), pos]
    diff = rows.gather(-1, correct[:, None]).squeeze(-1) - rows.gather(-1, wrong[:, None]).squeeze(-1)
    return diff if per_prompt else diff.mean()


def final_ln_params(model: Any) -> tuple[Float[Tensor, " d_model"], Float[Tensor, " d_model"]]:
    """The final LayerNorm's weight ``w`` and bias ``b`` (our ``ln_final.w/b``, a bridge's ``ln_final.weight/bias``)."""
    model_spec(model)
    ln = model.ln_final
    w = ln.w if isinstance(getattr(ln, "w", None), Tensor) else ln.weight
    b = ln.b if isinstance(getattr(ln, "b", None), Tensor) else ln.bias
    return w, b


def logit_diff_directions(
    model: Any, correct: Answers, wrong: Answers, fold_ln: bool = False
) -> Float[Tensor, "batch d_model"]:
    """The residual directions ``W_U[:, correct] - W_U[:, wrong]``, one row per prompt.

    Args:
        correct, wrong: token ids (one for all prompts, or one per prompt; the batch is their length).
        fold_ln: multiply in the final LayerNorm's weight ``w``, giving the direction in the
            *normalised* stream (centred, divided by the scale) whose dot product is the logit
            difference, less the bias terms of `dla_bias_terms`.
    """
    correct, wrong = _answer_pair(model, correct, wrong)
    W_U = weights(model).W_U
    directions = (W_U[:, correct] - W_U[:, wrong]).T
    if fold_ln:
        directions = directions * final_ln_params(model)[0]
    return directions


def dla_bias_terms(model: Any, correct: Answers, wrong: Answers) -> dict[str, Float[Tensor, " batch"]]:
    """The parts of the logit difference that belong to no component, per prompt.

    ``{"ln_final.b": b · (W_U[:, c] - W_U[:, w]), "b_U": b_U[c] - b_U[w]}``: the final LayerNorm's bias
    and the unembedding bias. Direct logit attribution over every component plus these two terms is
    the logit difference exactly (given the cached LayerNorm scale).
    """
    correct, wrong = _answer_pair(model, correct, wrong)
    d = logit_diff_directions(model, correct, wrong)
    b_U = weights(model).b_U
    return {"ln_final.b": d @ final_ln_params(model)[1], "b_U": b_U[correct] - b_U[wrong]}


def direct_logit_attribution(
    model: Any,
    cache: Any,
    stack: Float[Tensor, "component batch d_model"],
    correct: Answers,
    wrong: Answers,
    pos_slice: PosSlice = -1,
    per_prompt: bool = False,
) -> Float[Tensor, " component"] | Float[Tensor, "component batch"]:
    """Each component's direct contribution to the logit difference (ARENA's ``residual_stack_to_logit_diff``).

    ``apply_ln_to_stack(stack) · (w ⊙ (W_U[:, correct] - W_U[:, wrong]))``, averaged over the batch.
    Summed over the full `mechlearn.interp.decompose.decompose_resid` stack and added to
    `dla_bias_terms`, it is the logit difference.

    Args:
        model: our `GPT` or a TransformerLens bridge.
        cache: the run's cache (holding ``ln_final.hook_scale``).
        stack: components at the scored position, ``(component, batch, d_model)``: e.g.
            ``decompose_resid(model, cache, pos_slice=-1)[0]`` or `stack_head_results` with the same slice.
        correct, wrong: answer token ids (one for all prompts, or one per prompt).
        pos_slice: the position ``stack`` was sliced to (an int), for the cached scale.
        per_prompt: return ``(component, batch)`` instead of the batch mean.

    Raises:
        ValueError: the stack does not line up with the batch (or with the cached scale).
    """
    if not isinstance(stack, Tensor) or stack.ndim != 3:
        raise ValueError(
            "stack should be (component, batch, d_model): slice it to the scored position, "
            f"e.g. decompose_resid(model, cache, pos_slice=-1); got {getattr(stack, 'shape', stack)!r}"
        )
    spec = model_spec(model)
    batch = stack.shape[1]
    directions = logit_diff_directions(
        model, _answers(correct, batch, spec.d_vocab, "correct"), _answers(wrong, batch, spec.d_vocab, "wrong"),
        fold_ln=True,
    )
    scaled = apply_ln_to_stack(model, cache, stack, pos_slice=pos_slice)
    attributions = (scaled * directions.to(scaled.dtype)).sum(dim=-1)
    return attributions if per_prompt else attributions.mean(dim=-1)
