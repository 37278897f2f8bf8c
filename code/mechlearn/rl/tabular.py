"""Tabular reinforcement learning: MDPs as arrays, dynamic programming, and TD learning.

An MDP with few states fits in arrays: ``P[s, a, s']`` (transition probabilities), ``R[s, a]``
(expected reward), a boolean mask of terminal states and a discount ``gamma``. `TabularMDP`
holds them; `mdp_from_gym` reads them from the transition table of a gymnasium toy-text
environment (``env.unwrapped.P`` of FrozenLake-v1 and CliffWalking-v1), and `random_walk_mdp`
builds Sutton & Barto's random-walk chain (Example 6.2, 5 states; Section 7.1, 19 states).

* **Planning** (Sutton & Barto ch. 4; ARENA 2.1, "Tabular RL & policy improvement"): the value
  of a policy solves the Bellman equation ``v = r_pi + gamma P_pi v``, a linear system;
  `policy_evaluation_exact` solves it, `policy_evaluation_iterative` iterates it as a
  contraction. `policy_iteration` alternates evaluation and greedy improvement;
  `value_iteration` iterates the Bellman *optimality* operator.
* **Learning from samples** (S&B ch. 6; ARENA 2.2 part 1): `td_control` runs Q-learning,
  SARSA or Expected SARSA on a gymnasium environment, ε-greedy, with a ``np.random.Generator``.
  They differ only in the target: ``max_a' Q(s', a')`` (off-policy), ``Q(s', a')`` for the action
  actually taken next, or its expectation under the ε-greedy policy.
* **Prediction with longer backups** (S&B ch. 7 and 12): `n_step_td` and `td_lambda` (online,
  accumulating eligibility traces) estimate state values from sampled episodes
  (`sample_episodes`); both are vectorised over a grid of step sizes, so a sweep over α costs
  one pass over the episodes.

Policies are arrays ``pi[s, a]`` of action probabilities (rows sum to 1); `greedy_from_q` and
`policy_from_actions` make deterministic ones. Terminal states are absorbing with zero reward,
so their value is 0 and ``gamma = 1`` is allowed for policies that terminate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jaxtyping import Bool, Float, Int

from mechlearn.rl.common import check_positive, check_unit_interval, make_env

__all__ = [
    "TabularMDP",
    "mdp_from_gym",
    "random_walk_mdp",
    "random_walk_true_values",
    "check_policy",
    "uniform_policy",
    "policy_from_actions",
    "greedy_from_q",
    "q_from_v",
    "policy_evaluation_iterative",
    "policy_evaluation_exact",
    "PlanningResult",
    "policy_iteration",
    "value_iteration",
    "TDControlConfig",
    "TDControlResult",
    "td_control",
    "greedy_path",
    "sample_episodes",
    "n_step_td",
    "td_lambda",
    "rms_error",
]

_PROB_ATOL = 1e-9


@dataclass
class TabularMDP:
    """A finite MDP as arrays; terminal states are absorbing with zero reward."""

    P: Float[np.ndarray, "S A S"]
    """Transition probabilities ``P[s, a, s']``; each ``P[s, a]`` sums to 1."""
    R: Float[np.ndarray, "S A"]
    """Expected immediate reward of taking ``a`` in ``s``: ``sum_s' p(s'|s,a) r(s,a,s')``."""
    terminal: Bool[np.ndarray, " S"]
    """Which states end an episode (their value is 0)."""
    gamma: float
    """Discount factor in [0, 1]; 1 needs policies that reach a terminal state."""
    start: int = 0
    """The state episodes start from."""
    grid_shape: tuple[int, int] | None = None
    """(rows, columns) when state ``s`` is the cell ``divmod(s, columns)`` of a grid, for drawing."""
    name: str = "mdp"
    """What the MDP is, for messages and figures."""

    def __post_init__(self) -> None:
        self.gamma = check_unit_interval("gamma", self.gamma)
        self.P = np.asarray(self.P, dtype=np.float64)
        self.R = np.asarray(self.R, dtype=np.float64)
        self.terminal = np.asarray(self.terminal, dtype=bool)
        S = self.P.shape[0]
        if self.P.ndim != 3 or self.P.shape[2] != S:
            raise ValueError(f"P must have shape (S, A, S), got {self.P.shape}")
        if self.R.shape != self.P.shape[:2]:
            raise ValueError(
                f"R must have shape (S, A) = {self.P.shape[:2]}, got {self.R.shape}"
            )
        if self.terminal.shape != (S,):
            raise ValueError(
                f"terminal must have shape ({S},), got {self.terminal.shape}"
            )
        if not np.isfinite(self.R).all():
            raise ValueError("R must be finite")
        live = (
            ~self.terminal
        )  # terminal rows are replaced below, whatever they hold
        if (self.P < 0).any() or not np.allclose(
            self.P[live].sum(-1), 1.0, atol=_PROB_ATOL
        ):
            raise ValueError(
                "each P[s, a] must be a probability distribution over next states"
            )
        if not 0 <= self.start < S:
            raise ValueError(f"start must be a state in [0, {S}), got {self.start}")
        grid = self.grid_shape
        if grid is not None and grid[0] * grid[1] != S:
            raise ValueError(
                f"grid_shape {self.grid_shape} does not fit {S} states"
            )
        # Terminal states absorb with zero reward, whatever the source table says.
        t = self.terminal
        self.P[t] = 0.0
        for s in np.flatnonzero(t):
            self.P[s, :, s] = 1.0
        self.R[t] = 0.0

    @property
    def n_states(self) -> int:
        """Number of states S."""
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions A."""
        return self.P.shape[1]


def mdp_from_gym(env_id: str, gamma: float, **kwargs: Any) -> TabularMDP:
    """The MDP of a gymnasium toy-text environment, read from its table ``env.unwrapped.P``.

    ``P[s][a]`` there is a list of ``(prob, next_state, reward, terminated)``. Expected rewards
    sum ``prob * reward``; a state reached with ``terminated`` is terminal.

    Args:
        env_id: e.g. ``"FrozenLake-v1"`` (pass ``is_slippery=False`` for the deterministic lake)
            or ``"CliffWalking-v1"``.
        gamma: discount factor in [0, 1].
        **kwargs: passed to ``gymnasium.make``.

    Raises:
        ValueError: unknown id, or an environment without a transition table.
    """
    gamma = check_unit_interval("gamma", gamma)
    env = make_env(env_id, **kwargs)
    table = getattr(env.unwrapped, "P", None)
    if not isinstance(table, dict):
        env.close()
        raise ValueError(
            f"{env_id} has no transition table env.unwrapped.P (toy-text envs do)"
        )
    S, A = int(env.observation_space.n), int(env.action_space.n)
    P, R, terminal = np.zeros((S, A, S)), np.zeros((S, A)), np.zeros(S, dtype=bool)
    for s in range(S):
        for a in range(A):
            for prob, s_next, reward, done in table[s][a]:
                P[s, a, int(s_next)] += prob
                R[s, a] += prob * reward
                terminal[int(s_next)] |= bool(done)
    start = int(np.argmax(env.unwrapped.initial_state_distrib))
    desc = getattr(env.unwrapped, "desc", None)
    grid = tuple(desc.shape) if desc is not None else tuple(env.unwrapped.shape)
    env.close()
    return TabularMDP(
        P, R, terminal, gamma, start=start, grid_shape=grid, name=env_id
    )


def random_walk_mdp(
    n_states: int = 5, gamma: float = 1.0, left_reward: float = 0.0
) -> TabularMDP:
    """Sutton & Barto's random walk: ``n_states`` in a row between two terminal ends.

    States are ``0 .. n_states + 1``; 0 and ``n_states + 1`` are terminal and episodes start in
    the middle. Action 0 steps left, action 1 right; the walk itself is the uniform policy.
    Stepping onto the right end pays +1, onto the left end ``left_reward`` (0 in Example 6.2,
    -1 in the 19-state walk of Figure 7.2); every other step pays 0.
    """
    n = check_positive("n_states", n_states, integer=True)
    S = n + 2
    P, R = np.zeros((S, 2, S)), np.zeros((S, 2))
    for s in range(1, n + 1):
        P[s, 0, s - 1] = P[s, 1, s + 1] = 1.0
    R[1, 0], R[n, 1] = left_reward, 1.0
    terminal = np.zeros(S, dtype=bool)
    terminal[[0, S - 1]] = True
    return TabularMDP(
        P, R, terminal, gamma, start=(S - 1) // 2, name=f"random walk ({n} states)"
    )


def random_walk_true_values(
    n_states: int, left_reward: float = 0.0
) -> Float[np.ndarray, " S"]:
    """Closed-form values of the undiscounted uniform random walk (terminal ends included, 0).

    From state k the walk ends on the right with probability ``k / (n + 1)`` (gambler's ruin),
    so ``v(k) = left + (1 - left) k / (n + 1)`` inside and 0 at the ends.
    """
    n = check_positive("n_states", n_states, integer=True)
    k = np.arange(n + 2, dtype=np.float64)
    v = left_reward + (1.0 - left_reward) * k / (n + 1)
    v[[0, -1]] = 0.0
    return v


# ---------------------------------------------------------------- policies


def check_policy(mdp: TabularMDP, policy: Any) -> np.ndarray:
    """``policy`` as a float array ``pi[s, a]`` after checking its shape and that rows sum to 1."""
    pi = np.asarray(policy, dtype=np.float64)
    if pi.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"a policy for {mdp.name} must have shape (S, A) = "
            f"{(mdp.n_states, mdp.n_actions)}, "
            f"got {pi.shape} (use policy_from_actions for one action per state)"
        )
    if (
        not np.isfinite(pi).all()
        or (pi < 0).any()
        or not np.allclose(pi.sum(1), 1.0, atol=1e-8)
    ):
        raise ValueError(
            "each row pi[s] must be a distribution over actions (sum to 1)"
        )
    return pi


def uniform_policy(mdp: TabularMDP) -> Float[np.ndarray, "S A"]:
    """Every action equally likely in every state."""
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def policy_from_actions(
    actions: Int[np.ndarray, " S"], n_actions: int
) -> Float[np.ndarray, "S A"]:
    """The deterministic policy that takes ``actions[s]`` in state ``s`` (one-hot rows)."""
    a = np.asarray(actions)
    if (
        a.ndim != 1
        or not np.issubdtype(a.dtype, np.integer)
        or a.min() < 0
        or a.max() >= n_actions
    ):
        raise ValueError(
            f"actions must be a 1-D array of integers in [0, {n_actions}), got {a!r}"
        )
    return np.eye(n_actions)[a]


def greedy_from_q(
    Q: Float[np.ndarray, "S A"], tol: float = 1e-9
) -> Float[np.ndarray, "S A"]:
    """The deterministic policy that picks ``argmax_a Q[s, a]``; ties within ``tol`` go to the lowest action."""
    best = Q >= Q.max(axis=1, keepdims=True) - tol
    return np.eye(Q.shape[1])[best.argmax(axis=1)]


def q_from_v(
    mdp: TabularMDP, V: Float[np.ndarray, " S"]
) -> Float[np.ndarray, "S A"]:
    """Action values from state values by one Bellman backup: ``Q = R + gamma P V``."""
    return mdp.R + mdp.gamma * mdp.P @ V


# ---------------------------------------------------------------- planning (S&B ch. 4)


def _check_proper(mdp: TabularMDP, pi: np.ndarray) -> None:
    """With gamma = 1 the Bellman system is singular unless every state can reach a terminal one."""
    if mdp.gamma < 1.0:
        return
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    reach = mdp.terminal.copy()
    while True:
        grown = reach | ((P_pi[:, reach] > 0).any(axis=1))
        if (grown == reach).all():
            break
        reach = grown
    if not reach.all():
        stuck = np.flatnonzero(~reach).tolist()
        shown = ", ".join(map(str, stuck[:5])) + (
            f" and {len(stuck) - 5} more" if len(stuck) > 5 else ""
        )
        raise ValueError(
            f"gamma = 1 and the policy never reaches a terminal state from states "
            f"{shown} of {mdp.name}: their value is not defined (I - P_pi is "
            "singular); use gamma < 1 or a policy that ends"
        )


def policy_evaluation_exact(
    mdp: TabularMDP, policy: Float[np.ndarray, "S A"]
) -> Float[np.ndarray, " S"]:
    """``v_pi`` by solving the Bellman equation ``(I - gamma P_pi) v = r_pi`` on the non-terminal states.

    Raises:
        ValueError: bad policy, or gamma = 1 with a policy that does not terminate.
    """
    pi = check_policy(mdp, policy)
    _check_proper(mdp, pi)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)  # state-to-state transitions under pi
    r_pi = np.einsum("sa,sa->s", pi, mdp.R)
    live = ~mdp.terminal
    V = np.zeros(mdp.n_states)
    A = np.eye(live.sum()) - mdp.gamma * P_pi[np.ix_(live, live)]
    V[live] = np.linalg.solve(A, r_pi[live])
    return V


def policy_evaluation_iterative(
    mdp: TabularMDP,
    policy: Float[np.ndarray, "S A"],
    tol: float = 1e-10,
    max_sweeps: int = 100_000,
) -> tuple[Float[np.ndarray, " S"], Float[np.ndarray, " sweeps"]]:
    """``v_pi`` by repeating the Bellman backup ``v <- r_pi + gamma P_pi v`` from ``v = 0``.

    For gamma < 1 the backup is a contraction by ``gamma`` in the max norm, so the error shrinks
    at least geometrically. Sweeps are synchronous (all states from the previous ``v``).

    Returns:
        ``(V, deltas)``: the values and ``max_s |v_new - v_old|`` of each sweep; the loop stops
        when that change is below ``tol``.

    Raises:
        ValueError: bad policy, gamma = 1 with a policy that does not terminate, or no
            convergence within ``max_sweeps``.
    """
    pi = check_policy(mdp, policy)
    check_positive("tol", tol)
    _check_proper(mdp, pi)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = np.einsum("sa,sa->s", pi, mdp.R)
    V, deltas = np.zeros(mdp.n_states), []
    for _ in range(max_sweeps):
        V_new = r_pi + mdp.gamma * P_pi @ V
        deltas.append(np.abs(V_new - V).max())
        V = V_new
        if deltas[-1] < tol:
            return V, np.asarray(deltas)
    raise ValueError(
        f"policy evaluation did not converge to tol={tol} in {max_sweeps} sweeps"
    )


@dataclass
class PlanningResult:
    """What policy iteration or value iteration found."""

    policy: Float[np.ndarray, "S A"]
    """A deterministic optimal policy (greedy with respect to ``Q``)."""
    V: Float[np.ndarray, " S"]
    """Its state values."""
    Q: Float[np.ndarray, "S A"]
    """Action values ``R + gamma P V``."""
    iterations: int
    """Improvement steps (policy iteration) or sweeps (value iteration)."""
    history: list[dict] = field(default_factory=list)
    """Per iteration: ``changed`` actions (policy iteration) or ``delta`` (value iteration)."""


def policy_iteration(
    mdp: TabularMDP,
    policy: Float[np.ndarray, "S A"] | None = None,
    max_iterations: int = 1_000,
) -> PlanningResult:
    """Alternate exact evaluation and greedy improvement until the policy stops changing.

    The policy improvement theorem makes each greedy policy at least as good as the last in
    every state; a finite MDP has finitely many deterministic policies, so it stops, and a policy
    that is greedy with respect to its own values satisfies the Bellman optimality equation.

    Args:
        policy: the starting policy (uniform by default; with gamma = 1 it must terminate).
    """
    pi = check_policy(mdp, uniform_policy(mdp) if policy is None else policy)
    history = []
    for it in range(1, max_iterations + 1):
        V = policy_evaluation_exact(mdp, pi)
        new_pi = greedy_from_q(q_from_v(mdp, V))
        changed = int(
            (new_pi.argmax(1) != pi.argmax(1)).sum() if it > 1 else mdp.n_states
        )
        history.append({"iteration": it, "changed": changed, "V": V})
        if np.array_equal(new_pi, pi):
            return PlanningResult(pi, V, q_from_v(mdp, V), it, history)
        pi = new_pi
    raise ValueError(
        f"policy iteration did not stabilise in {max_iterations} iterations"
    )


def value_iteration(
    mdp: TabularMDP, tol: float = 1e-10, max_sweeps: int = 100_000
) -> PlanningResult:
    """Iterate the Bellman optimality backup ``v <- max_a (R + gamma P v)`` from ``v = 0``.

    Stops when a sweep changes no value by more than ``tol``; the greedy policy of the final
    values is returned with the values and action values.
    """
    check_positive("tol", tol)
    V, history = np.zeros(mdp.n_states), []
    for sweep in range(1, max_sweeps + 1):
        V_new = q_from_v(mdp, V).max(axis=1)
        delta = float(np.abs(V_new - V).max())
        history.append({"sweep": sweep, "delta": delta})
        V = V_new
        if delta < tol:
            Q = q_from_v(mdp, V)
            return PlanningResult(greedy_from_q(Q), V, Q, sweep, history)
    raise ValueError(
        f"value iteration did not converge to tol={tol} in {max_sweeps} sweeps"
    )


# ---------------------------------------------------------------- TD control (S&B ch. 6)


@dataclass
class TDControlConfig:
    """Hyperparameters of tabular TD control (S&B Sections 6.4–6.6)."""

    algorithm: str = "q_learning"
    """``"q_learning"``, ``"sarsa"`` or ``"expected_sarsa"``."""
    alpha: float = 0.5
    """Step size of the TD update, in [0, 1]."""
    epsilon: float = 0.1
    """Probability of a uniformly random action (ε-greedy behaviour), in [0, 1]."""
    gamma: float = 1.0
    """Discount factor in [0, 1]; S&B's CliffWalking example is undiscounted."""
    n_episodes: int = 500
    """Episodes to train for."""
    max_steps: int = 1_000
    """Steps after which an episode is cut off (CliffWalking-v1 has no time limit)."""
    q_init: float = 0.0
    """Initial value of every Q[s, a]."""

    def __post_init__(self) -> None:
        if self.algorithm not in ("q_learning", "sarsa", "expected_sarsa"):
            raise ValueError(
                "algorithm must be 'q_learning', 'sarsa' or 'expected_sarsa', "
                f"got {self.algorithm!r}"
            )
        self.alpha = check_unit_interval("alpha", self.alpha)
        self.epsilon = check_unit_interval("epsilon", self.epsilon)
        self.gamma = check_unit_interval("gamma", self.gamma)
        check_positive("n_episodes", self.n_episodes, integer=True)
        check_positive("max_steps", self.max_steps, integer=True)


@dataclass
class TDControlResult:
    """What a run of `td_control` learned and how it went."""

    Q: Float[np.ndarray, "S A"]
    """The learned action values."""
    returns: Float[np.ndarray, " episodes"]
    """Undiscounted sum of rewards of each training episode (exploration included)."""
    lengths: Int[np.ndarray, " episodes"]
    """Steps of each training episode."""


def _epsilon_greedy(q: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """A random action with probability ε, else a greedy one (ties broken at random)."""
    if rng.random() < epsilon:
        return int(rng.integers(len(q)))
    best = np.flatnonzero(q == q.max())
    return int(best[0] if len(best) == 1 else best[rng.integers(len(best))])


def td_control(
    env_id: str,
    config: TDControlConfig,
    rng: np.random.Generator,
    progress: bool = False,
    **env_kwargs: Any,
) -> TDControlResult:
    """Q-learning, SARSA or Expected SARSA on a gymnasium environment with discrete states.

    Each step takes ``a`` ε-greedily, observes ``(r, s')`` and moves ``Q[s, a]`` towards the target
    ``r + gamma * next_value`` by ``alpha`` (``next_value = 0`` when ``s'`` is terminal):

    * Q-learning: ``max_a' Q[s', a']``, the greedy policy's value (off-policy);
    * SARSA: ``Q[s', a']`` for the ε-greedy action ``a'`` that will actually be taken;
    * Expected SARSA: ``sum_a' pi(a'|s') Q[s', a']`` under the ε-greedy policy.

    Args:
        env_id: a gymnasium id with ``Discrete`` observations and actions, e.g. ``"CliffWalking-v1"``.
        rng: draws the ε-greedy choices and each episode's reset seed.
        progress: show a tqdm bar over episodes.
    """
    if not isinstance(config, TDControlConfig):
        raise TypeError(
            f"config must be a TDControlConfig, got {type(config).__name__}"
        )
    env = make_env(env_id, **env_kwargs)
    S, A = int(env.observation_space.n), int(env.action_space.n)
    Q = np.full((S, A), config.q_init, dtype=np.float64)
    alpha, eps, gamma = config.alpha, config.epsilon, config.gamma
    returns, lengths = np.zeros(config.n_episodes), np.zeros(
        config.n_episodes, dtype=np.int64
    )
    episodes = range(config.n_episodes)
    if progress:
        from tqdm.auto import tqdm

        episodes = tqdm(episodes, desc=config.algorithm)
    for ep in episodes:
        s, _ = env.reset(seed=int(rng.integers(2**31)))
        a = _epsilon_greedy(Q[s], eps, rng)
        for t in range(1, config.max_steps + 1):
            s_next, r, terminated, truncated, _ = env.step(a)
            returns[ep] += r
            a_next = _epsilon_greedy(Q[s_next], eps, rng)
            if terminated:
                next_value = 0.0
            elif config.algorithm == "q_learning":
                next_value = Q[s_next].max()
            elif config.algorithm == "sarsa":
                next_value = Q[s_next, a_next]
            else:  # expected SARSA: ε spread evenly, 1 - ε over the greedy actions
                q = Q[s_next]
                best = q == q.max()
                probs = eps / A + (1.0 - eps) * best / best.sum()
                next_value = probs @ q
            Q[s, a] += alpha * (r + gamma * next_value - Q[s, a])
            s, a = s_next, a_next
            if terminated or truncated:
                break
        lengths[ep] = t
    env.close()
    return TDControlResult(Q, returns, lengths)


def greedy_path(
    mdp: TabularMDP,
    policy: Float[np.ndarray, "S A"],
    max_steps: int = 100,
    start: int | None = None,
) -> Int[np.ndarray, " T"]:
    """States visited following the most likely next state of the policy's most likely action.

    For a deterministic MDP and policy this is the trajectory itself; it stops at a terminal
    state, after ``max_steps`` steps, or on revisiting a state (a loop).
    """
    pi = check_policy(mdp, policy)
    s = mdp.start if start is None else int(start)
    path = [s]
    for _ in range(max_steps):
        if mdp.terminal[s]:
            break
        s = int(mdp.P[s, pi[s].argmax()].argmax())
        if s in path:
            path.append(s)
            break
        path.append(s)
    return np.asarray(path)


# ---------------------------------------------------------------- prediction (S&B ch. 7, 12)


def sample_episodes(
    mdp: TabularMDP,
    policy: Float[np.ndarray, "S A"],
    n_episodes: int,
    rng: np.random.Generator,
    max_steps: int = 100_000,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_episodes`` episodes from ``mdp.start``, each as ``(states, rewards)``.

    ``states`` has one more entry than ``rewards``: ``states[t+1]`` and ``rewards[t]`` follow
    the action taken in ``states[t]``, and the last state is terminal (or the cut-off one).
    """
    pi = check_policy(mdp, policy)
    check_positive("n_episodes", n_episodes, integer=True)
    # Inverse-CDF sampling: one uniform number picks the action, one the next state.
    pi_cdf, P_cdf = np.cumsum(pi, axis=1), np.cumsum(mdp.P, axis=2)
    episodes = []
    for _ in range(n_episodes):
        s, states, rewards = mdp.start, [mdp.start], []
        while not mdp.terminal[s] and len(rewards) < max_steps:
            u, w = rng.random(2)
            a = int(np.searchsorted(pi_cdf[s], u, side="right"))
            a = min(a, mdp.n_actions - 1)  # guards against rounding in the cumsum
            rewards.append(mdp.R[s, a])
            s = min(
                int(np.searchsorted(P_cdf[s, a], w, side="right")), mdp.n_states - 1
            )
            states.append(s)
        episodes.append((np.asarray(states), np.asarray(rewards, dtype=np.float64)))
    return episodes


def _alphas(alphas: Any) -> np.ndarray:
    a = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"alphas must be a number or a 1-D array of step sizes, got {a.shape}"
        )
    for x in a:
        check_unit_interval("alpha", float(x))
    return a


def n_step_td(
    episodes: list[tuple[np.ndarray, np.ndarray]],
    n_states: int,
    n: int,
    alphas: Any,
    gamma: float = 1.0,
    V0: Float[np.ndarray, " S"] | None = None,
) -> Float[np.ndarray, "E1 K S"]:
    """n-step TD prediction (S&B Section 7.1), one value table per step size in ``alphas``.

    At time ``tau = t - n + 1`` the state ``S_tau`` moves towards the n-step return
    ``G = R_{tau+1} + gamma R_{tau+2} + ... + gamma^{n-1} R_{tau+n} + gamma^n V(S_{tau+n})``,
    truncated at the end of the episode (then it is the Monte Carlo return). n = 1 is TD(0);
    n at least the episode length is constant-α Monte Carlo.

    Returns:
        Values after each episode, shape ``(len(episodes) + 1, len(alphas), n_states)``; index 0
        is ``V0`` (zeros by default).
    """
    check_positive("n", n, integer=True)
    gamma = check_unit_interval("gamma", gamma)
    a = _alphas(alphas)
    V = (
        np.zeros((a.size, n_states))
        if V0 is None
        else np.tile(np.asarray(V0, dtype=np.float64), (a.size, 1))
    )
    out = [V.copy()]
    disc = gamma ** np.arange(n)
    for states, rewards in episodes:
        T = len(rewards)
        for tau in range(T):  # the update of time tau happens at step tau + n - 1
            end = min(tau + n, T)
            G = disc[: end - tau] @ rewards[tau:end]
            if end < T:  # bootstrap from the state n steps ahead (terminal: 0)
                G = G + gamma**n * V[:, states[end]]
            s = states[tau]
            V[:, s] += a * (G - V[:, s])
        out.append(V.copy())
    return np.stack(out)


def td_lambda(
    episodes: list[tuple[np.ndarray, np.ndarray]],
    n_states: int,
    lam: float,
    alphas: Any,
    gamma: float = 1.0,
    V0: Float[np.ndarray, " S"] | None = None,
) -> Float[np.ndarray, "E1 K S"]:
    """Online TD(λ) with accumulating eligibility traces (S&B Section 12.2), per step size.

    Each step computes the TD error ``delta = R + gamma V(S') - V(S)``, bumps the trace of the
    current state ``e(S) += 1`` after decaying all traces by ``gamma * lam``, and moves every
    state by ``alpha * delta * e``: recently and frequently visited states share the credit.
    λ = 0 is TD(0); λ = 1 approaches Monte Carlo. Traces reset at each episode start.

    Returns:
        Values after each episode, shape ``(len(episodes) + 1, len(alphas), n_states)``.
    """
    lam = check_unit_interval("lam", lam)
    gamma = check_unit_interval("gamma", gamma)
    a = _alphas(alphas)
    V = (
        np.zeros((a.size, n_states))
        if V0 is None
        else np.tile(np.asarray(V0, dtype=np.float64), (a.size, 1))
    )
    out = [V.copy()]
    for states, rewards in episodes:
        e = np.zeros(n_states)  # the trace does not depend on alpha
        for t, r in enumerate(rewards):
            s, s_next = states[t], states[t + 1]
            v_next = (
                V[:, s_next] if t + 1 < len(rewards) else 0.0
            )  # the episode's end has value 0
            delta = r + gamma * v_next - V[:, s]
            e *= gamma * lam
            e[s] += 1.0
            V += (a * delta)[:, None] * e[None, :]
        out.append(V.copy())
    return np.stack(out)


def rms_error(
    V: Float[np.ndarray, "*batch S"],
    V_true: Float[np.ndarray, " S"],
    states: Any = slice(None),
) -> Float[np.ndarray, "*batch"]:
    """Root-mean-square error over ``states`` (all by default; pass the non-terminal ones)."""
    return np.sqrt(((V[..., states] - V_true[states]) ** 2).mean(axis=-1))
