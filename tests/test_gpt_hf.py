"""Our GPT against Hugging Face ``transformers``' ``GPT2LMHeadModel``, built offline with copied weights.

``GPT2LMHeadModel`` is what most engineers would use instead of our model, so it is the second
reference after TransformerLens: the same logits (float64 at `FLOAT64`, float32 at
`FLOAT32_MODEL`) under both of its attention implementations, and the same greedy tokens from its
KV-cached ``generate``. The model is built from a ``GPT2Config``: nothing is downloaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: nothing here should reach the hub

import pytest
import torch

from conftest import unchecked
from mechlearn.gpt import GPT, GPTConfig, generate, state_dict_to_hf, to_hf_gpt2, to_hf_gpt2_config
from mechlearn.testing import EXACT, FLOAT32_MODEL, FLOAT64, assert_close

pytest.importorskip("transformers")


def small_model(dtype=torch.float64, seed=0, zero_b_U=False, **kw) -> GPT:
    """A small GPT with weights large enough that a wrong mapping cannot hide in rounding."""
    torch.manual_seed(seed)
    cfg = GPTConfig(**{"d_vocab": 37, "n_ctx": 48, "d_model": 32, "n_layers": 2, "n_heads": 4, **kw})
    model = GPT(cfg).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3) if p.ndim > 1 else p.add_(torch.randn_like(p) * 0.1)
        if zero_b_U:
            model.unembed.b_U.zero_()
    return model.eval()


def tokens(batch=3, pos=16, d_vocab=37, seed=1) -> torch.Tensor:
    return torch.randint(0, d_vocab, (batch, pos), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("act_fn", ["gelu_new", "gelu", "relu"])
def test_logits_equal_gpt2lmheadmodel_in_float64(act_fn, attn_implementation):
    model = small_model(act_fn=act_fn)
    hf = to_hf_gpt2(model, attn_implementation=attn_implementation)
    assert hf.config._attn_implementation == attn_implementation and not hf.training
    t = tokens()
    with torch.no_grad():
        assert_close(model(t), hf(t).logits, FLOAT64, name=f"logits vs GPT2LMHeadModel ({act_fn}, {attn_implementation})")


def test_logits_equal_gpt2lmheadmodel_in_float32_with_its_default_attention():
    model = small_model(torch.float32, seed=2)
    hf = to_hf_gpt2(model)
    assert next(hf.parameters()).dtype == torch.float32
    t = tokens(batch=2, pos=48, seed=3)
    with torch.no_grad():
        assert_close(model(t), hf(t).logits, FLOAT32_MODEL, name="float32 logits vs GPT2LMHeadModel")


def test_a_zero_unembedding_bias_gives_the_stock_untied_lm_head():
    """GPT-2's lm_head has no bias and is tied to wte; ours is untied, and b_U maps only when it is not zero."""
    model = small_model(zero_b_U=True)
    hf = to_hf_gpt2(model)
    assert hf.lm_head.bias is None and "lm_head.bias" not in state_dict_to_hf(model)
    assert hf.lm_head.weight.data_ptr() != hf.transformer.wte.weight.data_ptr(), "lm_head must not be tied to wte"
    assert not hf.config.tie_word_embeddings
    t = tokens()
    with torch.no_grad():
        assert_close(model(t), hf(t).logits, FLOAT64, name="logits, b_U = 0, stock lm_head")
    biased = to_hf_gpt2(small_model())
    assert biased.lm_head.bias is not None


def test_the_state_dict_is_a_copy_with_gpt2_s_names_and_layout():
    model = small_model()
    sd = state_dict_to_hf(model)
    a = model.blocks[1].attn
    # c_attn's columns are [q | k | v], each head-major: column h·d_head + e of the q block is W_Q[h, :, e].
    assert_close(sd["transformer.h.1.attn.c_attn.weight"][:, 2 * 8 + 5], a.W_Q[2, :, 5], EXACT, name="W_Q layout")
    assert_close(sd["transformer.h.1.attn.c_attn.weight"][:, 32 + 3 * 8 + 1], a.W_K[3, :, 1], EXACT, name="W_K layout")
    assert_close(sd["transformer.h.1.attn.c_proj.weight"][1 * 8 + 7], a.W_O[1, 7], EXACT, name="W_O layout")
    sd["transformer.wte.weight"].add_(1.0)
    assert not torch.equal(sd["transformer.wte.weight"], model.embed.W_E), "the state dict should hold copies"


def test_greedy_generation_equals_hf_generate_with_its_kv_cache():
    model = small_model(seed=4)
    hf = to_hf_gpt2(model)
    prompt = tokens(batch=1, pos=6, seed=5)
    ours = generate(model, prompt, 40, temperature=0.0)
    with torch.no_grad():
        theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=40, do_sample=False, use_cache=True)
    assert torch.equal(ours, theirs), f"greedy tokens differ:\nours   {ours.tolist()}\ntheirs {theirs.tolist()}"


def test_a_config_gpt2_cannot_express_is_refused():
    model = small_model(d_head=5)  # 4 heads × 5 ≠ d_model 32
    with pytest.raises(ValueError, match="n_heads \\* d_head == d_model"):
        unchecked(to_hf_gpt2)(model)
    with pytest.raises(ValueError, match="no GPT2LMHeadModel counterpart"):
        unchecked(to_hf_gpt2_config)(model.cfg)
    with pytest.raises(TypeError, match="mechlearn GPT"):
        unchecked(state_dict_to_hf)(torch.nn.Linear(2, 2))
