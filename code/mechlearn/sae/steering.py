"""Steering with a latent, ablating a latent, and attribution patching over every latent.

An SAE at a hook point of a model writes the activation there as a sum of latent directions,
``x = b_dec + sum_i f_i(x) W_dec[i] + e(x)``, where ``e(x) = x - x̂(x)`` is what the SAE misses
(its *error term*). Each term is something we can intervene on (ARENA 1.3.3, "Finding latents
for features" and "Feature steering"):

* **Steering** (`steering_hook`, `steer_with_latent`, `generate_with_steering`): add
  ``coefficient * W_dec[i]`` to the activation, at every position or at chosen ones, as if
  latent ``i`` fired ``coefficient`` more strongly than it does (Templeton et al. 2024's
  "feature steering", Golden Gate Claude; ARENA's ``steering_hook``). Steering text generation
  is the same hook left attached while `mechlearn.gpt.sampling.generate` runs.
* **Ablation** (`ablation_hook`, `ablate_latent`): splice the SAE in *with its error term kept*,
  ``x' = x̂(f') + (x - x̂(f))``, where ``f'`` is ``f`` with the chosen latents zeroed. The error
  term matters: without it the splice itself changes the model (the SAE's reconstruction is not
  perfect, which costs loss on its own), so every "effect of ablating latent i" would be measured
  on a different model from the clean one and would mix latent i's contribution with the SAE's
  reconstruction error. With it, zeroing nothing gives the clean forward pass exactly, and
  zeroing latent ``i`` moves the activation by exactly ``-f_i W_dec[i]`` (the decoder is affine),
  so the change in the metric is latent i's contribution and nothing else. (ARENA splices without
  the error term; SAELens's ``use_error_term=True`` is this version.)
* **Ablation effects** (`latent_ablation_effects`): the real effect on a scalar metric of
  ablating each latent, one at a time. Latents that never fire at the ablated positions have
  effect exactly 0 and are not run; the rest run many at once, copy ``c`` of the batch carrying
  its own ablated latent, as `mechlearn.interp.patching.patch_sites` does for activation patching.
* **Attribution patching** (`latent_attribution`; Nanda 2023, "Attribution patching: activation
  patching at industrial scale"; Syed et al. 2023; Marks et al. 2024 use it for SAE latents):
  the first-order Taylor expansion of that ablation. Zeroing ``f_i`` changes it by ``-f_i``, so
  ``metric(ablated) - metric(clean) ≈ -f_i · ∂metric/∂f_i``, summed over the ablated positions.
  One forward and one backward pass give the estimate for every latent at once, instead of one
  forward pass per latent. The estimate is exact when the path from the latents to the metric
  is linear (for example a linear metric of the logits read straight after the final LayerNorm's
  normalisation), and elsewhere a map of where to look whose errors grow with how far the
  ablation moves a saturating nonlinearity (LayerNorm, softmax, GELU).

Every function takes any model `mechlearn.interp.core` accepts (our `GPT` or a TransformerLens
bridge), a hook name whose activations are ``(batch, pos, d_in)``, and an SAE from
`mechlearn.sae` (a `mechlearn.sae.base.SAE`: ``encode``, ``decode``, ``W_dec (d_sae, d_in)``). The metric convention is `mechlearn.interp.core.Metric`: ``metric(logits) -> scalar``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.gpt.hooks import HookFn
from mechlearn.gpt.model import GPT
from mechlearn.gpt.sampling import generate
from mechlearn.interp.core import Metric, check_hook_name, check_scalar_metric, check_tokens, run_with_hooks
from mechlearn.sae.base import SAE

__all__ = [
    "Positions", "steering_hook", "steer_with_latent", "generate_with_steering", "ablation_hook",
    "ablate_latent", "latent_ablation_effects", "latent_attribution",
]

Positions = int | Sequence[int] | None
"""Sequence positions to intervene at: None for every position, an index, or a list of indices
(negative indices count from the end, as in Python)."""

_ROWS_PER_FORWARD = 8192  # latent_ablation_effects: about this many (copy x batch x pos) rows per forward


# -- argument checks ----------------------------------------------------------------------------


def _check_sae(sae: Any) -> None:
    if not isinstance(sae, SAE):
        raise TypeError(f"sae should be an SAE from mechlearn.sae (a mechlearn.sae.base.SAE), got {type(sae).__name__}")


def _check_latents(sae: Any, latents: Any) -> list[int]:
    many = latents if isinstance(latents, Sequence) and not isinstance(latents, str) else [latents]
    for latent in many:
        if isinstance(latent, bool) or not isinstance(latent, int) or not 0 <= latent < sae.d_sae:
            raise ValueError(f"a latent should be an int in [0, d_sae={sae.d_sae}), got {latent!r}")
    return list(many)


def _check_coefficient(coefficient: Any) -> float:
    if isinstance(coefficient, bool) or not isinstance(coefficient, int | float) or not math.isfinite(coefficient):
        raise ValueError(f"the steering coefficient should be a finite number, got {coefficient!r}")
    return float(coefficient)


def _check_positions(positions: Any) -> list[int] | None:
    if positions is None:
        return None
    many = positions if isinstance(positions, Sequence) and not isinstance(positions, str) else [positions]
    if not many or any(isinstance(p, bool) or not isinstance(p, int) for p in many):
        raise ValueError(f"positions should be None, an int or a non-empty list of ints, got {positions!r}")
    return list(many)


def _position_mask(positions: list[int] | None, n_pos: int, act: Tensor) -> Tensor:
    """``(pos, 1)`` ones at the chosen positions, zeros elsewhere, in ``act``'s dtype."""
    if positions is None:
        return torch.ones(n_pos, 1, dtype=act.dtype)
    bad = [p for p in positions if not -n_pos <= p < n_pos]
    if bad:
        raise ValueError(f"positions {bad} are out of range for sequences of length {n_pos}")
    mask = torch.zeros(n_pos, 1, dtype=act.dtype)
    mask[positions] = 1.0
    return mask


def _check_activation(act: Tensor, sae: Any, name: str) -> None:
    if act.ndim != 3 or act.shape[-1] != sae.d_in:
        raise ValueError(
            f"the SAE reads activations of width d_in={sae.d_in}, but hook {name!r} gives shape "
            f"{tuple(act.shape)}; expected (batch, pos, {sae.d_in}): use an SAE trained at this hook"
        )
    if act.dtype != sae.W_dec.dtype:
        raise TypeError(
            f"the SAE is {sae.W_dec.dtype} but the activations at {name!r} are {act.dtype}: "
            "convert one of them (e.g. sae.double() for a float64 model)"
        )


def _checked(model: Any, sae: Any, tokens: Any, hook: str) -> Tensor:
    _check_sae(sae)
    check_hook_name(model, hook)
    return check_tokens(model, tokens)


def _checked_metric(metric: Any) -> None:
    if not callable(metric):
        raise TypeError(f"metric should be callable as metric(logits) -> scalar tensor, got {type(metric).__name__}")


# -- steering -----------------------------------------------------------------------------------


def steering_hook(
    sae: SAE, latent: int, coefficient: float | int, positions: Positions = None
) -> HookFn:
    """A hook that adds ``coefficient * sae.W_dec[latent]`` at ``positions``.

    As ARENA 1.3.3's ``steering_hook``: the latent's decoder direction, scaled by
    how strongly we pretend it fires, added to the ``(batch, pos, d_in)`` activation.

    Raises:
        ValueError: a latent outside ``[0, d_sae)``, a non-finite coefficient, bad
            positions; when the hook runs, activations of the wrong width.
        TypeError: ``sae`` is not an SAE; when the hook runs, activations of another
            dtype than the SAE's.
    """
    _check_sae(sae)
    (latent,) = _check_latents(sae, latent)
    coefficient = _check_coefficient(coefficient)
    positions = _check_positions(positions)

    def steer(act: Tensor, hook: Any) -> Tensor:
        _check_activation(act, sae, hook.name)
        direction = sae.W_dec[latent].detach()
        if positions is None:
            return act + coefficient * direction
        mask = _position_mask(positions, act.shape[1], act)  # (pos, 1)
        return act + coefficient * mask * direction

    return steer


def steer_with_latent(
    model: Any,
    sae: SAE,
    tokens: Int[Tensor, "batch pos"],
    latent: int,
    coefficient: float | int,
    hook: str,
    positions: Positions = None,
) -> Float[Tensor, "batch pos d_vocab"]:
    """The logits with ``coefficient * W_dec[latent]`` added at ``hook`` (every position, or ``positions``).

    Raises:
        KeyError: the model has no hook point ``hook``.
        ValueError: see `steering_hook`; bad tokens.
        TypeError: ``sae`` is not an SAE.
    """
    tokens = _checked(model, sae, tokens, hook)
    return run_with_hooks(model, tokens, [(hook, steering_hook(sae, latent, coefficient, positions))])


def generate_with_steering(
    model: GPT,
    sae: SAE,
    tokens: Int[Tensor, "batch pos"],
    latent: int,
    coefficient: float | int,
    hook: str,
    max_new_tokens: int,
    *,
    temperature: float | int = 0.0,
    top_k: int | None = None,
    frequency_penalty: float | int = 0.0,
    generator: torch.Generator | None = None,
) -> Int[Tensor, "batch new_pos"]:
    """Continue ``tokens`` with the steering hook attached at every position: prompt plus continuation.

    `mechlearn.gpt.sampling.generate` runs with the hook of `steering_hook` attached, so every
    position it computes, prompt and new tokens alike, is steered (with the KV cache each new
    position is computed, and steered, once). ``temperature=0`` is greedy decoding; ARENA samples
    at temperature 0.5 with a frequency penalty.

    Raises:
        TypeError: ``model`` is not our `GPT` (generation uses its KV cache).
        KeyError, ValueError: as `steer_with_latent` and `mechlearn.gpt.sampling.generate`.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"generate_with_steering needs a mechlearn GPT (it uses its KV cache), got {type(model).__name__}")
    tokens = _checked(model, sae, tokens, hook)
    with model.hooks([(hook, steering_hook(sae, latent, coefficient))]):
        return generate(model, tokens, max_new_tokens, temperature=float(temperature), top_k=top_k,
                        frequency_penalty=float(frequency_penalty), generator=generator)


# -- ablation -----------------------------------------------------------------------------------


def ablation_hook(
    sae: SAE,
    latents: int | Sequence[int],
    positions: Positions = None,
    *,
    error_term: bool = True,
) -> HookFn:
    """A hook that splices the SAE in with ``latents`` zeroed at ``positions``.

    With ``error_term=True`` it returns ``x + (x̂(f') - x̂(f))``, which is
    ``x̂(f') + (x - x̂(f))`` written so that zeroing nothing returns ``x`` bit for
    bit: the only change to the forward pass is the zeroed latents' contribution.
    With ``error_term=False`` it returns ``x̂(f')``, the reconstruction alone
    (ARENA's splice), which changes the model even when nothing is zeroed.

    Raises:
        ValueError: a latent outside ``[0, d_sae)``, bad positions; when the hook
            runs, activations of the wrong width.
        TypeError: ``sae`` is not an SAE; when the hook runs, activations of another
            dtype than the SAE's.
    """
    _check_sae(sae)
    latents = _check_latents(sae, latents)
    positions = _check_positions(positions)

    def ablate(act: Tensor, hook: Any) -> Tensor:
        _check_activation(act, sae, hook.name)
        f = sae.encode(act)
        keep = torch.ones(act.shape[1], sae.d_sae, dtype=f.dtype)  # (pos, d_sae)
        keep[:, latents] = 1.0 - _position_mask(positions, act.shape[1], f)
        ablated = sae.decode(f * keep)
        if not error_term:
            return ablated
        return act + (ablated - sae.decode(f))

    return ablate


def ablate_latent(
    model: Any,
    sae: SAE,
    tokens: Int[Tensor, "batch pos"],
    latent: int | Sequence[int],
    hook: str,
    positions: Positions = None,
    *,
    error_term: bool = True,
) -> Float[Tensor, "batch pos d_vocab"]:
    """The logits with the SAE spliced in at ``hook`` and ``latent`` (one or several) zeroed.

    See `ablation_hook` for why the error term is kept by default: ``ablate_latent(..., latent=[])``
    is then exactly the clean forward pass.

    Raises:
        KeyError: the model has no hook point ``hook``.
        ValueError: see `ablation_hook`; bad tokens.
        TypeError: ``sae`` is not an SAE.
    """
    tokens = _checked(model, sae, tokens, hook)
    return run_with_hooks(model, tokens, [(hook, ablation_hook(sae, latent, positions, error_term=error_term))])


def latent_ablation_effects(
    model: Any,
    sae: SAE,
    tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    hook: str,
    positions: Positions = None,
    *,
    latents: Sequence[int] | None = None,
    copies_per_forward: int | None = None,
) -> Float[Tensor, " d_sae"]:
    """``metric(ablated) - metric(clean)``, each latent zeroed alone: ``(d_sae,)``.

    Entry ``i`` is what `ablate_latent` with ``latent=i`` (error term kept) does to
    the metric. Only latents that fire somewhere at ``positions`` (and are in
    ``latents``, if given) are run: the rest have effect exactly 0. They run
    ``copies_per_forward`` at a time (by default about 8192 token rows per forward
    pass), copy ``c`` of the batch with its own latent ``l_c`` zeroed: the decoder
    is affine, so copy ``c``'s activation moves by ``-f_{l_c} W_dec[l_c]`` at the
    chosen positions. The metric is called on each copy's logits. On our `GPT` at a
    ``blocks.L.hook_resid_pre`` hook the copies start at block ``L``: what comes
    before the hook is the same for all of them and runs once.

    Raises:
        KeyError: the model has no hook point ``hook``.
        ValueError: bad latents or positions, a non-scalar metric, activations of
            the wrong width.
        TypeError: ``sae`` is not an SAE, ``metric`` is not callable.
    """
    tokens = _checked(model, sae, tokens, hook)
    _checked_metric(metric)
    positions = _check_positions(positions)
    every = list(range(sae.d_sae))
    chosen = _check_latents(sae, every if latents is None else list(latents))
    step = _copies_per_forward(copies_per_forward, tokens)
    found: dict[str, Tensor] = {}

    def read(act: Tensor, hook: Any) -> None:
        _check_activation(act, sae, hook.name)
        mask = _position_mask(positions, act.shape[1], act)
        found["x"], found["f"] = act, sae.encode(act) * mask  # f: 0 off the positions

    with torch.no_grad():
        logits = run_with_hooks(model, tokens, [(hook, read)])
    clean = check_scalar_metric(metric(logits), "metric")
    fires = found["f"].abs().sum(dim=(0, 1)) > 0
    todo = [i for i in chosen if fires[i]]
    effects = torch.zeros(sae.d_sae, dtype=clean.dtype)
    for start in range(0, len(todo), step):
        chunk = todo[start : start + step]
        values = _ablate_copies(model, sae, tokens, metric, hook, found, chunk)
        effects[chunk] = values - clean
    return effects


def _copies_per_forward(copies_per_forward: Any, tokens: Tensor) -> int:
    if copies_per_forward is None:
        return max(1, _ROWS_PER_FORWARD // tokens.numel())
    if isinstance(copies_per_forward, bool) or not isinstance(copies_per_forward, int) or copies_per_forward < 1:
        raise ValueError(f"copies_per_forward should be a positive int or None, got {copies_per_forward!r}")
    return copies_per_forward


def _start_block(model: Any, hook: str) -> int | None:
    """``L`` if ``hook`` is our GPT's ``blocks.L.hook_resid_pre``, where a forward pass can start; else None."""
    match = re.fullmatch(r"blocks\.(\d+)\.hook_resid_pre", hook)
    return int(match.group(1)) if isinstance(model, GPT) and match else None


def _ablate_copies(
    model: Any, sae: SAE, tokens: Tensor, metric: Metric, hook: str, found: dict[str, Tensor], chunk: list[int]
) -> Tensor:
    """The metric of ``len(chunk)`` copies of the batch, copy ``c`` with latent ``chunk[c]`` zeroed.

    ``found["x"]`` is the clean activation at ``hook`` and ``found["f"]`` its latents, zero
    outside the ablated positions.
    """
    x, f = found["x"], found["f"]
    n, batch = len(chunk), tokens.shape[0]
    delta = torch.einsum("bpc,cd->cbpd", f[..., chunk], sae.W_dec[chunk])  # (copy, batch, pos, d_in)
    with torch.no_grad():
        layer = _start_block(model, hook)
        if layer is not None:  # start at block L: what comes before the hook is the same for every copy
            resid = (x - delta).flatten(0, 1)
            for block in model.blocks[layer:]:
                resid, _ = block(resid)
            logits = model.unembed(model.ln_final(resid))
        else:
            replace = lambda act, hook: (act.view_as(delta) - delta).view_as(act)  # noqa: E731
            logits = run_with_hooks(model, tokens.repeat(n, 1), [(hook, replace)])
        return torch.stack([
            check_scalar_metric(metric(part), "metric") for part in logits.view(n, batch, *logits.shape[1:])
        ])


# -- attribution patching -----------------------------------------------------------------------


def latent_attribution(
    model: Any,
    sae: SAE,
    tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    hook: str,
    positions: Positions = None,
) -> Float[Tensor, " d_sae"]:
    """Attribution patching's estimate of `latent_ablation_effects`, in one pass.

    Entry ``i`` is ``-sum over batch and positions of f_i · ∂metric/∂f_i``, the
    linear estimate of zeroing latent ``i`` at ``positions`` (Nanda 2023; Syed et
    al. 2023), from one forward and one backward pass. The SAE is spliced in as
    ``x + (x̂(f) - x̂(f).detach())``: the forward value is ``x`` exactly (the clean
    run, as the error term keeps it), and the gradient reaches ``f`` through the
    decoder, ``∂metric/∂f_i = W_dec[i] · ∂metric/∂x``. It is taken with
    ``torch.autograd.grad``, so no parameter's ``.grad`` changes.

    Raises:
        KeyError: the model has no hook point ``hook``.
        ValueError: bad positions, a non-scalar metric, activations of the wrong
            width.
        TypeError: ``sae`` is not an SAE, ``metric`` is not callable.
    """
    tokens = _checked(model, sae, tokens, hook)
    _checked_metric(metric)
    positions = _check_positions(positions)
    found: dict[str, Tensor] = {}

    def splice(act: Tensor, hook: Any) -> Tensor:
        _check_activation(act, sae, hook.name)
        f = sae.encode(act.detach()).detach().requires_grad_(True)
        found["f"] = f
        x_hat = sae.decode(f)
        return act + (x_hat - x_hat.detach())  # the value is act bit for bit

    with torch.enable_grad():
        logits = run_with_hooks(model, tokens, [(hook, splice)])
        value = check_scalar_metric(metric(logits), "metric")
        (grad,) = torch.autograd.grad(value, [found["f"]], allow_unused=True)
    f = found["f"].detach()
    if grad is None:  # the metric does not depend on this hook
        return torch.zeros(sae.d_sae, dtype=f.dtype)
    mask = _position_mask(positions, f.shape[1], f)  # (pos, 1)
    return -(f * grad * mask).sum(dim=(0, 1))
