"""Day 36: the 10-armed testbed against Sutton & Barto's published results and the gradient bandit against autograd.

References, independent of `mechlearn.rl.bandits`:

* Sutton & Barto (2018), *Reinforcement Learning: An Introduction*, 2nd ed., figures 2.2–2.5 (2000 runs
  of 1000 steps). Read off the figures: ε = 0.1 reaches an average reward of about 1.4 (ranges below)
  and about 80 % optimal actions; greedy (ε = 0) plateaus near 1.0 and about a third optimal;
  optimistic greedy (Q₁ = 5, α = 0.1) has a spike at step 11 and ends above realistic ε-greedy;
  UCB (c = 2) beats ε-greedy after the first k steps; the gradient bandit with a baseline beats the
  one without on a testbed with mean +4.
* Closed forms: the random agent (ε = 1) pulls the best arm 1/k of the time and earns E[q*] = 0;
  the expected gradient-bandit update equals α ∇_H Σ_a softmax(H)_a q(a), computed by torch autograd.

The statistical ranges are wide enough for the run-to-run noise of 2000 runs (the standard error of
a 100-step average is about 0.01) and narrow enough to fail a wrong agent (greedy misses every one).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.rl.bandits import (
    UCB,
    BanditTestbed,
    EpsilonGreedy,
    GradientBandit,
    argmax_random_ties,
    gradient_bandit_update,
    run_testbed,
    softmax_preferences,
)
from mechlearn.testing import EXACT, FLOAT64, assert_close, compare

FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def construct(cls, *args, **kwargs):
    """``cls(*args, **kwargs)`` with ``__init__`` unwrapped from the test-time type checker (users run without it)."""
    obj = object.__new__(cls)
    unchecked(cls.__init__)(obj, *args, **kwargs)
    return obj


SB_TESTBED = BanditTestbed(n_arms=10, runs=2000, steps=1000)
"""The testbed of Sutton & Barto's figures 2.2–2.4."""
LAST = slice(900, 1000)
"""Steps 901–1000: 'at step 1000', averaged over 100 steps to shrink the noise of one step."""


@pytest.fixture(scope="module")
def figure_2_2():
    return {eps: run_testbed(EpsilonGreedy(eps), SB_TESTBED, np.random.default_rng(0)) for eps in (0.0, 0.01, 0.1)}


def test_epsilon_greedy_reproduces_sutton_barto_figure_2_2(figure_2_2):
    h = figure_2_2[0.1]
    reward, optimal = h.average_reward[LAST].mean(), h.optimal_action[LAST].mean()
    # S&B Fig 2.2: ε = 0.1 ends near 1.4 (its ceiling is 0.9 · E[max q*] ≈ 1.385 plus the 1/10 of
    # random pulls that hit the best arm) and about 80 % optimal (never above 91 %, S&B p. 29).
    assert 1.30 <= reward <= 1.45, f"ε = 0.1: average reward {reward:.3f} at step 1000, S&B show about 1.35–1.4"
    assert 0.75 <= optimal <= 0.85, f"ε = 0.1: {optimal:.1%} optimal actions at step 1000, S&B show about 80 %"
    greedy = figure_2_2[0.0]
    assert 0.9 <= greedy.average_reward[LAST].mean() <= 1.15, "greedy should plateau near 1.0 (S&B Fig 2.2)"
    assert 0.25 <= greedy.optimal_action[LAST].mean() <= 0.45, "greedy finds the best arm about a third of the time"
    # ε = 0.01 learns more slowly: between greedy and ε = 0.1 in % optimal at step 1000.
    assert greedy.optimal_action[LAST].mean() < figure_2_2[0.01].optimal_action[LAST].mean() < optimal
    assert h.regret[-1] < figure_2_2[0.01].regret[-1] < greedy.regret[-1], "regret ranks the agents the same way"


def test_random_agent_matches_closed_form():
    h = run_testbed(EpsilonGreedy(1.0), SB_TESTBED, np.random.default_rng(1))
    assert abs(h.optimal_action.mean() - 0.1) < 0.005, "ε = 1 pulls uniformly: the best arm 1/10 of the time"
    assert abs(h.average_reward.mean()) < 0.02, "and earns E[q*(a)] = 0 on average"
    # E[max of 10 standard normals] = 1.5388 (numerical integration of 10 x φ(x) Φ(x)^9).
    assert abs(h.optimal_value - 1.5388) < 0.03


def test_ucb_beats_epsilon_greedy_after_the_first_k_steps(figure_2_2):
    ucb = run_testbed(UCB(2.0), SB_TESTBED, np.random.default_rng(0))
    eps = figure_2_2[0.1]
    after = slice(SB_TESTBED.n_arms, None)
    assert ucb.average_reward[after].mean() > eps.average_reward[after].mean() + 0.05, "S&B Fig 2.4: UCB is better"
    assert ucb.average_reward[LAST].mean() > eps.average_reward[LAST].mean()
    # The first k pulls try every arm once, so they earn E[q*] = 0; step k + 1 is UCB's spike.
    assert abs(ucb.average_reward[: SB_TESTBED.n_arms].mean()) < 0.05
    assert ucb.average_reward[SB_TESTBED.n_arms] > 0.8


def test_optimistic_greedy_has_its_spike_and_ends_ahead():
    optimistic = run_testbed(EpsilonGreedy(0.0, step_size=0.1, initial_value=5.0), SB_TESTBED, np.random.default_rng(0))
    realistic = run_testbed(EpsilonGreedy(0.1, step_size=0.1), SB_TESTBED, np.random.default_rng(0))
    k = SB_TESTBED.n_arms
    # Every arm disappoints when tried, so the first k steps try each arm; at step k + 1 most runs pick the best.
    assert optimistic.optimal_action[k] > 0.35 > optimistic.optimal_action[: k].max(), "S&B Fig 2.3's early spike"
    assert optimistic.optimal_action[k] > optimistic.optimal_action[k + 1 : k + 6].max(), "the spike falls back"
    assert optimistic.optimal_action[LAST].mean() > realistic.optimal_action[LAST].mean() + 0.03, "and ends ahead"


def test_gradient_bandit_baseline_matters_on_a_shifted_testbed():
    testbed = BanditTestbed(q_mean=4.0, runs=1000)
    with_b = run_testbed(GradientBandit(0.1, baseline=True), testbed, np.random.default_rng(0))
    without = run_testbed(GradientBandit(0.1, baseline=False), testbed, np.random.default_rng(0))
    # S&B Fig 2.5: about 80 % optimal with the baseline, about 50 % without (α = 0.1, step 1000).
    assert 0.75 <= with_b.optimal_action[LAST].mean() <= 0.92
    assert 0.35 <= without.optimal_action[LAST].mean() <= 0.65


def test_constant_step_size_wins_on_the_nonstationary_testbed():
    testbed = BanditTestbed(runs=500, steps=3000, stationary=False)
    sample_average = run_testbed(EpsilonGreedy(0.1), testbed, np.random.default_rng(0))
    constant = run_testbed(EpsilonGreedy(0.1, step_size=0.1), testbed, np.random.default_rng(0))
    late = slice(2000, None)
    # S&B exercise 2.5: sample averages weigh stale rewards as much as fresh ones and fall behind.
    assert constant.average_reward[late].mean() > sample_average.average_reward[late].mean() + 0.05
    assert np.all(sample_average.optimal_action[:1] == 1.0), "all q* start equal, so every arm is optimal at step 1"


@pytest.mark.parametrize("baseline", [0.0, -0.7, 3.2])
def test_expected_gradient_bandit_update_is_the_exact_gradient(baseline):
    rng = np.random.default_rng(3)
    k, alpha = 6, 0.25
    H, q = rng.normal(size=k), rng.normal(size=k)
    pi = softmax_preferences(H)
    # E[ΔH] = Σ_a π(a) E[ΔH | A = a], and the update is linear in R, so E[R | A = a] = q(a) can replace R.
    rows = np.tile(H, (k, 1))
    steps = gradient_bandit_update(rows, np.arange(k), q, np.full(k, baseline), alpha) - rows
    expected_update = pi @ steps
    H_t = torch.tensor(H, requires_grad=True)
    (torch.softmax(H_t, 0) @ torch.tensor(q)).backward()
    assert_close(expected_update, alpha * H_t.grad.numpy(), FLOAT64, name=f"E[ΔH] = α ∇ Σ π q, baseline {baseline}")


def test_an_action_dependent_baseline_breaks_the_expected_update():
    rng = np.random.default_rng(3)
    k, alpha = 6, 0.25
    H, q = rng.normal(size=k), rng.normal(size=k)
    rows = np.tile(H, (k, 1))
    steps = gradient_bandit_update(rows, np.arange(k), q, q.copy(), alpha) - rows  # baseline = q(A): not allowed
    H_t = torch.tensor(H, requires_grad=True)
    (torch.softmax(H_t, 0) @ torch.tensor(q)).backward()
    assert not compare(softmax_preferences(H) @ steps, alpha * H_t.grad.numpy(), FLOAT64)


def test_softmax_preferences_matches_torch_and_survives_large_preferences():
    H = np.array([[0.0, 1.0, -2.0], [1000.0, 999.0, -1000.0]])
    assert_close(softmax_preferences(H), torch.softmax(torch.tensor(H), -1).numpy(), FLOAT64)


def test_argmax_random_ties_is_uniform_over_the_maxima_only():
    rng = np.random.default_rng(0)
    values = np.tile([1.0, 3.0, 0.0, 3.0, 3.0], (30000, 1))
    picks = argmax_random_ties(values, rng)
    assert set(np.unique(picks)) == {1, 3, 4}
    counts = np.bincount(picks, minlength=5)[[1, 3, 4]]
    chi2 = ((counts - 10000) ** 2 / 10000).sum()
    assert chi2 < 13.8, f"ties should be broken uniformly (χ² with 2 dof {chi2:.1f} ≥ 13.8, p < 0.001)"


def test_runs_are_reproducible_and_agents_share_their_problems():
    small = BanditTestbed(runs=50, steps=100)
    a = run_testbed(UCB(1.0), small, np.random.default_rng(7))
    b = run_testbed(UCB(1.0), small, np.random.default_rng(7))
    assert_close(a.regret, b.regret, EXACT)
    c = run_testbed(EpsilonGreedy(0.2), small, np.random.default_rng(7))
    assert a.optimal_value == c.optimal_value, "the same seed gives every agent the same q*"


def test_bad_input_is_refused():
    for make, error, words in [
        (lambda: EpsilonGreedy(1.5), ValueError, "epsilon must be in [0, 1]"),
        (lambda: EpsilonGreedy(-0.1), ValueError, "epsilon"),
        (lambda: EpsilonGreedy(0.1, step_size=0.0), ValueError, "step_size"),
        (lambda: UCB(-1.0), ValueError, "c must be a finite number >= 0"),
        (lambda: GradientBandit(alpha=0.0), ValueError, "alpha"),
        (lambda: BanditTestbed(n_arms=1), ValueError, "at least 2 arms"),
        (lambda: BanditTestbed(n_arms=2.5), TypeError, "n_arms"),
        (lambda: BanditTestbed(runs=0), ValueError, "runs"),
    ]:
        with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
            make()
    with pytest.raises(TypeError, match="np.random.Generator"):
        unchecked(run_testbed)(UCB(), BanditTestbed(runs=2, steps=2), 0)
    with pytest.raises(TypeError, match="EpsilonGreedy, UCB or GradientBandit"):
        unchecked(run_testbed)("greedy", BanditTestbed(runs=2, steps=2), np.random.default_rng(0))


@FUZZ
@given(
    epsilon=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.none(), st.text(max_size=2)),
    c=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
    n_arms=st.one_of(st.integers(-2, 4), st.floats(-1, 5), st.none()),
)
def test_fuzz_agent_and_testbed_settings(epsilon, c, n_arms):
    for make in (
        lambda: construct(EpsilonGreedy, epsilon),
        lambda: construct(UCB, c),
        lambda: construct(BanditTestbed, n_arms=n_arms, runs=3, steps=4),
    ):
        try:
            thing = make()
        except (ValueError, TypeError) as err:
            assert any(w in str(err) for w in ("must", "needs", "at least")), f"unhelpful message: {err}"
            continue
        agent = thing if not isinstance(thing, BanditTestbed) else EpsilonGreedy(0.1)
        testbed = thing if isinstance(thing, BanditTestbed) else BanditTestbed(runs=3, steps=4)
        h = run_testbed(agent, testbed, np.random.default_rng(0))
        assert np.isfinite(h.regret).all() and np.all(np.diff(h.regret) >= 0), "regret is finite and never decreases"
