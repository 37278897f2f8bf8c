"""mechlearn.interp.induction: the task, the losses, the phase-change step, the recipe and the committed model.

References: the task's construction (every masked token equals the token one chunk-offset earlier,
and the offsets vary), cross-entropy written out, a hand-made history for `phase_change_step`,
TransformerLens on the committed weights, and the detectors' requirements on the committed model
(a previous-token head in layer 0, an induction head in layer 1, K-composition between them above
the random baseline, computed here in closed form from the weights).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.gpt.interop import to_transformer_lens
from mechlearn.interp.detectors import induction_scores, previous_token_scores
from mechlearn.interp.induction import (
    INDUCTION_CONFIG, INDUCTION_THRESHOLD, INDUCTION_TRAIN, InductionTrainConfig, induction_batch, induction_losses,
    induction_recipe, load_induction_model, phase_change_step, repeated_random_tokens,
)
from mechlearn.testing import EXACT, FLOAT32_MODEL, FLOAT64, assert_close


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_induction_batch_repeats_a_chunk_at_random_offsets():
    tokens, mask = induction_batch(200, 32, 64, gen(), min_repeat=6, max_repeat=16)
    assert tokens.shape == mask.shape == (200, 32) and tokens.dtype == torch.long
    offsets = set()
    for row, m in zip(tokens, mask):
        where = m.nonzero().flatten()
        n = len(where) + 1  # the copy's first token is not in the mask
        assert 6 <= n <= 16 and bool((where.diff() == 1).all())
        q = int(where[0]) - 1
        # the earlier copy is the only place the chunk can come from: find its offset
        d = next(d for d in range(n, q + 1) if torch.equal(row[q - d : q - d + n], row[q : q + n]))
        offsets.add(d)
    assert len(offsets) > 10, "the offset between the copies should vary"
    assert not mask[:, 0].any()


def test_a_fixed_offset_puts_every_copy_at_that_distance():
    tokens, mask = induction_batch(50, 32, 64, gen(2), min_repeat=6, max_repeat=10, offset=12)
    for row, m in zip(tokens, mask):
        where = m.nonzero().flatten()
        q, n = int(where[0]) - 1, len(where) + 1
        assert torch.equal(row[q - 12 : q - 12 + n], row[q : q + n])
    halves, _ = induction_batch(4, 32, 64, gen(2), min_repeat=16, max_repeat=16, offset=16)
    assert_close(halves[:, :16], halves[:, 16:], EXACT, name="offset = length = n_ctx / 2: ARENA's repeated tokens")
    with pytest.raises(ValueError, match="offset should be None or an int"):
        unchecked(induction_batch)(4, 32, 64, gen(), min_repeat=6, max_repeat=10, offset=8)
    with pytest.raises(ValueError, match="fixed_offset should be None"):
        InductionTrainConfig(fixed_offset=3)


def test_induction_batch_is_reproducible_and_validates():
    a, b = induction_batch(4, 32, 64, gen(3)), induction_batch(4, 32, 64, gen(3))
    assert_close(a[0], b[0], EXACT, name="same seed, same tokens")
    with pytest.raises(ValueError, match="2 \\* max_repeat <= n_ctx"):
        unchecked(induction_batch)(4, 16, 64, gen(), min_repeat=6, max_repeat=9)
    with pytest.raises(ValueError, match="positive int"):
        unchecked(induction_batch)(0, 32, 64, gen())


def test_repeated_random_tokens_repeat_their_first_half():
    tokens = repeated_random_tokens(5, 7, 11, gen())
    assert tokens.shape == (5, 14)
    assert_close(tokens[:, :7], tokens[:, 7:], EXACT, name="halves")
    assert int(tokens.max()) < 11
    with pytest.raises(ValueError, match="half_len should be a positive int"):
        unchecked(repeated_random_tokens)(5, 0, 11, gen())


def test_induction_losses_are_masked_cross_entropies():
    g = gen(1)
    logits = torch.randn(3, 10, 7, generator=g, dtype=torch.float64)
    tokens = torch.randint(0, 7, (3, 10), generator=g)
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[:, 4:7] = True
    rep, rest = induction_losses(logits, tokens, mask)
    logp = logits.log_softmax(-1)
    nll = -logp[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]  # predicts token t from position t - 1
    assert_close(rep, nll[:, 3:6].mean(), FLOAT64, name="repeated")
    assert_close(rest, torch.cat([nll[:, :3], nll[:, 6:]], 1).mean(), FLOAT64, name="rest")
    with pytest.raises(ValueError, match="mask should select"):
        induction_losses(logits, tokens, torch.zeros_like(mask))


def test_phase_change_step_on_a_hand_made_history():
    losses = [4.1, 4.2, 4.0, 3.9, 3.0, 1.0, 0.3, 0.2]  # plateau 4.2, floor 0.2: half-way 2.2
    history = [{"step": 10 * i, "loss_repeated": v} for i, v in enumerate(losses)]
    assert phase_change_step(history) == 50
    with pytest.raises(ValueError, match="never falls"):
        phase_change_step([{"step": 0, "loss_repeated": 1.0}, {"step": 1, "loss_repeated": 2.0}])
    with pytest.raises(ValueError, match="at least 2"):
        phase_change_step(history[:1])


def test_train_config_validates():
    with pytest.raises(ValueError, match="min_repeat <= max_repeat"):
        InductionTrainConfig(min_repeat=9, max_repeat=8)
    with pytest.raises(ValueError, match="steps should be a positive int"):
        InductionTrainConfig(steps=0)


def test_quick_recipe_writes_a_loadable_manifest(tmp_path):
    manifest = induction_recipe(tmp_path, quick=True, progress=False)
    model, loaded = load_induction_model(tmp_path)
    assert loaded == {**manifest, "history": loaded["history"]} and manifest["quick"] is True
    assert manifest["steps"] == 50 and [h["step"] for h in manifest["history"]][-1] == 50
    assert manifest["config"] == INDUCTION_CONFIG.to_dict() and manifest["seconds"] > 0
    assert len(manifest["metrics"]["induction_scores"]) == INDUCTION_CONFIG.n_layers
    with pytest.raises(ValueError, match="refusing to write into the mechlearn package"):
        induction_recipe(__import__("mechlearn").__path__[0] + "/interp/checkpoints", quick=True, progress=False)


@pytest.fixture(scope="module")
def committed():
    return load_induction_model()


def test_committed_model_matches_transformer_lens(committed):
    model, _ = committed
    assert model.training is False and model.embed.W_E.dtype == torch.float32
    bridge = to_transformer_lens(model)
    tokens, _ = induction_batch(8, INDUCTION_CONFIG.n_ctx, INDUCTION_CONFIG.d_vocab, gen(5))
    assert_close(model(tokens), bridge(tokens), FLOAT32_MODEL, name="logits of our GPT vs the bridge")


def test_committed_model_has_the_induction_circuit(committed):
    model, manifest = committed
    m = manifest["metrics"]
    assert manifest["train_config"] == {**INDUCTION_TRAIN.__dict__} and manifest["quick"] is False
    rep = repeated_random_tokens(64, INDUCTION_CONFIG.n_ctx // 2, INDUCTION_CONFIG.d_vocab, gen(11))
    ind, prev = induction_scores(model, rep), previous_token_scores(model, rep)
    assert ind[1].max() > INDUCTION_THRESHOLD and prev[0].max() > INDUCTION_THRESHOLD
    assert ind[0].max() < 0.2, "layer 0 cannot be an induction head: it sees no earlier layer"
    assert m["best_induction_head"][0] == 1 and m["best_prev_token_head"][0] == 0
    assert m["phase_change_step"] is not None and 0 < m["phase_change_step"] < manifest["steps"]
    # before the collapse the repeated tokens cost about ln(d_vocab): a uniform guess
    first = manifest["history"][0]
    assert abs(first["loss_repeated"] - math.log(INDUCTION_CONFIG.d_vocab)) < 0.1
    assert m["final_loss_repeated"] < 1.0 < m["final_loss_rest"] - 3


def k_composition(model, prev: tuple[int, int], ind: tuple[int, int]) -> float:
    """Elhage et al.'s K-composition score ||W_QK^h W_OV^prev||_F / (||W_QK^h||_F ||W_OV^prev||_F)."""
    a, b = model.blocks[prev[0]].attn, model.blocks[ind[0]].attn
    a_V, a_O = a.W_V.detach()[prev[1]], a.W_O.detach()[prev[1]]
    ov = (a_V @ a_O).double()  # d_model x d_model, right-multiplying row vectors
    qk = (b.W_Q.detach()[ind[1]] @ b.W_K.detach()[ind[1]].T).double()
    return float((qk @ ov.T).norm() / (qk.norm() * ov.norm()))


def test_committed_heads_k_compose_above_the_random_baseline(committed):
    model, manifest = committed
    m = manifest["metrics"]
    prev, ind = tuple(m["best_prev_token_head"]), tuple(m["best_induction_head"])
    model64 = copy.deepcopy(model).double()
    tl_scores = to_transformer_lens(model64, dtype=torch.float64).all_composition_scores("K").scores  # [l1, h1, l2, h2]
    ours = k_composition(model64, prev, ind)
    assert_close(torch.tensor(ours, dtype=torch.float64), tl_scores[prev[0], prev[1], ind[0], ind[1]].double(), FLOAT64,
                 name="K-composition score vs TransformerLens")
    g = gen(2)
    d, dh = INDUCTION_CONFIG.d_model, INDUCTION_CONFIG.d_head
    baseline = []
    for _ in range(200):  # random matrices of the same shapes and rank
        qk = torch.randn(d, dh, generator=g, dtype=torch.float64) @ torch.randn(dh, d, generator=g, dtype=torch.float64)
        ov = torch.randn(d, dh, generator=g, dtype=torch.float64) @ torch.randn(dh, d, generator=g, dtype=torch.float64)
        baseline.append(float((qk @ ov.T).norm() / (qk.norm() * ov.norm())))
    mean = sum(baseline) / len(baseline)
    assert ours > 2 * mean, (ours, mean)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(batch=st.integers(-1, 3), n_ctx=st.integers(-1, 40), lo=st.integers(-1, 20), hi=st.integers(-1, 20))
def test_fuzz_induction_batch_sizes(batch, n_ctx, lo, hi):
    try:
        tokens, mask = unchecked(induction_batch)(batch, n_ctx, 10, gen(), min_repeat=lo, max_repeat=hi)
    except ValueError as err:
        assert "should" in str(err) or "need" in str(err)
        return
    assert tokens.shape == mask.shape == (batch, n_ctx)
    assert 2 <= lo <= hi and 2 * hi <= n_ctx
    assert int(mask.sum(1).min()) >= lo - 1
