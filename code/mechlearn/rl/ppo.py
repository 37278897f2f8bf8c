"""Proximal Policy Optimisation (Schulman et al. 2017) with generalised advantage estimation.

Follows ARENA section 2.3 and CleanRL's ``ppo.py`` / ``ppo_continuous_action.py``, in the
order the algorithm runs:

1. **Rollout.** ``num_envs`` copies of the environment (``gymnasium.vector.SyncVectorEnv``) step
   together for ``num_steps`` steps under the current policy; each step records the observation,
   action, its log-probability, the critic's value, the reward, and whether the episode
   *terminated* (a real end: the value after it is 0) or was *truncated* (a time limit: the value
   after it is the critic's value of the final observation, bootstrapped).
2. **GAE** (Schulman et al. 2016). The advantage of step t is the exponentially weighted sum of
   one-step TD errors ``δ_t = r_t + γ V(s_{t+1}) − V(s_t)`` with weights ``(γλ)^k``: λ = 0 is the
   one-step TD error (low variance, biased by the critic), λ = 1 the Monte Carlo return minus the
   baseline (unbiased, high variance).
3. **Update.** Several epochs of minibatch gradient steps on the clipped surrogate
   ``−min(r A, clip(r, 1−ε, 1+ε) A)`` with ``r = π_new(a|s) / π_old(a|s)``: once the ratio leaves
   ``[1−ε, 1+ε]`` in the direction the advantage favours, the gradient is zero, so many epochs on
   one batch cannot push the policy far from the one that collected it. A value loss trains the
   critic and an entropy bonus keeps the policy exploring.
4. **Diagnostics.** Approximate KL ``E[(r − 1) − log r]`` (Schulman's low-variance estimator),
   the fraction of clipped ratios, the critic's explained variance and the policy entropy.

A categorical actor-critic serves ``Discrete`` action spaces (CartPole) and a Gaussian one with a
state-independent log standard deviation serves ``Box`` actions (Pendulum). The value loss is the
mean squared error weighted by ``vf_coef`` (Stable-Baselines3's convention; CleanRL halves it).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from mechlearn.rl.common import (
    check_positive, check_unit_interval, load_manifest, make_env, recipe_output_dir, rolling_mean, solved_at,
    write_manifest,
)
from mechlearn.rl.rollout import Rollout, RolloutCollector

__all__ = [
    "compute_gae", "clipped_surrogate_loss", "ppo_value_loss", "approx_kl", "clip_fraction", "explained_variance",
    "CategoricalActorCritic", "GaussianActorCritic", "make_actor_critic", "PPOConfig", "PENDULUM_CONFIG",
    "ppo_update", "train_ppo", "ppo_recipe", "ppo_pendulum_recipe", "load_ppo_agent",
]


# --- 2. generalised advantage estimation -------------------------------------------------------

def compute_gae(
    rewards: Float[Tensor, "T env"], values: Float[Tensor, "T env"], next_value: Float[Tensor, " env"],
    terminated: Bool[Tensor, "T env"], truncated: Bool[Tensor, "T env"], final_values: Float[Tensor, "T env"],
    gamma: float, gae_lambda: float,
) -> tuple[Float[Tensor, "T env"], Float[Tensor, "T env"]]:
    """GAE advantages and the critic's targets (returns = advantages + values) of one rollout.

    Args:
        rewards, values: ``r_t`` and ``V(s_t)`` at each step of each environment.
        next_value: ``V`` of the observation after the last step (the start of the next rollout).
        terminated: the episode really ended at step t: nothing follows, the next value is 0.
        truncated: a time limit cut the episode at step t: the next value is ``final_values[t]``,
            the critic's value of the final observation (the vector env has already reset).
        final_values: ``V(final observation)``, read only where ``truncated`` (and not ``terminated``).
        gamma, gae_lambda: the discount γ and GAE's λ, both in [0, 1].

    The recursion runs backwards, ``A_t = δ_t + γλ (1 − done_t) A_{t+1}``, cutting at every episode
    end so an advantage never sums TD errors of the next episode.
    """
    gamma, gae_lambda = check_unit_interval("gamma", gamma), check_unit_interval("gae_lambda", gae_lambda)
    if not (rewards.shape == values.shape == terminated.shape == truncated.shape == final_values.shape):
        raise ValueError(
            "rewards, values, terminated, truncated and final_values must have one shape (T, env), got "
            f"{[tuple(x.shape) for x in (rewards, values, terminated, truncated, final_values)]}"
        )
    if next_value.shape != values.shape[1:]:
        raise ValueError(f"next_value must have shape {tuple(values.shape[1:])}, got {tuple(next_value.shape)}")
    advantages = torch.zeros_like(values)
    last = torch.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        following = next_value if t == len(rewards) - 1 else values[t + 1]
        following = torch.where(truncated[t], final_values[t], following)
        following = torch.where(terminated[t], torch.zeros_like(following), following)
        delta = rewards[t] + gamma * following - values[t]
        not_done = (~(terminated[t] | truncated[t])).to(values.dtype)
        last = delta + gamma * gae_lambda * not_done * last
        advantages[t] = last
    return advantages, advantages + values


# --- 3. the PPO losses ---------------------------------------------------------------------------

def clipped_surrogate_loss(
    logprobs: Float[Tensor, " batch"], old_logprobs: Float[Tensor, " batch"], advantages: Float[Tensor, " batch"],
    clip_coef: float,
) -> Float[Tensor, ""]:
    """PPO's clipped policy loss ``−mean(min(r A, clip(r, 1−ε, 1+ε) A))``, ``r = exp(logp − old_logp)``.

    Minimising it maximises the clipped surrogate objective. Where the ratio has already moved past
    ``1 ± ε`` in the direction the advantage rewards, the clipped term is the minimum and constant,
    so its gradient is zero.
    """
    clip_coef = check_unit_interval("clip_coef", clip_coef)
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = advantages * ratio
    clipped = advantages * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    return -torch.min(unclipped, clipped).mean()


def ppo_value_loss(
    values: Float[Tensor, " batch"], returns: Float[Tensor, " batch"],
    old_values: Float[Tensor, " batch"] | None = None, clip_coef: float | None = None,
) -> Float[Tensor, ""]:
    """The critic's loss: mean squared error to the GAE returns, optionally clipped.

    With ``old_values`` and ``clip_coef`` the new value may move at most ``clip_coef`` from the value
    recorded in the rollout, and the loss is the larger of the clipped and unclipped errors (as in
    OpenAI's baselines and CleanRL's ``clip_vloss``).
    """
    if (old_values is None) != (clip_coef is None):
        raise ValueError("give both old_values and clip_coef to clip the value loss, or neither")
    unclipped = (values - returns) ** 2
    if old_values is None:
        return unclipped.mean()
    clipped_values = old_values + torch.clamp(values - old_values, -clip_coef, clip_coef)
    return torch.max(unclipped, (clipped_values - returns) ** 2).mean()


def approx_kl(logprobs: Float[Tensor, " batch"], old_logprobs: Float[Tensor, " batch"]) -> Float[Tensor, ""]:
    """Estimated KL(π_old ‖ π_new) on the old policy's actions: ``mean((r − 1) − log r)`` (never negative)."""
    logratio = logprobs - old_logprobs
    return ((torch.exp(logratio) - 1) - logratio).mean()


def clip_fraction(logprobs: Float[Tensor, " batch"], old_logprobs: Float[Tensor, " batch"],
                  clip_coef: float) -> Float[Tensor, ""]:
    """The fraction of samples whose ratio lies outside ``[1 − clip_coef, 1 + clip_coef]``."""
    return ((torch.exp(logprobs - old_logprobs) - 1.0).abs() > clip_coef).float().mean()


def explained_variance(predicted: Float[Tensor, " batch"], target: Float[Tensor, " batch"]) -> float:
    """``1 − Var(target − predicted) / Var(target)``: 1 for a perfect critic, 0 for a constant one, NaN if Var(target) = 0."""
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - predicted).var() / var)


# --- the actor-critic networks -------------------------------------------------------------------

def _layer(n_in: int, n_out: int, gain: float, generator: torch.Generator) -> nn.Linear:
    """A linear layer with orthogonal weights of the given gain and zero bias (CleanRL's ``layer_init``)."""
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain, generator=generator)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(sizes: list[int], last_gain: float, generator: torch.Generator) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(_layer(a, b, last_gain if last else math.sqrt(2), generator))
        if not last:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class CategoricalActorCritic(nn.Module):
    """Separate tanh MLPs for the policy logits (a categorical over ``n_actions``) and the value."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: tuple[int, ...] = (64, 64), seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.obs_dim, self.n_actions, self.hidden_sizes = obs_dim, n_actions, tuple(hidden_sizes)
        self.critic = _mlp([obs_dim, *hidden_sizes, 1], 1.0, g)
        self.actor = _mlp([obs_dim, *hidden_sizes, n_actions], 0.01, g)  # small: near-uniform at first

    def value(self, obs: Float[Tensor, "batch obs"]) -> Float[Tensor, " batch"]:
        """The critic's ``V(s)``."""
        return self.critic(obs).squeeze(-1)

    def act(self, obs: Float[Tensor, "batch obs"], generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Sample actions: ``(actions, log-probabilities, values)``, without building a graph."""
        with torch.no_grad():
            logp_all = torch.log_softmax(self.actor(obs), -1)
            actions = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
            return actions, logp_all.gather(-1, actions[:, None]).squeeze(-1), self.value(obs)

    def evaluate_actions(self, obs: Float[Tensor, "batch obs"], actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(log π(a|s), entropy of π(·|s), V(s))`` with gradients, for the update."""
        logp_all = torch.log_softmax(self.actor(obs), -1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return logp_all.gather(-1, actions.long()[:, None]).squeeze(-1), entropy, self.value(obs)

    def greedy(self, obs: np.ndarray) -> int:
        """The most probable action for one observation (evaluation)."""
        with torch.no_grad():
            return int(self.actor(torch.as_tensor(obs, dtype=torch.float32)).argmax())


class GaussianActorCritic(nn.Module):
    """A diagonal Gaussian policy ``N(μ(s), σ²)`` with a learned, state-independent ``log σ``, and a critic.

    Actions are sampled unbounded and clipped to the action space only when sent to the environment,
    as in CleanRL, so log-probabilities stay those of the Gaussian.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: tuple[int, ...] = (64, 64), seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.obs_dim, self.action_dim, self.hidden_sizes = obs_dim, action_dim, tuple(hidden_sizes)
        self.critic = _mlp([obs_dim, *hidden_sizes, 1], 1.0, g)
        self.actor = _mlp([obs_dim, *hidden_sizes, action_dim], 0.01, g)
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def value(self, obs: Float[Tensor, "batch obs"]) -> Float[Tensor, " batch"]:
        """The critic's ``V(s)``."""
        return self.critic(obs).squeeze(-1)

    def _logp(self, mean: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        log_std = self.log_std.expand_as(mean)
        z = (actions - mean) * torch.exp(-log_std)
        logp = (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        entropy = (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum(-1)
        return logp, entropy

    def act(self, obs: Float[Tensor, "batch obs"], generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Sample actions: ``(actions, log-probabilities, values)``, without building a graph."""
        with torch.no_grad():
            mean = self.actor(obs)
            noise = torch.randn(mean.shape, generator=generator)
            actions = mean + noise * torch.exp(self.log_std)
            return actions, self._logp(mean, actions)[0], self.value(obs)

    def evaluate_actions(self, obs: Float[Tensor, "batch obs"], actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(log π(a|s), entropy of π(·|s), V(s))`` with gradients, for the update."""
        logp, entropy = self._logp(self.actor(obs), actions)
        return logp, entropy, self.value(obs)

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """The mean action for one observation (evaluation; the environment clips it to its bounds)."""
        with torch.no_grad():
            return self.actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()


def make_actor_critic(observation_space: gym.Space, action_space: gym.Space,
                      hidden_sizes: tuple[int, ...] = (64, 64), seed: int = 0) -> nn.Module:
    """The actor-critic for these spaces: categorical for ``Discrete``, Gaussian for a 1-D ``Box``."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise TypeError(f"PPO's MLP needs a flat Box observation space, got {observation_space}")
    obs_dim = int(observation_space.shape[0])
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalActorCritic(obs_dim, int(action_space.n), hidden_sizes, seed)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianActorCritic(obs_dim, int(action_space.shape[0]), hidden_sizes, seed)
    raise TypeError(f"PPO supports Discrete or 1-D Box action spaces, got {action_space}")


# --- hyperparameters -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PPOConfig:
    """PPO's hyperparameters. The defaults solve CartPole-v1 (RL Zoo's CartPole settings, one thread)."""

    env_id: str = "CartPole-v1"
    """A registered gymnasium id with a flat Box observation space."""
    seed: int = 0
    """Seeds the networks, the action sampling, the minibatch order and the environments (env i: seed + i)."""
    total_timesteps: int = 100_000
    """Environment steps over all envs; the learning rate and clip range anneal to 0 over this many."""
    num_envs: int = 8
    """Environments stepped together by ``gymnasium.vector.SyncVectorEnv``."""
    num_steps: int = 32
    """Steps per environment in one rollout; a batch is ``num_envs * num_steps`` transitions."""
    learning_rate: float = 1e-3
    """Adam's step size at the start."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 at ``total_timesteps``."""
    gamma: float = 0.98
    """Discount factor γ in [0, 1]."""
    gae_lambda: float = 0.8
    """GAE's λ in [0, 1]: 0 is the one-step TD error, 1 the Monte Carlo return."""
    num_minibatches: int = 1
    """Minibatches per epoch; must divide the batch size."""
    update_epochs: int = 20
    """Passes over each batch."""
    norm_adv: bool = True
    """Normalise advantages to mean 0, standard deviation 1 within each minibatch."""
    clip_coef: float = 0.2
    """The surrogate's clip range ε in [0, 1]."""
    anneal_clip: bool = True
    """Decay ``clip_coef`` linearly to 0 at ``total_timesteps`` (as RL Zoo's CartPole settings do)."""
    clip_vloss: bool = False
    """Clip the value loss around the rollout's values (by the current clip range)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus (subtracted from the loss), ≥ 0."""
    vf_coef: float = 0.5
    """Weight of the value loss, ≥ 0."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this value."""
    target_kl: float | None = None
    """Stop an update's epochs early once the approximate KL passes this (None: never)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden widths of the actor's and the critic's tanh MLPs."""
    reward_scale: float = 1.0
    """Multiply rewards by this before learning (the recorded episode returns are unscaled)."""
    stop_at_return: float | None = None
    """Stop training once the mean of the last 100 episode returns reaches this (None: run to the end)."""

    def __post_init__(self) -> None:
        make_env(self.env_id).close()  # an unknown id raises common.make_env's error here
        for name in ("gamma", "gae_lambda", "clip_coef"):
            check_unit_interval(name, getattr(self, name))
        for name in ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs"):
            check_positive(name, getattr(self, name), integer=True)
        for name in ("learning_rate", "max_grad_norm", "reward_scale"):
            check_positive(name, getattr(self, name))
        for name in ("ent_coef", "vf_coef"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number ≥ 0, got {value!r}")
        if self.target_kl is not None:
            check_positive("target_kl", self.target_kl)
        if self.batch_size % self.num_minibatches:
            raise ValueError(f"the batch of num_envs * num_steps = {self.batch_size} transitions does not split "
                             f"into num_minibatches = {self.num_minibatches} equal minibatches")
        if not self.hidden_sizes or not all(isinstance(h, int) and h > 0 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive integers, got {self.hidden_sizes!r}")

    @property
    def batch_size(self) -> int:
        """Transitions per rollout: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        """Rollout-and-update iterations: ``total_timesteps // batch_size`` (at least 1)."""
        return max(1, self.total_timesteps // self.batch_size)


PENDULUM_CONFIG = PPOConfig(
    env_id="Pendulum-v1", total_timesteps=100_000, num_envs=4, num_steps=512, learning_rate=1e-3, gamma=0.9,
    gae_lambda=0.95, num_minibatches=32, update_epochs=10, clip_coef=0.2, anneal_clip=False, reward_scale=0.1,
)
"""Settings for Pendulum-v1's Gaussian policy (RL Zoo's γ, λ, epochs and learning rate, without gSDE)."""


# --- 1-4. the training loop ---------------------------------------------------------------------

def train_ppo(config: PPOConfig, progress: bool = True,
              callback: Callable[[dict], None] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Train an actor-critic with PPO; return it with its history.

    ``history["updates"]`` has one dict per update (steps, seconds of process CPU time, policy, value
    and entropy losses, approx_kl, clip_frac, explained_variance, learning rate); ``history
    ["episodes"]`` has ``steps`` (the global step at which each episode ended) and ``returns``.
    ``callback`` receives each update's dict as it is made.
    """
    t0 = time.process_time()
    collector = RolloutCollector(config.env_id, config.num_envs, config.seed)
    agent = make_actor_critic(collector.envs.single_observation_space, collector.envs.single_action_space,
                              config.hidden_sizes, config.seed)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=1e-5, fused=True)
    generator = torch.Generator().manual_seed(config.seed + 1)
    low = high = None
    if isinstance(agent, GaussianActorCritic):
        low, high = collector.envs.single_action_space.low, collector.envs.single_action_space.high
    updates: list[dict] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.num_updates, desc=f"PPO {config.env_id}")
    try:
        for update in range(config.num_updates):
            frac = 1.0 - update / config.num_updates
            lr = config.learning_rate * frac if config.anneal_lr else config.learning_rate
            clip = config.clip_coef * frac if config.anneal_clip else config.clip_coef
            for group in optimizer.param_groups:
                group["lr"] = lr
            rollout = collector.collect(agent, config.num_steps, generator, clip_low=low, clip_high=high)
            stats = ppo_update(agent, optimizer, rollout, config, clip, generator)
            row = {"update": update + 1, "steps": collector.global_step, "seconds": time.process_time() - t0,
                   "learning_rate": lr, "clip_coef": clip, **stats}
            updates.append(row)
            if callback is not None:
                callback(row)
            if bar is not None:
                recent = collector.episode_returns[-100:]
                bar.set_postfix(ret=f"{np.mean(recent):.1f}" if recent else "-")
                bar.update()
            if config.stop_at_return is not None and len(collector.episode_returns) >= 100 \
                    and np.mean(collector.episode_returns[-100:]) >= config.stop_at_return:
                break
    finally:
        collector.close()
        if bar is not None:
            bar.close()
    history = {"updates": updates,
               "episodes": {"steps": list(collector.episode_steps), "returns": list(collector.episode_returns)},
               "seconds": time.process_time() - t0, "steps": collector.global_step}
    return agent, history


def ppo_update(agent: nn.Module, optimizer: torch.optim.Optimizer, rollout: Rollout, config: PPOConfig,
            clip: float, generator: torch.Generator) -> dict[str, float]:
    """One PPO update: GAE on the rollout, then ``update_epochs`` passes of minibatch steps on the PPO loss.

    The loss is ``policy loss − ent_coef · entropy + vf_coef · value loss``; each step clips the
    gradient norm to ``max_grad_norm``. ``clip`` is the current clip range (annealed by `train_ppo`).
    Returns the last minibatch's losses and entropy, its approximate KL, the mean clip fraction over
    the update and the critic's explained variance on the rollout (before the update).
    """
    advantages, returns = compute_gae(
        rollout.rewards * config.reward_scale, rollout.values, rollout.next_value, rollout.terminated,
        rollout.truncated, rollout.final_values, config.gamma, config.gae_lambda)
    obs = rollout.obs.flatten(0, 1)
    actions = rollout.actions.flatten(0, 1)
    old_logprobs, old_values = rollout.logprobs.flatten(), rollout.values.flatten()
    advantages, returns = advantages.flatten(), returns.flatten()
    size = config.batch_size // config.num_minibatches
    kls, clipfracs = [], []
    for _ in range(config.update_epochs):
        order = torch.randperm(config.batch_size, generator=generator)
        for start in range(0, config.batch_size, size):
            idx = order[start:start + size]
            logprobs, entropy, values = agent.evaluate_actions(obs[idx], actions[idx])
            adv = advantages[idx]
            if config.norm_adv and len(idx) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg_loss = clipped_surrogate_loss(logprobs, old_logprobs[idx], adv, clip)
            v_loss = ppo_value_loss(values, returns[idx], *((old_values[idx], clip) if config.clip_vloss else ()))
            entropy_loss = entropy.mean()
            loss = pg_loss - config.ent_coef * entropy_loss + config.vf_coef * v_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm, foreach=True)
            optimizer.step()
            with torch.no_grad():
                kls.append(approx_kl(logprobs, old_logprobs[idx]))
                clipfracs.append(clip_fraction(logprobs, old_logprobs[idx], clip))
        if config.target_kl is not None and kls[-1] > config.target_kl:
            break
    return {"policy_loss": pg_loss.item(), "value_loss": v_loss.item(), "entropy": entropy_loss.item(),
            "approx_kl": kls[-1].item(), "clip_frac": torch.stack(clipfracs).mean().item(),
            "explained_variance": explained_variance(old_values, returns)}


# --- recipes -------------------------------------------------------------------------------------

def _save_agent(agent: nn.Module, path: Path) -> None:
    kind = "categorical" if isinstance(agent, CategoricalActorCritic) else "gaussian"
    n_out = agent.n_actions if kind == "categorical" else agent.action_dim
    torch.save({"kind": kind, "obs_dim": agent.obs_dim, "n_out": n_out, "hidden_sizes": list(agent.hidden_sizes),
                "state_dict": agent.state_dict()}, path)


def load_ppo_agent(name: str = "ppo_cartpole", directory: str | Path | None = None) -> tuple[nn.Module, dict]:
    """``(actor-critic, manifest)`` of a recipe's checkpoint (the shipped one by default), sha256 checked."""
    path, manifest = load_manifest(name, directory)
    blob = torch.load(path, weights_only=True)
    cls = CategoricalActorCritic if blob["kind"] == "categorical" else GaussianActorCritic
    agent = cls(blob["obs_dim"], blob["n_out"], tuple(blob["hidden_sizes"]))
    agent.load_state_dict(blob["state_dict"])
    return agent.eval(), manifest


def _recipe(name: str, config: PPOConfig, out_dir: str | Path, quick: bool, progress: bool,
            eval_seeds: range) -> dict:
    torch.set_num_threads(1)
    out = recipe_output_dir(out_dir)
    if quick:
        config = dataclasses.replace(config, total_timesteps=4 * config.batch_size, stop_at_return=None)
        eval_seeds = eval_seeds[:2]
    agent, history = train_ppo(config, progress=progress)
    ckpt = out / f"{name}.pt"
    _save_agent(agent, ckpt)
    from mechlearn.rl.common import evaluate

    eval_returns = evaluate(agent.greedy, config.env_id, list(eval_seeds))
    ep = history["episodes"]
    curve_every = max(1, len(ep["returns"]) // 400)  # keep the manifest small
    rolling = rolling_mean(ep["returns"], 100)
    metrics = {"eval_mean_return": float(eval_returns.mean()), "eval_returns": eval_returns.tolist(),
               "eval_seeds": [eval_seeds.start, eval_seeds.stop],
               "final_rolling_mean_100": float(rolling[-1]) if len(rolling) else None,
               "episodes": len(ep["returns"])}
    if config.env_id == "CartPole-v1":
        metrics["solved_at"] = solved_at(ep["steps"], ep["returns"], 475.0)
    cfg = dataclasses.asdict(config)
    return write_manifest(
        ckpt, config=cfg, seed=config.seed, metrics=metrics, steps=history["steps"], seconds=history["seconds"],
        solved_at=metrics.get("solved_at"), quick=quick,
        curve={"steps": ep["steps"][::curve_every], "returns": ep["returns"][::curve_every],
               "rolling_mean_100": rolling[::curve_every].round(2).tolist()},
        diagnostics={k: [round(u[k], 5) for u in history["updates"]]
                     for k in ("steps", "approx_kl", "clip_frac", "explained_variance", "entropy")},
    )


def ppo_recipe(out_dir: str | Path, quick: bool = False, progress: bool = True) -> dict:
    """Train PPO on CartPole-v1 with the default `PPOConfig` until solved; write ``ppo_cartpole.{pt,json}``.

    The manifest holds the config, seed, learning curve, steps, CPU seconds, ``solved_at`` (the step at
    which the mean of the last 100 episode returns first reached 475) and greedy returns on 20 fresh seeds.
    """
    config = PPOConfig(stop_at_return=475.0)
    return _recipe("ppo_cartpole", config, out_dir, quick, progress, range(10_000, 10_020))


def ppo_pendulum_recipe(out_dir: str | Path, quick: bool = False, progress: bool = True) -> dict:
    """Train a Gaussian PPO policy on Pendulum-v1 with `PENDULUM_CONFIG`; write ``ppo_pendulum.{pt,json}``.

    The manifest records the learning curve and the greedy policy's returns on 20 fresh seeds.
    """
    return _recipe("ppo_pendulum", PENDULUM_CONFIG, out_dir, quick, progress, range(10_000, 10_020))
