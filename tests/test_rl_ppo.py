"""PPO (mechlearn.rl.ppo, mechlearn.rl.rollout) against independent references.

* GAE: Stable-Baselines3's ``RolloutBuffer.compute_returns_and_advantage`` on the same rollout,
  with episode ends and truncations (SB3 bootstraps a truncation by adding γ·V(final obs) to the
  reward; our GAE reads V(final obs) itself), to FLOAT64; λ = 1 against a plain Monte Carlo loop;
  λ = 0 against the one-step TD error.
* Losses: hand-computed clipped-surrogate cases (value and gradient), and SB3's ``PPO.train`` on
  a fixed batch with the same weights: its logged losses, KL, clip fraction and explained
  variance, and the weights after its Adam step, against ours.
* Rollouts: the vectorised collector records exactly what a plain loop of ``env.step`` over
  separate environments records with the same seeds and actions (EXACT).
* Config validation (hypothesis fuzz) and a quick recipe run into ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.rl.common import make_env
from mechlearn.rl.ppo import (
    CategoricalActorCritic, GaussianActorCritic, PPOConfig, approx_kl, clip_fraction, clipped_surrogate_loss,
    compute_gae, explained_variance, load_ppo_agent, make_actor_critic, ppo_recipe, ppo_update, ppo_value_loss,
)
from mechlearn.rl.rollout import Rollout, RolloutCollector
from mechlearn.testing import EXACT, FLOAT32, FLOAT64, Tolerance, assert_close

FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
ADAM_STEP = Tolerance("ADAM_STEP", 1e-5, 1e-6)
"""Weights after one float32 Adam step computed by two implementations (sums in different orders)."""


def random_rollout(T=24, n=3, seed=0, truncations=True, end_terminated=False):
    """Random rewards and values with episode ends: terminations and (optionally) truncations."""
    rng = np.random.default_rng(seed)
    rewards, values = rng.normal(size=(T, n)), rng.normal(size=(T, n))
    ends = rng.random((T, n)) < 0.2
    truncated = ends & (rng.random((T, n)) < 0.5) if truncations else np.zeros((T, n), bool)
    terminated = ends & ~truncated
    if end_terminated:
        terminated[-1], truncated[-1] = True, False
    final_values = np.where(truncated, rng.normal(size=(T, n)), 0.0)
    next_value = rng.normal(size=n)
    return rewards, values, terminated, truncated, final_values, next_value


def ours_gae(rewards, values, terminated, truncated, final_values, next_value, gamma, lam):
    t = lambda a: torch.as_tensor(a)  # noqa: E731
    adv, ret = compute_gae(t(rewards), t(values), t(next_value), t(terminated), t(truncated), t(final_values), gamma, lam)
    return adv.numpy(), ret.numpy()


def sb3_gae(rewards, values, terminated, truncated, final_values, next_value, gamma, lam):
    from stable_baselines3.common.buffers import RolloutBuffer

    T, n = rewards.shape
    buf = RolloutBuffer(T, gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2), gae_lambda=lam, gamma=gamma, n_envs=n)
    buf.reset()
    done = terminated | truncated
    # SB3's PPO.collect_rollouts: rewards[idx] += gamma * V(terminal_observation) on a time-limit truncation.
    buf.rewards = rewards + gamma * final_values * truncated
    buf.values = values.copy()
    buf.episode_starts = np.concatenate([np.zeros((1, n)), done[:-1]]).astype(np.float64)
    buf.advantages = np.zeros((T, n))  # float64 buffers, so SB3 computes in float64 like ours
    buf.compute_returns_and_advantage(last_values=torch.as_tensor(next_value), dones=done[-1])
    return buf.advantages, buf.returns


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.98, 0.8), (0.9, 0.0), (1.0, 1.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_gae_equals_stable_baselines3_with_terminations_and_truncations(gamma, lam, seed):
    data = random_rollout(seed=seed)
    assert data[3].any() and data[2].any(), "the rollout should contain both kinds of episode end"
    adv, ret = ours_gae(*data, gamma, lam)
    adv_sb3, ret_sb3 = sb3_gae(*data, gamma, lam)
    assert_close(adv, adv_sb3, FLOAT64, name="advantages vs SB3")
    assert_close(ret, ret_sb3, FLOAT64, name="returns vs SB3")


def test_treating_a_truncation_as_a_termination_disagrees_with_sb3():
    rewards, values, terminated, truncated, final_values, next_value = random_rollout(seed=3)
    wrong = ours_gae(rewards, values, terminated | truncated, np.zeros_like(truncated), final_values, next_value,
                     0.99, 0.95)[0]
    right = sb3_gae(rewards, values, terminated, truncated, final_values, next_value, 0.99, 0.95)[0]
    assert np.abs(wrong - right).max() > 1e-3


def test_lambda_one_gives_monte_carlo_returns():
    gamma = 0.97
    rewards, values, terminated, truncated, final_values, next_value = random_rollout(
        seed=4, truncations=False, end_terminated=True)
    _, ret = ours_gae(rewards, values, terminated, truncated, final_values, next_value, gamma, 1.0)
    mc = np.zeros_like(rewards)
    for env in range(rewards.shape[1]):
        g = 0.0
        for t in reversed(range(len(rewards))):
            g = rewards[t, env] + (0.0 if terminated[t, env] else gamma * g)
            mc[t, env] = g
    assert_close(ret, mc, FLOAT64, name="λ = 1 returns vs Monte Carlo")


def test_lambda_zero_gives_the_one_step_td_error():
    gamma = 0.9
    rewards, values, terminated, truncated, final_values, next_value = random_rollout(seed=5)
    adv, _ = ours_gae(rewards, values, terminated, truncated, final_values, next_value, gamma, 0.0)
    following = np.concatenate([values[1:], next_value[None]])
    following = np.where(truncated, final_values, np.where(terminated, 0.0, following))
    assert_close(adv, rewards + gamma * following - values, FLOAT64, name="λ = 0 vs TD error")


def test_gae_rejects_bad_input():
    data = [torch.as_tensor(a) for a in random_rollout()]
    with pytest.raises(ValueError, match="gae_lambda must be in"):
        unchecked(compute_gae)(*data[:2], data[5], data[2], data[3], data[4], 0.99, 1.5)
    with pytest.raises(ValueError, match="one shape"):
        unchecked(compute_gae)(data[0][:-1], data[1], data[5], data[2], data[3], data[4], 0.99, 0.95)


# --- losses ---------------------------------------------------------------------------------------

def test_clipped_surrogate_hand_computed_cases_and_zero_gradient_where_clipped():
    # ratios e^0.5 ≈ 1.65 and e^-0.5 ≈ 0.61 with advantages +1 and -1, ε = 0.2
    logp = torch.tensor([0.5, -0.5, 0.5, -0.5], dtype=torch.float64, requires_grad=True)
    old = torch.zeros(4, dtype=torch.float64)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    loss = clipped_surrogate_loss(logp, old, adv, 0.2)
    e = math.exp(0.5)
    terms = [1.2, 1 / e, -e, -0.8]  # min(rA, clip(r)A) per sample
    assert_close(loss, -sum(terms) / 4, FLOAT64, name="clipped surrogate")
    loss.backward()
    # d/dlogp of -rA/4 = -rA/4 where unclipped; 0 where the clipped term is the minimum
    assert_close(logp.grad, [0.0, -(1 / e) / 4, e / 4, 0.0], FLOAT64, name="gradient")
    assert_close(approx_kl(logp.detach(), old), np.mean([e - 1 - 0.5, 1 / e - 1 + 0.5] * 2), FLOAT64, name="approx KL")
    assert_close(clip_fraction(logp.detach(), old, 0.2), 1.0, EXACT, name="clip fraction")
    assert_close(clip_fraction(logp.detach(), old, 0.7), 0.0, EXACT, name="no clipping at ε = 0.7")


def test_value_loss_and_explained_variance():
    v, r = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.5, 2.0, 1.0])
    assert_close(ppo_value_loss(v, r), (0.25 + 0 + 4) / 3, FLOAT32, name="MSE")
    old = torch.tensor([0.0, 2.0, 2.9])  # clipped values 0.2, 2.0, 3.0 with clip 0.2
    assert_close(ppo_value_loss(v, r, old, 0.2), (1.69 + 0 + 4) / 3, FLOAT32, name="clipped value loss")
    assert explained_variance(r, r) == 1.0
    assert_close(explained_variance(torch.full((3,), 7.0), r), 0.0, FLOAT32, name="constant critic")
    assert math.isnan(explained_variance(r, torch.ones(3)))
    with pytest.raises(ValueError, match="both old_values and clip_coef"):
        unchecked(ppo_value_loss)(v, r, old)


def _copy_into_sb3(ours: CategoricalActorCritic, policy) -> None:
    pairs = [(ours.actor[0], policy.mlp_extractor.policy_net[0]), (ours.actor[2], policy.mlp_extractor.policy_net[2]),
             (ours.actor[4], policy.action_net), (ours.critic[0], policy.mlp_extractor.value_net[0]),
             (ours.critic[2], policy.mlp_extractor.value_net[2]), (ours.critic[4], policy.value_net)]
    with torch.no_grad():
        for a, b in pairs:
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    return pairs


def test_one_update_equals_stable_baselines3_ppo_train_on_the_same_batch():
    from stable_baselines3 import PPO

    T, n = 16, 4
    config = PPOConfig(num_envs=n, num_steps=T, num_minibatches=1, update_epochs=1, ent_coef=0.01, vf_coef=0.5,
                       learning_rate=1e-3, clip_coef=0.2, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95)
    ours = CategoricalActorCritic(4, 2, seed=3)
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.normal(size=(T, n, 4)), dtype=torch.float32)
    actions = torch.as_tensor(rng.integers(0, 2, (T, n)))
    with torch.no_grad():
        logp_now, _, values = ours.evaluate_actions(obs.flatten(0, 1), actions.flatten())
    old_logprobs = (logp_now + torch.as_tensor(rng.normal(0, 0.3, T * n), dtype=torch.float32)).reshape(T, n)
    values = values.reshape(T, n)
    rewards, _, terminated, truncated, final_values, _ = random_rollout(T, n, seed=6)
    f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    rollout = Rollout(obs, actions, old_logprobs, values, f32(rewards), torch.as_tensor(terminated),
                      torch.as_tensor(truncated), torch.zeros(T, n, 4), f32(final_values), obs[-1], values[-1] * 0.5)
    advantages, returns = compute_gae(rollout.rewards, rollout.values, rollout.next_value, rollout.terminated,
                                      rollout.truncated, rollout.final_values, config.gamma, config.gae_lambda)

    sb3 = PPO("MlpPolicy", make_env("CartPole-v1"), n_steps=T * n, batch_size=T * n, n_epochs=1, ent_coef=0.01,
              vf_coef=0.5, learning_rate=1e-3, clip_range=0.2, max_grad_norm=0.5, device="cpu", seed=0)
    pairs = _copy_into_sb3(ours, sb3.policy)
    buf = sb3.rollout_buffer
    buf.reset()
    buf.observations[:] = obs.reshape(T * n, 1, 4).numpy()
    buf.actions[:] = actions.reshape(T * n, 1, 1).numpy()
    buf.log_probs[:] = old_logprobs.reshape(T * n, 1).numpy()
    buf.values[:] = values.reshape(T * n, 1).numpy()
    buf.advantages[:] = advantages.reshape(T * n, 1).numpy()
    buf.returns[:] = returns.reshape(T * n, 1).numpy()
    buf.full = True
    from stable_baselines3.common.logger import Logger

    sb3.set_logger(Logger(folder=None, output_formats=[]))
    sb3.train()
    logged = sb3.logger.name_to_value

    optimizer = torch.optim.Adam(ours.parameters(), lr=1e-3, eps=1e-5)
    stats = ppo_update(ours, optimizer, rollout, config, 0.2, torch.Generator().manual_seed(0))
    assert_close(stats["policy_loss"], logged["train/policy_gradient_loss"], FLOAT32, name="policy loss vs SB3")
    assert_close(stats["value_loss"], logged["train/value_loss"], FLOAT32, name="value loss vs SB3")
    assert_close(stats["entropy"], -logged["train/entropy_loss"], FLOAT32, name="entropy vs SB3")
    assert_close(stats["approx_kl"], logged["train/approx_kl"], FLOAT32, name="approx KL vs SB3")
    assert_close(stats["clip_frac"], logged["train/clip_fraction"], EXACT, name="clip fraction vs SB3")
    assert_close(stats["explained_variance"], logged["train/explained_variance"], FLOAT32, name="explained var")
    assert 0 < stats["clip_frac"] < 1, "the batch should have clipped and unclipped ratios"
    for a, b in pairs:
        assert_close(a.weight, b.weight, ADAM_STEP, name="weights after one step vs SB3")
        assert_close(a.bias, b.bias, ADAM_STEP, name="biases after one step vs SB3")


def test_the_sb3_comparison_can_fail_with_a_different_clip_range():
    logp, old = torch.tensor([0.5, -0.4]), torch.zeros(2)
    adv = torch.tensor([1.0, -1.0])
    ratio = torch.exp(logp - old)
    sb3 = -torch.min(adv * ratio, adv * torch.clamp(ratio, 0.8, 1.2)).mean()  # SB3's formula, ε = 0.2
    assert abs(float(clipped_surrogate_loss(logp, old, adv, 0.3)) - float(sb3)) > 1e-3
    assert_close(clipped_surrogate_loss(logp, old, adv, 0.2), sb3, FLOAT32, name="SB3 formula")


# --- rollouts -------------------------------------------------------------------------------------

class ScriptedAgent:
    """Acts from a fixed table of actions; its 'critic' is the sum of the observation."""

    def __init__(self, actions):
        self.actions, self.t = actions, 0

    def act(self, obs, generator):
        a = torch.as_tensor(self.actions[self.t])
        self.t += 1
        return a, torch.zeros(len(obs)), self.value(obs)

    def value(self, obs):
        return obs.sum(-1)


def test_vectorised_rollout_equals_a_plain_loop_over_env_step():
    T, n, seed = 60, 3, 11
    actions = np.random.default_rng(0).integers(0, 2, (T, n))
    collector = RolloutCollector("CartPole-v1", n, seed, env_kwargs={"max_episode_steps": 15})
    r = collector.collect(ScriptedAgent(actions), T, torch.Generator())
    collector.close()
    assert r.truncated.any() and r.terminated.any()
    for i in range(n):
        env = gym.make("CartPole-v1", max_episode_steps=15)
        obs, _ = env.reset(seed=seed + i)
        rows = {"obs": [], "reward": [], "term": [], "trunc": [], "final": []}
        for t in range(T):
            rows["obs"].append(obs)
            obs, reward, term, trunc, _ = env.step(int(actions[t, i]))
            rows["reward"].append(reward), rows["term"].append(term), rows["trunc"].append(trunc)
            rows["final"].append(obs if (term or trunc) else np.zeros(4, np.float32))
            if term or trunc:
                obs, _ = env.reset()
        assert_close(r.obs[:, i], np.array(rows["obs"]), EXACT, name="observations")
        assert_close(r.rewards[:, i], rows["reward"], EXACT, name="rewards")
        assert_close(r.terminated[:, i], rows["term"], EXACT, name="terminated")
        assert_close(r.truncated[:, i], rows["trunc"], EXACT, name="truncated")
        assert_close(r.final_obs[:, i], np.array(rows["final"]), EXACT, name="final observations")
        cut = r.truncated[:, i] & ~r.terminated[:, i]
        assert_close(r.final_values[cut, i], r.final_obs[cut, i].sum(-1), EXACT, name="bootstrap values")
        assert_close(r.next_obs[i], obs, EXACT, name="next observation")
    assert len(collector.episode_returns) == int((r.terminated | r.truncated).sum())


def test_a_different_seed_gives_a_different_rollout():
    actions = np.zeros((5, 2), dtype=np.int64)
    a = RolloutCollector("CartPole-v1", 2, 0).collect(ScriptedAgent(actions), 5, torch.Generator())
    b = RolloutCollector("CartPole-v1", 2, 1).collect(ScriptedAgent(actions), 5, torch.Generator())
    assert not torch.equal(a.obs, b.obs)


def test_gaussian_actor_critic_log_probabilities_equal_torch_normal():
    agent = make_actor_critic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-2, 2, (2,)), seed=1)
    assert isinstance(agent, GaussianActorCritic)
    with torch.no_grad():
        agent.log_std.copy_(torch.tensor([-0.3, 0.4]))
    obs = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    actions, logp, _ = agent.act(obs, torch.Generator().manual_seed(1))
    dist = torch.distributions.Normal(agent.actor(obs), agent.log_std.exp())
    logp2, entropy, _ = agent.evaluate_actions(obs, actions)
    assert_close(logp, dist.log_prob(actions).sum(-1), FLOAT32, name="Gaussian log-prob")
    assert_close(entropy, dist.entropy().sum(-1), FLOAT32, name="Gaussian entropy")
    with pytest.raises(TypeError, match="Discrete or 1-D Box"):
        make_actor_critic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.MultiBinary(3))


# --- config, training, recipe ---------------------------------------------------------------------

@FUZZ
@given(name=st.sampled_from(["gamma", "gae_lambda", "clip_coef"]),
       value=st.one_of(st.floats(allow_nan=True).filter(lambda x: not 0 <= x <= 1), st.just(-1e-9), st.just(1.5)))
def test_config_rejects_unit_interval_values_outside_0_1(name, value):
    with pytest.raises(ValueError, match=f"{name} must be in"):
        PPOConfig(**{name: value})


@FUZZ
@given(num_envs=st.integers(1, 9), num_steps=st.integers(1, 40), num_minibatches=st.integers(1, 50))
def test_config_requires_minibatches_to_divide_the_batch(num_envs, num_steps, num_minibatches):
    batch = num_envs * num_steps
    if batch % num_minibatches:
        with pytest.raises(ValueError, match="does not split"):
            PPOConfig(num_envs=num_envs, num_steps=num_steps, num_minibatches=num_minibatches)
    else:
        assert PPOConfig(num_envs=num_envs, num_steps=num_steps, num_minibatches=num_minibatches).batch_size == batch


@pytest.mark.parametrize("kwargs,error,match", [
    ({"env_id": "CartPoel-v1"}, ValueError, "no gymnasium environment.*CartPole-v1"),
    ({"num_envs": 0}, ValueError, "num_envs must be a positive integer"),
    ({"update_epochs": True}, TypeError, "update_epochs must be a positive integer, got bool"),
    ({"learning_rate": -1e-3}, ValueError, "learning_rate must be a positive number"),
    ({"ent_coef": -0.1}, ValueError, "ent_coef must be a number ≥ 0"),
    ({"hidden_sizes": ()}, ValueError, "hidden_sizes must be positive integers"),
])
def test_config_errors_name_what_was_expected(kwargs, error, match):
    with pytest.raises(error, match=match):
        PPOConfig(**kwargs)


def test_training_is_deterministic_and_records_its_history():
    config = PPOConfig(total_timesteps=512, num_envs=4, num_steps=32, update_epochs=2, seed=5)
    _, h1 = train_ppo_quiet(config)
    _, h2 = train_ppo_quiet(config)
    assert [u["approx_kl"] for u in h1["updates"]] == [u["approx_kl"] for u in h2["updates"]]
    assert h1["episodes"] == h2["episodes"] and len(h1["updates"]) == 4 and h1["steps"] == 512
    for key in ("steps", "seconds", "policy_loss", "value_loss", "approx_kl", "clip_frac", "explained_variance",
                "entropy"):
        assert key in h1["updates"][0]
    _, h3 = train_ppo_quiet(dataclasses.replace(config, seed=6))
    assert h3["episodes"] != h1["episodes"]


def train_ppo_quiet(config):
    from mechlearn.rl.ppo import train_ppo

    return train_ppo(config, progress=False)


def test_pendulum_trains_with_a_gaussian_policy():
    config = PPOConfig(env_id="Pendulum-v1", total_timesteps=256, num_envs=2, num_steps=64, num_minibatches=4,
                       update_epochs=1)
    agent, history = train_ppo_quiet(config)
    assert isinstance(agent, GaussianActorCritic) and len(history["updates"]) == 2
    assert np.all(np.isfinite([u["policy_loss"] for u in history["updates"]]))


def test_quick_recipe_writes_a_loadable_checkpoint_and_manifest(tmp_path):
    manifest = ppo_recipe(tmp_path, quick=True, progress=False)
    assert (tmp_path / "ppo_cartpole.pt").is_file() and (tmp_path / "ppo_cartpole.json").is_file()
    for key in ("config", "seed", "metrics", "steps", "seconds", "curve", "sha256", "solved_at"):
        assert key in manifest
    assert manifest["quick"] and manifest["steps"] == 4 * 256
    agent, loaded = load_ppo_agent("ppo_cartpole", tmp_path)
    assert loaded["sha256"] == manifest["sha256"] and isinstance(agent, CategoricalActorCritic)
    with pytest.raises(ValueError, match="refusing to write into the mechlearn package"):
        ppo_recipe(__import__("mechlearn").rl.common.CHECKPOINT_DIR, quick=True, progress=False)


def test_committed_cartpole_policy_is_solved_and_greedy_returns_are_500():
    from mechlearn.rl.common import evaluate

    agent, manifest = load_ppo_agent("ppo_cartpole")
    assert manifest["solved_at"] is not None and not manifest["quick"]
    returns = evaluate(agent.greedy, "CartPole-v1", range(20_000, 20_003))
    assert returns.min() >= 475
