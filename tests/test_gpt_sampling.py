"""Days 28–29: samplers draw from the distribution they claim (χ²), and beam search is exact where it must be."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from conftest import unchecked

from mechlearn.gpt import GPT, GPTConfig, beam_search, generate, sample_next, sampling_probs, sequence_logprob
from mechlearn.testing import FLOAT64, assert_close

N_DRAWS = 40_000
P_MIN = 1e-4
"""A χ² test at this level rejects a correct sampler one time in 10,000; the seeds are fixed, so it is not flaky."""

LOGITS = torch.tensor([[2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0]], dtype=torch.float64)


def target(logits: np.ndarray, temperature=1.0, top_k=None, top_p=None) -> np.ndarray:
    """The intended distribution, computed independently in NumPy."""
    z = logits / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_k is not None:
        p = np.where(z >= np.sort(z)[-top_k], p, 0.0)
        p /= p.sum()
    if top_p is not None:
        order = np.argsort(-p, kind="stable")
        keep, total = np.zeros_like(p, dtype=bool), 0.0
        for i in order:  # add tokens in order of probability until their mass reaches top_p
            keep[i] = True
            total += p[i]
            if total >= top_p:
                break
        p = np.where(keep, p, 0.0)
        p /= p.sum()
    return p


def empirical(n_classes: int, previous: torch.Tensor | None = None, **knobs) -> np.ndarray:
    g = torch.Generator().manual_seed(0)
    previous = None if previous is None else previous.expand(N_DRAWS, -1)
    draws = sample_next(LOGITS.expand(N_DRAWS, -1), generator=g, previous=previous, **knobs)
    return np.bincount(draws.numpy(), minlength=n_classes)


@pytest.mark.parametrize("knobs", [
    {}, {"temperature": 0.5}, {"temperature": 2.0}, {"top_k": 3}, {"top_p": 0.7}, {"top_p": 0.95},
    {"top_k": 5, "temperature": 1.5},
])
def test_empirical_frequencies_match_the_target(knobs):
    p = target(LOGITS[0].numpy(), **knobs)
    counts = empirical(8, **knobs)
    support = p > 0
    assert counts[~support].sum() == 0, "a token outside the top-k / top-p set was sampled"
    result = chisquare(counts[support], p[support] * N_DRAWS)
    assert result.pvalue > P_MIN, f"χ² p = {result.pvalue:.2g} for {knobs}"
    assert_close(sampling_probs(LOGITS, **knobs)[0], p, FLOAT64, name=f"sampling_probs {knobs}")


PREVIOUS = torch.tensor([[0, 0, 1, 0, 3]])
"""Tokens already generated: id 0 three times, ids 1 and 3 once each."""


@pytest.mark.parametrize("knobs", [{"frequency_penalty": 0.75}, {"frequency_penalty": 0.5, "temperature": 1.5, "top_k": 5}])
def test_frequency_penalty_frequencies_match_the_target(knobs):
    counts_so_far = np.bincount(PREVIOUS[0].numpy(), minlength=8)
    shifted = LOGITS[0].numpy() - knobs["frequency_penalty"] * counts_so_far  # the penalty comes before the other knobs
    p = target(shifted, **{k: v for k, v in knobs.items() if k != "frequency_penalty"})
    counts = empirical(8, previous=PREVIOUS, **knobs)
    support = p > 0
    assert counts[~support].sum() == 0, "a token outside the top-k set was sampled"
    result = chisquare(counts[support], p[support] * N_DRAWS)
    assert result.pvalue > P_MIN, f"χ² p = {result.pvalue:.2g} for {knobs} with previous tokens {PREVIOUS.tolist()}"
    # And the penalty is visible: without it the same draws would be rejected.
    unpenalised = target(LOGITS[0].numpy(), **{k: v for k, v in knobs.items() if k != "frequency_penalty"})
    assert chisquare(counts[support], unpenalised[support] / unpenalised[support].sum() * N_DRAWS).pvalue < 1e-10


def test_the_chi_square_check_can_fail():
    """Sampling at T=1 must be rejected as a sample from the T=0.5 distribution."""
    counts = empirical(8)
    assert chisquare(counts, target(LOGITS[0].numpy(), temperature=0.5) * N_DRAWS).pvalue < 1e-10


def test_temperature_zero_is_greedy_and_frequency_penalty_subtracts_counts():
    assert torch.equal(sample_next(LOGITS, temperature=0.0), torch.tensor([0]))
    previous = torch.tensor([[0, 0, 1]])
    probs = sampling_probs(LOGITS, frequency_penalty=0.75, previous=previous)
    shifted = LOGITS[0].numpy() - 0.75 * np.array([2, 1, 0, 0, 0, 0, 0, 0])
    assert_close(probs[0], target(shifted), FLOAT64, name="frequency penalty")


def test_greedy_shortcut_picks_the_token_sampling_probs_puts_its_mass_on():
    """Greedy without a penalty skips `sampling_probs`; it must pick the same token, ties included."""
    logits = torch.randn(64, 11, generator=torch.Generator().manual_seed(3))
    logits[:8, 4] = logits[:8, 7] = logits[:8].max() + 1.0  # ties go to the lower id
    for x in (logits, logits.double()):
        assert torch.equal(sample_next(x, temperature=0.0), sampling_probs(x, temperature=0.0).argmax(dim=-1))
    previous = torch.randint(0, 11, (64, 5), generator=torch.Generator().manual_seed(4))
    penalised = sample_next(logits, temperature=0.0, frequency_penalty=2.0, previous=previous)
    assert torch.equal(penalised, sampling_probs(logits, 0.0, frequency_penalty=2.0, previous=previous).argmax(dim=-1))


def tiny_model(seed=0, d_vocab=5) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(d_vocab=d_vocab, n_ctx=12, d_model=16, n_layers=2, n_heads=2, init_range=0.5)).double()
    return model.eval()


def test_beam_width_one_is_greedy():
    model = tiny_model()
    prompt = torch.tensor([1, 2])
    greedy = generate(model, prompt[None], 6, temperature=0.0)[0]
    beam = beam_search(model, prompt, beam_width=1, max_new_tokens=6)[0]
    assert torch.equal(beam.tokens, greedy)


def test_beam_scores_are_true_log_probabilities_and_wide_beams_are_exhaustive():
    model = tiny_model(seed=1)
    prompt = torch.tensor([0, 3])
    beams = beam_search(model, prompt, beam_width=25, max_new_tokens=3)  # 25 = 5^2: every prefix survives
    for b in beams[:5]:
        assert_close(b.logprob, sequence_logprob(model, prompt, b.tokens[2:]), FLOAT64, name="beam score")
    scores = {seq: sequence_logprob(model, prompt, torch.tensor(seq)) for seq in itertools.product(range(5), repeat=3)}
    best = max(scores, key=scores.get)
    assert tuple(beams[0].tokens[2:].tolist()) == best
    greedy = beam_search(model, prompt, beam_width=1, max_new_tokens=3)[0]
    assert beams[0].logprob >= greedy.logprob


def test_cached_and_uncached_generation_agree():
    model = tiny_model(seed=2)
    prompt = torch.tensor([[1, 2, 3], [4, 0, 1]])
    a = generate(model, prompt, 8, generator=torch.Generator().manual_seed(5), use_cache=True)
    b = generate(model, prompt, 8, generator=torch.Generator().manual_seed(5), use_cache=False)
    assert torch.equal(a, b)


def test_bad_knobs_are_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="top_p should lie in"):
        sampling_probs(LOGITS, top_p=1.5)
    with pytest.raises(ValueError, match="temperature should be >= 0"):
        sampling_probs(LOGITS, temperature=-1.0)
    with pytest.raises(ValueError, match="exceeds n_ctx=12"):
        generate(model, torch.tensor([[1, 2]]), 11)
    assert generate(model, torch.tensor([[1, 2]]), 11, use_cache=False).shape == (1, 13)  # sliding window
    with pytest.raises(ValueError, match=r"one prompt of shape \(pos,\)"):
        unchecked(beam_search)(model, torch.tensor([[1, 2], [3, 4]]), 2, 2)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(model, torch.tensor([1]), 0, 2)
