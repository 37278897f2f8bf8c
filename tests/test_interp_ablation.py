"""mechlearn.interp.ablation: zero, mean and resample ablation of heads through hooks on hook_z.

References: editing the weights (zero ablation of a head = zeroing its ``W_O`` rows; mean ablation =
zeroing them and moving ``mean(z) W_O[h]`` into ``b_O``), in float64 (FLOAT64); the same hooks on a
TransformerLens bridge with the same weights (FLOAT64); closed forms (resampling among identical
prompts, or a per-position mean over one prompt, changes nothing; a dead head scores exactly 0).
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
from mechlearn.interp.ablation import ablate_heads, ablation_values, head_ablation_scores
from mechlearn.interp.attribution import logit_diff
from mechlearn.interp.core import run_with_cache
from mechlearn.testing import EXACT, FLOAT64, assert_close

pytest.importorskip("transformer_lens")

VOCAB = SMALL_VOCAB
HEADS = [(0, 1), (1, 0), (1, 2)]


def edited(model: GPT, heads, means=None) -> GPT:
    """A copy whose listed heads have W_O = 0 (and, given means, b_O += mean(z) W_O[h])."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for layer, head in heads:
            attn = out.blocks[layer].attn
            if means is not None:
                attn.b_O.add_(means[layer][head] @ attn.W_O[head])
            attn.W_O[head] = 0.0
    return out


@pytest.mark.parametrize("attn_only", [True, False])
def test_zero_ablation_is_zeroing_w_o(attn_only):
    model, toks = small(attn_only), tokens()
    assert_close(ablate_heads(model, toks, HEADS, "zero"), edited(model, HEADS)(toks), FLOAT64, name="zero ablation")
    assert (ablate_heads(model, toks, HEADS, "zero") - model(toks)).abs().max() > 1e-2, "ablation must change logits"


@pytest.mark.parametrize("attn_only", [True, False])
def test_mean_ablation_is_moving_the_mean_into_b_o(attn_only):
    model, toks, ref = small(attn_only), tokens(), tokens(batch=6, pos=7, seed=5)
    _, cache = run_with_cache(model, ref)
    means = {layer: cache["z", layer].mean(dim=(0, 1)) for layer in range(2)}
    assert_close(ablate_heads(model, toks, HEADS, "mean", reference_tokens=ref), edited(model, HEADS, means)(toks),
                 FLOAT64, name="mean ablation vs weights")
    # Zero ablation is a different intervention: the head's mean output is not zero.
    assert (ablate_heads(model, toks, HEADS, "mean", reference_tokens=ref) - edited(model, HEADS)(toks)).abs().max() > 1e-2


@pytest.mark.parametrize("method", ["zero", "mean", "resample"])
def test_hooks_on_the_bridge_give_the_same_logits(method):
    model, toks = small(False), tokens()
    bridge = to_transformer_lens(model)
    ours = ablate_heads(model, toks, HEADS, method, generator=torch.Generator().manual_seed(3))
    theirs = ablate_heads(bridge, toks, HEADS, method, generator=torch.Generator().manual_seed(3))
    assert_close(ours, theirs, FLOAT64, name=f"{method} ablation on the bridge")
    metric = lambda logits: logit_diff(logits, 3, 4)  # noqa: E731
    assert_close(head_ablation_scores(model, toks, metric, method), head_ablation_scores(bridge, toks, metric, method),
                 FLOAT64, name=f"{method} scores on the bridge")


def test_resample_takes_another_prompts_values():
    model = small()
    same = tokens(batch=1).expand(4, -1)
    assert_close(ablate_heads(model, same, HEADS, "resample"), model(same), FLOAT64, name="identical prompts")
    assert_close(ablate_heads(model, same[:1], HEADS, "mean", reference_tokens=same[:1], per_position=True),
                 model(same[:1]), FLOAT64, name="per-position mean over the prompt itself")
    toks = tokens()
    values = ablation_values(model, toks, "resample", generator=torch.Generator().manual_seed(0))
    _, cache = run_with_cache(model, toks)
    def source_rows(values, z):  # which row of z each resampled row came from (to float64 rounding)
        dist = (values[:, None] - z[None]).flatten(2).abs().amax(-1)
        assert (dist.amin(1) < 1e-12).all(), "every resampled row is some prompt's z"
        return dist.argmin(1).tolist()

    for layer in range(2):
        rows = source_rows(values[layer], cache["z", layer])
        assert all(rows[i] != i for i in range(4)) and sorted(rows) == list(range(4)), rows
    ref = tokens(batch=3, seed=9)
    values = ablation_values(model, toks, "resample", reference_tokens=ref, generator=torch.Generator().manual_seed(0))
    _, ref_cache = run_with_cache(model, ref)
    source_rows(values[1], ref_cache["z", 1])
    assert (ablate_heads(model, toks, HEADS, "resample") - model(toks)).abs().max() > 1e-2


def test_head_ablation_scores_ablate_one_head_at_a_time():
    model, toks = small(), tokens()
    with torch.no_grad():
        model.blocks[1].attn.W_O[1] = 0.0  # a dead head
    metric = lambda logits: logit_diff(logits, 3, 4)  # noqa: E731
    for method in ("zero", "mean"):
        scores = head_ablation_scores(model, toks, metric, method)
        assert scores.shape == (2, 3)
        expected = torch.tensor([[(metric(ablate_heads(model, toks, [(l, h)], method)) - metric(model(toks))).item()
                                  for h in range(3)] for l in range(2)], dtype=torch.float64)
        assert_close(scores, expected, FLOAT64, name=f"{method} scores")
        if method == "zero":
            assert_close(scores[1, 1], 0.0, EXACT, name="a dead head's zero-ablation score")
        assert scores.abs().sum() > 1e-2


def test_bad_inputs_name_what_was_expected():
    model, toks = small(), tokens()
    with pytest.raises(ValueError, match="method should be one of"):
        unchecked(ablate_heads)(model, toks, HEADS, "random")
    with pytest.raises(ValueError, match=r"head should be an int in \[0, 3\)"):
        unchecked(ablate_heads)(model, toks, [(0, 3)])
    with pytest.raises(ValueError, match=r"layer should be an int in \[0, 2\)"):
        unchecked(ablate_heads)(model, toks, [(2, 0)])
    with pytest.raises(TypeError, match="list of"):
        unchecked(ablate_heads)(model, toks, [0, 1])
    with pytest.raises(ValueError, match="prompts' length 9"):
        unchecked(ablate_heads)(model, toks, HEADS, "resample", reference_tokens=tokens(pos=5))
    with pytest.raises(ValueError, match="at least 2 prompts"):
        unchecked(ablate_heads)(model, toks[:1], HEADS, "resample")
    with pytest.raises(ValueError, match="scalar"):
        unchecked(head_ablation_scores)(model, toks, lambda logits: logits[:, -1, 0], "zero")
    assert_close(ablate_heads(model, toks, (0, 1)), ablate_heads(model, toks, [(0, 1)]), EXACT, name="one tuple")


FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FUZZ
@given(heads=st.lists(st.tuples(st.integers(-1, 3), st.integers(-1, 4)), max_size=3),
       method=st.sampled_from(["zero", "mean", "resample", "Zero", ""]), ref_pos=st.integers(1, 11))
def test_fuzz_ablation_is_right_or_says_what_was_expected(heads, method, ref_pos):
    model, toks = small(), tokens(batch=2, pos=6)
    try:
        out = unchecked(ablate_heads)(model, toks, heads, method, reference_tokens=tokens(batch=2, pos=ref_pos))
    except (ValueError, TypeError) as err:
        assert "should" in str(err), str(err)
        return
    if not heads:
        assert_close(out, model(toks), FLOAT64, name="no heads ablated")
    assert out.shape == (2, 6, VOCAB) and out.isfinite().all()
