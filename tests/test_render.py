"""Render the whole site with real Quarto and check the built pages. Skipped where Quarto is missing.

The GitHub test workflow installs Quarto with quarto-dev/quarto-actions/setup; `.ci/run` installs
the offline Quarto build where the machine provides one (``../shared/tools/quarto/install``).
The render is shared with the browser test (``tests/test_browser.py``) through the session
fixture ``rendered_site`` in ``conftest.py``.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from mechlearn import logbook

from conftest import quarto_command

QUARTO = quarto_command()

pytestmark = [
    pytest.mark.render,
    pytest.mark.skipif(
        QUARTO is None,
        reason="quarto is not on PATH: install Quarto (https://quarto.org, or `pip install quarto-cli` where its "
        "download host is reachable) to run the render test; the GitHub test workflow runs it",
    ),
]


# Pandoc's smart punctuation turns ' and " into curly quotes, -- into an en dash and ... into an ellipsis.
_SMART = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "--", "\u2026": "..."})


def _text(html: str) -> str:
    """A built page's text as the front matter wrote it: entities decoded, smart punctuation undone."""
    return html_lib.unescape(html).translate(_SMART)


def test_quarto_renders_the_site(rendered_site):
    project, result = rendered_site
    site = project / "_site"
    for page in ("index.html", "log.html", "blog.html", "curriculum.html", "benchmarks.html", "about.html",
                 "reference/index.html", "search.json", "blog.xml"):
        assert (site / page).is_file(), f"the render did not produce {page}"
    home = (site / "index.html").read_text()
    assert "progress-grid" in home and "days published" in home
    for day in logbook.load_days(ROOT):
        html = (site / day["path"].replace(".qmd", ".html")).read_text()
        assert _text(day["title"]) in _text(html), f"{day['path']}: title missing from the rendered page"
        shown = re.sub(r'<pre class="sourceCode.*?</pre>', "", html, flags=re.S)  # outputs, not the code that prints marks
        assert "✅" in shown and "❌" not in shown, f"{day['path']}: a reference check is missing or failed"
        assert "Traceback" not in html, f"{day['path']}: the rendered page shows a traceback"
        # A figure option that YAML could not read leaves its raw attributes in the text (a wrapped fig-cap).
        visible = re.sub(r"<[^>]+>", "", html)
        assert "{#fig-" not in visible and "fig-alt=" not in visible, f"{day['path']}: broken figure markup shows as text"
    # Every day and post carries a figure computed on the page (a matplotlib image or a plotly figure).
    figure = re.compile(r'<img[^>]+src="[^"]*figure-html/[^"]+"|class="plotly-graph-div')
    pages = [day["path"] for day in logbook.load_days(ROOT)] + sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "posts").glob("*/index.qmd"))
    without = [page for page in pages if not figure.search((site / page.replace(".qmd", ".html")).read_text())]
    assert not without, f"pages without a figure computed on the page: {without}"
    log = _text((site / "log.html").read_text())
    for day in logbook.load_days(ROOT):
        assert _text(day["title"]) in log, f"the daily log does not list {day['title']!r}"
    # The site serves its own scripts and styles: no page loads anything from another host.
    remote = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(https?:)?//[^"]+"')
    loaders = re.compile(r'(?:\.src|\.href)\s*=\s*"https?://[^"]+\.(?:js|css)"')
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        hits = [m.group(0) for m in remote.finditer(text) if "rel=\"canonical\"" not in m.group(0)] + loaders.findall(text)
        hits = [h for h in hits if not re.search(r'rel="(canonical|alternate|me)"', h)]
        assert not hits, f"{page.relative_to(site)} loads from another host: {hits[:3]}"
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if line.lstrip().startswith("WARN")]
    assert not warnings, "quarto warned (an unknown key, a broken link, ...):\n" + "\n".join(warnings[:30])

    # The freeze guard assumes Quarto's layout: _freeze/<page path without .qmd>/execute-results/html.json.
    # Every executed day page must be frozen there, and the post-render step must have recorded it.
    sys.path.insert(0, str(project / "scripts"))
    import freeze_guard

    frozen = set(freeze_guard.frozen_pages(project))
    for day in logbook.load_days(ROOT):
        assert day["path"] in frozen, f"{day['path']}: Quarto froze nothing at _freeze/{day['path'][:-4]}/execute-results/"
        assert (project / "_freeze" / day["path"][:-4] / "execute-results" / "html.json").is_file()
    record = json.loads((project / freeze_guard.RECORD_NAME).read_text())
    assert set(record) == frozen, "the post-render step did not record exactly the frozen pages"
    assert freeze_guard.stale_pages(project) == {}, "a page is stale straight after a full render"
    # Editing code a page imports makes the guard drop it before the next render.
    (project / "code" / "mechlearn" / "seeding.py").write_text((project / "code" / "mechlearn" / "seeding.py").read_text() + "\n# edited\n")
    stale = freeze_guard.stale_pages(project)
    assert "daily/day-001-gradients-as-responsibility/index.qmd" in stale, "editing mechlearn/seeding.py left Day 1 current"
