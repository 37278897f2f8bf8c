"""Render the whole site with real Quarto and check the built pages. Skipped where Quarto is missing.

Quarto cannot be installed on the machines this project is developed on (its PyPI wrapper
downloads the binary at install time from a host they cannot reach), so this test runs in the
GitHub workflow, which installs Quarto with quarto-dev/quarto-actions/setup, and on any author's
machine that has Quarto.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from mechlearn import logbook

QUARTO = shutil.which("quarto") or (str(Path(sys.executable).parent / "quarto") if (Path(sys.executable).parent / "quarto").exists() else None)

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


def test_quarto_renders_the_site(tmp_path):
    project = tmp_path / "site"
    ignore = shutil.ignore_patterns(".venv", "_site", ".quarto", "reports", ".git", "__pycache__", ".pytest_cache", ".hypothesis")
    shutil.copytree(ROOT, project, ignore=ignore, symlinks=True)
    env = {**os.environ, "QUARTO_PYTHON": sys.executable, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(Path(sys.executable).parent / "quartodoc"), "build"], cwd=project, env=env, check=True, timeout=300)
    result = subprocess.run([QUARTO, "render"], cwd=project, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"quarto render failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    site = project / "_site"
    for page in ("index.html", "log.html", "blog.html", "curriculum.html", "benchmarks.html", "about.html",
                 "reference/index.html", "search.json", "blog.xml"):
        assert (site / page).is_file(), f"the render did not produce {page}"
    home = (site / "index.html").read_text()
    assert "progress-grid" in home and "days published" in home
    for day in logbook.load_days(ROOT):
        html = (site / day["path"].replace(".qmd", ".html")).read_text()
        assert _text(day["title"]) in _text(html), f"{day['path']}: title missing from the rendered page"
        assert "✅" in html and "❌" not in html, f"{day['path']}: a reference check is missing or failed"
        assert "Traceback" not in html, f"{day['path']}: the rendered page shows a traceback"
    log = _text((site / "log.html").read_text())
    for day in logbook.load_days(ROOT):
        assert _text(day["title"]) in log, f"the daily log does not list {day['title']!r}"
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
