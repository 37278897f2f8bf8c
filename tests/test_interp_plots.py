"""mechlearn.interp.plots: the figures hold exactly the values and labels they are given."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("plotly")

from mechlearn.interp.plots import attention_figure, bar_figure, figure_html, heatmap_figure  # noqa: E402

FUZZ = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
INFORMATIVE = re.compile(r"should|expect|got", re.IGNORECASE)


def causal_pattern(n_heads: int, n: int, seed: int = 0) -> torch.Tensor:
    scores = torch.randn(n_heads, n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)


def test_heatmap_holds_the_matrix_as_given_not_transposed():
    values = np.arange(12.0).reshape(3, 4) - 5.0  # non-square: a transposition cannot go unnoticed
    fig = heatmap_figure(values, ["a", "b", "a", "<d>"], [(0, 1), "row 1", 2], title="t", value_name="effect")
    trace = fig.data[0]
    assert np.array_equal(np.asarray(trace.z), values)
    assert np.asarray(trace.z).shape == (3, 4)
    assert trace.text[1][3] == "row 1, &lt;d&gt;", "row label first, then the column label, HTML-escaped"
    assert trace.text[0][0] == "L0H1, a" and trace.text[2][2] == "2, a"
    assert list(fig.layout.xaxis.ticktext) == ["a", "b", "a", "&lt;d&gt;"], "repeated labels stay separate columns"
    assert fig.layout.yaxis.autorange == "reversed", "row 0 at the top, as printed"
    assert (trace.zmid, trace.zmin, trace.zmax) == (0.0, -6.0, 6.0), "diverging scale symmetric about 0"
    assert "effect" in trace.hovertemplate
    assert trace.texttemplate == "%{z:.3g}", "a small table shows its values in the cells"
    assert heatmap_figure(np.zeros((8, 8)), list("abcdefgh"), list("abcdefgh")).data[0].texttemplate is None


def test_heatmap_takes_a_tensor_and_a_sequential_scale():
    values = torch.tensor([[0.5, 2.0], [1.0, 4.0]])
    trace = heatmap_figure(values, ["x0", "x1"], ["y0", "y1"], zmid=None).data[0]
    assert np.array_equal(np.asarray(trace.z), values.double().numpy())
    assert trace.zmid is None and trace.colorscale[0][1] != trace.colorscale[-1][1]
    flat = heatmap_figure(np.zeros((2, 2)), ["a", "b"], ["c", "d"]).data[0]
    assert (flat.zmin, flat.zmax) == (-1.0, 1.0), "an all-zero matrix still gets a usable colour range"


def test_attention_figure_holds_each_head_and_names_the_tokens_on_hover():
    tokens = ["When", " Mary", "and", " Mary", "\n", "<b>"]
    pattern = causal_pattern(3, len(tokens))
    fig = attention_figure(pattern, tokens, heads=[(1, 0), (1, 1), (1, 2)], title="layer 1")
    assert len(fig.data) == 3
    for h, trace in enumerate(fig.data):
        assert np.array_equal(np.asarray(trace.z), pattern[h].numpy())
        assert trace.visible is (h == 0)
        assert trace.name == f"L1H{h}"
    text = fig.data[0].text
    assert text[3][1] == "query 3 &#x27; Mary&#x27; → key 1 &#x27; Mary&#x27;", text[3][1]
    assert text[5][4] == "query 5 &lt;b&gt; → key 4 \\n"
    assert text[2][0] == "query 2 and → key 0 When"
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["L1H0", "L1H1", "L1H2"]
    assert list(buttons[2].args[0]["visible"]) == [False, False, True]
    assert buttons[2].args[1]["title.text"] == "layer 1 — L1H2"


def test_attention_figure_accepts_one_head():
    pattern = causal_pattern(1, 4)[0]
    fig = attention_figure(pattern, list("abcd"))
    assert len(fig.data) == 1 and not fig.layout.updatemenus
    assert np.array_equal(np.asarray(fig.data[0].z), pattern.numpy())
    assert fig.data[0].name == "head 0"


def test_bar_figure_holds_the_values_in_order():
    values = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64)
    fig = bar_figure(values, [(0, 0), (0, 1), "embed"], title="DLA", value_name="logit diff")
    trace = fig.data[0]
    assert np.array_equal(np.asarray(trace.y), values.numpy())
    assert list(trace.text) == ["L0H0", "L0H1", "embed"]
    assert trace.marker.color[0] != trace.marker.color[1], "negative bars get another colour"
    horizontal = bar_figure(values.numpy(), ["a", "b", "c"], horizontal=True).data[0]
    assert np.array_equal(np.asarray(horizontal.x), values.numpy()) and horizontal.orientation == "h"


def test_figure_html_is_deterministic_and_carries_the_div_id():
    def build():
        return heatmap_figure(np.eye(3), ["a", "b", "c"], ["a", "b", "c"], title="same")

    first, second = figure_html(build(), "day00-test"), figure_html(build(), "day00-test")
    assert first == second
    assert 'id="day00-test"' in first and "<html" not in first
    assert figure_html(build(), "day00-other") != first


def test_long_sequences_thin_the_ticks_but_keep_every_hover_label():
    tokens = [f"t{i}" for i in range(100)]
    fig = attention_figure(causal_pattern(1, 100)[0], tokens)
    assert len(fig.layout.xaxis.tickvals) <= 40
    assert fig.data[0].text[99][98] == "query 99 t99 → key 98 t98"


def test_bad_input_errors_name_what_was_expected():
    with pytest.raises(ValueError, match=r"x_labels should have one label per column of values \(4\), got 3"):
        unchecked(heatmap_figure)(np.zeros((3, 4)), ["a", "b", "c"], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"y_labels should have one label per row"):
        unchecked(heatmap_figure)(np.zeros((3, 4)), list("abcd"), ["a"])
    with pytest.raises(ValueError, match="values should be 2-D"):
        unchecked(heatmap_figure)(np.zeros(4), list("abcd"), ["a"])
    with pytest.raises(ValueError, match="pattern should be 2-D or 3-D"):
        unchecked(attention_figure)(torch.zeros(1, 2, 3, 3), list("abc"))
    with pytest.raises(ValueError, match="square"):
        unchecked(attention_figure)(torch.zeros(2, 3, 4), list("abcd"))
    with pytest.raises(ValueError, match=r"tokens should have one label per position \(3\)"):
        unchecked(attention_figure)(torch.zeros(2, 3, 3), list("ab"))
    with pytest.raises(ValueError, match=r"heads should have one label per head \(2\)"):
        unchecked(attention_figure)(torch.zeros(2, 3, 3), list("abc"), heads=["h"])
    with pytest.raises(ValueError, match=r"values should be 1-D"):
        unchecked(bar_figure)(np.zeros((2, 2)), ["a", "b"])
    with pytest.raises(TypeError, match="sequence of 2 labels"):
        unchecked(bar_figure)(np.zeros(2), "ab")
    with pytest.raises(TypeError, match="torch.Tensor or a numpy array"):
        unchecked(bar_figure)([1.0, 2.0], ["a", "b"])
    with pytest.raises(ValueError, match="div_id should be"):
        figure_html(bar_figure(np.zeros(2), ["a", "b"]), "has space")


@FUZZ
@given(rows=st.integers(0, 4), cols=st.integers(0, 4), n_x=st.integers(0, 5), n_y=st.integers(0, 5),
       ndim=st.integers(1, 3))
def test_fuzz_heatmap_shapes_and_labels(rows, cols, n_x, n_y, ndim):
    values = np.ones((rows, cols, 2)[:ndim]) if ndim < 3 else np.ones((rows, cols, 2))
    try:
        fig = unchecked(heatmap_figure)(values, [str(i) for i in range(n_x)], [str(i) for i in range(n_y)])
    except (ValueError, TypeError) as err:
        assert INFORMATIVE.search(str(err)), str(err)
        assert not (ndim == 2 and rows and cols and (n_x, n_y) == (cols, rows)), f"refused valid input: {err}"
    else:
        assert ndim == 2 and np.asarray(fig.data[0].z).shape == (rows, cols) == (n_y, n_x)
