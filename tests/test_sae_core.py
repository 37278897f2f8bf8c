"""The SAE core (`mechlearn.sae.base`, ``standard``, ``training``, ``metrics``) against independent references.

* the standard SAE's forward pass and loss against the formula written out with einsum, in float64;
* every output's gradient against central finite differences (`torch.autograd.gradcheck`, float64);
* the fraction of variance explained against scikit-learn's ``r2_score(..., "variance_weighted")``;
* MMCS against closed forms (a permuted, rescaled copy of the features; an orthogonal dictionary;
  sign flips; the pentagon's 36° neighbour);
* the decoder constraint (unit rows, gradients orthogonal to the rows), Anthropic's resampling
  (replaced rows, untouched rows, Adam moments, the ∝ error² draw), a hand-made exact SAE (FVE 1);
* bad input: a clear error naming what was expected (hypothesis fuzz for the width, the
  coefficient and the architecture name).
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import r2_score

from mechlearn.sae.base import SAE, SAEOutput
from mechlearn.sae.metrics import dead_fraction, fraction_variance_explained, l0, max_cosine_similarities, mmcs
from mechlearn.sae.standard import StandardSAE
from mechlearn.sae.training import (
    ARCHITECTURES, make_sae, remove_parallel_decoder_grad, resample_dead_latents, train_sae,
)
from mechlearn.testing import EXACT, FLOAT32, FLOAT64, Tolerance, assert_close, compare

FUZZ = settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

UNIT = Tolerance("UNIT_NORM", 0.0, 1e-12)
"""A float64 quantity that should be exactly 0 or 1 up to a few roundings."""
STATISTICAL = Tolerance("STATISTICAL", 0.0, 0.03)
"""A frequency over 2,000 independent draws: about three binomial standard deviations (0.009 each)."""

_ANGLES = 2 * math.pi * torch.arange(5, dtype=torch.float64) / 5
PENTAGON = torch.stack([torch.cos(_ANGLES), torch.sin(_ANGLES)], dim=1)
"""Five unit feature directions in 2-D, 72° apart (the toy model's pentagon)."""


def random_sae(d_in=4, d_sae=6, l1=0.3, seed=0) -> StandardSAE:
    """A float64 standard SAE with every parameter random (biases too), so no term is trivially zero."""
    g = torch.Generator().manual_seed(seed)
    sae = StandardSAE(d_in, d_sae, l1, generator=g).double()
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.7)
    return sae


def hand_loss(x, W_enc, b_enc, W_dec, b_dec, l1):
    """The standard SAE's forward pass and loss, written out with einsum."""
    pre = torch.einsum("bi,is->bs", x - b_dec, W_enc) + b_enc
    f = torch.where(pre > 0, pre, torch.zeros_like(pre))
    x_hat = torch.einsum("bs,si->bi", f, W_dec) + b_dec
    error = ((x - x_hat) ** 2).sum(dim=1)
    recon, sparsity = error.mean(), l1 * f.sum(dim=1).mean()
    return {"latents": f, "x_hat": x_hat, "reconstruction_error": error,
            "reconstruction_loss": recon, "sparsity_loss": sparsity, "loss": recon + sparsity}


# --- forward pass and loss ------------------------------------------------------------------------

def test_standard_loss_matches_the_formula_in_float64():
    sae = random_sae()
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = sae(x)
    assert isinstance(out, SAEOutput) and out.auxiliary_loss is None
    ref = hand_loss(x, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, sae.l1_coefficient)
    assert 0 < (out.latents > 0).double().mean() < 1, "the test needs latents both on and off"
    for key, value in ref.items():
        assert_close(getattr(out, key).detach(), value.detach(), FLOAT64, name=key)
    # the loss decomposes exactly, and a different coefficient is detected
    assert_close(out.loss.detach(), (out.reconstruction_loss + out.sparsity_loss).detach(), FLOAT64, "sum")
    other = hand_loss(x, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, sae.l1_coefficient * 1.01)
    assert not compare(out.loss.detach(), other["loss"].detach(), FLOAT64)


def test_leading_axes_are_batch_axes():
    sae = random_sae()
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out, flat = sae(x), sae(x.reshape(15, 4))
    assert out.reconstruction_error.shape == (3, 5) and out.latents.shape == (3, 5, 6)
    assert_close(out.loss.detach(), flat.loss.detach(), FLOAT64, name="loss over (3, 5) vs (15,)")


@pytest.mark.parametrize("field", ["loss", "reconstruction_loss", "sparsity_loss", "x_hat", "latents",
                                   "reconstruction_error"])
def test_every_output_has_the_finite_difference_gradient(field):
    sae = random_sae(d_in=3, d_sae=5, seed=3)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64, requires_grad=True)
    names = ["W_enc", "b_enc", "W_dec", "b_dec"]
    params = tuple(getattr(sae, n).detach().clone().requires_grad_(True) for n in names)
    pre = (x.detach() - sae.b_dec) @ sae.W_enc + sae.b_enc
    assert pre.abs().min() > 1e-3, "a pre-activation at the ReLU's kink would make the check meaningless"

    def f(x, *ps):
        out = torch.func.functional_call(sae, dict(zip(names, ps)), (x,))
        return getattr(out, field)

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-6)


def test_gradcheck_can_fail():
    """The gradient check is not vacuous: a function with a wrong backward is caught."""

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.relu(x)

        @staticmethod
        def backward(ctx, g):
            return g  # ReLU's derivative forgotten

    x = torch.tensor([-1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False)


# --- metrics --------------------------------------------------------------------------------------

def test_fve_is_sklearns_variance_weighted_r2():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(200, 4, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.2, 0.05]).double()
    x_hat = x + 0.3 * torch.randn(200, 4, generator=g, dtype=torch.float64)
    ours = fraction_variance_explained(x, x_hat)
    assert_close(ours, r2_score(x.numpy(), x_hat.numpy(), multioutput="variance_weighted"), FLOAT64, "FVE")
    # the uniform average of per-dimension R² is a different quantity, and the check sees it
    assert not compare(ours, r2_score(x.numpy(), x_hat.numpy(), multioutput="uniform_average"), FLOAT64)
    # leading axes are pooled
    assert_close(fraction_variance_explained(x.reshape(10, 20, 4), x_hat.reshape(10, 20, 4)), ours, FLOAT64, "3-D")


def test_a_hand_made_exact_sae_has_fve_one():
    sae = StandardSAE(3, 3, 0.1).double()
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(3)), sae.W_dec.copy_(torch.eye(3)), sae.b_enc.zero_(), sae.b_dec.zero_()
    x = torch.rand(50, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)  # >= 0: ReLU passes
    out = sae(x)
    assert_close(out.x_hat.detach(), x, EXACT, name="x_hat")
    assert fraction_variance_explained(x, out.x_hat.detach()) == 1.0
    assert out.reconstruction_loss.item() == 0.0
    assert fraction_variance_explained(x, x.mean(0).expand_as(x)) == pytest.approx(0.0, abs=1e-12)
    assert fraction_variance_explained(x, -x) < 0  # worse than the mean


def test_l0_and_dead_fraction_by_hand():
    latents = torch.tensor([[0.0, 1.0, 0.0, 2.0], [0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, -1.0]])
    assert l0(latents) == pytest.approx(4 / 3)
    assert dead_fraction(latents) == 0.5  # columns 0 and 2 never fire
    assert dead_fraction(latents.reshape(3, 1, 4)) == 0.5
    assert l0(torch.zeros(2, 3)) == 0.0 and dead_fraction(torch.zeros(2, 3)) == 1.0


def test_mmcs_closed_forms():
    g = torch.Generator().manual_seed(7)
    true = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0][:4]  # 4 orthonormal rows
    perm = true[torch.tensor([2, 0, 3, 1])] * torch.tensor([[3.0], [0.5], [1.0], [7.0]]).double()
    assert_close(mmcs(perm, true), 1.0, FLOAT64, name="permuted, rescaled features")
    other = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0]
    complement = other - (other @ true.T) @ true  # remove every component along the true features
    assert_close(mmcs(complement, true), 0.0, UNIT, name="orthogonal dictionary")
    assert_close(mmcs(-true, true), 0.0, UNIT, name="orthonormal features, signs flipped")
    assert_close(mmcs(-true[:1], true[:1]), -1.0, FLOAT64, name="one feature, sign flipped")
    # pentagon with every sign flipped: the best match is a neighbour 180° - 144° = 36° away
    assert_close(mmcs(-PENTAGON, PENTAGON), math.cos(math.pi / 5), FLOAT64, name="pentagon flipped")
    # spare latents do not lower it (the mean is over the true features), the other direction does
    spare = torch.cat([true, complement[:3]])
    assert_close(mmcs(spare, true), 1.0, FLOAT64, name="spare latents")
    assert mmcs(true, spare) < 0.6
    assert_close(max_cosine_similarities(true[:2], true), torch.tensor([1.0, 1.0, 0.0, 0.0]).double(),
                 UNIT, name="two of four found")


# --- decoder constraint ---------------------------------------------------------------------------

def test_normalize_decoder_gives_unit_rows_and_keeps_directions():
    sae = random_sae(seed=8)
    before = sae.W_dec.detach().clone()
    sae.normalize_decoder()
    assert_close(sae.W_dec.norm(dim=1).detach(), torch.ones(6).double(), UNIT, name="row norms")
    assert_close(sae.W_dec.detach(), before / before.norm(dim=1, keepdim=True), FLOAT64, name="directions")
    fresh = StandardSAE(5, 7, 0.1, generator=torch.Generator().manual_seed(0))
    assert_close(fresh.W_dec.norm(dim=1).detach(), torch.ones(7), FLOAT32, name="initial rows")
    assert_close(fresh.W_enc.detach(), fresh.W_dec.detach().T, EXACT, name="tied initialisation")
    assert not fresh.b_enc.any() and not fresh.b_dec.any()


def test_parallel_gradient_removal_leaves_gradients_orthogonal_to_rows():
    sae = random_sae(seed=9)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    sae(x).loss.backward()
    grad, W = sae.W_dec.grad.clone(), sae.W_dec.detach()
    assert (grad * W).sum(1).abs().max() > 1e-3, "the test needs a gradient with a parallel part"
    remove_parallel_decoder_grad(sae)
    assert_close((sae.W_dec.grad * W).sum(1), torch.zeros(6).double(), UNIT, name="grad · row")
    unit = W / W.norm(dim=1, keepdim=True)
    expected = grad - torch.einsum("si,si->s", grad, unit)[:, None] * unit
    assert_close(sae.W_dec.grad, expected, FLOAT64, name="perpendicular part unchanged")


def test_training_keeps_the_decoder_rows_at_unit_norm():
    sae = random_sae(seed=11)
    x = torch.randn(256, 4, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    train_sae(sae, x, steps=20, batch_size=32, lr=1e-2, generator=torch.Generator().manual_seed(0))
    assert_close(sae.W_dec.norm(dim=1).detach(), torch.ones(6).double(), UNIT, name="after 20 steps")


# --- resampling -----------------------------------------------------------------------------------

def sae_with_adam_state(seed=13):
    sae = random_sae(d_in=3, d_sae=6, seed=seed)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        sae(torch.randn(8, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)).loss.backward()
        opt.step()
    return sae, opt


def test_resampling_replaces_dead_rows_as_specified():
    sae, opt = sae_with_adam_state()
    with torch.no_grad():
        sae.b_enc[:] = -100.0  # nothing fires: an input equal to b_dec is reconstructed exactly
    v = torch.tensor([1.0, -2.0, 0.5]).double()
    x = torch.cat([sae.b_dec.detach().expand(20, 3), (sae.b_dec + v).detach()[None]])  # only row 20 has an error
    dead = torch.tensor([True, False, True, False, False, True])
    before = {n: p.detach().clone() for n, p in sae.named_parameters()}
    moments = {n: {k: opt.state[p][k].clone() for k in ("exp_avg", "exp_avg_sq")} for n, p in sae.named_parameters()}
    alive_norm = before["W_enc"][:, ~dead].norm(dim=0).mean()

    n = resample_dead_latents(sae, x, dead, optimizer=opt, generator=torch.Generator().manual_seed(0))
    assert n == 3
    u = v / v.norm()
    assert_close(sae.W_dec[dead].detach(), u.expand(3, 3), FLOAT64, name="dead decoder rows")
    assert_close(sae.W_enc[:, dead].detach(), (0.2 * alive_norm * u)[:, None].expand(3, 3), FLOAT64,
                 name="dead encoder columns")
    assert (sae.b_enc[dead] == 0).all()
    # alive latents and b_dec untouched, bit for bit
    assert_close(sae.W_dec[~dead].detach(), before["W_dec"][~dead], EXACT, name="alive rows")
    assert_close(sae.W_enc[:, ~dead].detach(), before["W_enc"][:, ~dead], EXACT, name="alive columns")
    assert_close(sae.b_enc[~dead].detach(), before["b_enc"][~dead], EXACT, name="alive biases")
    assert_close(sae.b_dec.detach(), before["b_dec"], EXACT, name="b_dec")
    # Adam's moments zeroed for exactly those entries
    for name, index in (("W_dec", (dead,)), ("W_enc", (slice(None), dead)), ("b_enc", (dead,))):
        p = getattr(sae, name)
        keep = (~dead,) if name != "W_enc" else (slice(None), ~dead)
        for k in ("exp_avg", "exp_avg_sq"):
            assert (opt.state[p][k][index] == 0).all(), f"{name} {k} of dead latents not reset"
            assert_close(opt.state[p][k][keep], moments[name][k][keep], EXACT, name=f"{name} {k} alive")
            assert (moments[name][k][keep] != 0).any()
    for k in ("exp_avg", "exp_avg_sq"):
        assert_close(opt.state[sae.b_dec][k], moments["b_dec"][k], EXACT, name="b_dec moments")


class ScaledSAE(StandardSAE):
    """A standard SAE with an extra per-latent parameter, to test the `reset_latents` hook."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = torch.nn.Parameter(torch.ones(self.d_sae))

    def encode(self, x):
        return super().encode(x) * self.scale

    def reset_latents(self, dead):
        with torch.no_grad():
            self.scale[dead] = 1.0


def test_resampling_resets_an_architectures_own_per_latent_parameters():
    sae = ScaledSAE(3, 6, 0.3, generator=torch.Generator().manual_seed(0)).double()
    opt = torch.optim.Adam(sae.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        sae(torch.randn(16, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)).loss.backward()
        opt.step()
    dead = torch.tensor([False, True, False, False, True, False])
    scale_before, moments_before = sae.scale.detach().clone(), opt.state[sae.scale]["exp_avg"].clone()
    assert (scale_before[dead] != 1).all() and (moments_before[dead] != 0).all()
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    resample_dead_latents(sae, x, dead, optimizer=opt, generator=torch.Generator().manual_seed(3))
    assert (sae.scale[dead] == 1).all(), "reset_latents was not called"
    assert_close(sae.scale[~dead].detach(), scale_before[~dead], EXACT, name="alive scales")
    assert (opt.state[sae.scale]["exp_avg"][dead] == 0).all()
    assert_close(opt.state[sae.scale]["exp_avg"][~dead], moments_before[~dead], EXACT, name="alive moments")


def test_resampling_with_no_dead_latent_changes_nothing():
    sae, opt = sae_with_adam_state(14)
    before = [p.detach().clone() for p in sae.parameters()]
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert resample_dead_latents(sae, x, torch.zeros(6, dtype=torch.bool), optimizer=opt) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, sae.parameters()))


def test_resampling_draws_inputs_in_proportion_to_squared_error():
    d_sae = 2000
    sae = StandardSAE(2, d_sae, 0.1).double()
    with torch.no_grad():
        sae.b_enc[:] = -100.0  # nothing fires: x_hat = b_dec = 0, so the error of x is ‖x‖²
    a, b = torch.tensor([1.0, 0.0]).double(), torch.tensor([0.0, math.sqrt(2.0)]).double()
    # errors 1 and 2, squared 1 and 4: a is drawn with probability 1/5 (1/3 if it were ∝ error)
    resample_dead_latents(sae, torch.stack([a, b]), torch.ones(d_sae, dtype=torch.bool),
                          generator=torch.Generator().manual_seed(0))
    share_a = (sae.W_dec.detach() @ a > 0.5).double().mean().item()
    assert_close(share_a, 0.2, STATISTICAL, name="share of rows pointing at a")
    assert not compare(share_a, 1 / 3, STATISTICAL)


def test_dead_latents_are_tracked_and_resampled_in_training():
    g = torch.Generator().manual_seed(15)
    data = torch.randn(512, 4, generator=g, dtype=torch.float64)
    sae = random_sae(seed=16)
    with torch.no_grad():
        sae.b_enc[0] = -1e3  # latent 0 can never fire
    history = train_sae(sae, data, steps=40, batch_size=64, lr=1e-3, generator=g, dead_window=10, log_every=10)
    assert history[0]["dead_fraction"] >= 1 / 6 and history[-1]["dead_fraction"] >= 1 / 6
    sae = random_sae(seed=16)
    with torch.no_grad():
        sae.b_enc[0] = -1e3
    history = train_sae(sae, data, steps=40, batch_size=64, lr=1e-3, generator=g, dead_window=10, log_every=10,
                        resample_every=15)
    assert sum(r["resampled"] for r in history) >= 1
    assert sae.b_enc[0].item() > -100, "latent 0 was resampled (b_enc reset to 0, then trained)"


def test_training_is_deterministic_and_logs_the_schedule():
    data = torch.randn(256, 4, generator=torch.Generator().manual_seed(17), dtype=torch.float64)
    runs = []
    for _ in range(2):
        sae = random_sae(seed=18)
        runs.append(train_sae(sae, data, steps=30, batch_size=16, lr=1e-2, warmup_steps=10, decay_steps=10,
                              log_every=5, generator=torch.Generator().manual_seed(1),
                              callback=lambda s: {"norm": s.W_enc.norm().item()}))
    assert runs[0] == runs[1]
    lrs = {r["step"]: r["lr"] for r in runs[0]}
    assert lrs[5] == pytest.approx(0.6e-2) and lrs[15] == pytest.approx(1e-2) and lrs[30] == pytest.approx(0.0)
    assert set(runs[0][0]) >= {"step", "loss", "l0", "fve", "dead_fraction", "resampled", "norm"}


def test_a_pentagon_sae_recovers_the_features():
    """Five sparse features in 2-D: a 5-latent SAE finds them (a short run; the benchmark runs the full one)."""
    def data(n, g):
        f = torch.rand(n, 5, generator=g, dtype=torch.float64)
        return (f * (torch.rand(n, 5, generator=g, dtype=torch.float64) < 0.05)) @ PENTAGON

    sae = StandardSAE(2, 5, 0.05, generator=torch.Generator().manual_seed(0)).double()
    before = mmcs(sae.W_dec.detach(), PENTAGON)
    train_sae(sae, data, steps=400, batch_size=512, lr=1e-2, generator=torch.Generator().manual_seed(1))
    assert mmcs(sae.W_dec.detach(), PENTAGON) > max(0.9, before)


# --- construction and config ----------------------------------------------------------------------

def test_config_rebuilds_the_sae():
    sae = StandardSAE(4, 6, 0.25)
    twin = make_sae(**sae.config())
    assert type(twin) is StandardSAE and twin.config() == sae.config()
    twin.load_state_dict(sae.state_dict())
    assert "l1_coefficient=0.25" in repr(sae)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_make_sae_builds_each_architecture_when_it_exists(architecture):
    module, name = ARCHITECTURES[architecture]
    if name not in importlib.import_module(module).__all__:
        pytest.skip(f"{module}.{name} is not written yet")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, SAE) and cls.architecture == architecture


def test_the_base_class_needs_an_encoder():
    with pytest.raises(NotImplementedError, match="encode"):
        SAE(3, 4)(torch.randn(2, 3))


# --- bad input ------------------------------------------------------------------------------------

def test_bad_input_is_refused_clearly():
    sae = StandardSAE(3, 4, 0.1)
    forward = unchecked(SAE.forward)
    with pytest.raises(ValueError, match=r"d_in=3"):
        forward(sae, torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"d_in=3"):
        forward(sae, torch.tensor(1.0))
    with pytest.raises(TypeError, match="float64 but the SAE's weights are torch.float32"):
        forward(sae, torch.randn(5, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point"):
        forward(sae, torch.ones(5, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="floating-point"):
        forward(sae, np.ones((5, 3)))
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="l1_coefficient must be finite and >= 0"):
            unchecked(StandardSAE.__init__)(StandardSAE.__new__(StandardSAE), 3, 4, bad)
    with pytest.raises(TypeError, match="l1_coefficient"):
        unchecked(StandardSAE.__init__)(StandardSAE.__new__(StandardSAE), 3, 4, "0.1")
    with pytest.raises(ValueError, match="d_sae must be a positive int"):
        StandardSAE(3, 0, 0.1)
    with pytest.raises(ValueError, match=r"expected one of \['gated', 'jumprelu', 'standard', 'topk'\]"):
        make_sae("relu", 3, 4)
    with pytest.raises(ValueError, match="same shape"):
        unchecked(fraction_variance_explained)(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="zero variance"):
        fraction_variance_explained(torch.ones(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="width 2 but the true features have width 3"):
        unchecked(max_cosine_similarities)(torch.randn(4, 2), torch.randn(5, 3))
    with pytest.raises(ValueError, match="steps must be a positive int"):
        train_sae(sae, torch.randn(10, 3), steps=0, batch_size=2, lr=1e-3)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        unchecked(train_sae)(sae, torch.randn(10, 3), steps=1, batch_size=2, lr=-1.0)
    with pytest.raises(ValueError, match=r"d_in=3"):
        train_sae(sae, torch.randn(10, 5), steps=1, batch_size=2, lr=1e-3)
    with pytest.raises(ValueError, match=r"d_in=3"):
        train_sae(sae, lambda n, g: torch.randn(n, 2), steps=1, batch_size=2, lr=1e-3)
    with pytest.raises(ValueError, match=r"dead must be a bool tensor of shape \(d_sae=4,\)"):
        unchecked(resample_dead_latents)(sae, torch.randn(10, 3), torch.ones(3, dtype=torch.bool))


@FUZZ
@given(d_in=st.integers(1, 6), width=st.integers(1, 9), lead=st.lists(st.integers(1, 3), max_size=2))
def test_fuzz_wrong_width_names_the_expected_width(d_in, width, lead):
    sae = StandardSAE(d_in, 3, 0.1)
    x = torch.randn(*lead, width)
    if width == d_in:
        assert unchecked(SAE.forward)(sae, x).x_hat.shape == x.shape
    else:
        with pytest.raises(ValueError, match=rf"d_in={d_in}\); got shape"):
            unchecked(SAE.forward)(sae, x)


@FUZZ
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_fuzz_l1_coefficient(value):
    if math.isfinite(value) and value >= 0:
        assert StandardSAE(2, 3, value).l1_coefficient == value
    else:
        with pytest.raises(ValueError, match="l1_coefficient must be finite and >= 0"):
            unchecked(StandardSAE.__init__)(StandardSAE.__new__(StandardSAE), 2, 3, value)


@FUZZ
@given(name=st.text(max_size=12))
def test_fuzz_unknown_architecture(name):
    if name in ARCHITECTURES:
        return
    with pytest.raises(ValueError, match="unknown SAE architecture"):
        make_sae(name, 3, 4)
