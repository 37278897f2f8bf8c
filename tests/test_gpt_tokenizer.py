"""Day 23: tokenisers round-trip exactly, and our fast BPE trainer learns the same merges as the textbook loop."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mechlearn.gpt.tokenizer import (
    BPETokenizer, CharTokenizer, bytes_per_token, pretokenize, pydoc_text, train_val_split,
)


@pytest.fixture(scope="module")
def corpus() -> tuple[str, str]:
    return train_val_split(pydoc_text(), 0.1)


@pytest.fixture(scope="module")
def bpe(corpus) -> BPETokenizer:
    return BPETokenizer.train(corpus[0], 256)


def naive_bpe_merges(text: str, n_merges: int) -> list[tuple[int, int]]:
    """The textbook algorithm: recount every adjacent pair in every chunk, merge the most frequent, repeat."""
    words = [list(chunk.encode("utf-8")) for chunk in pretokenize(text)]
    merges = []
    for k in range(n_merges):
        counts = Counter(p for w in words for p in zip(w, w[1:]))
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        new_words = []
        for w in words:
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(256 + k)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words.append(out)
        words = new_words
    return merges


def test_fast_trainer_learns_the_textbook_merges(corpus):
    text = corpus[0][:40_000]
    assert BPETokenizer.train(text, 60).merges == naive_bpe_merges(text, 60)


def test_pretokenize_covers_every_character(corpus):
    assert "".join(pretokenize(corpus[1])) == corpus[1]


def test_round_trip_is_exact_on_held_out_text(corpus, bpe):
    assert bpe.decode(bpe.encode(corpus[1])) == corpus[1]
    chars = CharTokenizer(pydoc_text())
    assert chars.decode(chars.encode(corpus[1])) == corpus[1]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_bpe_round_trip_is_exact_on_any_string(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_more_merges_compress_more(corpus):
    ratios = [bytes_per_token(BPETokenizer.train(corpus[0], n), corpus[1]) for n in (0, 64, 256)]
    assert ratios[0] == 1.0  # no merges: one token per byte
    assert ratios[0] < ratios[1] < ratios[2]


def test_bad_input_is_a_clear_error():
    chars = CharTokenizer("abc")
    with pytest.raises(ValueError, match="character 'z' is not in this tokenizer's vocabulary of 3 characters"):
        chars.encode("abz")
    with pytest.raises(ValueError, match=r"token id 3 is out of range: ids should lie in \[0, 3\)"):
        chars.decode([0, 3])
    with pytest.raises(ValueError, match="token id 300"):
        BPETokenizer.train("hello hello", 2).decode([300])
    with pytest.raises(ValueError, match="n_merges"):
        BPETokenizer.train("hello", -1)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split("abc", 1.5)


def test_merges_read_back_from_json_work():
    import json

    bpe = BPETokenizer.train("the cat sat on the mat " * 20, 10)
    again = BPETokenizer(merges=json.loads(json.dumps(bpe.merges)))  # lists, not tuples
    assert again.encode("the mat") == bpe.encode("the mat")
    with pytest.raises(ValueError, match="does not exist yet"):
        BPETokenizer(merges=[(300, 1)])
