"""mechlearn.rl.tabular and mechlearn.rl.gridworld against independent references.

* Policy evaluation: iterative sweeps and our linear solve against ``numpy.linalg.solve`` of the
  Bellman system written out here from gymnasium's own table ``env.unwrapped.P`` (FLOAT64).
* Optimal values: value and policy iteration against the linear program
  ``min sum_s V(s)  s.t.  V(s) >= r(s, a) + gamma sum_s' p(s'|s, a) V(s')`` solved by
  ``scipy.optimize.linprog`` (HiGHS), an independent optimiser (1e-6: the LP solver's accuracy).
* Known optimal policies: 4x4 slippery FrozenLake at gamma 0.99 (the "hug the wall" policy,
  LEFT in the left column, UP along the top row) and CliffWalking's cliff-edge path (EXACT).
* The random walk's closed-form values k/(n+1) (gambler's ruin); n-step TD against a plain loop
  over S&B's pseudocode written here (FLOAT64); TD(λ = 0) = n-step TD with n = 1.
* S&B Example 6.6: Q-learning's greedy path runs along the cliff edge, SARSA's keeps away.
* Reward shaping: potential-based shaping keeps the optimal policy (EXACT) and shifts Q by
  exactly -Phi (FLOAT64); the progress bonus changes it into a loop that never reaches the goal.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.rl.gridworld import (
    gridworld_rollout,
    make_gridworld,
    potential_shaping,
    progress_bonus,
)
from mechlearn.rl.tabular import (
    TabularMDP,
    TDControlConfig,
    greedy_path,
    greedy_from_q,
    mdp_from_gym,
    n_step_td,
    policy_evaluation_exact,
    policy_evaluation_iterative,
    policy_from_actions,
    policy_iteration,
    random_walk_mdp,
    random_walk_true_values,
    sample_episodes,
    td_control,
    td_lambda,
    uniform_policy,
    value_iteration,
)
from mechlearn.testing import EXACT, FLOAT64, Tolerance, assert_close

LP = Tolerance("LP", 1e-6, 1e-6)
"""HiGHS's simplex solves to about 1e-7 feasibility; the values are of order 1 (FrozenLake) to 14."""
ITERATIVE = Tolerance("ITERATIVE", 1e-8, 1e-8)
"""Iterative evaluation stopped at a sweep change of 1e-11, far below this."""
FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

FROZEN_LAKE_OPTIMAL = np.array([0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0])
"""The known optimal actions of slippery 4x4 FrozenLake at gamma 0.99 (0 LEFT, 1 DOWN, 2 RIGHT, 3 UP).

Holes (5, 7, 11, 12) and the goal (15) are terminal, where any action is optimal."""


def gym_bellman_reference(env_id, gamma, actions, **kwargs):
    """v_pi for a deterministic policy, solved directly from gymnasium's table with numpy.linalg."""
    import gymnasium as gym

    env = gym.make(env_id, **kwargs)
    table = env.unwrapped.P
    S = env.observation_space.n
    A_mat, b = np.eye(S), np.zeros(S)
    terminal = {int(s2) for s in table for a in table[s] for (_, s2, _, d) in table[s][a] if d}
    for s in range(S):
        if s in terminal:
            continue  # v = 0
        for p, s2, r, done in table[s][actions[s]]:
            b[s] += p * r
            if not done:
                A_mat[s, int(s2)] -= gamma * p
    return np.linalg.solve(A_mat, b)


def lp_optimal_values(mdp: TabularMDP):
    from scipy.optimize import linprog

    live = np.flatnonzero(~mdp.terminal)
    idx = {s: i for i, s in enumerate(live)}
    rows, rhs = [], []
    for s in live:
        for a in range(mdp.n_actions):
            row = np.zeros(len(live))
            row[idx[s]] -= 1.0
            for s2 in live:
                row[idx[s2]] += mdp.gamma * mdp.P[s, a, s2]
            rows.append(row)  # -V(s) + gamma P V <= -r
            rhs.append(-mdp.R[s, a])
    res = linprog(np.ones(len(live)), A_ub=np.array(rows), b_ub=np.array(rhs), bounds=(None, None), method="highs")
    assert res.status == 0, res.message
    V = np.zeros(mdp.n_states)
    V[live] = res.x
    return V


# -- building MDPs --------------------------------------------------------------------------


def test_frozen_lake_table():
    mdp = mdp_from_gym("FrozenLake-v1", 0.99)
    assert mdp.n_states == 16 and mdp.n_actions == 4 and mdp.grid_shape == (4, 4)
    assert np.flatnonzero(mdp.terminal).tolist() == [5, 7, 11, 12, 15]
    assert_close(mdp.P.sum(-1), np.ones((16, 4)), FLOAT64, name="rows are distributions")
    assert_close(mdp.R[14, 2], 1 / 3, FLOAT64, name="RIGHT from 14 reaches the goal with p = 1/3")


def test_unknown_env_and_bad_gamma():
    with pytest.raises(ValueError, match="no gymnasium environment"):
        mdp_from_gym("FrozenPond-v9", 0.9)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        mdp_from_gym("FrozenLake-v1", 1.5)
    with pytest.raises(ValueError, match="no transition table"):
        mdp_from_gym("CartPole-v1", 0.9)


# -- policy evaluation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "env_id, kwargs, gamma",
    [("FrozenLake-v1", {}, 0.9), ("FrozenLake-v1", {"is_slippery": False}, 0.99), ("CliffWalking-v1", {}, 0.95)],
)
def test_evaluation_matches_direct_linear_solve(env_id, kwargs, gamma):
    mdp = mdp_from_gym(env_id, gamma, **kwargs)
    actions = np.random.default_rng(0).integers(mdp.n_actions, size=mdp.n_states)
    pi = policy_from_actions(actions, mdp.n_actions)
    ref = gym_bellman_reference(env_id, gamma, actions, **kwargs)
    assert_close(policy_evaluation_exact(mdp, pi), ref, FLOAT64, name="exact vs numpy.linalg on gym's table")
    V_it, deltas = policy_evaluation_iterative(mdp, pi, tol=1e-11)
    assert_close(V_it, ref, ITERATIVE, name="iterative vs numpy.linalg")
    assert deltas[-1] < 1e-11


def test_contraction_rate():
    """Sweep changes of iterative evaluation shrink by at most gamma each sweep (max-norm contraction)."""
    mdp = mdp_from_gym("FrozenLake-v1", 0.9)
    _, deltas = policy_evaluation_iterative(mdp, uniform_policy(mdp), tol=1e-12)
    ratios = deltas[1:] / deltas[:-1]
    assert ratios.max() <= 0.9 + 1e-9


def test_random_walk_closed_form():
    for n, left in ((5, 0.0), (19, -1.0)):
        mdp = random_walk_mdp(n, left_reward=left)
        V = policy_evaluation_exact(mdp, uniform_policy(mdp))
        k = np.arange(1, n + 1)
        assert_close(V[1:-1], left + (1 - left) * k / (n + 1), FLOAT64, name=f"{n}-state walk")
        assert_close(random_walk_true_values(n, left), V, FLOAT64, name="closed-form helper")


def test_gamma_one_improper_policy_is_a_clear_error():
    mdp = mdp_from_gym("CliffWalking-v1", 1.0)
    always_up = policy_from_actions(np.zeros(mdp.n_states, dtype=int), mdp.n_actions)
    for evaluate in (policy_evaluation_exact, policy_evaluation_iterative):
        with pytest.raises(ValueError, match="never reaches a terminal state"):
            evaluate(mdp, always_up)


def test_bad_policies_rejected():
    mdp = mdp_from_gym("FrozenLake-v1", 0.9)
    with pytest.raises(ValueError, match=r"shape \(S, A\)"):
        unchecked(policy_evaluation_exact)(mdp, np.full((16, 3), 1 / 3))
    with pytest.raises(ValueError, match="sum to 1"):
        unchecked(policy_evaluation_exact)(mdp, np.full((16, 4), 0.3))
    with pytest.raises(ValueError, match="integers in"):
        unchecked(policy_from_actions)(np.array([0, 4]), 4)


# -- planning -------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id, kwargs, gamma", [("FrozenLake-v1", {}, 0.99), ("CliffWalking-v1", {}, 0.9)])
def test_optimal_values_match_linear_program(env_id, kwargs, gamma):
    mdp = mdp_from_gym(env_id, gamma, **kwargs)
    ref = lp_optimal_values(mdp)
    vi, pi = value_iteration(mdp, tol=1e-12), policy_iteration(mdp)
    assert_close(vi.V, ref, LP, name="value iteration vs linprog")
    assert_close(pi.V, ref, LP, name="policy iteration vs linprog")
    assert_close(policy_evaluation_exact(mdp, vi.policy), ref, LP, name="value of VI's greedy policy")


def test_frozen_lake_known_optimal_policy():
    mdp = mdp_from_gym("FrozenLake-v1", 0.99)
    live = ~mdp.terminal
    for result in (value_iteration(mdp), policy_iteration(mdp)):
        assert_close(result.policy.argmax(1)[live], FROZEN_LAKE_OPTIMAL[live], EXACT, name="hug the wall")


def test_frozen_lake_wrong_policy_is_detected():
    """The check above can fail: RIGHT at the start is not the optimal policy."""
    mdp = mdp_from_gym("FrozenLake-v1", 0.99)
    wrong = FROZEN_LAKE_OPTIMAL.copy()
    wrong[0] = 2
    assert not np.array_equal(value_iteration(mdp).policy.argmax(1), wrong)
    ref = lp_optimal_values(mdp)
    assert policy_evaluation_exact(mdp, policy_from_actions(wrong, 4))[0] < ref[0] - 1e-3


def test_cliff_walking_optimal_path():
    mdp = mdp_from_gym("CliffWalking-v1", 1.0)
    result = value_iteration(mdp)
    expected = [36, 24, *range(25, 36), 47]  # up, eleven steps right along the edge, down
    assert_close(greedy_path(mdp, result.policy), expected, EXACT, name="cliff-edge path")
    assert_close(result.V[36], -13.0, FLOAT64, name="13 steps of -1")


# -- TD control (S&B Example 6.6) -----------------------------------------------------------


def _edge_steps(path):
    """Cells of a path on the row beside the cliff, between the start and goal columns."""
    return sum(1 for s in path if s // 12 == 2 and 0 < s % 12 < 11)


@pytest.mark.slow
def test_q_learning_edge_sarsa_safe():
    mdp = mdp_from_gym("CliffWalking-v1", 1.0)
    for seed in (0, 1):
        paths = {}
        for alg in ("q_learning", "sarsa"):
            cfg = TDControlConfig(algorithm=alg, alpha=0.1, epsilon=0.1, n_episodes=500)
            res = td_control("CliffWalking-v1", cfg, np.random.default_rng(seed))
            paths[alg] = greedy_path(mdp, greedy_from_q(res.Q))
            assert paths[alg][-1] == 47, f"{alg} greedy path does not reach the goal: {paths[alg]}"
            assert len(res.returns) == 500 and res.lengths.min() >= 13
        assert _edge_steps(paths["q_learning"]) == 10
        assert _edge_steps(paths["sarsa"]) == 0


def test_expected_sarsa_runs_and_learns():
    cfg = TDControlConfig(algorithm="expected_sarsa", alpha=0.5, n_episodes=100)
    res = td_control("CliffWalking-v1", cfg, np.random.default_rng(0))
    assert res.returns[-20:].mean() > res.returns[:20].mean()


def test_td_control_is_reproducible():
    cfg = TDControlConfig(n_episodes=20)
    a = td_control("CliffWalking-v1", cfg, np.random.default_rng(3))
    b = td_control("CliffWalking-v1", cfg, np.random.default_rng(3))
    assert_close(a.Q, b.Q, EXACT, name="same generator, same Q")


def test_td_control_config_errors():
    with pytest.raises(ValueError, match="algorithm must be"):
        TDControlConfig(algorithm="q-learning")
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\]"):
        TDControlConfig(epsilon=1.2)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        TDControlConfig(alpha=-0.1)
    with pytest.raises(ValueError, match="no gymnasium environment"):
        td_control("CliffWalking-v9", TDControlConfig(), np.random.default_rng(0))


# -- n-step TD and TD(lambda) ---------------------------------------------------------------


def loop_n_step_td(episodes, n_states, n, alpha, gamma):
    """S&B's n-step TD pseudocode (Section 7.1), transcribed loop for loop."""
    V = np.zeros(n_states)
    for states, rewards in episodes:
        T = len(rewards)
        t = 0
        while True:
            tau = t - n + 1
            if tau >= 0:
                G = sum(gamma ** (i - tau - 1) * rewards[i - 1] for i in range(tau + 1, min(tau + n, T) + 1))
                if tau + n < T:
                    G += gamma**n * V[states[tau + n]]
                V[states[tau]] += alpha * (G - V[states[tau]])
            if tau == T - 1:
                break
            t += 1
    return V


@pytest.mark.parametrize("n", [1, 3, 8])
def test_n_step_td_matches_pseudocode(n):
    mdp = random_walk_mdp(5)
    eps = sample_episodes(mdp, uniform_policy(mdp), 5, np.random.default_rng(n))
    ours = n_step_td(eps, 7, n, [0.1, 0.4], gamma=0.9)
    for k, alpha in enumerate((0.1, 0.4)):
        assert_close(ours[-1, k], loop_n_step_td(eps, 7, n, alpha, 0.9), FLOAT64, name=f"n={n}, alpha={alpha}")


def test_td_lambda_zero_is_td0_and_estimates_converge():
    mdp = random_walk_mdp(5)
    eps = sample_episodes(mdp, uniform_policy(mdp), 300, np.random.default_rng(0))
    v0 = np.full(7, 0.5)
    assert_close(td_lambda(eps[:20], 7, 0.0, [0.1], V0=v0), n_step_td(eps[:20], 7, 1, [0.1], V0=v0), FLOAT64,
                 name="TD(0) two ways")
    true = random_walk_true_values(5)
    for est in (n_step_td(eps, 7, 4, [0.02], V0=v0), td_lambda(eps, 7, 0.8, [0.02], V0=v0)):
        err = np.abs(est[150:, 0, 1:-1].mean(0) - true[1:-1]).max()  # averaged: less noise
        assert err < 0.06, f"estimate far from k/6 over episodes 150-300: {err}"


def test_intermediate_n_and_lambda_are_best():
    """S&B Figures 7.2 and 12.6: at the best step size, an intermediate n (λ) beats both ends."""
    mdp = random_walk_mdp(19, left_reward=-1.0)
    true = random_walk_true_values(19, -1.0)
    runs = [sample_episodes(mdp, uniform_policy(mdp), 10, np.random.default_rng(s)) for s in range(20)]
    alphas = np.linspace(0.05, 1.0, 20)

    def best(curve_fn):
        with np.errstate(all="ignore"):
            errs = np.mean([np.sqrt(((curve_fn(ep)[1:, :, 1:-1] - true[1:-1]) ** 2).mean(-1)).mean(0)
                            for ep in runs], axis=0)
        return np.nanmin(np.where(np.isfinite(errs), errs, np.nan))

    n_best = {n: best(lambda ep, n=n: n_step_td(ep, 21, n, alphas)) for n in (1, 4, 64)}
    assert n_best[4] < min(n_best[1], n_best[64]), n_best
    lam_best = {lam: best(lambda ep, lam=lam: td_lambda(ep, 21, lam, alphas)) for lam in (0.0, 0.8, 1.0)}
    assert lam_best[0.8] < min(lam_best[0.0], lam_best[1.0]), lam_best


def test_prediction_bad_inputs():
    eps = sample_episodes(random_walk_mdp(5), uniform_policy(random_walk_mdp(5)), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"lam must be in \[0, 1\]"):
        td_lambda(eps, 7, 1.5, [0.1])
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        n_step_td(eps, 7, 2, [0.1, 2.0])
    with pytest.raises(ValueError, match="positive integer"):
        n_step_td(eps, 7, 0, [0.1])


# -- reward shaping (gridworld) -------------------------------------------------------------

LAYOUT = (".....G", ".##...", "......", "S.....")


def test_potential_shaping_keeps_the_optimal_policy():
    world = make_gridworld(LAYOUT, gamma=0.95)
    base = value_iteration(world.mdp, tol=1e-13)
    rng = np.random.default_rng(0)
    for phi in (-0.5 * np.nan_to_num(world.distance, posinf=0.0), rng.normal(size=world.mdp.n_states) * 3):
        shaped = value_iteration(potential_shaping(world.mdp, phi), tol=1e-13)
        phi0 = np.where(world.mdp.terminal, 0.0, phi)
        assert_close(shaped.Q, base.Q - phi0[:, None], Tolerance("VI", 1e-9, 1e-9), name="Q' = Q - Phi")
        assert_close(shaped.policy, base.policy, EXACT, name="same optimal policy")


def test_progress_bonus_is_gamed():
    world = make_gridworld(LAYOUT, gamma=0.95)
    base = value_iteration(world.mdp)
    gamed = value_iteration(progress_bonus(world, 0.5))
    path = gridworld_rollout(world.mdp, gamed.policy, 40)
    assert not world.mdp.terminal[path].any(), "the gamed policy should never reach the goal"
    assert len(set(path[-10:].tolist())) == 2, f"it should shuffle between two cells: {path}"
    assert_close(policy_evaluation_exact(world.mdp, gamed.policy)[world.mdp.start], 0.0, EXACT,
                 name="true return of the gamed policy")
    assert base.V[world.mdp.start] > 0.5
    finish = gridworld_rollout(world.mdp, base.policy, 40)
    assert world.mdp.terminal[finish[-1]] and len(finish) == 9


def test_gridworld_errors():
    with pytest.raises(ValueError, match="exactly one start"):
        make_gridworld(("..G", "..."))
    with pytest.raises(ValueError, match="may only use"):
        make_gridworld(("S.x", "..G"))
    with pytest.raises(ValueError, match="equal length"):
        make_gridworld(("S..", ".G"))
    world = make_gridworld(LAYOUT)
    with pytest.raises(ValueError, match="phi must be finite"):
        unchecked(potential_shaping)(world.mdp, np.zeros(3))
    with pytest.raises(ValueError, match="positive"):
        progress_bonus(world, -1.0)


# -- fuzzing the bad-input errors -----------------------------------------------------------


@FUZZ
@given(st.one_of(st.floats(allow_nan=True), st.just(-0.0), st.integers(-3, 3), st.just("0.9"), st.just(None)))
def test_fuzz_unit_interval_arguments(value):
    import re

    informative = re.compile(r"must|should|expected|got", re.IGNORECASE)
    for build in (lambda: random_walk_mdp(5, gamma=value), lambda: TDControlConfig(alpha=value),
                  lambda: TDControlConfig(epsilon=value), lambda: TDControlConfig(gamma=value)):
        try:
            build()
        except (ValueError, TypeError) as err:
            assert informative.search(str(err)), str(err)
        else:
            assert isinstance(value, (int, float)) and 0 <= value <= 1


@FUZZ
@given(st.integers(1, 5), st.integers(1, 5), st.floats(-1, 2))
def test_fuzz_policy_shapes(rows, cols, fill):
    mdp = random_walk_mdp(5)
    pi = np.full((rows, cols), fill)
    try:
        V = unchecked(policy_evaluation_exact)(mdp, pi)
    except ValueError as err:
        assert "policy" in str(err) or "pi[s]" in str(err)
    else:
        assert (rows, cols) == (7, 2) and abs(fill * 2 - 1) < 1e-8 and np.isfinite(V).all()
