"""DQN on CartPole-v1: steps until the mean of the last 100 episode returns reaches 475, and no collapse.

Three seeds of `mechlearn.rl.dqn.train_dqn` with the documented default `DQNConfig` (Double DQN,
Huber loss, gradient clipping, Polyak-averaged target network, a learning rate decaying linearly
over the run, ε floor 0.01), 150,000 environment steps each, in parallel processes of one thread each. The issue's target: every
seed reaches a rolling mean of 475 within 100,000 steps and the rolling mean stays at or above 450
for the rest of the run (CleanRL's ``dqn.py`` solved and then collapsed here). The result also
holds the learning curves, downsampled, as ``curves = {"seed": [...], "steps": [...],
"rolling_mean": [...]}`` (one entry per point, long format) for the benchmarks page.
``--quick`` trains 1,000 steps per seed (a smoke test; the target is then not met).
"""

from __future__ import annotations

import dataclasses
import json
import resource

import numpy as np

from common import save
import common as bench_common  # its OUT_DIR is set by main(), so read it through the module
from mechlearn.rl.common import rolling_mean, solved_at
from mechlearn.rl.dqn import DQN_CARTPOLE, train_dqn

SEEDS = [0, 1, 2]
"""The benchmark's seeds (seed 0 is also the committed checkpoint's run)."""
SOLVE_BY = 100_000
"""Steps by which every seed must reach a rolling mean of 475."""
FLOOR = 450.0
"""The rolling mean must stay at or above this after solving."""
CURVE_EVERY = 1_000
"""Spacing in environment steps of the downsampled learning curves."""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _describe(cfg) -> str:
    target = (f"Polyak target updates with tau {cfg.tau:g}" if cfg.tau < 1
              else f"a hard target-network copy every {cfg.target_network_frequency} updates")
    return (f"{'Double DQN' if cfg.double_dqn else 'DQN'}, {cfg.loss} loss, gradient-norm clipping at {cfg.max_grad_norm:g}, "
            f"{target}, an MLP {list(cfg.hidden)}, Adam with learning rate {cfg.learning_rate:g} decaying linearly to "
            f"{cfg.final_learning_rate:g}, batch {cfg.batch_size}, an update every {cfg.train_frequency} step(s), "
            f"ε from {cfg.start_e:g} to {cfg.end_e:g} over the first {cfg.exploration_fraction:.0%} of steps, "
            f"a {cfg.buffer_size:,}-transition buffer, γ = {cfg.gamma:g}")


def _train(cfg) -> tuple[list[int], list[float], float, float]:
    import torch

    torch.set_num_threads(1)
    cpu0 = _cpu()
    history = train_dqn(cfg)
    return history.episode_end_steps, history.episode_returns, _cpu() - cpu0, history.seconds


def run(quick: bool = False) -> list[dict]:
    total = 1_000 if quick else DQN_CARTPOLE.total_timesteps
    rows, curves = [], {"seed": [], "steps": [], "rolling_mean": []}
    configs = [dataclasses.replace(DQN_CARTPOLE, seed=seed, total_timesteps=total,
                                   learning_starts=min(DQN_CARTPOLE.learning_starts, total // 2)) for seed in SEEDS]
    if quick:
        runs = [_train(cfg) for cfg in configs]
    else:  # one process per seed, one thread each (fork: the workers inherit the loaded modules)
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(configs), mp_context=mp.get_context("fork")) as pool:
            runs = list(pool.map(_train, configs))
    for seed, (ends, returns, cpu, seconds) in zip(SEEDS, runs):
        ends = np.asarray(ends)
        means = rolling_mean(returns, 100)
        solved = solved_at(ends, returns, 475.0)
        after = means[ends >= solved] if solved is not None else np.array([])
        rows.append({
            "seed": seed,
            "steps": total,
            "episodes": len(returns),
            "steps to 475": solved,
            "min rolling mean after solving": float(after.min()) if after.size else None,
            "final rolling mean": float(means[-1]) if len(means) else None,
            "CPU seconds": round(cpu, 1),
            "seconds": round(seconds, 1),
        })
        for step in range(CURVE_EVERY, total + 1, CURVE_EVERY):  # the rolling mean of the episodes ended by `step`
            i = int(np.searchsorted(ends, step, side="right")) - 1
            if i >= 0:
                curves["seed"].append(seed)
                curves["steps"].append(step)
                curves["rolling_mean"].append(round(float(means[i]), 2))
    met = all(r["steps to 475"] is not None and r["steps to 475"] <= SOLVE_BY
              and r["min rolling mean after solving"] >= FLOOR for r in rows)
    result = save(
        "dqn_cartpole", "DQN on CartPole-v1: steps to a rolling mean of 475, and no collapse afterwards",
        f"mechlearn.rl.dqn.train_dqn with the default DQNConfig ({_describe(DQN_CARTPOLE)}), {total:,} steps per "
        "seed, the seeds in parallel processes of one thread each. The rolling mean is over the last 100 training episodes (with ε-greedy exploration). "
        "CPU seconds are this process's user + system time during the run.",
        ["seed", "steps", "episodes", "steps to 475", "min rolling mean after solving", "final rolling mean",
         "CPU seconds", "seconds"], rows, __file__,
        target=f"every seed reaches a rolling mean of 475 within {SOLVE_BY:,} steps and stays ≥ {FLOOR:.0f} "
               f"for the rest of a 150,000-step run",
        met=met and total == 150_000,
    )
    path = bench_common.OUT_DIR / "dqn_cartpole.json"
    result["curves"] = curves
    path.write_text(json.dumps(result, indent=2) + "\n")
    return [result]


if __name__ == "__main__":
    raise SystemExit(bench_common.main([run], description=__doc__))
