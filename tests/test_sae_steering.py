"""mechlearn.sae.steering against TransformerLens on the same weights, torch autograd and closed forms.

References, all in float64 on a random 2-layer GPT with MLPs (every nonlinearity matters):

* steering: a TransformerLens bridge of the same weights with a hand-written hook that adds
  ``coefficient * W_dec[latent]`` (everywhere, or by index assignment at chosen positions);
  coefficient 0 gives the clean logits bit for bit; greedy steered generation is the argmax loop
  of steered forward passes;
* ablation: with the error term and nothing zeroed, the clean logits bit for bit; without it,
  the SAE's reconstruction run through the rest of the model (and *not* the clean logits);
  `latent_ablation_effects` against a loop of single `ablate_latent` calls;
* attribution: ``torch.autograd.grad`` of the metric with respect to a leaf latent tensor on an
  explicit graph (the final LayerNorm and unembedding written out here), and on the bridge for a
  mid-layer hook; and, where the path from the latents to the metric is linear (the hook after the
  final LayerNorm's normalisation, a logit difference), the real ablation effect and the closed
  form ``-mean_b f_i (W_dec[i] ⊙ w_ln) · (W_U[:, A] - W_U[:, B])`` — exact there. Where the path
  is not linear they must differ (a check that can fail).
"""

from __future__ import annotations

import re

import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interp_models import random_gpt

from mechlearn.gpt.sampling import generate
from mechlearn.interp.core import run_with_cache
from mechlearn.sae.standard import StandardSAE
from mechlearn.sae.steering import (
    ablate_latent, ablation_hook, generate_with_steering, latent_ablation_effects, latent_attribution,
    steer_with_latent, steering_hook,
)
from mechlearn.testing import EXACT, FLOAT64, assert_close

D_VOCAB, D_MODEL, D_SAE, N_CTX = 23, 16, 40, 10
MID, LAST, NORMALIZED = "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post", "ln_final.hook_normalized"
A, B = 3, 5

FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
INFORMATIVE = re.compile(r"should|expect|must|got|out of range|convert", re.IGNORECASE)


@pytest.fixture(scope="module")
def model():
    return random_gpt(seed=0, attn_only=False, weight_std=0.4, bias_std=0.1, d_vocab=D_VOCAB, n_ctx=N_CTX,
                      d_model=D_MODEL, n_layers=2, n_heads=2)


@pytest.fixture(scope="module")
def sae():
    """A float64 standard SAE with random biases, so that about half its latents fire on a token."""
    sae = StandardSAE(D_MODEL, D_SAE, 0.1, generator=torch.Generator().manual_seed(0)).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        sae.W_enc.add_(0.3 * torch.randn(sae.W_enc.shape, generator=g, dtype=torch.float64))
        sae.b_enc.normal_(0.0, 0.3, generator=g)
        sae.b_dec.normal_(0.0, 0.3, generator=g)
    return sae


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, D_VOCAB, (3, 8), generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def bridge(model):
    interop = pytest.importorskip("mechlearn.gpt.interop")
    pytest.importorskip("transformer_lens")
    return interop.to_transformer_lens(model)


def logprob_metric(tokens):
    """Mean log-probability of the correct next token: nonlinear in the logits."""
    def metric(logits):
        return logits.log_softmax(-1)[:, :-1].gather(-1, tokens[:, 1:, None]).mean()
    return metric


def logit_diff(logits):
    """A logit difference at the last position, averaged over the batch: linear in the logits."""
    return (logits[:, -1, A] - logits[:, -1, B]).mean()


# -- steering -----------------------------------------------------------------------------------


def test_steering_with_coefficient_zero_is_the_clean_run(model, sae, tokens):
    assert_close(steer_with_latent(model, sae, tokens, 7, 0.0, MID), model(tokens), EXACT, name="coefficient 0")
    moved = steer_with_latent(model, sae, tokens, 7, 1.0, MID)
    assert (moved - model(tokens)).abs().max() > 1e-3, "steering with coefficient 1 should move the logits"


@pytest.mark.parametrize("positions", [None, [1, -1]])
def test_steering_matches_a_transformer_lens_hook(model, sae, tokens, bridge, positions):
    latent, coefficient = 11, 2.5
    direction = sae.W_dec[latent].detach()

    def add(act, hook):
        if positions is None:
            return act + coefficient * direction
        act = act.clone()
        act[:, positions] += coefficient * direction
        return act

    theirs = bridge.run_with_hooks(tokens, fwd_hooks=[(MID, add)])
    ours = steer_with_latent(model, sae, tokens, latent, coefficient, MID, positions)
    assert_close(ours, theirs, FLOAT64, name=f"steered logits, positions={positions}")
    other = steer_with_latent(model, sae, tokens, latent + 1, coefficient, MID, positions)
    assert (other - theirs).abs().max() > 1e-3, "steering another latent should give other logits"


def test_greedy_steered_generation_is_the_argmax_loop(model, sae, tokens):
    prompt, latent, coefficient = tokens[:, :3], 5, 6.0
    ours = generate_with_steering(model, sae, prompt, latent, coefficient, MID, 5)
    seq = prompt
    for _ in range(5):
        logits = steer_with_latent(model, sae, seq, latent, coefficient, MID)
        seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert_close(ours, seq, EXACT, name="greedy steered generation")
    plain = generate(model, prompt, 5, temperature=0.0)
    assert_close(generate_with_steering(model, sae, prompt, latent, 0.0, MID, 5), plain, EXACT, name="coefficient 0")
    assert (ours != plain).any(), "this steering should change the greedy continuation"


# -- ablation -----------------------------------------------------------------------------------


def test_ablating_nothing_with_the_error_term_is_the_clean_run(model, sae, tokens, bridge):
    clean = model(tokens)
    assert_close(ablate_latent(model, sae, tokens, [], MID), clean, EXACT, name="our GPT")
    assert_close(ablate_latent(bridge, sae, tokens, [], MID), bridge(tokens), EXACT, name="bridge")
    spliced = ablate_latent(model, sae, tokens, [], MID, error_term=False)
    assert (spliced - clean).abs().max() > 1e-2, "the SAE alone should not reproduce the clean run"
    x_hat = lambda act, hook: sae.decode(sae.encode(act))  # noqa: E731
    assert_close(spliced, bridge.run_with_hooks(tokens, fwd_hooks=[(MID, x_hat)]), FLOAT64, name="splice")


def test_ablating_a_latent_removes_exactly_its_decoder_contribution(model, sae, tokens, bridge):
    latent, positions = 4, [0, 2]
    _, cache = run_with_cache(model, tokens, MID)
    f = sae.encode(cache[MID])[..., latent].detach()  # (batch, pos)
    assert (f[:, positions] > 0).any(), "pick a latent that fires, or the check is empty"

    def remove(act, hook):
        act = act.clone()
        act[:, positions] -= f[:, positions, None] * sae.W_dec[latent].detach()
        return act

    ours = ablate_latent(model, sae, tokens, latent, MID, positions)
    assert_close(ours, bridge.run_with_hooks(tokens, fwd_hooks=[(MID, remove)]), FLOAT64, name="ablation")


@pytest.mark.parametrize("positions", [None, [2, -1]])
def test_ablation_effects_match_a_loop_of_single_ablations(model, sae, tokens, positions):
    metric = logprob_metric(tokens)
    clean = metric(model(tokens))
    loop = torch.stack([metric(ablate_latent(model, sae, tokens, i, MID, positions)) - clean for i in range(D_SAE)])
    effects = latent_ablation_effects(model, sae, tokens, metric, MID, positions)  # starts at block 1
    assert_close(effects, loop.detach(), FLOAT64, name=f"effects, positions={positions}")
    assert (effects != 0).sum() > D_SAE // 4, "most latents should matter on this SAE"
    # the same stream one hook earlier: the copies run the whole model with a hook
    whole = latent_ablation_effects(model, sae, tokens, metric, "blocks.0.hook_resid_post", positions)
    assert_close(whole, effects, FLOAT64, name="whole forward pass with a hook")
    chunked = latent_ablation_effects(model, sae, tokens, metric, MID, positions, copies_per_forward=3)
    assert_close(chunked, effects, FLOAT64, name="three copies per forward")
    some = latent_ablation_effects(model, sae, tokens, metric, MID, positions, latents=[0, 5])
    assert_close(some[[0, 5]], effects[[0, 5]], FLOAT64, name="a subset")
    assert (some[[i for i in range(D_SAE) if i not in (0, 5)]] == 0).all()


def test_ablation_effects_on_the_bridge(model, sae, tokens, bridge):
    metric = logprob_metric(tokens)
    ours = latent_ablation_effects(model, sae, tokens, metric, MID, latents=list(range(8)))
    theirs = latent_ablation_effects(bridge, sae, tokens, metric, MID, latents=list(range(8)))
    assert_close(theirs, ours, FLOAT64, name="bridge vs our GPT")


# -- attribution patching -----------------------------------------------------------------------


def test_attribution_matches_autograd_on_an_explicit_graph(model, sae, tokens):
    """The final LayerNorm and the unembedding written out; the gradient by torch.autograd."""
    metric = logprob_metric(tokens)
    _, cache = run_with_cache(model, tokens, LAST)
    x = cache[LAST]
    f = sae.encode(x).detach().requires_grad_(True)
    x_spliced = sae.decode(f) + (x - sae.decode(f)).detach()
    centred = x_spliced - x_spliced.mean(-1, keepdim=True)
    normalized = centred / (centred.pow(2).mean(-1, keepdim=True) + model.cfg.layer_norm_eps).sqrt()
    ln = model.ln_final
    logits = (normalized * ln.w + ln.b) @ model.unembed.W_U + model.unembed.b_U
    (grad,) = torch.autograd.grad(metric(logits), f)
    expected = -(f * grad).sum(dim=(0, 1)).detach()
    assert_close(latent_attribution(model, sae, tokens, metric, LAST), expected, FLOAT64, name="last layer")
    assert expected.abs().max() > 1e-3


@pytest.mark.parametrize("positions", [None, [1, -2]])
def test_attribution_matches_autograd_through_the_bridge(model, sae, tokens, bridge, positions):
    metric = logprob_metric(tokens)
    leaf = {}

    def splice(act, hook):
        f = sae.encode(act.detach()).detach().requires_grad_(True)
        leaf["f"] = f
        return sae.decode(f) + (act - sae.decode(f)).detach()

    with torch.enable_grad():
        value = metric(bridge.run_with_hooks(tokens, fwd_hooks=[(MID, splice)]))
        (grad,) = torch.autograd.grad(value, leaf["f"])
    terms = -(leaf["f"] * grad).detach()
    expected = (terms if positions is None else terms[:, positions]).sum(dim=(0, 1))
    ours = latent_attribution(model, sae, tokens, metric, MID, positions)
    assert_close(ours, expected, FLOAT64, name=f"mid-layer attribution, positions={positions}")


def test_attribution_is_the_ablation_effect_where_the_path_is_linear(model, sae, tokens):
    """After the final LayerNorm's normalisation, logits are affine in the stream: first order is exact."""
    attribution = latent_attribution(model, sae, tokens, logit_diff, NORMALIZED)
    effects = latent_ablation_effects(model, sae, tokens, logit_diff, NORMALIZED)
    _, cache = run_with_cache(model, tokens, NORMALIZED)
    f_last = sae.encode(cache[NORMALIZED])[:, -1].detach()  # (batch, d_sae)
    W_U = model.unembed.W_U.detach()
    per_latent = (sae.W_dec.detach() * model.ln_final.w.detach()) @ (W_U[:, A] - W_U[:, B])  # (d_sae,)
    closed_form = -(f_last * per_latent).mean(0)
    assert_close(effects, closed_form, FLOAT64, name="ablation effects")
    assert_close(attribution, closed_form, FLOAT64, name="attribution")
    assert closed_form.abs().max() > 1e-2


def test_attribution_is_only_an_estimate_where_the_path_is_not_linear(model, sae, tokens):
    metric = logprob_metric(tokens)
    attribution = latent_attribution(model, sae, tokens, metric, MID)
    effects = latent_ablation_effects(model, sae, tokens, metric, MID)
    gap = (attribution - effects).abs().max()
    assert gap > 1e-4, f"through LayerNorms, attention and GELUs the linear estimate should miss, got gap {gap:.2e}"
    assert torch.corrcoef(torch.stack([attribution, effects]))[0, 1] > 0.5, "but it should still be correlated"


# -- bad input ----------------------------------------------------------------------------------


def test_clear_errors(model, sae, tokens):
    metric = logprob_metric(tokens)
    with pytest.raises(ValueError, match=r"latent should be an int in \[0, d_sae=40\)"):
        unchecked(steer_with_latent)(model, sae, tokens, D_SAE, 1.0, MID)
    with pytest.raises(ValueError, match="latent should be"):
        unchecked(ablate_latent)(model, sae, tokens, -1, MID)
    with pytest.raises(ValueError, match="latent should be"):
        unchecked(ablation_hook)(sae, [True])
    with pytest.raises(KeyError, match="no hook point named 'blocks.1.hook_resid_mdi'"):
        steer_with_latent(model, sae, tokens, 0, 1.0, "blocks.1.hook_resid_mdi")
    with pytest.raises(KeyError, match="no hook point"):
        latent_attribution(model, sae, tokens, metric, "blocks.9.hook_resid_pre")
    with pytest.raises(ValueError, match=r"should return a scalar"):
        latent_attribution(model, sae, tokens, lambda logits: logits[:, -1, 0], MID)
    with pytest.raises(ValueError, match=r"should return a scalar"):
        latent_ablation_effects(model, sae, tokens, lambda logits: logits.sum(-1), MID)
    with pytest.raises(TypeError, match="metric should be callable"):
        unchecked(latent_attribution)(model, sae, tokens, 3.0, MID)
    narrow = StandardSAE(D_MODEL - 1, 8, 0.1).double()
    with pytest.raises(ValueError, match=r"d_in=15, but hook 'blocks.1.hook_resid_pre' gives shape \(3, 8, 16\)"):
        ablate_latent(model, narrow, tokens, 0, MID)
    with pytest.raises(ValueError, match="d_in=15"):
        latent_ablation_effects(model, narrow, tokens, metric, MID)
    with pytest.raises(TypeError, match="convert one of them"):
        steer_with_latent(model, StandardSAE(D_MODEL, 8, 0.1), tokens, 0, 1.0, MID)
    with pytest.raises(ValueError, match="coefficient should be a finite number"):
        steer_with_latent(model, sae, tokens, 0, float("nan"), MID)
    with pytest.raises(ValueError, match=r"positions \[8\] are out of range for sequences of length 8"):
        steer_with_latent(model, sae, tokens, 0, 1.0, MID, [8])
    with pytest.raises(ValueError, match="positions should be"):
        unchecked(latent_attribution)(model, sae, tokens, metric, MID, [])
    with pytest.raises(TypeError, match="should be an SAE"):
        unchecked(steering_hook)(torch.nn.Linear(16, 16), 0, 1.0)
    with pytest.raises(TypeError, match="needs a mechlearn GPT"):
        unchecked(generate_with_steering)(object(), sae, tokens, 0, 1.0, MID, 2)
    with pytest.raises(ValueError, match="copies_per_forward should be"):
        unchecked(latent_ablation_effects)(model, sae, tokens, metric, MID, copies_per_forward=0)


def test_hooks_are_removed_after_an_error(model, sae, tokens):
    with pytest.raises(ValueError):
        steer_with_latent(model, sae, tokens, 0, 1.0, MID, [50])
    assert all(hp.n_hooks == 0 for hp in model.hook_dict.values())


@FUZZ
@given(
    latent=st.one_of(st.integers(-3, D_SAE + 3), st.booleans(), st.floats(-2, 50), st.none()),
    coefficient=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.booleans()),
    positions=st.one_of(st.none(), st.integers(-10, 10), st.lists(st.integers(-10, 10), max_size=3)),
)
def test_fuzz_steering_and_ablation_inputs(model, sae, tokens, latent, coefficient, positions):
    for call in (
        lambda: unchecked(steer_with_latent)(model, sae, tokens, latent, coefficient, MID, positions),
        lambda: unchecked(ablate_latent)(model, sae, tokens, latent, MID, positions),
    ):
        try:
            logits = call()
        except (ValueError, TypeError) as error:
            assert INFORMATIVE.search(str(error)), f"uninformative error: {error}"
        else:
            assert logits.shape == (*tokens.shape, D_VOCAB) and torch.isfinite(logits).all()
