"""Training a GPT, and the recipe behind the committed character-level checkpoint.

The objective is next-token prediction: for a window of ``n_ctx + 1`` tokens the model reads
the first ``n_ctx`` and is scored, at every position, by the cross-entropy of the token that
actually comes next. One window therefore gives ``n_ctx`` training examples at once, which
is why the causal mask matters: without it position ``i`` could read its own answer.

`train_char_lm` is the *recipe*: it trains a small character-level model on CPython's own
documentation and writes a checkpoint (a few MB) and a manifest (config, seed, losses, seconds,
sha256) into a folder the caller chooses, never into the package: the shipped checkpoint in
``checkpoints/`` is only replaced by copying a run's two files there by hand. The committed run took
about 13 minutes of optimiser steps on one thread of the project's 2-core machine (the manifest's
``seconds``, 788, counts training steps only; the periodic loss estimates add more wall-clock time).
The checkpoint is shipped with the package, pages load it with `load_char_lm`, and a test re-runs a
short version of the recipe against the manifest.

Follows ARENA 1.1 ("Transformer from scratch", training) and nanoGPT's ``train.py``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn._recipes import recipe_output_dir, sha256_file
from mechlearn.gpt.config import GPTConfig
from mechlearn.gpt.model import GPT
from mechlearn.gpt.tokenizer import PYDOC_CORPUS, CharTokenizer, pydoc_text, train_val_split

__all__ = [
    "TrainConfig", "get_batch", "next_token_loss", "estimate_loss", "train", "CHAR_LM_CONFIG", "CHAR_LM_TRAIN",
    "CHECKPOINT_DIR", "recipe_output_dir", "train_char_lm", "load_char_lm", "char_lm_data", "sha256_file",
    "ngram_cross_entropy",
]

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
"""Where the committed checkpoints and manifests live (inside the package, so installs carry them).

Read-only for the recipes: `train_char_lm` and `scaling_recipe` refuse to write anywhere in the package."""


@dataclass
class TrainConfig:
    """Hyperparameters of `train` (AdamW, linear warm-up then cosine decay, gradient clipping)."""

    batch_size: int = 32
    """Windows per step; each gives ``n_ctx`` next-token predictions."""
    lr: float = 3e-3
    """Peak learning rate."""
    min_lr_ratio: float = 0.1
    """The cosine schedule ends at ``lr * min_lr_ratio``."""
    warmup_steps: int = 50
    """Steps of linear warm-up from 0 to ``lr``."""
    max_steps: int = 1000
    """Optimiser steps in total."""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay, applied to tensors with two or more axes (biases and LayerNorm are exempt)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value."""
    eval_every: int = 100
    """Estimate train and validation loss every this many steps (and at the end)."""
    eval_batches: int = 8
    """Batches per loss estimate (fixed windows, so estimates are comparable)."""
    seed: int = 0
    """Seeds the model initialisation and the batch sampler."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_steps", "eval_every", "eval_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} should be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr should be > 0, got {self.lr}")

    def lr_at(self, step: int) -> float:
        """The learning rate at ``step``: linear warm-up, then cosine decay to ``lr * min_lr_ratio``."""
        import math

        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.max_steps - self.warmup_steps))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def get_batch(
    data: Int[Tensor, " n_tokens"], batch_size: int, n_ctx: int, generator: torch.Generator
) -> Int[Tensor, "batch n_ctx_plus_1"]:
    """``batch_size`` random windows of ``n_ctx + 1`` consecutive tokens."""
    if data.ndim != 1 or len(data) <= n_ctx + 1:
        raise ValueError(f"data should be a 1-D token tensor longer than n_ctx + 1 = {n_ctx + 1}, got shape {tuple(data.shape)}")
    starts = torch.randint(0, len(data) - n_ctx - 1, (batch_size,), generator=generator)
    return torch.stack([data[s : s + n_ctx + 1] for s in starts.tolist()])


def next_token_loss(logits: Float[Tensor, "batch pos d_vocab"], targets: Int[Tensor, "batch pos"]) -> Tensor:
    """Mean cross-entropy (nats per token) of ``targets``, the tokens that follow each logit's position."""
    if targets.numel() == 0:
        raise ValueError(f"next_token_loss needs at least one target token, got targets of shape {tuple(targets.shape)}")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits (batch, pos, d_vocab) and targets (batch, pos) disagree: {tuple(logits.shape)} vs {tuple(targets.shape)}")
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def ngram_cross_entropy(
    train_ids: Int[np.ndarray, " n_train"], val_ids: Int[np.ndarray, " n_val"], d_vocab: int, order: int
) -> float:
    """Validation cross-entropy (nats per token) of a counting baseline with add-one smoothing.

    ``order=1`` (unigram): ``p(t) = (count(t) + 1) / (N + V)``, scored on every validation token.
    ``order=2`` (bigram): ``p(t | s) = (count(s, t) + 1) / (count(s, ·) + V)``, scored on every
    validation pair. A language model has to beat these to have learned more than character counts.
    """
    train_ids, val_ids = np.asarray(train_ids), np.asarray(val_ids)
    if order not in (1, 2):
        raise ValueError(f"order should be 1 (unigram) or 2 (bigram), got {order!r}")
    for name, ids in (("train_ids", train_ids), ("val_ids", val_ids)):
        if ids.ndim != 1 or len(ids) < order:
            raise ValueError(f"{name} should be a 1-D array of at least {order} token ids, got shape {ids.shape}")
        if ids.min() < 0 or ids.max() >= d_vocab:
            raise ValueError(f"{name} holds ids outside [0, d_vocab={d_vocab})")
    if order == 1:
        counts = np.bincount(train_ids, minlength=d_vocab) + 1.0
        return float(-np.log(counts[val_ids] / counts.sum()).mean())
    counts = np.ones((d_vocab, d_vocab))
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1.0)
    probs = counts / counts.sum(axis=1, keepdims=True)
    return float(-np.log(probs[val_ids[:-1], val_ids[1:]]).mean())


@torch.no_grad()
def estimate_loss(model: GPT, data: Int[Tensor, " n_tokens"], n_batches: int = 8, batch_size: int = 32, seed: int = 1234) -> float:
    """Mean next-token loss over fixed random windows of ``data`` (same windows for the same seed)."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(n_batches):
        batch = get_batch(data, batch_size, model.cfg.n_ctx, g)
        losses.append(next_token_loss(model(batch[:, :-1]), batch[:, 1:]).item())
    model.train(was_training)
    return float(sum(losses) / len(losses))


def train(
    model: GPT,
    train_data: Int[Tensor, " n_train"],
    val_data: Int[Tensor, " n_val"],
    cfg: TrainConfig,
    progress: bool = False,
) -> list[dict[str, int | float]]:
    """Train ``model`` in place; returns the history, one dict per evaluation.

    Each dict holds ``step``, ``tokens`` (seen so far), ``lr``, ``train_loss``, ``val_loss``
    and ``seconds`` (wall-clock training time so far, evaluation excluded).
    """
    from mechlearn._optional import require

    tqdm = require("tqdm.auto", "mechlearn.gpt.training.train").tqdm

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.99),
    )
    g = torch.Generator().manual_seed(cfg.seed)
    n_ctx = model.cfg.n_ctx
    history: list[dict[str, int | float]] = []
    seconds = 0.0

    def evaluate(step: int) -> None:
        history.append({
            "step": step, "tokens": step * cfg.batch_size * n_ctx, "lr": cfg.lr_at(max(0, step - 1)),
            "train_loss": estimate_loss(model, train_data, cfg.eval_batches, cfg.batch_size),
            "val_loss": estimate_loss(model, val_data, cfg.eval_batches, cfg.batch_size),
            "seconds": seconds,
        })

    model.train()
    evaluate(0)
    for step in tqdm(range(cfg.max_steps), disable=not progress, desc="train"):
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        batch = get_batch(train_data, cfg.batch_size, n_ctx, g)
        loss = next_token_loss(model(batch[:, :-1]), batch[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        seconds += time.perf_counter() - t0
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.max_steps:
            evaluate(step + 1)
    model.eval()
    return history


# -- the recipe --------------------------------------------------------------------------------

CHAR_LM_CONFIG = dict(n_ctx=128, d_model=128, n_layers=4, n_heads=4, d_mlp=512, act_fn="gelu_new")
"""Sizes of the committed character-level model (``d_vocab`` comes from the corpus)."""
CHAR_LM_TRAIN = TrainConfig(batch_size=32, lr=3e-3, warmup_steps=100, max_steps=1500, eval_every=100, seed=0)
"""Training settings of the committed character-level model."""


def char_lm_data(tokenizer: CharTokenizer | None = None) -> tuple[CharTokenizer, Tensor, Tensor]:
    """The tokenizer and the train/validation token tensors of the pydoc corpus (90/10 split)."""
    text = pydoc_text()
    tokenizer = tokenizer or CharTokenizer(text)
    train_text, val_text = train_val_split(text, 0.1)
    as_tensor = lambda s: torch.tensor(tokenizer.encode(s), dtype=torch.long)
    return tokenizer, as_tensor(train_text), as_tensor(val_text)


def train_char_lm(
    out_dir: str | Path, max_steps: int | None = None, name: str = "char_lm", progress: bool = False
) -> dict[str, Any]:
    """Train the character-level LM and write ``{name}.pt`` and ``{name}.json`` into ``out_dir``.

    Args:
        out_dir: the folder to write into (created if missing); never the package's ``checkpoints/``.
        max_steps: shorten the run (tests use a handful of steps); None for the full recipe.

    Returns:
        The manifest that was written.

    Raises:
        ValueError: ``out_dir`` lies inside the ``mechlearn`` package (see `recipe_output_dir`).
    """
    from mechlearn.seeding import set_seed

    out_dir = recipe_output_dir(out_dir)  # refuse before minutes of training, not after

    train_cfg = CHAR_LM_TRAIN if max_steps is None else TrainConfig(
        **{**asdict(CHAR_LM_TRAIN), "max_steps": max_steps, "eval_every": max(1, min(CHAR_LM_TRAIN.eval_every, max_steps))}
    )
    set_seed(train_cfg.seed)
    tokenizer, train_data, val_data = char_lm_data()
    model = GPT(GPTConfig(d_vocab=tokenizer.vocab_size, **CHAR_LM_CONFIG))
    history = train(model, train_data, val_data, train_cfg, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / f"{name}.pt"
    model.save(ckpt, chars="".join(tokenizer.chars))
    manifest = {
        "name": name,
        "recipe": "mechlearn.gpt.training.train_char_lm",
        "config": model.cfg.to_dict(),
        "train_config": asdict(train_cfg),
        "seed": train_cfg.seed,
        "n_params": model.cfg.n_params,
        "corpus": {
            "source": "pydoc_data.topics (CPython 3.11.7 help text, shipped as mechlearn/gpt/data/"
                      f"{PYDOC_CORPUS.name}), 90/10 train/validation split",
            "python": platform.python_version(),
            "n_train_tokens": len(train_data), "n_val_tokens": len(val_data),
            "sha256": hashlib.sha256(pydoc_text().encode("utf-8")).hexdigest(),
        },
        "final_train_loss": history[-1]["train_loss"],
        "final_val_loss": history[-1]["val_loss"],
        "seconds": round(history[-1]["seconds"], 1),
        "tokens_per_second": round(history[-1]["tokens"] / max(history[-1]["seconds"], 1e-9), 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "history": history,
        "checkpoint": ckpt.name,
        "bytes": ckpt.stat().st_size,
        "sha256": sha256_file(ckpt),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def load_char_lm(path: str | Path | None = None) -> tuple[GPT, CharTokenizer, dict[str, Any]]:
    """Load a character-level checkpoint and its manifest, after checking the file's sha256.

    Args:
        path: None for the checkpoint shipped with the package; a folder a recipe wrote into (its
            ``char_lm.pt``); or a ``.pt`` file, whose manifest is the ``.json`` beside it.

    Returns:
        ``(model, tokenizer, manifest)``; the model is in eval mode.
    """
    ckpt = CHECKPOINT_DIR / "char_lm.pt" if path is None else Path(path).expanduser()
    if ckpt.is_dir():
        ckpt = ckpt / "char_lm.pt"
    manifest_path = ckpt.with_suffix(".json")
    if not ckpt.exists() or not manifest_path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {ckpt} (with manifest {manifest_path.name}); "
            "run `python -m mechlearn.gpt char_lm --out DIR` to train one into DIR"
        )
    manifest = json.loads(manifest_path.read_text())
    digest = sha256_file(ckpt)
    if digest != manifest["sha256"]:
        raise ValueError(f"{ckpt.name} does not match its manifest: sha256 {digest[:12]}… vs {manifest['sha256'][:12]}…")
    blob = torch.load(ckpt, map_location="cpu", weights_only=True)
    model = GPT.load(ckpt)
    tokenizer = CharTokenizer(blob["chars"])
    return model.eval(), tokenizer, manifest
