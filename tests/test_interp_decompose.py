"""mechlearn.interp.decompose and .attribution: the residual stream as a sum, and direct logit attribution.

References: TransformerLens's own ``ActivationCache`` methods (``decompose_resid``,
``stack_head_results``, ``accumulated_resid``, ``apply_ln_to_stack``, ``logit_attrs``) on a bridge
with the same weights, in float64 (FLOAT64); and closed forms (components sum to the residual
stream, heads plus ``b_O`` sum to ``attn_out``, DLA plus the named bias terms is the logit
difference).
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import unchecked
from interp_models import SMALL_VOCAB
from interp_models import small_gpt as small
from interp_models import small_tokens as tokens
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.gpt import GPT
from mechlearn.gpt.interop import to_transformer_lens
from mechlearn.interp.attribution import (
    dla_bias_terms, direct_logit_attribution, final_ln_params, logit_diff, logit_diff_directions,
)
from mechlearn.interp.core import hook_name, run_with_cache
from mechlearn.interp.decompose import accumulated_resid, apply_ln_to_stack, decompose_resid, stack_head_results
from mechlearn.testing import EXACT, FLOAT64, assert_close

pytest.importorskip("transformer_lens")

VOCAB = SMALL_VOCAB


@pytest.fixture(scope="module", params=[True, False], ids=["attn_only", "with_mlp"])
def setup(request):
    model = small(request.param)
    bridge = to_transformer_lens(model)
    toks = tokens()
    logits, cache = run_with_cache(model, toks)
    _, tl_cache = bridge.run_with_cache(toks)  # TransformerLens's own ActivationCache
    return model, bridge, toks, logits, cache, tl_cache


def cases(model):
    out = [dict(), dict(layer=1), dict(pos_slice=-1), dict(pos_slice=slice(2, 6)), dict(layer=0)]
    if not model.cfg.attn_only:
        out += [dict(layer=1, mlp_input=True), dict(mode="mlp"), dict(mode="attn", pos_slice=3)]
    return out


def test_decompose_resid_is_transformer_lens(setup):
    model, bridge, _, _, cache, tl_cache = setup
    for kw in cases(model):
        ours, labels = decompose_resid(model, cache, **kw)
        theirs, tl_labels = tl_cache.decompose_resid(return_labels=True, **kw)
        assert labels == tl_labels, kw
        assert_close(ours, theirs, FLOAT64, name=f"decompose_resid {kw}")
        on_bridge, _ = decompose_resid(bridge, run_with_cache(bridge, setup[2])[1], **kw)
        assert_close(on_bridge, ours, FLOAT64, name=f"decompose_resid on the bridge {kw}")


def test_stack_head_results_is_transformer_lens(setup):
    model, _, _, _, cache, tl_cache = setup
    for kw in [dict(), dict(layer=1), dict(pos_slice=-1), dict(incl_remainder=True), dict(layer=1, incl_remainder=True)]:
        ours, labels = stack_head_results(model, cache, **kw)
        theirs, tl_labels = tl_cache.stack_head_results(return_labels=True, **kw)
        assert labels == tl_labels, kw
        assert_close(ours, theirs, FLOAT64, name=f"stack_head_results {kw}")
    # layer=0: no heads. TransformerLens 4.3 reads its remainder from resid_post of layer -1 (the
    # *last* layer, by Python indexing); the stream entering layer 0 is embed + pos_embed.
    ours, labels = stack_head_results(model, cache, layer=0, incl_remainder=True)
    assert labels == ["remainder"]
    assert_close(ours[0], cache["resid_pre", 0], FLOAT64, name="layer-0 remainder is the embedding")
    assert stack_head_results(model, cache)[1][:4] == ["L0H0", "L0H1", "L0H2", "L1H0"]


def test_accumulated_resid_is_transformer_lens(setup):
    model, _, _, _, cache, tl_cache = setup
    kws = [dict(), dict(layer=1), dict(pos_slice=-1)] + ([] if model.cfg.attn_only else [dict(incl_mid=True)])
    for kw in kws:
        ours, labels = accumulated_resid(model, cache, **kw)
        theirs, tl_labels = tl_cache.accumulated_resid(return_labels=True, **kw)
        assert labels == tl_labels, kw
        assert_close(ours, theirs, FLOAT64, name=f"accumulated_resid {kw}")


def test_apply_ln_to_stack_is_transformer_lens(setup):
    model, _, _, _, cache, tl_cache = setup
    stack, _ = decompose_resid(model, cache, pos_slice=-1)
    assert_close(apply_ln_to_stack(model, cache, stack, pos_slice=-1),
                 tl_cache.apply_ln_to_stack(stack, layer=-1, pos_slice=-1), FLOAT64, name="final LN, last position")
    stack, _ = decompose_resid(model, cache, layer=1)
    assert_close(apply_ln_to_stack(model, cache, stack, layer=1),
                 tl_cache.decompose_resid(layer=1, apply_ln=True), FLOAT64, name="layer 1's ln1")
    if not model.cfg.attn_only:
        stack, _ = decompose_resid(model, cache, layer=1, mlp_input=True)
        assert_close(apply_ln_to_stack(model, cache, stack, layer=1, mlp_input=True),
                     tl_cache.decompose_resid(layer=1, mlp_input=True, apply_ln=True), FLOAT64, name="layer 1's ln2")


def test_components_sum_to_the_residual_stream(setup):
    model, _, _, _, cache, _ = setup
    stack, _ = decompose_resid(model, cache)
    assert_close(stack.sum(0), cache["resid_post", 1], FLOAT64, name="components sum to the final stream")
    stack, _ = decompose_resid(model, cache, layer=1)
    assert_close(stack.sum(0), cache["resid_pre", 1], FLOAT64, name="components sum to resid_pre 1")
    heads, _ = stack_head_results(model, cache)
    for layer in range(2):
        summed = heads[3 * layer : 3 * layer + 3].sum(0) + model.blocks[layer].attn.b_O
        assert_close(summed, cache["attn_out", layer], FLOAT64, name=f"heads + b_O = attn_out {layer}")
        without_bias = heads[3 * layer : 3 * layer + 3].sum(0)
        assert (without_bias - cache["attn_out", layer]).abs().max() > 1e-2, "b_O is nonzero, so it must matter"
    acc, _ = accumulated_resid(model, cache)
    dec, labels = decompose_resid(model, cache)
    assert_close(acc[-1], dec.sum(0), FLOAT64, name="final accumulated = sum of components")
    # The scaled components sum to the normalised stream (the LayerNorm before its affine map).
    scaled = apply_ln_to_stack(model, cache, dec)
    assert_close(scaled.sum(0), cache["ln_final.hook_normalized"], FLOAT64, name="scaled components sum to LN(x)")


def fold_final_ln(model: GPT) -> GPT:
    """A copy with ln_final's w and b moved into W_U and b_U (TransformerLens's fold_ln, final layer only)."""
    folded = copy.deepcopy(model)
    w, b = model.ln_final.w.detach(), model.ln_final.b.detach()
    with torch.no_grad():
        folded.unembed.b_U.add_(b @ model.unembed.W_U)
        folded.unembed.W_U.mul_(w[:, None])
        folded.ln_final.w.fill_(1.0)
        folded.ln_final.b.zero_()
    return folded


def test_logit_diff_is_the_gather():
    logits = torch.randn(3, 5, VOCAB, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    c, w = torch.tensor([1, 2, 3]), torch.tensor([4, 4, 0])
    expected = torch.stack([logits[i, -1, c[i]] - logits[i, -1, w[i]] for i in range(3)])
    assert_close(logit_diff(logits, c, w, per_prompt=True), expected, EXACT, name="per prompt")
    assert_close(logit_diff(logits, c, w), expected.mean(), FLOAT64, name="mean")
    assert_close(logit_diff(logits, 5, 6, pos=2), (logits[:, 2, 5] - logits[:, 2, 6]).mean(), FLOAT64, name="pos 2")


def test_dla_plus_named_bias_terms_is_the_logit_difference(setup):
    model, bridge, _, logits, cache, _ = setup
    c, w = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 0, 7, 22])
    target = logit_diff(logits, c, w, per_prompt=True)
    bias = dla_bias_terms(model, c, w)
    assert set(bias) == {"ln_final.b", "b_U"}
    for stack, labels in (decompose_resid(model, cache, pos_slice=-1),
                          stack_head_results(model, cache, pos_slice=-1, incl_remainder=True)):
        dla = direct_logit_attribution(model, cache, stack, c, w, per_prompt=True)
        assert dla.shape == (len(labels), 4)
        assert_close(dla.sum(0) + bias["ln_final.b"] + bias["b_U"], target, FLOAT64, name=f"DLA over {labels[-1]}")
        assert_close(direct_logit_attribution(model, cache, stack, c, w), dla.mean(1), FLOAT64, name="batch mean")
    # The same on the bridge, through its own cache (converted by core.run_with_cache).
    _, bcache = run_with_cache(bridge, setup[2])
    stack, _ = decompose_resid(bridge, bcache, pos_slice=-1)
    assert_close(direct_logit_attribution(bridge, bcache, stack, c, w, per_prompt=True),
                 direct_logit_attribution(model, cache, decompose_resid(model, cache, pos_slice=-1)[0], c, w,
                                          per_prompt=True), FLOAT64, name="DLA on the bridge")
    # Negative: leave out the LayerNorm weight and the sum no longer matches.
    stack, _ = decompose_resid(model, cache, pos_slice=-1)
    unfolded = (apply_ln_to_stack(model, cache, stack, pos_slice=-1) * logit_diff_directions(model, c, w)).sum(-1)
    assert (unfolded.sum(0) + bias["ln_final.b"] + bias["b_U"] - target).abs().max() > 1e-2


def test_dla_is_transformer_lens_logit_attrs_on_the_folded_model(setup):
    model, _, toks, logits, cache, _ = setup
    folded = fold_final_ln(model)
    assert_close(folded(toks), logits, FLOAT64, name="folding ln_final keeps the logits")
    _, tl_cache = to_transformer_lens(folded).run_with_cache(toks)
    c, w = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 0, 7, 22])
    for ours_stack, tl_stack in (
        (decompose_resid(model, cache, pos_slice=-1)[0], tl_cache.decompose_resid(pos_slice=-1)),
        (stack_head_results(model, cache, pos_slice=-1)[0], tl_cache.stack_head_results(pos_slice=-1)),
    ):
        theirs = tl_cache.logit_attrs(tl_stack, tokens=c, incorrect_tokens=w, pos_slice=-1)
        ours = direct_logit_attribution(model, cache, ours_stack, c, w, per_prompt=True)
        assert_close(ours, theirs, FLOAT64, name="DLA vs TransformerLens logit_attrs")
    # Every position's next token at once, no wrong answer: TransformerLens's [batch, position] targets.
    stack, _ = decompose_resid(model, cache, pos_slice=slice(None, -1))
    ours = direct_logit_attribution(model, cache, stack, toks[:, 1:], pos_slice=slice(None, -1), per_prompt=True)
    theirs = tl_cache.logit_attrs(tl_cache.decompose_resid(pos_slice=slice(None, -1)), tokens=toks[:, 1:],
                                  pos_slice=slice(None, -1))
    assert_close(ours, theirs, FLOAT64, name="next-token DLA vs TransformerLens logit_attrs")
    bias = dla_bias_terms(model, toks[:, 1:])
    assert_close(ours.sum(0) + bias["ln_final.b"] + bias["b_U"], logits[:, :-1].gather(-1, toks[:, 1:, None])[..., 0],
                 FLOAT64, name="next-token DLA + biases = the logits")
    assert_close(logit_diff_directions(model, c, w, fold_ln=True), logit_diff_directions(folded, c, w), FLOAT64,
                 name="w folded into the direction")
    assert_close(final_ln_params(to_transformer_lens(model))[0], model.ln_final.w, EXACT, name="bridge ln_final.w")


def test_bad_inputs_name_what_was_expected():
    model = small(True)
    toks = tokens()
    logits, cache = run_with_cache(model, toks)
    _, z_only = run_with_cache(model, toks, names_filter=hook_name("z", 0))
    with pytest.raises(ValueError, match=r"layer should be an int in \[0, 2\]"):
        unchecked(decompose_resid)(model, cache, layer=3)
    with pytest.raises(ValueError, match="attn-only"):
        unchecked(decompose_resid)(model, cache, layer=1, mlp_input=True)
    with pytest.raises(ValueError, match="attn-only"):
        unchecked(accumulated_resid)(model, cache, incl_mid=True)
    with pytest.raises(ValueError, match="mode should be"):
        unchecked(decompose_resid)(model, cache, mode="heads")
    with pytest.raises(KeyError, match="names_filter"):
        unchecked(stack_head_results)(model, z_only)
    with pytest.raises(TypeError, match="pos_slice should be"):
        unchecked(decompose_resid)(model, cache, pos_slice="last")
    stack, _ = decompose_resid(model, cache)
    with pytest.raises(ValueError, match="line up with the cached scale"):
        unchecked(apply_ln_to_stack)(model, cache, stack, pos_slice=-1)
    with pytest.raises(ValueError, match="line up with the cached scale"):
        unchecked(direct_logit_attribution)(model, cache, stack, 1, 2)  # every position, scale at the last
    with pytest.raises(ValueError, match="sliced to the scored positions"):
        unchecked(direct_logit_attribution)(model, cache, stack[:, 0, 0], 1, 2)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        unchecked(direct_logit_attribution)(model, cache, stack[:, :, -1], torch.tensor([1, 2]), 2)
    with pytest.raises(ValueError, match="same shape"):
        unchecked(logit_diff_directions)(model, torch.tensor([1, 2]), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"d_vocab=23"):
        unchecked(logit_diff)(logits, 23, 0)
    with pytest.raises(ValueError, match="pos should be"):
        unchecked(logit_diff)(logits, 1, 0, pos=9)
    with pytest.raises(TypeError, match="integer token ids"):
        unchecked(logit_diff)(logits, torch.tensor([1.0, 2.0, 3.0, 4.0]), 0)


FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FUZZ
@given(batch=st.integers(1, 3), n_pos=st.integers(1, 3), pos=st.integers(-5, 5),
       correct=st.one_of(st.integers(-3, VOCAB + 2), st.lists(st.integers(-1, VOCAB), min_size=0, max_size=4)),
       wrong=st.integers(-1, VOCAB))
def test_fuzz_logit_diff_is_right_or_says_what_was_expected(batch, n_pos, pos, correct, wrong):
    logits = torch.randn(batch, n_pos, VOCAB, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    correct_t = correct if isinstance(correct, int) else torch.tensor(correct, dtype=torch.long)
    try:
        out = unchecked(logit_diff)(logits, correct_t, wrong, pos=pos, per_prompt=True)
    except (ValueError, TypeError) as err:
        assert "should" in str(err), str(err)
        return
    ids = torch.as_tensor(correct_t).expand(batch)
    expected = logits[torch.arange(batch), pos, ids] - logits[:, pos, wrong]
    assert_close(out, expected, EXACT, name="logit_diff")
