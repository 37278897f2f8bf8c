"""mechlearn.superposition.toy against independent references.

* forward: a per-instance loop of plain matmuls (ToyModel) and of ``nn.Linear`` layers carrying the
  tied weights (NeuronModel), in float64 (FLOAT64);
* loss: the formula written out with one einsum (FLOAT64), and one value worked by hand;
* gradients: ``torch.autograd.gradcheck`` (central differences, float64) through W and b_final;
* generate_batch: presence rates against ``p`` within 5 binomial standard errors, correlated pairs
  always together, anticorrelated pairs never together with marginal rate ``p`` each, magnitudes
  uniform on [0, 1) (mean 1/2 within 5 standard errors);
* a known outcome: dense features with decreasing importance and n_features > d_hidden → the
  ``d_hidden`` most important features on orthonormal directions, the rest dropped (PCA's answer),
  and the dropped features' bias at their mean 1/2;
* bad input: clear errors, also under hypothesis fuzzing (without the test-time type checker).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from mechlearn.superposition.toy import LR_SCHEDULES, NeuronModel, ToyConfig, ToyModel, train_toy
from mechlearn.testing import FLOAT64, Tolerance, assert_close

FUZZ = settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

SE_MULTIPLE = 5.0
"""Statistical checks allow this many standard errors (a false alarm about once in 1.7 million)."""


def _model(cls=ToyModel, n_inst=3, n_features=6, d_hidden=2, seed=0, **pairs) -> ToyModel:
    """A float64 model with random W and b_final (b_final non-zero, so the bias path is tested)."""
    cfg = ToyConfig(n_inst, n_features, d_hidden, **pairs)
    g = torch.Generator().manual_seed(seed)
    importance = torch.rand(n_inst, n_features, generator=g) + 0.1
    model = cls(cfg, 0.5, importance, generator=g).double()
    with torch.no_grad():
        model.b_final.copy_(torch.randn(n_inst, n_features, generator=g, dtype=torch.float64) * 0.3)
    return model


def _features(model: ToyModel, batch: int = 7, seed: int = 1) -> torch.Tensor:
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, cfg.n_instances, cfg.n_features, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- forward


def test_forward_matches_a_loop_over_instances():
    model = _model()
    x = _features(model)
    W, b = model.W.detach(), model.b_final.detach()
    expected = torch.stack(
        [torch.relu(x[:, k] @ W[k].T @ W[k] + b[k]) for k in range(model.cfg.n_instances)], dim=1
    )
    assert_close(model(x).detach(), expected, FLOAT64, name="ToyModel vs per-instance matmuls")
    assert_close(model.hidden(x).detach(), torch.stack([x[:, k] @ W[k].T for k in range(3)], 1), FLOAT64)


def test_neuron_model_matches_tied_linear_layers():
    model = _model(NeuronModel)
    x = _features(model)
    outs = []
    for k in range(model.cfg.n_instances):
        down = nn.Linear(model.cfg.n_features, model.cfg.d_hidden, bias=False).double()
        up = nn.Linear(model.cfg.d_hidden, model.cfg.n_features).double()
        with torch.no_grad():
            down.weight.copy_(model.W[k])
            up.weight.copy_(model.W[k].T)
            up.bias.copy_(model.b_final[k])
        outs.append(torch.relu(up(torch.relu(down(x[:, k])))))
    assert_close(model(x).detach(), torch.stack(outs, dim=1), FLOAT64, name="NeuronModel vs nn.Linear per instance")


def test_forward_check_can_fail():
    """The neuron model is not the toy model: the same references must tell them apart."""
    toy, neuron = _model(ToyModel), _model(NeuronModel)
    x = _features(toy)
    with pytest.raises(AssertionError):
        assert_close(neuron(x).detach(), toy(x).detach(), FLOAT64)


def test_forward_accepts_any_leading_shape():
    model = _model()
    x = _features(model, batch=6).reshape(2, 3, 3, 6)
    assert_close(model(x).detach().reshape(6, 3, 6), model(x.reshape(6, 3, 6)).detach(), FLOAT64)
    assert model(x[0, 0]).shape == (3, 6)  # a single example, no batch axis


# ---------------------------------------------------------------- loss


def test_loss_matches_hand_einsum():
    model = _model()
    x = _features(model)
    out = model(x)
    B, n_inst, F = x.shape
    diff2 = (x - out) ** 2
    per_instance = torch.einsum("bif,if->i", diff2, model.importance) / (B * F)
    assert_close(model.loss_per_instance(out, x).detach(), per_instance.detach(), FLOAT64)
    assert_close(model.loss(out, x).detach(), per_instance.sum().detach(), FLOAT64, name="loss vs einsum")


def test_loss_worked_by_hand():
    """One instance, two features, importance (1, 3): ((1·1² + 3·0²) + (1·0² + 3·2²)) / (2·2) = 13/4."""
    model = ToyModel(ToyConfig(1, 2, 1), 1.0, torch.tensor([1.0, 3.0])).double()
    features = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]], dtype=torch.float64)
    out = torch.zeros_like(features)
    assert_close(model.loss(out, features).item(), 13 / 4, FLOAT64)
    with pytest.raises(AssertionError):  # the sum over features (no mean) would be 13/2
        assert_close(model.loss(out, features).item(), 13 / 2, FLOAT64)


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("cls", [ToyModel, NeuronModel])
def test_gradients_against_finite_differences(cls):
    model = _model(cls, n_inst=2, n_features=4, d_hidden=2, seed=3)
    x = _features(model, batch=5, seed=4)
    W = model.W.detach().clone().requires_grad_(True)
    b = model.b_final.detach().clone().requires_grad_(True)

    def loss(W, b):
        out = torch.func.functional_call(model, {"W": W, "b_final": b}, (x,))
        return model.loss(out, x)

    assert torch.autograd.gradcheck(loss, (W, b), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------- generate_batch


def _assert_rate(present: torch.Tensor, p: torch.Tensor, what: str) -> None:
    """``present`` (batch, ...) has mean ``p`` within SE_MULTIPLE binomial standard errors."""
    n = present.shape[0]
    rate = present.double().mean(0)
    se = torch.sqrt(p.double() * (1 - p.double()) / n).clamp_min(1 / n)
    worst = ((rate - p) / se).abs().max().item()
    assert worst <= SE_MULTIPLE, f"{what}: presence rate off by {worst:.1f} standard errors"


def test_rate_check_can_fail():
    g = torch.Generator().manual_seed(0)
    present = torch.rand(20_000, generator=g) < 0.30
    _assert_rate(present, torch.tensor(0.30), "right p")
    with pytest.raises(AssertionError, match="standard errors"):
        _assert_rate(present, torch.tensor(0.32), "wrong p")


def test_independent_features_rates_and_magnitudes():
    cfg = ToyConfig(2, 3, 1)
    p = torch.tensor([[0.9, 0.5, 0.05], [0.2, 0.01, 1.0]])
    model = ToyModel(cfg, p)
    batch = model.generate_batch(20_000, torch.Generator().manual_seed(0))
    assert batch.shape == (20_000, 2, 3) and batch.dtype == torch.float32
    assert bool(((batch >= 0) & (batch < 1)).all())
    _assert_rate(batch != 0, p, "independent features")
    values = batch[batch != 0].double()
    se = math.sqrt(1 / 12 / values.numel())
    assert abs(values.mean().item() - 0.5) <= SE_MULTIPLE * se, "present values should be uniform on [0, 1)"


def test_correlated_and_anticorrelated_pairs():
    cfg = ToyConfig(3, 7, 2, n_correlated_pairs=1, n_anticorrelated_pairs=2)
    p = torch.tensor([0.5, 0.2, 0.04])[:, None]
    model = ToyModel(cfg, p)
    batch = model.generate_batch(20_000, torch.Generator().manual_seed(1))
    present = batch != 0
    assert torch.equal(present[..., 0], present[..., 1]), "a correlated pair is present together or not at all"
    for first in (2, 4):
        both = present[..., first] & present[..., first + 1]
        assert not both.any(), "an anticorrelated pair is never present together"
        either = present[..., first] | present[..., first + 1]
        _assert_rate(either, 2 * p[:, 0], "anticorrelated pair, either present")
    _assert_rate(present, p.expand(3, 7), "every feature, marginal")
    assert model.generate_batch(4, torch.Generator().manual_seed(1)).shape == (4, 3, 7)


def test_generate_batch_is_reproducible_and_follows_the_dtype():
    model = _model(n_correlated_pairs=1)
    a = model.generate_batch(5, torch.Generator().manual_seed(7))
    b = model.generate_batch(5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.dtype == torch.float64


def test_anticorrelated_at_probability_one_half():
    """p = 1/2: exactly one of the pair is present every time (the second's conditional probability is 1)."""
    model = ToyModel(ToyConfig(1, 2, 1, n_anticorrelated_pairs=1), 0.5)
    present = model.generate_batch(2_000, torch.Generator().manual_seed(2)) != 0
    assert bool((present[..., 0] ^ present[..., 1]).all())


# ---------------------------------------------------------------- a known outcome


def test_dense_features_learn_the_most_important_ones_orthogonally():
    """Dense features (p = 1), importance 0.7^i, 5 features in 2 dimensions: like PCA, the model keeps
    features 0 and 1 on orthonormal directions and drops 2–4, whose outputs fall back to their
    mean (the bias, 1/2)."""
    cfg = ToyConfig(1, 5, 2)
    model = ToyModel(cfg, 1.0, 0.7 ** torch.arange(5), generator=torch.Generator().manual_seed(0))
    history = train_toy(
        model, steps=1500, batch_size=256, lr=1e-2, generator=torch.Generator().manual_seed(1),
        lr_schedule="linear",
    )
    W, b = model.W.detach()[0], model.b_final.detach()[0]
    norms = W.norm(dim=0)
    assert_close(norms[:2], torch.ones(2), Tolerance("trained, 1500 steps", 0.0, 0.02))
    assert bool((norms[2:] < 0.05).all()), f"dropped features should have ~0 norm, got {norms[2:]}"
    cosine = (W[:, 0] @ W[:, 1]) / (norms[0] * norms[1])
    assert abs(cosine.item()) < 0.02
    assert_close(b[2:], torch.full((3,), 0.5), Tolerance("trained bias", 0.0, 0.02))
    assert history["loss"][-1] < history["loss"][0]
    assert history["loss_per_instance"].shape == (len(history["step"]), 1)
    assert history["step"][-1] == 1499


def test_train_toy_schedules_and_history():
    model = _model(n_inst=2, n_features=3)
    for name in LR_SCHEDULES:
        history = train_toy(model, steps=3, batch_size=4, lr=0.1, generator=torch.Generator().manual_seed(0),
                            lr_schedule=name, log_every=1)
        assert history["step"] == [0, 1, 2] and history["lr"][0] == pytest.approx(0.1)
    assert history["lr"][-1] == pytest.approx(0.0, abs=1e-12)  # cosine ends at zero
    history = train_toy(model, steps=4, batch_size=4, lr=1.0, lr_schedule=lambda s, n: 0.5, log_every=3)
    assert history["step"] == [0, 3] and history["lr"] == [0.5, 0.5]


# ---------------------------------------------------------------- bad input


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="d_hidden must be >= 1"):
        ToyConfig(1, 5, 0)
    with pytest.raises(ValueError, match="n_features must be >= 1"):
        ToyConfig(1, 0, 2)
    with pytest.raises(ValueError, match="n_instances must be >= 1"):
        ToyConfig(0, 5, 2)
    with pytest.raises(ValueError, match="need 6 features, but n_features = 5"):
        ToyConfig(1, 5, 2, n_correlated_pairs=2, n_anticorrelated_pairs=1)
    init = unchecked(ToyConfig.__init__)
    with pytest.raises(TypeError, match="n_features must be an int, got float"):
        init(object.__new__(ToyConfig), 1, 5.0, 2)
    with pytest.raises(TypeError, match="n_instances must be an int, got bool"):
        init(object.__new__(ToyConfig), True, 5, 2)


def test_bad_probabilities_and_importances_are_refused():
    cfg = ToyConfig(2, 4, 2)
    with pytest.raises(ValueError, match=r"feature_probability must lie in \[0, 1\], got 1.5"):
        ToyModel(cfg, 1.5)
    with pytest.raises(ValueError, match="feature_probability must lie"):
        ToyModel(cfg, torch.tensor([0.5, -0.1])[:, None])
    with pytest.raises(ValueError, match="feature_probability must lie"):
        ToyModel(cfg, math.nan)
    with pytest.raises(ValueError, match=r"broadcastable to \(n_instances, n_features\) = \(2, 4\), got shape \(3,\)"):
        ToyModel(cfg, torch.full((3,), 0.5))
    with pytest.raises(ValueError, match=r"importance must lie in \[0, inf\], got -1"):
        ToyModel(cfg, 0.5, torch.tensor([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="same feature_probability"):
        ToyModel(ToyConfig(1, 4, 2, n_correlated_pairs=1), torch.tensor([0.1, 0.2, 0.3, 0.3]))
    with pytest.raises(ValueError, match="anticorrelated features need feature_probability <= 0.5"):
        ToyModel(ToyConfig(1, 2, 1, n_anticorrelated_pairs=1), 0.6)
    with pytest.raises(TypeError, match="ToyConfig"):
        unchecked(ToyModel.__init__)(ToyModel.__new__(ToyModel), {"n_instances": 1})


def test_bad_features_and_training_arguments_are_refused():
    model = _model(n_inst=2, n_features=4)
    with pytest.raises(ValueError, match=r"\(\.\.\., n_instances, n_features\) = \(\.\.\., 2, 4\), got \(5, 2, 3\)"):
        model(torch.zeros(5, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="got \\(4,\\)"):
        unchecked(ToyModel.forward)(model, torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="out has shape"):
        unchecked(ToyModel.loss_per_instance)(model, torch.zeros(3, 2, 4), torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        model.generate_batch(0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        train_toy(model, steps=1, lr=-1.0)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        train_toy(model, steps=1, lr_schedule="exponential")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        train_toy(model, steps=0)
    with pytest.raises(TypeError, match="model must be a ToyModel"):
        unchecked(train_toy)(nn.Linear(2, 2), steps=1)


# ---------------------------------------------------------------- fuzzing


@FUZZ
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0 <= v <= 1),
        st.floats(1.0001, 10.0),
    )
)
def test_fuzz_out_of_range_probability(value):
    with pytest.raises(ValueError, match="feature_probability must lie in"):
        unchecked(ToyModel)(ToyConfig(2, 3, 1), value)


@FUZZ
@given(value=st.one_of(st.floats(max_value=-1e-12, allow_infinity=True), st.just(math.nan)))
def test_fuzz_negative_importance(value):
    with pytest.raises(ValueError, match="importance must lie in"):
        unchecked(ToyModel)(ToyConfig(2, 3, 1), 0.5, torch.tensor([1.0, value, 1.0]))


@FUZZ
@given(
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple).filter(
        lambda s: len(s) < 2 or s[-2:] != (2, 3)
    )
)
def test_fuzz_features_of_the_wrong_shape(shape):
    model = ToyModel(ToyConfig(2, 3, 1))
    with pytest.raises(ValueError, match=r"features must have shape \(\.\.\., n_instances, n_features\)"):
        unchecked(ToyModel.forward)(model, torch.zeros(shape))


@FUZZ
@given(
    n_features=st.integers(-2, 6),
    d_hidden=st.integers(-2, 3),
    corr=st.integers(-1, 4),
    anti=st.integers(-1, 4),
)
def test_fuzz_configs(n_features, d_hidden, corr, anti):
    valid = n_features >= 1 and d_hidden >= 1 and corr >= 0 and anti >= 0 and 2 * (corr + anti) <= n_features
    make = lambda: unchecked(ToyConfig)(1, n_features, d_hidden, corr, anti)  # noqa: E731
    if valid:
        assert make().n_uncorrelated == n_features - 2 * (corr + anti)
    else:
        with pytest.raises(ValueError, match="must be >= |pairs need"):
            make()


@FUZZ
@given(shape=st.sampled_from([(3,), (2, 2), (3, 3), (1, 4), (4, 1, 3)]))
def test_fuzz_probability_shapes(shape):
    """Shapes that do not broadcast to (2, 3) are refused with the expected shape in the message."""
    cfg = ToyConfig(2, 3, 1)
    p = torch.full(shape, 0.5)
    try:
        p.broadcast_to(2, 3)
        broadcastable = True
    except RuntimeError:
        broadcastable = False
    if broadcastable:
        assert unchecked(ToyModel)(cfg, p).feature_probability.shape == (2, 3)
    else:
        with pytest.raises(ValueError, match=r"broadcastable to \(n_instances, n_features\) = \(2, 3\)"):
            unchecked(ToyModel)(cfg, p)


def test_pair_functions_directly():
    """The public pair functions: shapes, and the closed forms on a (2, 3) grid of probabilities."""
    from mechlearn.superposition.toy import anticorrelated_present, correlated_present

    p = torch.tensor([[0.5, 0.1, 0.0], [0.3, 0.02, 0.25]])
    together = correlated_present(20_000, p, torch.Generator().manual_seed(3))
    apart = anticorrelated_present(20_000, p, torch.Generator().manual_seed(4))
    assert together.shape == apart.shape == (20_000, 2, 6) and together.dtype == torch.bool
    assert torch.equal(together[..., 0::2], together[..., 1::2])
    assert not (apart[..., 0::2] & apart[..., 1::2]).any()
    _assert_rate(together[..., 0::2], p, "correlated pairs")
    _assert_rate(apart, p.repeat_interleave(2, dim=-1), "anticorrelated features")
    assert not apart[:, 0, 4:6].any() and not together[:, 0, 4:6].any()  # p = 0: never present
