"""mechlearn.interp.planted: hand-set transformers whose circuits are known by construction.

First the models are checked to do what their docstrings say (attention one-hot on the intended
diagonal, induction loss, the name mover's logit difference) and to give TransformerLens's logits
on the same weights. Then every interpretability method of `mechlearn.interp` is run on them and
must name exactly the planted heads (`PLANTED_INDUCTION`, `PLANTED_NAME_MOVER`).
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechlearn.interp.core import model_spec, run_with_cache
from mechlearn.interp.planted import (
    NAME_MOVER_NAMES, NAME_MOVER_TEMPLATE, NAME_MOVER_VOCAB, PLANTED_INDUCTION, PLANTED_NAME_MOVER,
    hadamard_directions, name_mover_prompts, planted_induction_model, planted_name_mover_model,
)
from mechlearn.testing import FLOAT64, Tolerance, assert_close

HALF = 20
"""Length of the random half of the repeated sequences (the model's n_ctx is 48)."""

ONE_HOT_LEAK = Tolerance("ONE_HOT_LEAK", 0.0, 1e-6)
"""A planted pattern puts all but about ``pos · exp(-sharpness)`` (1e-7 here) on its intended keys."""

FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def induction_model():
    return planted_induction_model()


@pytest.fixture(scope="module")
def name_mover_model():
    return planted_name_mover_model()


@pytest.fixture(scope="module")
def induction_bridge(induction_model):
    interop = pytest.importorskip("mechlearn.gpt.interop")
    pytest.importorskip("transformer_lens")
    return interop.to_transformer_lens(induction_model)


def repeated(batch: int, d_vocab: int, seed: int, distinct: bool) -> torch.Tensor:
    """A random half then the same half again; ``distinct``: no token twice in a half (no ambiguity)."""
    g = torch.Generator().manual_seed(seed)
    if distinct:
        half = torch.stack([torch.randperm(d_vocab, generator=g)[:HALF] for _ in range(batch)])
    else:
        half = torch.randint(0, d_vocab, (batch, HALF), generator=g)
    return torch.cat([half, half], dim=1)


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per-position cross-entropy ``(batch, pos - 1)`` of predicting token ``i + 1`` at position ``i``."""
    logprobs = logits[:, :-1].log_softmax(-1)
    return -logprobs.gather(-1, tokens[:, 1:, None])[..., 0]


# -- the models do what they are built to do ------------------------------------------------------


def test_hadamard_directions_are_orthonormal_and_centred():
    D = hadamard_directions(64)
    assert D.shape == (63, 64)
    assert_close(D @ D.T, torch.eye(63, dtype=torch.float64), FLOAT64, name="orthonormal")
    assert_close(D.sum(1), torch.zeros(63, dtype=torch.float64), FLOAT64, name="each sums to zero")
    with pytest.raises(ValueError, match="power of two"):
        hadamard_directions(48)


def test_previous_token_head_attends_one_hot_to_the_previous_position(induction_model):
    tokens = repeated(8, induction_model.cfg.d_vocab, seed=0, distinct=False)
    _, cache = run_with_cache(induction_model, tokens)
    layer, head = PLANTED_INDUCTION["previous_token"]
    pattern = cache["pattern", layer][:, head]
    assert pattern.diagonal(-1, -2, -1).min() > 1 - 1e-6
    for other in set(range(3)) - {head}:  # inert heads: close to uniform, nowhere near one-hot
        assert cache["pattern", layer][:, other, 1:].max() < 0.6


def test_induction_head_attends_to_the_token_after_the_earlier_copy(induction_model):
    tokens = repeated(8, induction_model.cfg.d_vocab, seed=1, distinct=True)
    logits, cache = run_with_cache(induction_model, tokens)
    layer, head = PLANTED_INDUCTION["induction"]
    # Query HALF + i (second copy of token i) attends to key i + 1: the diagonal at offset -(HALF - 1).
    induction_stripe = cache["pattern", layer][:, head].diagonal(-(HALF - 1), -2, -1)[:, 1:]
    assert induction_stripe.min() > 1 - 1e-6
    loss = next_token_loss(logits, tokens)
    assert loss[:, HALF:].max() < 1e-5, "the second half should be predicted almost surely"
    assert loss[:, : HALF - 1].mean() > math.log(induction_model.cfg.d_vocab), "the first half is unpredictable"


def test_induction_loss_on_random_repeats_is_far_below_uniform(induction_model):
    d_vocab = induction_model.cfg.d_vocab
    tokens = repeated(16, d_vocab, seed=2, distinct=False)  # tokens may repeat within a half
    loss = next_token_loss(induction_model(tokens), tokens)[:, HALF:].mean()
    assert loss < 0.3 * math.log(d_vocab), f"second-half loss {loss:.3f} vs ln(d_vocab) = {math.log(d_vocab):.3f}"


def test_removing_the_planted_heads_breaks_induction(induction_model):
    """The previous checks can fail: without either planted head the second half is not predicted."""
    tokens = repeated(8, induction_model.cfg.d_vocab, seed=3, distinct=True)
    for role, (layer, head) in PLANTED_INDUCTION.items():
        broken = planted_induction_model()
        with torch.no_grad():
            broken.blocks[layer].attn.W_O[head].zero_()
        loss = next_token_loss(broken(tokens), tokens)[:, HALF:].mean()
        assert loss > 1.0, f"zeroing the {role} head left the second-half loss at {loss:.3g}"


def test_name_mover_attends_to_the_indirect_object_and_copies_it(name_mover_model):
    prompts = name_mover_prompts(16, torch.Generator().manual_seed(0))
    logits, cache = run_with_cache(name_mover_model, prompts.clean)
    layer, head = PLANTED_NAME_MOVER["name_mover"]
    end = cache["pattern", layer][:, head, prompts.end_pos]
    rows = torch.arange(16)
    assert end[rows, prompts.io_pos].min() > 1 - 1e-6
    counter_layer, counter_head = PLANTED_NAME_MOVER["name_counter"]
    counter = cache["pattern", counter_layer][:, counter_head, prompts.end_pos]
    for where in (prompts.io_pos, prompts.s1_pos, torch.full((16,), prompts.s2_pos)):
        assert_close(counter[rows, where], torch.full((16,), 1 / 3, dtype=torch.float64),
                     ONE_HOT_LEAK, name="the counter splits over the names")
    clean = prompts.logit_diff(logits)
    corrupted = prompts.logit_diff(name_mover_model(prompts.corrupted))
    assert 19.0 < clean < 20.5, f"clean logit difference {clean:.3f}, expected about sharpness = 20"
    assert abs(corrupted) < 0.05 * clean, f"corrupted (ABC) logit difference {corrupted:.3f} should be about 0"
    assert (logits[:, -1].argmax(-1) == prompts.io).all()


def test_name_mover_prompts_follow_the_template():
    prompts = name_mover_prompts(6, torch.Generator().manual_seed(4))
    assert prompts.clean.shape == prompts.corrupted.shape == (6, len(NAME_MOVER_TEMPLATE))
    rows = torch.arange(6)
    assert (prompts.clean[rows, prompts.io_pos] == prompts.io).all()
    assert (prompts.clean[rows, prompts.s1_pos] == prompts.s).all()
    assert (prompts.clean[:, prompts.s2_pos] == prompts.s).all()
    third = prompts.corrupted[:, prompts.s2_pos]
    assert ((third != prompts.io) & (third != prompts.s) & (third < len(NAME_MOVER_NAMES))).all()
    differ = (prompts.clean != prompts.corrupted).sum(1)
    assert (differ == 1).all(), "a corrupted prompt differs from its clean prompt in the S2 token only"
    assert set(prompts.io_pos.tolist()) == {1, 3}, "ABBA and BABA both appear"
    words = prompts.strings(0)
    assert words[-1] == "to" and words[prompts.s2_pos] == NAME_MOVER_VOCAB[int(prompts.s[0])]


@pytest.mark.parametrize("build", [planted_induction_model, planted_name_mover_model])
def test_logits_equal_transformer_lens_on_the_same_weights(build):
    interop = pytest.importorskip("mechlearn.gpt.interop")
    pytest.importorskip("transformer_lens")
    model = build()
    bridge = interop.to_transformer_lens(model)
    if build is planted_induction_model:
        tokens = repeated(4, model.cfg.d_vocab, seed=5, distinct=False)
    else:
        tokens = name_mover_prompts(4, torch.Generator().manual_seed(5)).clean
    assert model_spec(bridge).n_heads == model_spec(model).n_heads
    assert_close(model(tokens), bridge(tokens), FLOAT64, name=f"{build.__name__} logits vs TransformerLens")
    _, ours = run_with_cache(model, tokens)
    _, theirs = run_with_cache(bridge, tokens)
    for layer in range(2):
        assert_close(ours["pattern", layer], theirs["pattern", layer], FLOAT64, name=f"pattern {layer}")


def test_noise_zero_makes_the_inert_heads_exactly_silent():
    model = planted_induction_model(noise=0)
    tokens = repeated(2, model.cfg.d_vocab, seed=6, distinct=True)
    _, cache = run_with_cache(model, tokens)
    planted = set(PLANTED_INDUCTION.values())
    for layer in range(2):
        for head in range(3):
            if (layer, head) not in planted:
                assert (cache["z", layer][:, :, head] == 0).all()
    seeded = [planted_induction_model(seed=s).blocks[0].attn.W_Q[0] for s in (0, 0, 1)]
    assert torch.equal(seeded[0], seeded[1]) and not torch.equal(seeded[0], seeded[2])


# -- bad input --------------------------------------------------------------------------------------


def test_bad_arguments_are_refused_with_a_message():
    with pytest.raises(ValueError, match="directions"):
        unchecked(planted_induction_model)(d_vocab=64, n_ctx=48, d_model=128)
    with pytest.raises(ValueError, match="n_heads should be an int >= 3"):
        unchecked(planted_induction_model)(n_heads=2)
    with pytest.raises(ValueError, match="sharpness should be a positive"):
        unchecked(planted_name_mover_model)(sharpness=-1.0)
    with pytest.raises(ValueError, match="n_ctx should be an int >= 14"):
        unchecked(planted_name_mover_model)(n_ctx=10)
    with pytest.raises(ValueError, match="noise should be"):
        unchecked(planted_name_mover_model)(noise=float("nan"))
    with pytest.raises(TypeError, match="torch.Generator"):
        unchecked(name_mover_prompts)(3, 0)
    prompts = name_mover_prompts(3, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="logits should have shape"):
        prompts.logit_diff(torch.zeros(2, 14, len(NAME_MOVER_VOCAB)))


@FUZZ
@given(d_model=st.integers(-3, 300), n=st.integers(-2, 3))
def test_fuzz_sizes_give_a_model_or_a_clear_error(d_model, n):
    try:
        model = unchecked(planted_name_mover_model)(d_model=d_model, n_heads=3 + n)
    except ValueError as err:
        assert re.search(r"should|needed", str(err)), str(err)
    else:
        assert model.cfg.d_model == d_model and model.cfg.n_heads == 3 + n


# -- every method names exactly the planted heads ----------------------------------------------------
#
# Each tool is run on a model whose circuit is known by construction. The margins are wide: a planted
# head scores about 1 (attention), 3 (loss) or 20 (logit difference), an inert head about 0.1, 0.005
# and 0.05, so a threshold halfway cannot be met by luck, and a transposed table, an off-by-one layer
# or head index, or a tool that returns the same value everywhere names the wrong heads.

INDUCTION_HEADS = set(PLANTED_INDUCTION.values())
NAME_MOVER_HEADS = set(PLANTED_NAME_MOVER.values())
COUNTER, MOVER = PLANTED_NAME_MOVER["name_counter"], PLANTED_NAME_MOVER["name_mover"]


def named(scores: torch.Tensor, threshold: float) -> set[tuple[int, int]]:
    """The heads of a ``(n_layers, n_heads)`` table whose magnitude exceeds ``threshold``."""
    assert scores.shape == (2, 3), f"expected a (n_layers, n_heads) = (2, 3) table, got {tuple(scores.shape)}"
    return {(int(layer), int(head)) for layer, head in (scores.abs() > threshold).nonzero().tolist()}


@pytest.fixture(scope="module")
def repeats(induction_model):
    induction = pytest.importorskip("mechlearn.interp.induction")
    return induction.repeated_random_tokens(16, HALF, induction_model.cfg.d_vocab, torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def prompts():
    return name_mover_prompts(16, torch.Generator().manual_seed(0))


def second_half_loss(tokens: torch.Tensor):
    def metric(logits: torch.Tensor) -> torch.Tensor:
        return next_token_loss(logits, tokens)[:, HALF:].mean()
    return metric


def test_detectors_name_exactly_the_planted_heads(induction_model, induction_bridge, repeats):
    detectors = pytest.importorskip("mechlearn.interp.detectors")
    for model in (induction_model, induction_bridge):
        prev = detectors.previous_token_scores(model, repeats)
        assert detectors.heads_above(prev, 0.5) == [PLANTED_INDUCTION["previous_token"]], prev
        induction = detectors.induction_scores(model, repeats)
        assert detectors.heads_above(induction, 0.5) == [PLANTED_INDUCTION["induction"]], induction
        for score in (detectors.current_token_scores, detectors.first_token_scores):
            table = score(model, repeats)
            assert detectors.heads_above(table, 0.5) == [], f"{score.__name__} names a head: {table}"
        assert prev[PLANTED_INDUCTION["previous_token"]] > 1 - 1e-6


def test_k_composition_singles_out_the_planted_pair(induction_model):
    circuits = pytest.importorskip("mechlearn.interp.circuits")
    (l0, h0), (l1, h1) = PLANTED_INDUCTION["previous_token"], PLANTED_INDUCTION["induction"]
    scores = {kind: circuits.composition_scores(induction_model, kind) for kind in "qkv"}
    baseline = circuits.random_composition_baseline(induction_model, 60, generator=torch.Generator().manual_seed(0))
    k = scores["k"]
    top = tuple(int(i) for i in torch.unravel_index(k.argmax(), k.shape))
    assert top == (l0, h0, l1, h1), f"the largest K-composition score is at {top}"
    above = (k > baseline.mean + 10 * baseline.std).nonzero().tolist()
    assert above == [[l0, h0, l1, h1]], f"pairs far above the random baseline: {above}"
    # The previous-token head writes only to the subspace the induction head's keys read.
    assert scores["q"][l0, h0, l1, h1] < 1e-12 and scores["v"][l0, h0, l1, h1] < 1e-12
    assert k[l0, h0, l1, h1] > 1.5 * baseline.mean


def test_direct_logit_attribution_names_only_the_heads_that_write_the_answer(
    induction_model, name_mover_model, repeats, prompts
):
    decompose = pytest.importorskip("mechlearn.interp.decompose")
    attribution = pytest.importorskip("mechlearn.interp.attribution")
    # Induction: the logit of the correct next token over the second half comes from the induction head.
    _, cache = run_with_cache(induction_model, repeats)
    second_half = slice(HALF, -1)
    stack, labels = decompose.stack_head_results(induction_model, cache, pos_slice=second_half)
    dla = attribution.direct_logit_attribution(induction_model, cache, stack, repeats[:, HALF + 1 :], None,
                                               pos_slice=second_half)
    assert named(dla.view(2, 3), 1.0) == {PLANTED_INDUCTION["induction"]}, dict(zip(labels, dla.tolist()))
    # Name mover: logit(IO) - logit(S) comes from the name mover alone; the counter writes no logit.
    _, cache = run_with_cache(name_mover_model, prompts.clean)
    stack, labels = decompose.stack_head_results(name_mover_model, cache, pos_slice=-1)
    dla = attribution.direct_logit_attribution(name_mover_model, cache, stack, prompts.io, prompts.s, pos_slice=-1)
    assert named(dla.view(2, 3), 1.0) == {MOVER}, dict(zip(labels, dla.tolist()))
    assert dla.view(2, 3)[MOVER] > 19.0


def test_ablation_names_exactly_the_planted_heads(induction_model, name_mover_model, repeats, prompts):
    ablation = pytest.importorskip("mechlearn.interp.ablation")
    for method in ("zero", "mean"):
        loss_up = ablation.head_ablation_scores(induction_model, repeats, second_half_loss(repeats), method)
        assert named(loss_up, 1.0) == INDUCTION_HEADS, (method, loss_up)
        assert (loss_up.flatten()[[2, 4]] > 1.0).all(), "ablating a planted head raises the loss"
    for method, reference in (("zero", None), ("mean", None), ("resample", prompts.corrupted)):
        drop = ablation.head_ablation_scores(name_mover_model, prompts.clean, prompts.logit_diff, method,
                                             reference_tokens=reference)
        # Both planted heads are necessary: the counter feeds the mover's query.
        assert named(drop, 5.0) == NAME_MOVER_HEADS, (method, drop)
        assert drop[MOVER] < -15.0


def test_activation_patching_names_the_name_mover_as_sufficient_and_both_heads_as_necessary(
    name_mover_model, prompts
):
    patching = pytest.importorskip("mechlearn.interp.patching")
    model, clean, corrupted, metric = name_mover_model, prompts.clean, prompts.corrupted, prompts.logit_diff
    clean_value, corrupted_value = patching.patching_baselines(model, clean, corrupted, metric)
    # Denoising (run ABC, patch in clean): only the mover's clean output restores the answer. The
    # counter's clean output alone does not: the mover then attends to the name seen once in the
    # corrupted prompt, the third name C.
    restored = patching.normalise_patching(
        patching.activation_patch_heads(model, clean, corrupted, metric), clean_value, corrupted_value)
    assert named(restored, 0.5) == {MOVER}, restored
    by_pos = patching.normalise_patching(
        patching.activation_patch_heads(model, clean, corrupted, metric, by_pos=True), clean_value, corrupted_value)
    where = (by_pos.abs() > 0.5).nonzero().tolist()
    assert where == [[MOVER[0], prompts.end_pos, MOVER[1]]], f"sites that restore the answer: {where}"
    # Noising (run clean, patch in ABC): both planted heads are necessary, no other head matters.
    kept = patching.normalise_patching(
        patching.activation_patch_heads(model, clean, corrupted, metric, direction="noising"),
        clean_value, corrupted_value)
    assert named(kept - 1.0, 0.5) == NAME_MOVER_HEADS, kept
    # Residual stream: what distinguishes the prompts enters at S2 and is moved to END by layer 1.
    resid = patching.normalise_patching(
        patching.activation_patch_resid(model, clean, corrupted, metric), clean_value, corrupted_value)
    assert (resid[0].abs() > 0.5).nonzero().flatten().tolist() == [prompts.s2_pos], resid


def test_path_patching_names_the_counter_to_mover_query_path(name_mover_model, prompts):
    patching = pytest.importorskip("mechlearn.interp.patching")
    model, clean, corrupted, metric = name_mover_model, prompts.clean, prompts.corrupted, prompts.logit_diff
    clean_value, _ = patching.patching_baselines(model, clean, corrupted, metric)
    via = {i: patching.path_patch_heads(model, clean, corrupted, metric, receivers=[MOVER], receiver_input=i)
           - clean_value for i in "qkv"}
    assert named(via["q"], 5.0) == {COUNTER}, via["q"]
    assert named(via["k"], 0.05) == set() and named(via["v"], 0.05) == set(), "keys and values read only tokens"
    direct = patching.path_patch_heads(model, clean, corrupted, metric, receivers=None) - clean_value
    assert named(direct, 5.0) == {MOVER}, direct
    single = patching.path_patch(model, clean, corrupted, metric, senders=[COUNTER], receivers=[MOVER])
    assert_close(single, via["q"][COUNTER] + clean_value, FLOAT64, name="path_patch = the sweep's entry")


def test_attribution_patching_ranks_the_planted_heads_first_but_is_only_linear(name_mover_model, prompts):
    patching = pytest.importorskip("mechlearn.interp.patching")
    model, clean, corrupted, metric = name_mover_model, prompts.clean, prompts.corrupted, prompts.logit_diff
    _, corrupted_value = patching.patching_baselines(model, clean, corrupted, metric)
    estimate = patching.attribution_patch_heads(model, clean, corrupted, metric) - corrupted_value
    actual = patching.activation_patch_heads(model, clean, corrupted, metric) - corrupted_value
    assert named(estimate, 5.0) == NAME_MOVER_HEADS, estimate
    assert (estimate[MOVER] - actual[MOVER]).abs() < 0.15 * actual[MOVER], "nearly linear path: close"
    # The counter acts through the mover's softmax: the linear estimate is far off (activation
    # patching gives ~0 there), which is why attribution patching is a map of where to look.
    assert actual[COUNTER].abs() < 1.0 and estimate[COUNTER] > 50.0


def test_qk_and_ov_circuits_show_the_planted_mechanisms(induction_model):
    circuits = pytest.importorskip("mechlearn.interp.circuits")
    prev, induction = PLANTED_INDUCTION["previous_token"], PLANTED_INDUCTION["induction"]
    # The previous-token head attends by position alone: its positional pattern is the sub-diagonal.
    positional = circuits.pos_attention_pattern(induction_model, *prev)
    assert positional.diagonal(-1).min() > 1 - 1e-6
    # Only the induction head copies: its full OV circuit W_E W_OV W_U is a multiple of the identity.
    copying = circuits.copying_scores(induction_model)
    assert named(copying, 0.5) == {induction}, copying
    full_ov = circuits.full_ov_circuit(induction_model, *induction).AB
    assert_close(full_ov, 20.0 * torch.eye(induction_model.cfg.d_vocab, dtype=torch.float64), FLOAT64,
                 name="induction head's full OV circuit = sharpness * identity")
    # K-composition, token by token: a query holding token a scores keys whose previous token is a.
    full_k = circuits.full_k_composition_circuit(induction_model, prev, induction).AB
    assert (full_k.argmax(dim=-1) == torch.arange(induction_model.cfg.d_vocab)).all()
    off_diagonal = full_k - torch.diag(full_k.diagonal())
    assert off_diagonal.abs().max() < 1e-9 * full_k.diagonal().min()


def test_each_method_gives_the_same_table_on_the_transformer_lens_bridge(name_mover_model, prompts):
    """Every tool takes a bridge too: on the same weights it must name the same heads, to float64 rounding."""
    interop = pytest.importorskip("mechlearn.gpt.interop")
    pytest.importorskip("transformer_lens")
    decompose = pytest.importorskip("mechlearn.interp.decompose")
    attribution = pytest.importorskip("mechlearn.interp.attribution")
    ablation = pytest.importorskip("mechlearn.interp.ablation")
    patching = pytest.importorskip("mechlearn.interp.patching")
    bridge = interop.to_transformer_lens(name_mover_model)
    clean, corrupted, metric = prompts.clean, prompts.corrupted, prompts.logit_diff

    def dla(model):
        _, cache = run_with_cache(model, clean)
        stack, _ = decompose.stack_head_results(model, cache, pos_slice=-1)
        return attribution.direct_logit_attribution(model, cache, stack, prompts.io, prompts.s).view(2, 3)

    tables = {
        "direct logit attribution": dla,
        "zero ablation": lambda m: ablation.head_ablation_scores(m, clean, metric, "zero"),
        "activation patching": lambda m: patching.activation_patch_heads(m, clean, corrupted, metric),
        "path patching to the mover's query": lambda m: patching.path_patch_heads(
            m, clean, corrupted, metric, receivers=[MOVER]),
        "attribution patching": lambda m: patching.attribution_patch_heads(m, clean, corrupted, metric),
    }
    for name, table in tables.items():
        assert_close(table(name_mover_model).detach(), table(bridge).detach(), FLOAT64, name=name)
