"""Deep Q-learning (DQN): a Q-network, a replay buffer, a target network and an ε-greedy schedule.

DQN (Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015) fits a
network Q(s, ·; θ) to the Bellman optimality equation of Q-learning (Sutton & Barto, 2nd ed.,
§6.5) by regression on the one-step target

    y = r + γ (1 − terminated) · max_a' Q(s', a'; θ⁻).

Two devices make that regression stable enough to train: transitions come from a **replay buffer**
sampled uniformly (consecutive steps are correlated; a buffer mixes old and new experience), and
the target uses a **target network** θ⁻, a slowly moving copy of θ, so the regression target does
not move with every gradient step. Exploration is **ε-greedy** with ε falling linearly from 1.

On CartPole, plain DQN often learns and then *collapses*: as the buffer fills with long,
successful episodes the network forgets what failure looks like, its values drift, and returns
crash. `DQNConfig` has the standard stabilisers as options:

* **Double DQN** (van Hasselt et al., 2016; on by default): the online network picks a' and the
  target network values it, which removes the max-operator's upward bias;
* the **Huber loss** (default) and **gradient-norm clipping** (at 10), so that a surprising
  transition cannot take a huge step;
* **Polyak averaging** of the target network, θ⁻ ← τθ + (1 − τ)θ⁻ after every update (τ = 0.005
  by default), or a hard copy every ``target_network_frequency`` updates with ``tau = 1``;
* a **learning rate that decays linearly** over the run (from 1e-3 to 2e-5 by default), so that
  late updates can only fine-tune a policy that already works, a large buffer (100,000) that
  keeps early failures in memory, and a small ε floor (0.01).

Truncation is handled as the theory says: a time-limit cut (CartPole stops at 500 steps) is not a
terminal state, so the target bootstraps through it; only a real termination sets the value of
s' to zero. The training loop `train_dqn` follows CleanRL's ``dqn.py`` (Huang et al., 2022) and
ARENA 3.0 chapter 2.2, and reads top to bottom: act, store, sample, target, loss, target update.
`dqn_recipe` trains the committed CartPole-v1 policy.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from mechlearn.rl.common import (
    check_discrete, check_positive, check_unit_interval, make_env, recipe_output_dir, solved_at, write_manifest,
)

__all__ = [
    "QNetwork", "ReplayBuffer", "ReplayBatch", "linear_epsilon", "dqn_td_target", "DQNConfig", "DQNHistory",
    "train_dqn", "greedy_policy", "dqn_recipe", "DQN_CARTPOLE", "DQN_PROBE", "load_dqn_policy",
]


# ---------------------------------------------------------------------------------------------
# The parts: Q-network, replay buffer, ε schedule, TD target
# ---------------------------------------------------------------------------------------------

class QNetwork(nn.Module):
    """An MLP from an observation to one value per action: ``Q(s, ·)``.

    Args:
        obs_dim: length of the (flat) observation.
        n_actions: number of discrete actions.
        hidden: the widths of the hidden layers (ReLU between them).
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...] = (120, 84)) -> None:
        super().__init__()
        check_positive("obs_dim", obs_dim, integer=True)
        check_positive("n_actions", n_actions, integer=True)
        sizes = [obs_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], n_actions))
        self.obs_dim, self.n_actions = obs_dim, n_actions

    def forward(self, obs: Float[Tensor, "batch obs"]) -> Float[Tensor, "batch actions"]:
        """The action values of each observation in the batch."""
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"QNetwork expected observations of shape (batch, {self.obs_dim}), got {tuple(obs.shape)}")
        return self.net(obs)


@dataclass
class ReplayBatch:
    """A batch of transitions sampled from a `ReplayBuffer` (as float32/int64 tensors)."""

    obs: Float[Tensor, "batch obs"]
    """Observations s."""
    actions: Int[Tensor, " batch"]
    """Actions a taken in s."""
    rewards: Float[Tensor, " batch"]
    """Rewards r."""
    next_obs: Float[Tensor, "batch obs"]
    """Next observations s' (the true final observation at the end of an episode)."""
    terminated: Float[Tensor, " batch"]
    """1.0 where s' is terminal (value 0), 0.0 otherwise — including time-limit truncation."""


class ReplayBuffer:
    """A fixed-size ring buffer of transitions in NumPy arrays; the oldest is overwritten when full.

    Args:
        capacity: how many transitions it holds.
        obs_dim: length of an observation.
    """

    def __init__(self, capacity: int, obs_dim: int) -> None:
        check_positive("capacity", capacity, integer=True)
        check_positive("obs_dim", obs_dim, integer=True)
        self.capacity, self.obs_dim = int(capacity), int(obs_dim)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        """The slot the next transition goes into."""
        self.size = 0
        """How many slots hold a transition (at most ``capacity``)."""

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Float[np.ndarray, " obs"], action: int, reward: float, next_obs: Float[np.ndarray, " obs"],
            terminated: bool) -> None:
        """Store one transition (s, a, r, s', terminated). Pass ``terminated=False`` for a time-limit truncation."""
        i = self.pos
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly (with replacement) from the filled slots only.

        Raises:
            ValueError: the buffer is empty.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer: add transitions first")
        idx = rng.integers(0, self.size, size=batch_size)
        return ReplayBatch(torch.from_numpy(self.obs[idx]), torch.from_numpy(self.actions[idx]),
                           torch.from_numpy(self.rewards[idx]), torch.from_numpy(self.next_obs[idx]),
                           torch.from_numpy(self.terminated[idx]))


def linear_epsilon(step: int, start_e: float, end_e: float, duration: int) -> float:
    """ε at ``step``: falls linearly from ``start_e`` to ``end_e`` over ``duration`` steps, then stays there.

    The same schedule as CleanRL's ``linear_schedule`` and Stable-Baselines3's ``get_linear_fn``
    (with ``end_fraction = duration / total_steps``).
    """
    if duration <= 0:
        return end_e
    return start_e + (end_e - start_e) * min(1.0, step / duration)


def dqn_td_target(rewards: Float[Tensor, " batch"], terminated: Float[Tensor, " batch"],
                  next_q_target: Float[Tensor, "batch actions"], gamma: float,
                  next_q_online: Float[Tensor, "batch actions"] | None = None) -> Float[Tensor, " batch"]:
    """The one-step target ``r + γ (1 − terminated) Q⁻(s', a*)``.

    ``a*`` is ``argmax Q⁻(s', ·)`` (DQN) or, given ``next_q_online``, ``argmax Q(s', ·)`` of the
    online network (Double DQN). ``terminated`` is 1 only for real terminal states: after a
    time-limit truncation the episode could have continued, so the target still bootstraps.
    """
    if next_q_online is None:
        next_value = next_q_target.max(dim=1).values
    else:
        next_value = next_q_target.gather(1, next_q_online.argmax(dim=1, keepdim=True)).squeeze(1)
    return rewards + gamma * (1.0 - terminated) * next_value


# ---------------------------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------------------------

@dataclass
class DQNConfig:
    """DQN's hyperparameters. The defaults are the tuned CartPole-v1 configuration (`dqn_recipe`)."""

    env_id: str = "CartPole-v1"
    """Gymnasium id of the environment (discrete actions); ``mechlearn/Probe1-v0`` … registers the probes."""
    seed: int = 0
    """Seeds the network's initialisation, the environment's resets, exploration and replay sampling."""
    total_timesteps: int = 150_000
    """Environment steps to train for."""
    learning_rate: float = 1e-3
    """Adam's learning rate at the start."""
    final_learning_rate: float = 2e-5
    """The learning rate decays linearly to this value over ``lr_decay_fraction`` of the run, then stays."""
    lr_decay_fraction: float = 1.0
    """Fraction of ``total_timesteps`` over which the learning rate decays (in [0, 1])."""
    buffer_size: int = 100_000
    """Replay buffer capacity (transitions)."""
    gamma: float = 0.99
    """Discount factor γ in [0, 1]."""
    tau: float = 0.005
    """Target network update rate: θ⁻ ← τθ + (1 − τ)θ⁻ (1.0 = a hard copy)."""
    target_network_frequency: int = 1
    """Update the target network every this many training updates."""
    batch_size: int = 128
    """Transitions per gradient step."""
    start_e: float = 1.0
    """ε at the start of training."""
    end_e: float = 0.01
    """The ε floor, reached after ``exploration_fraction`` of the run."""
    exploration_fraction: float = 0.1
    """Fraction of ``total_timesteps`` over which ε falls from ``start_e`` to ``end_e`` (in [0, 1])."""
    learning_starts: int = 1_000
    """Steps of (random) experience collected before the first update."""
    train_frequency: int = 4
    """Environment steps between training updates."""
    gradient_steps: int = 1
    """Gradient steps per training update."""
    hidden: tuple[int, ...] = (128, 128)
    """Widths of the Q-network's hidden layers."""
    double_dqn: bool = True
    """Use Double DQN's target (online network picks a', target network values it)."""
    loss: str = "huber"
    """Regression loss on the TD error: ``"huber"`` (smooth L1) or ``"mse"``."""
    max_grad_norm: float | None = 10.0
    """Clip the gradient's global norm to this (``None`` = no clipping)."""

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str):
            raise TypeError(f"env_id must be a gymnasium id string, got {type(self.env_id).__name__} {self.env_id!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("total_timesteps", "buffer_size", "target_network_frequency", "batch_size", "train_frequency",
                     "gradient_steps"):
            check_positive(name, getattr(self, name), integer=True)
        for name in ("learning_rate", "final_learning_rate"):
            check_positive(name, getattr(self, name))
        for name in ("gamma", "tau", "start_e", "end_e", "exploration_fraction", "lr_decay_fraction"):
            check_unit_interval(name, getattr(self, name))
        if self.tau == 0:
            raise ValueError("tau must be in (0, 1]: with tau = 0 the target network never changes")
        if isinstance(self.learning_starts, bool) or not isinstance(self.learning_starts, int) or self.learning_starts < 0:
            raise ValueError(f"learning_starts must be a non-negative integer, got {self.learning_starts!r}")
        if self.buffer_size < self.batch_size:
            raise ValueError(f"buffer_size ({self.buffer_size}) must be at least batch_size ({self.batch_size})")
        if self.learning_starts > self.total_timesteps:
            raise ValueError(f"learning_starts ({self.learning_starts}) must be at most total_timesteps "
                             f"({self.total_timesteps}), or the network is never trained")
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"loss must be 'huber' or 'mse', got {self.loss!r}")
        if not isinstance(self.double_dqn, bool):
            raise TypeError(f"double_dqn must be a bool, got {self.double_dqn!r}")
        if self.max_grad_norm is not None:
            check_positive("max_grad_norm", self.max_grad_norm)
        hidden = tuple(self.hidden)
        if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive integers, got {self.hidden!r}")
        self.hidden = hidden


@dataclass
class DQNHistory:
    """What `train_dqn` returns: the trained network and the run's record."""

    q_network: QNetwork
    """The trained online Q-network."""
    config: DQNConfig
    """The configuration it was trained with."""
    episode_end_steps: list[int] = field(default_factory=list)
    """The global step (1-based count of environment steps) at which each episode ended."""
    episode_returns: list[float] = field(default_factory=list)
    """Each episode's undiscounted return (during training, so with ε-greedy exploration)."""
    update_steps: list[int] = field(default_factory=list)
    """The global step of each logged training update (every update)."""
    losses: list[float] = field(default_factory=list)
    """The TD loss of each logged update."""
    q_values: list[float] = field(default_factory=list)
    """The mean Q(s, a) of the batch at each logged update."""
    replay_buffer: ReplayBuffer | None = None
    """The replay buffer at the end of the run (the last ``buffer_size`` transitions)."""
    seconds: float = 0.0
    """Wall-clock seconds of the run (for the record only; never printed on a page)."""


# ---------------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------------

def train_dqn(config: DQNConfig, env_fn: Callable[[], gym.Env] | None = None, progress: bool = False,
              callback: Callable[[int, QNetwork], None] | None = None) -> DQNHistory:
    """Train a Q-network with DQN (CleanRL-style) and return it with its history.

    Args:
        config: the hyperparameters (`DQNConfig`).
        env_fn: builds the environment; by default ``make_env(config.env_id)`` (the probes'
            ``mechlearn/…`` ids are registered first).
        progress: show a tqdm progress bar.
        callback: called as ``callback(step, q_network)`` after every training update (to record
            values while training; it must not change the network).

    Raises:
        TypeError: the environment's action space is not ``Discrete``.
        ValueError: the environment id is unknown, or its observations are not a flat vector.
    """
    t_start = time.perf_counter()
    cfg = config
    if env_fn is None:
        if cfg.env_id.startswith("mechlearn/"):
            from mechlearn.rl.envs import register_probes

            register_probes()
        env = make_env(cfg.env_id)
    else:
        env = env_fn()
    n_actions = check_discrete(env.action_space, "DQN")
    if len(env.observation_space.shape or ()) != 1:
        raise ValueError(f"DQN expects flat vector observations, got an observation space {env.observation_space}")
    obs_dim = int(env.observation_space.shape[0])
    rng = np.random.default_rng(cfg.seed)
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's torch RNG
        torch.manual_seed(cfg.seed)
        q_network = QNetwork(obs_dim, n_actions, cfg.hidden)
    target_network = copy.deepcopy(q_network)
    for p in target_network.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=cfg.learning_rate, fused=True)  # one kernel per step
    weights = _numpy_views(q_network)  # acting reads the live parameters through NumPy (no torch call per step)
    buffer = ReplayBuffer(cfg.buffer_size, obs_dim)
    loss_fn = nn.functional.smooth_l1_loss if cfg.loss == "huber" else nn.functional.mse_loss
    history = DQNHistory(q_network=q_network, config=cfg, replay_buffer=buffer)
    eps_duration = int(cfg.exploration_fraction * cfg.total_timesteps)
    lr_duration = max(1, int(cfg.lr_decay_fraction * cfg.total_timesteps))
    online_params, target_params = list(q_network.parameters()), list(target_network.parameters())
    updates = 0
    losses: list[Tensor] = []  # kept as tensors and converted once at the end (no .item() per update)
    q_means: list[Tensor] = []

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.total_timesteps, desc=f"DQN {cfg.env_id}", unit="step", mininterval=1.0)

    obs, _ = env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    episode_return = 0.0
    for step in range(cfg.total_timesteps):
        # 1. Act ε-greedily.
        epsilon = linear_epsilon(step, cfg.start_e, cfg.end_e, eps_duration)
        if rng.random() < epsilon:
            action = int(rng.integers(n_actions))
        else:
            action = int(np.argmax(_numpy_forward(weights, obs)))

        # 2. Step the environment and store the transition. Truncation is not termination.
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, float(reward), next_obs, bool(terminated))
        episode_return += float(reward)
        if terminated or truncated:
            history.episode_end_steps.append(step + 1)
            history.episode_returns.append(episode_return)
            if bar is not None and len(history.episode_returns) % 20 == 0:
                bar.set_postfix(mean_return=f"{np.mean(history.episode_returns[-100:]):.1f}", refresh=False)
            episode_return = 0.0
            next_obs, _ = env.reset()
        obs = next_obs

        # 3. Learn: sample a batch, regress Q(s, a) on the TD target, move the target network.
        if step >= cfg.learning_starts and step % cfg.train_frequency == 0:
            lr = cfg.learning_rate + (cfg.final_learning_rate - cfg.learning_rate) * min(1.0, step / lr_duration)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for _ in range(cfg.gradient_steps):
                batch = buffer.sample(cfg.batch_size, rng)
                with torch.no_grad():
                    next_q_target = target_network.net(batch.next_obs)
                if cfg.double_dqn:  # one forward pass of the online network over s and s'
                    q_both = q_network.net(torch.cat([batch.obs, batch.next_obs]))
                    q_obs, next_q_online = q_both[: cfg.batch_size], q_both[cfg.batch_size:].detach()
                else:
                    q_obs, next_q_online = q_network.net(batch.obs), None
                target = dqn_td_target(batch.rewards, batch.terminated, next_q_target, cfg.gamma, next_q_online)
                q_taken = q_obs.gather(1, batch.actions.unsqueeze(1)).squeeze(1)
                loss = loss_fn(q_taken, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(online_params, cfg.max_grad_norm)
                optimizer.step()
                updates += 1
                history.update_steps.append(step + 1)
                losses.append(loss.detach())
                q_means.append(q_taken.detach().mean())
                if callback is not None:
                    callback(step + 1, q_network)
                if updates % cfg.target_network_frequency == 0:
                    with torch.no_grad():
                        torch._foreach_lerp_(target_params, online_params, cfg.tau)  # tau = 1: a copy
        if bar is not None and (step + 1) % 1000 == 0:
            bar.update(1000)
    if bar is not None:
        bar.update(cfg.total_timesteps - bar.n)
        bar.close()
    env.close()
    if losses:
        history.losses, history.q_values = torch.stack(losses).tolist(), torch.stack(q_means).tolist()
    history.seconds = time.perf_counter() - t_start
    return history


def _numpy_views(q_network: QNetwork) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) of each linear layer as NumPy arrays sharing memory with the parameters."""
    return [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in q_network.net if isinstance(m, nn.Linear)]


def _numpy_forward(weights: list[tuple[np.ndarray, np.ndarray]], obs: np.ndarray) -> np.ndarray:
    """The Q-network's forward pass on one observation in NumPy (faster than torch for one sample)."""
    x = np.asarray(obs, dtype=np.float32)
    for i, (w, b) in enumerate(weights):
        x = w @ x + b
        if i < len(weights) - 1:
            x = np.maximum(x, 0.0)
    return x


def greedy_policy(q_network: QNetwork) -> Callable[[np.ndarray], int]:
    """The policy ``s ↦ argmax_a Q(s, a)`` as a function of one NumPy observation (for `common.evaluate`)."""

    def act(obs: np.ndarray) -> int:
        with torch.no_grad():
            return int(q_network(torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)).argmax())

    return act


# ---------------------------------------------------------------------------------------------
# The recipe: the committed CartPole-v1 policy
# ---------------------------------------------------------------------------------------------

DQN_CARTPOLE = DQNConfig()
"""The committed CartPole-v1 run's configuration (the defaults, seed 0, 150,000 steps)."""

DQN_PROBE = DQNConfig(
    env_id="mechlearn/Probe1-v0", seed=0, total_timesteps=1_000, learning_rate=2e-3, final_learning_rate=2e-4,
    lr_decay_fraction=1.0, buffer_size=1_000, gamma=0.9, tau=0.05, target_network_frequency=1, batch_size=64,
    start_e=1.0, end_e=0.2, exploration_fraction=0.5, learning_starts=100, train_frequency=1, gradient_steps=1,
    hidden=(32,), double_dqn=True, loss="mse", max_grad_norm=None,
)
"""A small, fast configuration for the probe environments (γ = 0.9, so Probe 3's first value is 0.9):
replace ``env_id`` with each probe's id. Every step trains; ε stays at 0.2 so both actions keep being tried."""


def load_dqn_policy(directory: str | Path | None = None) -> tuple[QNetwork, dict]:
    """The committed (or a recipe's) CartPole Q-network and its manifest, after checking the sha256."""
    from mechlearn.rl.common import load_manifest

    ckpt, manifest = load_manifest("dqn_cartpole", directory)
    cfg = manifest["config"]
    net = QNetwork(4, 2, tuple(cfg["hidden"]))
    net.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
    return net.eval(), manifest


def dqn_recipe(out_dir: str | Path, quick: bool = False, progress: bool = True) -> dict:
    """Train DQN on CartPole-v1 and write ``dqn_cartpole.pt`` (state dict) and ``dqn_cartpole.json``.

    The manifest records the config, the seed, the learning curve (episode end steps and returns),
    the steps, the seconds, and the metrics: ``solved_at`` (the first step at which the mean of the
    last 100 episode returns reaches 475), the lowest rolling mean after that, and the greedy
    policy's mean return over 20 fresh seeds. ``quick`` trains 2,000 steps (a smoke test).
    """
    from mechlearn.rl.common import evaluate, rolling_mean

    out = recipe_output_dir(out_dir)
    torch.set_num_threads(1)  # an entry point: one thread is fastest for this small network
    cfg = DQNConfig(**{**asdict(DQN_CARTPOLE), **({"total_timesteps": 2_000, "learning_starts": 500} if quick else {})})
    history = train_dqn(cfg, progress=progress)
    ckpt = out / "dqn_cartpole.pt"
    torch.save(history.q_network.state_dict(), ckpt)
    ends, returns = history.episode_end_steps, history.episode_returns
    solved = solved_at(ends, returns, 475.0)
    means = rolling_mean(returns, 100)
    after = [m for e, m in zip(ends, means) if solved is not None and e >= solved]
    eval_seeds = list(range(10_000, 10_020))
    eval_returns = evaluate(greedy_policy(history.q_network.eval()), cfg.env_id, eval_seeds)
    metrics = {
        "solved_at": solved,
        "min_rolling_mean_after_solved": float(min(after)) if after else None,
        "final_rolling_mean": float(means[-1]) if len(means) else None,
        "episodes": len(returns),
        "eval_seeds": eval_seeds,
        "eval_mean_return": float(np.mean(eval_returns)),
    }
    return write_manifest(ckpt, config=asdict(cfg), seed=cfg.seed, steps=cfg.total_timesteps,
                          seconds=round(history.seconds, 1), metrics=metrics,
                          curve={"episode_end_steps": ends, "returns": returns})
