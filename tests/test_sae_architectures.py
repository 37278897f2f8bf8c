"""Gated, JumpReLU and TopK SAEs against independent references.

* The straight-through pseudo-derivatives of `Heaviside` and `JumpReLU` against their formulas
  written out with NumPy loops, and against the identity that makes them useful: averaged over a
  batch, the rectangle-kernel θ-gradient of the step is a central difference of the mean L0 with
  step ε. Everything that is an ordinary derivative (JumpReLU in π, the step's zero in π, every SAE's
  loss in its weights away from kinks) against `torch.autograd.gradcheck` in float64.
* Forward passes and loss terms against the papers' formulas written with einsum in float64; TopK
  against `torch.topk` + scatter and a brute-force sort per row.
* The gated SAE's weight sharing, its frozen-decoder auxiliary loss, and its equivalence to a
  JumpReLU of the magnitude path.
* Each architecture trains a few steps and its loss falls; bad input gets a clear error (including
  hypothesis fuzzing).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from conftest import unchecked
from fuzzing import result_or_clear_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.autograd.gradcheck import GradcheckError

from mechlearn.sae.gated import GatedSAE
from mechlearn.sae.jumprelu import Heaviside, JumpReLU, JumpReLUSAE, heaviside, jump_relu, rectangle
from mechlearn.sae.topk import TopKSAE, topk_activation
from mechlearn.testing import EXACT, FLOAT64, assert_close, compare

GEN = torch.Generator
FUZZ = settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
INFORMATIVE = re.compile(r"should|must|expected|got|positive|in \[|but|convert", re.IGNORECASE)


def randomised(sae: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """``sae`` in float64 with every parameter (biases included) set to random values."""
    sae = sae.double()
    g = GEN().manual_seed(seed)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return sae


def batch(n: int, d: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, d, generator=GEN().manual_seed(seed), dtype=torch.float64)


# -- the straight-through estimator -----------------------------------------------------------


def ste_reference(pre: np.ndarray, theta: np.ndarray, eps: float, g: np.ndarray, jump: bool) -> np.ndarray:
    """dθ by the paper's formula, one example and one latent at a time."""
    out = np.zeros_like(theta)
    for b in range(pre.shape[0]):
        for i in range(pre.shape[1]):
            inside = abs((pre[b, i] - theta[i]) / eps) < 0.5
            out[i] += -(theta[i] if jump else 1.0) / eps * inside * g[b, i]
    return out


@pytest.mark.parametrize("fn, jump", [(JumpReLU, True), (Heaviside, False)])
def test_threshold_pseudo_derivative_matches_the_formula(fn, jump):
    g = GEN().manual_seed(0)
    eps = 0.3
    theta = torch.rand(6, generator=g, dtype=torch.float64) + 0.2
    # pre-activations spread around the thresholds so that some fall inside each kernel window
    pre = theta + 0.6 * torch.randn(40, 6, generator=g, dtype=torch.float64)
    upstream = torch.randn(40, 6, generator=g, dtype=torch.float64)
    pre.requires_grad_(True)
    theta.requires_grad_(True)
    out = fn.apply(pre, theta, eps)
    out.backward(upstream)
    expected = ste_reference(pre.detach().numpy(), theta.detach().numpy(), eps, upstream.numpy(), jump)
    assert np.count_nonzero(expected) >= 4, "the test needs pre-activations inside the kernel window"
    assert_close(theta.grad, expected, FLOAT64, name=f"{fn.__name__} dθ vs the formula")
    # in π: the step for JumpReLU, zero for Heaviside
    step = (pre.detach() > theta.detach()).double()
    assert_close(pre.grad, step * upstream if jump else torch.zeros_like(pre), EXACT, name="dπ")
    # the forward pass itself
    assert_close(out, pre.detach() * step if jump else step, EXACT, name="forward")


def test_threshold_gradient_fails_for_a_wrong_kernel():
    """The comparison above can fail: a kernel of width 1 instead of 1/2 gives other numbers."""
    g = GEN().manual_seed(0)
    theta = torch.rand(6, generator=g, dtype=torch.float64).requires_grad_(True)
    pre = theta.detach() + 0.6 * torch.randn(40, 6, generator=g, dtype=torch.float64)
    Heaviside.apply(pre, theta, 0.3).sum().backward()
    wide = -(1 / 0.3) * ((pre - theta.detach()).abs() / 0.3 < 1.0).double().sum(0)
    assert not compare(theta.grad, wide, FLOAT64)
    # and autograd through a plain comparison gives the thresholds nothing at all
    assert not pre.gt(theta).requires_grad


def test_heaviside_gradient_is_a_central_difference_of_the_mean_l0():
    """Batch-averaged, −(1/ε)K((π − θ)/ε) is exactly [L0(θ + ε/2) − L0(θ − ε/2)] / ε per latent."""
    g = GEN().manual_seed(3)
    pre = torch.randn(500, 4, generator=g, dtype=torch.float64)
    theta = torch.tensor([0.1, 0.5, 0.9, 1.3], dtype=torch.float64, requires_grad=True)
    eps = 0.2
    Heaviside.apply(pre, theta, eps).mean(0).sum().backward()
    mean_l0 = lambda t: (pre > t).double().mean(0)  # noqa: E731
    central = (mean_l0(theta.detach() + eps / 2) - mean_l0(theta.detach() - eps / 2)) / eps
    assert_close(theta.grad, central, FLOAT64, name="STE vs central difference of the mean L0")


def test_ordinary_derivatives_pass_gradcheck():
    g = GEN().manual_seed(0)
    theta = torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    pre = torch.randn(7, 5, generator=g, dtype=torch.float64) * 2
    pre = torch.where((pre - theta).abs() < 0.05, pre + 0.2, pre)  # away from the jump
    pre.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: JumpReLU.apply(p, theta, 0.1), (pre,))
    assert torch.autograd.gradcheck(lambda p: Heaviside.apply(p, theta, 0.1), (pre,))


def test_threshold_broadcast_over_leading_axes():
    g = GEN().manual_seed(0)
    theta = torch.full((3,), 0.5, dtype=torch.float64, requires_grad=True)
    pre = torch.rand(2, 4, 3, generator=g, dtype=torch.float64)
    jump_relu(pre, theta, 0.5).sum().backward()
    flat = ste_reference(pre.reshape(8, 3).numpy(), theta.detach().numpy(), 0.5, np.ones((8, 3)), True)
    assert_close(theta.grad, flat, FLOAT64, name="θ-gradient summed over two batch axes")
    assert heaviside(pre, theta, 0.5).shape == pre.shape
    assert_close(rectangle(torch.tensor([-0.6, -0.5, -0.4, 0.0, 0.4, 0.5])), [0, 0, 1, 1, 1, 0], EXACT)


# -- JumpReLU SAE ------------------------------------------------------------------------------


def test_jumprelu_sae_forward_and_loss():
    sae = randomised(JumpReLUSAE(5, 12, sparsity_coefficient=0.7, bandwidth=0.2, threshold_init=0.1))
    x = batch(30, 5)
    out = sae(x)
    pre = torch.einsum("bi,is->bs", x - sae.b_dec, sae.W_enc) + sae.b_enc
    theta = torch.exp(sae.log_threshold)
    f = torch.where(pre > theta, pre, torch.zeros_like(pre))
    x_hat = torch.einsum("bs,si->bi", f, sae.W_dec) + sae.b_dec
    assert_close(out.latents, f, FLOAT64, name="latents")
    assert_close(out.x_hat, x_hat, FLOAT64, name="x_hat")
    recon = ((x - x_hat) ** 2).sum(-1).mean()
    sparsity = 0.7 * (pre > theta).double().sum(-1).mean()
    assert_close(out.loss, recon + sparsity, FLOAT64, name="loss")
    assert_close(out.sparsity_loss, sparsity, FLOAT64, name="λ·L0")
    # the L0 term trains only the thresholds, by the estimator
    out.sparsity_loss.backward()
    assert sae.W_enc.grad is None or sae.W_enc.grad.abs().max() == 0
    expected = ste_reference(pre.detach().numpy(), theta.detach().numpy(), 0.2,
                             np.full(pre.shape, 0.7 / 30), False) * theta.detach().numpy()
    assert_close(sae.log_threshold.grad, expected, FLOAT64, name="d(λ·L0)/d log θ")


def test_jumprelu_sae_reconstruction_gradcheck():
    sae = randomised(JumpReLUSAE(4, 6, 0.5, bandwidth=0.1, threshold_init=0.1), seed=2)
    x = batch(10, 4, seed=5)
    names = ["W_enc", "b_enc", "W_dec", "b_dec"]
    params = tuple(getattr(sae, n).detach().clone().requires_grad_(True) for n in names)

    def loss(*ps):
        out = torch.func.functional_call(sae, dict(zip(names, ps)), (x,))
        return out.reconstruction_loss

    assert torch.autograd.gradcheck(loss, params)


# -- gated SAE ---------------------------------------------------------------------------------


def test_gated_forward_matches_the_paper():
    sae = randomised(GatedSAE(5, 12, l1_coefficient=0.4))
    x = batch(30, 5)
    out = sae(x)
    centred = x - sae.b_dec
    pi_gate = torch.einsum("bi,is->bs", centred, sae.W_enc) + sae.b_enc
    W_mag = torch.einsum("s,is->is", torch.exp(sae.r_mag), sae.W_enc)
    pi_mag = torch.einsum("bi,is->bs", centred, W_mag) + sae.b_mag
    f = (pi_gate > 0).double() * torch.clamp(pi_mag, min=0)
    x_hat = torch.einsum("bs,si->bi", f, sae.W_dec) + sae.b_dec
    assert 0 < (f > 0).double().mean() < 1, "the test needs some latents on and some off"
    assert_close(out.latents, f, FLOAT64, name="latents")
    assert_close(out.x_hat, x_hat, FLOAT64, name="x_hat")
    via_gate = torch.einsum("bs,si->bi", torch.clamp(pi_gate, min=0), sae.W_dec) + sae.b_dec
    recon = ((x - x_hat) ** 2).sum(-1).mean()
    l1 = 0.4 * torch.clamp(pi_gate, min=0).sum(-1).mean()
    aux = ((x - via_gate) ** 2).sum(-1).mean()
    assert_close(out.reconstruction_loss, recon, FLOAT64, name="reconstruction")
    assert_close(out.sparsity_loss, l1, FLOAT64, name="λ‖ReLU(π_gate)‖₁")
    assert_close(out.auxiliary_loss, aux, FLOAT64, name="auxiliary")
    assert_close(out.loss, recon + l1 + aux, FLOAT64, name="loss")


def test_gated_weight_sharing_is_real():
    sae = randomised(GatedSAE(4, 6, 0.1))
    assert {n for n, _ in sae.named_parameters()} == {"W_enc", "b_enc", "W_dec", "b_dec", "r_mag", "b_mag"}
    assert sae.W_gate is sae.W_enc and sae.b_gate is sae.b_enc
    with torch.no_grad():
        sae.W_enc[0, 0] += 1.0
    assert_close(sae.W_mag, sae.W_enc * sae.r_mag.exp(), EXACT, name="W_mag follows W_gate")
    # the magnitude path's gradient reaches the shared W_gate
    x = batch(20, 4)
    sae.magnitude_pre_activations(x).sum().backward()
    assert sae.W_enc.grad.abs().max() > 0 and sae.r_mag.grad.abs().max() > 0


def test_gated_auxiliary_loss_freezes_the_decoder():
    sae = randomised(GatedSAE(4, 6, 0.1))
    out = sae(batch(20, 4))
    out.auxiliary_loss.backward()
    assert sae.W_dec.grad is None and sae.b_dec.grad is not None  # b_dec still enters via x − b_dec
    assert sae.W_enc.grad.abs().max() > 0 and sae.r_mag.grad is None


def test_gated_is_a_jumprelu_of_the_magnitude_path():
    sae = randomised(GatedSAE(5, 16, 0.1), seed=4)
    x = batch(50, 5, seed=6)
    theta = torch.clamp(sae.b_mag - sae.r_mag.exp() * sae.b_gate, min=0)
    pi_mag = sae.magnitude_pre_activations(x)
    assert_close(sae.encode(x), pi_mag * (pi_mag > theta), FLOAT64, name="gated = JumpReLU(π_mag)")


def test_gated_gradcheck():
    """The encoder's parameters through the whole loss; the decoder's (frozen in the auxiliary term) without it."""
    sae = randomised(GatedSAE(4, 6, 0.3), seed=3)
    x = batch(10, 4, seed=7)
    names = ["W_enc", "b_enc", "r_mag", "b_mag"]
    params = tuple(getattr(sae, n).detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(
        lambda *ps: torch.func.functional_call(sae, dict(zip(names, ps)), (x,)).loss, params
    )

    def without_aux(W_dec, b_dec):
        out = torch.func.functional_call(sae, {"W_dec": W_dec, "b_dec": b_dec}, (x,))
        return out.reconstruction_loss + out.sparsity_loss

    decoder = tuple(getattr(sae, n).detach().clone().requires_grad_(True) for n in ("W_dec", "b_dec"))
    assert torch.autograd.gradcheck(without_aux, decoder)
    # and the full loss does differ from finite differences in W_dec: the stop-gradient is real
    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(lambda W: torch.func.functional_call(sae, {"W_dec": W}, (x,)).loss,
                                 (decoder[0],))


def test_reset_latents_restores_the_initial_per_latent_parameters():
    dead = torch.tensor([True, False, True, False, False, False])
    gated = randomised(GatedSAE(4, 6, 0.1))
    before = gated.b_mag.detach().clone()
    gated.reset_latents(dead)
    assert_close(gated.r_mag[dead], torch.zeros(2), EXACT, name="r_mag of dead latents")
    assert_close(gated.b_mag, torch.where(dead, 0.0, before), EXACT, name="b_mag: only dead latents")
    jumping = randomised(JumpReLUSAE(4, 6, 0.1, threshold_init=0.25))
    before = jumping.threshold.detach().clone()
    jumping.reset_latents(dead)
    assert_close(jumping.threshold, torch.where(dead, 0.25, before), FLOAT64, name="thresholds")


# -- TopK --------------------------------------------------------------------------------------


def test_topk_against_references():
    g = GEN().manual_seed(0)
    pre = torch.randn(3, 7, 10, generator=g, dtype=torch.float64)
    for k in (1, 3, 10):
        ours = topk_activation(pre, k)
        top = torch.topk(pre, k, dim=-1)
        scattered = torch.zeros_like(pre).scatter(-1, top.indices, top.values).clamp(min=0)
        assert_close(ours, scattered, EXACT, name=f"k={k} vs topk + scatter")
        brute = np.zeros(pre.shape)
        flat = pre.numpy().reshape(-1, 10)
        for row, values in enumerate(flat):
            for i in np.argsort(-values)[:k]:
                brute.reshape(-1, 10)[row, i] = max(values[i], 0.0)
        assert_close(ours, brute, EXACT, name=f"k={k} vs a sort per row")
    assert not compare(topk_activation(pre, 2), topk_activation(pre, 3), EXACT)


def test_topk_sae_forward_and_gradcheck():
    sae = randomised(TopKSAE(5, 12, k=3))
    x = batch(30, 5)
    out = sae(x)
    pre = torch.einsum("bi,is->bs", x - sae.b_dec, sae.W_enc) + sae.b_enc
    kth = pre.sort(-1, descending=True).values[:, 2:3]
    f = torch.where(pre >= kth, pre.clamp(min=0), torch.zeros_like(pre))
    assert_close(out.latents, f, FLOAT64, name="latents")
    assert_close(out.loss, ((x - (f @ sae.W_dec + sae.b_dec)) ** 2).sum(-1).mean(), FLOAT64, name="loss")
    assert out.auxiliary_loss is None and out.sparsity_loss == 0
    names = ["W_enc", "b_enc", "W_dec", "b_dec"]
    params = tuple(getattr(sae, n).detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(
        lambda *ps: torch.func.functional_call(sae, dict(zip(names, ps)), (x[:8],)).loss, params
    )


def test_auxk_reconstructs_the_residual_from_dead_latents():
    sae = randomised(TopKSAE(4, 10, k=2, aux_k=3, aux_coefficient=0.5, dead_tokens=5))
    x = batch(6, 4)
    first = sae(x)  # a training step: every latent that did not fire has now waited 6 >= 5 inputs
    fired = (first.latents > 0).any(0)
    assert_close(sae.dead, ~fired, EXACT, name="dead = did not fire")
    assert 3 <= int(sae.dead.sum()) < 10
    sae.zero_grad()
    out = sae(x)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    dead = ~fired
    aux = torch.zeros_like(pre)
    for b in range(len(x)):  # the 3 largest dead pre-activations of each input, through a ReLU
        idx = [i for i in pre[b].argsort(descending=True).tolist() if dead[i]][:3]
        aux[b, idx] = pre[b, idx].clamp(min=0)
    residual = x - out.x_hat
    expected = 0.5 * ((residual - aux @ sae.W_dec) ** 2).sum(-1).mean()
    assert_close(out.auxiliary_loss, expected, FLOAT64, name="AuxK loss")
    out.auxiliary_loss.backward()
    grad = sae.W_enc.grad.abs().sum(0)
    assert grad[dead].max() > 0 and grad[~dead].max() == 0, "AuxK trains only dead latents"
    sae.eval()
    before = sae.tokens_since_fired.clone()
    sae(x)
    assert_close(sae.tokens_since_fired, before, EXACT, name="eval mode counts nothing")


# -- training ----------------------------------------------------------------------------------


def _data(n: int = 2048, d_in: int = 6, n_features: int = 12, seed: int = 0) -> torch.Tensor:
    g = GEN().manual_seed(seed)
    directions = torch.nn.functional.normalize(torch.randn(n_features, d_in, generator=g), dim=-1)
    features = torch.rand(n, n_features, generator=g) * (torch.rand(n, n_features, generator=g) < 0.1)
    return features @ directions


@pytest.mark.parametrize(
    "sae",
    [
        lambda: GatedSAE(6, 16, 0.05, generator=GEN().manual_seed(0)),
        lambda: JumpReLUSAE(6, 16, 0.05, bandwidth=0.05, threshold_init=0.05, generator=GEN().manual_seed(0)),
        lambda: TopKSAE(6, 16, k=3, aux_k=4, dead_tokens=256, generator=GEN().manual_seed(0)),
    ],
    ids=["gated", "jumprelu", "topk"],
)
def test_each_architecture_trains(sae):
    from mechlearn.sae.training import train_sae

    sae, data = sae(), _data()
    first = sae(data).loss.item()
    train_sae(sae, data, steps=150, batch_size=128, lr=1e-2, generator=GEN().manual_seed(1), progress=False)
    with torch.no_grad():
        last = sae(data).loss.item()
    assert last < 0.7 * first, f"{type(sae).__name__}: loss {first:.4f} -> {last:.4f}"
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(16), atol=1e-5), "unit-norm decoder rows"


def test_make_sae_builds_each_architecture():
    from mechlearn.sae.training import make_sae

    for sae in (GatedSAE(4, 8, 0.1), JumpReLUSAE(4, 8, 0.1, bandwidth=0.2), TopKSAE(4, 8, 2, aux_k=3)):
        rebuilt = make_sae(**sae.config())
        assert type(rebuilt) is type(sae) and rebuilt.config() == sae.config()


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, error, words",
    [
        (lambda: TopKSAE(4, 8, k=0), ValueError, "in [1, d_sae=8]"),
        (lambda: TopKSAE(4, 8, k=9), ValueError, "in [1, d_sae=8]"),
        (lambda: TopKSAE(4, 8, k=2, aux_k=9), ValueError, "aux_k"),
        (lambda: TopKSAE(4, 8, k=2, aux_coefficient=-1), ValueError, ">= 0"),
        (lambda: JumpReLUSAE(4, 8, 0.1, bandwidth=0), ValueError, "positive"),
        (lambda: JumpReLUSAE(4, 8, 0.1, bandwidth=-0.1), ValueError, "positive"),
        (lambda: JumpReLUSAE(4, 8, 0.1, threshold_init=0), ValueError, "positive"),
        (lambda: JumpReLUSAE(4, 8, -0.1), ValueError, "sparsity_coefficient"),
        (lambda: GatedSAE(4, 8, -1), ValueError, "l1_coefficient"),
        (lambda: GatedSAE(4, 8, math.nan), ValueError, "l1_coefficient"),
    ],
)
def test_bad_hyperparameters_are_refused(build, error, words):
    with pytest.raises(error, match=re.escape(words)):
        build()


@pytest.mark.parametrize("sae", [GatedSAE(4, 8, 0.1), JumpReLUSAE(4, 8, 0.1), TopKSAE(4, 8, 2)])
def test_wrong_width_is_refused(sae):
    with pytest.raises(ValueError, match=r"d_in=4"):
        sae(torch.zeros(3, 5))


def test_bad_threshold_and_k_for_the_functions():
    with pytest.raises(ValueError, match="threshold should have shape"):
        unchecked(jump_relu)(torch.zeros(3, 4), torch.ones(5), 0.1)
    with pytest.raises(ValueError, match="bandwidth"):
        unchecked(heaviside)(torch.zeros(3, 4), torch.ones(4), -1.0)
    with pytest.raises(ValueError, match=r"in \[1, d_sae=4\]"):
        unchecked(topk_activation)(torch.zeros(3, 4), 5)


def _clear(call):
    return result_or_clear_error(call, INFORMATIVE)


def _construct(cls, *args, **kwargs):
    obj = object.__new__(cls)
    unchecked(cls.__init__)(obj, *args, **kwargs)
    return obj


numbers = st.one_of(st.integers(-3, 20), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none())


@FUZZ
@given(d_sae=st.integers(1, 6), k=numbers, coefficient=numbers, bandwidth=numbers)
def test_fuzz_hyperparameters(d_sae, k, coefficient, bandwidth):
    x = torch.rand(3, 4)
    for cls, kwargs in (
        (TopKSAE, {"k": k}),
        (GatedSAE, {"l1_coefficient": coefficient}),
        (JumpReLUSAE, {"sparsity_coefficient": coefficient, "bandwidth": bandwidth}),
    ):
        sae = _clear(lambda: _construct(cls, 4, d_sae, **kwargs))
        if sae is not None:
            out = sae(x)
            huge = any(isinstance(v, float) and abs(v) > 1e30 for v in kwargs.values())
            assert huge or torch.isfinite(out.loss), f"{cls.__name__}{kwargs}: loss {out.loss}"
            if cls is TopKSAE:
                assert int((out.latents > 0).sum(-1).max()) <= k


@FUZZ
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.int64]),
    value=st.sampled_from([0.0, 1.0, math.nan, math.inf]),
)
def test_fuzz_activations(shape, dtype, value):
    x = torch.full(shape, value).to(dtype) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
    for sae in (GatedSAE(4, 6, 0.1), JumpReLUSAE(4, 6, 0.1), TopKSAE(4, 6, 2)):
        out = _clear(lambda: unchecked(type(sae).forward)(sae, x))
        if out is not None:
            assert out.x_hat.shape == x.shape and out.latents.shape == (*x.shape[:-1], 6)
            if math.isfinite(value):
                assert torch.isfinite(out.loss)
    for fn in (unchecked(jump_relu), unchecked(heaviside)):
        _clear(lambda: fn(x, torch.ones(shape[-1:] or (1,)), 0.1))
    _clear(lambda: unchecked(topk_activation)(x, 2))
