"""mechlearn.interp.ioi: the synthetic IOI task, its data, the trained model and its recipe."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn._recipes import sha256_file
from mechlearn.gpt import GPT, GPTConfig
from mechlearn.interp.core import CHECKPOINT_DIR
from mechlearn.interp.ioi import (
    HELD_OUT_NAMES, IOI_CONFIG, IOI_TOKENIZER, IOI_TRAIN, NAMES, TEMPLATES, TRAIN_NAMES, IOIBatch, IOITemplate,
    IOITrainConfig, filler_sentence, ioi_accuracy, ioi_batch, ioi_circuit_logits, ioi_evaluate, ioi_faithfulness,
    ioi_logit_diff, ioi_metric, ioi_recipe, ioi_training_stream, load_ioi_model,
)
from mechlearn.testing import EXACT, FLOAT64, REPLAY, assert_close

FUZZ = settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
NAME_IDS = {IOI_TOKENIZER.index[n] for n in NAMES}
HELD_OUT_IDS = {IOI_TOKENIZER.index[n] for n in HELD_OUT_NAMES}


def test_names_split_and_vocabulary():
    assert set(TRAIN_NAMES).isdisjoint(HELD_OUT_NAMES) and set(TRAIN_NAMES) | set(HELD_OUT_NAMES) == set(NAMES)
    assert len(HELD_OUT_NAMES) == 8 and len(IOI_TOKENIZER) == IOI_CONFIG.d_vocab
    assert len(set(IOI_TOKENIZER.vocab)) == len(IOI_TOKENIZER.vocab)
    assert {t.name.split("-")[1] for t in TEMPLATES.values()} == {"ABBA", "BABA"}


def test_tokenizer_round_trip():
    g = torch.Generator().manual_seed(0)
    texts = [filler_sentence(g) for _ in range(50)]
    for key in TEMPLATES:
        texts += ioi_batch(3, NAMES, key, g).prompts() + ioi_batch(3, NAMES, key, g).prompts(corrupted=True)
    for text in texts:
        ids = IOI_TOKENIZER.encode(text)
        assert IOI_TOKENIZER.decode(ids) == text
        assert IOI_TOKENIZER.encode(IOI_TOKENIZER.decode(ids)) == ids
    assert IOI_TOKENIZER.decode(list(range(len(IOI_TOKENIZER)))).split() == IOI_TOKENIZER.vocab


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_positions_name_the_right_tokens(key):
    batch = ioi_batch(16, TRAIN_NAMES, key, torch.Generator().manual_seed(1))
    pos = batch.positions
    clean, corrupted = batch.clean, batch.corrupted
    assert clean.shape == corrupted.shape and pos["END"] == clean.shape[1] - 1
    assert (clean[:, 0] == IOI_TOKENIZER.bos).all()
    assert_close(clean[:, pos["IO"]], batch.io, EXACT, name="IO position holds the IO")
    assert_close(clean[:, pos["S1"]], batch.s, EXACT, name="S1 position holds S")
    assert_close(clean[:, pos["S2"]], batch.s, EXACT, name="S2 position holds S")
    assert (batch.io != batch.s).all()
    order = "ABBA" if pos["IO"] < pos["S1"] else "BABA"
    assert key.endswith(order) and pos["S1"] < pos["S2"] < pos["END"]
    # the IO is the only name in the prompt seen once, S the only one seen twice
    for row, io, s in zip(clean.tolist(), batch.io.tolist(), batch.s.tolist()):
        names = [t for t in row if t in NAME_IDS]
        assert sorted(names) == sorted([io, s, s])
    assert IOI_TOKENIZER.decode(clean[0, pos["END"]:]) in {"to"}


@pytest.mark.parametrize("key", ["0-BABA", "4-ABBA"])
def test_corrupted_prompts_share_no_names_with_clean(key):
    batch = ioi_batch(64, NAMES, key, torch.Generator().manual_seed(2))
    slots = [batch.positions[k] for k in ("IO", "S1", "S2")]
    others = [i for i in range(batch.clean.shape[1]) if i not in slots]
    assert_close(batch.corrupted[:, others], batch.clean[:, others], EXACT, name="non-name words unchanged")
    for clean, corr in zip(batch.clean.tolist(), batch.corrupted.tolist()):
        new = [corr[i] for i in slots]
        assert len(set(new)) == 3, "ABC: three distinct fresh names"
        assert set(new).isdisjoint(clean[i] for i in slots)
        assert all(t in NAME_IDS for t in new)
    # a negative control: the check above fails on the clean prompts themselves
    assert batch.clean[0, slots[1]] == batch.clean[0, slots[2]]


def test_batches_draw_only_from_the_given_names_and_are_reproducible():
    a = ioi_batch(32, HELD_OUT_NAMES, "2-ABBA", torch.Generator().manual_seed(3))
    b = ioi_batch(32, HELD_OUT_NAMES, "2-ABBA", torch.Generator().manual_seed(3))
    assert_close(a.clean, b.clean, EXACT) and assert_close(a.corrupted, b.corrupted, EXACT)
    used = set(a.clean.flatten().tolist()) | set(a.corrupted.flatten().tolist())
    assert used & NAME_IDS <= HELD_OUT_IDS


def test_held_out_names_never_in_a_training_ioi_prompt():
    """The recipe's own data stream: held-out names appear only in the filler, never in the IOI part."""
    cfg = IOITrainConfig(steps=40)  # the first 40 batches of the committed recipe's stream
    assert (cfg.seed, cfg.batch_size) == (IOI_TRAIN.seed, IOI_TRAIN.batch_size)
    in_filler = 0
    for rows, answer_at in ioi_training_stream(IOI_CONFIG, cfg):
        for row, a in zip(rows.tolist(), answer_at.tolist()):
            assert HELD_OUT_IDS.isdisjoint(row[: a + 1]), IOI_TOKENIZER.decode(row[: a + 1])
            assert row[a] in NAME_IDS and IOI_TOKENIZER.vocab[row[a - 1]] == "to"
            in_filler += len(HELD_OUT_IDS.intersection(row[a + 1 :]))
    assert in_filler > 100, "held-out names should appear in the filler text"


def test_logit_diff_matches_the_bridge_and_a_direct_computation():
    tl = pytest.importorskip("mechlearn.gpt.interop")
    model, _, _ = load_ioi_model()
    model = model.double()
    bridge = tl.to_transformer_lens(model)
    batch = ioi_batch(20, HELD_OUT_NAMES, "1-ABBA", torch.Generator().manual_seed(4))
    ours = ioi_logit_diff(model, batch, per_prompt=True)
    assert_close(ours, ioi_logit_diff(bridge, batch, per_prompt=True), FLOAT64, name="our GPT vs the TL bridge")
    logits = model(batch.clean)[:, -1]
    direct = logits.gather(1, batch.io[:, None])[:, 0] - logits.gather(1, batch.s[:, None])[:, 0]
    assert_close(ours, direct, FLOAT64, name="logit difference from the logits")
    assert_close(ioi_metric(batch)(model(batch.clean)), ours.mean(), FLOAT64, name="metric is the mean")
    wrong = ioi_logit_diff(model, batch, corrupted=True, per_prompt=True)
    assert (wrong - ours).abs().max() > 0.1, "the corrupted run should differ"


def test_committed_checkpoint_sha256_and_metrics():
    ckpt = CHECKPOINT_DIR / "ioi.pt"
    manifest = json.loads(ckpt.with_suffix(".json").read_text())
    assert sha256_file(ckpt) == manifest["sha256"]
    model, tokenizer, loaded = load_ioi_model()
    assert loaded == manifest and tokenizer is IOI_TOKENIZER and not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert manifest["vocab"] == IOI_TOKENIZER.vocab and manifest["held_out_names"] == list(HELD_OUT_NAMES)
    assert manifest["config"] == IOI_CONFIG.to_dict() and not manifest["quick"]
    scores = ioi_evaluate(model, HELD_OUT_NAMES, n=64, seed=2)
    for key, value in scores.items():
        assert_close(value, manifest["metrics"][f"held_out_{key}"], REPLAY, name=key)
    assert manifest["metrics"]["held_out_accuracy"] > 0.9 and manifest["metrics"]["held_out_logit_diff"] > 2.0


def test_quick_recipe(tmp_path):
    manifest = ioi_recipe(tmp_path, quick=True, progress=False)
    assert (tmp_path / "ioi.pt").exists() and manifest["quick"] and manifest["steps"] == 60
    assert sha256_file(tmp_path / "ioi.pt") == manifest["sha256"]
    assert json.loads((tmp_path / "ioi.json").read_text()) == json.loads(json.dumps(manifest))
    model, _, loaded = load_ioi_model(tmp_path)
    assert loaded["sha256"] == manifest["sha256"] and manifest["seconds"] > 0
    assert manifest["history"][0]["loss"] > manifest["history"][-1]["loss"], "60 steps should lower the loss"
    (tmp_path / "ioi.pt").write_bytes((tmp_path / "ioi.pt").read_bytes() + b"x")
    with pytest.raises(ValueError, match="sha256"):
        load_ioi_model(tmp_path)


ALL_HEADS = [(layer, head) for layer in range(IOI_CONFIG.n_layers) for head in range(IOI_CONFIG.n_heads)]


def test_faithfulness_closed_forms_and_the_bridge():
    """Whole model: exactly 1. Empty circuit: every head mean-ablated per position (H2's ablation)."""
    from mechlearn.interp.ablation import ablate_heads

    tl = pytest.importorskip("mechlearn.gpt.interop")
    model, _, _ = load_ioi_model()
    model = model.double()
    batch = ioi_batch(24, HELD_OUT_NAMES, "3-BABA", torch.Generator().manual_seed(6))
    metric = ioi_metric(batch)
    assert ioi_faithfulness(model, batch, ALL_HEADS) == 1.0
    assert_close(ioi_circuit_logits(model, batch, {h: None for h in ALL_HEADS}), model(batch.clean), EXACT)
    empty = ablate_heads(model, batch.clean, ALL_HEADS, "mean", reference_tokens=batch.corrupted, per_position=True)
    assert_close(ioi_circuit_logits(model, batch, []), empty, FLOAT64, name="empty circuit = all heads ablated")
    full = ioi_logit_diff(model, batch)
    assert_close(ioi_faithfulness(model, batch, []), (metric(empty) / full).item(), FLOAT64)
    # keeping a head only at END differs from keeping it everywhere unless it only matters at END
    at_end = ioi_circuit_logits(model, batch, {(0, 0): "END"})
    everywhere = ioi_circuit_logits(model, batch, [(0, 0)])
    assert (at_end - everywhere).abs().max() > 1e-6
    assert_close(at_end[:, : batch.positions["END"]], ioi_circuit_logits(model, batch, [])[:, : batch.positions["END"]],
                 FLOAT64, name="before END, a head kept only at END is ablated")
    bridge = tl.to_transformer_lens(model)
    for circuit in ([(0, 3)], {(0, 1): "END", (1, 2): "S2"}, []):
        assert_close(ioi_circuit_logits(bridge, batch, circuit), ioi_circuit_logits(model, batch, circuit), FLOAT64,
                     name=f"bridge, circuit {circuit}")
    assert abs(ioi_faithfulness(model, batch, [])) < 0.2, "ablating every head should destroy the task"


def test_probe_templates():
    probe = IOITemplate("probe", "Then , [B] went to the [PLACE] . [B] met [A] and gave a [OBJECT] to")
    batch = ioi_batch(8, TRAIN_NAMES, probe, torch.Generator().manual_seed(0))
    assert batch.template == "probe" and batch.positions == {"IO": 11, "S1": 3, "S2": 9, "END": 16}
    assert_close(batch.clean[:, 11], batch.io, EXACT)
    with pytest.raises(ValueError, match="one \\[A\\]"):
        IOITemplate("bad", "[A] and [A] met [B] . [B] gave it to")
    with pytest.raises(ValueError, match="unknown slot"):
        IOITemplate("bad", "[A] and [B] met [C] . [B] gave it to")


def test_bad_input_errors():
    with pytest.raises(KeyError, match="unknown word 'Marry'.*Mary"):
        IOI_TOKENIZER.encode("When Marry and John")
    with pytest.raises(ValueError, match="out of range"):
        IOI_TOKENIZER.decode([0, len(IOI_TOKENIZER)])
    with pytest.raises(ValueError, match="unknown template"):
        unchecked(ioi_batch)(4, NAMES, "9-CBAB")
    with pytest.raises(ValueError, match="at least 5 distinct names"):
        unchecked(ioi_batch)(4, ["Mary", "John", "Tom", "Mary", "John"])
    with pytest.raises(ValueError, match="unknown names"):
        unchecked(ioi_batch)(4, ["Mary", "John", "Tom", "Gandalf", "Sid"])
    with pytest.raises(TypeError, match="sequence of names"):
        unchecked(ioi_batch)(4, "MaryJohnTomSidDan")
    with pytest.raises(ValueError, match="n should be an int >= 1"):
        unchecked(ioi_batch)(0)
    with pytest.raises(TypeError, match="IOIBatch"):
        unchecked(ioi_logit_diff)(GPT(IOI_CONFIG), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="d_vocab"):
        unchecked(ioi_logit_diff)(GPT(GPTConfig(d_vocab=50, n_ctx=32)), ioi_batch(2))
    with pytest.raises(ValueError, match="expected logits of shape"):
        ioi_metric(ioi_batch(2))(torch.zeros(3, 16, len(IOI_TOKENIZER)))
    with pytest.raises(TypeError, match="IOIBatch"):
        unchecked(ioi_accuracy)(GPT(IOI_CONFIG), None)
    batch = ioi_batch(2)
    with pytest.raises(TypeError, match="list of \\(layer, head\\) tuples"):
        unchecked(ioi_circuit_logits)(GPT(IOI_CONFIG), batch, "L0H3")
    with pytest.raises(ValueError, match="head should be an int in"):
        unchecked(ioi_circuit_logits)(GPT(IOI_CONFIG), batch, [(0, 4)])
    with pytest.raises(ValueError, match="unknown position 'S3'"):
        unchecked(ioi_circuit_logits)(GPT(IOI_CONFIG), batch, {(0, 1): "S3"})
    with pytest.raises(TypeError, match="IOIBatch"):
        unchecked(ioi_faithfulness)(GPT(IOI_CONFIG), batch.clean, [])
    with pytest.raises(FileNotFoundError, match="python -m mechlearn.interp ioi"):
        load_ioi_model("/nonexistent-folder")


@FUZZ
@given(st.lists(st.sampled_from(["Mary", "Marry", " ", "to", "x", ",", "<bos>", "\n"]), max_size=12).map("".join))
def test_fuzz_encode(text):
    try:
        ids = IOI_TOKENIZER.encode(text)
    except KeyError as err:
        assert "unknown word" in str(err)
    else:
        assert IOI_TOKENIZER.decode(ids) == " ".join(text.split())


@FUZZ
@given(n=st.one_of(st.integers(-3, 5), st.booleans(), st.floats(0, 3)),
       names=st.lists(st.sampled_from([*NAMES[:7], "Bob", ""]), max_size=8),
       template=st.sampled_from([*list(TEMPLATES)[:3], "0-AABB", ""]))
def test_fuzz_ioi_batch(n, names, template):
    try:
        batch = unchecked(ioi_batch)(n, names, template, torch.Generator().manual_seed(0))
    except (ValueError, TypeError) as err:
        assert any(w in str(err) for w in ("should", "unknown", "need", "names")), str(err)
    else:
        assert isinstance(batch, IOIBatch) and len(batch) == n and batch.clean.shape == batch.corrupted.shape
