"""Vectorised rollouts for on-policy methods: step ``num_envs`` environments together and record them.

PPO (ARENA 2.3, CleanRL's ``ppo.py``) learns from batches of fresh on-policy experience. Stepping
several copies of the environment together amortises one policy forward pass over all of them.
`RolloutCollector` wraps a ``gymnasium.vector.SyncVectorEnv`` in the ``SAME_STEP`` autoreset mode:
when an episode ends, the returned observation is already the first of the next episode and
the last observation of the finished one is in ``info["final_obs"]``. The collector keeps it, so
a *truncated* episode (a time limit, not a real end) can be bootstrapped with ``V(final obs)``,
while a *terminated* one gets 0. Mixing the two up biases every value near the time limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from mechlearn.rl.common import check_positive, make_env

__all__ = ["Rollout", "RolloutCollector"]


@dataclass
class Rollout:
    """``num_steps`` transitions of ``num_envs`` environments, indexed ``[t, env]``."""

    obs: Float[Tensor, "T env obs"]
    """The observation each action was chosen from."""
    actions: Tensor
    """The actions taken, ``(T, env)`` for discrete and ``(T, env, act)`` for continuous spaces (before clipping)."""
    logprobs: Float[Tensor, "T env"]
    """``log π_old(a|s)`` of the acting policy."""
    values: Float[Tensor, "T env"]
    """The critic's ``V(s)`` at collection time."""
    rewards: Float[Tensor, "T env"]
    """The rewards received."""
    terminated: Bool[Tensor, "T env"]
    """The episode really ended at this step."""
    truncated: Bool[Tensor, "T env"]
    """A time limit cut the episode at this step."""
    final_obs: Float[Tensor, "T env obs"]
    """The last observation of an episode that ended at this step (zeros elsewhere)."""
    final_values: Float[Tensor, "T env"]
    """``V(final_obs)`` where ``truncated`` and not ``terminated`` (zeros elsewhere): the bootstrap."""
    next_obs: Float[Tensor, "env obs"]
    """The observation after the last step (where the next rollout starts)."""
    next_value: Float[Tensor, " env"]
    """``V(next_obs)``."""


class RolloutCollector:
    """Steps ``num_envs`` copies of ``env_id`` (env i reset once with ``seed + i``) and records rollouts.

    ``env_kwargs`` go to ``gymnasium.make`` (e.g. ``max_episode_steps``).

    It also keeps the episode statistics: ``episode_steps`` (the global step at which each episode
    ended) and ``episode_returns`` (its undiscounted return), and ``global_step`` (steps over all envs).
    """

    def __init__(self, env_id: str, num_envs: int, seed: int, env_kwargs: dict[str, Any] | None = None):
        check_positive("num_envs", num_envs, integer=True)
        kwargs = dict(env_kwargs or {})
        make_env(env_id, **kwargs).close()  # an unknown id fails here with common.make_env's message
        self.envs = gym.vector.SyncVectorEnv([lambda: make_env(env_id, **kwargs) for _ in range(num_envs)],
                                             autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        obs, _ = self.envs.reset(seed=seed)
        self.obs = torch.as_tensor(obs, dtype=torch.float32)
        self.num_envs = num_envs
        self.global_step = 0
        self._running_return = np.zeros(num_envs)
        self.episode_steps: list[int] = []
        self.episode_returns: list[float] = []

    def collect(self, agent: Any, num_steps: int, generator: torch.Generator,
                clip_low: np.ndarray | None = None, clip_high: np.ndarray | None = None) -> Rollout:
        """Run ``num_steps`` vector steps with ``agent.act(obs, generator) -> (actions, logprobs, values)``.

        ``agent.value(obs)`` gives the bootstrap values. Continuous actions are clipped to
        ``[clip_low, clip_high]`` on their way to the environment only; the rollout keeps the sample.
        """
        n, obs_shape = self.num_envs, tuple(self.obs.shape[1:])
        obs_buf = torch.empty((num_steps, n, *obs_shape))
        final_obs = torch.zeros((num_steps, n, *obs_shape))
        logprobs, values, rewards, final_values = (torch.zeros((num_steps, n)) for _ in range(4))
        terminated = torch.zeros((num_steps, n), dtype=torch.bool)
        truncated = torch.zeros((num_steps, n), dtype=torch.bool)
        actions_list = []
        for t in range(num_steps):
            obs_buf[t] = self.obs
            action, logprobs[t], values[t] = agent.act(self.obs, generator)
            actions_list.append(action)
            env_action = action.numpy()
            if clip_low is not None:
                env_action = np.clip(env_action, clip_low, clip_high)
            next_obs, reward, term, trunc, info = self.envs.step(env_action)
            self.global_step += n
            rewards[t] = torch.from_numpy(np.asarray(reward, dtype=np.float32))
            terminated[t], truncated[t] = torch.from_numpy(term), torch.from_numpy(trunc)
            self._running_return += reward
            done = term | trunc
            if done.any():
                ended = np.flatnonzero(done)
                final_obs[t, ended] = torch.as_tensor(np.stack(info["final_obs"][ended]), dtype=torch.float32)
                cut = trunc & ~term
                if cut.any():
                    with torch.no_grad():
                        final_values[t, cut] = agent.value(final_obs[t, cut])
                for i in ended:
                    self.episode_steps.append(self.global_step)
                    self.episode_returns.append(float(self._running_return[i]))
                    self._running_return[i] = 0.0
            self.obs = torch.as_tensor(next_obs, dtype=torch.float32)
        with torch.no_grad():
            next_value = agent.value(self.obs)
        return Rollout(obs_buf, torch.stack(actions_list), logprobs, values, rewards, terminated, truncated,
                       final_obs, final_values, self.obs, next_value)

    def close(self) -> None:
        """Close the environments."""
        self.envs.close()
