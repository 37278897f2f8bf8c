"""Part III benchmark: PPO on CartPole-v1, ours (`mechlearn.rl.ppo`) against Stable-Baselines3's PPO.

* **Time to solve.** For each seed, environment steps and CPU seconds until the mean of the last 100
  episode returns first reaches 475, for our `train_ppo` with its default `PPOConfig` and for SB3's
  PPO with RL Zoo's CartPole-v1 hyperparameters (8 envs, n_steps 32, batch 256, 20 epochs, γ 0.98,
  λ 0.8, learning rate and clip range annealed linearly from 1e-3 and 0.2 to 0 over 100,000 steps).
  Both count episodes the same way (ours: the collector's records; SB3: its Monitor's ``episode``
  info, read by a callback that stops training once solved) and both are timed by the process's CPU
  time from building the environments to solving, alternating which runs first per seed.
* **Rollout throughput.** Steps per second of collecting one 8 × 32 rollout with a fresh policy:
  our `RolloutCollector.collect` against SB3's ``collect_rollouts`` on the same CartPole envs.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import common as bench_common
from common import paired_seconds, save
from mechlearn.rl.common import rolling_mean, solved_at
from mechlearn.rl.ppo import PPOConfig, make_actor_critic, train_ppo
from mechlearn.rl.rollout import RolloutCollector

SEEDS = [0, 1, 2]
"""The seeds of the full run."""
THRESHOLD = 475.0
"""CartPole-v1 counts as solved when the mean of the last 100 episode returns reaches this."""
ZOO = dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0)
"""RL Zoo's PPO hyperparameters for CartPole-v1 (with 8 envs, linear schedules and 1e5 steps)."""


def _thin(steps: list[int], returns: list[float], keep: int = 300) -> dict:
    every = max(1, len(steps) // keep)
    return {"steps": list(steps[::every]), "rolling_mean": rolling_mean(returns, 100)[::every].round(2).tolist()}


def run_ours(seed: int, total: int) -> dict:
    _, h = train_ppo(PPOConfig(seed=seed, total_timesteps=total, stop_at_return=THRESHOLD), progress=False)
    ep = h["episodes"]
    solved = solved_at(ep["steps"], ep["returns"], THRESHOLD)
    return {"solved_at": solved, "seconds": h["seconds"] if solved else None, **_thin(ep["steps"], ep["returns"])}


def run_sb3(seed: int, total: int) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class SolveTracker(BaseCallback):
        def __init__(self):
            super().__init__()
            self.steps, self.returns, self.seconds = [], [], None

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.steps.append(self.num_timesteps)
                    self.returns.append(float(info["episode"]["r"]))
            if len(self.returns) >= 100 and np.mean(self.returns[-100:]) >= THRESHOLD:
                self.seconds = time.process_time() - t0
                return False
            return True

    t0 = time.process_time()
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, learning_rate=lambda p: p * 1e-3, clip_range=lambda p: p * 0.2, seed=seed,
                device="cpu", **ZOO)
    tracker = SolveTracker()
    model.learn(total, callback=tracker)
    solved = solved_at(tracker.steps, tracker.returns, THRESHOLD)
    return {"solved_at": solved, "seconds": tracker.seconds, **_thin(tracker.steps, tracker.returns)}


def bench_solve(quick: bool) -> tuple[list[dict], dict]:
    seeds, total = ([0], 2048) if quick else (SEEDS, 100_000)
    rows, curves = [], {"ours": [], "sb3": []}
    for seed in seeds:
        order = [("ours", run_ours), ("sb3", run_sb3)]
        results = dict((name, fn(seed, total)) for name, fn in (order if seed % 2 == 0 else order[::-1]))
        for name in ("ours", "sb3"):
            curves[name].append({"seed": seed, "steps": results[name]["steps"],
                                 "rolling_mean": results[name]["rolling_mean"]})
        o, s = results["ours"], results["sb3"]
        rows.append({"seed": str(seed), "ours: steps to 475": o["solved_at"], "SB3: steps to 475": s["solved_at"],
                     "ours: CPU s": o["seconds"], "SB3: CPU s": s["seconds"],
                     "ours / SB3 (s)": o["seconds"] / s["seconds"] if o["seconds"] and s["seconds"] else None})
    med = lambda key: statistics.median(r[key] for r in rows) if all(r[key] is not None for r in rows) else None  # noqa: E731
    median = {"seed": "median"} | {k: med(k) for k in rows[0] if k != "seed"}
    if median["ours: CPU s"] and median["SB3: CPU s"]:
        median["ours / SB3 (s)"] = median["ours: CPU s"] / median["SB3: CPU s"]
    return rows + [median], curves


def bench_throughput(quick: bool) -> list[dict]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    n_envs, n_steps = 8, 32
    config = PPOConfig(num_envs=n_envs, num_steps=n_steps)
    collector = RolloutCollector("CartPole-v1", n_envs, seed=0)
    agent = make_actor_critic(collector.envs.single_observation_space, collector.envs.single_action_space,
                              config.hidden_sizes, seed=0)
    generator = torch.Generator().manual_seed(0)

    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=n_envs, seed=0), device="cpu", seed=0, **ZOO)
    _, callback = model._setup_learn(10**9, None)
    callback.on_training_start(locals(), globals())

    def ours():
        collector.collect(agent, n_steps, generator)

    def sb3():
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=n_steps)

    a, b = paired_seconds(ours, sb3, repeats=3 if quick else 9, min_time=0.05 if quick else 0.3)
    collector.close()
    steps = n_envs * n_steps
    return [{"envs × steps": f"{n_envs} × {n_steps} CartPole-v1", "ours (steps/s)": steps / a,
             "SB3 (steps/s)": steps / b, "ours / SB3 (time)": a / b}]


def run(quick: bool = False) -> list[dict]:
    torch.set_num_threads(1)
    solve_rows, curves = bench_solve(quick)
    per_seed = solve_rows[:-1]
    median = solve_rows[-1]
    met = (all(r["ours: steps to 475"] is not None and r["ours: steps to 475"] <= 50_000 for r in per_seed)
           and all(r["ours: CPU s"] is not None and r["ours: CPU s"] <= 30 for r in per_seed)
           and median["ours / SB3 (s)"] is not None and median["ours / SB3 (s)"] <= 1.0)
    solve = save(
        "ppo_cartpole", "PPO on CartPole-v1: steps and CPU seconds to a 100-episode mean of 475, ours vs SB3",
        "Our train_ppo with its default PPOConfig against Stable-Baselines3's PPO with RL Zoo's CartPole-v1 "
        "hyperparameters (8 envs, n_steps 32, batch 256, 20 epochs, γ 0.98, λ 0.8, learning rate 1e-3 and clip range "
        "0.2 annealed linearly to 0 over 100,000 steps), same network sizes (64-64 tanh, separate actor and critic). "
        "A run stops once the mean of its last 100 episode returns reaches 475; seconds are process CPU time from "
        "building the environments, one thread, ours and SB3 alternating per seed. Empty: not solved within "
        "100,000 steps. No agent can solve before 47,500 steps: the 100 episodes of the window alone take that many.",
        ["seed", "ours: steps to 475", "SB3: steps to 475", "ours: CPU s", "SB3: CPU s", "ours / SB3 (s)"],
        [{k: ("" if v is None else v) for k, v in r.items()} for r in solve_rows], __file__,
        target="every seed reaches a 100-episode mean of 475 in ≤ 50,000 steps and ≤ 30 CPU s, "
               "and our median CPU seconds ≤ SB3's",
        met=met,
    )
    path = bench_common.OUT_DIR / "ppo_cartpole.json"
    import json

    solve["curves"] = curves
    path.write_text(json.dumps(solve, indent=2) + "\n")
    throughput = save(
        "ppo_rollout_throughput", "PPO rollout collection: ours vs SB3's collect_rollouts",
        "Steps per second of collecting one rollout of 8 CartPole-v1 envs × 32 steps with a fresh 64-64 policy: our "
        "RolloutCollector.collect (gymnasium SyncVectorEnv, same-step autoreset) against SB3's PPO.collect_rollouts "
        "(DummyVecEnv with Monitor, writing its RolloutBuffer), median of alternating repeats, one thread. "
        "Below 1 in the last column means ours is faster.",
        ["envs × steps", "ours (steps/s)", "SB3 (steps/s)", "ours / SB3 (time)"], bench_throughput(quick), __file__,
    )
    return [solve, throughput]


if __name__ == "__main__":
    raise SystemExit(bench_common.main([run], description=__doc__))
