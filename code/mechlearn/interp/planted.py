"""Transformers with hand-set weights whose circuits are known by construction.

A tool that finds circuits should first be tried where the answer is known. This module builds
two small `GPT` models by writing every weight by hand, so that exactly the *planted* heads do the
work and every other head is inert (a small random initialisation that attends roughly uniformly
and writes almost nothing). A detector, a composition score, an attribution or a patching
experiment run on them must name exactly the planted components, listed in `PLANTED_INDUCTION`
and `PLANTED_NAME_MOVER`.

`planted_induction_model`: a 2-layer attention-only model with a previous-token head in layer 0
and an induction head in layer 1 that reads it through K-composition (Elhage et al., 2021, "A
Mathematical Framework for Transformer Circuits"; Olsson et al., 2022, "In-context Learning and
Induction Heads"). On a random sequence repeated twice it predicts the second half almost
perfectly.

`planted_name_mover_model`: a 2-layer attention-only model that solves a small indirect object
identification task ("When Mary and John went to the store , John gave a drink to" -> Mary;
Wang et al., 2022). A layer-0 *name counter* averages the names seen so far into a "names seen"
subspace; the layer-1 *name mover* reads that average in its query, attends from the last
position to the name seen once (the indirect object, IO) rather than the one seen twice (the
subject, S), and copies it into the logits. `name_mover_prompts` builds clean prompts and
corrupted ones (the second S replaced by a third name, as ARENA's "ABC" prompts).

How the weights are written
---------------------------
The residual stream is cut into orthogonal subspaces (tokens, positions, previous token, ...),
each feature a row of a Sylvester-Hadamard matrix scaled to unit length. Those rows are
orthogonal *and* sum to zero, so LayerNorm's centring leaves the stream unchanged; each
LayerNorm's weight is set to the stream's planted norm over ``sqrt(d_model)``, so LayerNorm is the
identity on the planted stream (it only rescales slightly where a pattern is not one-hot).
A head that should attend to one key gets a score ``sharpness`` (20 by default) there and 0 at
the others, so the softmax puts all but about ``pos * exp(-20)`` of its weight on that key.

Follows ARENA 1.2 (induction heads, "Reverse-engineering induction circuits") and ARENA 1.4.1
(the IOI circuit), where the circuits are found in trained models; here they are planted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.gpt.config import GPTConfig
from mechlearn.gpt.model import GPT

__all__ = [
    "PLANTED_INDUCTION", "PLANTED_NAME_MOVER", "NAME_MOVER_NAMES", "NAME_MOVER_VOCAB", "NAME_MOVER_TEMPLATE",
    "hadamard_directions", "planted_induction_model", "planted_name_mover_model", "NameMoverPrompts",
    "name_mover_prompts",
]

PLANTED_INDUCTION: dict[str, tuple[int, int]] = {"previous_token": (0, 2), "induction": (1, 1)}
"""The planted heads of `planted_induction_model`, as ``(layer, head)``; every other head is inert.

The two heads sit at different head indices so that a table of per-head scores read with its
axes swapped, or a head index mixed up between layers, names the wrong heads."""

PLANTED_NAME_MOVER: dict[str, tuple[int, int]] = {"name_counter": (0, 1), "name_mover": (1, 2)}
"""The planted heads of `planted_name_mover_model`, as ``(layer, head)``; every other head is inert.

Only the name mover writes to the logits (direct logit attribution names it alone); the name
counter feeds its query (ablating either one destroys the logit difference)."""

NAME_MOVER_NAMES: tuple[str, ...] = ("Mary", "John", "Alice", "Bob", "Tom", "Anna", "Sue", "Dan")
"""The names of the name-mover task; their token ids are ``0 .. len(NAME_MOVER_NAMES) - 1``."""

NAME_MOVER_TEMPLATE: tuple[str, ...] = (
    "When", "{A}", "and", "{B}", "went", "to", "the", "store", ",", "{C}", "gave", "a", "drink", "to",
)
"""The one prompt template, one token per entry: ``{A}`` and ``{B}`` are the two names, ``{C}`` the
second mention of the subject (clean) or a third name (corrupted). The answer follows the last ``to``."""

NAME_MOVER_VOCAB: tuple[str, ...] = NAME_MOVER_NAMES + (
    "When", "and", "went", "to", "the", "store", ",", "gave", "a", "drink",
)
"""Token strings of the name-mover model, indexed by token id (names first)."""


def hadamard_directions(d_model: int, dtype: torch.dtype = torch.float64) -> Float[Tensor, "n d_model"]:
    """``d_model - 1`` orthonormal directions of the residual stream, each summing to zero.

    Rows ``1 ..`` of the Sylvester-Hadamard matrix of size ``d_model`` (entries ``±1``) divided by
    ``sqrt(d_model)``; row 0 (all ones) is left out, so every direction has mean zero and
    LayerNorm's centring leaves any combination of them unchanged.

    Raises:
        ValueError: ``d_model`` is not a power of two >= 2.
    """
    if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 2 or d_model & (d_model - 1):
        raise ValueError(f"d_model should be a power of two >= 2 (Sylvester-Hadamard directions), got {d_model!r}")
    H = torch.ones(1, 1, dtype=dtype)
    while H.shape[0] < d_model:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H[1:] / math.sqrt(d_model)


def _take(directions: Tensor, sizes: dict[str, int], d_model: int) -> dict[str, Tensor]:
    """Consecutive blocks of ``directions``, one per named subspace."""
    need = sum(sizes.values())
    if need > directions.shape[0]:
        detail = " + ".join(f"{n} {k}" for k, n in sizes.items())
        raise ValueError(
            f"d_model={d_model} gives {directions.shape[0]} orthogonal directions, but {detail} = {need} "
            "are needed: pass a larger power of two"
        )
    blocks, start = {}, 0
    for name, n in sizes.items():
        blocks[name] = directions[start : start + n]
        start += n
    return blocks


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} should be an int >= {low}, got {value!r}")
    return value


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} should be a positive finite number, got {value!r}")
    return float(value)


def _inert_model(cfg: GPTConfig, noise: float | int, seed: int, dtype: torch.dtype) -> GPT:
    """A model whose every weight is zero except the attention maps, drawn ``N(0, noise²)`` from ``seed``."""
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise should be a finite number >= 0, got {noise!r}")
    model = GPT(cfg).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for block in model.blocks:
            for W in (block.attn.W_Q, block.attn.W_K, block.attn.W_V, block.attn.W_O):
                W.copy_(torch.randn(W.shape, generator=generator, dtype=torch.float64).to(dtype) * noise)
    return model


def _plant(block_attn: torch.nn.Module, head: int) -> dict[str, Tensor]:
    """Zero one head's maps and biases and return views of them to write into."""
    a = block_attn
    with torch.no_grad():
        for W in (a.W_Q, a.W_K, a.W_V, a.W_O, a.b_Q, a.b_K, a.b_V):
            W[head].zero_()
    return {"W_Q": a.W_Q[head], "W_K": a.W_K[head], "W_V": a.W_V[head], "W_O": a.W_O[head], "b_Q": a.b_Q[head]}


def _set_layer_norm(ln: torch.nn.Module, planted_norm: float, d_model: int) -> None:
    """Weight ``sqrt(planted_norm² / d_model + eps)``: LayerNorm is the identity on a centred stream of that norm."""
    with torch.no_grad():
        ln.w.fill_(math.sqrt(planted_norm**2 / d_model + ln.eps))
        ln.b.zero_()


def planted_induction_model(
    d_vocab: int = 64,
    n_ctx: int = 48,
    d_model: int = 256,
    n_heads: int = 3,
    sharpness: float | int = 20.0,
    noise: float | int = 0.02,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> GPT:
    """A 2-layer attention-only `GPT` with a planted previous-token head and induction head.

    Residual stream subspaces (unit directions from `hadamard_directions`): ``tok[t]`` for the token
    (``d_vocab``), ``pos[p]`` for the position (``n_ctx``), ``prev[t]`` for the previous token
    (``d_vocab``) and ``out[t]`` for the prediction (``d_vocab``). The weights:

    * embeddings: ``W_E[t] = tok[t]``, ``W_pos[p] = pos[p]``;
    * previous-token head ``PLANTED_INDUCTION["previous_token"]`` (layer 0): query column ``p`` reads
      ``pos[p]``, key column ``p`` reads ``pos[p - 1]``, so the score is ``sharpness`` at key ``p - 1``
      and 0 elsewhere (position 0 can only attend to itself); OV maps ``tok[t]`` to ``prev[t]``;
    * induction head ``PLANTED_INDUCTION["induction"]`` (layer 1): query column ``t`` reads ``tok[t]``,
      key column ``t`` reads ``prev[t]`` (K-composition with the previous-token head), so it attends
      to every position whose *previous* token is the current token; one more query/key column
      (query bias, key reading ``pos[0]``) scores key 0 at ``-sharpness``, since position 0's
      ``prev`` holds its own token, not a previous one. OV maps ``tok[t]`` to ``out[t]``;
    * unembedding: ``W_U`` maps ``out[t]`` to ``sharpness`` times the logit of ``t``; every bias is 0;
    * every other head: ``W_Q, W_K, W_V, W_O`` drawn ``N(0, noise²)`` from ``seed``.

    Args:
        d_vocab, n_ctx, d_model, n_heads: the sizes (``d_model`` a power of two with at least
            ``3 d_vocab + n_ctx`` directions; ``n_heads >= 3``). ``d_head`` is ``max(n_ctx, d_vocab + 1)``.
        sharpness: the attention score gap, and the logit of the copied token.
        noise: standard deviation of the inert heads' weights (0 makes them exactly zero).
        seed: seeds the inert heads' weights.
        dtype: of the parameters (float64 by default, for exact comparisons).

    Returns:
        The model in eval mode.
    """
    for name, value, low in (("d_vocab", d_vocab, 2), ("n_ctx", n_ctx, 2), ("n_heads", n_heads, 3)):
        _check_int(name, value, low)
    sharpness = _check_positive("sharpness", sharpness)
    with torch.no_grad():
        return _induction_weights(d_vocab, n_ctx, d_model, n_heads, sharpness, noise, seed, dtype)


def _induction_weights(
    d_vocab: int, n_ctx: int, d_model: int, n_heads: int, sharpness: float, noise: float | int, seed: int,
    dtype: torch.dtype,
) -> GPT:
    d_head = max(n_ctx, d_vocab + 1)
    sub = _take(hadamard_directions(d_model, dtype),
                {"tok": d_vocab, "pos": n_ctx, "prev": d_vocab, "out": d_vocab}, d_model)
    cfg = GPTConfig(d_vocab=d_vocab, n_ctx=n_ctx, d_model=d_model, n_layers=2, n_heads=n_heads, d_head=d_head,
                    attn_only=True)
    model = _inert_model(cfg, noise, seed, dtype)
    model.embed.W_E.copy_(sub["tok"])
    model.pos_embed.W_pos.copy_(sub["pos"])
    # score = q·k / sqrt(d_head): each side carries sqrt(sharpness · sqrt(d_head)) so a match scores `sharpness`.
    g = math.sqrt(sharpness * math.sqrt(d_head))

    layer, head = PLANTED_INDUCTION["previous_token"]
    P = _plant(model.blocks[layer].attn, head)
    P["W_Q"][:, :n_ctx] = g * sub["pos"].T
    P["W_K"][:, 1:n_ctx] = g * sub["pos"][:-1].T  # key column p reads position p - 1
    P["W_V"][:, :d_vocab] = sub["tok"].T
    P["W_O"][:d_vocab] = sub["prev"]

    layer, head = PLANTED_INDUCTION["induction"]
    I = _plant(model.blocks[layer].attn, head)  # noqa: E741
    I["W_Q"][:, :d_vocab] = g * sub["tok"].T
    I["W_K"][:, :d_vocab] = g * sub["prev"].T
    I["b_Q"][d_vocab] = g
    I["W_K"][:, d_vocab] = -g * sub["pos"][0]  # key 0 has no previous token
    I["W_V"][:, :d_vocab] = sub["tok"].T
    I["W_O"][:d_vocab] = sub["out"]

    model.unembed.W_U.copy_(sharpness * sub["out"].T)
    # Planted norms: tok + pos (layer 0), + prev (layer 1), + out (final), each of unit length.
    for ln, norm in ((model.blocks[0].ln1, math.sqrt(2)), (model.blocks[1].ln1, math.sqrt(3)),
                     (model.ln_final, 2.0)):
        _set_layer_norm(ln, norm, d_model)
    return model.eval()


_SEEN_SCALE = 0.1
"""Length of the name counter's output: small, so the stream's norm (and LayerNorm's scale) barely
depends on which names were seen."""


def planted_name_mover_model(
    d_model: int = 64,
    n_heads: int = 3,
    n_ctx: int = 16,
    sharpness: float | int = 20.0,
    noise: float | int = 0.02,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> GPT:
    """A 2-layer attention-only `GPT` with a planted name counter and name mover, on `NAME_MOVER_VOCAB`.

    Residual stream subspaces (unit directions from `hadamard_directions`): ``tok[t]`` per token,
    ``pos[p]`` per position, ``seen[n]`` and ``out[n]`` per name. The weights:

    * embeddings: ``W_E[t] = tok[t]``, ``W_pos[p] = pos[p]``;
    * name counter ``PLANTED_NAME_MOVER["name_counter"]`` (layer 0): a query bias and a key that
      reads "is a name" (the sum of the name directions ``tok[n]``) score every name ``sharpness``
      and every other token 0, so each position attends equally to the names before it; OV maps
      ``tok[n]`` to ``0.1 · seen[n]``. At the last position of a clean prompt the stream holds
      ``0.1 · (IO + 2 S) / 3`` in ``seen``: the subject counts twice;
    * name mover ``PLANTED_NAME_MOVER["name_mover"]`` (layer 1): query column ``n`` reads ``-seen[n]``
      and key column ``n`` reads ``tok[n]``; one more column (query bias, key "is a name") adds a
      constant for names. A name seen once scores ``sharpness``, a name seen twice 0, a non-name
      0, so from the last position it attends to the indirect object; OV maps ``tok[n]`` to
      ``out[n]``;
    * unembedding: ``W_U`` maps ``out[n]`` to ``sharpness`` times the logit of name ``n``; every bias is 0;
    * every other head: ``W_Q, W_K, W_V, W_O`` drawn ``N(0, noise²)`` from ``seed``.

    Args:
        d_model: a power of two with at least ``d_vocab + n_ctx + 2 · len(NAME_MOVER_NAMES)`` directions.
        n_heads: heads per layer, at least 3. ``d_head`` is ``len(NAME_MOVER_NAMES) + 1``.
        n_ctx: at least ``len(NAME_MOVER_TEMPLATE)``.
        sharpness: the attention score gap, and the logit of the copied name.
        noise: standard deviation of the inert heads' weights (0 makes them exactly zero).
        seed: seeds the inert heads' weights.
        dtype: of the parameters (float64 by default).

    Returns:
        The model in eval mode.
    """
    _check_int("n_heads", n_heads, 3)
    _check_int("n_ctx", n_ctx, len(NAME_MOVER_TEMPLATE))
    sharpness = _check_positive("sharpness", sharpness)
    with torch.no_grad():
        return _name_mover_weights(d_model, n_heads, n_ctx, sharpness, noise, seed, dtype)


def _name_mover_weights(
    d_model: int, n_heads: int, n_ctx: int, sharpness: float, noise: float | int, seed: int, dtype: torch.dtype
) -> GPT:
    n_names, d_vocab = len(NAME_MOVER_NAMES), len(NAME_MOVER_VOCAB)
    d_head = n_names + 1
    sub = _take(hadamard_directions(d_model, dtype),
                {"tok": d_vocab, "pos": n_ctx, "seen": n_names, "out": n_names}, d_model)
    cfg = GPTConfig(d_vocab=d_vocab, n_ctx=n_ctx, d_model=d_model, n_layers=2, n_heads=n_heads, d_head=d_head,
                    attn_only=True)
    model = _inert_model(cfg, noise, seed, dtype)
    model.embed.W_E.copy_(sub["tok"])
    model.pos_embed.W_pos.copy_(sub["pos"])
    names = sub["tok"][:n_names]
    is_name = names.sum(0)
    g = math.sqrt(sharpness * math.sqrt(d_head))

    layer, head = PLANTED_NAME_MOVER["name_counter"]
    C = _plant(model.blocks[layer].attn, head)
    C["b_Q"][0] = g
    C["W_K"][:, 0] = g * is_name
    C["W_V"][:, :n_names] = names.T
    C["W_O"][:n_names] = _SEEN_SCALE * sub["seen"]

    # A name seen k times out of 3 has seen-component 0.1 k / 3; the query weight -lam makes its score
    # mu - lam · 0.1 k / 3, which is `sharpness` for k = 1 (IO) and 0 for k = 2 (S) with these values.
    # A key side of g scores q·g / sqrt(d_head) = q · sharpness / g, so a query of `score · g / sharpness`
    # gives `score`.
    lam = 3 * sharpness / _SEEN_SCALE
    layer, head = PLANTED_NAME_MOVER["name_mover"]
    M = _plant(model.blocks[layer].attn, head)
    M["W_Q"][:, :n_names] = -(lam * g / sharpness) * sub["seen"].T
    M["W_K"][:, :n_names] = g * names.T
    M["b_Q"][n_names] = 2 * g
    M["W_K"][:, n_names] = g * is_name
    M["W_V"][:, :n_names] = names.T
    M["W_O"][:n_names] = sub["out"]

    model.unembed.W_U[:, :n_names] = sharpness * sub["out"].T
    # Planted norms at the last position of a clean prompt: tok + pos, + seen (0.1 · |IO + 2 S| / 3), + out.
    seen2 = _SEEN_SCALE**2 * 5 / 9
    for ln, norm in ((model.blocks[0].ln1, math.sqrt(2)), (model.blocks[1].ln1, math.sqrt(2 + seen2)),
                     (model.ln_final, math.sqrt(3 + seen2))):
        _set_layer_norm(ln, norm, d_model)
    return model.eval()


@dataclass(frozen=True)
class NameMoverPrompts:
    """Clean and corrupted prompts of the name-mover task, all ``len(NAME_MOVER_TEMPLATE)`` tokens long."""

    clean: Int[Tensor, "batch pos"]
    """``When A and B went to the store , S gave a drink to``, with S one of A, B (half each: ABBA / BABA)."""
    corrupted: Int[Tensor, "batch pos"]
    """The same prompts with the second S replaced by a third name (ARENA's "ABC" prompts)."""
    io: Int[Tensor, " batch"]
    """Token id of the indirect object (the correct answer)."""
    s: Int[Tensor, " batch"]
    """Token id of the subject (the wrong answer)."""
    io_pos: Int[Tensor, " batch"]
    """Position of the indirect object (1 or 3)."""
    s1_pos: Int[Tensor, " batch"]
    """Position of the subject's first mention (3 or 1)."""
    s2_pos: int
    """Position of the subject's second mention (9)."""
    end_pos: int
    """Position of the last token, where the answer is predicted (13)."""

    def logit_diff(self, logits: Float[Tensor, "batch pos d_vocab"]) -> Float[Tensor, ""]:
        """Mean over the batch of ``logit(IO) - logit(S)`` at the last position."""
        if logits.ndim != 3 or logits.shape[0] != self.io.shape[0]:
            raise ValueError(
                f"logits should have shape (batch={self.io.shape[0]}, pos, d_vocab), got {tuple(logits.shape)}"
            )
        last = logits[:, -1]
        rows = torch.arange(last.shape[0])
        return (last[rows, self.io] - last[rows, self.s]).mean()

    def strings(self, index: int = 0, corrupted: bool = False) -> list[str]:
        """The token strings of one prompt (for plot labels)."""
        tokens = (self.corrupted if corrupted else self.clean)[index]
        return [NAME_MOVER_VOCAB[int(t)] for t in tokens]


def name_mover_prompts(n_prompts: int, generator: torch.Generator) -> NameMoverPrompts:
    """``n_prompts`` random prompts of `NAME_MOVER_TEMPLATE`, alternately ABBA and BABA.

    Args:
        n_prompts: the batch size, at least 1.
        generator: draws the three distinct names of each prompt (IO, S and the corrupting name).
    """
    _check_int("n_prompts", n_prompts, 1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator should be a torch.Generator, got {type(generator).__name__}")
    n_names = len(NAME_MOVER_NAMES)
    ids = {w: NAME_MOVER_VOCAB.index(w) for w in NAME_MOVER_TEMPLATE if not w.startswith("{")}
    three = torch.stack([torch.randperm(n_names, generator=generator)[:3] for _ in range(n_prompts)])
    io, s, third = three.unbind(1)
    abba = torch.arange(n_prompts) % 2 == 0
    a, b = torch.where(abba, io, s), torch.where(abba, s, io)
    clean, corrupted = [], []
    for slot in NAME_MOVER_TEMPLATE:
        if slot in ("{A}", "{B}"):
            column = a if slot == "{A}" else b
            clean.append(column), corrupted.append(column)
        elif slot == "{C}":
            clean.append(s), corrupted.append(third)
        else:
            fixed = torch.full((n_prompts,), ids[slot])
            clean.append(fixed), corrupted.append(fixed)
    slots = list(NAME_MOVER_TEMPLATE)
    pos_a, pos_b = slots.index("{A}"), slots.index("{B}")
    return NameMoverPrompts(
        clean=torch.stack(clean, 1), corrupted=torch.stack(corrupted, 1), io=io, s=s,
        io_pos=torch.where(abba, pos_a, pos_b), s1_pos=torch.where(abba, pos_b, pos_a),
        s2_pos=slots.index("{C}"), end_pos=len(slots) - 1,
    )
