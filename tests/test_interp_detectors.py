"""mechlearn.interp.detectors against closed forms and TransformerLens's head detector.

References:

* closed forms on hand-set models: heads whose attention is (to float64 precision) exactly the
  sub-diagonal, the diagonal or the first column score 1 on their own detector and 0 on the others;
  a head with zero queries attends uniformly, ``A[q, k] = 1 / (q + 1)``, so every score is a known
  mean of ``1 / (q + 1)``;
* TransformerLens's ``head_detector.detect_head`` (``error_measure="mul"``) on the bridge with the same
  weights: it divides by every query row, so it equals ours times ``(n - 1) / n`` (previous token) and
  ``h / n`` (induction, on repeated sequences with distinct tokens in each half);
* our GPT and the bridge give the same tables (FLOAT64).
"""

from __future__ import annotations

import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.gpt import GPT, GPTConfig
from mechlearn.gpt.interop import to_transformer_lens
from mechlearn.interp.detectors import (
    attention_patterns, current_token_scores, first_token_scores, heads_above, induction_scores,
    previous_token_scores, repeat_length,
)
from mechlearn.testing import EXACT, FLOAT64, Tolerance, assert_close

head_detector = pytest.importorskip("transformer_lens.head_detector")

SHARP = Tolerance("SHARP", 1e-9, 1e-9)
"""Planted heads put all but ~exp(-60) of their attention on the intended key."""

DETECTORS = (previous_token_scores, current_token_scores, first_token_scores)
N_CTX = 16


def planted() -> GPT:
    """One attention-only layer, 4 heads: previous-token, current-token, first-token, uniform.

    The residual stream at position ``i`` is ``10 e_i`` (``W_E = 0``); after LayerNorm it is
    ``a (e_i - 1/d)``, so queries ``c P x`` (``P e_i = e_{i-1}``) against keys ``x`` score
    ``c a^2 [k = q - 1]`` plus terms constant in ``k`` (up to the last position).
    """
    cfg = GPTConfig(d_vocab=20, n_ctx=N_CTX, d_model=N_CTX, d_head=N_CTX, n_layers=1, n_heads=4, attn_only=True)
    model = GPT(cfg).double()
    eye, c = torch.eye(N_CTX, dtype=torch.float64), 8.0
    shift = torch.diag(torch.ones(N_CTX - 1, dtype=torch.float64), -1)  # e_i @ shift = e_{i-1}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.W_E.zero_()
        model.pos_embed.W_pos.copy_(10 * eye)
        model.ln_final.w.fill_(1.0)
        attn = model.blocks[0].attn
        model.blocks[0].ln1.w.fill_(1.0)
        attn.W_K[:] = eye
        attn.W_Q[0] = c * shift  # previous token: query of q matches key of q - 1
        attn.W_Q[1] = c * eye  # current token
        attn.W_Q[2].zero_()
        attn.W_K[2].zero_()
        attn.W_K[2, 0, 0] = 1.0
        attn.b_Q[2, 0] = 200.0  # first token: every query matches key 0's first coordinate
        attn.W_Q[3].zero_()  # uniform
    return model.eval()


def test_planted_heads_score_one_on_their_detector_and_zero_elsewhere():
    model = planted()
    tokens = torch.zeros(2, N_CTX, dtype=torch.long)
    pattern = attention_patterns(model, tokens)[0, 0]
    assert_close(pattern[0].diagonal(-1), torch.ones(N_CTX - 1, dtype=torch.float64), SHARP,
                 name="head 0's pattern is the sub-diagonal")
    prev, cur, first = (f(model, tokens)[0] for f in DETECTORS)
    # row 0 of every pattern is [1, 0, ...]: it counts for the current- and first-token detectors
    expected = {
        "previous": (prev, [1.0, 0.0, 1 / (N_CTX - 1)]),  # the first-token head's row 1 attends to 0 = 1 - 1
        "current": (cur, [1 / N_CTX, 1.0, 1 / N_CTX]),
        "first": (first, [2 / N_CTX, 1 / N_CTX, 1.0]),  # the previous-token head's rows 0 and 1 attend to 0
    }
    for name, (scores, want) in expected.items():
        assert_close(scores[:3], torch.tensor(want, dtype=torch.float64), SHARP, name=f"{name}-token scores")
    assert heads_above(torch.stack([prev, cur, first]), 0.5) == [(0, 0), (1, 1), (2, 2)]


def test_uniform_attention_scores_match_their_closed_forms():
    model = planted()
    tokens = torch.zeros(1, N_CTX, dtype=torch.long)
    inv = 1.0 / torch.arange(1, N_CTX + 1, dtype=torch.float64)  # A[q, k] = 1 / (q + 1)
    assert_close(previous_token_scores(model, tokens)[0, 3], inv[1:].mean(), FLOAT64, name="previous")
    assert_close(current_token_scores(model, tokens)[0, 3], inv.mean(), FLOAT64, name="current")
    assert_close(first_token_scores(model, tokens)[0, 3], inv.mean(), FLOAT64, name="first")
    h = N_CTX // 2
    rep = torch.arange(h).repeat(1, 2)
    assert_close(induction_scores(model, rep)[0, 3], inv[h:].mean(), FLOAT64, name="induction, no leading token")
    h_bos = h - 1
    rep_bos = torch.cat([torch.tensor([[19]]), torch.arange(h_bos).repeat(1, 2)], dim=1)
    assert_close(induction_scores(model, rep_bos)[0, 3], inv[1 + h_bos : 1 + 2 * h_bos].mean(), FLOAT64,
                 name="induction, one leading token")


def test_shifted_stripes_match_their_closed_forms():
    model = planted()
    inv = 1.0 / torch.arange(1, N_CTX + 1, dtype=torch.float64)
    h = N_CTX // 2
    rep = torch.arange(h).repeat(1, 2)
    for shift in (-3, -1, 0, 2, h - 1):
        # query q of the second copy (q >= h) attends to q - h + 1 + shift; keys before 0 are left out
        queries = [q for q in range(h, 2 * h) if q - h + 1 + shift >= 0]
        assert_close(induction_scores(model, rep, shift=shift)[0, 3], inv[queries].mean(), FLOAT64,
                     name=f"uniform head, shift {shift}")
    assert_close(induction_scores(model, rep, shift=0), induction_scores(model, rep), EXACT, name="default shift")
    with pytest.raises(ValueError, match=r"\|shift\| < 8"):
        induction_scores(model, rep, shift=h)


def random_model(seed: int = 0, d_vocab: int = 40) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(d_vocab=d_vocab, n_ctx=32, d_model=24, n_layers=2, n_heads=3, attn_only=True)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5) if p.ndim > 1 else p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def distinct_repeats(batch: int, h: int, d_vocab: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    half = torch.stack([torch.randperm(d_vocab, generator=g)[:h] for _ in range(batch)])
    return torch.cat([half, half], dim=1)


def tl_detect(bridge, tokens: torch.Tensor, name: str) -> torch.Tensor:
    """TransformerLens's detect_head averaged over rows (it takes one prompt at a time, as strings;
    our models have no tokenizer, so to_tokens is handed the ids)."""
    scores = []
    for row in tokens:
        bridge.to_tokens = lambda seq, row=row: row.unsqueeze(0)
        scores.append(head_detector.detect_head(bridge, "ids", name, error_measure="mul"))
    del bridge.to_tokens
    return torch.stack(scores).mean(0).double()


def test_scores_equal_transformer_lens_detect_head_up_to_its_normalisation():
    model = random_model()
    bridge = to_transformer_lens(model)
    h, n = 12, 24  # detect_head wants seq_len < n_ctx = 32
    tokens = distinct_repeats(3, h, 40, seed=1)
    ours_prev, ours_ind = previous_token_scores(model, tokens), induction_scores(model, tokens)
    assert_close(ours_prev * (n - 1) / n, tl_detect(bridge, tokens, "previous_token_head"), FLOAT64,
                 name="previous-token score x (n-1)/n vs detect_head")
    assert_close(ours_ind * h / n, tl_detect(bridge, tokens, "induction_head"), FLOAT64,
                 name="induction score x h/n vs detect_head")
    # the check can fail: without the normalisation the two differ
    assert (ours_ind - tl_detect(bridge, tokens, "induction_head")).abs().max() > 1e-3


def test_our_gpt_and_the_bridge_give_the_same_tables():
    model = random_model(seed=3)
    bridge = to_transformer_lens(model)
    tokens = torch.randint(0, 40, (4, 20), generator=torch.Generator().manual_seed(2))
    for fn in DETECTORS:
        assert_close(fn(model, tokens), fn(bridge, tokens), FLOAT64, name=fn.__name__)
    rep = distinct_repeats(4, 10, 40, seed=4)
    assert_close(induction_scores(model, rep), induction_scores(bridge, rep), FLOAT64, name="induction")
    assert induction_scores(model, rep).shape == (2, 3)


def test_scores_are_means_over_the_batch():
    model = random_model(seed=5)
    rep = distinct_repeats(3, 8, 40, seed=6)
    rows = torch.stack([induction_scores(model, r.unsqueeze(0)) for r in rep])
    assert_close(induction_scores(model, rep), rows.mean(0), FLOAT64, name="batch mean")
    assert_close(induction_scores(model, rep[0]), rows[0], EXACT, name="an unbatched sequence")


def test_bad_input_is_refused_with_a_message():
    model = random_model()
    with pytest.raises(ValueError, match="repeated sequences"):
        induction_scores(model, torch.arange(10).unsqueeze(0))
    with pytest.raises(ValueError, match="at least 2"):
        unchecked(previous_token_scores)(model, torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="pos >= 2"):
        unchecked(repeat_length)(torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="longer than n_ctx"):
        unchecked(current_token_scores)(model, torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(TypeError, match="integer tensor"):
        unchecked(first_token_scores)(model, torch.zeros(1, 4))
    with pytest.raises(TypeError, match="mechlearn GPT or a TransformerLens"):
        unchecked(first_token_scores)(torch.nn.Linear(2, 2), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(n_layers, n_heads\)"):
        unchecked(heads_above)(torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="finite number"):
        unchecked(heads_above)(torch.zeros(2, 2), float("nan"))


def test_heads_above_lists_pairs_in_order():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.6, 0.2, 0.41]])
    assert heads_above(scores, 0.4) == [(0, 1), (0, 2), (1, 0), (1, 2)]
    assert heads_above(scores, 0.5) == [(0, 1), (1, 0)]  # strictly above
    assert heads_above(scores, 1) == []


FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FUZZ
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple),
       dtype=st.sampled_from([torch.long, torch.int32, torch.float32, torch.bool]),
       low=st.integers(-3, 0), high=st.integers(1, 60), which=st.integers(0, 3), repeat=st.booleans())
def test_fuzz_detectors_return_tables_or_clear_errors(shape, dtype, low, high, which, repeat):
    model = random_model()
    fn = (*DETECTORS, induction_scores)[which]
    tokens = torch.randint(low, high, shape, generator=torch.Generator().manual_seed(0))
    if repeat and tokens.ndim >= 1:
        tokens = torch.cat([tokens, tokens], dim=-1)
    try:
        scores = unchecked(fn)(model, tokens.to(dtype))
    except (ValueError, TypeError) as err:
        assert any(w in str(err) for w in ("should", "expected", "longer than", "out of range", "need", "at least")), str(err)
        return
    assert scores.shape == (2, 3)
    assert bool(((scores >= -1e-12) & (scores <= 1 + 1e-12)).all())


@FUZZ
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=6),
       ndim=st.integers(0, 3), threshold=st.one_of(st.floats(allow_nan=True), st.integers(-2, 2), st.booleans()))
def test_fuzz_heads_above(values, ndim, threshold):
    t = torch.tensor(values, dtype=torch.float64)
    t = t.reshape((1,) * max(0, ndim - 1) + (len(values),)) if ndim else (t[0] if values else t.sum())
    try:
        heads = unchecked(heads_above)(t, threshold)
    except ValueError as err:
        assert "should" in str(err)
        return
    assert t.ndim == 2
    assert heads == [(0, i) for i, v in enumerate(values) if v > threshold]
