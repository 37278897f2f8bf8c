"""The k-armed bandit: Sutton & Barto's 10-armed testbed and four ways to balance exploring with exploiting.

A bandit is reinforcement learning with one state: each step the agent pulls one of ``k`` arms and
receives a reward drawn from that arm's distribution. Arm ``a`` pays ``q*(a)`` on average, and the
agent does not know ``q*``. Every reward it collects from the arm that looks best is a reward it
did not use to learn about the others, so pure greedy play can lock onto a mediocre arm forever.
The agents here (Sutton & Barto 2018, chapter 2; ARENA 3.0 chapter 2.1, part 1) resolve that
tension differently:

* **ε-greedy** (S&B 2.2–2.4): act greedily on the estimates ``Q(a)``, but with probability ε pick
  an arm uniformly at random, so every arm is sampled infinitely often and ``Q → q*``.
  ``Q`` is a sample average (step size ``1/N(a)``) or, for nonstationary problems where old
  rewards mislead, an exponential recency-weighted average with a constant step size α (S&B 2.5).
* **optimistic initial values** (S&B 2.6): start with ``Q₁(a) = 5``, far above any ``q*``. Every
  arm disappoints when tried, so even a greedy agent tries them all early on.
* **UCB** (S&B 2.7): pick ``argmax Q(a) + c √(ln t / N(a))``. The bonus is an upper confidence
  bound on ``q*(a)``: it shrinks as an arm is sampled and grows slowly for arms that are not,
  so exploration goes where the uncertainty is, instead of uniformly.
* **the gradient bandit** (S&B 2.8): keep preferences ``H(a)``, act with ``π = softmax(H)`` and
  update ``H ← H + α (R − R̄)(1_A − π)``. In expectation this is exactly gradient ascent on
  ``E[R] = Σ π(a) q*(a)`` (any baseline ``R̄`` that does not depend on ``A`` leaves the expected
  update unchanged and lowers its variance): the policy-gradient idea of REINFORCE in miniature.

Everything is vectorised over independent runs: the state of ``runs`` agents is a set of arrays of
shape ``(runs, arms)``, so the 2000 runs × 1000 steps of S&B's figures take about a second.
`run_testbed` returns the per-step average reward, the fraction of runs choosing an optimal arm
and the cumulative (pseudo-)regret ``Σ_t (max_a q*(a) − q*(A_t))``, averaged over runs.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

from mechlearn.rl.common import check_positive, check_unit_interval

__all__ = [
    "BanditTestbed", "EpsilonGreedy", "UCB", "GradientBandit", "BanditHistory", "run_testbed",
    "argmax_random_ties", "softmax_preferences", "gradient_bandit_update",
]


@dataclass(frozen=True)
class BanditTestbed:
    """The k-armed testbed of S&B section 2.3: ``q*(a) ~ N(q_mean, 1)``, rewards ``R ~ N(q*(A), 1)``."""

    n_arms: int = 10
    """Number of arms ``k``."""
    runs: int = 2000
    """Independent bandit problems (and agents) simulated side by side."""
    steps: int = 1000
    """Pulls per run."""
    q_mean: float = 0.0
    """Mean of the true values ``q*(a)`` (S&B's gradient-bandit figure 2.5 uses +4)."""
    stationary: bool = True
    """If False, the nonstationary variant of S&B exercise 2.5: all ``q*(a)`` start equal (at
    ``q_mean``) and each takes an independent ``N(0, walk_std²)`` step after every pull."""
    walk_std: float = 0.01
    """Standard deviation of the random-walk step of the nonstationary variant."""

    def __post_init__(self) -> None:
        check_positive("n_arms", self.n_arms, integer=True)
        if self.n_arms < 2:
            raise ValueError(f"a bandit needs at least 2 arms, got n_arms={self.n_arms}")
        check_positive("runs", self.runs, integer=True)
        check_positive("steps", self.steps, integer=True)
        if isinstance(self.q_mean, bool) or not isinstance(self.q_mean, numbers.Real) or not np.isfinite(self.q_mean):
            raise ValueError(f"q_mean must be a finite number, got {self.q_mean!r}")
        if not isinstance(self.stationary, (bool, np.bool_)):
            raise TypeError(f"stationary must be True or False, got {self.stationary!r}")
        check_positive("walk_std", self.walk_std)


@dataclass(frozen=True)
class EpsilonGreedy:
    """ε-greedy action-value agent (S&B 2.2–2.6); with ``initial_value=5, epsilon=0`` it is the optimistic greedy agent."""

    epsilon: float = 0.1
    """Probability of pulling a uniformly random arm instead of a greedy one."""
    step_size: float | None = None
    """Constant step size α of ``Q ← Q + α (R − Q)``; ``None`` means sample averages (α = 1/N(a))."""
    initial_value: float = 0.0
    """``Q₁(a)`` for every arm: 0 is realistic, 5 is optimistic on the standard testbed."""

    def __post_init__(self) -> None:
        check_unit_interval("epsilon", self.epsilon)
        if self.step_size is not None:
            check_unit_interval("step_size", self.step_size)
            check_positive("step_size", self.step_size)
        if isinstance(self.initial_value, bool) or not isinstance(self.initial_value, numbers.Real) \
                or not np.isfinite(self.initial_value):
            raise ValueError(f"initial_value must be a finite number, got {self.initial_value!r}")

    @property
    def label(self) -> str:
        """A short name for legends, e.g. ``ε-greedy ε=0.1`` or ``greedy Q₁=5 α=0.1``."""
        name = f"ε-greedy ε={self.epsilon:g}" if self.epsilon > 0 else "greedy"
        if self.initial_value != 0:
            name += f" Q₁={self.initial_value:g}"
        return name + (f" α={self.step_size:g}" if self.step_size is not None else "")


@dataclass(frozen=True)
class UCB:
    """Upper-confidence-bound action selection (S&B 2.7, equation 2.10)."""

    c: float = 2.0
    """Exploration weight of the bonus ``c √(ln t / N(a))``; ``c = 0`` is greedy."""
    step_size: float | None = None
    """Constant step size for ``Q``; ``None`` means sample averages."""

    def __post_init__(self) -> None:
        if isinstance(self.c, bool) or not isinstance(self.c, numbers.Real) or not (np.isfinite(self.c) and self.c >= 0):
            raise ValueError(f"UCB's c must be a finite number >= 0, got {self.c!r}")
        if self.step_size is not None:
            check_unit_interval("step_size", self.step_size)
            check_positive("step_size", self.step_size)

    @property
    def label(self) -> str:
        """A short name for legends, e.g. ``UCB c=2``."""
        return f"UCB c={self.c:g}"


@dataclass(frozen=True)
class GradientBandit:
    """Softmax preferences updated by stochastic gradient ascent on the expected reward (S&B 2.8)."""

    alpha: float = 0.1
    """Step size α of the preference update."""
    baseline: bool = True
    """Subtract ``R̄``, the average of the rewards before this step (S&B's choice); else the baseline is 0."""

    def __post_init__(self) -> None:
        check_positive("alpha", self.alpha)
        if not isinstance(self.baseline, (bool, np.bool_)):
            raise TypeError(f"baseline must be True or False, got {self.baseline!r}")

    @property
    def label(self) -> str:
        """A short name for legends, e.g. ``gradient α=0.1, baseline``."""
        return f"gradient α={self.alpha:g}, " + ("baseline" if self.baseline else "no baseline")


Agent = EpsilonGreedy | UCB | GradientBandit


@dataclass(frozen=True)
class BanditHistory:
    """What `run_testbed` measured, each averaged over the runs, one entry per step."""

    label: str
    """The agent's label."""
    average_reward: Float[np.ndarray, " steps"]
    """Mean reward received at each step."""
    optimal_action: Float[np.ndarray, " steps"]
    """Fraction of runs whose action at each step was an optimal arm (an ``argmax q*``)."""
    regret: Float[np.ndarray, " steps"]
    """Cumulative pseudo-regret ``Σ_{s ≤ t} (max_a q*(a) − q*(A_s))`` after each step."""
    optimal_value: float
    """Mean over runs and steps of ``max_a q*(a)``: the reward of an agent that knew ``q*``."""


def argmax_random_ties(
    values: Float[np.ndarray, "runs arms"], rng: np.random.Generator
) -> Int[np.ndarray, " runs"]:
    """Per row, the index of a maximum, uniform among tied maxima (S&B: "ties broken randomly").

    ``np.argmax`` would always take the first of tied arms: a greedy agent starting from
    ``Q = 0`` would pull arm 0 first in every run. On the testbed the arms are exchangeable,
    so the averages would not change, but on a problem whose arms come in a meaningful
    order they would.
    """
    is_max = values == values.max(axis=1, keepdims=True)
    return np.argmax(is_max * rng.random(values.shape), axis=1)


def softmax_preferences(H: Float[np.ndarray, "*batch arms"]) -> Float[np.ndarray, "*batch arms"]:
    """``π(a) = exp H(a) / Σ_b exp H(b)`` along the last axis (shifted by the maximum, so it never overflows)."""
    z = np.exp(H - H.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def gradient_bandit_update(
    H: Float[np.ndarray, "runs arms"],
    action: Int[np.ndarray, " runs"],
    reward: Float[np.ndarray, " runs"],
    baseline: Float[np.ndarray, " runs"],
    alpha: float,
) -> Float[np.ndarray, "runs arms"]:
    """One gradient-bandit step (S&B eq. 2.12): ``H + α (R − R̄)(1_A − π)``, ``π = softmax(H)``.

    ``(1_A − π)`` is ``∇_H log π(A)``, so the step is the score function times the reward
    above the baseline. Its expectation over ``A ~ π`` and ``R`` is ``α ∇_H Σ_a π(a) q*(a)``
    for any ``R̄`` that does not depend on ``A``. Returns new preferences (``H`` is unchanged).
    """
    pi = softmax_preferences(H)
    onehot = np.zeros_like(H)
    onehot[np.arange(H.shape[0]), action] = 1.0
    return H + alpha * (reward - baseline)[:, None] * (onehot - pi)


def run_testbed(agent: Agent, testbed: BanditTestbed, rng: np.random.Generator) -> BanditHistory:
    """Run ``testbed.runs`` independent copies of ``agent`` for ``testbed.steps`` pulls each.

    The true values ``q*`` are the first thing drawn from ``rng``, so agents run with generators
    of the same seed face the same bandit problems (common random numbers, which makes the
    comparison between agents sharper than the run-to-run noise).

    Args:
        agent: an `EpsilonGreedy`, `UCB` or `GradientBandit`.
        testbed: the problem: arms, runs, steps, stationary or random-walk values.
        rng: the only source of randomness (problems, exploration and rewards).

    Returns:
        A `BanditHistory` of per-step averages over the runs.

    Raises:
        TypeError: ``agent`` is not one of the agents here, or ``rng`` is not a ``np.random.Generator``.
    """
    if not isinstance(agent, (EpsilonGreedy, UCB, GradientBandit)):
        raise TypeError(
            f"agent must be an EpsilonGreedy, UCB or GradientBandit, got {type(agent).__name__}"
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a np.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    runs, k, steps = testbed.runs, testbed.n_arms, testbed.steps
    rows = np.arange(runs)
    if testbed.stationary:
        q_star = rng.normal(testbed.q_mean, 1.0, size=(runs, k))
    else:
        q_star = np.full((runs, k), float(testbed.q_mean))

    # The agent's state: estimates and counts, or preferences and the reward baseline.
    if isinstance(agent, GradientBandit):
        H = np.zeros((runs, k))
        mean_reward = np.zeros(runs)
    else:
        Q = np.full((runs, k), float(getattr(agent, "initial_value", 0.0)))
        N = np.zeros((runs, k))

    reward_per_step, optimal, gap, best_values = (np.empty(steps) for _ in range(4))
    best = q_star.max(axis=1)
    for t in range(1, steps + 1):
        # 1. Choose an arm in every run.
        if isinstance(agent, EpsilonGreedy):
            action = argmax_random_ties(Q, rng)
            explore = rng.random(runs) < agent.epsilon
            action[explore] = rng.integers(0, k, size=int(explore.sum()))
        elif isinstance(agent, UCB):
            # An arm never pulled has an infinite bonus: each is tried once first.
            with np.errstate(divide="ignore", invalid="ignore"):
                bonus = agent.c * np.sqrt(np.log(t) / N)
            action = argmax_random_ties(np.where(N == 0, np.inf, Q + bonus), rng)
        else:
            # Inverse-CDF sampling from each run's own π (min guards the cumsum's rounding).
            cdf = softmax_preferences(H).cumsum(axis=1)
            action = np.minimum((cdf < rng.random((runs, 1))).sum(axis=1), k - 1)

        # 2. The bandit pays R ~ N(q*(A), 1).
        chosen = q_star[rows, action]
        reward = rng.normal(chosen, 1.0)
        reward_per_step[t - 1] = reward.mean()
        optimal[t - 1] = (chosen == best).mean()
        gap[t - 1] = (best - chosen).mean()
        best_values[t - 1] = best.mean()

        # 3. Learn from (A, R).
        if isinstance(agent, GradientBandit):
            # S&B's R̄_t averages the rewards *before* step t, with R̄_1 = R_1.
            if agent.baseline:
                baseline = reward if t == 1 else mean_reward
            else:
                baseline = np.zeros(runs)
            H = gradient_bandit_update(H, action, reward, baseline, agent.alpha)
            mean_reward += (reward - mean_reward) / t
        else:
            N[rows, action] += 1
            alpha = 1.0 / N[rows, action] if agent.step_size is None else agent.step_size
            Q[rows, action] += alpha * (reward - Q[rows, action])

        if not testbed.stationary:
            q_star += rng.normal(0.0, testbed.walk_std, size=(runs, k))
            best = q_star.max(axis=1)

    return BanditHistory(
        agent.label, reward_per_step, optimal, np.cumsum(gap), float(best_values.mean())
    )
