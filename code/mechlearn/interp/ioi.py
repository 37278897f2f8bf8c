"""A synthetic indirect-object-identification (IOI) task and a small language model trained on it.

Wang et al. (2022, "Interpretability in the Wild") found the circuit GPT-2 small uses to complete

    When Mary and John went to the store, John gave a drink to  ->  " Mary"

The answer is the *indirect object* (IO), the name that appears once; the *subject* (S) appears
twice (S1, then S2). ARENA 1.4.1 reproduces the circuit with TransformerLens. Here nothing can be
downloaded, so this module builds the task from scratch and trains a small transformer on it:

* a word-level vocabulary and `IOITokenizer` (templates' words, names, places, objects, filler words);
* `TEMPLATES`: ARENA's templates rewritten word by word, each in its BABA and ABBA order, so every
  prompt of one template has the same length and the same positions for IO, S1, S2 and END;
* `ioi_batch`: clean prompts with their *ABC* corruption (all three name slots replaced by fresh,
  distinct names, as ARENA's ``gen_flipped_prompts("ABB->XYZ, BAB->XYZ")``), answer ids and positions,
  as an `IOIBatch`;
* `filler_sentence`: simple sentences from the same vocabulary, so the model is a language model
  that also does IOI, not an IOI classifier;
* `ioi_recipe`: trains the model (our `GPT`, with MLPs) and writes ``ioi.pt`` and its manifest;
  `load_ioi_model` loads the committed one; `ioi_logit_diff` and `ioi_metric` give the logit
  difference ``logit(IO) - logit(S)`` at END, the metric of the paper.

Names are split into `TRAIN_NAMES` and `HELD_OUT_NAMES`. Held-out names never appear in an IOI
prompt during training; they appear only in the filler sentences, the way GPT-2 met names in web
text before anyone asked it an IOI question. A model that only memorised "after these words answer
Mary" fails on them; one that found the non-repeated name succeeds.

Training is next-token prediction on every position of rows that start with ``<bos>`` and one IOI
sentence (prompt, answer, ``.``) and continue with filler sentences; the answer position is one
target among many, so the loss there is weighted up (`IOITrainConfig.answer_weight`).
"""

from __future__ import annotations

import difflib
import time
from functools import partial
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mechlearn._recipes import recipe_output_dir, write_manifest
from mechlearn.gpt.config import GPTConfig
from mechlearn.gpt.model import GPT
from mechlearn.interp.ablation import ablation_values
from mechlearn.interp.core import check_head, hook_name, load_recipe_manifest, model_spec, run_with_hooks

__all__ = [
    "NAMES", "TRAIN_NAMES", "HELD_OUT_NAMES", "PLACES", "OBJECTS", "TEMPLATES", "IOITemplate", "IOITokenizer",
    "IOI_TOKENIZER", "IOIBatch", "ioi_batch", "filler_sentence", "training_rows", "IOI_CONFIG", "IOITrainConfig",
    "IOI_TRAIN", "ioi_training_stream", "train_ioi", "ioi_evaluate", "ioi_logit_diff", "ioi_metric", "ioi_accuracy", "IOICircuit", "ioi_circuit_logits", "ioi_faithfulness",
    "ioi_recipe", "load_ioi_model",
]

NAMES: tuple[str, ...] = (
    "Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Anna", "Sarah",
    "Kate", "Paul", "Lisa", "Mark", "Rose", "Adam", "Emma", "Jack", "Alex", "Ben",
    "Claire", "David", "Eric", "Grace", "Henry", "Ivy", "Jane", "Karl", "Laura", "Mike",
    "Nina", "Oscar", "Peter", "Ruth", "Sam", "Tim", "Victor", "Will", "Zoe", "Lucy",
)
"""Every name, one word (one token) each."""

HELD_OUT_NAMES: tuple[str, ...] = NAMES[4::5]
"""Names that never appear in a training IOI prompt (every fifth name): the test of generalisation."""

TRAIN_NAMES: tuple[str, ...] = tuple(n for n in NAMES if n not in HELD_OUT_NAMES)
"""Names used in the training IOI prompts."""

_SPLITS = {"train": TRAIN_NAMES, "held_out": HELD_OUT_NAMES}

PLACES: tuple[str, ...] = ("store", "garden", "restaurant", "school", "hospital", "office", "house", "station")
"""Places for the ``[PLACE]`` slot."""

OBJECTS: tuple[str, ...] = ("ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack")
"""Objects for the ``[OBJECT]`` slot."""

_BASE_TEMPLATES = (
    "Then , [B] and [A] went to the [PLACE] . [B] gave a [OBJECT] to",
    "Then , [B] and [A] had a lot of fun at the [PLACE] . [B] gave a [OBJECT] to",
    "Then , [B] and [A] were working at the [PLACE] . [B] decided to give a [OBJECT] to",
    "After [B] and [A] went to the [PLACE] , [B] gave a [OBJECT] to",
    "When [B] and [A] got a [OBJECT] at the [PLACE] , [B] decided to give it to",
    "While [B] and [A] were commuting to the [PLACE] , [B] gave a [OBJECT] to",
)

_FILLER_TEMPLATES = (
    "[N] went to the [PLACE] .",
    "The [OBJECT] was at the [PLACE] .",
    "[N] liked the [OBJECT] .",
    "[N] and [M] were friends .",
    "[N] gave a [OBJECT] to [M] .",
    "[N] was at the [PLACE] . Then [N] went home .",
    "[N] saw [M] at the [PLACE] and said hello .",
    "[N] had a lot of fun with the [OBJECT] .",
    "After the lunch , [N] was happy .",
    "[N] met [M] . [M] liked [N] .",
)

_EXTRA_WORDS = ("<bos>", "home", "hello", "happy", "liked", "was", "friends", "saw", "said", "with", "met",
                "lunch", "The")


@dataclass(frozen=True)
class IOITemplate:
    """One IOI template: its words with ``[A]`` (the IO), ``[B]`` (the subject), ``[PLACE]``, ``[OBJECT]``."""

    name: str
    """``"<index>-BABA"`` or ``"<index>-ABBA"`` (the base template and the order of the
    first two names) for `TEMPLATES`; any label for a probe."""
    text: str
    """The words, separated by spaces, ending just before the answer."""

    def __post_init__(self) -> None:
        words = self.text.split()
        if words.count("[A]") != 1 or words.count("[B]") != 2:
            raise ValueError(f"an IOI template needs one [A] (the IO) and two [B] (S1, S2), got {self.text!r}")
        slots = {"[A]", "[B]", "[PLACE]", "[OBJECT]"}
        unknown = [w for w in words if w.startswith("[") and w not in slots]
        if unknown:
            raise ValueError(f"unknown slot {unknown[0]!r} in {self.text!r}; expected one of {sorted(slots)}")

    @property
    def words(self) -> list[str]:
        """The template split into words."""
        return self.text.split()

    @property
    def positions(self) -> dict[str, int]:
        """Positions of IO, S1, S2 and END in a prompt that starts with ``<bos>`` (hence the +1)."""
        words = self.words
        b = [i for i, w in enumerate(words) if w == "[B]"]
        return {"IO": words.index("[A]") + 1, "S1": b[0] + 1, "S2": b[1] + 1, "END": len(words)}


def _make_templates() -> dict[str, IOITemplate]:
    out = {}
    for i, text in enumerate(_BASE_TEMPLATES):
        out[f"{i}-BABA"] = IOITemplate(f"{i}-BABA", text)
        # ABBA: the IO comes first; the two names of the first clause swap, S2 stays [B].
        abba = text.replace("[B] and [A]", "[A] and [B]", 1)
        out[f"{i}-ABBA"] = IOITemplate(f"{i}-ABBA", abba)
    return out


TEMPLATES: dict[str, IOITemplate] = _make_templates()
"""Every template by name: six base templates (after ARENA 1.4.1's), each in BABA and ABBA order."""


class IOITokenizer:
    """A word-level tokenizer: one id per word of a fixed vocabulary, words separated by spaces."""

    def __init__(self, vocab: Sequence[str]) -> None:
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has repeated words")
        self.vocab: list[str] = list(vocab)
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def bos(self) -> int:
        """The id of ``<bos>``, the first token of every row and prompt."""
        return self.index["<bos>"]

    def encode(self, text: str) -> list[int]:
        """Token ids of the words of ``text`` (split on whitespace).

        Raises:
            TypeError: ``text`` is not a string.
            KeyError: a word outside the vocabulary (the message names it and the closest known words).
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a string of words, got {type(text).__name__}")
        ids = []
        for word in text.split():
            if word not in self.index:
                close = difflib.get_close_matches(word, self.vocab, n=3)
                raise KeyError(f"unknown word {word!r}: not in the {len(self)}-word IOI vocabulary; closest: {close}")
            ids.append(self.index[word])
        return ids

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """The words of ``ids`` joined by spaces.

        Raises:
            ValueError: an id outside ``[0, len(vocab))``.
        """
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self):
                raise ValueError(f"token id {i!r} is out of range: ids should be ints in [0, {len(self)})")
        return " ".join(self.vocab[i] for i in ids)


def _vocabulary() -> list[str]:
    words: list[str] = []
    for text in (*_BASE_TEMPLATES, *_FILLER_TEMPLATES, " ".join(_EXTRA_WORDS), " ".join(NAMES),
                 " ".join(PLACES), " ".join(OBJECTS)):
        for w in text.split():
            if not w.startswith("[") and w not in words:
                words.append(w)
    return words


IOI_TOKENIZER = IOITokenizer(_vocabulary())
"""The tokenizer of the task and of the committed model."""


@dataclass
class IOIBatch:
    """A batch of IOI prompts from one template, with their ABC corruption.

    Every prompt has the same length and the same positions, so that patching lines up.
    """

    template: str
    """The template's name (a key of `TEMPLATES`)."""
    clean: Int[Tensor, "batch pos"]
    """Clean prompts ``<bos> ... to``."""
    corrupted: Int[Tensor, "batch pos"]
    """The ABC prompts: the same words with S1, IO and S2 replaced by three fresh, distinct names."""
    io: Int[Tensor, " batch"]
    """Token id of the indirect object (the right answer)."""
    s: Int[Tensor, " batch"]
    """Token id of the subject (the wrong answer)."""
    positions: dict[str, int]
    """Positions of ``"IO"``, ``"S1"``, ``"S2"`` and ``"END"`` (the last position, where the answer is read)."""

    def __len__(self) -> int:
        return self.clean.shape[0]

    def prompts(self, corrupted: bool = False) -> list[str]:
        """The prompts as text."""
        tokens = self.corrupted if corrupted else self.clean
        return [IOI_TOKENIZER.decode(row) for row in tokens]


def _check_names(names: Sequence[str], need: int) -> list[str]:
    if isinstance(names, str):
        raise TypeError("names should be a sequence of names, not one string")
    names = list(names)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown names {unknown[:3]}: names must come from NAMES (one token each)")
    if len(set(names)) < need:
        raise ValueError(f"need at least {need} distinct names (2 for the prompt, 3 fresh ones for ABC), got {len(set(names))}")
    return sorted(set(names), key=names.index)


def _fill(template: IOITemplate, a: str, b: str, place: str, obj: str, c: str | None = None) -> str:
    # c, when given, is the second subject (S2); the ABC corruption makes it differ from S1.
    text = template.text.replace("[PLACE]", place).replace("[OBJECT]", obj).replace("[A]", a)
    if c is None:
        return "<bos> " + text.replace("[B]", b)
    return "<bos> " + text.replace("[B]", b, 1).replace("[B]", c, 1)


def _pick(generator: torch.Generator, items: Sequence[Any], k: int = 1) -> list[Any]:
    return [items[i] for i in torch.randperm(len(items), generator=generator)[:k].tolist()]


def ioi_batch(
    n: int,
    names: Sequence[str] = TRAIN_NAMES,
    template: str | IOITemplate = "0-BABA",
    generator: torch.Generator | None = None,
) -> IOIBatch:
    """``n`` IOI prompts of one template with names from ``names``, and ABC twins.

    Each clean prompt draws two distinct names (IO, S), a place and an object; its
    corrupted twin keeps the place and object and puts three fresh distinct names
    (none of IO, S) in the S1, IO and S2 slots, as ARENA's ABC dataset.

    Args:
        n: number of prompts (>= 1).
        names: the pool of names (at least 5 distinct names of `NAMES`).
        template: a key of `TEMPLATES`, or an `IOITemplate` (a probe outside them).
        generator: the random source (a fresh one seeded 0 if None).

    Raises:
        ValueError: ``n`` < 1, an unknown template, unknown names or fewer than 5.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n should be an int >= 1, got {n!r}")
    if not isinstance(template, IOITemplate) and template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; "
                         f"expected one of {sorted(TEMPLATES)}")
    pool = _check_names(names, 5)
    g = torch.Generator().manual_seed(0) if generator is None else generator
    tpl = template if isinstance(template, IOITemplate) else TEMPLATES[template]
    clean, corrupted, io, s = [], [], [], []
    for _ in range(n):
        a, b, x, y, z = _pick(g, pool, 5)
        place, obj = _pick(g, PLACES)[0], _pick(g, OBJECTS)[0]
        clean.append(IOI_TOKENIZER.encode(_fill(tpl, a, b, place, obj)))
        corrupted.append(IOI_TOKENIZER.encode(_fill(tpl, y, x, place, obj, c=z)))
        io.append(IOI_TOKENIZER.index[a])
        s.append(IOI_TOKENIZER.index[b])
    return IOIBatch(tpl.name, torch.tensor(clean), torch.tensor(corrupted),
                    torch.tensor(io), torch.tensor(s), tpl.positions)


def filler_sentence(generator: torch.Generator, names: Sequence[str] = NAMES) -> str:
    """One simple sentence from the task's vocabulary (names from ``names``), to mix into training."""
    text = _pick(generator, _FILLER_TEMPLATES)[0]
    n, m = _pick(generator, list(names), 2)
    return (text.replace("[N]", n).replace("[M]", m).replace("[PLACE]", _pick(generator, PLACES)[0])
            .replace("[OBJECT]", _pick(generator, OBJECTS)[0]))


def training_rows(
    batch_size: int,
    n_ctx: int,
    generator: torch.Generator,
    ioi_names: Sequence[str] = TRAIN_NAMES,
) -> tuple[Int[Tensor, "batch n_ctx_plus_1"], Int[Tensor, " batch"]]:
    """Training rows of ``n_ctx + 1`` tokens: ``<bos>``, an IOI sentence, filler.

    The IOI sentence (a random template, names from ``ioi_names``) is followed by
    its answer and ``.``; filler sentences use every name. Returns ``(rows,
    answer_index)``: ``rows[i, answer_index[i]]`` is the IO (the loss weights it).
    """
    pool = list(ioi_names)
    rows, answer_at = [], []
    keys = sorted(TEMPLATES)
    for _ in range(batch_size):
        tpl = TEMPLATES[_pick(generator, keys)[0]]
        a, b = _pick(generator, pool, 2)
        place, obj = _pick(generator, PLACES)[0], _pick(generator, OBJECTS)[0]
        words = _fill(tpl, a, b, place, obj).split()
        answer_at.append(len(words))
        words += [a, "."]
        while len(words) < n_ctx + 1:
            words += filler_sentence(generator).split()
        rows.append(IOI_TOKENIZER.encode(" ".join(words[: n_ctx + 1])))
    return torch.tensor(rows), torch.tensor(answer_at)


IOI_CONFIG = GPTConfig(d_vocab=len(IOI_TOKENIZER), n_ctx=32, d_model=64, n_layers=3, n_heads=4, d_mlp=256)
"""The model: 3 layers with MLPs, 4 heads of width 16, ``d_model`` 64, the word vocabulary."""


@dataclass
class IOITrainConfig:
    """Hyperparameters of `train_ioi` (AdamW with linear warm-up and cosine decay)."""

    steps: int = 3000
    """Optimiser steps."""
    batch_size: int = 64
    """Rows per step."""
    lr: float = 3e-3
    """Peak learning rate."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    answer_weight: float = 10.0
    """Weight of the IOI answer position in the loss, relative to 1 for every other position."""
    eval_every: int = 250
    """Steps between evaluations of the held-out logit difference."""
    seed: int = 0
    """Seed of the model initialisation and of the data."""


IOI_TRAIN = IOITrainConfig()
"""The committed recipe's training hyperparameters."""


def _lr(cfg: IOITrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * t)).item()))


def _eval_batches(names: Sequence[str], n: int, seed: int) -> Iterator[IOIBatch]:
    g = torch.Generator().manual_seed(seed)
    for key in sorted(TEMPLATES):
        yield ioi_batch(n, names, key, g)


@torch.no_grad()
def ioi_evaluate(model: Any, names: Sequence[str], n: int = 32, seed: int = 1) -> dict[str, float]:
    """Mean logit difference, share of prompts with a positive one, and accuracy over every template.

    ``n`` prompts per template with names from ``names``, drawn with ``seed``.
    """
    diffs, correct = [], []
    for batch in _eval_batches(names, n, seed):
        logits = run_with_hooks(model, batch.clean, [])
        diffs.append(ioi_metric(batch, per_prompt=True)(logits))
        correct.append(logits[:, batch.positions["END"]].argmax(-1) == batch.io)
    d = torch.cat(diffs)
    return {"logit_diff": d.mean().item(), "logit_diff_positive": (d > 0).float().mean().item(),
            "accuracy": torch.cat(correct).float().mean().item()}


def ioi_training_stream(
    model_cfg: GPTConfig = IOI_CONFIG, cfg: IOITrainConfig = IOI_TRAIN
) -> Iterator[tuple[Int[Tensor, "batch n_ctx_plus_1"], Int[Tensor, " batch"]]]:
    """The ``cfg.steps`` batches of `training_rows` that `train_ioi` trains on, in order (seeded by ``cfg.seed``)."""
    g = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in range(cfg.steps):
        yield training_rows(cfg.batch_size, model_cfg.n_ctx, g)


def train_ioi(
    model_cfg: GPTConfig = IOI_CONFIG,
    cfg: IOITrainConfig = IOI_TRAIN,
    progress: bool = True,
) -> tuple[GPT, list[dict[str, float | int]]]:
    """Train a `GPT` on IOI rows mixed with filler; return it and its history.

    The loss is next-token cross-entropy on every position, with the IOI answer
    position weighted by ``cfg.answer_weight``. The history holds the loss of every
    ``eval_every``-th step and the logit difference and accuracy on training and
    held-out names.
    """
    torch.manual_seed(cfg.seed)
    model = GPT(model_cfg)
    data = ioi_training_stream(model_cfg, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99),
                            weight_decay=cfg.weight_decay)
    history: list[dict[str, float | int]] = []
    bar = range(cfg.steps)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc="ioi", leave=False)
    for step in bar:
        rows, answer_at = next(data)
        logits = model(rows[:, :-1])
        targets = rows[:, 1:]
        losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        weight = torch.ones_like(losses)
        answer = (torch.arange(len(rows)), answer_at - 1)  # END predicts the IO
        weight[answer] = cfg.answer_weight
        loss = (losses * weight).sum() / weight.sum()
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % cfg.eval_every == 0 or step == 0:
            model.eval()
            record = {"step": step + 1, "loss": loss.item(),
                      "answer_loss": losses[answer].mean().item()}
            for split, names in _SPLITS.items():
                for k, v in ioi_evaluate(model, names).items():
                    record[f"{split}_{k}"] = v
            history.append(record)
            model.train()
    return model.eval(), history


def _end_logits(model: Any, batch: IOIBatch, corrupted: bool = False) -> Float[Tensor, "batch d_vocab"]:
    tokens = batch.corrupted if corrupted else batch.clean
    return run_with_hooks(model, tokens, [])[:, batch.positions["END"]]


def ioi_metric(batch: IOIBatch, per_prompt: bool = False) -> Any:
    """The metric ``fn(logits) -> logit(IO) - logit(S)`` at END, averaged over the batch (or per prompt).

    For patching: ``metric = ioi_metric(batch)`` then ``metric(model(batch.clean))``.
    """
    if not isinstance(batch, IOIBatch):
        raise TypeError(f"ioi_metric expects an IOIBatch, got {type(batch).__name__}")
    io, s, end = batch.io, batch.s, batch.positions["END"]

    def metric(logits: Float[Tensor, "batch pos d_vocab"]) -> Tensor:
        if logits.ndim != 3 or logits.shape[0] != len(io) or logits.shape[1] <= end:
            raise ValueError(f"expected logits of shape ({len(io)}, >{end}, d_vocab), got {tuple(logits.shape)}")
        last = logits[:, end]
        rows = torch.arange(len(io))
        diff = last[rows, io] - last[rows, s]
        return diff if per_prompt else diff.mean()

    return metric


def ioi_logit_diff(
    model: Any, batch: IOIBatch, corrupted: bool = False, per_prompt: bool = False
) -> Float[Tensor, "*batch"]:
    """``logit(IO) - logit(S)`` at END for our `GPT` or a bridge, the mean over the batch or per prompt.

    With ``corrupted=True`` the ABC prompts are run, still scoring the clean IO and S.

    Raises:
        TypeError: ``batch`` is not an `IOIBatch`, or the model is neither kind.
        ValueError: the model's vocabulary is not the IOI vocabulary.
    """
    if not isinstance(batch, IOIBatch):
        raise TypeError(f"ioi_logit_diff expects an IOIBatch, got {type(batch).__name__}")
    spec = model_spec(model)
    if spec.d_vocab != len(IOI_TOKENIZER):
        raise ValueError(f"the model has d_vocab={spec.d_vocab}, the IOI vocabulary has {len(IOI_TOKENIZER)} words")
    tokens = batch.corrupted if corrupted else batch.clean
    return ioi_metric(batch, per_prompt)(run_with_hooks(model, tokens, []))


def ioi_accuracy(model: Any, batch: IOIBatch) -> float:
    """Fraction of prompts whose top next-token prediction at END is the IO."""
    if not isinstance(batch, IOIBatch):
        raise TypeError(f"ioi_accuracy expects an IOIBatch, got {type(batch).__name__}")
    with torch.no_grad():
        return (_end_logits(model, batch).argmax(-1) == batch.io).float().mean().item()


IOICircuit = Mapping[tuple[int, int], str | None] | Iterable[tuple[int, int]]
"""Heads to keep: ``(layer, head)`` tuples (kept at every position), or a dict from each
head to the position it is kept at (``"IO"``, ``"S1"``, ``"S2"``, ``"END"``; None: all)."""


def _keep_masks(model: Any, batch: IOIBatch, circuit: Any) -> Bool[Tensor, "layer pos head"]:
    """True where a head keeps its own ``z``: the circuit's heads, at their positions."""
    if isinstance(circuit, Mapping):
        items = list(circuit.items())
    elif isinstance(circuit, (str, bytes)) or not isinstance(circuit, Iterable):
        raise TypeError("circuit should be a list of (layer, head) tuples or a dict "
                        f"(layer, head) -> position, got {type(circuit).__name__}")
    else:
        items = [(head, None) for head in circuit]
    spec = model_spec(model)
    keep = torch.zeros(spec.n_layers, batch.clean.shape[1], spec.n_heads, dtype=torch.bool)
    for head, where in items:
        if not isinstance(head, tuple) or len(head) != 2:
            raise TypeError(f"circuit heads should be (layer, head) tuples, got {head!r}")
        layer, h = check_head(model, *head)
        if where is not None and where not in batch.positions:
            raise ValueError(f"unknown position {where!r} for head {head}; expected one of "
                             f"{sorted(batch.positions)} or None")
        keep[layer, slice(None) if where is None else batch.positions[where], h] = True
    return keep


def ioi_circuit_logits(
    model: Any, batch: IOIBatch, circuit: IOICircuit
) -> Float[Tensor, "batch pos d_vocab"]:
    """Logits on ``batch.clean`` with every head outside ``circuit`` mean-ablated.

    Each head's ``z`` is replaced, position by position, by its mean over the ABC
    prompts ``batch.corrupted`` (one template: positions line up), as ARENA 1.4.1's
    ``add_mean_ablation_hook``. Circuit heads keep their own ``z`` at the positions
    the circuit names (every position for a plain list). MLPs, embeddings and
    LayerNorms are left alone, as in the paper.

    Raises:
        TypeError: ``batch`` is not an `IOIBatch`, or a malformed circuit.
        ValueError: a head out of range, or an unknown position name.
    """
    if not isinstance(batch, IOIBatch):
        raise TypeError(f"expected an IOIBatch, got {type(batch).__name__}")
    keep = _keep_masks(model, batch, circuit)  # (layer, pos, head)
    means = ablation_values(model, batch.clean, "mean", per_position=True,
                            reference_tokens=batch.corrupted)  # (pos, head, d_head)

    def hook(z: Tensor, hook: Any, layer: int) -> Tensor:
        return torch.where(keep[layer, :, :, None], z, means[layer].to(z.dtype))

    hooks = [(hook_name("z", layer), partial(hook, layer=layer))
             for layer in range(len(keep))]
    return run_with_hooks(model, batch.clean, hooks)


def ioi_faithfulness(model: Any, batch: IOIBatch, circuit: IOICircuit) -> float:
    """The circuit's logit difference as a share of the full model's (ARENA 1.4.1).

    ``ioi_metric(batch)(ioi_circuit_logits(...)) / ioi_logit_diff(model, batch)``:
    1 when the circuit is the whole model; the all-ablated share for the empty
    circuit. (Wang et al. 2022 report 87% for their 26-head circuit in GPT-2 small.)
    """
    with torch.no_grad():
        full = ioi_logit_diff(model, batch)
        circuit_logits = ioi_circuit_logits(model, batch, circuit)
        return (ioi_metric(batch)(circuit_logits) / full).item()


def ioi_recipe(out_dir: str | Path, quick: bool = False, progress: bool = True) -> dict:
    """Train the IOI model and write ``<out_dir>/ioi.pt`` and ``ioi.json``; returns the manifest.

    ``quick`` trains 60 steps (a smoke test). The manifest records the config, the seed, the
    vocabulary, the train/held-out names, the history, the final metrics and the CPU seconds.
    """
    out = recipe_output_dir(out_dir)
    cfg = IOITrainConfig(steps=60, eval_every=30) if quick else IOI_TRAIN
    start = time.process_time()
    model, history = train_ioi(IOI_CONFIG, cfg, progress=progress)
    seconds = time.process_time() - start
    metrics = {}
    for split, names in _SPLITS.items():
        for k, v in ioi_evaluate(model, names, n=64, seed=2).items():
            metrics[f"{split}_{k}"] = v
    ckpt = out / "ioi.pt"
    model.save(ckpt)
    return write_manifest(
        ckpt, config=IOI_CONFIG.to_dict(), train=asdict(cfg), seed=cfg.seed, metrics=metrics, steps=cfg.steps,
        seconds=round(seconds, 1), seconds_kind="CPU seconds (time.process_time) of training and evaluation",
        vocab=IOI_TOKENIZER.vocab, train_names=list(TRAIN_NAMES), held_out_names=list(HELD_OUT_NAMES),
        history=history, quick=quick,
    )


def load_ioi_model(directory: str | Path | None = None) -> tuple[GPT, IOITokenizer, dict]:
    """``(model, tokenizer, manifest)`` of the committed IOI model (or a recipe's ``--out`` folder).

    The model is in eval mode, float32; the sha256 is checked first.

    Raises:
        FileNotFoundError: no checkpoint there (the message gives the command that makes one).
        ValueError: the checkpoint's sha256 differs from its manifest's, or its vocabulary from `IOI_TOKENIZER`'s.
    """
    ckpt, manifest = load_recipe_manifest("ioi", directory)
    if manifest.get("vocab") != IOI_TOKENIZER.vocab:
        raise ValueError(f"{ckpt} was trained with a different vocabulary than this version's IOI_TOKENIZER")
    return GPT.load(ckpt).float().eval(), IOI_TOKENIZER, manifest
