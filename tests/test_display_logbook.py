"""show_source shows real source; the logbook computes progress, hours and module closures correctly."""

from __future__ import annotations

import re

import inspect

import matplotlib

matplotlib.use("Agg")

import pytest

from conftest import ROOT, unchecked
from mechlearn import logbook
from mechlearn.backprop import Value, softmax
from mechlearn.display import draw_value_graph, show_source


def test_show_source_is_the_real_source_with_its_location():
    src = show_source(softmax)
    assert src.code == inspect.getsource(softmax).rstrip("\n")
    assert src.path == "mechlearn/backprop/softmax.py"
    lines = (ROOT / "code" / src.path).read_text().splitlines()
    assert "\n".join(lines[src.first_line - 1 : src.last_line]) == src.code
    md = src._repr_markdown_()
    assert md.startswith("```python\n") and src.caption in md


def test_show_source_can_drop_the_docstring_and_fences_survive_backticks():
    short = show_source(softmax, docstring=False)
    assert '"""' not in short.code and "def softmax" in short.code
    src = show_source(Value.backward)
    assert src._repr_markdown_().count("```python") == 1


def test_show_source_rejects_objects_without_source():
    with pytest.raises(TypeError, match="needs a Python function"):
        unchecked(show_source)(len)
    with pytest.raises(TypeError, match="needs a Python function"):
        unchecked(show_source)(3)


def test_draw_value_graph_draws_one_box_per_node():
    a, b = Value(2.0, "a"), Value(-3.0, "b")
    out = (a * b + a).tanh()
    out.backward()
    ax = draw_value_graph(out)
    assert len(ax.texts) >= 5  # a, b, a*b, +, tanh
    with pytest.raises(TypeError, match="expects a mechlearn Value"):
        unchecked(draw_value_graph)(1.0)


def test_day_dates_and_bounds():
    assert str(logbook.day_date(1)) == "2026-08-15" and str(logbook.day_date(100)) == "2026-11-22"
    for bad in (0, 101, "3", True):
        with pytest.raises(ValueError, match="integer from 1 to 100"):
            unchecked(logbook.day_date)(bad)


def test_progress_grid_has_100_cells_and_links_only_published_days():
    plan = logbook.load_plan(ROOT)
    days = logbook.load_days(ROOT)
    html = logbook.progress_grid_html(plan, days)
    assert html.count('class="day-cell') == 100
    assert html.count("done") == len(days) and html.count("todo") == 100 - len(days)
    for d in days:
        assert f'href="{d["path"].removesuffix("index.qmd")}"' in html
    assert html.count('role="listitem"') == 100, "every cell of the role=list grid should be a listitem"
    # Every link points at a folder that holds the page (the built site serves it as index.html).
    for href in re.findall(r'href="([^"]+)"', html):
        assert (ROOT / href / "index.qmd").is_file(), f"the grid links {href}, which has no page"
    assert f"{len(days)} of 100 days published" in html


def test_hours_by_part_sums_the_pages():
    days = [
        {"part": "Fundamentals", "hours": 2, "hours-basis": "arena"},
        {"part": "Fundamentals", "hours": 1.5, "hours-basis": "estimate"},
        {"part": "Interpretability", "hours": 3, "hours-basis": "estimate"},
    ]
    rows = {r["part"]: r for r in logbook.hours_by_part(days)}
    assert list(rows) == list(logbook.PARTS)
    assert rows["Fundamentals"] == {"part": "Fundamentals", "days": 2, "hours": 3.5, "estimated hours": 1.5}
    assert rows["Transformers"]["hours"] == 0 and rows["Interpretability"]["days"] == 1


def test_module_closure_follows_imports_and_parent_packages():
    code = ROOT / "code"
    files = {p.relative_to(code).as_posix() for p in logbook.module_closure({"mechlearn.backprop.value"}, code)}
    # importing a submodule runs its package's __init__, which imports the package's other modules
    assert {"mechlearn/__init__.py", "mechlearn/backprop/__init__.py", "mechlearn/backprop/value.py",
            "mechlearn/backprop/softmax.py", "mechlearn/seeding.py"} <= files
    assert "mechlearn/logbook.py" not in files
    assert logbook.module_closure({"mechlearn.backprop.Value"}, code) == logbook.module_closure({"mechlearn.backprop"}, code)
    assert logbook.page_imports("```{python}\nfrom mechlearn.backprop import Value\n%matplotlib inline\n```") == {
        "mechlearn.backprop", "mechlearn.backprop.Value"}


def test_importing_mechlearn_has_no_side_effects():
    import subprocess
    import sys

    code = "import sys, random; s = random.getstate(); import mechlearn, mechlearn.backprop, mechlearn.testing, mechlearn.display, mechlearn.logbook; " \
           "assert random.getstate() == s; assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules; print('quiet')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "quiet\n" and out.stderr == ""
