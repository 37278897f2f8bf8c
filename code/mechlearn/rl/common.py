"""What every algorithm of `mechlearn.rl` shares: argument checks, environments, evaluation, recipes.

* The checks raise an error that names what was expected (``gamma must be in [0, 1], got 1.5``)
  instead of training silently on a wrong value.
* `make_env` is ``gymnasium.make`` with a clear error for an id that does not exist.
* `evaluate` runs a policy for whole episodes on fresh seeds; `solved_at` finds the first step at
  which a rolling mean of episode returns reaches a threshold (CartPole-v1 counts as solved at 475).
* `write_manifest` and `load_manifest` are the recipes' record: config, seeds, metrics, steps,
  seconds and the sha256 of the checkpoint, checked again when it is loaded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from jaxtyping import Float, Int

from mechlearn import _recipes
from mechlearn._recipes import recipe_output_dir, sha256_file, write_manifest

__all__ = [
    "CHECKPOINT_DIR", "check_unit_interval", "check_positive", "check_discrete", "check_observation",
    "make_env", "evaluate", "rolling_mean", "solved_at", "recipe_output_dir", "sha256_file",
    "write_manifest", "load_manifest",
]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
"""Where the committed policies and their manifests live (inside the package, so installs carry them)."""


def check_unit_interval(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a real number in [0, 1] (a discount, a λ, an ε), else raise.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: it is NaN or outside [0, 1].
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(value).__name__} {value!r}")
    if not 0.0 <= float(value) <= 1.0:  # NaN fails this too
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def check_positive(name: str, value: Any, *, integer: bool = False) -> float | int:
    """Return ``value`` if it is a positive number (a positive integer when ``integer``), else raise.

    Raises:
        TypeError: ``value`` is not a number (or not an integer when ``integer``).
        ValueError: ``value`` is not positive, or is NaN or infinite.
    """
    kind = "a positive integer" if integer else "a positive number"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be {kind}, got {value}")
    return value


def check_discrete(space: gym.Space, who: str) -> int:
    """The number of actions of a ``Discrete`` action space, or a ``TypeError`` naming what ``who`` needs.

    DQN and the categorical policies choose among finitely many actions; a ``Box`` (continuous)
    space needs a Gaussian policy instead.
    """
    if not isinstance(space, gym.spaces.Discrete):
        raise TypeError(
            f"{who} needs a discrete action space (gymnasium.spaces.Discrete), got {space}; "
            "continuous actions need a Gaussian policy (mechlearn.rl.ppo supports Box action spaces)"
        )
    return int(space.n)


def check_observation(obs: Any, shape: Sequence[int], who: str) -> np.ndarray:
    """``obs`` as a float array whose trailing dimensions are ``shape``, or a ``ValueError`` that shows both shapes."""
    arr = np.asarray(obs, dtype=np.float32)
    shape = tuple(shape)
    if arr.shape[arr.ndim - len(shape):] != shape or arr.ndim < len(shape):
        raise ValueError(f"{who} expected observations of shape (..., {', '.join(map(str, shape))}), got {arr.shape}")
    return arr


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)``, with an error naming the id when it is not registered.

    Raises:
        TypeError: ``env_id`` is not a string.
        ValueError: no environment with that id is registered (the message suggests close ids).
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a gymnasium id such as 'CartPole-v1', got {type(env_id).__name__} {env_id!r}")
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as err:
        if not isinstance(err, (gym.error.NameNotFound, gym.error.NamespaceNotFound, gym.error.VersionNotFound,
                                gym.error.UnregisteredEnv)):
            raise
        import difflib

        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"no gymnasium environment is registered as {env_id!r}{hint} ({err})") from None


def evaluate(policy: Callable[[np.ndarray], Any], env_id: str | Callable[[], gym.Env],
             seeds: Sequence[int] | Int[np.ndarray, " episodes"], *,
             max_steps: int | None = None) -> Float[np.ndarray, " episodes"]:
    """Undiscounted return of one episode per seed, acting with ``policy(observation) -> action``.

    Args:
        policy: maps one observation (a NumPy array) to one action; use a greedy policy for evaluation.
        env_id: a gymnasium id, or a function that builds the environment.
        seeds: one ``env.reset(seed=...)`` per episode: use seeds the policy was not trained on.
        max_steps: stop an episode after this many steps (the environment's own time limit applies anyway).

    Returns:
        An array of ``len(seeds)`` returns.
    """
    if len(seeds) == 0:
        raise ValueError("evaluate needs at least one seed")
    env = make_env(env_id) if isinstance(env_id, str) else env_id()
    returns = []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=int(seed))
            total, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(policy(obs))
                total += float(reward)
                steps += 1
                done = terminated or truncated or (max_steps is not None and steps >= max_steps)
            returns.append(total)
    finally:
        env.close()
    return np.asarray(returns)


def rolling_mean(values: Sequence[float] | Float[np.ndarray, " n"], window: int = 100) -> Float[np.ndarray, " n"]:
    """Mean of the last ``window`` values at each index (fewer at the start): the usual smoothed return curve."""
    check_positive("window", window, integer=True)
    v = np.asarray(values, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def solved_at(episode_end_steps: Sequence[int] | Int[np.ndarray, " episodes"],
              returns: Sequence[float] | Float[np.ndarray, " episodes"], threshold: float | int = 475.0,
              window: int = 100) -> int | None:
    """The environment step at which the mean of the last ``window`` episode returns first reaches ``threshold``.

    Only full windows count (the first ``window - 1`` episodes cannot solve it). ``None`` if never.
    """
    if len(episode_end_steps) != len(returns):
        raise ValueError(f"episode_end_steps and returns differ in length: {len(episode_end_steps)} vs {len(returns)}")
    means = rolling_mean(returns, window)
    for i in range(window - 1, len(means)):
        if means[i] >= threshold:
            return int(episode_end_steps[i])
    return None


def load_manifest(name: str, directory: str | Path | None = None) -> tuple[Path, dict]:
    """``(checkpoint path, manifest)`` for ``<directory>/<name>.pt``, after checking its sha256.

    Args:
        name: the recipe's file stem, e.g. ``"ppo_cartpole"``.
        directory: a recipe's ``--out`` folder; the shipped `CHECKPOINT_DIR` by default.

    Raises:
        FileNotFoundError: the checkpoint or its manifest is missing (the message says how to make it).
        ValueError: the file's sha256 is not the manifest's (it changed after the manifest was written).
    """
    folder = CHECKPOINT_DIR if directory is None else Path(directory)
    return _recipes.load_manifest(name, folder, f"python -m mechlearn.rl {name.split('_')[0]} --out {folder}")
