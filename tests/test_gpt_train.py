"""Days 27, 33, 34: the training recipe and its committed checkpoint, the logit lens, the scaling fit."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import math
import types
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mechlearn.gpt import (
    CHAR_LM_CONFIG, CHAR_LM_TRAIN, GPT, GPTConfig, TrainConfig, char_lm_data, estimate_loss, fit_power_law,
    lens_scores, load_char_lm, logit_lens, next_token_loss, ngram_cross_entropy, pydoc_text, scaling_sweep, train,
    train_char_lm,
)
from mechlearn.gpt.tokenizer import PYDOC_CORPUS
from mechlearn.gpt.training import CHECKPOINT_DIR, sha256_file
from mechlearn.testing import FLOAT64, REPLAY, assert_close


def test_next_token_loss_matches_a_manual_log_softmax():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 5, 7, generator=g, dtype=torch.float64), torch.randint(0, 7, (2, 5), generator=g)
    manual = -logits.log_softmax(-1).gather(-1, targets[..., None]).mean()
    assert_close(next_token_loss(logits, targets), manual, FLOAT64)


def test_short_recipe_writes_a_matching_manifest_and_is_deterministic(tmp_path):
    first = train_char_lm(tmp_path / "a", max_steps=3)
    second = train_char_lm(tmp_path / "b", max_steps=3)
    for run, folder in ((first, tmp_path / "a"), (second, tmp_path / "b")):
        on_disk = json.loads((folder / "char_lm.json").read_text())
        assert on_disk["sha256"] == sha256_file(folder / "char_lm.pt")
        assert on_disk["config"] == {**on_disk["config"], **CHAR_LM_CONFIG}
        for key in ("config", "seed", "final_train_loss", "final_val_loss", "seconds", "sha256", "history"):
            assert key in on_disk
    assert [h["train_loss"] for h in first["history"]] == [h["train_loss"] for h in second["history"]]
    model, tokenizer, manifest = load_char_lm(tmp_path / "a" / "char_lm.pt")
    assert manifest["train_config"]["max_steps"] == 3
    _, _, val = char_lm_data(tokenizer)
    assert_close(estimate_loss(model, val), manifest["final_val_loss"], REPLAY, name="re-evaluated val loss")
    # The short run starts where the committed run started: the same recipe, corpus and seed.
    committed = json.loads((CHECKPOINT_DIR / "char_lm.json").read_text())
    assert committed["train_config"] == asdict(CHAR_LM_TRAIN), "CHAR_LM_TRAIN changed since the checkpoint was trained"
    assert committed["config"] == {**committed["config"], **CHAR_LM_CONFIG}, "CHAR_LM_CONFIG changed since the checkpoint was trained"
    assert committed["seed"] == CHAR_LM_TRAIN.seed
    assert first["corpus"]["sha256"] == committed["corpus"]["sha256"], (
        "the shipped pydoc corpus differs from the one the checkpoint was trained on"
    )
    # Step 0 is evaluated before any update, so the same seed must give the committed initial losses.
    for key in ("train_loss", "val_loss"):
        assert_close(first["history"][0][key], committed["history"][0][key], REPLAY, name=f"step-0 {key} vs the committed run")


def test_committed_checkpoint_matches_its_manifest():
    manifest = json.loads((CHECKPOINT_DIR / "char_lm.json").read_text())
    ckpt = CHECKPOINT_DIR / manifest["checkpoint"]
    assert sha256_file(ckpt) == manifest["sha256"], "the checkpoint was changed without re-running the recipe"
    assert ckpt.stat().st_size <= 5 * 2**20, "checkpoints stay at most 5 MB"
    model, tokenizer, _ = load_char_lm()
    assert model.cfg == GPTConfig(**manifest["config"])
    assert manifest["n_params"] == sum(p.numel() for p in model.parameters())
    _, _, val = char_lm_data(tokenizer)
    assert_close(estimate_loss(model, val), manifest["final_val_loss"], REPLAY, name="committed model's val loss")
    # A trained model beats the uniform guess (log d_vocab nats) by a wide margin; a random one would not.
    assert manifest["final_val_loss"] < 0.6 * np.log(model.cfg.d_vocab)


def test_shipped_corpus_is_the_one_the_checkpoint_was_trained_on_and_the_tokenizer_comes_from_the_checkpoint():
    manifest = json.loads((CHECKPOINT_DIR / "char_lm.json").read_text())
    # The corpus ships with the package (CPython 3.11.7's pydoc_data text, gzip), so every Python
    # version reads the same bytes; the running interpreter's own pydoc_data is not used.
    shipped = gzip.decompress(PYDOC_CORPUS.read_bytes())
    digest = hashlib.sha256(shipped).hexdigest()
    assert digest == manifest["corpus"]["sha256"], (
        f"the shipped corpus {PYDOC_CORPUS.name} (sha256 {digest[:12]}…) is not the corpus the checkpoint was trained on "
        f"(sha256 {manifest['corpus']['sha256'][:12]}…): losses re-evaluated here would not match the manifest"
    )
    assert pydoc_text().encode("utf-8") == shipped
    assert len(pydoc_text()) == manifest["corpus"]["n_train_tokens"] + manifest["corpus"]["n_val_tokens"]
    notes = PYDOC_CORPUS.parent / "README.md"
    assert digest in notes.read_text(), f"{notes} should record the corpus's sha256"
    assert "Python Software Foundation License" in (PYDOC_CORPUS.parent / "LICENSE-PSF.txt").read_text()
    # The vocabulary is stored in the checkpoint, not rebuilt from the corpus: a different corpus
    # cannot silently renumber the characters. A character the model never saw is a clear error.
    _, tokenizer, _ = load_char_lm()
    assert tokenizer.vocab_size == manifest["config"]["d_vocab"]
    with pytest.raises(ValueError, match="not in this tokenizer's vocabulary"):
        tokenizer.encode("naïve ☃")


def _ngram_by_loops(train_ids, val_ids, V, order):
    """The add-one-smoothed n-gram cross-entropy with Counters and a plain loop."""
    if order == 1:
        counts, n = Counter(train_ids), len(train_ids)
        return -sum(math.log((counts[t] + 1) / (n + V)) for t in val_ids) / len(val_ids)
    pairs, firsts = Counter(zip(train_ids[:-1], train_ids[1:])), Counter(train_ids[:-1])
    val_pairs = list(zip(val_ids[:-1], val_ids[1:]))
    return -sum(math.log((pairs[s, t] + 1) / (firsts[s] + V)) for s, t in val_pairs) / len(val_pairs)


def test_ngram_baselines_match_a_plain_loop():
    rng = np.random.default_rng(0)
    V = 7
    tr = rng.choice(V, size=500, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.1, 0.0])  # one id never seen: smoothing matters
    va = rng.integers(0, V, size=80)
    for order in (1, 2):
        assert_close(ngram_cross_entropy(tr, va, V, order), _ngram_by_loops(tr.tolist(), va.tolist(), V, order),
                     FLOAT64, name=f"order-{order} baseline")
    # Uniform text: the unigram baseline tends to log V.
    big = rng.integers(0, V, size=200_000)
    assert abs(ngram_cross_entropy(big, big[:5000], V, 1) - math.log(V)) < 1e-2
    with pytest.raises(ValueError, match="order should be 1"):
        ngram_cross_entropy(tr, va, V, 3)
    with pytest.raises(ValueError, match="outside"):
        ngram_cross_entropy(tr, va, 3, 1)


def test_corrupted_checkpoint_is_refused(tmp_path):
    train_char_lm(tmp_path, max_steps=1)
    with open(tmp_path / "char_lm.pt", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ValueError, match="does not match its manifest"):
        load_char_lm(tmp_path / "char_lm.pt")
    with pytest.raises(FileNotFoundError, match="python -m mechlearn.gpt char_lm"):
        load_char_lm(tmp_path / "missing.pt")


def _recipe_outputs_in_package() -> dict[str, str]:
    """sha256 of every file in the installed package a recipe could write (its output names, and checkpoints/)."""
    import mechlearn

    root = Path(mechlearn.__file__).parent
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
            and (p.name in ("char_lm.pt", "char_lm.json", "scaling.json") or CHECKPOINT_DIR in p.parents)}


def test_recipes_write_to_the_chosen_folder_and_never_into_the_package(tmp_path, monkeypatch):
    from mechlearn.gpt import load_scaling, scaling_recipe
    from mechlearn.gpt.__main__ import main

    before = _recipe_outputs_in_package()
    assert sorted(before) == ["gpt/checkpoints/char_lm.json", "gpt/checkpoints/char_lm.pt", "gpt/checkpoints/scaling.json"]
    out = tmp_path / "runs" / "lm"
    assert main(["char_lm", "--out", str(out), "--max-steps", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["char_lm.json", "char_lm.pt"]
    model, _, manifest = load_char_lm(out)  # a folder loads its char_lm.pt
    assert manifest["train_config"]["max_steps"] == 1 and manifest["sha256"] == sha256_file(out / "char_lm.pt")
    assert load_char_lm()[2]["train_config"]["max_steps"] == CHAR_LM_TRAIN.max_steps, "None still loads the shipped model"
    assert main(["scaling", "--out", str(tmp_path / "sweep"), "--max-steps", "1"]) == 0
    assert load_scaling(tmp_path / "sweep")["train_config"]["max_steps"] == 1
    # Without --out, the current directory.
    monkeypatch.chdir(tmp_path)
    assert main(["scaling", "--max-steps", "1"]) == 0
    assert (tmp_path / "scaling.json").exists()
    # The package's own folders are refused, before any training.
    for folder in (CHECKPOINT_DIR, CHECKPOINT_DIR.parent, CHECKPOINT_DIR / "new"):
        with pytest.raises(ValueError, match="refusing to write into the mechlearn package"):
            train_char_lm(folder, max_steps=1)
        with pytest.raises(ValueError, match="refusing to write into the mechlearn package"):
            scaling_recipe(folder, max_steps=1)
        with pytest.raises(SystemExit):
            main(["char_lm", "--out", str(folder), "--max-steps", "1"])
    monkeypatch.chdir(CHECKPOINT_DIR)
    with pytest.raises(SystemExit):
        main(["scaling", "--max-steps", "1"])
    assert _recipe_outputs_in_package() == before, "a recipe wrote into the installed package"
    assert not (CHECKPOINT_DIR / "new").exists()


def test_every_gpt_submodule_imports_as_a_module_and_train_is_the_function():
    """`mechlearn.gpt.train` is the training function, so the module that holds it has another name."""
    import mechlearn.gpt as gpt

    names = sorted(p.stem for p in Path(gpt.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert "training" in names and "train" not in names
    for name in names:
        assert isinstance(importlib.import_module(f"mechlearn.gpt.{name}"), types.ModuleType), name
        assert isinstance(getattr(gpt, name), types.ModuleType), f"mechlearn.gpt.{name} is hidden by another object"
    assert callable(gpt.train) and gpt.train is importlib.import_module("mechlearn.gpt.training").train
    # The committed manifests name the function that wrote them.
    for manifest in ("char_lm.json", "scaling.json"):
        module, _, function = json.loads((CHECKPOINT_DIR / manifest).read_text())["recipe"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), function)), manifest


def test_logit_lens_last_layer_is_the_model_output():
    torch.manual_seed(0)
    model = GPT(GPTConfig(d_vocab=11, n_ctx=8, d_model=16, n_layers=3, n_heads=2)).double().eval()
    t = torch.randint(0, 11, (2, 8))
    lens = logit_lens(model, t)
    assert lens.shape == (4, 2, 8, 11)
    assert_close(lens[-1], model(t), FLOAT64, name="lens after the last block vs logits")
    scores = lens_scores(model, t)
    manual = F.cross_entropy(model(t)[:, :-1].flatten(0, 1), t[:, 1:].flatten()).item()
    assert_close(scores["loss"][-1], manual, FLOAT64, name="last-layer lens loss")


def test_power_law_fit_recovers_known_exponent():
    x = np.array([1e3, 1e4, 1e5, 1e6])
    a, alpha = fit_power_law(x, 7.0 * x**-0.3)
    assert_close(np.array([a, alpha]), np.array([7.0, 0.3]), FLOAT64)
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2], [0, 1])


def test_scaling_sweep_short_run():
    tokenizer, tr, va = char_lm_data()
    rows = scaling_sweep([16, 32], tr, va, tokenizer.vocab_size, TrainConfig(batch_size=4, max_steps=2, eval_every=2, eval_batches=1))
    assert [r["d_model"] for r in rows] == [16, 32]
    assert rows[0]["n_params_non_embedding"] < rows[1]["n_params_non_embedding"]
    assert rows[1]["compute"] == 6 * rows[1]["n_params_non_embedding"] * rows[1]["tokens"]


def test_train_config_validation():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert_close(np.array([cfg.lr_at(0), cfg.lr_at(9), cfg.lr_at(10), cfg.lr_at(110)]), np.array([0.1, 1.0, 1.0, 0.1]), FLOAT64)


def test_scaling_recipe_short_run_reproduces_the_committed_start(tmp_path):
    from mechlearn.gpt import SCALING_WIDTHS, load_scaling, scaling_recipe

    committed = load_scaling()
    assert committed["widths"] == SCALING_WIDTHS and committed["seed"] == 0
    short = scaling_recipe(tmp_path, max_steps=2)
    for ours, theirs in zip(short["rows"], committed["rows"]):
        assert ours["n_params_non_embedding"] == theirs["n_params_non_embedding"]
        # Step 0 is evaluated before any update: the same seed must give the same initial losses.
        assert_close(ours["history"][0]["val_loss"], theirs["history"][0]["val_loss"], REPLAY, name=f"d_model={ours['d_model']} initial loss")
    assert committed["rows"][-1]["val_loss"] < committed["rows"][0]["val_loss"], "the widest model should end with the lowest loss"


def test_next_token_loss_refuses_an_empty_batch_and_mismatched_shapes():
    import torch

    from conftest import unchecked
    from mechlearn.gpt.training import next_token_loss

    with pytest.raises(ValueError, match="at least one target"):
        unchecked(next_token_loss)(torch.zeros(0, 4, 5), torch.zeros(0, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="disagree"):
        unchecked(next_token_loss)(torch.zeros(2, 4, 5), torch.zeros(2, 3, dtype=torch.long))
