"""Tokenisers: characters, and a small byte-pair encoder trained on Python's own documentation.

A language model sees integers, not text. The simplest map gives each distinct character an
id (`CharTokenizer`): a tiny vocabulary, but long sequences. Byte-pair encoding (Sennrich et
al., 2016; GPT-2's byte-level variant) starts from the 256 byte values and repeatedly merges
the most frequent adjacent pair into a new token, so common words become single tokens and
sequences get shorter, while any string (any language, any emoji) still encodes exactly,
because every byte is in the base vocabulary.

As GPT-2 does, text is first split into word-like chunks (a leading space stays attached to
the word) and merges never cross a chunk boundary; counting pairs over *distinct* chunks,
weighted by frequency, makes training fast enough for a page.

The corpus is CPython's ``pydoc_data.topics``: the help text of the language reference. Each
Python release ships its own version of it, so the package carries the text of CPython 3.11.7
(``data/pydoc_topics.txt.gz``, PSF licence; see ``data/README.md``): every interpreter reads the
same bytes, and nothing is downloaded.

Follows ARENA 1.1 (tokenisation) and Karpathy's ``minbpe``.
"""

from __future__ import annotations

import gzip
import operator
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["pydoc_text", "train_val_split", "CharTokenizer", "BPETokenizer", "pretokenize", "bytes_per_token"]

_CHUNK = re.compile(r"""'(?:s|t|re|ve|m|ll|d)| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")


PYDOC_CORPUS = Path(__file__).parent / "data" / "pydoc_topics.txt.gz"
"""CPython 3.11.7's ``pydoc_data.topics`` values, sorted by key and joined by blank lines (UTF-8, gzip)."""


def pydoc_text() -> str:
    """The shipped corpus: CPython 3.11.7's help topics (``pydoc_data.topics``), joined in sorted-key order.

    The same text on every Python version (the running interpreter's own ``pydoc_data`` is not read).
    """
    return gzip.decompress(PYDOC_CORPUS.read_bytes()).decode("utf-8")


def train_val_split(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """Split ``text`` into a leading training part and a trailing validation part."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction should lie strictly between 0 and 1, got {val_fraction}")
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


def pretokenize(text: str) -> list[str]:
    """Split text into GPT-2-style chunks (words with their leading space, numbers, punctuation, spaces).

    The chunks concatenate back to ``text`` exactly.
    """
    return _CHUNK.findall(text)


class CharTokenizer:
    """One id per distinct character of the training text, in sorted order."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer needs a non-empty training string")
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        """The number of distinct characters, hence of token ids."""
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Ids for each character; a character not seen in training raises ``ValueError``."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        try:
            return [self.stoi[c] for c in text]
        except KeyError as err:
            raise ValueError(
                f"character {err.args[0]!r} is not in this tokenizer's vocabulary of {self.vocab_size} characters"
            ) from None

    def decode(self, ids: list[int]) -> str:
        """The string of the given ids; an id outside ``[0, vocab_size)`` raises ``ValueError``."""
        out = []
        for i in _token_ids(ids):
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is out of range: ids should lie in [0, {self.vocab_size})")
            out.append(self.chars[i])
        return "".join(out)


@dataclass
class BPETokenizer:
    """A byte-level BPE: ids 0–255 are bytes, id ``256 + k`` is the ``k``-th learned merge."""

    merges: list[tuple[int, int] | list[int]] = field(default_factory=list)
    """Learned merges in order: ``merges[k] = (left, right)`` made token ``256 + k`` (pairs as lists are accepted)."""
    merge_counts: list[int] = field(default_factory=list)
    """How often each merged pair occurred in the training text when it was merged."""

    def __post_init__(self) -> None:
        self.merges = [(int(a), int(b)) for a, b in self.merges]  # tuples, also when read back from JSON
        for k, (a, b) in enumerate(self.merges):
            if not (0 <= a < 256 + k and 0 <= b < 256 + k):
                raise ValueError(f"merge {k} = ({a}, {b}) refers to a token that does not exist yet (ids < {256 + k})")
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        for k, (a, b) in enumerate(self.merges):
            self.vocab[256 + k] = self.vocab[a] + self.vocab[b]
        self._rank = {pair: k for k, pair in enumerate(self.merges)}
        self._chunk_cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        """256 byte tokens plus one per learned merge."""
        return 256 + len(self.merges)

    @classmethod
    def train(cls, text: str, n_merges: int) -> "BPETokenizer":
        """Learn ``n_merges`` merges from ``text``; ties go to the smallest pair of ids (deterministic)."""
        if not isinstance(n_merges, int) or n_merges < 0:
            raise ValueError(f"n_merges should be a non-negative int, got {n_merges!r}")
        chunk_freq = Counter(pretokenize(text))
        words = [list(chunk.encode("utf-8")) for chunk in chunk_freq]
        freqs = list(chunk_freq.values())
        pair_count: Counter[tuple[int, int]] = Counter()
        where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
        for w, (ids, f) in enumerate(zip(words, freqs)):
            for pair in zip(ids, ids[1:]):
                pair_count[pair] += f
                where[pair].add(w)
        merges, counts = [], []
        for k in range(n_merges):
            if not pair_count:
                break
            best = min(pair_count, key=lambda p: (-pair_count[p], p))
            new = 256 + k
            merges.append(best)
            counts.append(pair_count[best])
            for w in sorted(where.pop(best, ())):
                ids, f = words[w], freqs[w]
                for pair in zip(ids, ids[1:]):  # take this word's old pairs out...
                    pair_count[pair] -= f
                    if pair_count[pair] <= 0:
                        del pair_count[pair]
                merged = _merge(ids, best, new)
                words[w] = merged
                for pair in zip(merged, merged[1:]):  # ...and put its new pairs in
                    pair_count[pair] += f
                    where[pair].add(w)
            pair_count.pop(best, None)
        return cls(merges=merges, merge_counts=counts)

    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self._chunk_cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        while len(ids) > 1:
            # Apply the earliest-learned merge present, as training did.
            pair = min(zip(ids, ids[1:]), key=lambda p: self._rank.get(p, len(self._rank)))
            if pair not in self._rank:
                break
            ids = _merge(ids, pair, 256 + self._rank[pair])
        self._chunk_cache[chunk] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; exact for any string."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        return [i for chunk in pretokenize(text) for i in self._encode_chunk(chunk)]

    def decode(self, ids: list[int]) -> str:
        """The string of the given ids (invalid UTF-8 from a partial sequence is shown as U+FFFD)."""
        try:
            raw = b"".join(self.vocab[i] for i in _token_ids(ids))
        except KeyError as err:
            raise ValueError(f"token id {err.args[0]} is out of range: ids should lie in [0, {self.vocab_size})") from None
        return raw.decode("utf-8", errors="replace")

    def token_str(self, i: int) -> str:
        """A readable form of one token, e.g. ``' the'``."""
        return self.vocab[int(i)].decode("utf-8", errors="replace")


def _token_ids(ids: object) -> list[int]:
    """``ids`` as a list of Python ints; a non-integer id (``1.5``, a float tensor, a string) raises ``TypeError``.

    Truncating ``1.7`` to ``1`` would decode a different token without a word, so it is refused.
    """
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"decode expects a sequence of integer token ids, got {type(ids).__name__}")
    out = []
    for i in ids:
        try:
            out.append(operator.index(i))  # int, NumPy integer, or a one-element integer tensor
        except TypeError:
            raise TypeError(
                f"token ids should be integers, got {i!r} ({type(i).__name__}); "
                "cast whole-number ids with .long() (torch) or .astype(int) (NumPy)"
            ) from None
    return out


def _merge(ids: list[int], pair: tuple[int, int], new: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` (left to right) by ``new``."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def bytes_per_token(tokenizer: CharTokenizer | BPETokenizer, text: str) -> float:
    """Compression ratio: UTF-8 bytes of ``text`` per token."""
    return len(text.encode("utf-8")) / max(1, len(tokenizer.encode(text)))
