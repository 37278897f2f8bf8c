"""Part IV-b benchmark: a standard SAE recovers the toy model's features (MMCS), and how fast.

A toy model of superposition (`mechlearn.superposition.toy.ToyModel`, one instance) is trained
first; its hidden activations ``h = W x`` on fresh sparse feature batches are the SAE's data, and its
feature directions (the columns of ``W``) are the ground truth. A `StandardSAE` is trained on them
with `train_sae` (Adam, unit-norm decoder, Anthropic's resampling of dead latents) and scored by
the mean max cosine similarity (MMCS) of its decoder rows to the true features. Two settings:

* **pentagon**: ARENA 1.5.4's toy setting, 5 features in 2 dimensions at feature probability
  0.025, an SAE with 10 latents (twice overcomplete). An easy target: in 2 dimensions random unit
  vectors already score a high MMCS, so the MMCS at initialisation is reported beside the final one;
* **20 in 5**: 20 features in 5 dimensions at probability 0.02 (4 features per dimension), an SAE
  with 40 latents (twice overcomplete);
* **pentagon, 5 latents**: ARENA's SAE size, exactly one latent per feature. Reported, not held to
  the target: with no spare latent, a latent that settles between two features stays there (it is
  not dead, so resampling does not move it).

Three seeds each (the seed sets the toy model, the SAE's initialisation and the batches). CPU
seconds are process time on one thread: the SAE's training, and the whole call (toy model
training, SAE training and evaluation). The issue's target: MMCS ≥ 0.95 in ≤ 30 CPU seconds on
one core, held for every seed of the two twice-overcomplete settings (the whole call, toy model
included).
``--quick`` trains 200 steps of each (a smoke test; the target is then not met).
"""

from __future__ import annotations

import time

import torch

import common as bench_common
from common import save
from mechlearn.sae.metrics import dead_fraction, fraction_variance_explained, l0, mmcs
from mechlearn.sae.standard import StandardSAE
from mechlearn.sae.training import train_sae
from mechlearn.superposition.toy import ToyConfig, ToyModel, train_toy

SETTINGS = {
    "pentagon": dict(n_features=5, d_hidden=2, p=0.025, toy_steps=3000, toy_lr=1e-2,
                     d_sae=10, l1=0.2, sae_steps=2000),
    "20 in 5": dict(n_features=20, d_hidden=5, p=0.02, toy_steps=4000, toy_lr=3e-3,
                    d_sae=40, l1=0.2, sae_steps=3000),
    "pentagon, 5 latents": dict(n_features=5, d_hidden=2, p=0.025, toy_steps=3000, toy_lr=1e-2,
                                d_sae=5, l1=0.2, sae_steps=2000),
}
"""The toy settings: toy model shape, sparsity and training; SAE size, L1 coefficient, steps."""
HELD_TO_TARGET = ("pentagon", "20 in 5")
"""The settings the target applies to (twice overcomplete SAEs); the 5-latent pentagon is reported."""
SEEDS = [0, 1, 2]
"""Seeds of the full run."""
TARGET_MMCS, TARGET_S = 0.95, 30.0
"""The issue's target: MMCS at least this, within this many CPU seconds on one core."""
SAE_LR, BATCH, LOG_EVERY = 1e-2, 1024, 100
"""Adam's learning rate for the SAE, the batch size of both trainings, MMCS logged every this many steps."""


def run_one(name: str, seed: int, quick: bool) -> dict:
    s = SETTINGS[name]
    toy_steps, sae_steps = (200, 200) if quick else (s["toy_steps"], s["sae_steps"])
    t0 = time.process_time()
    toy = ToyModel(ToyConfig(1, s["n_features"], s["d_hidden"]), feature_probability=s["p"],
                   generator=torch.Generator().manual_seed(seed))
    train_toy(toy, toy_steps, BATCH, s["toy_lr"], torch.Generator().manual_seed(1000 + seed),
              lr_schedule="cosine")
    true_features = toy.W.detach()[0].T  # (n_features, d_hidden): feature i's direction in h

    def hidden(n, g):
        with torch.no_grad():
            return toy.hidden(toy.generate_batch(n, g))[:, 0]

    t1 = time.process_time()
    sae = StandardSAE(s["d_hidden"], s["d_sae"], s["l1"], generator=torch.Generator().manual_seed(seed))
    at_init = mmcs(sae.W_dec.detach(), true_features)
    history = train_sae(sae, hidden, steps=sae_steps, batch_size=BATCH, lr=SAE_LR,
                        generator=torch.Generator().manual_seed(2000 + seed), resample_every=500,
                        dead_window=200, decay_steps=sae_steps // 5, log_every=LOG_EVERY,
                        callback=lambda m: {"mmcs": mmcs(m.W_dec.detach(), true_features)})
    sae_seconds = time.process_time() - t1
    x = hidden(8192, torch.Generator().manual_seed(3000 + seed))
    with torch.no_grad():
        out = sae(x)
    whole = time.process_time() - t0
    reached = next((r["step"] for r in history if r["mmcs"] >= TARGET_MMCS), "")
    return {"setting": name, "seed": seed, "toy steps": toy_steps, "SAE steps": sae_steps,
            "MMCS at init": at_init, "MMCS": history[-1]["mmcs"], f"steps to MMCS {TARGET_MMCS}": reached,
            "min feature norm": true_features.norm(dim=1).min().item(),
            "L0": l0(out.latents), "true L0": l0(toy.generate_batch(8192, torch.Generator().manual_seed(4000))),
            "FVE": fraction_variance_explained(x, out.x_hat), "dead fraction": dead_fraction(out.latents),
            "resampled": sum(r["resampled"] for r in history),
            "SAE CPU s": sae_seconds, "whole call CPU s": whole}


def run(quick: bool = False) -> list[dict]:
    torch.set_num_threads(1)
    seeds = [0] if quick else SEEDS
    rows = [run_one(name, seed, quick) for name in SETTINGS for seed in seeds]
    met = not quick and all(r["MMCS"] >= TARGET_MMCS and r["whole call CPU s"] <= TARGET_S
                            for r in rows if r["setting"] in HELD_TO_TARGET)
    columns = list(rows[0])
    result = save(
        "sae_toy", "Toy SAE: MMCS to the true features and CPU seconds",
        "A one-instance toy model of superposition is trained (Adam, cosine decay, batch "
        f"{BATCH}), then a standard SAE (ReLU + L1, unit-norm decoder; Adam at lr {SAE_LR:g}, linear "
        "decay over the last fifth, resampling of latents dead for 200 steps every 500 steps) on its "
        "hidden activations of fresh feature batches. pentagon: 5 features in 2 dimensions at feature "
        "probability 0.025 (ARENA 1.5.4's toy setting), 10 latents; 20 in 5: 20 features in 5 dimensions at "
        "probability 0.02, 40 latents; pentagon, 5 latents: ARENA's SAE size, one latent per feature "
        "(reported, not held to the target). MMCS: mean over the true features (columns of the toy model's W) of "
        f"the best cosine with a decoder row, at the end (at init: of the random initial decoder, the chance level); steps to MMCS {TARGET_MMCS}: the first logged step "
        f"(every {LOG_EVERY}) at or above it. Min feature norm: the shortest true feature (near 0 would "
        "mean the toy model dropped a feature). L0, FVE and dead fraction on 8,192 fresh activations; true "
        "L0: active features per input. Resampled: latents resampled during training. CPU seconds are "
        "process time on one thread: the SAE's training, and the whole call (toy model, SAE, evaluation).",
        columns, rows, __file__,
        target=f"MMCS >= {TARGET_MMCS} within {TARGET_S:.0f} CPU seconds on one core (whole call, toy model "
               "training included), for every seed of the pentagon and 20-in-5 settings (twice overcomplete SAEs)",
        met=met,
    )
    return [result]


if __name__ == "__main__":
    raise SystemExit(bench_common.main([run], description=__doc__))
