"""Days 24–26, 30–32: our GPT's pieces against torch and TransformerLens; the KV cache; hooks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import unchecked
from mechlearn.gpt import (
    GPT, Attention, GPTConfig, KVCache, LayerNorm, from_transformer_lens, gelu_new, to_transformer_lens,
)
from mechlearn.gpt.interop import state_dict_from_tl, state_dict_to_tl
from mechlearn.testing import EXACT, FLOAT32_MODEL, FLOAT64, assert_close


def small_model(dtype=torch.float64, seed=0, **kw) -> GPT:
    """A small GPT with weights large enough that a wrong formula cannot hide in rounding."""
    torch.manual_seed(seed)
    cfg = GPTConfig(**{"d_vocab": 37, "n_ctx": 16, "d_model": 32, "n_layers": 2, "n_heads": 4, **kw})
    model = GPT(cfg).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3, generator=None) if p.ndim > 1 else p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def tokens(batch=3, pos=16, d_vocab=37, seed=1) -> torch.Tensor:
    return torch.randint(0, d_vocab, (batch, pos), generator=torch.Generator().manual_seed(seed))


# -- pieces against torch -----------------------------------------------------------------


def test_layernorm_matches_nn_layernorm_with_eps_inside_the_sqrt():
    cfg = GPTConfig(d_vocab=5, d_model=8, n_heads=2, layer_norm_eps=1e-2)  # a large eps makes its placement visible
    ours = LayerNorm(cfg).double()
    ref = torch.nn.LayerNorm(8, eps=1e-2).double()
    with torch.no_grad():
        ours.w.normal_(), ours.b.normal_()
        ref.weight.copy_(ours.w), ref.bias.copy_(ours.b)
    x = torch.randn(2, 5, 8, dtype=torch.float64) * 0.1
    assert_close(ours.from_scratch(x), ref(x), FLOAT64, name="LayerNorm vs nn.LayerNorm")
    # The common mistake, eps outside the square root, is far outside this tolerance here.
    centred = x - x.mean(-1, keepdim=True)
    wrong = centred / (centred.pow(2).mean(-1, keepdim=True).sqrt() + 1e-2) * ours.w + ours.b
    assert (ours.from_scratch(x) - wrong).abs().max() > 1e-3


def test_layernorm_fused_and_hooked_paths_agree():
    """Unhooked, LayerNorm calls torch's fused kernel; hooked, it computes each step. The two must agree."""
    cfg = GPTConfig(d_vocab=5, d_model=8, n_heads=2)
    ln = LayerNorm(cfg).double()
    with torch.no_grad():
        ln.w.normal_(), ln.b.normal_()
    x = torch.randn(3, 4, 8, dtype=torch.float64) * 5 + 2
    fused = ln(x)
    handle = ln.hook_scale.add_hook(lambda act, hook: None)
    hooked = ln(x)
    handle.remove()
    assert_close(hooked, ln.from_scratch(x), EXACT, name="LayerNorm with a hook attached is the from-scratch path")
    assert_close(fused, ln.from_scratch(x), FLOAT64, name="LayerNorm: fused vs from scratch")
    assert ln.hook_scale.n_hooks == 0



def test_attention_fused_and_hooked_paths_agree_with_and_without_a_cache():
    """Unhooked, attention calls torch's fused scaled_dot_product_attention; with a hook on the scores or
    the pattern it computes each step (`Attention.from_scratch`). Outputs, cached keys and gradients agree."""
    torch.manual_seed(0)
    attn = Attention(GPTConfig(d_vocab=5, d_model=16, n_heads=4, n_ctx=12)).double()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0.0, 0.5)
    x = torch.randn(2, 12, 16, dtype=torch.float64, requires_grad=True)

    def run(hooked: bool, x, past=None):
        handle = attn.hook_pattern.add_hook(lambda act, hook: None) if hooked else None
        try:
            return attn(x, past)
        finally:
            if handle is not None:
                handle.remove()

    for hooked in (False, True):
        out, kv = run(hooked, x)
        (out ** 2).sum().backward()
        grads = [x.grad.clone(), attn.W_Q.grad.clone()]
        x.grad = None
        attn.zero_grad()
        # Continue a cached sequence by several queries (an explicit mask) and by one (no mask).
        with torch.no_grad():
            _, past = run(hooked, x[:, :5])
            several, past = run(hooked, x[:, 5:11], past)
            one, _ = run(hooked, x[:, 11:], past)
        if hooked:
            assert_close(out, ref_out, FLOAT64, name="attention output: fused vs from scratch")
            assert_close(kv[0], ref_kv[0], EXACT, name="keys are the same with either path")
            assert_close(torch.cat([several, one], 1), ref_tail, FLOAT64, name="cached continuation: fused vs from scratch")
            assert_close(torch.cat([several, one], 1), out[:, 5:], FLOAT64, name="cached vs uncached, from scratch")
            for g, ref_g, name in zip(grads, ref_grads, ("x", "W_Q")):
                assert_close(g, ref_g, FLOAT64, name=f"gradient of {name}: fused vs from scratch")
        else:
            ref_out, ref_kv, ref_grads, ref_tail = out.detach(), kv, grads, torch.cat([several, one], 1)
            assert_close(ref_tail, out[:, 5:].detach(), FLOAT64, name="cached vs uncached, fused")
    assert attn.hook_pattern.n_hooks == 0

def test_gelu_new_matches_torch_tanh_gelu():
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    assert_close(gelu_new(x), F.gelu(x, approximate="tanh"), FLOAT64)


def test_attention_matches_nn_multihead_attention_with_copied_weights():
    cfg = GPTConfig(d_vocab=5, d_model=24, n_heads=3, n_ctx=10)
    torch.manual_seed(0)
    ours = Attention(cfg).double()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.3)
    ref = torch.nn.MultiheadAttention(24, 3, batch_first=True, dtype=torch.float64)
    flat = lambda W: W.permute(0, 2, 1).reshape(-1, 24)  # (h, d, e) -> (h*e, d), nn.Linear layout
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([flat(ours.W_Q), flat(ours.W_K), flat(ours.W_V)]))
        ref.in_proj_bias.copy_(torch.cat([ours.b_Q.flatten(), ours.b_K.flatten(), ours.b_V.flatten()]))
        ref.out_proj.weight.copy_(ours.W_O.reshape(-1, 24).T)
        ref.out_proj.bias.copy_(ours.b_O)
    x = torch.randn(2, 10, 24, dtype=torch.float64)
    mask = torch.ones(10, 10, dtype=torch.bool).triu(1)
    expected, expected_pattern = ref(x, x, x, attn_mask=mask, average_attn_weights=False)
    out, _ = ours(x)
    assert_close(out, expected, FLOAT64, name="attention output vs nn.MultiheadAttention")
    _, cache = _cache_attention(ours, x)
    assert_close(cache["pattern"], expected_pattern, FLOAT64, name="attention pattern")
    future = cache["pattern"].masked_select(mask)
    assert_close(future, torch.zeros_like(future), EXACT, name="weight on future positions")


def _cache_attention(attn: Attention, x: torch.Tensor):
    store = {}
    handles = [hp.register_forward_hook(lambda m, i, o, n=n: store.__setitem__(n, o)) for n, hp in
               (("pattern", attn.hook_pattern), ("scores", attn.hook_attn_scores))]
    out = attn(x)
    for h in handles:
        h.remove()
    return out, store


def test_attention_and_layernorm_gradients_pass_finite_differences():
    cfg = GPTConfig(d_vocab=5, d_model=8, n_heads=2, n_ctx=4)
    torch.manual_seed(0)
    attn, ln = Attention(cfg).double(), LayerNorm(cfg).double()
    x = torch.randn(1, 4, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: attn(v)[0], (x,), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradcheck(ln.from_scratch, (x,), eps=1e-6, atol=1e-8)


def test_parameter_count_formula():
    for kw in ({}, {"d_head": 5, "d_mlp": 70, "n_layers": 3}, {"n_heads": 1}, {"attn_only": True}):
        model = small_model(**kw)
        assert sum(p.numel() for p in model.parameters()) == model.cfg.n_params


# -- TransformerLens -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype,tol", [(torch.float32, FLOAT32_MODEL), (torch.float64, FLOAT64)])
@pytest.mark.parametrize("act_fn", ["gelu_new", "relu"])
def test_logits_equal_transformer_lens_with_the_same_weights(dtype, tol, act_fn):
    model = small_model(dtype, act_fn=act_fn)
    bridge = to_transformer_lens(model)
    t = tokens()
    with torch.no_grad():
        assert_close(model(t), bridge(t), tol, name=f"logits vs TransformerLens ({dtype}, {act_fn})")


def test_attention_only_model_matches_transformer_lens_and_has_no_mlp():
    model = small_model(torch.float64, attn_only=True)
    assert not any("mlp" in name or "ln2" in name for name, _ in model.named_parameters())
    assert not any("resid_mid" in name or "mlp" in name for name in model.hook_dict)
    bridge = to_transformer_lens(model)
    assert bridge.cfg.attn_only
    t = tokens()
    with torch.no_grad():
        assert_close(model(t), bridge(t), FLOAT64, name="attention-only logits vs TransformerLens")
    back = from_transformer_lens(bridge)
    assert back.cfg.attn_only
    for name, p in model.state_dict().items():
        assert_close(back.state_dict()[name], p, EXACT, name=name)
    _, ours = model.run_with_cache(t)
    _, theirs = bridge.run_with_cache(t)
    for name in ("blocks.1.hook_resid_pre", "blocks.1.attn.hook_z", "blocks.1.hook_resid_post", "ln_final.hook_scale"):
        assert_close(ours[name], theirs[name], FLOAT64, name=name)
    with pytest.raises((ValueError, TypeError), match="attn_only"):  # beartype may refuse it first
        GPTConfig(d_vocab=5, attn_only="yes")


def test_weights_round_trip_exactly_both_ways():
    model = small_model(torch.float32)
    back = from_transformer_lens(to_transformer_lens(model))
    for name, p in model.state_dict().items():
        assert_close(back.state_dict()[name], p, EXACT, name=name)
    bridge = to_transformer_lens(small_model(torch.float32, seed=3))
    tl_state = bridge.state_dict()
    again = state_dict_to_tl(from_transformer_lens(bridge))
    assert set(again) == set(tl_state)
    for name in tl_state:
        assert_close(again[name], tl_state[name], EXACT, name=name)
    # Our reshapes agree with TransformerLens's own analysis-shaped views.
    a = bridge.blocks[1].attn
    ours = from_transformer_lens(bridge).blocks[1].attn
    for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_O"):
        assert_close(getattr(ours, name), getattr(a, name), EXACT, name=f"{name} vs the bridge's {name}")


def test_cache_equals_transformer_lens_cache():
    model = small_model(torch.float64)
    bridge = to_transformer_lens(model)
    t = tokens(pos=9)
    _, ours = model.run_with_cache(t)
    _, theirs = bridge.run_with_cache(t)
    missing = set(ours) - set(theirs)
    assert not missing, f"hook names TransformerLens does not have: {sorted(missing)}"
    for name in ours:
        if name.endswith("hook_attn_scores"):
            continue  # TransformerLens 4.3's bridge stores the pattern under this name; checked below by hand
        assert_close(ours[name], theirs[name], FLOAT64, name=name)
    causal = torch.ones(9, 9, dtype=torch.bool).tril()
    for layer in range(model.cfg.n_layers):
        name = f"blocks.{layer}.attn.hook_attn_scores"
        scores = ours[name]
        # Their pre-softmax scores are not cached, so rebuild them from *their* cached queries and keys.
        q, k = theirs[f"blocks.{layer}.attn.hook_q"], theirs[f"blocks.{layer}.attn.hook_k"]
        their_scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / model.cfg.d_head**0.5
        assert_close(scores[..., causal], their_scores[..., causal], FLOAT64, name=f"{name}, unmasked entries")
        assert torch.all(scores[..., ~causal] == float("-inf")), f"{name}: every future entry should be -inf"
        # The bridge's "hook_attn_scores" is the softmax of the scores, i.e. the pattern. If this fails,
        # TransformerLens changed its convention and the skip above can go.
        assert_close(theirs[name], scores.softmax(-1), FLOAT64,
                     name=f"TransformerLens's {name} vs the softmax of ours (the bridge caches the pattern there)")


# -- hooks ---------------------------------------------------------------------------------


def test_cache_equals_a_manual_forward():
    model = small_model(torch.float64)
    t = tokens(pos=7)
    _, cache = model.run_with_cache(t)
    b0 = model.blocks[0]
    resid = model.embed.W_E[t] + model.pos_embed.W_pos[:7]
    assert_close(cache["blocks.0.hook_resid_pre"], resid, EXACT, name="resid_pre 0")
    x = F.layer_norm(resid, (32,), b0.ln1.w, b0.ln1.b, eps=1e-5)
    q = torch.einsum("bpd,hde->bphe", x, b0.attn.W_Q) + b0.attn.b_Q
    k = torch.einsum("bpd,hde->bphe", x, b0.attn.W_K) + b0.attn.b_K
    v = torch.einsum("bpd,hde->bphe", x, b0.attn.W_V) + b0.attn.b_V
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / 8**0.5
    scores = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf"))
    pattern = scores.softmax(-1)
    z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
    attn_out = torch.einsum("bqhe,hed->bqd", z, b0.attn.W_O) + b0.attn.b_O
    mid = resid + attn_out
    x2 = F.layer_norm(mid, (32,), b0.ln2.w, b0.ln2.b, eps=1e-5)
    post = mid + F.gelu(x2 @ b0.mlp.W_in + b0.mlp.b_in, approximate="tanh") @ b0.mlp.W_out + b0.mlp.b_out
    for name, expected in (("blocks.0.attn.hook_q", q), ("blocks.0.attn.hook_attn_scores", scores),
                           ("blocks.0.attn.hook_pattern", pattern), ("blocks.0.attn.hook_z", z),
                           ("blocks.0.hook_resid_mid", mid), ("blocks.0.hook_resid_post", post)):
        assert_close(cache[name], expected, FLOAT64, name=name)
    assert cache["pattern", 0] is cache["blocks.0.attn.hook_pattern"], "shorthand lookup"


def test_run_with_hooks_intervenes_and_removes_its_hooks():
    model = small_model(torch.float64)
    t = tokens(pos=8)
    clean = model(t)

    def ablate_head_1(z, hook):
        z = z.clone()
        z[:, :, 1] = 0.0
        return z

    ablated = model.run_with_hooks(t, fwd_hooks=[("blocks.0.attn.hook_z", ablate_head_1)])
    # The same ablation by editing weights: head 1 writes nothing if its rows of W_O are zero.
    edited = small_model(torch.float64)
    with torch.no_grad():
        edited.blocks[0].attn.W_O[1] = 0.0
    assert_close(ablated, edited(t), FLOAT64, name="hook ablation vs weight edit")
    assert (ablated - clean).abs().max() > 1e-3, "the ablation should change the logits"
    assert all(hp.n_hooks == 0 for hp in model.hook_dict.values())
    assert_close(model(t), clean, EXACT, name="logits after the hooks are gone")


def test_hooks_are_removed_when_the_hook_raises():
    model = small_model(torch.float64)

    def broken(act, hook):
        raise RuntimeError("experiment bug")

    with pytest.raises(RuntimeError, match="experiment bug"):
        model.run_with_hooks(tokens(), fwd_hooks=[(lambda name: name.endswith("hook_resid_post"), broken)])
    assert all(hp.n_hooks == 0 for hp in model.hook_dict.values())
    with pytest.raises(RuntimeError):
        with model.hooks([("hook_embed", lambda a, h: None)]):
            raise RuntimeError("raised inside the block")
    assert model.hook_dict["hook_embed"].n_hooks == 0


def test_unknown_hook_name_is_a_clear_error():
    model = small_model()
    with pytest.raises(KeyError, match="no hook point named 'blocks.0.attn.hook_patern'"):
        model.run_with_cache(tokens(), names_filter="blocks.0.attn.hook_patern")


# -- KV cache ------------------------------------------------------------------------------


def test_kv_cache_logits_equal_the_uncached_forward():
    model = small_model(torch.float64)
    t = tokens(pos=16)
    full = model(t)
    cache = KVCache(model.cfg.n_layers)
    pieces = [model(t[:, :5], cache=cache)] + [model(t[:, i : i + 1], cache=cache) for i in range(5, 16)]
    assert_close(torch.cat(pieces, dim=1), full, FLOAT64, name="cached vs uncached logits")
    assert cache.n_pos == 16
    with pytest.raises(ValueError, match="longer than n_ctx=16"):
        model(t[:, :1], cache=cache)
    with pytest.raises(ValueError, match="batch of 3"):
        model(t[:1, :1], cache=_filled_cache(model, batch=3))


def test_reused_fused_qkv_gives_the_same_logits_and_never_a_stale_or_gradient_free_weight():
    """Generation builds each layer's fused QKV weight once (`GPT.reuse_fused_qkv`); that must change nothing."""
    model = small_model(torch.float64)
    t = tokens(pos=6)
    plain = model(t)
    with torch.no_grad(), model.reuse_fused_qkv():
        assert_close(model(t), plain, EXACT, name="logits with the fused weight reused")
        # An in-place edit of a weight (here through load_state_dict's copy_) must not leave a stale matrix.
        edited = {k: v * 1.5 if k.endswith("attn.W_V") else v for k, v in model.state_dict().items()}
        model.load_state_dict(edited)
        inside = model(t)
    assert model.blocks[0].attn._frozen_qkv is None, "the fused weight outlived its block"
    assert_close(inside, model(t), EXACT, name="logits after editing W_V inside the block")
    assert (inside - plain).abs().max() > 1e-3, "the edit should have changed the logits"
    # With gradients on, the block must not hand out a detached weight: W_Q still gets its gradient.
    with model.reuse_fused_qkv():
        model(t).sum().backward()
    inside_grad = model.blocks[0].attn.W_Q.grad.clone()
    model.zero_grad()
    model(t).sum().backward()
    assert_close(inside_grad, model.blocks[0].attn.W_Q.grad, EXACT, name="W_Q gradient inside the block")
    with pytest.raises(RuntimeError, match="boom"), model.reuse_fused_qkv():
        raise RuntimeError("boom")
    assert all(b.attn._frozen_qkv is None for b in model.blocks), "an exception left a fused weight behind"


def _filled_cache(model, batch):
    cache = KVCache(model.cfg.n_layers)
    model(tokens(batch=batch, pos=2), cache=cache)
    return cache


# -- bad input -----------------------------------------------------------------------------


def test_bad_tokens_raise_clear_errors():
    model = small_model()
    forward = lambda t: unchecked(GPT.forward)(model, t)
    with pytest.raises(ValueError, match=r"token id 37 is out of range: ids should lie in \[0, d_vocab=37\)"):
        forward(torch.tensor([[1, 37]]))
    with pytest.raises(ValueError, match="token id -1"):
        forward(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match="length 17 is longer than n_ctx=16"):
        forward(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(TypeError, match="integer tensor"):
        forward(torch.zeros(1, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        forward([[1, 2]])
    with pytest.raises(ValueError, match="d_model=30 is not divisible by n_heads=4"):
        GPTConfig(d_vocab=5, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="act_fn"):
        GPTConfig(d_vocab=5, act_fn="swish")


def test_checkpoint_save_load_round_trip(tmp_path):
    model = small_model(torch.float32)
    model.save(tmp_path / "m.pt")
    again = GPT.load(tmp_path / "m.pt")
    assert again.cfg == model.cfg
    assert_close(again(tokens()), model(tokens()), EXACT)


def test_causal_mask_refuses_more_queries_than_keys():
    with pytest.raises(ValueError, match="more queries \\(5\\) than keys \\(3\\)"):
        unchecked(Attention.apply_causal_mask)(torch.zeros(1, 1, 5, 3))
