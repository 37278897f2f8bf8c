"""mechlearn.interp.core: one interface over our GPT and a TransformerLens bridge."""

from __future__ import annotations

import pytest
import torch
from interp_models import random_gpt

from mechlearn.gpt import GPT
from mechlearn.gpt.interop import to_transformer_lens
from mechlearn.interp.core import (
    check_head, check_hook_name, check_prompt_pair, check_scalar_metric, check_tokens, hook_name, model_spec,
    run_with_cache, run_with_hooks, weights,
)
from mechlearn.testing import EXACT, FLOAT64, assert_close

tl_utils = pytest.importorskip("transformer_lens.utilities")


def small(attn_only: bool = True, seed: int = 0) -> GPT:
    return random_gpt(seed=seed, attn_only=attn_only, bias_std=0.1, d_vocab=23, n_ctx=12, d_model=16, n_layers=2,
                      n_heads=2)


@pytest.mark.parametrize("kind,layer", [("resid_pre", 0), ("resid_post", 1), ("z", 1), ("pattern", 0), ("q", 1),
                                         ("attn_out", 0), ("mlp_out", 1), ("post", 0), ("resid_mid", 1)])
def test_hook_name_is_transformer_lens_get_act_name(kind, layer):
    assert hook_name(kind, layer) == tl_utils.get_act_name(kind, layer)


def test_spec_weights_and_cache_agree_with_the_bridge():
    model = small()
    bridge = to_transformer_lens(model)
    ours, theirs = model_spec(model), model_spec(bridge)
    assert (ours.kind, theirs.kind) == ("mechlearn", "transformer_lens")
    assert ours.__dict__ | {"kind": ""} == theirs.__dict__ | {"kind": ""}
    w_ours, w_theirs = weights(model), weights(bridge)
    for name in w_ours.__dataclass_fields__:
        assert_close(getattr(w_ours, name), getattr(w_theirs, name), EXACT, name=name)
    tokens = torch.randint(0, 23, (3, 9), generator=torch.Generator().manual_seed(1))
    logits_a, cache_a = run_with_cache(model, tokens, names_filter=[hook_name("z", 1), hook_name("resid_pre", 1)])
    logits_b, cache_b = run_with_cache(bridge, tokens)
    assert_close(logits_a, logits_b, FLOAT64, name="logits")
    for name in cache_a:
        assert_close(cache_a[name], cache_b[name], FLOAT64, name=name)
    assert_close(cache_b["z", 1], cache_b[hook_name("z", 1)], EXACT, name="shorthand lookup on a bridge cache")


def test_hooks_edit_both_models_the_same_way():
    model = small()
    bridge = to_transformer_lens(model)
    tokens = torch.randint(0, 23, (2, 7), generator=torch.Generator().manual_seed(2))

    def zero_head_0(z, hook):
        z = z.clone()
        z[:, :, 0] = 0.0
        return z

    hooks = [(hook_name("z", 0), zero_head_0)]
    edited = run_with_hooks(model, tokens, hooks)
    assert_close(edited, run_with_hooks(bridge, tokens, hooks), FLOAT64, name="edited logits")
    assert (edited - model(tokens)).abs().max() > 1e-3, "zeroing a head should change the logits"


def test_bad_input_errors_name_what_was_expected():
    model = small()
    with pytest.raises(KeyError, match="closest"):
        check_hook_name(model, "blocks.0.attn.hook_zz")
    with pytest.raises(KeyError, match="no hook point"):
        run_with_cache(model, torch.zeros(1, 3, dtype=torch.long), names_filter="blocks.0.hook_mlp_out")
    with pytest.raises(ValueError, match=r"layer should be an int in \[0, 2\)"):
        check_head(model, 2, 0)
    with pytest.raises(ValueError, match=r"head should be an int in \[0, 2\)"):
        check_head(model, 0, -1)
    with pytest.raises(ValueError, match="same shape"):
        check_prompt_pair(model, torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="scalar"):
        check_scalar_metric(torch.zeros(3))
    with pytest.raises(TypeError, match="GPT or a TransformerLens"):
        model_spec(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="d_vocab"):
        check_tokens(to_transformer_lens(model), torch.full((1, 3), 23))
    with pytest.raises(ValueError, match="unknown activation"):
        hook_name("resid", 0)
    assert check_head(model, 1, 1) == (1, 1)
