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
