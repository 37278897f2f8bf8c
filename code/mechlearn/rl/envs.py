"""ARENA's five probe environments: tiny MDPs whose action values are known in closed form.

A value-learning bug (a wrong discount, a target that bootstraps through termination, a network
that ignores its input or its action) is hard to see on CartPole, where a run is noisy and slow.
Each probe isolates one piece, so a correct agent learns its exact Q-values in a few thousand steps
and a broken one fails a specific probe (ARENA 3.0, chapter 2.2 "Deep Q-learning", the probe
environments; the idea is Andy Jones's "Debugging RL, without the agonizing pain", 2021):

======  =========================================================  ==================================
probe   what happens                                               closed-form Q (discount γ)
======  =========================================================  ==================================
1       one observation (0), one action, reward +1, one step       Q(0) = 1: the value net learns a constant
2       observation ±1 at random, one action, reward = observation Q(±1) = ±1: the net uses its input
3       observations 0 then 1, one action, reward +1 at the end    Q(0) = γ, Q(1) = 1: discounting, bootstrapping
4       one observation, two actions, reward −1 / +1 by action     Q(0, ·) = (−1, +1): the net tells actions apart
5       observation ±1, two actions, +1 if the action "matches"    Q(−1, ·) = (+1, −1), Q(+1, ·) = (−1, +1)
======  =========================================================  ==================================

Every probe terminates (never truncates) and has a ``Box(-1, 1, (1,))`` observation space.
`register_probes` registers them with gymnasium as ``mechlearn/Probe1-v0`` … ``mechlearn/Probe5-v0``;
it is idempotent and is never run on import. `probe_q_values` gives each probe's closed-form table.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from jaxtyping import Float

from mechlearn.rl.common import check_unit_interval

__all__ = ["Probe1", "Probe2", "Probe3", "Probe4", "Probe5", "PROBES", "register_probes", "probe_q_values"]


class _Probe(gym.Env):
    """Shared plumbing: a 1-d float observation in [-1, 1] and a step counter."""

    metadata = {"render_modes": []}

    def __init__(self, n_actions: int = 1) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self._obs = 0.0
        self._t = 0

    def _observe(self, value: float) -> np.ndarray:
        self._obs = float(value)
        return np.array([value], dtype=np.float32)

    def _check_action(self, action: Any) -> int:
        if not self.action_space.contains(action):
            raise ValueError(f"{type(self).__name__} expects an action in {self.action_space}, got {action!r}")
        return int(action)


class Probe1(_Probe):
    """One observation (0), one action, reward +1, then the episode terminates: Q(0) = 1."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode (observation ``[0.0]``)."""
        super().reset(seed=seed)
        return self._observe(0.0), {}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Reward +1 and terminate."""
        self._check_action(action)
        return self._observe(0.0), 1.0, True, False, {}


class Probe2(_Probe):
    """Observation −1 or +1 at random, one action, reward equal to the observation: Q(±1) = ±1."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode with observation ``[-1.0]`` or ``[+1.0]`` (equally likely)."""
        super().reset(seed=seed)
        return self._observe(float(self.np_random.choice([-1.0, 1.0]))), {}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Reward = the observation, then terminate."""
        self._check_action(action)
        reward = self._obs
        return self._observe(0.0), reward, True, False, {}


class Probe3(_Probe):
    """Two steps, observations 0 then 1, reward +1 only at the end: Q(0) = γ, Q(1) = 1 (tests discounting)."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode (observation ``[0.0]``)."""
        super().reset(seed=seed)
        self._t = 0
        return self._observe(0.0), {}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        """First step: observation 1, reward 0; second step: reward +1 and terminate."""
        self._check_action(action)
        self._t += 1
        if self._t == 1:
            return self._observe(1.0), 0.0, False, False, {}
        return self._observe(0.0), 1.0, True, False, {}


class Probe4(_Probe):
    """One observation, two actions: action 0 earns −1, action 1 earns +1, one step: Q(0, ·) = (−1, +1)."""

    def __init__(self) -> None:
        super().__init__(n_actions=2)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode (observation ``[0.0]``)."""
        super().reset(seed=seed)
        return self._observe(0.0), {}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Reward −1 for action 0, +1 for action 1; terminate."""
        a = self._check_action(action)
        return self._observe(0.0), (1.0 if a == 1 else -1.0), True, False, {}


class Probe5(_Probe):
    """Observation ±1, two actions, +1 when the action matches the sign (1 for +1, 0 for −1), else −1."""

    def __init__(self) -> None:
        super().__init__(n_actions=2)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode with observation ``[-1.0]`` or ``[+1.0]`` (equally likely)."""
        super().reset(seed=seed)
        return self._observe(float(self.np_random.choice([-1.0, 1.0]))), {}

    def step(self, action: int | np.integer) -> tuple[np.ndarray, float, bool, bool, dict]:
        """+1 if ``action == (observation > 0)``, else −1; terminate."""
        a = self._check_action(action)
        reward = 1.0 if a == int(self._obs > 0) else -1.0
        return self._observe(0.0), reward, True, False, {}


PROBES: dict[str, type[gym.Env]] = {f"mechlearn/Probe{i}-v0": cls for i, cls in
                                    enumerate([Probe1, Probe2, Probe3, Probe4, Probe5], start=1)}
"""Gymnasium id → probe class, the ids `register_probes` registers."""


def register_probes() -> list[str]:
    """Register the five probes with gymnasium (idempotent) and return their ids.

    After it, ``gymnasium.make("mechlearn/Probe3-v0")`` builds `Probe3` (with gymnasium's usual
    wrappers). Registering twice is harmless: ids already registered are skipped.
    """
    for env_id, cls in PROBES.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=cls)
    return list(PROBES)


def probe_q_values(probe: int, gamma: float = 0.99) -> tuple[Float[np.ndarray, "n_obs 1"], Float[np.ndarray, "n_obs n_actions"]]:
    """The closed-form action values of probe ``probe`` (1–5) under discount ``gamma``.

    Returns:
        ``(observations, q)``: each row of ``observations`` is a state the probe can show, and
        ``q[i, a]`` is the optimal value of taking action ``a`` there.

    Raises:
        ValueError: ``probe`` is not 1–5, or ``gamma`` is outside [0, 1].
    """
    gamma = check_unit_interval("gamma", gamma)
    tables = {
        1: ([[0.0]], [[1.0]]),
        2: ([[-1.0], [1.0]], [[-1.0], [1.0]]),
        3: ([[0.0], [1.0]], [[gamma], [1.0]]),
        4: ([[0.0]], [[-1.0, 1.0]]),
        5: ([[-1.0], [1.0]], [[1.0, -1.0], [-1.0, 1.0]]),
    }
    if isinstance(probe, bool) or probe not in tables:
        raise ValueError(f"probe must be one of 1, 2, 3, 4, 5, got {probe!r}")
    obs, q = tables[probe]
    return np.asarray(obs, dtype=np.float32), np.asarray(q, dtype=np.float64)
