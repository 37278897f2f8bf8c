"""Interactive plotly figures for circuits work: attention patterns, heat maps, attribution bars.

* `attention_figure`: one prompt's attention patterns, one head at a time chosen from a menu,
  with the query and key tokens (and their positions) on hover — the job circuitsvis's
  ``attention_patterns`` does in ARENA 1.2, here in plain plotly so a page needs no other script;
* `heatmap_figure`: a matrix of scores (activation patching by layer and position, per-head
  tables, composition scores) on a diverging colour scale centred on 0, labels on hover;
* `bar_figure`: one value per component (direct logit attribution, ablation effects);
* `figure_html`: the HTML a page displays, with a fixed ``div_id`` so a re-render is identical.

Axes are numbered positions with the labels as tick text, never plotly categories: token strings
repeat ("to" twice in a prompt) and a categorical axis would merge them. Row 0 of a matrix is
drawn at the top, as printed. Labels are HTML-escaped (a token may be ``"<"``) and whitespace is
made visible. Sizes suit a 7-inch text column (about 670 pixels wide).

Follows ARENA 1.2 (``imshow``, ``line`` and circuitsvis plots of the exercises).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from jaxtyping import Real
from torch import Tensor

from mechlearn._optional import require

__all__ = ["attention_figure", "heatmap_figure", "bar_figure", "figure_html"]

_HEIGHT = 460
"""Default figure height in pixels; the width follows the page column."""
_FONT = {"size": 12}
_MARGIN = {"l": 60, "r": 20, "t": 50, "b": 60}
_MAX_TICKS = 40
"""Above this many positions, tick labels are thinned out (every label stays on hover)."""
_ANNOTATE_CELLS = 48
"""Heat maps with at most this many cells write their values in the cells by default."""
_DIV_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

Array = Tensor | np.ndarray


def _go() -> Any:
    return require("plotly.graph_objects", "mechlearn.interp.plots")


def _as_array(values: Any, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    """``values`` as a float64 NumPy array with one of the allowed numbers of dimensions."""
    if isinstance(values, Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    elif not isinstance(values, np.ndarray):
        raise TypeError(f"{name} should be a torch.Tensor or a numpy array, got {type(values).__name__}")
    if values.dtype.kind not in "biuf":
        raise TypeError(f"{name} should hold real numbers, got dtype {values.dtype}")
    if values.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} should be {want}, got shape {tuple(values.shape)}")
    if 0 in values.shape:
        raise ValueError(f"{name} should not be empty, got shape {tuple(values.shape)}")
    return values.astype(np.float64)


def _labels(labels: Any, n: int, name: str, what: str) -> list[str]:
    """``labels`` as ``n`` display strings, or raise naming the mismatch."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(f"{name} should be a sequence of {n} labels, got {type(labels).__name__}")
    if len(labels) != n:
        raise ValueError(f"{name} should have one label per {what} ({n}), got {len(labels)}")
    return [_show(label) for label in labels]


def _show(label: Any) -> str:
    """A label as safe, visible text: whitespace shown, HTML escaped, (layer, head) as ``L0H1``."""
    if isinstance(label, tuple) and len(label) == 2 and all(isinstance(i, int) for i in label):
        return f"L{label[0]}H{label[1]}"
    text = str(label)
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    if text.strip() == "" or text != text.strip():
        text = repr(text)
    return html.escape(text)


def _ticks(labels: list[str]) -> dict[str, Any]:
    """Tick positions 0..n-1 with the labels as text, thinned out above `_MAX_TICKS`."""
    step = max(1, -(-len(labels) // _MAX_TICKS))
    index = list(range(0, len(labels), step))
    return {"tickmode": "array", "tickvals": index, "ticktext": [labels[i] for i in index]}


def _layout(fig: Any, title: str | None, height: int | None) -> Any:
    fig.update_layout(title={"text": title, "x": 0.0, "xref": "paper", "y": 0.98, "yanchor": "top"},
                      height=height or _HEIGHT, font=_FONT, template="plotly_white")
    if fig.layout.margin.t is None:
        fig.update_layout(margin=_MARGIN)
    return fig


def attention_figure(
    pattern: Real[Array, "*head query key"],
    tokens: Sequence[str],
    heads: Sequence[Any] | None = None,
    title: str | None = None,
    height: int | None = None,
) -> Any:
    """Attention patterns of one prompt, one head shown at a time, picked from a menu.

    Args:
        pattern: ``(n_heads, query, key)`` (e.g. ``cache["pattern", layer][0]``) or one head's
            ``(query, key)``; rows are queries, columns keys.
        tokens: the prompt's token strings, one per position.
        heads: a label per head, e.g. ``[(1, 4), (1, 10)]`` (shown as ``L1H4``) or strings;
            ``head 0 .. n - 1`` by default.
        title: the figure title; the chosen head's label is appended.
        height: in pixels (460 by default).

    Returns:
        A ``plotly.graph_objects.Figure`` with one heat map per head (colour 0..1, row 0 at the
        top); hovering a cell shows ``query i 'tok' -> key j 'tok': weight``.

    Raises:
        ValueError: ``pattern`` is not 2-D or 3-D or not square, or ``tokens`` / ``heads`` have the
            wrong length.
    """
    go = _go()
    values = _as_array(pattern, "pattern", (2, 3))
    if values.ndim == 2:
        values = values[None]
    n_heads, n_q, n_k = values.shape
    if n_q != n_k:
        raise ValueError(f"pattern should be square (query, key) for one prompt, got {n_q} queries and {n_k} keys")
    toks = _labels(tokens, n_k, "tokens", "position")
    names = _labels(heads, n_heads, "heads", "head") if heads is not None else [f"head {h}" for h in range(n_heads)]
    where = [f"{i} {t}" for i, t in enumerate(toks)]
    fig = go.Figure()
    for h in range(n_heads):
        text = [[f"query {where[q]} → key {where[k]}" for k in range(n_k)] for q in range(n_q)]
        fig.add_trace(go.Heatmap(
            z=values[h], x=list(range(n_k)), y=list(range(n_q)), text=text, name=names[h], visible=h == 0,
            zmin=0.0, zmax=1.0, colorscale="Blues", colorbar={"title": {"text": "attention"}, "thickness": 12},
            hovertemplate="%{text}<br>attention %{z:.3f}<extra>" + names[h] + "</extra>",
        ))
    heading = (title + " — ") if title else ""
    if n_heads > 1:
        buttons = [{"label": names[h], "method": "update",
                    "args": [{"visible": [i == h for i in range(n_heads)]}, {"title.text": heading + names[h]}]}
                   for h in range(n_heads)]
        # The menu sits under the title, at the left, clear of plotly's tool bar at the top right.
        fig.update_layout(updatemenus=[{"buttons": buttons, "direction": "down", "x": 0.0, "xanchor": "left",
                                        "y": 1.02, "yanchor": "bottom", "showactive": True}],
                          margin={**_MARGIN, "t": 90})
    ticks = _ticks(toks)
    fig.update_xaxes(title_text="key", tickangle=-60, constrain="domain", showgrid=False, **ticks)
    fig.update_yaxes(title_text="query", autorange="reversed", scaleanchor="x", constrain="domain", showgrid=False,
                     **ticks)
    return _layout(fig, heading + names[0], height)


def heatmap_figure(
    values: Real[Array, "rows cols"],
    x_labels: Sequence[Any],
    y_labels: Sequence[Any],
    title: str | None = None,
    zmid: float | int | None = 0.0,
    x_title: str | None = None,
    y_title: str | None = None,
    value_name: str = "value",
    annotate: bool | None = None,
    height: int | None = None,
) -> Any:
    """A heat map of ``values`` (row ``i`` labelled ``y_labels[i]``, drawn top to bottom).

    Args:
        values: ``(rows, cols)``, e.g. ``(n_layers, n_heads)`` scores or ``(layer, position)`` patching results.
        x_labels: one label per column; y_labels: one per row (strings, numbers or ``(layer, head)``).
        zmid: centre of a diverging red-white-blue scale, symmetric about it (positive is blue, as
            ARENA's ``imshow``); ``None`` for a sequential scale from the minimum to the maximum.
        x_title, y_title: axis titles; value_name: what the colour means (colour bar and hover).
        annotate: write each value in its cell (3 significant digits); by default only when there
            are at most `_ANNOTATE_CELLS` cells, e.g. a ``(n_layers, n_heads)`` table of a small model.
        height: in pixels (460 by default).

    Returns:
        A ``plotly.graph_objects.Figure``; the heat map's ``z`` is ``values`` as given (not transposed).

    Raises:
        ValueError: ``values`` is not 2-D, or a label list does not match its axis.
    """
    go = _go()
    z = _as_array(values, "values", (2,))
    n_rows, n_cols = z.shape
    xs = _labels(x_labels, n_cols, "x_labels", "column of values")
    ys = _labels(y_labels, n_rows, "y_labels", "row of values")
    text = [[f"{ys[i]}, {xs[j]}" for j in range(n_cols)] for i in range(n_rows)]
    scale: dict[str, Any] = {"colorscale": "Viridis"}
    if zmid is not None:
        finite = np.abs(z[np.isfinite(z)] - zmid)
        reach = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        scale = {"colorscale": "RdBu", "zmid": float(zmid), "zmin": zmid - reach, "zmax": zmid + reach}
    if annotate is None:
        annotate = z.size <= _ANNOTATE_CELLS
    if annotate:
        scale["texttemplate"] = "%{z:.3g}"
    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(n_cols)), y=list(range(n_rows)), text=text, **scale,
        colorbar={"title": {"text": value_name}, "thickness": 12},
        hovertemplate="%{text}<br>" + html.escape(value_name) + " %{z:.4g}<extra></extra>",
    ))
    fig.update_xaxes(title_text=x_title, tickangle=-60 if n_cols > 12 else 0, showgrid=False, **_ticks(xs))
    fig.update_yaxes(title_text=y_title, autorange="reversed", showgrid=False, **_ticks(ys))
    return _layout(fig, title, height)


def bar_figure(
    values: Real[Array, " n"],
    labels: Sequence[Any],
    title: str | None = None,
    value_name: str = "value",
    horizontal: bool = False,
    height: int | None = None,
) -> Any:
    """One bar per component (positive blue, negative red), e.g. direct logit attribution per head.

    Args:
        values: ``(n,)``.
        labels: one label per bar (strings, numbers or ``(layer, head)``).
        value_name: the value axis title, also shown on hover.
        horizontal: bars along x, labels down the y axis (first label at the top); for many components.
        height: in pixels (460 by default).

    Returns:
        A ``plotly.graph_objects.Figure`` with one ``Bar`` trace holding ``values`` in order.

    Raises:
        ValueError: ``values`` is not 1-D, or ``labels`` does not have one label per value.
    """
    go = _go()
    v = _as_array(values, "values", (1,))
    names = _labels(labels, v.shape[0], "labels", "value")
    index = list(range(v.shape[0]))
    colours = ["#2166ac" if x >= 0 else "#b2182b" for x in v]
    value = "%{x:.4g}" if horizontal else "%{y:.4g}"
    hover = "%{text}<br>" + html.escape(value_name) + " " + value + "<extra></extra>"
    bar = go.Bar(x=v if horizontal else index, y=index if horizontal else v, orientation="h" if horizontal else "v",
                 text=names, textposition="none", marker_color=colours, hovertemplate=hover)
    fig = go.Figure(bar)
    label_axis = {"title_text": None, **_ticks(names)}
    if horizontal:
        fig.update_yaxes(autorange="reversed", **label_axis)
        fig.update_xaxes(title_text=value_name, zeroline=True)
    else:
        fig.update_xaxes(tickangle=-60 if len(names) > 12 else 0, **label_axis)
        fig.update_yaxes(title_text=value_name, zeroline=True)
    return _layout(fig, title, height)


def figure_html(fig: Any, div_id: str) -> str:
    """The HTML fragment a page displays: ``fig.to_html(full_html=False, include_plotlyjs="cdn", div_id=div_id)``.

    A fixed ``div_id`` keeps a re-render byte-identical; the site build serves plotly.js locally in
    place of the CDN script.

    Raises:
        ValueError: ``div_id`` is not a valid HTML id (a letter, then letters, digits, ``-`` or ``_``).
    """
    if not isinstance(div_id, str) or not _DIV_ID.fullmatch(div_id):
        raise ValueError(f"div_id should be a letter followed by letters, digits, '-' or '_', got {div_id!r}")
    if not hasattr(fig, "to_html"):
        raise TypeError(f"fig should be a plotly Figure, got {type(fig).__name__}")
    return fig.to_html(full_html=False, include_plotlyjs="cdn", div_id=div_id,
                       config={"displaylogo": False, "responsive": True})
