"""A tiny scaling experiment: validation loss against model size and training compute.

Kaplan et al. (2020) found that a language model's loss falls as a power law in its
non-embedding parameter count ``N`` when data is plentiful and training runs long enough,
and estimated training compute as ``C ≈ 6·N·D`` floating-point operations for ``D`` tokens
(2 for the forward multiply-adds, 4 for the backward). `scaling_sweep` trains a family of
widths for the same number of tokens and reports loss, ``N`` and ``C``; `fit_power_law` fits
``log L = log a − α log N`` by least squares.

At laptop scale the result is a sketch, not a law: a few thousand steps on a 0.4-million-
character corpus, models far from convergence, and ``N`` spanning little more than an order of
magnitude. Day 34 says what the fit does and does not show.

Follows ARENA 1.1's pointers to the scaling-laws literature.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from mechlearn.gpt.config import GPTConfig
from mechlearn.gpt.model import GPT
from mechlearn.gpt.training import TrainConfig, train

__all__ = ["scaling_sweep", "fit_power_law", "SCALING_WIDTHS", "SCALING_TRAIN", "scaling_recipe", "load_scaling"]

SCALING_WIDTHS = [16, 32, 64, 128]
"""Residual-stream widths of the committed sweep (2 layers, heads of width 16, n_ctx 64)."""
SCALING_TRAIN = TrainConfig(batch_size=16, lr=3e-3, warmup_steps=50, max_steps=1000, eval_every=100, eval_batches=4, seed=0)
"""Training settings shared by every width of the committed sweep."""


def scaling_sweep(
    widths: list[int],
    train_data: Tensor,
    val_data: Tensor,
    d_vocab: int,
    train_cfg: TrainConfig,
    n_layers: int = 2,
    n_ctx: int = 64,
    d_head: int = 16,
) -> list[dict[str, int | float]]:
    """Train one model per ``d_model`` in ``widths`` with identical data and steps.

    Every model gets the same seed, batches and schedule; only the width (and with it the
    number of heads, ``d_model // d_head``) changes.

    Returns:
        One row per width: ``d_model``, ``n_params``, ``n_params_non_embedding``, ``tokens``,
        ``compute`` (``6·N·D`` FLOPs with the non-embedding ``N``), ``train_loss``, ``val_loss``, ``seconds``,
        and ``history`` (the training history, each entry with its ``compute`` so far).
    """
    from mechlearn.seeding import set_seed

    rows = []
    for d_model in widths:
        if d_model % d_head:
            raise ValueError(f"every width should be a multiple of d_head={d_head}, got {d_model}")
        set_seed(train_cfg.seed)
        cfg = GPTConfig(d_vocab=d_vocab, n_ctx=n_ctx, d_model=d_model, n_layers=n_layers, n_heads=d_model // d_head)
        history = train(GPT(cfg), train_data, val_data, train_cfg)
        last = history[-1]
        n = cfg.n_params_non_embedding
        rows.append({
            "d_model": d_model, "n_params": cfg.n_params, "n_params_non_embedding": n, "tokens": last["tokens"],
            "compute": 6.0 * n * last["tokens"], "train_loss": last["train_loss"], "val_loss": last["val_loss"],
            "seconds": last["seconds"],
            "history": [{**h, "compute": 6.0 * n * h["tokens"]} for h in history],
        })
    return rows


def fit_power_law(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    """Least-squares fit of ``y = a · x^(−α)`` in log-log space; returns ``(a, α)``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"x and y should be 1-D of the same length >= 2, got shapes {x.shape} and {y.shape}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power-law fit needs positive x and y")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(math.exp(intercept)), float(-slope)


def scaling_recipe(out_dir: str | Path, max_steps: int | None = None) -> dict[str, Any]:
    """Run the committed sweep (`SCALING_WIDTHS` × `SCALING_TRAIN` on the pydoc characters) and write its manifest.

    Args:
        out_dir: the folder to write ``scaling.json`` into (created if missing); never the package's
            ``checkpoints/``, whose committed copy is replaced only by hand.
        max_steps: shorten every run (tests use a couple of steps); None for the full recipe.

    Raises:
        ValueError: ``out_dir`` lies inside the ``mechlearn`` package (see `recipe_output_dir`).
    """
    from mechlearn.gpt.training import char_lm_data, recipe_output_dir

    out = recipe_output_dir(out_dir) / "scaling.json"  # refuse before the sweep runs, not after

    cfg = SCALING_TRAIN if max_steps is None else TrainConfig(
        **{**asdict(SCALING_TRAIN), "max_steps": max_steps, "eval_every": min(SCALING_TRAIN.eval_every, max_steps)}
    )
    tokenizer, train_data, val_data = char_lm_data()
    t0 = time.perf_counter()
    rows = scaling_sweep(SCALING_WIDTHS, train_data, val_data, tokenizer.vocab_size, cfg)
    a, alpha = fit_power_law([r["n_params_non_embedding"] for r in rows], [r["val_loss"] for r in rows])
    manifest = {
        "recipe": "mechlearn.gpt.scaling.scaling_recipe",
        "widths": SCALING_WIDTHS, "n_layers": 2, "n_ctx": 64, "d_head": 16,
        "train_config": asdict(cfg), "seed": cfg.seed,
        "fit": {"a": a, "alpha": alpha, "form": "val_loss = a * N^(-alpha), N = non-embedding parameters"},
        "seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__, "python": platform.python_version(),
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def load_scaling(path: str | Path | None = None) -> dict[str, Any]:
    """A sweep's manifest: the one shipped with the package (None), or a folder's ``scaling.json``, or a JSON file."""
    from mechlearn.gpt.training import CHECKPOINT_DIR

    path = CHECKPOINT_DIR / "scaling.json" if path is None else Path(path).expanduser()
    if path.is_dir():
        path = path / "scaling.json"
    if not path.exists():
        raise FileNotFoundError(f"no scaling results at {path}; run `python -m mechlearn.gpt scaling --out DIR` to produce them")
    return json.loads(path.read_text())
