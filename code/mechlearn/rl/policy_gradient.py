"""REINFORCE: the Monte Carlo policy gradient, with and without a baseline.

Williams (1992); Sutton & Barto (2018), sections 13.3–13.4. A policy network ``π_θ(a | s)``
is trained directly on the return ``J(θ) = E[Σ_t γ^t r_t]``. The policy-gradient theorem
turns the gradient of an expectation into an expectation of gradients,

    ∇J(θ) = E[ Σ_t ∇ log π_θ(A_t | S_t) · G_t ],     G_t = Σ_{k ≥ t} γ^{k−t} r_k,

because ``∇π = π ∇log π`` (the score-function, or log-derivative, trick): the environment's
dynamics never need differentiating. One sampled episode gives an unbiased estimate, and the
surrogate loss ``−Σ_t log π(A_t | S_t) G_t`` has exactly that estimate as its gradient, so
autograd and any optimiser do the rest. Only rewards *after* ``t`` appear in ``G_t``
(reward-to-go): earlier rewards do not depend on ``A_t`` and would only add noise.

The estimate is unbiased but noisy: ``G_t`` sums many random rewards, and its size multiplies
every score. Subtracting a **baseline** ``b(S_t)`` that does not depend on the action leaves the
expectation unchanged, since ``E_{A~π}[∇ log π(A | s)] = ∇ Σ_a π(a | s) = ∇1 = 0``, and lowers
the variance when ``b`` tracks the return. A learned state value ``V_φ(s) ≈ E[G_t | S_t = s]``
is the usual choice (S&B 13.4), a running mean of the returns the simplest.
`policy_gradient_samples` measures both claims for a fixed policy: many independent
one-episode gradient estimates, with and without a baseline, on the same episodes.

REINFORCE is not an ARENA exercise: ARENA's chapter 2 goes from DQN (2.2) straight to PPO
(2.3), which lists "vanilla policy gradient" as optional reading. It is the bridge here: PPO's
actor loss is this loss with ``G_t − V(S_t)`` replaced by a GAE advantage and the
log-probability by a clipped probability ratio.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from mechlearn.rl.common import (
    check_discrete,
    check_observation,
    check_positive,
    check_unit_interval,
    make_env,
)

__all__ = [
    "ReinforceConfig", "CategoricalPolicy", "ValueNetwork", "discounted_returns", "Episode",
    "collect_episodes", "reinforce_loss", "ReinforceResult", "train_reinforce",
    "policy_gradient_samples", "GradientStatistics", "gradient_statistics",
]

BASELINES = ("none", "mean", "value")
"""The baselines `train_reinforce` knows: none, the mean of past returns, a learned state value."""


@dataclass
class ReinforceConfig:
    """Hyperparameters of `train_reinforce` (REINFORCE with an optional baseline)."""

    env_id: str = "CartPole-v1"
    """A gymnasium environment with a discrete action space and a flat observation vector."""
    gamma: float = 0.99
    """Discount factor γ of the returns-to-go."""
    learning_rate: float = 0.01
    """Adam step size of the policy."""
    hidden_size: int = 32
    """Width of the one hidden layer of the policy (and of the value network)."""
    episodes_per_update: int = 8
    """Episodes collected with the current policy for each gradient step (their estimates are
    averaged)."""
    num_updates: int = 40
    """Number of policy-gradient steps."""
    baseline: Literal["none", "mean", "value"] = "none"
    """``"none"``: the plain return; ``"mean"``: subtract the mean return-to-go of all earlier
    batches; ``"value"``: subtract a learned ``V_φ(s)``. Both baselines are computed before the
    batch is seen, so they do not depend on its actions and the gradient stays unbiased."""
    value_learning_rate: float = 0.01
    """Adam step size of the value network (``baseline="value"``)."""
    value_epochs: int = 20
    """Full-batch regression steps of ``V_φ`` towards the batch's returns after each update."""
    seed: int = 0
    """Seeds the networks' initialisation, the action sampling and the environments' first reset."""

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str):
            raise TypeError(f"env_id must be a gymnasium id such as 'CartPole-v1', got {self.env_id!r}")
        check_unit_interval("gamma", self.gamma)
        check_positive("learning_rate", self.learning_rate)
        check_positive("value_learning_rate", self.value_learning_rate)
        for name in ("hidden_size", "episodes_per_update", "num_updates", "value_epochs"):
            check_positive(name, getattr(self, name), integer=True)
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")


class CategoricalPolicy(nn.Module):
    """``π_θ(a | s)``: an MLP (one tanh hidden layer) from observations to categorical logits."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_size: int = 32) -> None:
        super().__init__()
        for name, value in (("obs_dim", obs_dim), ("n_actions", n_actions), ("hidden_size", hidden_size)):
            check_positive(name, value, integer=True)
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.net = nn.Sequential(
            nn.Linear(obs_dim, hidden_size), nn.Tanh(), nn.Linear(hidden_size, n_actions)
        )

    def forward(self, obs: Float[Tensor, "*batch obs"]) -> Float[Tensor, "*batch actions"]:
        """The logits ``log π(· | s)`` up to a constant, for a batch of observations."""
        if obs.shape[-1:] != (self.obs_dim,):
            raise ValueError(
                f"CategoricalPolicy expected observations of shape (..., {self.obs_dim}), "
                f"got {tuple(obs.shape)}"
            )
        return self.net(obs)

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: torch.Generator) -> int:
        """Sample one action ``A ~ π(· | obs)`` for a single observation, drawing from ``generator``."""
        x = torch.as_tensor(check_observation(obs, (self.obs_dim,), "CategoricalPolicy.act"))
        probs = torch.softmax(self(x), dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))


class ValueNetwork(nn.Module):
    """``V_φ(s)``: an MLP (one tanh hidden layer) from observations to one number, a baseline."""

    def __init__(self, obs_dim: int, hidden_size: int = 32) -> None:
        super().__init__()
        check_positive("obs_dim", obs_dim, integer=True)
        check_positive("hidden_size", hidden_size, integer=True)
        self.obs_dim = obs_dim
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden_size), nn.Tanh(), nn.Linear(hidden_size, 1))

    def forward(self, obs: Float[Tensor, "*batch obs"]) -> Float[Tensor, "*batch"]:
        """The estimated value of each observation."""
        if obs.shape[-1:] != (self.obs_dim,):
            raise ValueError(
                f"ValueNetwork expected observations of shape (..., {self.obs_dim}), "
                f"got {tuple(obs.shape)}"
            )
        return self.net(obs).squeeze(-1)


def discounted_returns(
    rewards: Float[np.ndarray, " T"],
    gamma: float,
    episode_ends: np.ndarray | None = None,
) -> Float[np.ndarray, " T"]:
    """Returns-to-go ``G_t = r_t + γ G_{t+1}``, restarting after each episode end (float64).

    Args:
        rewards: the rewards of one or more episodes laid end to end.
        gamma: discount factor in [0, 1].
        episode_ends: booleans, True at the last step of each episode (terminated *or*
            truncated: a Monte Carlo return cannot look past its episode's end).
            ``None`` means one episode.

    Returns:
        ``G`` with ``G_t = Σ_{k=t}^{end(t)} γ^{k−t} r_k``, where ``end(t)`` is the last step
        of the episode that step ``t`` belongs to.
    """
    gamma = check_unit_interval("gamma", gamma)
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(
            f"rewards must be a 1-d array (episodes end to end), got {r.shape}"
        )
    if episode_ends is None:
        ends = np.zeros(len(r), dtype=bool)
    else:
        ends = np.asarray(episode_ends)
    if ends.shape != r.shape or ends.dtype != bool:
        raise ValueError(
            f"episode_ends must be a boolean array of the rewards' shape {r.shape}, "
            f"got {ends.dtype} {ends.shape}"
        )
    G = np.empty_like(r)
    running = 0.0
    for t in reversed(range(len(r))):
        # After an episode's last step comes the next episode, not more of this one.
        running = r[t] + gamma * running * (not ends[t])
        G[t] = running
    return G


@dataclass(frozen=True)
class Episode:
    """One episode's observations, actions and rewards, step by step."""

    observations: Float[np.ndarray, "T obs"]
    """The observation at which each action was taken."""
    actions: Int[np.ndarray, " T"]
    rewards: Float[np.ndarray, " T"]
    truncated: bool
    """True if the time limit ended it (CartPole-v1 stops at 500 steps), False if it terminated."""

    @property
    def total_reward(self) -> float:
        """The undiscounted return ``Σ_t r_t``."""
        return float(self.rewards.sum())


def collect_episodes(
    envs: list[gym.Env],
    policy: CategoricalPolicy,
    generator: torch.Generator,
    seeds: list[int] | None = None,
) -> list[Episode]:
    """Run ``policy`` for one whole episode in each of ``envs``, acting with ``generator``.

    The environments step in lockstep, and the policy acts for all running ones in one
    batched forward pass (a tiny network costs about as much for 16 observations as for one).
    An environment whose episode has ended waits for the others.

    Args:
        envs: gymnasium environments with a discrete action space (one episode each).
        policy: the policy to act with (no gradients are tracked while acting).
        generator: the source of the action samples.
        seeds: one ``env.reset`` seed per environment; ``None`` continues each one's own
            random stream.

    Returns:
        The episodes, in the order of ``envs``.
    """
    if not envs:
        raise ValueError("collect_episodes needs at least one environment")
    for env in envs:
        check_discrete(env.action_space, "collect_episodes")
    if seeds is not None and len(seeds) != len(envs):
        raise ValueError(
            f"seeds needs one seed per environment, got {len(seeds)} for {len(envs)}"
        )
    seeds = [None] * len(envs) if seeds is None else [int(seed) for seed in seeds]
    obs = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)]
    record = [([], [], []) for _ in envs]  # observations, actions, rewards
    running, truncated = list(range(len(envs))), [False] * len(envs)
    while running:
        batch = np.stack([obs[i] for i in running])
        batch = check_observation(batch, (policy.obs_dim,), "collect_episodes")
        with torch.no_grad():
            probs = torch.softmax(policy(torch.as_tensor(batch)), dim=-1)
        actions = torch.multinomial(probs, 1, generator=generator).squeeze(-1).tolist()
        still_running = []
        for i, action, o in zip(running, actions, batch):
            observations, acts, rewards = record[i]
            observations.append(o)
            acts.append(action)
            obs[i], reward, terminated, trunc, _ = envs[i].step(action)
            rewards.append(float(reward))
            if terminated or trunc:
                truncated[i] = bool(trunc) and not terminated
            else:
                still_running.append(i)
        running = still_running
    return [
        Episode(np.stack(o), np.asarray(a, dtype=np.int64), np.asarray(r, dtype=float), t)
        for (o, a, r), t in zip(record, truncated)
    ]


def reinforce_loss(
    logits: Float[Tensor, "T actions"],
    actions: Int[Tensor, " T"],
    returns: Float[Tensor, " T"],
    baseline: Float[Tensor, " T"] | None = None,
    n_episodes: int = 1,
) -> Float[Tensor, ""]:
    """The REINFORCE surrogate ``−(1/n) Σ_t log π(A_t | S_t)(G_t − b_t)`` over n episodes.

    Its gradient with respect to the policy's parameters is minus the policy-gradient
    estimate (averaged over the episodes), so minimising it ascends the return. The returns
    and the baseline are constants here (detached): only ``log π`` carries gradient.

    Args:
        logits: the policy's logits at each visited state.
        actions: the action taken at each state.
        returns: the return-to-go ``G_t`` of each step.
        baseline: ``b_t`` to subtract (a value estimate or a constant); ``None`` for none.
        n_episodes: how many episodes the steps come from.
    """
    check_positive("n_episodes", n_episodes, integer=True)
    lengths = [len(logits), len(actions), len(returns)]
    lengths += [] if baseline is None else [len(baseline)]
    if len(set(lengths)) != 1:
        raise ValueError(
            f"logits, actions, returns (and baseline) need one entry per step, "
            f"got lengths {lengths}"
        )
    n_actions = logits.shape[-1]
    if len(actions) and (actions.min() < 0 or actions.max() >= n_actions):
        raise ValueError(
            f"actions must be in [0, {n_actions}), "
            f"got values from {int(actions.min())} to {int(actions.max())}"
        )
    log_probs = torch.log_softmax(logits, dim=-1)
    log_pi = log_probs.gather(-1, actions[:, None]).squeeze(-1)  # log π(A_t | S_t)
    weight = returns if baseline is None else returns - baseline
    return -(log_pi * weight.detach().to(log_pi.dtype)).sum() / n_episodes


@dataclass
class ReinforceResult:
    """What `train_reinforce` returns: the trained networks and the history of the run."""

    policy: CategoricalPolicy
    value: ValueNetwork | None
    """The learned baseline (``baseline="value"``), else None."""
    history: list[dict] = field(default_factory=list)
    """One dict per update: ``update``, ``steps`` (environment steps so far), ``mean_return``
    of the batch's episodes, ``loss`` and ``value_loss``."""
    episode_returns: list[float] = field(default_factory=list)
    """Undiscounted return of every training episode, in order."""
    episode_end_steps: list[int] = field(default_factory=list)
    """Environment steps so far at the end of each training episode (a learning curve's x-axis)."""
    config: dict = field(default_factory=dict)
    """The `ReinforceConfig` as a dict."""


def train_reinforce(config: ReinforceConfig, progress: bool = False) -> ReinforceResult:
    """REINFORCE (Williams 1992), with the baseline of ``config.baseline``.

    Each update collects ``episodes_per_update`` episodes with the current policy, computes
    the returns-to-go, subtracts the baseline and takes one Adam step on `reinforce_loss`;
    then it fits the value network to the batch's returns (value baseline) or adds them to the
    running mean (mean baseline).

    Args:
        config: the hyperparameters and the seed.
        progress: show a tqdm progress bar (off on pages).
    """
    from tqdm.auto import tqdm

    envs = [make_env(config.env_id) for _ in range(config.episodes_per_update)]
    n_actions = check_discrete(envs[0].action_space, "train_reinforce")
    obs_dim = int(np.prod(envs[0].observation_space.shape))
    with torch.random.fork_rng(devices=[]):  # seeds the networks, not the caller's RNG
        torch.manual_seed(config.seed)
        policy = CategoricalPolicy(obs_dim, n_actions, config.hidden_size)
        value = None
        if config.baseline == "value":
            value = ValueNetwork(obs_dim, config.hidden_size)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    if value is not None:
        value_lr = config.value_learning_rate
        value_optimizer = torch.optim.Adam(value.parameters(), lr=value_lr)
    generator = torch.Generator().manual_seed(config.seed)
    result = ReinforceResult(policy, value, config=asdict(config))
    past_returns_sum, past_returns_count, steps = 0.0, 0, 0
    first_seeds = [config.seed * 1000 + i for i in range(len(envs))]

    try:
        for update in tqdm(range(config.num_updates), disable=not progress):
            # 1. Sample a batch of episodes with the current policy.
            seeds = first_seeds if update == 0 else None
            episodes = collect_episodes(envs, policy, generator, seeds=seeds)
            for e in episodes:
                steps += len(e.rewards)
                result.episode_returns.append(e.total_reward)
                result.episode_end_steps.append(steps)
            obs = torch.as_tensor(np.concatenate([e.observations for e in episodes]))
            actions = torch.as_tensor(np.concatenate([e.actions for e in episodes]))
            rewards = np.concatenate([e.rewards for e in episodes])
            lengths = [len(e.rewards) for e in episodes]
            ends = np.isin(np.arange(len(rewards)), np.cumsum(lengths) - 1)
            G = discounted_returns(rewards, config.gamma, ends)
            returns = torch.as_tensor(G, dtype=torch.float32)

            # 2. The baseline, from what was known before this batch.
            if config.baseline == "value":
                with torch.no_grad():
                    baseline = value(obs)
            elif config.baseline == "mean":
                mean = past_returns_sum / max(past_returns_count, 1)
                baseline = torch.full_like(returns, mean)
            else:
                baseline = None

            # 3. One policy-gradient step.
            loss = reinforce_loss(policy(obs), actions, returns, baseline,
                                  n_episodes=len(episodes))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            # 4. Update the baseline with this batch.
            value_loss = float("nan")
            if value is not None:
                for _ in range(config.value_epochs):
                    v_loss = torch.mean((value(obs) - returns) ** 2)
                    value_optimizer.zero_grad()
                    v_loss.backward()
                    value_optimizer.step()
                value_loss = float(v_loss.detach())
            past_returns_sum += float(G.sum())
            past_returns_count += len(G)

            result.history.append({
                "update": update + 1, "steps": steps,
                "mean_return": float(np.mean([e.total_reward for e in episodes])),
                "loss": float(loss.detach()), "value_loss": value_loss,
            })
    finally:
        for env in envs:
            env.close()
    return result


def policy_gradient_samples(
    policy: CategoricalPolicy,
    env_id: str,
    n_episodes: int,
    gamma: float,
    baselines: dict[str, Callable[[Tensor], Tensor] | None],
    seed: int,
) -> dict[str, Float[np.ndarray, "episodes params"]]:
    """Independent one-episode estimates of ``∇J(θ)`` for a fixed policy, one set per baseline.

    Every baseline sees the same ``n_episodes`` fresh episodes (paired samples), so the
    difference between two baselines' estimates is the baseline's own contribution
    ``Σ_t ∇log π(A_t | S_t) b(S_t)``, whose expectation is zero.

    Args:
        policy: the fixed policy (its parameters are not changed).
        env_id: the environment.
        n_episodes: how many independent estimates to draw.
        gamma: discount of the returns-to-go.
        baselines: name → ``b(observations) -> (T,)`` tensor, or ``None`` for no baseline.
        seed: seeds the environments' first reset and the action sampling.

    Returns:
        name → array of shape ``(n_episodes, n_params)``: row ``i`` is the ascent direction
        ``Σ_t ∇log π(A_t | S_t)(G_t − b_t)`` of episode ``i``, with the parameters
        flattened in ``policy.parameters()`` order.
    """
    check_positive("n_episodes", n_episodes, integer=True)
    gamma = check_unit_interval("gamma", gamma)
    if not baselines:
        raise ValueError("baselines needs at least one entry, e.g. {'none': None}")
    envs = [make_env(env_id) for _ in range(min(n_episodes, 16))]
    params = [p for p in policy.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(seed)
    samples = {name: [] for name in baselines}
    try:
        episodes: list[Episode] = []
        while len(episodes) < n_episodes:
            first = None if episodes else [seed * 1000 + i for i in range(len(envs))]
            episodes += collect_episodes(envs, policy, generator, seeds=first)
        for episode in episodes[:n_episodes]:
            obs = torch.as_tensor(episode.observations)
            actions = torch.as_tensor(episode.actions)
            G = discounted_returns(episode.rewards, gamma)
            returns = torch.as_tensor(G, dtype=torch.float32)
            logits = policy(obs)
            for name, b in baselines.items():
                with torch.no_grad():
                    baseline = None if b is None else b(obs)
                loss = reinforce_loss(logits, actions, returns, baseline)
                grads = torch.autograd.grad(loss, params, retain_graph=True)
                flat = torch.cat([g.reshape(-1) for g in grads])
                samples[name].append(-flat.double().numpy())  # ascent = −∇loss
    finally:
        for env in envs:
            env.close()
    return {name: np.stack(rows) for name, rows in samples.items()}


@dataclass(frozen=True)
class GradientStatistics:
    """Mean and spread of a set of gradient estimates (rows = independent estimates)."""

    mean: Float[np.ndarray, " params"]
    """The average estimate: the Monte Carlo estimate of ``∇J``."""
    standard_error: Float[np.ndarray, " params"]
    """Standard error of ``mean``, per parameter: ``std / √n``."""
    variance: Float[np.ndarray, " params"]
    """Per-parameter variance of a single estimate (``ddof=1``)."""
    total_variance: float
    """``Σ_j variance_j`` = ``E‖g − E g‖²``: the trace of the estimates' covariance."""
    n: int
    """Number of estimates."""


def gradient_statistics(samples: Float[np.ndarray, "n params"]) -> GradientStatistics:
    """`GradientStatistics` of ``n ≥ 2`` independent gradient estimates (one per row)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[0] < 2:
        raise ValueError(f"samples must have shape (n >= 2 estimates, params), got {samples.shape}")
    variance = samples.var(axis=0, ddof=1)
    n = samples.shape[0]
    return GradientStatistics(
        samples.mean(axis=0), np.sqrt(variance / n), variance, float(variance.sum()), n
    )
