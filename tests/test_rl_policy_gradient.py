"""Days 43–44: REINFORCE's returns, loss and gradient against independent references; baselines measured.

References, independent of `mechlearn.rl.policy_gradient`:

* Returns-to-go: the definition ``G_t = Σ_{k=t}^{end} γ^{k−t} r_k`` as a double loop, and
  ``scipy.signal.lfilter([1], [1, −γ], r[::-1])[::-1]`` per episode (a linear filter computes the
  recurrence ``G_t = r_t + γ G_{t+1}`` backwards), both in float64 with episode boundaries.
* The loss: for a linear-softmax policy ``π(·|s) = softmax(W s)`` the gradient of
  ``−Σ_t log π(a_t|s_t)(G_t − b_t)`` is ``−Σ_t (G_t − b_t)(onehot(a_t) − π(s_t)) s_tᵀ`` in closed form.
* Baselines: the difference between the estimates with and without a baseline has mean zero
  (a per-parameter z-test of 600 paired episodes at a family-wise level of 0.1 %, Bonferroni over
  parameters, seed 0), while the total variance drops; a "baseline" that peeks at the next
  observation (so depends on the action) fails the same test.
* gymnasium: replaying a recorded episode's actions from the same reset seed reproduces its
  observations and rewards exactly.
* Learning: REINFORCE's policy after a short run beats the untrained policy on fresh seeds by a margin.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter
from scipy.stats import norm

from mechlearn.rl.common import evaluate
from mechlearn.rl.policy_gradient import (
    CategoricalPolicy,
    ReinforceConfig,
    collect_episodes,
    discounted_returns,
    gradient_statistics,
    policy_gradient_samples,
    reinforce_loss,
    train_reinforce,
)
from mechlearn.testing import EXACT, FLOAT64, assert_close, compare

FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FAMILY_LEVEL = 1e-3
"""Family-wise false-alarm rate of the unbiasedness z-test (Bonferroni over the parameters)."""


def construct(cls, *args, **kwargs):
    """``cls(*args, **kwargs)`` with ``__init__`` unwrapped from the test-time type checker (users run without it)."""
    obj = object.__new__(cls)
    unchecked(cls.__init__)(obj, *args, **kwargs)
    return obj


def looped_returns(rewards, gamma, ends):
    """The definition, O(T²): sum the discounted rewards from t to the end of t's episode."""
    out = np.zeros(len(rewards))
    for t in range(len(rewards)):
        k = t
        while True:
            out[t] += gamma ** (k - t) * rewards[k]
            if ends[k] or k == len(rewards) - 1:
                break
            k += 1
    return out


def lfilter_returns(rewards, gamma, ends):
    """scipy's linear filter, reversed in time, one episode at a time."""
    out, start = [], 0
    for stop in list(np.flatnonzero(ends) + 1) + ([len(rewards)] if not ends[-1] else []):
        out.append(lfilter([1.0], [1.0, -gamma], rewards[start:stop][::-1])[::-1])
        start = stop
    return np.concatenate(out)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99, 1.0])
def test_discounted_returns_match_the_definition_and_lfilter(gamma):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=40)
    ends = np.zeros(40, dtype=bool)
    ends[[6, 7, 20, 39]] = True  # includes a one-step episode
    ours = discounted_returns(rewards, gamma, ends)
    assert_close(ours, looped_returns(rewards, gamma, ends), FLOAT64, name="returns vs double loop")
    assert_close(ours, lfilter_returns(rewards, gamma, ends), FLOAT64, name="returns vs lfilter")
    # Without boundaries it is one long episode, which differs wherever an episode ended before the last step.
    assert gamma == 0.0 or not compare(discounted_returns(rewards, gamma), ours, FLOAT64)


def test_discounted_returns_of_an_unfinished_last_episode():
    rewards = np.array([1.0, 1.0, 1.0, 2.0, 2.0])
    ends = np.array([False, False, True, False, False])
    assert_close(discounted_returns(rewards, 0.5, ends), [1.75, 1.5, 1.0, 3.0, 2.0], FLOAT64)


@pytest.mark.parametrize("with_baseline", [False, True])
def test_reinforce_loss_gradient_is_the_closed_form_score_function(with_baseline):
    gen = torch.Generator().manual_seed(0)
    T, obs_dim, n_actions, n_episodes = 12, 3, 4, 2
    policy = torch.nn.Linear(obs_dim, n_actions, bias=False).double()
    s = torch.randn(T, obs_dim, generator=gen, dtype=torch.float64)
    a = torch.randint(0, n_actions, (T,), generator=gen)
    G = torch.randn(T, generator=gen, dtype=torch.float64) * 5
    b = torch.randn(T, generator=gen, dtype=torch.float64) if with_baseline else None
    reinforce_loss(policy(s), a, G, b, n_episodes=n_episodes).backward()
    with torch.no_grad():
        pi = torch.softmax(s @ policy.weight.T, dim=-1)
        weight = G - (b if with_baseline else 0.0)
        closed = -((weight[:, None] * (torch.nn.functional.one_hot(a, n_actions) - pi)).T @ s) / n_episodes
    assert_close(policy.weight.grad, closed, FLOAT64, name="∇ loss = −Σ (G − b)(onehot − π) sᵀ / n")


def test_reinforce_loss_ignores_gradients_through_returns_and_baseline():
    logits = torch.zeros(3, 2, requires_grad=True)
    G = torch.ones(3, requires_grad=True)
    reinforce_loss(logits, torch.tensor([0, 1, 0]), G).backward()
    assert G.grad is None, "returns are constants of the surrogate loss"


@pytest.fixture(scope="module")
def paired_estimates():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        policy = CategoricalPolicy(4, 2, hidden_size=8)

    def peeks_at_the_next_observation(obs):
        # Not a valid baseline: the next cart velocity reveals the action taken at step t.
        b = torch.zeros(len(obs))
        b[:-1] = 100 * (obs[1:, 1] - obs[:-1, 1])
        return b

    baselines = {
        "none": None,
        "constant": lambda obs: torch.full((len(obs),), 8.0),
        "peeking": peeks_at_the_next_observation,
    }
    return policy_gradient_samples(policy, "CartPole-v1", 600, 0.99, baselines, seed=0)


def _max_abs_z(difference):
    stats = gradient_statistics(difference)
    return float(np.max(np.abs(stats.mean / stats.standard_error)))


def test_a_baseline_leaves_the_mean_gradient_unchanged_and_lowers_its_variance(paired_estimates):
    n_params = paired_estimates["none"].shape[1]
    threshold = norm.isf(FAMILY_LEVEL / (2 * n_params))
    z = _max_abs_z(paired_estimates["none"] - paired_estimates["constant"])
    assert z < threshold, f"the baseline moved the mean gradient: max |z| = {z:.2f} ≥ {threshold:.2f}"
    ratio = gradient_statistics(paired_estimates["constant"]).total_variance / gradient_statistics(
        paired_estimates["none"]
    ).total_variance
    assert ratio < 0.7, f"a constant baseline near the mean return should cut the variance, ratio {ratio:.2f}"


def test_an_action_dependent_baseline_is_caught_by_the_same_test(paired_estimates):
    n_params = paired_estimates["none"].shape[1]
    z = _max_abs_z(paired_estimates["none"] - paired_estimates["peeking"])
    assert z > norm.isf(FAMILY_LEVEL / (2 * n_params)), "the z-test must be able to detect a biased baseline"


def test_collected_episodes_replay_exactly_in_gymnasium():
    with torch.random.fork_rng():
        torch.manual_seed(1)
        policy = CategoricalPolicy(4, 2)
    envs = [gym.make("CartPole-v1") for _ in range(3)]
    episodes = collect_episodes(envs, policy, torch.Generator().manual_seed(0), seeds=[10, 11, 12])
    for seed, episode in zip([10, 11, 12], episodes):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=seed)
        observations, rewards = [], []
        for action in episode.actions:
            observations.append(obs)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            rewards.append(reward)
        assert terminated or truncated, "the recorded episode ends where gymnasium's does"
        assert_close(np.stack(observations), episode.observations, EXACT, name="observation at which each action was taken")
        assert_close(np.array(rewards), episode.rewards, EXACT)
        assert episode.truncated == bool(truncated and not terminated)


def test_reinforce_improves_on_the_untrained_policy():
    config = ReinforceConfig(num_updates=25, episodes_per_update=8, seed=0)
    result = train_reinforce(config)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = CategoricalPolicy(4, 2, config.hidden_size)
    gen = torch.Generator().manual_seed(123)
    seeds = list(range(10_000, 10_020))  # never used in training (its resets are seeded 0–7, then continue)
    trained_return = evaluate(lambda o: result.policy.act(o, gen), "CartPole-v1", seeds).mean()
    untrained_return = evaluate(lambda o: untrained.act(o, gen), "CartPole-v1", seeds).mean()
    assert trained_return > untrained_return + 40, f"trained {trained_return:.1f} vs untrained {untrained_return:.1f}"
    assert len(result.history) == 25 and len(result.episode_returns) == 25 * 8
    assert result.history[-1]["steps"] == result.episode_end_steps[-1] == sum(result.episode_returns)  # reward 1 per step


def test_training_is_reproducible_for_every_baseline():
    for baseline in ("none", "mean", "value"):
        config = ReinforceConfig(num_updates=3, episodes_per_update=4, baseline=baseline, seed=5)
        a, b = train_reinforce(config), train_reinforce(config)
        assert_close(a.episode_returns, b.episode_returns, EXACT, name=f"returns, baseline {baseline}")
        for p, q in zip(a.policy.parameters(), b.policy.parameters()):
            assert_close(p.detach(), q.detach(), EXACT)
    state = torch.random.get_rng_state()
    train_reinforce(ReinforceConfig(num_updates=1, episodes_per_update=1))
    assert torch.equal(state, torch.random.get_rng_state()), "training must not touch torch's global RNG"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\]"):
        ReinforceConfig(gamma=1.5)
    with pytest.raises(ValueError, match="baseline must be one of"):
        construct(ReinforceConfig, baseline="critic")
    with pytest.raises(ValueError, match="no gymnasium environment is registered"):
        train_reinforce(ReinforceConfig(env_id="CartPole-v9"))
    with pytest.raises(TypeError, match="discrete action space"):
        train_reinforce(ReinforceConfig(env_id="Pendulum-v1"))
    with pytest.raises(ValueError, match="one entry per step"):
        unchecked(reinforce_loss)(torch.zeros(3, 2), torch.tensor([0, 1]), torch.ones(3))
    with pytest.raises(ValueError, match=r"actions must be in \[0, 2\)"):
        unchecked(reinforce_loss)(torch.zeros(3, 2), torch.tensor([0, 2, 1]), torch.ones(3))
    with pytest.raises(ValueError, match="boolean array of the rewards' shape"):
        unchecked(discounted_returns)(np.ones(4), 0.9, np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match=r"expected observations of shape \(\.\.\., 4\)"):
        CategoricalPolicy(4, 2)(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"shape \(n >= 2 estimates, params\)"):
        gradient_statistics(np.ones((1, 3)))


@FUZZ
@given(
    gamma=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 2), st.none()),
    rewards=st.lists(st.floats(-10, 10), min_size=0, max_size=6),
    end_last=st.booleans(),
)
def test_fuzz_discounted_returns(gamma, rewards, end_last):
    r = np.asarray(rewards, dtype=np.float64)
    ends = np.zeros(len(r), dtype=bool)
    if len(r) and end_last:
        ends[-1] = True
    try:
        G = unchecked(discounted_returns)(r, gamma, ends)
    except (ValueError, TypeError) as err:
        assert "must" in str(err), f"unhelpful message: {err}"
        return
    assert G.shape == r.shape and np.isfinite(G).all()
    if len(r):
        assert_close(G, looped_returns(r, float(gamma), ends), FLOAT64)


@FUZZ
@given(
    gamma=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
    lr=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 1)),
    episodes=st.one_of(st.integers(-1, 3), st.floats(0, 3)),
    baseline=st.sampled_from(["none", "mean", "value", "Value", "", None]),
)
def test_fuzz_reinforce_config(gamma, lr, episodes, baseline):
    try:
        construct(ReinforceConfig, gamma=gamma, learning_rate=lr, episodes_per_update=episodes, baseline=baseline)
    except (ValueError, TypeError) as err:
        assert "must" in str(err), f"unhelpful message: {err}"
