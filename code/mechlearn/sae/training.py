"""The shared SAE training loop, dead-latent tracking and resampling (Bricken et al. 2023; ARENA 1.5.4).

One loop trains all four architectures (`make_sae` builds them by name). Each step:

1. draw a batch of activations and compute `SAEOutput.loss`;
2. backpropagate; if the architecture keeps unit-norm decoder rows, remove from each row's gradient
   its component along the row (`remove_parallel_decoder_grad`): that component only changes the
   row's length, which step 4 undoes, so leaving it in would waste the step and bias Adam's moments;
3. take an Adam step (optionally with a linear warmup and a linear decay of the learning rate);
4. renormalise the decoder rows (`SAE.normalize_decoder`), so the L1 penalty cannot be dodged by
   shrinking latents and growing decoder rows.

**Dead latents.** A latent that has not fired on any example of the last ``dead_window`` batches is
counted dead. Dead latents get no gradient through the ReLU (or gate, or top-k), so they stay dead.
Anthropic's remedy ("Towards Monosemanticity", appendix "Neuron resampling"; `resample_dead_latents`)
points each dead latent at an input the SAE reconstructs badly: draw inputs with probability
proportional to the square of their reconstruction error ``‖x − x̂‖²``; set the dead latent's decoder
row to the (centred) input, normalised; set its encoder column to the same direction scaled to 0.2
times the mean encoder norm of the alive latents (small, so the new latent's first contributions
do not disturb the reconstruction the alive latents already give) and its encoder bias to 0; and
reset Adam's moment estimates for exactly those entries, so stale momentum from the dead latent
does not throw the fresh one away.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from mechlearn.sae.base import SAE
from mechlearn.sae.metrics import fraction_variance_explained, l0

__all__ = [
    "ARCHITECTURES",
    "RESAMPLE_ENCODER_SCALE",
    "make_sae",
    "remove_parallel_decoder_grad",
    "resample_dead_latents",
    "train_sae",
]

ARCHITECTURES: dict[str, tuple[str, str]] = {
    "standard": ("mechlearn.sae.standard", "StandardSAE"),
    "gated": ("mechlearn.sae.gated", "GatedSAE"),
    "jumprelu": ("mechlearn.sae.jumprelu", "JumpReLUSAE"),
    "topk": ("mechlearn.sae.topk", "TopKSAE"),
}
"""Architecture name -> (module, class); `make_sae` imports the module on first use."""

RESAMPLE_ENCODER_SCALE = 0.2
"""A resampled latent's encoder norm, as a multiple of the alive latents' mean encoder norm (Anthropic)."""

Data = Tensor | Callable[[int, torch.Generator | None], Tensor]


def make_sae(architecture: str, d_in: int, d_sae: int, **kwargs: Any) -> SAE:
    """Build an SAE by architecture name: ``make_sae("topk", 128, 1024, k=16)``.

    ``make_sae(**sae.config())`` rebuilds an SAE of the same shape and hyperparameters.

    Raises:
        ValueError: ``architecture`` is not one of `ARCHITECTURES`.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown SAE architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}")
    module, name = ARCHITECTURES[architecture]
    return getattr(importlib.import_module(module), name)(d_in, d_sae, **kwargs)


@torch.no_grad()
def remove_parallel_decoder_grad(sae: SAE) -> None:
    """Subtract from each row of ``W_dec.grad`` its projection on that (unit-normalised) row."""
    if sae.W_dec.grad is None:
        return
    W_dec_unit = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    parallel = (sae.W_dec.grad * W_dec_unit).sum(-1, keepdim=True)  # (d_sae, 1)
    sae.W_dec.grad -= parallel * W_dec_unit


@torch.no_grad()
def resample_dead_latents(
    sae: SAE,
    x: Float[Tensor, "n d_in"],
    dead: Bool[Tensor, " d_sae"],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    encoder_scale: float | int = RESAMPLE_ENCODER_SCALE,
) -> int:
    """Re-initialise the ``dead`` latents from inputs the SAE reconstructs badly (Anthropic's method).

    Inputs ``x`` are drawn with replacement, with probability proportional to ``‖x − x̂‖⁴`` (the
    squared reconstruction loss); uniformly if every input is reconstructed exactly. For each dead
    latent ``i`` and its drawn input ``x``, with ``u = (x − b_dec) / ‖x − b_dec‖``:
    ``W_dec[i] = u``, ``W_enc[:, i] = encoder_scale · (mean alive ‖W_enc[:, j]‖) · u`` (mean 1 if no
    latent is alive), ``b_enc[i] = 0``, then `SAE.reset_latents` resets the architecture's own
    per-latent parameters; the Adam moments (``exp_avg``, ``exp_avg_sq``) of exactly those entries
    (and of the dead entries of every other ``(d_sae,)`` parameter) are zeroed. Alive latents are
    untouched.

    Returns:
        the number of latents resampled.
    """
    sae.check_input(x)
    if dead.shape != (sae.d_sae,) or dead.dtype != torch.bool:
        raise ValueError(f"dead must be a bool tensor of shape (d_sae={sae.d_sae},), "
                         f"got {dead.dtype} {tuple(dead.shape)}")
    n_dead = int(dead.sum())
    if n_dead == 0:
        return 0
    error = sae(x).reconstruction_error.double()
    weights = error.pow(2) if error.pow(2).sum() > 0 else torch.ones_like(error)
    picks = torch.multinomial(weights, n_dead, replacement=True, generator=generator)
    centred = x[picks] - sae.b_dec
    directions = centred / centred.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # (n_dead, d_in)
    alive_norms = sae.W_enc[:, ~dead].norm(dim=0)
    encoder_norm = alive_norms.mean() if alive_norms.numel() else torch.tensor(1.0)
    sae.W_dec[dead] = directions
    sae.W_enc[:, dead] = directions.T * encoder_scale * encoder_norm
    sae.b_enc[dead] = 0.0
    sae.reset_latents(dead)  # an architecture's own per-latent parameters (gated, JumpReLU)
    if optimizer is not None:
        own = [p for p in sae.parameters()  # other (d_sae,) parameters: r_mag, thresholds, ...
               if p.shape == (sae.d_sae,) and p is not sae.b_enc and p is not sae.b_dec]
        entries = [(sae.W_dec, dead), (sae.W_enc, (slice(None), dead)), (sae.b_enc, dead)]
        for param, index in entries + [(p, dead) for p in own]:
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in optimizer.state.get(param, {}):
                    optimizer.state[param][moment][index] = 0.0
    return n_dead


def _check_positive_int(value: Any, name: str, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


def _sampler(sae: SAE, data: Data) -> Callable[[int, torch.Generator | None], Tensor]:
    """A function (batch_size, generator) -> activations, for a tensor or a callable."""
    if callable(data) and not isinstance(data, Tensor):
        return data
    if not isinstance(data, Tensor) or data.ndim != 2:
        raise ValueError(f"data must be an activations tensor (n, d_in={sae.d_in}) or a callable "
                         f"(batch_size, generator) -> (batch, d_in); got {getattr(data, 'shape', type(data).__name__)}")
    sae.check_input(data)
    return lambda n, g: data[torch.randint(len(data), (n,), generator=g)]


def _batch_fve(x: Tensor, x_hat: Tensor) -> float:
    """`fraction_variance_explained` on one batch, NaN if the batch happens to be constant."""
    try:
        return fraction_variance_explained(x, x_hat)
    except ValueError:
        return math.nan


def _lr_factor(step: int, steps: int, warmup_steps: int, decay_steps: int) -> float:
    """Linear warmup over the first ``warmup_steps``, linear decay to 0 over the last ``decay_steps``."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    decay = min(1.0, (steps - step) / decay_steps) if decay_steps else 1.0
    return warm * decay


def train_sae(
    sae: SAE,
    data: Data,
    *,
    steps: int,
    batch_size: int,
    lr: float | int,
    generator: torch.Generator | None = None,
    resample_every: int | None = None,
    dead_window: int = 100,
    n_resample_inputs: int = 4096,
    warmup_steps: int = 0,
    decay_steps: int = 0,
    log_every: int = 50,
    callback: Callable[[SAE], dict[str, Any]] | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Train ``sae`` with Adam on activations; return one dict per logged step.

    Args:
        sae: any `SAE` (its parameters are trained in place).
        data: activations ``(n, d_in)`` sampled with replacement, or a callable
            ``(batch_size, generator) -> (batch, d_in)`` that makes fresh ones (a toy model).
        steps, batch_size, lr: optimiser steps, examples per step, Adam's learning rate.
        generator: the random generator for batches and resampling.
        resample_every: every this many steps (never at the last), resample the dead latents with
            `resample_dead_latents` on ``n_resample_inputs`` fresh inputs; None: never.
        dead_window: a latent is dead if it has fired on no example of the last this many batches.
        warmup_steps, decay_steps: linear learning-rate warmup at the start and decay to 0 at the end.
        log_every: log every this many steps (and at the last).
        callback: called as ``callback(sae)`` at each logged step; its dict is merged into the row
            (e.g. ``lambda sae: {"mmcs": mmcs(sae.W_dec, true_features)}``).
        progress: show a tqdm progress bar.

    Returns:
        rows with ``step``, ``loss``, ``reconstruction_loss``, ``sparsity_loss``, ``l0`` and ``fve``
        (on that step's batch), ``dead_fraction`` (by the window), ``resampled`` (latents resampled
        since the previous row), ``lr``, and the callback's keys.
    """
    _check_positive_int(steps, "steps")
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(resample_every, "resample_every", allow_none=True)
    _check_positive_int(dead_window, "dead_window")
    _check_positive_int(n_resample_inputs, "n_resample_inputs")
    _check_positive_int(log_every, "log_every")
    for name, value in (("warmup_steps", warmup_steps), ("decay_steps", decay_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    sample = _sampler(sae, data)
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, steps, warmup_steps, decay_steps))
    steps_since_fired = torch.zeros(sae.d_sae, dtype=torch.long)
    history, resampled = [], 0
    bar = range(steps)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc=f"{sae.architecture} SAE")
    for step in bar:
        x = sample(batch_size, generator)
        if step == 0:
            sae.check_input(x)
        out = sae(x)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if sae.unit_norm_decoder:
            remove_parallel_decoder_grad(sae)
        optimizer.step()
        schedule.step()
        if sae.unit_norm_decoder:
            sae.normalize_decoder()

        fired = (out.latents.detach() != 0).reshape(-1, sae.d_sae).any(0)
        steps_since_fired += 1
        steps_since_fired[fired] = 0
        dead = steps_since_fired >= dead_window
        if resample_every and (step + 1) % resample_every == 0 and step + 1 < steps and dead.any():
            inputs = sample(n_resample_inputs, generator)
            resampled += resample_dead_latents(sae, inputs, dead, optimizer=optimizer, generator=generator)
            steps_since_fired[dead] = 0
            dead = steps_since_fired >= dead_window

        if (step + 1) % log_every == 0 or step + 1 == steps:
            row = {
                "step": step + 1,
                "loss": out.loss.item(),
                "reconstruction_loss": out.reconstruction_loss.item(),
                "sparsity_loss": out.sparsity_loss.item(),
                "l0": l0(out.latents.detach()),
                "fve": _batch_fve(x, out.x_hat.detach()),
                "dead_fraction": dead.double().mean().item(),
                "resampled": resampled,
                "lr": optimizer.param_groups[0]["lr"],
            }
            if callback is not None:
                row |= callback(sae)
            history.append(row)
            resampled = 0
    return history
