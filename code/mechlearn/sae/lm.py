"""SAEs on a language model's residual stream: activations, splicing, CE loss recovered, recipes.

ARENA 1.3.3 ("Interpretability with SAEs") studies SAEs trained on GPT-2 small's residual stream
(Joseph Bloom's ``gpt2-small-res-jb`` SAEs, one per ``blocks.L.hook_resid_pre``). Here the model is
the Part II character-level LM (`mechlearn.gpt.load_char_lm`: 4 layers, ``d_model`` 128, trained on
CPython's pydoc help text) and the SAEs read `CHAR_LM_HOOK`, the residual stream entering block 2:
the middle of the model, where two blocks have written what they know about the context and two
more still read it to predict the next character. That is the stream ARENA reads too (a middle
layer), and it is the place where an SAE's features are most likely to be about the text rather
than about the current character alone (block 0's input is just the token and position embeddings)
or about the next character only (block 3's output is almost the logits).

How an SAE on a language model is judged (Bricken et al. 2023; Gao et al. 2024):

* **fraction of variance explained** by the reconstruction, and the **L0** (mean number of latents
  that fire per token) it takes: the sparsity / fidelity trade-off;
* **cross-entropy loss recovered**: splice the SAE into the forward pass (the activation is
  replaced by its reconstruction, `run_with_sae`) and compare the next-token loss with the clean
  model's and with the loss when the activation is zeroed:
  ``recovered = (zero - spliced) / (zero - clean)``, 1 for a perfect reconstruction, 0 for one
  no better than deleting the residual stream. Variance explained can hide errors in the
  directions the later layers care about; the loss cannot;
* the **dead fraction**: latents that never fire on held-out tokens are wasted capacity.

`char_lm_sae_recipe` trains one SAE per architecture (standard, gated, JumpReLU, TopK: see
`mechlearn.sae.training.make_sae`) on activations from the training split, with Anthropic's
resampling of dead latents, and evaluates them on windows of the validation split;
`frontier_recipe` sweeps each architecture's sparsity knob (the L1 or sparsity coefficient, or
``k``) and records the L0 / loss-recovered frontier that `frontier_figure` draws. Their results
ship in ``mechlearn/sae/checkpoints`` (`load_char_lm_sae`, `load_frontier`).
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from mechlearn._recipes import load_manifest, recipe_output_dir, write_manifest
from mechlearn.gpt.training import char_lm_data, next_token_loss
from mechlearn.interp.core import check_hook_name, check_tokens, run_with_cache, run_with_hooks
from mechlearn.sae.metrics import dead_fraction, fraction_variance_explained, l0
from mechlearn.sae.training import ARCHITECTURES, make_sae, train_sae

__all__ = [
    "CHAR_LM_HOOK", "DEFAULT_ARCHITECTURE", "LM_CHECKPOINT_DIR", "D_SAE", "SEQ_LEN",
    "EVAL_SEQUENCES", "EVAL_SEED", "CHAR_LM_SAE_KWARGS", "CHAR_LM_SAE_TRAIN", "FRONTIER_SWEEP", "FRONTIER_TRAIN",
    "TARGETS",
    "char_lm_tokens", "char_lm_eval_tokens", "char_lm_activations", "run_with_sae", "zero_ablated_logits",
    "ce_loss_recovered", "evaluate_lm_sae", "meets_targets", "load_char_lm_sae", "load_frontier",
    "char_lm_sae_recipe", "frontier_recipe", "frontier_figure",
]

CHAR_LM_HOOK = "blocks.2.hook_resid_pre"
"""The hook the char-LM SAEs read: the residual stream entering block 2 of 4 (the middle layer)."""
DEFAULT_ARCHITECTURE = "topk"
"""The SAE `load_char_lm_sae` returns when no architecture is named (the one the later pages read)."""
LM_CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
"""Where the committed char-LM SAEs (``sae_<architecture>.pt`` + ``.json``) and ``sae_frontier.json`` ship."""
D_SAE = 512
"""Latents per SAE: 4 × the char-LM's ``d_model`` of 128."""
SEQ_LEN = 128
"""Length of the token windows the SAEs are trained and evaluated on (the char-LM's ``n_ctx``)."""
EVAL_SEQUENCES = 64
"""Held-out validation windows (of `SEQ_LEN` tokens) every evaluation uses: 8,192 tokens."""
EVAL_SEED = 1234
"""Seed of the generator that draws the held-out validation windows."""

CHAR_LM_SAE_KWARGS: dict[str, dict[str, float | int]] = {
    "standard": {"l1_coefficient": 1.0},
    "gated": {"l1_coefficient": 2.0},
    "jumprelu": {"sparsity_coefficient": 0.3, "bandwidth": 0.05, "threshold_init": 0.5},
    "topk": {"k": 32},
}
"""Each architecture's sparsity setting in the committed recipe (passed to `make_sae`).

The char-LM's residual stream at `CHAR_LM_HOOK` is not rescaled (``E‖x‖²`` ≈ 117, ``d_in`` = 128;
DeepMind's JumpReLU SAEs rescale to unit mean squared norm, Gemma Scope §3.1), and the paper's ε =
θ₀ = 0.001 suit billions of training tokens: Adam moves each log-threshold by at most about the
learning rate per step, so in 3,000 steps at 1e-3 a threshold can grow about e³ ≈ 20-fold, from
0.001 to 0.02, far below the pre-activations' scale of about 1. θ₀ = 0.5 and a wider kernel (ε =
0.05) let them settle within the run."""
CHAR_LM_SAE_TRAIN: dict[str, Any] = {
    "n_train_sequences": 1600, "steps": 3000, "batch_size": 1024, "lr": 1e-3, "decay_steps": 600,
    "resample_every": 500, "seed": 0,
}
"""Training settings of the committed recipe: activations of ``n_train_sequences`` random training
windows (204,800 tokens), then `train_sae` for ``steps`` Adam steps, resampling dead latents every
``resample_every`` steps; the learning rate decays linearly to 0 over the last ``decay_steps``."""
FRONTIER_SWEEP: dict[str, tuple[str, tuple[float, ...]]] = {
    "standard": ("l1_coefficient", (0.5, 1.0, 2.0, 4.0)),
    "gated": ("l1_coefficient", (0.5, 1.0, 2.0, 4.0)),
    "jumprelu": ("sparsity_coefficient", (0.3, 1.0, 3.0, 10.0)),
    "topk": ("k", (8, 16, 32, 64)),
}
"""The sparsity knob swept per architecture by `frontier_recipe`, and its values."""
FRONTIER_TRAIN: dict[str, Any] = CHAR_LM_SAE_TRAIN | {"steps": 1200, "decay_steps": 240}
"""Training settings of each frontier point: `CHAR_LM_SAE_TRAIN` with fewer steps (16 SAEs in one run)."""
TARGETS = {"fve": 0.9, "l0": 32.0, "ce_loss_recovered": 0.9, "dead_fraction": 0.05}
"""The issue's targets on held-out tokens: FVE ≥ 0.9 at mean L0 ≤ 32, CE loss recovered ≥ 0.9,
dead fraction ≤ 0.05 (after resampling)."""

_MAKE_WITH = "python -m mechlearn.sae {recipe} --out DIR"


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} should be a positive int, got {value!r}")
    return value


@functools.lru_cache(maxsize=2)
def _split_ids(split: str) -> Tensor:
    _, train_ids, val_ids = char_lm_data()
    return train_ids if split == "train" else val_ids


def char_lm_tokens(
    n_sequences: int, generator: torch.Generator, split: str = "validation", seq_len: int = SEQ_LEN
) -> Int[Tensor, "n_sequences seq_len"]:
    """``n_sequences`` random windows of ``seq_len`` consecutive tokens from the char-LM's corpus.

    Args:
        n_sequences: how many windows.
        generator: draws the window starts (the same seed gives the same windows).
        split: ``"validation"`` (held out from the char-LM's and the SAEs' training) or ``"train"``.
        seq_len: window length, at most the char-LM's ``n_ctx`` of 128.

    Raises:
        ValueError: an unknown split, or a count or length that is not a positive int.
    """
    if split not in ("train", "validation"):
        raise ValueError(f"split should be 'train' or 'validation', got {split!r}")
    _check_positive_int(n_sequences, "n_sequences")
    _check_positive_int(seq_len, "seq_len")
    ids = _split_ids(split)
    if seq_len > len(ids):
        raise ValueError(f"seq_len should be at most the {split} split's {len(ids)} tokens, got {seq_len}")
    starts = torch.randint(0, len(ids) - seq_len + 1, (n_sequences,), generator=generator)
    return torch.stack([ids[s : s + seq_len] for s in starts.tolist()])


def char_lm_eval_tokens(n_sequences: int = EVAL_SEQUENCES, seed: int = EVAL_SEED) -> Int[Tensor, "n_sequences seq_len"]:
    """The held-out validation windows every evaluation of the char-LM SAEs uses (fixed by ``seed``)."""
    return char_lm_tokens(n_sequences, torch.Generator().manual_seed(seed), split="validation")


@torch.no_grad()
def char_lm_activations(
    model: nn.Module, tokens: Int[Tensor, "batch pos"], hook: str = CHAR_LM_HOOK, batch_size: int = 64
) -> Float[Tensor, "n_tokens d_act"]:
    """The activations at ``hook`` for every token of ``tokens``, flattened to ``(batch * pos, d_act)``.

    Runs ``batch_size`` sequences at a time through `mechlearn.interp.core.run_with_cache` (our
    `GPT` or a TransformerLens bridge), caching only ``hook``.

    Raises:
        KeyError: the model has no hook point ``hook`` (the message names the closest ones).
    """
    check_hook_name(model, hook)
    tokens = check_tokens(model, tokens)
    _check_positive_int(batch_size, "batch_size")
    chunks = [run_with_cache(model, chunk, names_filter=hook)[1][hook] for chunk in tokens.split(batch_size)]
    acts = torch.cat(chunks)
    return acts.reshape(-1, acts.shape[-1])


def _reconstruct(sae: nn.Module, act: Tensor) -> Tensor:
    d_in = getattr(sae, "d_in", None)
    if d_in is not None and act.shape[-1] != d_in:
        raise ValueError(
            f"the SAE expects activations of width d_in={d_in}, but this hook's activations have width "
            f"{act.shape[-1]} (shape {tuple(act.shape)}): train the SAE on this hook"
        )
    weights = getattr(sae, "W_dec", None)
    x = act.to(weights.dtype) if isinstance(weights, Tensor) else act
    return sae.decode(sae.encode(x)).to(act.dtype)


def run_with_sae(
    model: nn.Module, sae: nn.Module, tokens: Int[Tensor, "batch pos"], hook: str = CHAR_LM_HOOK,
    keep_error: bool = False,
) -> Float[Tensor, "batch pos d_vocab"]:
    """The logits with the activation at ``hook`` replaced by the SAE's reconstruction.

    ``sae`` is any module with ``encode(x) -> latents`` and ``decode(latents) -> x_hat`` (every
    `mechlearn.sae.base.SAE`). With ``keep_error=True`` the SAE's error ``x - x_hat`` is added back
    as a constant (SAELens's ``use_error_term``): the forward pass is then the clean one (up to
    rounding), but gradients reach the activation through the latents only — what attribution over
    latents needs.

    Raises:
        KeyError: the model has no hook point ``hook``.
        ValueError: the SAE's ``d_in`` is not the width of the activations at ``hook``.
    """
    check_hook_name(model, hook)

    def splice(act: Tensor, hook: Any) -> Tensor:
        x_hat = _reconstruct(sae, act)
        if keep_error:
            x_hat = x_hat + (act - x_hat).detach()
        return x_hat

    return run_with_hooks(model, tokens, [(hook, splice)])


def zero_ablated_logits(
    model: nn.Module, tokens: Int[Tensor, "batch pos"], hook: str = CHAR_LM_HOOK
) -> Float[Tensor, "batch pos d_vocab"]:
    """The logits with the activation at ``hook`` set to zero (the 0 % of CE loss recovered).

    Raises:
        KeyError: the model has no hook point ``hook``.
    """
    check_hook_name(model, hook)
    return run_with_hooks(model, tokens, [(hook, lambda act, hook: torch.zeros_like(act))])


def _next_token_loss(logits: Tensor, tokens: Tensor) -> float:
    return float(next_token_loss(logits[:, :-1].detach(), tokens[:, 1:]))


@torch.no_grad()
def ce_loss_recovered(
    model: nn.Module, sae: nn.Module, tokens: Int[Tensor, "batch pos"], hook: str = CHAR_LM_HOOK
) -> dict[str, float]:
    """Next-token losses (nats per token) clean, with the SAE spliced in, and zero-ablated; and the fraction recovered.

    Returns:
        ``{"clean", "spliced", "zero_ablated", "recovered"}`` with
        ``recovered = (zero_ablated - spliced) / (zero_ablated - clean)``: 1 when splicing the SAE in
        costs nothing, 0 when it is as bad as deleting the activation (it can be negative, or above 1).

    Raises:
        KeyError: the model has no hook point ``hook``.
        ValueError: fewer than 2 positions (no next token to predict), the SAE's width does not match
            the hook's, or zero ablation does not change the loss (the fraction is undefined).
    """
    check_hook_name(model, hook)
    tokens = check_tokens(model, tokens)
    if tokens.shape[1] < 2:
        raise ValueError(f"tokens need at least 2 positions to score a next token, got shape {tuple(tokens.shape)}")
    clean = _next_token_loss(run_with_hooks(model, tokens, []), tokens)
    spliced = _next_token_loss(run_with_sae(model, sae, tokens, hook), tokens)
    zero = _next_token_loss(zero_ablated_logits(model, tokens, hook), tokens)
    if zero == clean:
        raise ValueError(f"zero-ablating {hook} does not change the loss ({clean:.6g}): "
                         "the recovered fraction is undefined")
    return {"clean": clean, "spliced": spliced, "zero_ablated": zero, "recovered": (zero - spliced) / (zero - clean)}


@torch.no_grad()
def evaluate_lm_sae(
    model: nn.Module, sae: nn.Module, tokens: Int[Tensor, "batch pos"], hook: str = CHAR_LM_HOOK
) -> dict[str, float]:
    """The numbers an SAE on a language model is judged by, on ``tokens`` (held-out ones, normally).

    Returns:
        ``fve`` (fraction of variance explained, `mechlearn.sae.metrics.fraction_variance_explained`),
        ``l0`` (mean latents firing per token), ``dead_fraction`` (latents that never fire on these
        tokens), the four numbers of `ce_loss_recovered` as ``ce_clean``, ``ce_spliced``,
        ``ce_zero_ablated`` and ``ce_loss_recovered``, and ``n_tokens``.
    """
    acts = char_lm_activations(model, tokens, hook)
    latents = sae.encode(acts.to(sae.W_dec.dtype))
    x_hat = sae.decode(latents).to(acts.dtype)
    ce = ce_loss_recovered(model, sae, tokens, hook)
    return {
        "fve": fraction_variance_explained(acts, x_hat),
        "l0": l0(latents),
        "dead_fraction": dead_fraction(latents),
        "ce_clean": ce["clean"], "ce_spliced": ce["spliced"], "ce_zero_ablated": ce["zero_ablated"],
        "ce_loss_recovered": ce["recovered"], "n_tokens": int(acts.shape[0]),
    }


def meets_targets(metrics: dict[str, float]) -> dict[str, bool]:
    """Which of the issue's `TARGETS` an `evaluate_lm_sae` result meets, and ``all`` of them."""
    met = {
        "fve": metrics["fve"] >= TARGETS["fve"],
        "l0": metrics["l0"] <= TARGETS["l0"],
        "ce_loss_recovered": metrics["ce_loss_recovered"] >= TARGETS["ce_loss_recovered"],
        "dead_fraction": metrics["dead_fraction"] <= TARGETS["dead_fraction"],
    }
    return met | {"all": all(met.values())}


def _check_architecture(architecture: Any) -> str:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown SAE architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}")
    return architecture


def _save_sae(sae: nn.Module, architecture: str, path: Path) -> None:
    state = {k: v.detach().clone().contiguous() for k, v in sae.state_dict().items()}
    torch.save({"architecture": architecture, "config": sae.config(), "state_dict": state}, path)


def _load_sae(path: Path) -> nn.Module:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    sae = make_sae(**blob["config"])
    sae.load_state_dict(blob["state_dict"])
    return sae.eval()


def load_char_lm_sae(
    architecture: str = DEFAULT_ARCHITECTURE, directory: str | Path | None = None
) -> tuple[nn.Module, dict]:
    """``(sae, manifest)``: a char-LM SAE of ``architecture`` from ``directory``, after checking its sha256.

    Args:
        architecture: ``"standard"``, ``"gated"``, ``"jumprelu"`` or ``"topk"``
            (`mechlearn.sae.training.ARCHITECTURES`).
        directory: a ``python -m mechlearn.sae char_lm --out DIR`` folder; the shipped
            `LM_CHECKPOINT_DIR` by default.

    Returns:
        The SAE in eval mode, and its manifest (config, training settings, held-out metrics, seconds).

    Raises:
        ValueError: an unknown architecture, or a file whose sha256 is not its manifest's.
        FileNotFoundError: no such checkpoint in ``directory``.
    """
    _check_architecture(architecture)
    folder = LM_CHECKPOINT_DIR if directory is None else Path(directory)
    ckpt, manifest = load_manifest(f"sae_{architecture}", folder, _MAKE_WITH.format(recipe="char_lm"))
    return _load_sae(ckpt), manifest


def load_frontier(directory: str | Path | None = None) -> dict:
    """The results of `frontier_recipe` (``sae_frontier.json``) from ``directory`` (default: the shipped ones).

    Raises:
        FileNotFoundError: no ``sae_frontier.json`` there (the message says how to make one).
    """
    path = (LM_CHECKPOINT_DIR if directory is None else Path(directory)) / "sae_frontier.json"
    if not path.exists():
        raise FileNotFoundError(f"no {path}; make one with `{_MAKE_WITH.format(recipe='frontier')}`")
    return json.loads(path.read_text())


def _training_activations(model: nn.Module, n_sequences: int, generator: torch.Generator) -> Tensor:
    return char_lm_activations(model, char_lm_tokens(n_sequences, generator, split="train"), CHAR_LM_HOOK)


def _train_one(architecture: str, kwargs: dict, acts: Tensor, train: dict, generator: torch.Generator,
               progress: bool) -> tuple[nn.Module, list, float]:
    sae = make_sae(architecture, acts.shape[-1], D_SAE, **kwargs, generator=generator)
    t0 = time.process_time()
    history = train_sae(sae, acts, steps=train["steps"], batch_size=train["batch_size"], lr=train["lr"],
                        generator=generator, resample_every=train["resample_every"],
                        decay_steps=train["decay_steps"], progress=progress)
    return sae.eval(), history, time.process_time() - t0


def _quick(train: dict) -> dict:
    return train | {"n_train_sequences": 64, "steps": 60, "batch_size": 256, "resample_every": 20, "decay_steps": 10}


def _recipe_inputs(out_dir: str | Path, train_config: dict, quick: bool) -> tuple:
    """What both recipes start from: the output folder, the training settings, the char-LM and its
    manifest, the seeded generator, the training activations and the held-out evaluation tokens."""
    from mechlearn.gpt import load_char_lm

    out = recipe_output_dir(out_dir)
    train = _quick(train_config) if quick else dict(train_config)
    model, _, lm_manifest = load_char_lm()
    generator = torch.Generator().manual_seed(train["seed"])
    acts = _training_activations(model, train["n_train_sequences"], generator)
    eval_tokens = char_lm_eval_tokens(8 if quick else EVAL_SEQUENCES)
    return out, train, model, lm_manifest, generator, acts, eval_tokens


def char_lm_sae_recipe(out_dir: str | Path, quick: bool = False, progress: bool = True) -> dict:
    """Train one SAE per architecture on the char-LM's `CHAR_LM_HOOK`; write ``sae_<arch>.pt`` + ``.json`` each.

    Each SAE has `D_SAE` latents and its architecture's `CHAR_LM_SAE_KWARGS`, is trained with
    `CHAR_LM_SAE_TRAIN` (resampling dead latents) on activations of random windows of the training
    split, and is evaluated by `evaluate_lm_sae` on the held-out `char_lm_eval_tokens`. ``quick``
    trains a few steps on fewer tokens (what the tests run).

    Returns:
        ``{"files", "metrics" (per architecture), "met" (per architecture), "seconds", "steps"}``.

    Raises:
        ValueError: ``out_dir`` lies inside the ``mechlearn`` package.
    """
    out, train, model, lm_manifest, generator, acts, eval_tokens = _recipe_inputs(out_dir, CHAR_LM_SAE_TRAIN, quick)
    summary: dict[str, Any] = {"files": [], "metrics": {}, "met": {}, "seconds": 0.0, "steps": train["steps"]}
    for arch in ARCHITECTURES:
        sae, history, seconds = _train_one(arch, CHAR_LM_SAE_KWARGS[arch], acts, train, generator, progress)
        metrics = evaluate_lm_sae(model, sae, eval_tokens, CHAR_LM_HOOK)
        ckpt = out / f"sae_{arch}.pt"
        _save_sae(sae, arch, ckpt)
        write_manifest(
            ckpt, architecture=arch, config=sae.config(), hook=CHAR_LM_HOOK, seed=train["seed"], training=train,
            metrics=metrics, met=meets_targets(metrics), steps=train["steps"], seconds=round(seconds, 2),
            n_train_tokens=int(acts.shape[0]), eval={"split": "validation", "n_sequences": int(eval_tokens.shape[0]),
                                                       "seq_len": SEQ_LEN, "seed": EVAL_SEED},
            char_lm_sha256=lm_manifest["sha256"], bytes=ckpt.stat().st_size, torch=torch.__version__,
            resampled=sum(row["resampled"] for row in history), history=_thin(history), quick=quick,
        )
        summary["files"].append(ckpt.name)
        summary["metrics"][arch], summary["met"][arch] = metrics, meets_targets(metrics)
        summary["seconds"] += seconds
    return summary


def _thin(history: Any, keep: int = 30) -> Any:
    if isinstance(history, list) and len(history) > keep:
        stride = -(-len(history) // keep)
        return history[::stride] + ([history[-1]] if (len(history) - 1) % stride else [])
    return history


def frontier_recipe(out_dir: str | Path, quick: bool = False, progress: bool = True) -> dict:
    """Sweep each architecture's sparsity knob (`FRONTIER_SWEEP`) in one run; write ``sae_frontier.json``.

    Every point is an SAE trained like `char_lm_sae_recipe`'s (same activations, same optimiser)
    but for `FRONTIER_TRAIN`'s fewer steps, and evaluated on the same held-out tokens: L0, FVE,
    CE loss recovered, dead fraction. ``quick`` trains one value per architecture for a few steps.

    Returns:
        The results written: ``{"hook", "d_sae", "training", "eval", "points": [...], "seconds", ...}``.

    Raises:
        ValueError: ``out_dir`` lies inside the ``mechlearn`` package.
    """
    out, train, model, lm_manifest, generator, acts, eval_tokens = _recipe_inputs(out_dir, FRONTIER_TRAIN, quick)
    points, total = [], 0.0
    for arch in ARCHITECTURES:
        knob, values = FRONTIER_SWEEP[arch]
        for value in values[2:3] if quick else values:
            kwargs = CHAR_LM_SAE_KWARGS[arch] | {knob: value}
            sae, history, seconds = _train_one(arch, kwargs, acts, train, generator, progress)
            metrics = evaluate_lm_sae(model, sae, eval_tokens, CHAR_LM_HOOK)
            points.append({"architecture": arch, "knob": knob, "value": value, **metrics,
                           "resampled": sum(row["resampled"] for row in history), "seconds": round(seconds, 2)})
            total += seconds
    result = {"hook": CHAR_LM_HOOK, "d_sae": D_SAE, "training": train, "seed": train["seed"],
              "eval": {"split": "validation", "n_sequences": int(eval_tokens.shape[0]), "seq_len": SEQ_LEN,
                       "seed": EVAL_SEED},
              "targets": TARGETS, "points": points, "steps": train["steps"], "seconds": round(total, 2),
              "char_lm_sha256": lm_manifest["sha256"], "torch": torch.__version__, "quick": quick}
    (out / "sae_frontier.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def frontier_figure(results: dict) -> Any:
    """A plotly figure of L0 against CE loss recovered, one trace per architecture (from `frontier_recipe`).

    The issue's targets are drawn as dashed lines (L0 = 32, 90 % recovered): the good corner is
    top left. Hovering a point shows its knob, FVE and dead fraction.

    Raises:
        ValueError: ``results`` has no ``points``.
    """
    from mechlearn._optional import require

    go = require("plotly.graph_objects", "mechlearn.sae.lm", extra="sae")
    points = results.get("points") if isinstance(results, dict) else None
    if not points:
        raise ValueError("results should be frontier_recipe's output, with a non-empty 'points' list")
    fig = go.Figure()
    for arch in ARCHITECTURES:
        pts = sorted((p for p in points if p["architecture"] == arch), key=lambda p: p["l0"])
        if not pts:
            continue
        fig.add_trace(go.Scatter(
            x=[p["l0"] for p in pts], y=[p["ce_loss_recovered"] for p in pts], mode="lines+markers", name=arch,
            customdata=[[p["knob"], p["value"], p["fve"], p["dead_fraction"]] for p in pts],
            hovertemplate="%{customdata[0]} = %{customdata[1]}<br>L0 %{x:.1f}<br>CE recovered %{y:.3f}"
                          "<br>FVE %{customdata[2]:.3f}<br>dead %{customdata[3]:.3f}<extra>" + arch + "</extra>",
        ))
    fig.add_vline(x=TARGETS["l0"], line_dash="dash", line_color="grey")
    fig.add_hline(y=TARGETS["ce_loss_recovered"], line_dash="dash", line_color="grey")
    fig.update_layout(xaxis_title="L0 (latents firing per token, held-out)", yaxis_title="CE loss recovered",
                      xaxis_type="log", template="plotly_white", height=420, legend_title_text="architecture",
                      margin={"t": 30})
    return fig
