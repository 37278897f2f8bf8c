"""The induction task and the 2-layer attention-only model trained on it (ARENA 1.2; Olsson et al. 2022).

An *induction head* completes patterns: having seen ``... A B ... A``, it predicts ``B``. In a
transformer it takes two heads in two layers (Elhage et al. 2021, "A Mathematical Framework"):

1. a *previous-token head* in layer 0 writes, at every position ``j``, which token sat at ``j - 1``;
2. an *induction head* in layer 1 attends from the current token ``A`` (at ``q``) to the position
   ``j`` whose *previous* token was ``A`` (its key reads what step 1 wrote there: K-composition), and
   its OV circuit copies the token found there, ``B``, into the prediction.

ARENA studies a pretrained 2-layer attention-only model (``attn_only_2L_half``, trained on the Pile). Nothing can
be downloaded here, so this module trains a small analog on a synthetic task where induction is the
*only* way to predict anything:

* `induction_batch`: random tokens in which a chunk, starting at a random position, reappears
  later at a random position. Every other token is uniform noise, so only the copy can be
  predicted, and only from its earlier occurrence. The offset between the copies is random on
  purpose: with a fixed offset ``d``, a single layer-1 head could attend to ``q - d + 1`` by
  position alone, scoring as an "induction head" on repeated sequences with no previous-token head
  behind it.
* `repeated_random_tokens`: ARENA's evaluation sequences (a random half, then the same half again),
  on which `mechlearn.interp.detectors.induction_scores` is measured.
* `INDUCTION_CONFIG`, `InductionTrainConfig`, `train_induction`: the model and its training, which
  logs the loss on the predictable (repeated) tokens and on the rest, plus the detectors' scores.
* `phase_change_step`: the step at which the loss on the repeated tokens collapses (the "phase
  change" of Olsson et al. 2022).
* `induction_recipe` and `load_induction_model`: the committed run (``python -m mechlearn.interp
  induction --out DIR``) and the way pages load it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mechlearn._recipes import recipe_output_dir, write_manifest
from mechlearn.gpt.config import GPTConfig
from mechlearn.gpt.model import GPT
from mechlearn.interp.core import load_recipe_manifest
from mechlearn.interp.detectors import induction_scores, previous_token_scores

__all__ = [
    "INDUCTION_CONFIG", "InductionTrainConfig", "INDUCTION_TRAIN", "induction_batch", "repeated_random_tokens",
    "induction_losses", "train_induction", "phase_change_step", "induction_recipe", "load_induction_model",
    "INDUCTION_THRESHOLD",
]

INDUCTION_CONFIG = GPTConfig(d_vocab=64, n_ctx=32, d_model=64, n_layers=2, n_heads=4, attn_only=True)
"""The 2-layer attention-only model: 64 token ids, 32 positions, ``d_model = 64``, 4 heads of width 16.

The context is short on purpose: the time an induction head takes to form grows quickly with the
context length. In trial runs with 64 positions (chunks of 8 to 24 tokens) none had formed after
3000 steps; with 32 one forms in about 500."""

INDUCTION_THRESHOLD = 0.4
"""An induction score above this counts as an induction head (the issue's and the benchmark's bar)."""


@dataclass(frozen=True)
class InductionTrainConfig:
    """Training settings of `train_induction` (AdamW at a constant learning rate, clipped gradients)."""

    steps: int = 2000
    """Optimiser steps."""
    batch_size: int = 32
    """Sequences per step, each ``n_ctx`` tokens long."""
    lr: float = 1e-3
    """Learning rate."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay on the weight matrices (not on biases or LayerNorm)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this."""
    min_repeat: int = 6
    """Shortest repeated chunk of `induction_batch`."""
    max_repeat: int = 16
    """Longest repeated chunk of `induction_batch` (at most ``n_ctx // 2``)."""
    fixed_offset: int | None = None
    """None (the task): the distance between the copies is random. An int fixes it, which gives the
    shortcut task that a purely positional head solves (for comparison only)."""
    log_every: int = 25
    """Evaluate every this many steps (and at step 0 and at the end)."""
    eval_batch: int = 256
    """Sequences in the fixed evaluation batch (losses) and in the repeated sequences (scores)."""
    seed: int = 0
    """Seeds the initialisation, the training batches and the evaluation batches."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "eval_batch", "min_repeat", "max_repeat"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"InductionTrainConfig.{name} should be a positive int, got {value!r}")
        if not 2 <= self.min_repeat <= self.max_repeat:
            raise ValueError(f"need 2 <= min_repeat <= max_repeat, got {self.min_repeat} and {self.max_repeat}")
        if not self.lr > 0:
            raise ValueError(f"InductionTrainConfig.lr should be > 0, got {self.lr!r}")
        if self.fixed_offset is not None and not (isinstance(self.fixed_offset, int) and self.fixed_offset >= self.max_repeat):
            raise ValueError(f"fixed_offset should be None or an int >= max_repeat={self.max_repeat}, got {self.fixed_offset!r}")


INDUCTION_TRAIN = InductionTrainConfig()
"""The settings of the committed run."""


def induction_batch(
    batch: int, n_ctx: int, d_vocab: int, generator: torch.Generator, min_repeat: int = 6, max_repeat: int = 16,
    offset: int | None = None,
) -> tuple[Int[Tensor, "batch n_ctx"], Bool[Tensor, "batch n_ctx"]]:
    """Random token sequences in which a chunk reappears later, at a random offset.

    Each row draws ``n_ctx`` uniform tokens, a chunk length ``L`` in ``[min_repeat, max_repeat]``, a
    start ``p`` for the original and a later start ``q >= p + L`` for the copy (both uniform), and
    copies ``tokens[p : p + L]`` to ``tokens[q : q + L]``. With ``offset`` given, ``q = p + offset``
    for every row instead (the positional shortcut's task; ``offset = L = n_ctx / 2`` is ARENA's
    repeated sequences).

    Returns:
        ``(tokens, mask)``: ``mask[b, t]`` is True where token ``t`` can be predicted from earlier
        tokens, i.e. ``t`` in ``q + 1 .. q + L - 1`` (the copy's first token is noise as far as the
        model can tell; the rest follow the original).

    Raises:
        ValueError: a size that leaves no room for two copies (``2 * max_repeat > n_ctx``), or not positive.
    """
    for name, value in (("batch", batch), ("n_ctx", n_ctx), ("d_vocab", d_vocab)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} should be a positive int, got {value!r}")
    if not 2 <= min_repeat <= max_repeat or 2 * max_repeat > n_ctx:
        raise ValueError(
            f"need 2 <= min_repeat <= max_repeat and 2 * max_repeat <= n_ctx={n_ctx}, got {min_repeat}, {max_repeat}"
        )
    if offset is not None and not (isinstance(offset, int) and max_repeat <= offset <= n_ctx - max_repeat):
        raise ValueError(f"offset should be None or an int in [max_repeat, n_ctx - max_repeat], got {offset!r}")
    tokens = torch.randint(0, d_vocab, (batch, n_ctx), generator=generator)
    mask = torch.zeros(batch, n_ctx, dtype=torch.bool)
    u = torch.rand(batch, 3, generator=generator)
    length = min_repeat + (u[:, 0] * (max_repeat - min_repeat + 1)).long()
    for b in range(batch):
        n = int(length[b])
        if offset is None:
            p = int(u[b, 1] * (n_ctx - 2 * n + 1))
            q = p + n + int(u[b, 2] * (n_ctx - p - 2 * n + 1))
        else:
            p = int(u[b, 1] * (n_ctx - offset - n + 1))
            q = p + offset
        tokens[b, q : q + n] = tokens[b, p : p + n]
        mask[b, q + 1 : q + n] = True
    return tokens, mask


def repeated_random_tokens(
    batch: int, half_len: int, d_vocab: int, generator: torch.Generator
) -> Int[Tensor, "batch two_half_len"]:
    """ARENA's evaluation sequences: ``half_len`` uniform random tokens, then the same tokens again.

    ARENA's ``generate_repeated_tokens`` also prepends a BOS token; our models have none, and the
    detectors accept both forms.

    Raises:
        ValueError: a size that is not a positive int.
    """
    for name, value in (("batch", batch), ("half_len", half_len), ("d_vocab", d_vocab)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} should be a positive int, got {value!r}")
    half = torch.randint(0, d_vocab, (batch, half_len), generator=generator)
    return torch.cat([half, half], dim=1)


def induction_losses(
    logits: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch pos"], mask: Bool[Tensor, "batch pos"]
) -> tuple[Tensor, Tensor]:
    """``(loss on the repeated tokens, loss on the rest)``: mean next-token cross-entropies in nats.

    Token ``t`` is predicted by the logits at ``t - 1``; ``mask`` (from `induction_batch`) picks the
    predictable tokens, and "the rest" is every other token after position 0.

    Raises:
        ValueError: shapes that disagree, or a mask that selects no token (or every token).
    """
    if logits.shape[:2] != tokens.shape or mask.shape != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)}, tokens {tuple(tokens.shape)} and mask {tuple(mask.shape)} disagree")
    per_token = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    target_mask = mask[:, 1:].flatten()
    if not target_mask.any() or target_mask.all():
        raise ValueError("the mask should select some tokens after position 0, but not all of them")
    return per_token[target_mask].mean(), per_token[~target_mask].mean()


@torch.no_grad()
def _evaluate(model: GPT, eval_tokens: Tensor, eval_mask: Tensor, rep_tokens: Tensor) -> dict[str, Any]:
    model.eval()
    loss_rep, loss_rest = induction_losses(model(eval_tokens), eval_tokens, eval_mask)
    ind, prev = induction_scores(model, rep_tokens), previous_token_scores(model, rep_tokens)
    model.train()
    return {
        "loss_repeated": loss_rep.item(), "loss_rest": loss_rest.item(),
        "induction_max": ind[-1].max().item(), "prev_token_max": prev[0].max().item(),
        "induction_layer1": [round(v, 4) for v in ind[-1].tolist()],
        "prev_token_layer0": [round(v, 4) for v in prev[0].tolist()],
    }


def train_induction(
    cfg: InductionTrainConfig = INDUCTION_TRAIN,
    model_cfg: GPTConfig = INDUCTION_CONFIG,
    stop_at_induction: float | int | None = None,
    progress: bool = False,
) -> tuple[GPT, list[dict[str, Any]]]:
    """Train a fresh model on `induction_batch` sequences; returns ``(model, history)``.

    Each history entry (at step 0, every ``cfg.log_every`` steps and at the end) holds ``step``,
    ``loss_repeated`` and ``loss_rest`` (`induction_losses` on a fixed evaluation batch),
    ``induction_max`` (the best layer-1 induction score on fixed `repeated_random_tokens` of half
    length ``n_ctx // 2``), ``prev_token_max`` (the best layer-0 previous-token score on them), the
    per-head lists ``induction_layer1`` and ``prev_token_layer0``, and ``cpu_seconds``: process CPU
    time spent training so far, evaluation excluded.

    Args:
        stop_at_induction: stop at the first evaluation whose ``induction_max`` exceeds this (the
            benchmark's use); None trains for ``cfg.steps``.
    """
    from mechlearn._optional import require

    tqdm = require("tqdm.auto", "mechlearn.interp.induction.train_induction").tqdm
    torch.manual_seed(cfg.seed)
    model = GPT(model_cfg)
    g_train = torch.Generator().manual_seed(cfg.seed)
    g_eval = torch.Generator().manual_seed(cfg.seed + 1)
    data = dict(n_ctx=model_cfg.n_ctx, d_vocab=model_cfg.d_vocab, min_repeat=cfg.min_repeat, max_repeat=cfg.max_repeat,
                offset=cfg.fixed_offset)
    eval_tokens, eval_mask = induction_batch(cfg.eval_batch, generator=g_eval, **data)
    rep_tokens = repeated_random_tokens(cfg.eval_batch, model_cfg.n_ctx // 2, model_cfg.d_vocab, g_eval)

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    history = [{"step": 0, **_evaluate(model, eval_tokens, eval_mask, rep_tokens), "cpu_seconds": 0.0}]
    cpu = 0.0
    model.train()
    for step in tqdm(range(1, cfg.steps + 1), disable=not progress, desc="induction"):
        t0 = time.process_time()
        tokens, _ = induction_batch(cfg.batch_size, generator=g_train, **data)
        logits = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        cpu += time.process_time() - t0
        if step % cfg.log_every == 0 or step == cfg.steps:
            history.append({"step": step, **_evaluate(model, eval_tokens, eval_mask, rep_tokens), "cpu_seconds": cpu})
            if stop_at_induction is not None and history[-1]["induction_max"] > stop_at_induction:
                break
    model.eval()
    return model, history


def phase_change_step(history: list[dict[str, Any]]) -> int:
    """The first logged step at which the loss on the repeated tokens is below half-way down its fall.

    "Half-way" is the mean of the repeated-token loss before the collapse (its maximum over the run,
    the plateau, reached near the start) and after it (the last logged value, the floor):
    the phase change is the first step after the plateau with ``loss_repeated < (plateau + floor) / 2``.

    Raises:
        ValueError: fewer than 2 entries, or a loss that never falls (the floor is not below the plateau).
    """
    if len(history) < 2:
        raise ValueError(f"phase_change_step needs at least 2 logged steps, got {len(history)}")
    losses = [h["loss_repeated"] for h in history]
    top = max(range(len(losses)), key=losses.__getitem__)
    plateau, floor = losses[top], losses[-1]
    if not floor < plateau:
        raise ValueError(f"the loss on the repeated tokens never falls (plateau {plateau:.3f}, final {floor:.3f})")
    half = (plateau + floor) / 2
    return next(h["step"] for h in history[top:] if h["loss_repeated"] < half)


def induction_recipe(out_dir: str | Path, quick: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train the committed model and write ``induction_2l.pt`` and its manifest into ``out_dir``.

    The manifest holds the model and training configs, the seed, ``metrics`` (phase-change step,
    final losses, the final per-head induction and previous-token score tables, the best heads),
    ``steps``, ``seconds`` (CPU seconds of training, evaluation excluded) and the full ``history``.
    ``quick`` trains 50 steps (a smoke test; no phase change is expected).

    Raises:
        ValueError: ``out_dir`` is inside the ``mechlearn`` package.
    """
    out = recipe_output_dir(out_dir)
    cfg = InductionTrainConfig(**{**asdict(INDUCTION_TRAIN), "steps": 50, "log_every": 10, "eval_batch": 32}) if quick \
        else INDUCTION_TRAIN
    model, history = train_induction(cfg, INDUCTION_CONFIG, progress=progress)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    rep = repeated_random_tokens(cfg.eval_batch, INDUCTION_CONFIG.n_ctx // 2, INDUCTION_CONFIG.d_vocab, g)
    ind, prev = induction_scores(model, rep), previous_token_scores(model, rep)
    try:
        phase = phase_change_step(history)
    except ValueError:
        phase = None
    last = history[-1]
    flat = lambda table: divmod(int(table.argmax()), table.shape[1])  # noqa: E731
    metrics = {
        "phase_change_step": phase,
        "final_loss_repeated": last["loss_repeated"], "final_loss_rest": last["loss_rest"],
        "uniform_loss": math.log(INDUCTION_CONFIG.d_vocab),
        "induction_scores": ind.tolist(), "prev_token_scores": prev.tolist(),
        "best_induction_head": list(flat(ind)), "best_induction_score": ind.max().item(),
        "best_prev_token_head": list(flat(prev)), "best_prev_token_score": prev.max().item(),
    }
    ckpt = out / "induction_2l.pt"
    model.save(ckpt)
    return write_manifest(
        ckpt, name="induction_2l", recipe="mechlearn.interp.induction.induction_recipe",
        config=INDUCTION_CONFIG.to_dict(), train_config=asdict(cfg), seed=cfg.seed, metrics=metrics,
        steps=last["step"], seconds=round(last["cpu_seconds"], 2), seconds_kind="CPU seconds (process time), one thread",
        threads=torch.get_num_threads(), torch=torch.__version__, quick=quick, history=history,
    )


def load_induction_model(directory: str | Path | None = None) -> tuple[GPT, dict[str, Any]]:
    """``(model, manifest)`` of the committed run (or a recipe's ``--out`` folder); float32, in eval mode.

    Raises:
        FileNotFoundError: no ``induction_2l.pt`` with manifest there (the message says how to make one).
        ValueError: the checkpoint does not match its manifest's sha256.
    """
    ckpt, manifest = load_recipe_manifest("induction_2l", directory)
    model = GPT.load(ckpt).float().eval()
    return model, manifest
