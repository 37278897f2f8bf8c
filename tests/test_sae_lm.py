"""mechlearn.sae.lm: SAEs on the char-LM's residual stream: splicing, CE loss recovered, recipes, checkpoints.

References: hand-made SAEs whose reconstruction is known exactly (the identity, built as
``ReLU(x) − ReLU(−x)`` from a real `StandardSAE`, and the zero map), TransformerLens's own
``run_with_hooks`` on a bridge of the same weights with the reconstruction written out by hand, the
cross-entropy written out with ``log_softmax``, and a fresh evaluation of the committed checkpoints.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interp_models import random_gpt

from mechlearn.sae.lm import (
    CHAR_LM_HOOK, D_SAE, EVAL_SEQUENCES, LM_CHECKPOINT_DIR, SEQ_LEN, TARGETS, ce_loss_recovered,
    char_lm_activations, char_lm_eval_tokens, char_lm_sae_recipe, char_lm_tokens, evaluate_lm_sae, frontier_figure,
    frontier_recipe, load_char_lm_sae, load_frontier, meets_targets, run_with_sae, zero_ablated_logits,
)
from mechlearn.interp.core import run_with_cache
from mechlearn.sae.standard import StandardSAE
from mechlearn.sae.training import ARCHITECTURES
from mechlearn.testing import EXACT, FLOAT64, REPLAY, assert_close

HOOK = "blocks.1.hook_resid_pre"
D_MODEL, VOCAB = 16, 23
FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def small_model():
    """A float64 2-layer GPT with MLPs and weights far from init, so every layer matters."""
    return random_gpt(seed=3, attn_only=False, d_vocab=VOCAB, n_ctx=12, d_model=D_MODEL, n_layers=2, n_heads=2)


def tokens(batch: int = 3, pos: int = 10, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, pos), generator=torch.Generator().manual_seed(seed))


def identity_sae(d: int = D_MODEL) -> StandardSAE:
    """A real StandardSAE with 2d latents ``[ReLU(x), ReLU(−x)]`` decoded as ``ReLU(x) − ReLU(−x) = x`` exactly."""
    sae = StandardSAE(d, 2 * d, l1_coefficient=0.0).double()
    eye = torch.eye(d, dtype=torch.float64)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def zero_sae(d: int = D_MODEL) -> StandardSAE:
    sae = StandardSAE(d, 8, l1_coefficient=0.0).double()
    with torch.no_grad():
        sae.W_dec.zero_()
        sae.b_dec.zero_()
    return sae


def random_sae(d: int = D_MODEL, d_sae: int = 24, seed: int = 0) -> StandardSAE:
    sae = StandardSAE(d, d_sae, l1_coefficient=1.0, generator=torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        for p in sae.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return sae


def test_the_identity_sae_leaves_the_logits_exactly_clean_and_a_scaled_one_does_not():
    model, toks = small_model(), tokens()
    clean = model(toks)
    assert_close(run_with_sae(model, identity_sae(), toks, HOOK), clean, EXACT, name="identity splice")
    scaled = identity_sae()
    with torch.no_grad():
        scaled.W_dec.mul_(1.01)
    assert (run_with_sae(model, scaled, toks, HOOK) - clean).abs().max() > 1e-4, "a 1 % error must show in the logits"


def test_the_zero_sae_is_zero_ablation_written_by_hand():
    model, toks = small_model(), tokens()

    def zero(act, hook):
        return act * 0.0

    by_hand = model.run_with_hooks(toks, fwd_hooks=[(HOOK, zero)])
    assert_close(run_with_sae(model, zero_sae(), toks, HOOK), by_hand, EXACT, name="zero splice")
    assert_close(zero_ablated_logits(model, toks, HOOK), by_hand, EXACT, name="zero_ablated_logits")
    assert (by_hand - model(toks)).abs().max() > 1e-3, "zeroing the residual stream must change the logits"


def test_splicing_matches_transformer_lens_with_the_reconstruction_written_out():
    from mechlearn.gpt.interop import to_transformer_lens

    model, toks, sae = small_model(), tokens(seed=4), random_sae()
    bridge = to_transformer_lens(model)

    def reconstruct(act, hook):
        f = torch.relu(torch.einsum("bpd,ds->bps", act - sae.b_dec, sae.W_enc) + sae.b_enc)
        return torch.einsum("bps,sd->bpd", f, sae.W_dec) + sae.b_dec

    with torch.no_grad():
        reference = bridge.run_with_hooks(toks, fwd_hooks=[(HOOK, reconstruct)])
        ours = run_with_sae(model, sae, toks, HOOK)
        assert_close(ours, reference, FLOAT64, name="our GPT + run_with_sae vs TransformerLens hooks")
        assert_close(run_with_sae(bridge, sae, toks, HOOK), reference, FLOAT64, name="run_with_sae on the bridge")
        assert_close(char_lm_activations(bridge, toks, HOOK), char_lm_activations(model, toks, HOOK), FLOAT64,
                     name="activations, bridge vs ours")
        assert (ours - bridge(toks)).abs().max() > 1e-3, "the random SAE must change the logits"


def test_keeping_the_error_term_gives_the_clean_logits_and_gradients_through_the_latents():
    model, toks, sae = small_model(), tokens(), random_sae()
    assert_close(run_with_sae(model, sae, toks, HOOK, keep_error=True), model(toks), FLOAT64, name="with error term")
    assert (run_with_sae(model, sae, toks, HOOK) - model(toks)).abs().max() > 1e-3
    run_with_sae(model, sae, toks, HOOK, keep_error=True)[:, -1].sum().backward()
    assert sae.W_enc.grad is not None and sae.W_enc.grad.abs().sum() > 0


def _ce_by_hand(logits: torch.Tensor, toks: torch.Tensor) -> float:
    logp = torch.log_softmax(logits.detach()[:, :-1], dim=-1)
    return float(-logp.gather(-1, toks[:, 1:, None]).mean())


def test_ce_loss_recovered_closed_forms():
    model, toks = small_model(), tokens(batch=4)
    ident = ce_loss_recovered(model, identity_sae(), toks, HOOK)
    assert_close(ident["clean"], _ce_by_hand(model(toks), toks), FLOAT64, name="clean CE by hand")
    zero_logits = model.run_with_hooks(toks, fwd_hooks=[(HOOK, lambda a, hook: a * 0.0)])
    assert_close(ident["zero_ablated"], _ce_by_hand(zero_logits, toks), FLOAT64, name="zero-ablated CE by hand")
    assert_close(ident["spliced"], ident["clean"], EXACT, name="identity spliced = clean")
    assert_close(ident["recovered"], 1.0, EXACT, name="identity recovers 100 %")
    zero = ce_loss_recovered(model, zero_sae(), toks, HOOK)
    assert_close(zero["recovered"], 0.0, EXACT, name="zero SAE recovers 0 %")
    sae = random_sae()
    spliced = _ce_by_hand(run_with_sae(model, sae, toks, HOOK), toks)
    partial = ce_loss_recovered(model, sae, toks, HOOK)
    expected = (ident["zero_ablated"] - spliced) / (ident["zero_ablated"] - ident["clean"])
    assert_close(partial["recovered"], expected, FLOAT64, name="recovered fraction by hand")
    assert abs(partial["recovered"] - 1.0) > 1e-3


def test_activations_are_the_cache_s_flattened_in_chunks():
    model, toks = small_model(), tokens(batch=5)
    _, cache = run_with_cache(model, toks, names_filter=HOOK)
    acts = char_lm_activations(model, toks, HOOK)
    assert_close(acts, cache[HOOK].reshape(-1, D_MODEL), EXACT, name="activations = cache")
    _, cache = model.run_with_cache(toks)  # every hook cached: the attention takes another code path
    chunked = char_lm_activations(model, toks, HOOK, batch_size=2)  # other batch shapes round differently
    assert_close(chunked, cache[HOOK].reshape(-1, D_MODEL), FLOAT64, name="activations in chunks = cache")
    assert not torch.equal(acts, cache["blocks.0.hook_resid_pre"].reshape(-1, D_MODEL))


def test_token_windows_are_reproducible_and_come_from_the_split():
    from mechlearn.gpt.training import char_lm_data

    _, train_ids, val_ids = char_lm_data()
    a = char_lm_tokens(4, torch.Generator().manual_seed(5), split="validation", seq_len=20)
    b = char_lm_tokens(4, torch.Generator().manual_seed(5), split="validation", seq_len=20)
    assert a.shape == (4, 20) and torch.equal(a, b)
    text = "," + ",".join(map(str, val_ids.tolist())) + ","
    for row in a:
        assert "," + ",".join(map(str, row.tolist())) + "," in text, "each window is a contiguous slice of the split"
    assert char_lm_eval_tokens().shape == (EVAL_SEQUENCES, SEQ_LEN)
    assert torch.equal(char_lm_eval_tokens(), char_lm_eval_tokens())
    assert not torch.equal(char_lm_tokens(4, torch.Generator().manual_seed(5), split="train", seq_len=20), a)


def test_bad_hooks_widths_and_architectures_are_named():
    model, toks = small_model(), tokens()
    with pytest.raises(KeyError, match="no hook point"):
        run_with_sae(model, identity_sae(), toks, "blocks.9.hook_resid_pre")
    with pytest.raises(KeyError, match="no hook point"):
        char_lm_activations(model, toks, "blocks.1.hook_resid_pree")
    with pytest.raises(ValueError, match="d_in=12"):
        run_with_sae(model, identity_sae(12), toks, HOOK)
    with pytest.raises(ValueError, match="d_in=16.*width 64"):
        ce_loss_recovered(model, identity_sae(), toks, "blocks.0.mlp.hook_post")
    with pytest.raises(ValueError, match="expected one of"):
        load_char_lm_sae("relu")
    with pytest.raises(ValueError, match="at least 2 positions"):
        ce_loss_recovered(model, identity_sae(), toks[:, :1], HOOK)
    with pytest.raises(ValueError, match="split"):
        char_lm_tokens(2, torch.Generator(), split="test")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sae_quick")
    torch.manual_seed(0)
    return out, char_lm_sae_recipe(out, quick=True, progress=False)


def test_the_quick_recipe_writes_manifests_and_the_loader_checks_them(quick_run):
    from mechlearn._recipes import sha256_file

    out, summary = quick_run
    assert sorted(summary["metrics"]) == sorted(ARCHITECTURES)
    for arch in ARCHITECTURES:
        manifest = json.loads((out / f"sae_{arch}.json").read_text())
        assert manifest["sha256"] == sha256_file(out / f"sae_{arch}.pt")
        assert manifest["config"]["architecture"] == arch and manifest["hook"] == CHAR_LM_HOOK
        for key in ("seed", "steps", "seconds", "metrics", "training"):
            assert key in manifest
        sae, loaded = load_char_lm_sae(arch, out)
        assert loaded == manifest and sae.d_sae == D_SAE and sae.architecture == arch
    path = out / "sae_standard.pt"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="sha256"):
        load_char_lm_sae("standard", out)
    with pytest.raises(FileNotFoundError, match="python -m mechlearn.sae char_lm"):
        load_char_lm_sae("topk", out / "missing")


def test_the_quick_frontier_and_its_figure(tmp_path):
    result = frontier_recipe(tmp_path, quick=True, progress=False)
    assert load_frontier(tmp_path) == json.loads(json.dumps(result))
    assert {p["architecture"] for p in result["points"]} == set(ARCHITECTURES)
    fig = frontier_figure(result)
    assert [t.name for t in fig.data] == list(ARCHITECTURES)
    for trace in fig.data:
        pts = sorted((p for p in result["points"] if p["architecture"] == trace.name), key=lambda p: p["l0"])
        assert list(trace.x) == [p["l0"] for p in pts] and list(trace.y) == [p["ce_loss_recovered"] for p in pts]
    with pytest.raises(ValueError, match="points"):
        frontier_figure({"points": []})
    with pytest.raises(FileNotFoundError, match="mechlearn.sae frontier"):
        load_frontier(tmp_path / "nothing")


@pytest.fixture(scope="module")
def char_lm():
    from mechlearn.gpt import load_char_lm

    return load_char_lm()[0]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_committed_checkpoints_reproduce_their_manifest_metrics(arch, char_lm):
    sae, manifest = load_char_lm_sae(arch)
    assert manifest["hook"] == CHAR_LM_HOOK and sae.d_in == 128 and sae.d_sae == D_SAE
    assert manifest["eval"]["n_sequences"] == EVAL_SEQUENCES
    metrics = evaluate_lm_sae(char_lm, sae, char_lm_eval_tokens(), CHAR_LM_HOOK)
    for key, value in manifest["metrics"].items():
        assert_close(metrics[key], value, REPLAY, name=f"{arch} {key}")
    assert manifest["met"] == meets_targets(manifest["metrics"])


def test_the_committed_frontier_covers_every_architecture():
    result = load_frontier()
    assert {p["architecture"] for p in result["points"]} == set(ARCHITECTURES)
    assert result["targets"] == TARGETS and not result["quick"]


def test_meets_targets_reads_each_target():
    good = {"fve": 0.95, "l0": 20.0, "ce_loss_recovered": 0.97, "dead_fraction": 0.0}
    assert meets_targets(good)["all"]
    for key, bad in (("fve", 0.85), ("l0", 40.0), ("ce_loss_recovered", 0.5), ("dead_fraction", 0.2)):
        assert not meets_targets(good | {key: bad})[key]


@FUZZ
@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.sampled_from(["TopK", "standard ", "relu"])))
def test_fuzz_unknown_architectures_are_refused(architecture):
    with pytest.raises(ValueError, match="expected one of"):
        unchecked(load_char_lm_sae)(architecture)


@FUZZ
@given(st.text(min_size=1, max_size=30).filter(lambda s: not s.startswith(("blocks.", "hook_", "ln_final", "unembed"))))
def test_fuzz_unknown_hook_names_are_refused(name):
    with pytest.raises(KeyError, match="no hook point"):
        unchecked(run_with_sae)(small_model(), identity_sae(), tokens(), name)


@FUZZ
@given(st.one_of(st.integers(-3, 0), st.floats(allow_nan=True), st.booleans(), st.just("3")),
       st.sampled_from(["n_sequences", "seq_len"]))
def test_fuzz_bad_window_counts_and_lengths_are_refused(value, which):
    kwargs = {"n_sequences": 2, "seq_len": 8} | {which: value}
    with pytest.raises(ValueError, match="positive int"):
        unchecked(char_lm_tokens)(kwargs["n_sequences"], torch.Generator(), "validation", kwargs["seq_len"])


@FUZZ
@given(st.integers(1, 40).filter(lambda d: d != D_MODEL))
def test_fuzz_an_sae_of_the_wrong_width_is_refused(d_in):
    with pytest.raises(ValueError, match=f"d_in={d_in}"):
        unchecked(ce_loss_recovered)(small_model(), identity_sae(d_in), tokens(), HOOK)


def test_the_targets_are_the_issue_s():
    assert TARGETS == {"fve": 0.9, "l0": 32.0, "ce_loss_recovered": 0.9, "dead_fraction": 0.05}
