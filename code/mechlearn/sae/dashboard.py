"""Latent dashboards as self-contained HTML: what a latent reads and what it writes.

ARENA 1.3.3 ("Replicating SAE dashboards") rebuilds the panels of the feature browser of Bricken et
al. (2023, "Towards Monosemanticity"), which SAELens's ``sae_vis`` and Neuronpedia also draw. Each
panel is evidence about one SAE latent from a different side:

* **what it reads** (`top_activating_contexts`, `activation_histogram`): the token windows where the
  latent fires hardest, every character shaded by the latent's activation there, and the
  distribution of its non-zero activations with the fraction of tokens it fires on. Top contexts
  alone are the classic *interpretability illusion*: the maxima of a latent can share a pattern its
  everyday, weaker activations do not; the histogram says how much of the latent's mass those
  maxima are.
* **what it writes** (`latent_logit_effects`): the decoder row ``W_dec[latent]`` pushed through the
  unembedding along the direct path, ``W_dec[latent] @ W_U``, ranked into the next tokens it boosts
  and suppresses. A latent that fires after ``d`` of ``def`` and boosts ``e`` and ``f`` is a
  stronger story than either half alone. It is the *direct* effect only: later layers may read the
  direction and write something else (ablating the latent measures the total effect).

The final LayerNorm sits between the residual stream and ``W_U``. ARENA reads GPT-2 through
TransformerLens with the LayerNorm folded (``fold_ln``, ``center_writing_weights``,
``center_unembed``), so its ``W_dec[latent] @ W_U`` already includes the LayerNorm's centring and
weight. Our char-LM keeps its LayerNorm, so with ``fold_ln=True`` (the default) the effect is
computed the same way by hand: centre the direction over ``d_model`` (the LayerNorm subtracts the
mean), multiply by the LayerNorm weight ``w``, unembed, and centre over the vocabulary (a constant
added to every logit changes no probability). Two things are left out, as in ARENA: the division
by the LayerNorm's scale ``σ`` (a positive number per position, so it rescales every effect alike
and changes no ranking) and the latent's own small change to ``σ``. With ``fold_ln=False`` the
effect is the raw ``W_dec[latent] @ W_U``.

`latent_dashboard` puts the panels into one HTML block (``_repr_html_``), built on the page with no
external viewer: text escaped, whitespace shown (``·`` for a space, ``↵`` for a newline, ``⇥`` for a
tab), colours that read on the site's light and dark themes, an inline SVG histogram.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn.interp.attribution import final_ln_params
from mechlearn.interp.core import check_hook_name, model_spec, run_with_cache, weights
from mechlearn.sae.base import SAE

__all__ = [
    "ActivatingContext", "ActivationHistogram", "LogitEffects", "LatentStatistics", "LatentDashboard",
    "sae_acts_post", "top_activating_contexts", "activation_histogram", "latent_logit_effects",
    "latent_statistics", "latent_dashboard", "HIGHLIGHT_RGB",
]

HIGHLIGHT_RGB = (233, 162, 59)
"""The highlight colour (the site's colour for the interpretability part); its opacity grows with
the activation, so it reads on the light and the dark theme alike."""

_MIN_ALPHA, _MAX_ALPHA = 0.12, 0.85  # a faint activation stays visible; the strongest keeps text legible
_WHITESPACE = {" ": "·", "\n": "↵", "\t": "⇥", "\r": "␍"}


# -- argument checks ------------------------------------------------------------------------------

def _check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | torch.Tensor) or (
        isinstance(value, torch.Tensor) and (value.numel() != 1 or value.is_floating_point())
    ):
        raise TypeError(f"{name} should be an int, got {type(value).__name__}")
    value = int(value)
    if value < low or (high is not None and value >= high):
        where = f"[{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{name} = {value} is out of range: it should be {where}")
    return value


def _check_latent(latent: Any, d_sae: int) -> int:
    return _check_int(latent, "latent", 0, d_sae)


def _check_acts(tokens: Any, acts: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(tokens, Tensor) or tokens.ndim != 2 or tokens.is_floating_point() or tokens.dtype == torch.bool:
        raise TypeError(f"tokens should be an integer tensor of shape (batch, pos), got "
                        f"{getattr(tokens, 'dtype', type(tokens).__name__)} {tuple(getattr(tokens, 'shape', ()))}")
    if not isinstance(acts, Tensor) or acts.ndim != 3 or not acts.is_floating_point():
        raise TypeError(f"acts should be a floating tensor of latent activations (batch, pos, d_sae), got "
                        f"{getattr(acts, 'dtype', type(acts).__name__)} {tuple(getattr(acts, 'shape', ()))}")
    if acts.shape[:2] != tokens.shape:
        raise ValueError(f"acts {tuple(acts.shape)} should have the (batch, pos) of tokens {tuple(tokens.shape)}")
    if not bool(acts.isfinite().all()):
        raise ValueError("acts should be finite (got NaN or inf)")
    return tokens, acts


def _check_model_sae(model: Any, sae: Any) -> None:
    if not isinstance(sae, SAE):
        raise TypeError(f"sae should be a mechlearn.sae.base.SAE, got {type(sae).__name__}")
    d_model = model_spec(model).d_model
    if sae.d_in != d_model:
        raise ValueError(f"the SAE reads d_in = {sae.d_in} but the model's residual stream has "
                         f"d_model = {d_model}: the SAE should be trained on this model")


def _check_tokenizer(tokenizer: Any, d_vocab: int) -> None:
    size = getattr(tokenizer, "vocab_size", None)
    if size is None or not callable(getattr(tokenizer, "decode", None)):
        raise TypeError(f"tokenizer should have vocab_size and decode(ids), got {type(tokenizer).__name__}")
    if int(size) != d_vocab:
        raise ValueError(f"the tokenizer has {size} tokens but the model's d_vocab is {d_vocab}: "
                         "use the tokenizer the model was trained with")


def _token_str(tokenizer: Any, token_id: int) -> str:
    return tokenizer.decode([int(token_id)])


# -- activations ------------------------------------------------------------------------------------

@torch.no_grad()
def sae_acts_post(
    model: Any, sae: SAE, tokens: Int[Tensor, "batch pos"], hook: str
) -> Float[Tensor, "batch pos d_sae"]:
    """The SAE's latents at every position: ``sae.encode`` of the model's activations at ``hook``.

    The name is SAELens's ``hook_sae_acts_post``. The model runs unmodified (the SAE only reads).

    Raises:
        KeyError: a hook name the model does not have.
        ValueError: the SAE's ``d_in`` is not the model's ``d_model``.
    """
    check_hook_name(model, hook)
    _check_model_sae(model, sae)
    _, cache = run_with_cache(model, tokens, hook)
    x = cache[hook]
    return sae.encode(x.to(sae.W_dec.dtype))


@dataclass(frozen=True)
class LatentStatistics:
    """How often each latent fires and how hard, over a batch of tokens."""

    frequency: Float[Tensor, " d_sae"]
    """Fraction of tokens where the latent is positive."""
    mean_activation: Float[Tensor, " d_sae"]
    """Mean activation over the tokens where it fires (0 for a latent that never does)."""
    max_activation: Float[Tensor, " d_sae"]
    """Largest activation."""


def latent_statistics(acts: Float[Tensor, "batch pos d_sae"]) -> LatentStatistics:
    """Firing frequency, mean activation when firing, and maximum, per latent."""
    if not isinstance(acts, Tensor) or acts.ndim != 3 or not acts.is_floating_point():
        raise TypeError(f"acts should be a floating tensor (batch, pos, d_sae), got "
                        f"{getattr(acts, 'dtype', type(acts).__name__)} {tuple(getattr(acts, 'shape', ()))}")
    if acts.shape[0] * acts.shape[1] == 0:
        raise ValueError(f"acts should hold at least one token, got shape {tuple(acts.shape)}")
    flat = acts.reshape(-1, acts.shape[-1])
    fires = flat > 0
    count = fires.sum(0)
    total = torch.where(fires, flat, torch.zeros_like(flat)).sum(0)
    return LatentStatistics(
        frequency=count.to(flat.dtype) / flat.shape[0],
        mean_activation=total / count.clamp(min=1),
        max_activation=flat.max(0).values,
    )


# -- what the latent reads ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ActivatingContext:
    """A window of tokens around one place where a latent fires."""

    activation: float
    """The latent's activation at the window's peak token."""
    batch: int
    """The sequence the window comes from."""
    pos: int
    """The peak token's position in that sequence."""
    start: int
    """The window's first position (the window is ``tokens[batch, start:start + len(token_ids)]``)."""
    token_ids: list[int]
    """The window's token ids."""
    text: list[str]
    """One string per token (one character for the char-LM)."""
    acts: list[float]
    """The latent's activation at every token of the window."""

    @property
    def peak(self) -> int:
        """The peak token's index inside the window."""
        return self.pos - self.start


def top_activating_contexts(
    tokens: Int[Tensor, "batch pos"],
    acts: Float[Tensor, "batch pos d_sae"],
    latent: int,
    tokenizer: Any,
    k: int = 10,
    left: int = 24,
    right: int = 8,
    no_overlap: bool = True,
    min_pos: int = 0,
) -> list[ActivatingContext]:
    """The ``k`` token windows where ``latent`` fires hardest, strongest first.

    Positions are taken in decreasing order of activation (ties: the earlier flat
    index first); only positions where the latent fires (activation > 0) count, so a
    rare latent may return fewer than ``k``. A window runs from ``left`` tokens before
    the peak to ``right`` after, clipped to the sequence: a causal model's latent can
    only read the left side, so more of it is shown. With ``no_overlap`` (ARENA's
    ``get_k_largest_indices(no_overlap=True)``) a position is skipped when its window
    would share a token with one already taken, so a latent that fires on every space
    of a line does not fill the list with shifted copies of that line. Peaks before
    ``min_pos`` are skipped (ARENA's ``buffer``): the first characters of a window
    have almost no context, and their unusual stream can top a latent's list.

    Raises:
        ValueError: ``latent`` out of range, ``k < 1``, ``left``, ``right`` or
            ``min_pos`` negative, or ``acts`` whose (batch, pos) is not ``tokens``'.
    """
    tokens, acts = _check_acts(tokens, acts)
    latent = _check_latent(latent, acts.shape[-1])
    k = _check_int(k, "k", 1)
    left, right = _check_int(left, "left", 0), _check_int(right, "right", 0)
    min_pos = _check_int(min_pos, "min_pos", 0)
    a = acts[..., latent]
    n_pos = a.shape[1]
    flat = a.reshape(-1)
    order = torch.argsort(flat, descending=True, stable=True)
    chosen: list[tuple[int, int]] = []
    for index in order.tolist():
        if flat[index] <= 0 or len(chosen) == k:
            break
        b, p = divmod(index, n_pos)
        overlaps = any(b == cb and abs(p - cp) <= left + right for cb, cp in chosen)
        if p < min_pos or (no_overlap and overlaps):
            continue
        chosen.append((b, p))
    contexts = []
    for b, p in chosen:
        start, stop = max(0, p - left), min(n_pos, p + right + 1)
        ids = tokens[b, start:stop].tolist()
        contexts.append(ActivatingContext(
            activation=float(a[b, p]), batch=b, pos=p, start=start, token_ids=ids,
            text=[_token_str(tokenizer, i) for i in ids], acts=a[b, start:stop].tolist(),
        ))
    return contexts


@dataclass(frozen=True)
class ActivationHistogram:
    """The distribution of a latent's non-zero activations (ARENA's "activation density" plot)."""

    counts: Int[Tensor, " bins"]
    """How many activations fall in each bin."""
    edges: Float[Tensor, " bins_plus_1"]
    """Bin edges, from 0 to the largest activation (the last bin includes its right edge)."""
    frequency: float
    """Fraction of all tokens where the latent fires."""
    n_tokens: int
    """Number of tokens looked at."""


def activation_histogram(
    acts: Float[Tensor, "batch pos d_sae"], latent: int, bins: int = 30
) -> ActivationHistogram:
    """Histogram of ``latent``'s positive activations, and how often it fires.

    The bins split ``[0, max]`` evenly, as ``numpy.histogram(values, bins, range=(0, max))``; a
    latent that never fires gets empty bins over ``[0, 1]``.

    Raises:
        ValueError: ``latent`` out of range or ``bins < 1``.
    """
    if not isinstance(acts, Tensor) or acts.ndim != 3 or not acts.is_floating_point():
        raise TypeError(f"acts should be a floating tensor (batch, pos, d_sae), got "
                        f"{getattr(acts, 'dtype', type(acts).__name__)} {tuple(getattr(acts, 'shape', ()))}")
    latent = _check_latent(latent, acts.shape[-1])
    bins = _check_int(bins, "bins", 1)
    values = acts[..., latent].reshape(-1)
    if not bool(values.isfinite().all()):
        raise ValueError("acts should be finite (got NaN or inf)")
    positive = values[values > 0].double()
    top = float(positive.max()) if positive.numel() else 1.0
    edges = torch.linspace(0.0, top, bins + 1, dtype=torch.float64)
    # bin i holds edges[i] <= v < edges[i + 1]; the largest value goes in the last bin (numpy's rule)
    index = (torch.bucketize(positive, edges, right=True) - 1).clamp(0, bins - 1)
    counts = torch.bincount(index, minlength=bins)
    return ActivationHistogram(
        counts=counts, edges=edges,
        frequency=positive.numel() / max(values.numel(), 1), n_tokens=values.numel(),
    )


# -- what the latent writes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LogitEffects:
    """The direct effect of a latent's decoder direction on every next-token logit."""

    effects: Float[Tensor, " d_vocab"]
    """Logit change per unit of latent activation (see the module docstring for the LayerNorm)."""
    top_ids: list[int]
    """The most boosted tokens, largest effect first."""
    top_tokens: list[str]
    """Their strings."""
    top_values: list[float]
    """Their effects."""
    bottom_ids: list[int]
    """The most suppressed tokens, most negative first."""
    bottom_tokens: list[str]
    """Their strings."""
    bottom_values: list[float]
    """Their effects."""


@torch.no_grad()
def latent_logit_effects(
    model: Any, sae: SAE, latent: int, tokenizer: Any, k: int = 10, fold_ln: bool = True
) -> LogitEffects:
    """The next tokens ``latent`` boosts and suppresses most: ``W_dec[latent] @ W_U``.

    ARENA's ``show_top_logits``. With ``fold_ln`` the final LayerNorm's centring and
    weight ``w`` are applied to the direction ``d`` and the result is centred over the
    vocabulary, as ARENA's TransformerLens model with folded LayerNorm computes it:
    ``e = ((d - mean(d)) ⊙ w) W_U``, then ``e - mean(e)``. Without it, ``d W_U``.

    Raises:
        ValueError: ``latent`` out of range, ``k`` not in ``[1, d_vocab]``, the SAE's
            ``d_in`` not the model's ``d_model``, or a tokenizer whose size is not the
            model's ``d_vocab``.
    """
    _check_model_sae(model, sae)
    spec = model_spec(model)
    _check_tokenizer(tokenizer, spec.d_vocab)
    latent = _check_latent(latent, sae.d_sae)
    k = _check_int(k, "k", 1, spec.d_vocab + 1)
    W_U = weights(model).W_U
    d = sae.W_dec[latent].to(W_U.dtype)
    if fold_ln:
        w, _ = final_ln_params(model)
        effects = ((d - d.mean()) * w) @ W_U  # what the LayerNorm lets through
        effects = effects - effects.mean()  # a constant shift changes no probability
    else:
        effects = d @ W_U
    effects = effects.detach()
    top = torch.topk(effects, k).indices.tolist()
    bottom = torch.topk(effects, k, largest=False).indices.tolist()
    return LogitEffects(
        effects=effects,
        top_ids=top,
        top_tokens=[_token_str(tokenizer, i) for i in top],
        top_values=effects[top].tolist(),
        bottom_ids=bottom,
        bottom_tokens=[_token_str(tokenizer, i) for i in bottom],
        bottom_values=effects[bottom].tolist(),
    )


# -- HTML ------------------------------------------------------------------------------------------------

_CSS = """<style>
.mlsae-dash{border:1px solid rgba(128,128,128,.35);border-radius:6px;padding:.5rem .7rem;margin:.6rem 0;
 font-size:.85rem;line-height:1.35}
.mlsae-head{margin-bottom:.35rem}.mlsae-head b{font-size:.95rem}
.mlsae-note{opacity:.75}
.mlsae-row{display:flex;flex-wrap:wrap;gap:.4rem 1.6rem;align-items:flex-start}
.mlsae-row svg{overflow:visible}
.mlsae-tab{display:grid;grid-template-columns:auto auto;column-gap:.7rem;font-size:.8rem;
 font-variant-numeric:tabular-nums}
.mlsae-tab .mlsae-th{grid-column:1/3;font-weight:600;border-bottom:1px solid rgba(128,128,128,.4);margin-bottom:.1rem}
.mlsae-tab span:nth-child(odd):not(.mlsae-th){text-align:right}
.mlsae-tab code,.mlsae-ctx code{background:none;color:inherit;padding:0;font-size:.8rem}
.mlsae-ctxs{margin-top:.4rem}
.mlsae-ctx{display:flex;gap:.6rem;white-space:pre;overflow-x:auto}
.mlsae-ctx .mlsae-val{min-width:3.2rem;text-align:right;opacity:.8;font-variant-numeric:tabular-nums}
.mlsae-ws{color:#8c8c8c}
.mlsae-peak{outline:1.5px solid rgba(233,162,59,1);border-radius:2px}
</style>"""


def _visible(text: str) -> tuple[str, bool]:
    """``text`` escaped for HTML with whitespace drawn visibly; True when it was whitespace only."""
    shown = "".join(_WHITESPACE.get(c, c) for c in text)
    return html.escape(shown, quote=True), bool(text) and all(c in _WHITESPACE for c in text)


def _alpha(act: float, max_act: float) -> float:
    """Highlight opacity: 0 where the latent is silent, rising linearly with the activation."""
    if act <= 0 or max_act <= 0:
        return 0.0
    return _MIN_ALPHA + (_MAX_ALPHA - _MIN_ALPHA) * min(act / max_act, 1.0)


def _token_span(text: str, act: float, max_act: float, peak: bool) -> str:
    shown, whitespace = _visible(text)
    classes = (["mlsae-ws"] if whitespace else []) + (["mlsae-peak"] if peak else [])
    attrs = f' class="{" ".join(classes)}"' if classes else ""
    alpha = _alpha(act, max_act)
    if alpha == 0.0 and not peak:
        return f"<span{attrs}>{shown}</span>"
    r, g, b = HIGHLIGHT_RGB
    title = html.escape(f"{text!r}: {act:.3f}", quote=True)
    return (f'<span{attrs} style="background:rgba({r},{g},{b},{alpha:.3f})" '
            f'title="{title}" data-act="{act:.6g}">{shown}</span>')


def _context_html(ctx: ActivatingContext, max_act: float) -> str:
    spans = "".join(_token_span(t, a, max_act, i == ctx.peak) for i, (t, a) in enumerate(zip(ctx.text, ctx.acts)))
    more = '<span class="mlsae-ws">…</span>' if ctx.start > 0 else ""
    return (f'<div class="mlsae-ctx"><span class="mlsae-val">{ctx.activation:.2f}</span>'
            f"<code>{more}{spans}</code></div>")


def _histogram_svg(hist: ActivationHistogram, width: int = 230, height: int = 96) -> str:
    """Bars of ``hist`` as inline SVG (axes in the text colour, bars in the highlight colour)."""
    counts = hist.counts.tolist()
    top = max(max(counts), 1)
    pad_l, pad_b, pad_t = 4, 16, 14
    bar_w = (width - pad_l) / len(counts)
    r, g, b = HIGHLIGHT_RGB
    bars = "".join(
        f'<rect x="{pad_l + i * bar_w:.1f}" y="{pad_t + (height - pad_t - pad_b) * (1 - c / top):.1f}" '
        f'width="{max(bar_w - 1, 0.5):.1f}" height="{(height - pad_t - pad_b) * c / top:.1f}" '
        f'fill="rgb({r},{g},{b})"><title>{hist.edges[i]:.2f}–{hist.edges[i + 1]:.2f}: {c}</title></rect>'
        for i, c in enumerate(counts)
    )
    base = height - pad_b
    label = f"activations &gt; 0: {sum(counts)} of {hist.n_tokens} tokens"
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg" style="font-size:10px">'
        f'<text x="{pad_l}" y="10" fill="currentColor">{label}</text>{bars}'
        f'<line x1="{pad_l}" y1="{base}" x2="{width}" y2="{base}" stroke="currentColor" stroke-opacity=".5"/>'
        f'<text x="{pad_l}" y="{height - 3}" fill="currentColor">0</text>'
        f'<text x="{width}" y="{height - 3}" fill="currentColor" text-anchor="end">'
        f"{float(hist.edges[-1]):.2f}</text></svg>"
    )


def _logit_table(title: str, tokens: list[str], values: list[float]) -> str:
    # a grid of divs, not a <table>: Quarto restyles every table on a page
    cells = "".join(f"<span><code>{_visible(t)[0]}</code></span><span>{v:+.3f}</span>"
                    for t, v in zip(tokens, values))
    return f'<div class="mlsae-tab"><span class="mlsae-th">{title}</span>{cells}</div>'


@dataclass(frozen=True)
class LatentDashboard:
    """One latent's dashboard: its data, and the HTML that shows it (``_repr_html_``)."""

    latent: int
    """The latent's index."""
    contexts: list[ActivatingContext]
    """Its top activating contexts."""
    histogram: ActivationHistogram
    """Its activation histogram."""
    logits: LogitEffects
    """Its direct logit effects."""
    title: str = ""
    """A name given to the latent, shown in the header (escaped)."""
    html: str = field(default="", repr=False)
    """The dashboard as a self-contained HTML block."""

    def _repr_html_(self) -> str:
        """The HTML, for Jupyter and Quarto."""
        return self.html


def latent_dashboard(
    model: Any,
    sae: SAE,
    latent: int,
    tokens: Int[Tensor, "batch pos"],
    acts: Float[Tensor, "batch pos d_sae"],
    tokenizer: Any,
    k: int = 8,
    n_logits: int = 6,
    left: int = 24,
    right: int = 8,
    bins: int = 30,
    title: str = "",
    fold_ln: bool = True,
    min_pos: int = 0,
) -> LatentDashboard:
    """The dashboard of ``latent``: header, activation histogram, logit tables and top contexts.

    Args:
        tokens, acts: the tokens and the latents on them (`sae_acts_post`), computed once and
            shared by every dashboard.
        k: how many contexts; ``left``, ``right``: their width; ``min_pos``: the first position
            a context may peak at (`top_activating_contexts`).
        n_logits: rows of each logit table (`latent_logit_effects`).
        title: a name for the latent, shown escaped in the header.

    Raises:
        ValueError: ``latent`` out of range, ``k < 1``, mismatched shapes, or a model, SAE and
            tokenizer of different widths.
    """
    tokens, acts = _check_acts(tokens, acts)
    _check_model_sae(model, sae)
    if acts.shape[-1] != sae.d_sae:
        raise ValueError(f"acts has {acts.shape[-1]} latents but the SAE has d_sae = {sae.d_sae}")
    latent = _check_latent(latent, sae.d_sae)
    logits = latent_logit_effects(model, sae, latent, tokenizer, k=n_logits, fold_ln=fold_ln)
    contexts = top_activating_contexts(tokens, acts, latent, tokenizer, k=k, left=left, right=right,
                                       min_pos=min_pos)
    hist = activation_histogram(acts, latent, bins=bins)
    max_act = contexts[0].activation if contexts else 0.0  # the shading's full scale
    overall_max = max(float(acts[..., latent].max()), 0.0)  # every position, as the histogram
    name = f" · {html.escape(title)}" if title else ""
    head = (f'<div class="mlsae-head"><b>Latent {latent}</b>{name} '
            f'<span class="mlsae-note">· fires on {100 * hist.frequency:.2f}% of tokens · '
            f"max {overall_max:.2f}</span></div>")
    row = (f'<div class="mlsae-row">{_histogram_svg(hist)}'
           f'{_logit_table("boosts", logits.top_tokens, logits.top_values)}'
           f'{_logit_table("suppresses", logits.bottom_tokens, logits.bottom_values)}</div>')
    body = "".join(_context_html(c, max_act) for c in contexts) or (
        '<div class="mlsae-note">never fires on these tokens</div>')
    page = f'{_CSS}<div class="mlsae-dash">{head}{row}<div class="mlsae-ctxs">{body}</div></div>'
    return LatentDashboard(latent, contexts, hist, logits, title, page)

