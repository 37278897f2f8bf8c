"""mechlearn.rl's shared pieces: argument checks, make_env, evaluate, solved_at, recipe manifests, the package surface."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mechlearn.rl as rl
from mechlearn.rl import common
from mechlearn.testing import EXACT, FLOAT64, assert_close

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def test_every_public_name_of_the_submodules_is_re_exported_once():
    owners: dict[str, str] = {}
    for module in rl._SUBMODULES:
        for name in module.__all__:
            assert name not in owners, f"{name} is public in both {owners[name]} and {module.__name__}"
            owners[name] = module.__name__
            assert getattr(rl, name) is getattr(module, name)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.booleans(), st.text(max_size=3)))
@FUZZ
def test_check_unit_interval_accepts_exactly_the_numbers_in_0_1(value):
    ok = not isinstance(value, (bool, str)) and 0 <= value <= 1
    if ok:
        assert unchecked(common.check_unit_interval)("gamma", value) == float(value)
    else:
        with pytest.raises((TypeError, ValueError), match=r"gamma must be .*\[0, 1\]"):
            unchecked(common.check_unit_interval)("gamma", value)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.booleans()), st.booleans())
@FUZZ
def test_check_positive_names_what_it_expected(value, integer):
    ok = not isinstance(value, bool) and (isinstance(value, int) or not integer) and math.isfinite(value) and value > 0
    if ok:
        assert unchecked(common.check_positive)("n", value, integer=integer) == value
    else:
        with pytest.raises((TypeError, ValueError), match="n must be a positive"):
            unchecked(common.check_positive)("n", value, integer=integer)


def test_make_env_names_an_unknown_id_and_suggests_close_ones():
    with pytest.raises(ValueError, match=r"'CartPole-v9'.*did you mean 'CartPole-v1'"):
        common.make_env("CartPole-v9")
    with pytest.raises(ValueError, match="no gymnasium environment is registered as 'NoSuchEnv-v0'"):
        common.make_env("NoSuchEnv-v0")
    with pytest.raises(TypeError, match="env_id must be a gymnasium id"):
        unchecked(common.make_env)(3)
    env = common.make_env("CartPole-v1")
    assert env.spec.id == "CartPole-v1"
    env.close()


def test_check_discrete_and_check_observation():
    assert common.check_discrete(gym.spaces.Discrete(3), "DQN") == 3
    with pytest.raises(TypeError, match="DQN needs a discrete action space"):
        common.check_discrete(gym.spaces.Box(-1, 1, (1,)), "DQN")
    assert common.check_observation(np.zeros((5, 4)), (4,), "policy").dtype == np.float32
    with pytest.raises(ValueError, match=r"expected observations of shape \(\.\.\., 4\), got \(5, 3\)"):
        common.check_observation(np.zeros((5, 3)), (4,), "policy")


def test_evaluate_matches_a_plain_loop_over_env_step():
    def policy(obs):
        return int(obs[2] + obs[3] > 0)  # push towards the side the pole falls to

    ours = common.evaluate(policy, "CartPole-v1", seeds=[11, 12, 13])
    env = gym.make("CartPole-v1")
    reference = []
    for seed in (11, 12, 13):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(policy(obs))
            total, done = total + r, term or trunc
        reference.append(total)
    assert_close(ours, np.array(reference), EXACT)
    assert ours.min() > 100  # the heuristic balances: a broken loop (one step per episode) would give 1s
    with pytest.raises(ValueError, match="at least one seed"):
        common.evaluate(policy, "CartPole-v1", seeds=[])


def test_rolling_mean_and_solved_at_against_a_loop():
    rng = np.random.default_rng(0)
    returns = rng.uniform(0, 500, size=250)
    window = 100
    loop = np.array([returns[max(0, i - window + 1): i + 1].mean() for i in range(len(returns))])
    assert_close(common.rolling_mean(returns, window), loop, FLOAT64)
    ends = np.cumsum(rng.integers(10, 500, size=250))
    first = next(i for i in range(window - 1, 250) if loop[i] >= 260)
    assert common.solved_at(ends, returns, threshold=260, window=window) == ends[first]
    assert common.solved_at(ends, returns, threshold=501, window=window) is None
    assert common.solved_at([5], [600.0], threshold=475, window=100) is None  # one episode is not a window
    with pytest.raises(ValueError, match="differ in length"):
        common.solved_at([1, 2], [1.0], threshold=1)


def test_manifest_round_trip_and_tamper_detection(tmp_path):
    ckpt = tmp_path / "toy_policy.pt"
    ckpt.write_bytes(b"weights")
    manifest = common.write_manifest(ckpt, config={"lr": np.float64(1e-3)}, seed=0, metrics={"solved_at": 1},
                                     steps=np.int64(10), seconds=1.5)
    assert json.loads((tmp_path / "toy_policy.json").read_text()) == manifest
    path, loaded = common.load_manifest("toy_policy", tmp_path)
    assert path == ckpt and loaded["config"]["lr"] == 1e-3 and loaded["steps"] == 10
    ckpt.write_bytes(b"weightz")
    with pytest.raises(ValueError, match="sha256"):
        common.load_manifest("toy_policy", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m mechlearn.rl"):
        common.load_manifest("missing", tmp_path)
    with pytest.raises(ValueError, match="a manifest needs `seconds`"):
        common.write_manifest(ckpt, config={}, metrics={}, steps=1)


def test_recipes_refuse_the_package_folder(tmp_path):
    with pytest.raises(ValueError, match="refusing to write into the mechlearn package"):
        common.recipe_output_dir(common.CHECKPOINT_DIR)
    assert common.recipe_output_dir(tmp_path / "new") == (tmp_path / "new").resolve()
    result = subprocess.run([sys.executable, "-m", "mechlearn.rl", "ppo", "--out", str(common.CHECKPOINT_DIR)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "refusing to write into the mechlearn package" in result.stderr


def test_every_registered_recipe_exists():
    from mechlearn.rl.__main__ import RECIPES

    for name, (module, function) in RECIPES.items():
        assert callable(getattr(importlib.import_module(module), function, None)), f"recipe {name}: {module}.{function} is missing"
