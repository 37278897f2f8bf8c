"""Tests for mechlearn.sae.dashboard: top contexts, histogram, logit effects, the HTML.

References: a plain Python loop over every position for the top contexts (EXACT), numpy's
histogram on the same edges (EXACT), an explicit einsum and the logit change of a model whose final
LayerNorm is the identity for the raw logit effects, TransformerLens's own LayerNorm folding
(``process_weights``) and a directional derivative through the real LayerNorm for the folded ones,
and the HTML parsed back for escaping and highlight intensity.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interp_models import SMALL_VOCAB, small_gpt, small_tokens

from mechlearn.gpt.tokenizer import CharTokenizer
from mechlearn.interp.core import run_with_hooks
from mechlearn.sae import dashboard as db
from mechlearn.sae.dashboard import (
    activation_histogram,
    latent_dashboard,
    latent_logit_effects,
    latent_statistics,
    sae_acts_post,
    top_activating_contexts,
)
from mechlearn.sae.standard import StandardSAE
from mechlearn.testing import EXACT, FLOAT32, FLOAT64, assert_close

HOOK = "blocks.1.hook_resid_pre"
CHARS = "<&>\" \n\tabcdefghijklmnop"  # 23 characters, the escaping-sensitive ones first
assert len(set(CHARS)) == SMALL_VOCAB
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer(CHARS)


@pytest.fixture(scope="module")
def model():
    return small_gpt(attn_only=False)


@pytest.fixture(scope="module")
def sae(model):
    sae = StandardSAE(model.cfg.d_model, 40, l1_coefficient=1.0, generator=torch.Generator().manual_seed(3)).double()
    with torch.no_grad():
        sae.W_enc.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(4))
        sae.b_enc.fill_(-0.5)
        sae.b_dec.normal_(0.0, 0.2, generator=torch.Generator().manual_seed(5))
    return sae


def _brute_force_top(a: torch.Tensor, k: int, left: int, right: int, no_overlap: bool,
                     min_pos: int = 0) -> list[tuple[int, int]]:
    """Every position, sorted by (activation descending, flat index), taken greedily."""
    batch, n_pos = a.shape
    cells = [(float(a[b, p]), b * n_pos + p, b, p) for b in range(batch) for p in range(n_pos)]
    cells.sort(key=lambda c: (-c[0], c[1]))
    out: list[tuple[int, int]] = []
    for act, _, b, p in cells:
        if act <= 0 or len(out) == k:
            break
        if p < min_pos:
            continue
        if no_overlap and any(b == ob and abs(p - op) <= left + right for ob, op in out):
            continue
        out.append((b, p))
    return out


# -- what the latent reads --------------------------------------------------------------------------

def test_sae_acts_post_is_encode_of_the_cached_stream_as_in_transformer_lens(model, sae):
    from mechlearn.gpt.interop import to_transformer_lens

    tokens = small_tokens(3, 10)
    _, cache = to_transformer_lens(model).run_with_cache(tokens)
    assert_close(sae_acts_post(model, sae, tokens, HOOK), sae.encode(cache[HOOK]), FLOAT64,
                 name="latents vs encode(TransformerLens's cached stream)")


@pytest.mark.parametrize("k,left,right,no_overlap,min_pos", [
    (1, 0, 0, False, 0), (7, 3, 2, False, 0), (7, 3, 2, True, 0), (50, 2, 5, True, 0), (200, 0, 0, False, 0),
    (9, 3, 1, True, 4), (200, 0, 0, False, 10)])
def test_top_contexts_match_a_brute_force_loop(tokenizer, k, left, right, no_overlap, min_pos):
    g = torch.Generator().manual_seed(k + left)
    acts = torch.relu(torch.randn(5, 11, 3, generator=g, dtype=torch.float64)).round(decimals=1)  # ties, zeros
    tokens = torch.randint(0, SMALL_VOCAB, (5, 11), generator=g)
    contexts = top_activating_contexts(tokens, acts, 1, tokenizer, k=k, left=left, right=right,
                                       no_overlap=no_overlap, min_pos=min_pos)
    expected = _brute_force_top(acts[..., 1], k, left, right, no_overlap, min_pos)
    assert (len(expected) > 0) and all(p >= min_pos for _, p in expected)
    assert [(c.batch, c.pos) for c in contexts] == expected
    for c in contexts:
        start, stop = max(0, c.pos - left), min(11, c.pos + right + 1)
        assert (c.start, c.token_ids, c.acts) == (start, tokens[c.batch, start:stop].tolist(),
                                                  acts[c.batch, start:stop, 1].tolist())
        assert c.text == [CHARS_SORTED[i] for i in c.token_ids] and c.acts[c.peak] == c.activation
    assert_close([c.activation for c in contexts], [float(acts[b, p, 1]) for b, p in expected], EXACT,
                 name="peak activations")


CHARS_SORTED = sorted(CHARS)


def test_top_contexts_skip_silent_latents_and_overlaps(tokenizer):
    acts = torch.zeros(2, 10, 1, dtype=torch.float64)
    acts[0, 4, 0], acts[0, 5, 0], acts[1, 9, 0] = 3.0, 2.0, 1.0
    tokens = torch.zeros(2, 10, dtype=torch.long)
    got = top_activating_contexts(tokens, acts, 0, tokenizer, k=5, left=1, right=0)
    assert [(c.batch, c.pos) for c in got] == [(0, 4), (1, 9)]  # (0, 5) shares a token; zeros never count
    got = top_activating_contexts(tokens, acts, 0, tokenizer, k=5, left=1, right=0, no_overlap=False)
    assert [(c.batch, c.pos) for c in got] == [(0, 4), (0, 5), (1, 9)]
    assert top_activating_contexts(tokens, torch.zeros_like(acts), 0, tokenizer) == []


def test_histogram_matches_numpy(model, sae):
    acts = sae_acts_post(model, sae, small_tokens(4, 12), HOOK)
    for latent in range(sae.d_sae):
        values = acts[..., latent].reshape(-1).numpy()
        hist = activation_histogram(acts, latent, bins=7)
        positive = values[values > 0]
        if positive.size == 0:
            assert hist.counts.sum() == 0 and hist.frequency == 0.0
            continue
        counts, _ = np.histogram(positive, bins=hist.edges.numpy())
        assert_close(hist.counts, counts, EXACT, name=f"latent {latent} counts vs numpy.histogram")
        assert_close(hist.edges, np.linspace(0, positive.max(), 8), FLOAT64, name="edges vs numpy.linspace")
        assert hist.frequency == positive.size / values.size and hist.n_tokens == values.size
    fires = [latent for latent in range(sae.d_sae) if (acts[..., latent] > 0).any()]
    assert 3 <= len(fires) < sae.d_sae, "the fixture SAE should have firing and silent latents"


def test_latent_statistics_match_a_loop(model, sae):
    acts = sae_acts_post(model, sae, small_tokens(4, 12), HOOK)
    stats = latent_statistics(acts)
    flat = acts.reshape(-1, sae.d_sae).numpy()
    for i in range(sae.d_sae):
        on = flat[:, i][flat[:, i] > 0]
        assert_close(stats.frequency[i], on.size / flat.shape[0], FLOAT64, name="frequency")
        assert_close(stats.mean_activation[i], on.mean() if on.size else 0.0, FLOAT64, name="mean when firing")
        assert_close(stats.max_activation[i], flat[:, i].max(), EXACT, name="max")


# -- what the latent writes ---------------------------------------------------------------------------

def test_raw_logit_effects_are_the_decoder_row_through_the_unembedding(model, sae, tokenizer):
    for latent in (0, 17, 39):
        eff = latent_logit_effects(model, sae, latent, tokenizer, k=5, fold_ln=False)
        explicit = torch.einsum("d,dv->v", sae.W_dec[latent], model.unembed.W_U)
        assert_close(eff.effects, explicit, FLOAT64, name="W_dec[latent] @ W_U, explicit einsum")
        order = sorted(range(SMALL_VOCAB), key=lambda v: -float(explicit[v].detach()))
        assert eff.top_ids == order[:5] and eff.bottom_ids == order[::-1][:5]
        assert eff.top_tokens == [CHARS_SORTED[i] for i in order[:5]]


def test_raw_logit_effects_are_the_logit_change_of_a_model_without_final_layernorm(model, sae, tokenizer):
    """With ln_final the identity, adding d to the stream before the unembedding adds d W_U to the logits."""
    plain = copy.deepcopy(model)
    with torch.no_grad():
        plain.ln_final.w.fill_(1.0)
        plain.ln_final.b.zero_()
    tokens, latent = small_tokens(2, 6), 11
    d = sae.W_dec[latent].detach()
    # the hook on the normalised stream puts back the un-normalised one (so no LayerNorm), plus d
    resid = {}
    keep = lambda x, hook: resid.setdefault("x", x)  # noqa: E731
    run_with_hooks(plain, tokens, [("blocks.1.hook_resid_post", keep)])
    base = run_with_hooks(plain, tokens, [("ln_final.hook_normalized", lambda x, hook: resid["x"])])
    moved = run_with_hooks(plain, tokens, [("ln_final.hook_normalized", lambda x, hook: resid["x"] + d)])
    eff = latent_logit_effects(plain, sae, latent, tokenizer, fold_ln=False).effects
    assert_close(moved - base, eff.expand_as(moved), FLOAT64, name="logit change without final LN")
    assert_close(base, resid["x"] @ plain.unembed.W_U + plain.unembed.b_U, FLOAT64, name="the hook removes the LN")


def test_folded_logit_effects_match_transformer_lens_fold_ln(model, sae, tokenizer):
    """ARENA's W_dec @ W_U on a TransformerLens model with the LayerNorm folded and the unembedding centred."""
    from mechlearn.gpt.interop import to_transformer_lens

    bridge = to_transformer_lens(model)
    bridge.process_weights(fold_ln=True, center_writing_weights=True, center_unembed=True)
    for latent in (0, 17, 39):
        ours = latent_logit_effects(model, sae, latent, tokenizer, fold_ln=True).effects
        # TransformerLens's weight processing works partly in float32, hence the tolerance
        assert_close(ours, sae.W_dec[latent].detach() @ bridge.W_U.detach(), FLOAT32, name="vs TL fold_ln")
        raw = latent_logit_effects(model, sae, latent, tokenizer, fold_ln=False).effects
        assert not torch.allclose(raw - raw.mean(), ours, atol=1e-3), "the LayerNorm weight should matter here"


def test_folded_logit_effects_are_the_logit_derivative_times_the_scale(model, sae, tokenizer):
    """Through the real final LayerNorm, where the stream is orthogonal to the centred direction."""
    latent = 23
    d = sae.W_dec[latent].detach()
    dc = d - d.mean()
    x = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x = x - (x - x.mean()) @ dc / (dc @ dc) * dc  # centred x ⟂ centred d: the scale's own change vanishes
    sigma = ((x - x.mean()).pow(2).mean() + model.cfg.layer_norm_eps).sqrt()
    with torch.no_grad():
        _, jvp = torch.func.jvp(lambda r: model.unembed(model.ln_final(r)), (x,), (d,))
    expected = jvp * sigma
    eff = latent_logit_effects(model, sae, latent, tokenizer, fold_ln=True).effects
    assert_close(eff, expected - expected.mean(), FLOAT64, name="σ · ∂logits/∂x · d, centred over the vocabulary")


# -- HTML -----------------------------------------------------------------------------------------------

def test_dashboard_html_escapes_text_and_shows_whitespace(model, sae, tokenizer):
    text = "a<b&c>d \"e\n\tf<<&&>>"
    ids = torch.tensor([tokenizer.encode(text)])
    acts = torch.zeros(1, len(text), sae.d_sae, dtype=torch.float64)
    acts[0, :, 2] = torch.linspace(0.1, 2.0, len(text), dtype=torch.float64)
    dash = latent_dashboard(model, sae, 2, ids, acts, tokenizer, k=1, left=30, right=0, title="<script>x</script>")
    page = dash._repr_html_()
    body = page.split("</style>", 1)[1]
    code = re.search(r"<code>(.*?)</code>", body.split('class="mlsae-ctxs"', 1)[1]).group(1)
    visible = re.sub(r"<[^>]+>", "", code)  # the text between the tags, still escaped
    assert visible == "a&lt;b&amp;c&gt;d·&quot;e↵⇥f&lt;&lt;&amp;&amp;&gt;&gt;"
    assert "<script>" not in body and "&lt;script&gt;x&lt;/script&gt;" in body
    assert page.count("<span") == page.count("</span>") and page.count("<div") == page.count("</div>")


def test_highlight_intensity_grows_with_the_activation(model, sae, tokenizer):
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, SMALL_VOCAB, (3, 12), generator=g)
    acts = torch.zeros(3, 12, sae.d_sae, dtype=torch.float64)
    acts[..., 5] = torch.relu(torch.randn(3, 12, generator=g, dtype=torch.float64))
    page = latent_dashboard(model, sae, 5, tokens, acts, tokenizer, k=3, left=11, right=11).html
    pairs = [(float(a), float(al)) for al, a in
             re.findall(r'background:rgba\(\d+,\d+,\d+,([\d.]+)\)" title="[^"]*" data-act="([^"]+)"', page)]
    assert len(pairs) >= 10
    pairs.sort()
    top = pairs[-1][0]
    for (a0, al0), (a1, al1) in zip(pairs, pairs[1:]):  # opacity is printed to 3 decimals: near-ties may tie
        assert al1 >= al0, f"alpha not monotone: {a0} -> {al0}, {a1} -> {al1}"
        assert a1 - a0 < 0.01 * top or al1 > al0, f"alpha should grow: {a0} -> {al0}, {a1} -> {al1}"
    assert all(al == 0 for a, al in pairs if a <= 0) or all(a > 0 for a, _ in pairs)
    n_firing = sum(1 for c in latent_dashboard(model, sae, 5, tokens, acts, tokenizer, k=3, left=11,
                                              right=11).contexts for a in c.acts if a > 0)
    assert len(pairs) == n_firing, "every firing character, and only those, is highlighted"


def test_dashboard_of_a_real_sae_has_every_panel(model, sae, tokenizer):
    tokens = small_tokens(4, 12)
    acts = sae_acts_post(model, sae, tokens, HOOK)
    latent = int(latent_statistics(acts).frequency.argmax())
    dash = latent_dashboard(model, sae, latent, tokens, acts, tokenizer, k=4, n_logits=3)
    assert dash.latent == latent and 1 <= len(dash.contexts) <= 4
    for part in ("<svg", "boosts", "suppresses", f"Latent {latent}", "mlsae-ctx"):
        assert part in dash.html
    silent = int(latent_statistics(acts).frequency.argmin())
    if latent_statistics(acts).frequency[silent] == 0:
        assert "never fires" in latent_dashboard(model, sae, silent, tokens, acts, tokenizer).html


def test_header_max_is_over_every_position_like_the_histogram(model, sae, tokenizer):
    tokens = small_tokens(2, 12)
    acts = torch.zeros(2, 12, sae.d_sae)
    acts[0, 1, 3], acts[1, 9, 3] = 5.0, 2.0  # the largest peak sits before min_pos
    dash = latent_dashboard(model, sae, 3, tokens, acts, tokenizer, k=2, left=3, right=0, min_pos=4)
    assert [(c.batch, c.pos) for c in dash.contexts] == [(1, 9)]
    assert "max 5.00" in dash.html and "max 2.00" not in dash.html


# -- errors ---------------------------------------------------------------------------------------------

def test_clear_errors(model, sae, tokenizer):
    tokens = small_tokens(2, 6)
    acts = sae_acts_post(model, sae, tokens, HOOK)
    with pytest.raises(ValueError, match=r"latent = 40 is out of range"):
        top_activating_contexts(tokens, acts, 40, tokenizer)
    with pytest.raises(ValueError, match=r"latent = -1 is out of range"):
        unchecked(latent_logit_effects)(model, sae, -1, tokenizer)
    with pytest.raises(ValueError, match=r"k = 0 is out of range"):
        top_activating_contexts(tokens, acts, 0, tokenizer, k=0)
    with pytest.raises(ValueError, match=r"k = 24 is out of range"):
        latent_logit_effects(model, sae, 0, tokenizer, k=24)
    with pytest.raises(ValueError, match=r"tokenizer has 5 tokens but the model's d_vocab is 23"):
        latent_logit_effects(model, sae, 0, CharTokenizer("abcde"))
    wide = StandardSAE(32, 8, l1_coefficient=1.0).double()
    with pytest.raises(ValueError, match=r"d_in = 32 .* d_model = 16"):
        latent_logit_effects(model, wide, 0, tokenizer)
    with pytest.raises(ValueError, match=r"d_in = 32 .* d_model = 16"):
        sae_acts_post(model, wide, tokens, HOOK)
    with pytest.raises(KeyError):
        sae_acts_post(model, sae, tokens, "blocks.9.hook_resid_pre")
    with pytest.raises(ValueError, match=r"should have the \(batch, pos\) of tokens"):
        unchecked(top_activating_contexts)(tokens[:, :3], acts, 0, tokenizer)
    with pytest.raises(ValueError, match=r"40 latents but the SAE has d_sae = 8"):
        unchecked(latent_dashboard)(model, StandardSAE(16, 8, l1_coefficient=1.0).double(), 0, tokens, acts,
                                    tokenizer)
    with pytest.raises(ValueError, match="finite"):
        top_activating_contexts(tokens, acts * torch.nan, 0, tokenizer)
    with pytest.raises(TypeError, match="should be an int"):
        unchecked(top_activating_contexts)(tokens, acts, True, tokenizer)
    with pytest.raises(ValueError, match=r"bins = 0 is out of range"):
        activation_histogram(acts, 0, bins=0)


INFORMATIVE = re.compile(r"should|expect|out of range|must|got", re.IGNORECASE)


@FUZZ
@given(latent=st.integers(-3, 45), k=st.integers(-2, 30), left=st.integers(-2, 6), right=st.integers(-2, 6),
       min_pos=st.integers(-1, 5),
       batch=st.integers(0, 3), pos=st.integers(0, 7), d_sae=st.integers(1, 5), bad=st.sampled_from(
           ["none", "nan", "int", "1d"]))
def test_fuzz_top_contexts_and_histogram(latent, k, left, right, min_pos, batch, pos, d_sae, bad):
    tok = CharTokenizer(CHARS)
    g = torch.Generator().manual_seed(batch * 100 + pos * 10 + d_sae)
    tokens = torch.randint(0, SMALL_VOCAB, (batch, pos), generator=g)
    acts = torch.relu(torch.randn(batch, pos, d_sae, generator=g, dtype=torch.float64))
    if bad == "nan" and acts.numel():
        acts[0, 0, 0] = torch.nan
    elif bad == "int":
        acts = acts.long()
    elif bad == "1d":
        acts = acts.reshape(-1)
    for fn, args in ((top_activating_contexts, (tokens, acts, latent, tok, k, left, right, True, min_pos)),
                     (activation_histogram, (acts, latent, k))):
        try:
            out = unchecked(fn)(*args)
        except (ValueError, TypeError) as err:
            assert INFORMATIVE.search(str(err)), f"{fn.__name__}: uninformative error {err!r}"
            continue
        assert bad == "none" or (bad == "nan" and acts.numel() == 0)
        assert 0 <= latent < d_sae and k >= 1
        if fn is top_activating_contexts:
            assert left >= 0 and right >= 0 and min_pos >= 0 and len(out) <= k
            assert [(c.batch, c.pos) for c in out] == _brute_force_top(acts[..., latent], k, left, right, True,
                                                                       min_pos)
        else:
            assert int(out.counts.sum()) == int((acts[..., latent] > 0).sum())


def test_module_exports_are_documented():
    for name in db.__all__:
        obj = getattr(db, name)
        assert name.isupper() or (obj.__doc__ or "").strip(), f"{name} needs a docstring"
