"""Part IV benchmark: CPU seconds for the induction recipe's training to form an induction head.

The recipe (`mechlearn.interp.induction.induction_recipe`) trains the 2-layer attention-only model
`INDUCTION_CONFIG` with `INDUCTION_TRAIN` on random tokens whose chunk reappears at a random offset.
Here the same training runs for three seeds and stops at the first evaluation (every 25 steps)
where the best layer-1 head's induction score on repeated random tokens exceeds 0.4. Two times are
reported: the training steps' CPU time (what the recipe's manifest records as ``seconds``) and the
process CPU time of the whole call (building the model and data, and the evaluations, included).
The issue's target: ≤ 60 s on one core for the recipe (seed 0). ``--quick`` trains 50 steps of one
seed (a smoke test; the target is then not met).

A seed that has not passed 0.4 after the recipe's 2,000 steps is diagnosed rather than dropped:
its loss on the repeated tokens says whether it solved the task anyway, and the best layer-1
stripe (`induction_scores(..., shift=s)` for ``s`` in -3..4, on 256 of ARENA's repeated
sequences) says where its copying head looks instead of ARENA's ``q - h + 1``.
"""

from __future__ import annotations

import dataclasses
import time

import torch

import common as bench_common
from common import save
from mechlearn.interp.detectors import induction_scores
from mechlearn.interp.induction import (
    INDUCTION_CONFIG, INDUCTION_THRESHOLD, INDUCTION_TRAIN, repeated_random_tokens, train_induction,
)

SHIFTS = range(-3, 5)
"""Stripe offsets searched for a seed's copying head (0 is ARENA's induction score)."""
SEEDS = [0, 1, 2]
"""The seeds of the full run (seed 0 is the committed recipe's)."""
TARGET_S = 60.0
"""The issue's bound on the CPU seconds to an induction score above 0.4."""


def best_stripe(model) -> tuple[int, float]:
    """The shift whose stripe gets the most attention from one layer-1 head, and that attention."""
    rep = repeated_random_tokens(256, INDUCTION_CONFIG.n_ctx // 2, INDUCTION_CONFIG.d_vocab,
                                 torch.Generator().manual_seed(1))
    best = {shift: induction_scores(model, rep, shift=shift)[-1].max().item() for shift in SHIFTS}
    shift = max(best, key=best.get)
    return shift, best[shift]


def run_seed(seed: int, steps: int) -> dict:
    cfg = dataclasses.replace(INDUCTION_TRAIN, seed=seed, steps=steps)
    t0 = time.process_time()
    model, history = train_induction(cfg, INDUCTION_CONFIG, stop_at_induction=INDUCTION_THRESHOLD)
    total = time.process_time() - t0
    last = history[-1]
    reached = last["induction_max"] > INDUCTION_THRESHOLD
    shift, attention = best_stripe(model)
    return {"seed": str(seed), "steps": last["step"], "induction score": last["induction_max"],
            "training CPU s": last["cpu_seconds"] if reached else "",
            "whole call CPU s": total if reached else "",
            "loss, repeated tokens": last["loss_repeated"], "best stripe shift": shift,
            "best stripe attention": attention}


def run(quick: bool = False) -> list[dict]:
    torch.set_num_threads(1)
    seeds, steps = ([0], 50) if quick else (SEEDS, INDUCTION_TRAIN.steps)
    rows = [run_seed(seed, steps) for seed in seeds]
    recipe = next(r for r in rows if r["seed"] == str(INDUCTION_TRAIN.seed))
    met = not quick and recipe["whole call CPU s"] != "" and recipe["whole call CPU s"] <= TARGET_S
    result = save(
        "induction", "Induction recipe: CPU seconds until an induction head forms (score > 0.4)",
        f"The induction recipe's training (a {INDUCTION_CONFIG.n_layers}-layer attention-only GPT, d_model "
        f"{INDUCTION_CONFIG.d_model}, {INDUCTION_CONFIG.n_heads} heads, {INDUCTION_CONFIG.n_ctx} positions, "
        f"{INDUCTION_CONFIG.d_vocab} tokens; AdamW at lr {INDUCTION_TRAIN.lr:g}, batch {INDUCTION_TRAIN.batch_size}) "
        f"stopped at the first evaluation, every {INDUCTION_TRAIN.log_every} steps, where the best layer-1 head's "
        f"induction score on {INDUCTION_TRAIN.eval_batch} repeated random sequences exceeds {INDUCTION_THRESHOLD}. "
        "Training CPU s counts the optimiser steps only (the recipe manifest's seconds); whole call CPU s is the "
        "process CPU time of the call, evaluations and setup included; empty: not reached within "
        f"{INDUCTION_TRAIN.steps} steps. Steps: where the run stopped. Loss: on the repeated tokens of the recipe's "
        "evaluation batch (ln 64 = 4.16 is a uniform guess). Best stripe: the shift s for which one layer-1 head "
        "puts the most attention on key q - h + 1 + s from the second copy of ARENA's repeated sequences "
        "(s = 0 is the induction score), and that attention. One thread.",
        ["seed", "steps", "induction score", "training CPU s", "whole call CPU s", "loss, repeated tokens",
         "best stripe shift", "best stripe attention"], rows, __file__,
        target=f"the recipe (seed {INDUCTION_TRAIN.seed}) reaches an induction score > {INDUCTION_THRESHOLD} within "
               f"{TARGET_S:.0f} CPU seconds (whole call) on one core; the other seeds are reported, not held to it",
        met=met,
    )
    return [result]


if __name__ == "__main__":
    raise SystemExit(bench_common.main([run], description=__doc__))
