"""Logit difference and direct logit attribution (DLA).

The **logit difference** ``logit[correct] - logit[wrong]`` is the metric of choice for a
two-way decision such as IOI ("... John gave a drink to" → Mary rather than John; Wang
et al., 2022): it is the log-odds between the two answers, unaffected by what the model
does with the rest of the vocabulary, and it is *linear* in the final residual stream
once the final LayerNorm's scale is frozen. That linearity is what direct logit
attribution uses. With the decomposition ``resid_final = sum_i c_i``
(`mechlearn.interp.decompose`) and the final LayerNorm
``LN(x) = (x - mean x) / scale * w + b``,

    logit_diff = sum_i ((c_i - mean c_i) / scale) · (w ⊙ d)
                 + b · d + (b_U[correct] - b_U[wrong])

where ``d = W_U[:, correct] - W_U[:, wrong]`` (`logit_diff_directions`). Term ``i`` of
the sum is component ``i``'s **direct** contribution: what it adds to the logit
difference through the residual stream straight to the unembedding, not through later
layers (those indirect effects are what ablation and patching measure). The two
remaining terms belong to no component; `dla_bias_terms` names them, and the tests check
that the sum over components plus these two terms is the logit difference to float64
precision. With no ``wrong`` answer the same split holds for the logit of the correct
token itself (``d = W_U[:, correct]``), which is how ARENA 1.2 attributes the next-token
prediction of an induction model, position by position.

TransformerLens's ``cache.logit_attrs`` computes the same dot product with ``d`` alone,
assuming the LayerNorm weight was folded into ``W_U`` (``fold_ln=True``); our models are
not folded, so we multiply ``w`` into the direction instead. The tests compare the two
on a model whose final LayerNorm is folded by hand.

Follows ARENA 1.2 ("direct logit attribution") and 1.4.1 ("logit difference", "direct
logit attribution"); Elhage et al. (2021) for the residual stream as a sum; Wang et al.
(2022) for IOI.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.interp.core import model_spec, weights
from mechlearn.interp.decompose import PosSlice, apply_ln_to_stack

__all__ = [
    "logit_diff",
    "logit_diff_directions",
    "final_ln_params",
    "dla_bias_terms",
    "direct_logit_attribution",
]

Answers = int | Int[Tensor, "*answers"]
"""Answer token ids: one id for every prompt, one per prompt ``(batch,)``, or one per
prompt and position ``(batch, pos)`` (e.g. ``tokens[:, 1:]``, the actual next tokens).
"""


def _answers(ids: Any, shape: tuple[int, ...], d_vocab: int, what: str) -> Tensor:
    """``ids`` as a long tensor of ``shape`` (a single id is broadcast) holding ids in
    ``[0, d_vocab)``.
    """
    if isinstance(ids, bool) or not isinstance(ids, (int, Tensor)):
        raise TypeError(
            f"{what} should be a token id (int) or a tensor of ids, "
            f"got {type(ids).__name__}"
        )
    ids = torch.as_tensor(ids)
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"{what} should hold integer token ids, got dtype {ids.dtype}")
    if ids.ndim == 0:
        ids = ids.expand(shape)
    if tuple(ids.shape) != tuple(shape):
        raise ValueError(
            f"{what} should be one id or one per prompt (shape {tuple(shape)}), "
            f"got shape {tuple(ids.shape)}"
        )
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= d_vocab):
        raise ValueError(
            f"{what} ids should lie in [0, d_vocab={d_vocab}), "
            f"got [{int(ids.min())}, {int(ids.max())}]"
        )
    return ids.long()


def _answer_pair(
    model: Any, correct: Any, wrong: Any, shape: tuple[int, ...] | None = None
) -> tuple[Tensor, Tensor | None]:
    """Both answers with one shape: ``shape`` if given, else that of whichever is a
    tensor with axes (else ``(1,)``).
    """
    d_vocab = model_spec(model).d_vocab
    if shape is None:
        shapes = {
            tuple(x.shape)
            for x in (correct, wrong)
            if isinstance(x, Tensor) and x.ndim > 0
        }
        if len(shapes) > 1:
            raise ValueError(
                "correct and wrong should have the same shape (one id per prompt), "
                f"got {sorted(shapes)}"
            )
        shape = shapes.pop() if shapes else (1,)
    return _answers(correct, shape, d_vocab, "correct"), (
        None if wrong is None else _answers(wrong, shape, d_vocab, "wrong")
    )


def logit_diff(
    logits: Float[Tensor, "batch pos d_vocab"],
    correct: Answers,
    wrong: Answers,
    pos: int = -1,
    per_prompt: bool = False,
) -> Float[Tensor, ""] | Float[Tensor, " batch"]:
    """``logit[correct] - logit[wrong]`` at position ``pos``, averaged over the batch
    (ARENA's ``logits_to_ave_logit_diff``).

    Args:
        logits: ``(batch, pos, d_vocab)``.
        correct, wrong: one token id for every prompt, or a ``(batch,)`` tensor of ids.
        pos: the position whose prediction is scored (the last by default).
        per_prompt: return the ``(batch,)`` differences instead of their mean.

    Raises:
        ValueError: logits not 3-d, ``pos`` out of range, or ids of the wrong shape or
            range.
    """
    if not isinstance(logits, Tensor) or logits.ndim != 3:
        raise ValueError(
            "logits should be a (batch, pos, d_vocab) tensor, "
            f"got {getattr(logits, 'shape', logits)!r}"
        )
    batch, n_pos, d_vocab = logits.shape
    if isinstance(pos, bool) or not isinstance(pos, int) or not -n_pos <= pos < n_pos:
        raise ValueError(
            f"pos should be an int in [-{n_pos}, {n_pos}) for logits with {n_pos} "
            f"positions, got {pos!r}"
        )
    correct = _answers(correct, (batch,), d_vocab, "correct")
    wrong = _answers(wrong, (batch,), d_vocab, "wrong")
    rows = logits[torch.arange(batch), pos]
    diff = rows.gather(-1, correct[:, None]).squeeze(-1) - rows.gather(
        -1, wrong[:, None]
    ).squeeze(-1)
    return diff if per_prompt else diff.mean()


def final_ln_params(
    model: Any,
) -> tuple[Float[Tensor, " d_model"], Float[Tensor, " d_model"]]:
    """The final LayerNorm's weight ``w`` and bias ``b`` (our ``ln_final.w/b``, a
    bridge's ``ln_final.weight/bias``).
    """
    model_spec(model)
    ln = model.ln_final
    w = ln.w if isinstance(getattr(ln, "w", None), Tensor) else ln.weight
    b = ln.b if isinstance(getattr(ln, "b", None), Tensor) else ln.bias
    return w, b


def logit_diff_directions(
    model: Any, correct: Answers, wrong: Answers | None = None, fold_ln: bool = False
) -> Float[Tensor, "*answers d_model"]:
    """The residual directions ``W_U[:, correct] - W_U[:, wrong]``, one per answer.

    Args:
        correct, wrong: token ids: one for all prompts, or a tensor of ids per prompt
            (``(batch,)``) or per prompt and position (``(batch, pos)``). With
            ``wrong=None`` the direction is ``W_U[:, correct]`` alone, which reads the
            correct token's logit (TransformerLens's ``tokens_to_residual_directions``).
        fold_ln: multiply in the final LayerNorm's weight ``w``, giving the direction in
            the *normalised* stream (centred, divided by the scale) whose dot product is
            the logit difference, less the bias terms of `dla_bias_terms`.

    Returns:
        ``(*answers_shape, d_model)``.
    """
    correct, wrong = _answer_pair(model, correct, wrong)
    W_U = weights(model).W_U
    directions = W_U.T[correct] if wrong is None else W_U.T[correct] - W_U.T[wrong]
    if fold_ln:
        directions = directions * final_ln_params(model)[0]
    return directions


def dla_bias_terms(
    model: Any, correct: Answers, wrong: Answers | None = None
) -> dict[str, Float[Tensor, "*answers"]]:
    """The parts of the logit difference (or, with ``wrong=None``, of the logit) that
    belong to no component.

    ``{"ln_final.b": b · d, "b_U": b_U[c] - b_U[w]}`` with ``d = W_U[:, c] - W_U[:,
    w]``: the final LayerNorm's bias and the unembedding bias (``b_U[c]`` alone when
    ``wrong`` is None). Direct logit attribution over every component plus these two
    terms is the logit difference exactly (given the cached LayerNorm scale).
    """
    correct, wrong = _answer_pair(model, correct, wrong)
    d = logit_diff_directions(model, correct, wrong)
    b_U = weights(model).b_U
    return {
        "ln_final.b": d @ final_ln_params(model)[1],
        "b_U": b_U[correct] - (0.0 if wrong is None else b_U[wrong]),
    }


def direct_logit_attribution(
    model: Any,
    cache: Any,
    stack: Float[Tensor, "component *batch d_model"],
    correct: Answers,
    wrong: Answers | None = None,
    pos_slice: PosSlice = -1,
    per_prompt: bool = False,
) -> Float[Tensor, " component"] | Float[Tensor, "component *batch"]:
    """Each component's direct contribution to the logit difference (ARENA's
    ``residual_stack_to_logit_diff``).

    ``apply_ln_to_stack(stack) · (w ⊙ (W_U[:, correct] - W_U[:, wrong]))``, averaged
    over the prompts (and positions). Summed over the full
    `mechlearn.interp.decompose.decompose_resid` stack and added to `dla_bias_terms`, it
    is the logit difference; with ``wrong=None``, the logit of ``correct``.

    Args:
        model: our `GPT` or a TransformerLens bridge.
        cache: the run's cache (holding ``ln_final.hook_scale``).
        stack: components sliced to the scored positions: ``(component, batch,
            d_model)`` for one position (``decompose_resid(model, cache,
            pos_slice=-1)[0]``, or `stack_head_results` with the same slice), or
            ``(component, batch, pos, d_model)`` for several.
        correct, wrong: answer ids, one for all, or shaped like the stack's middle axes
            (``(batch,)``, or ``(batch, pos)`` such as ``tokens[:, 1:]``).
        pos_slice: the positions ``stack`` was sliced to (``-1``, or ``slice(None,
            -1)``...), for the cached scale.
        per_prompt: return ``(component, *batch)`` instead of the mean over prompts and
            positions.

    Raises:
        ValueError: answers that do not line up with the stack, or a stack that does not
            line up with the cached scale.
    """
    if not isinstance(stack, Tensor) or stack.ndim < 3:
        raise ValueError(
            "stack should be (component, batch, d_model) or (component, batch, pos, "
            "d_model), sliced to the scored positions, e.g. "
            "decompose_resid(model, cache, pos_slice=-1); "
            f"got {getattr(stack, 'shape', stack)!r}"
        )
    correct, wrong = _answer_pair(model, correct, wrong, shape=tuple(stack.shape[1:-1]))
    directions = logit_diff_directions(model, correct, wrong, fold_ln=True)
    scaled = apply_ln_to_stack(model, cache, stack, pos_slice=pos_slice)
    attributions = (scaled * directions.to(scaled.dtype)).sum(dim=-1)
    return attributions if per_prompt else attributions.flatten(1).mean(dim=-1)
