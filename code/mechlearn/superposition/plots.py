"""Figures for the toy models: WᵀW per instance, features in 2-D, norms and superposition, dimensionality.

The pictures of Elhage et al. (2022), "Toy Models of Superposition", and ARENA 1.5.4, in plotly, one
panel per instance of a sweep (``W`` is ``(n_inst, d_hidden, n_features)``):

* `gram_figure`: ``WᵀW`` per instance on a diverging scale centred on 0. Its diagonal is the squared
  norms, its off-diagonal entries the interference between features, so superposition shows up as
  colour off the diagonal;
* `features_2d_figure`: each feature ``W_i`` as a line from the origin when ``d_hidden == 2`` (the
  pentagon, the antipodal pairs);
* `norms_figure`: the paper's bars, ``‖W_i‖`` per feature, coloured by its superposition
  ``Σ_{j≠i} (Ŵ_i·W_j)²`` (dark: a dimension of its own; bright: shared);
* `dimensionality_figure`: dimensions per feature ``d_hidden / ‖W‖_F²`` against sparsity, with each
  feature's dimensionality scattered on top and guide lines at the paper's "sticky" fractions;
* `neuron_weights_figure`: for the neuron model, each neuron's input weights stacked by feature, so
  a monosemantic neuron is one colour and a polysemantic one several.

Figures have fixed sizes (680 pixels wide, for a 7-inch text column); a page shows one with
`mechlearn.interp.plots.figure_html`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from mechlearn._optional import require
from mechlearn.superposition.geometry import (
    STICKY_FRACTIONS,
    check_toy_weights,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    superposition_scores,
)

__all__ = [
    "FIGURE_WIDTH",
    "gram_figure",
    "features_2d_figure",
    "norms_figure",
    "dimensionality_figure",
    "neuron_weights_figure",
]

FIGURE_WIDTH = 680
"""Width of every figure in pixels (a 7-inch text column)."""
_FONT = {"size": 11}
_MAX_COLS = 4


def _go() -> Any:
    return require("plotly.graph_objects", "mechlearn.superposition.plots", extra="superposition")


def _subplots(rows: int, cols: int, titles: list[str], **kwargs: Any) -> Any:
    make_subplots = require("plotly.subplots", "mechlearn.superposition.plots", extra="superposition").make_subplots
    return make_subplots(rows=rows, cols=cols, subplot_titles=titles, **kwargs)


def _select(W: Tensor, instances: Sequence[int] | None, titles: Sequence[str] | None) -> tuple[Tensor, list[int], list[str]]:
    """``(W as float64 on the CPU, the chosen instance indices, one title each)``, after checking them."""
    W = check_toy_weights(W).detach().to("cpu", torch.float64)
    n_inst = W.shape[0]
    if instances is None:
        chosen = list(range(n_inst))
    else:
        if isinstance(instances, (str, bytes)) or not isinstance(instances, Sequence) or len(instances) == 0:
            raise TypeError(f"instances should be a non-empty sequence of instance indices, got {instances!r}")
        chosen = list(instances)
        bad = [k for k in chosen if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n_inst]
        if bad:
            raise ValueError(f"instances should be integers in [0, {n_inst}), got {bad}")
    if titles is None:
        names = [f"instance {k}" for k in chosen]
    else:
        if isinstance(titles, (str, bytes)) or not isinstance(titles, Sequence):
            raise TypeError(f"titles should be a sequence of {len(chosen)} strings, got {type(titles).__name__}")
        if len(titles) != len(chosen):
            raise ValueError(f"titles should have one title per instance shown ({len(chosen)}), got {len(titles)}")
        names = [str(t) for t in titles]
    return W, chosen, names


def _grid(n: int, max_cols: int = _MAX_COLS) -> tuple[int, int]:
    cols = min(n, max_cols)
    return -(-n // cols), cols


def _finish(fig: Any, title: str | None, height: int, top: int = 60) -> Any:
    fig.update_layout(width=FIGURE_WIDTH, height=height, font=_FONT, template="plotly_white",
                      title={"text": title, "x": 0.0, "xref": "paper"} if title else None,
                      margin={"l": 50, "r": 20, "t": top, "b": 40})
    fig.update_annotations(font_size=11)
    return fig


def gram_figure(
    W: Float[Tensor, "n_inst d_hidden n_features"],
    instances: Sequence[int] | None = None,
    titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """``WᵀW`` (``n_features × n_features``) of each chosen instance, on one diverging scale centred on 0.

    Args:
        W: the toy model's weights.
        instances: which instances to show (all by default), up to 4 per row.
        titles: one title per instance shown (``"instance k"`` by default), e.g. its sparsity.
        title: the figure title.

    Returns:
        A ``plotly.graph_objects.Figure`` with one ``Heatmap`` per instance shown (row 0 at the top),
        all sharing a colour scale symmetric about 0.

    Raises:
        ValueError / TypeError: ``W`` is not a finite ``(n_inst, d_hidden, n_features)`` float tensor,
            or ``instances`` / ``titles`` do not fit it.
    """
    go = _go()
    W, chosen, names = _select(W, instances, titles)
    gram = torch.einsum("khi,khj->kij", W, W)[chosen]
    reach = max(float(gram.abs().max()), 1e-12)
    rows, cols = _grid(len(chosen))
    fig = _subplots(rows, cols, names, horizontal_spacing=0.04, vertical_spacing=0.3 / rows)
    for n, g in enumerate(gram):
        fig.add_trace(go.Heatmap(z=g.numpy(), coloraxis="coloraxis", name=names[n],
                                 hovertemplate="W_%{y}·W_%{x} = %{z:.3f}<extra></extra>"),
                      row=n // cols + 1, col=n % cols + 1)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, showgrid=False)
    fig.update_xaxes(showticklabels=False, showgrid=False, constrain="domain")
    fig.update_layout(coloraxis={"colorscale": "RdBu", "cmid": 0.0, "cmin": -reach, "cmax": reach,
                                 "colorbar": {"title": {"text": "WᵀW"}, "thickness": 12}})
    return _finish(fig, title, 60 + 170 * rows)


def features_2d_figure(
    W: Float[Tensor, "n_inst d_hidden n_features"],
    importance: Float[Tensor, "*inst n_features"] | None = None,
    instances: Sequence[int] | None = None,
    titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """Each feature ``W_i`` drawn as a line from the origin in the 2-D hidden space of each instance.

    Args:
        W: the toy model's weights, with ``d_hidden == 2``.
        importance: ``(n_features,)`` or ``(n_inst, n_features)``: colours the feature tips (the
            paper's yellow-to-purple); one colour for all by default.
        instances, titles, title: as `gram_figure`.

    Returns:
        A ``plotly.graph_objects.Figure`` with two traces per instance shown: the lines (one
        ``Scatter``, segments separated by gaps) and the tips (a ``Scatter`` of markers); square axes
        from -1.5 to 1.5 (or wider if a feature reaches further).

    Raises:
        ValueError: ``d_hidden`` is not 2, or ``importance`` does not have one value per feature.
    """
    go = _go()
    W, chosen, names = _select(W, instances, titles)
    if W.shape[1] != 2:
        raise ValueError(f"features_2d_figure draws a 2-D hidden space: W should have d_hidden == 2, got {W.shape[1]} "
                         "(use gram_figure or norms_figure for more dimensions)")
    n_inst, _, n_features = W.shape
    colours: Tensor | None = None
    if importance is not None:
        if not isinstance(importance, Tensor) or importance.ndim not in (1, 2) or importance.shape[-1] != n_features:
            got = tuple(importance.shape) if isinstance(importance, Tensor) else type(importance).__name__
            raise ValueError(f"importance should be a tensor of shape (n_features,) or (n_inst, n_features) "
                             f"= ({n_inst}, {n_features}), got {got}")
        colours = importance.detach().to("cpu", torch.float64).expand(n_inst, n_features)
    reach = max(1.5, 1.1 * float(W.abs().max()))
    rows, cols = _grid(len(chosen))
    fig = _subplots(rows, cols, names, horizontal_spacing=0.05, vertical_spacing=0.3 / rows)
    for n, k in enumerate(chosen):
        x, y = W[k, 0].tolist(), W[k, 1].tolist()
        line_x = [v for xi in x for v in (0.0, xi, None)]
        line_y = [v for yi in y for v in (0.0, yi, None)]
        where = {"row": n // cols + 1, "col": n % cols + 1}
        fig.add_trace(go.Scatter(x=line_x, y=line_y, mode="lines", line={"color": "#666", "width": 1.5},
                                 hoverinfo="skip", showlegend=False), **where)
        marker: dict[str, Any] = {"size": 8, "color": "#2166ac"}
        if colours is not None:
            marker = {"size": 8, "color": colours[k].tolist(), "coloraxis": "coloraxis"}
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", marker=marker, showlegend=False,
                                 text=[f"feature {i}" for i in range(n_features)],
                                 hovertemplate="%{text}: (%{x:.2f}, %{y:.2f})<extra></extra>"), **where)
    fig.update_xaxes(range=[-reach, reach], showticklabels=False, zeroline=True, constrain="domain")
    fig.update_yaxes(range=[-reach, reach], showticklabels=False, zeroline=True, scaleanchor="x")
    if colours is not None:
        fig.update_layout(coloraxis={"colorscale": "Viridis", "colorbar": {"title": {"text": "importance"},
                                                                            "thickness": 12}})
    return _finish(fig, title, 60 + 170 * rows)


def norms_figure(
    W: Float[Tensor, "n_inst d_hidden n_features"],
    instances: Sequence[int] | None = None,
    titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """The paper's bars: ``‖W_i‖`` per feature (feature 0 at the top), coloured by its superposition.

    The colour is `superposition_scores` (``Σ_{j≠i} (Ŵ_i·W_j)²``), one scale for all panels from 0
    (dark: the feature has a dimension to itself) to at least 1 (bright: it shares).

    Returns:
        A ``plotly.graph_objects.Figure`` with one horizontal ``Bar`` per instance shown, whose ``x``
        are the norms and whose ``marker.color`` the superposition scores.

    Raises:
        ValueError / TypeError: as `gram_figure`.
    """
    go = _go()
    W, chosen, names = _select(W, instances, titles)
    norms, scores = feature_norms(W)[chosen], superposition_scores(W)[chosen]
    n_features = W.shape[2]
    rows, cols = _grid(len(chosen))
    fig = _subplots(rows, cols, names, horizontal_spacing=0.04, vertical_spacing=0.3 / rows, shared_xaxes=True)
    for n in range(len(chosen)):
        fig.add_trace(go.Bar(x=norms[n].tolist(), y=list(range(n_features)), orientation="h", name=names[n],
                             marker={"color": scores[n].tolist(), "coloraxis": "coloraxis"},
                             customdata=scores[n].tolist(), showlegend=False,
                             hovertemplate="feature %{y}: ‖W_i‖ = %{x:.3f}, superposition %{customdata:.3f}"
                                           "<extra></extra>"),
                      row=n // cols + 1, col=n % cols + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False)
    fig.update_xaxes(range=[0, max(1.2, 1.05 * float(norms.max()))], showgrid=True)
    fig.update_layout(bargap=0.1, coloraxis={"colorscale": "Viridis", "cmin": 0.0,
                                             "cmax": max(1.0, float(scores.max())),
                                             "colorbar": {"title": {"text": "superposition"}, "thickness": 12}})
    return _finish(fig, title, 60 + 170 * rows)


def dimensionality_figure(
    W: Float[Tensor, "n_inst d_hidden n_features"],
    feature_probability: Float[Tensor, "n_inst *features"] | Sequence[float],
    title: str | None = None,
    min_norm: float | int = 0.0,
) -> Any:
    """Dimensions per feature against sparsity, each feature's dimensionality on top (the paper's figure).

    The x axis is ``1 / (1 - S)`` = ``1 / feature_probability`` (log scale, sparser to the right); a
    line joins the instances' `dimensions_per_feature`; each instance's `feature_dimensionality`
    values are scattered around its x (spread by feature index, deterministically) in grey; dotted
    guide lines mark `mechlearn.superposition.geometry.STICKY_FRACTIONS`.

    Args:
        W: the toy model's weights, one instance per sparsity.
        feature_probability: ``(n_inst,)`` or ``(n_inst, n_features)`` (the first feature's value is
            used) or a list, each in (0, 1].
        title: the figure title.
        min_norm: scatter only the features with ``‖W_i‖ ≥ min_norm`` (all by default; 0.5 keeps the
            represented ones and hides the dropped features piled up at ``D_i = 0``).

    Returns:
        A ``plotly.graph_objects.Figure`` with two traces, the feature scatter (one point per
        feature kept) and the line (``n_inst`` points; an all-zero instance, with infinitely many
        dimensions per feature, is left out), and one horizontal line per sticky fraction.

    Raises:
        ValueError: ``feature_probability`` does not have one value per instance or is outside
            (0, 1], or ``min_norm`` is negative or not finite.
    """
    go = _go()
    W, _, _ = _select(W, None, None)
    n_inst, _, n_features = W.shape
    if isinstance(feature_probability, Tensor):
        p = feature_probability.detach().to("cpu", torch.float64)
    else:
        p = torch.as_tensor(feature_probability, dtype=torch.float64)
    if p.ndim == 2:
        p = p[:, 0]
    if p.shape != (n_inst,):
        raise ValueError(f"feature_probability should have one value per instance ({n_inst}), "
                         f"got shape {tuple(p.shape)}")
    if not bool(((p > 0) & (p <= 1)).all()):
        raise ValueError(f"feature_probability should be in (0, 1], got {p.tolist()}")
    if isinstance(min_norm, bool) or not isinstance(min_norm, (float, int)) or not 0 <= min_norm < math.inf:
        raise ValueError(f"min_norm should be a finite non-negative number, got {min_norm!r}")
    x = (1 / p).numpy()
    dims, dim_fracs = dimensions_per_feature(W).numpy(), feature_dimensionality(W).numpy()
    keep = (feature_norms(W) >= min_norm).numpy()
    spread = 2 ** ((torch.arange(n_features, dtype=torch.float64) / max(n_features - 1, 1) - 0.5) * 0.25).numpy()
    sx = x[:, None] * spread[None, :]
    fig = go.Figure()
    for a, b in STICKY_FRACTIONS:
        fig.add_hline(a / b, line={"color": "#9467bd", "width": 1, "dash": "dot"},
                      annotation={"text": f"{a}/{b}" if b > 1 else "1", "font_size": 10},
                      annotation_position="left" if b in (4, 8) else "right")
    fig.add_trace(go.Scatter(x=sx[keep], y=dim_fracs[keep], mode="markers", name="feature dimensionality D_i",
                             marker={"size": 4, "color": "rgba(80,80,80,0.45)"},
                             hovertemplate="1/(1-S) %{x:.3g}: D_i = %{y:.3f}<extra></extra>"))
    finite = dims < math.inf
    fig.add_trace(go.Scatter(x=x[finite], y=dims[finite], mode="lines+markers",
                             name="dimensions per feature m / ‖W‖²_F",
                             line={"color": "#d62728", "width": 2}, marker={"size": 6},
                             hovertemplate="1/(1-S) %{x:.3g}: %{y:.3f} dims/feature<extra></extra>"))
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if x.min() / 1.5 <= t <= x.max() * 1.5]
    fig.update_xaxes(type="log", title_text="1 / (1 − S)   (dense ← → sparse)", tickvals=ticks,
                     ticktext=[str(t) for t in ticks])
    fig.update_yaxes(title_text="dimensions", range=[0, 1.1])
    fig.update_layout(legend={"orientation": "h", "y": -0.2, "x": 0.0})
    return _finish(fig, title, 440, top=50 if title else 20)


def neuron_weights_figure(
    W: Float[Tensor, "n_inst d_hidden n_features"],
    instances: Sequence[int] | None = None,
    titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """Each neuron's input weights ``W[k, n, :]`` as bars stacked by feature, one panel per instance.

    A monosemantic neuron is one coloured bar above 0; a polysemantic one stacks several colours.
    Negative weights (inhibition) stack below 0.

    Returns:
        A ``plotly.graph_objects.Figure`` with ``n_features`` ``Bar`` traces per instance shown (one
        per feature, x = neuron index, in the legend once), ``barmode="relative"``.

    Raises:
        ValueError / TypeError: as `gram_figure`.
    """
    go = _go()
    colors = require("plotly.colors", "mechlearn.superposition.plots", extra="superposition")
    W, chosen, names = _select(W, instances, titles)
    _, d_hidden, n_features = W.shape
    palette = colors.sample_colorscale("Turbo", [i / max(n_features - 1, 1) for i in range(n_features)])
    rows = len(chosen)
    fig = _subplots(rows, 1, names, vertical_spacing=0.35 / rows, shared_xaxes=True)
    for n, k in enumerate(chosen):
        for i in range(n_features):
            fig.add_trace(go.Bar(x=list(range(d_hidden)), y=W[k, :, i].tolist(), name=f"feature {i}",
                                 legendgroup=f"f{i}", showlegend=n == 0, marker_color=palette[i],
                                 hovertemplate=f"neuron %{{x}}, feature {i}: %{{y:.3f}}<extra></extra>"),
                          row=n + 1, col=1)
    fig.update_layout(barmode="relative", bargap=0.15)
    fig.update_xaxes(title_text="neuron", row=rows, col=1, dtick=1)
    return _finish(fig, title, 80 + 150 * rows)
