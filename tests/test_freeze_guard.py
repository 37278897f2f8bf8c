"""The freeze guard drops exactly the frozen pages whose mechlearn code changed (quarto-cli issue 6793).

Each test builds a small project in a temporary folder, with a fake frozen result where Quarto
would write one, so the repository's own ``_freeze/`` is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import freeze_guard  # noqa: E402

PAGE = """---
title: A page
modules: [mechlearn.pkg.alpha]
---

```{python}
from mechlearn.pkg.alpha import f
f()
```
"""


@pytest.fixture
def project(tmp_path):
    code = tmp_path / "code" / "mechlearn"
    (code / "pkg").mkdir(parents=True)
    (code / "__init__.py").write_text("")
    (code / "pkg" / "__init__.py").write_text("")
    (code / "pkg" / "alpha.py").write_text("from mechlearn.pkg.beta import g\n\ndef f():\n    return g()\n")
    (code / "pkg" / "beta.py").write_text("def g():\n    return 1\n")
    (code / "pkg" / "unrelated.py").write_text("x = 1\n")
    (code / "pkg" / "checkpoints").mkdir()
    (code / "pkg" / "checkpoints" / "model.json").write_text('{"loss": 1.0}')
    (code / "other").mkdir()
    (code / "other" / "__init__.py").write_text("")
    (code / "other" / "table.json").write_text("[1]")
    (tmp_path / "requirements.txt").write_text("numpy==2.0.0\n")
    for name in ("day-001-a", "day-002-b"):
        page = tmp_path / "daily" / name / "index.qmd"
        page.parent.mkdir(parents=True)
        page.write_text(PAGE)
        results = tmp_path / "_freeze" / "daily" / name / "index" / "execute-results"
        results.mkdir(parents=True)
        (results / "html.json").write_text("{}")
    return tmp_path


def frozen(root):
    return set(freeze_guard.frozen_pages(root))


def test_unchanged_code_keeps_every_frozen_page(project):
    freeze_guard.post(project)
    assert freeze_guard.pre(project) == []
    assert frozen(project) == {"daily/day-001-a/index.qmd", "daily/day-002-b/index.qmd"}


def test_a_change_in_a_transitively_imported_module_drops_the_page(project):
    freeze_guard.post(project)
    (project / "code" / "mechlearn" / "pkg" / "beta.py").write_text("def g():\n    return 2\n")
    dropped = freeze_guard.pre(project)
    assert sorted(dropped) == ["daily/day-001-a/index.qmd", "daily/day-002-b/index.qmd"]
    assert frozen(project) == set()


def test_a_change_elsewhere_in_the_package_keeps_the_page(project):
    freeze_guard.post(project)
    (project / "code" / "mechlearn" / "pkg" / "unrelated.py").write_text("x = 2\n")
    assert freeze_guard.pre(project) == []


def test_a_page_frozen_without_a_recorded_fingerprint_is_dropped(project):
    freeze_guard.post(project)
    record = json.loads((project / freeze_guard.RECORD_NAME).read_text())
    del record["daily/day-002-b/index.qmd"]
    (project / freeze_guard.RECORD_NAME).write_text(json.dumps(record))
    assert freeze_guard.pre(project) == ["daily/day-002-b/index.qmd"]
    assert frozen(project) == {"daily/day-001-a/index.qmd"}


def test_a_new_import_on_the_page_counts_even_if_modules_is_not_updated(project):
    page = project / "daily" / "day-001-a" / "index.qmd"
    page.write_text(PAGE.replace("f()", "f()\nfrom mechlearn.pkg.unrelated import x"))
    freeze_guard.post(project)
    (project / "code" / "mechlearn" / "pkg" / "unrelated.py").write_text("x = 3\n")
    assert freeze_guard.pre(project) == ["daily/day-001-a/index.qmd"]


def test_a_retrained_checkpoint_beside_an_imported_module_drops_the_page(project):
    freeze_guard.post(project)
    (project / "code" / "mechlearn" / "other" / "table.json").write_text("[2]")  # another package's data
    assert freeze_guard.pre(project) == []
    (project / "code" / "mechlearn" / "pkg" / "checkpoints" / "model.json").write_text('{"loss": 0.9}')
    assert sorted(freeze_guard.pre(project)) == ["daily/day-001-a/index.qmd", "daily/day-002-b/index.qmd"]


def test_a_bumped_pin_drops_every_page(project):
    freeze_guard.post(project)
    (project / "requirements.txt").write_text("numpy==2.1.0\n")
    assert sorted(freeze_guard.pre(project)) == ["daily/day-001-a/index.qmd", "daily/day-002-b/index.qmd"]


def test_code_edited_during_a_render_leaves_the_page_stale(project):
    freeze_guard.post(project)
    assert freeze_guard.pre(project) == []  # the render starts: fingerprints noted before pages execute
    (project / "code" / "mechlearn" / "pkg" / "beta.py").write_text("def g():\n    return 5\n")  # edited mid-render
    freeze_guard.post(project)  # the render ends
    assert not (project / freeze_guard.PENDING_NAME).exists()
    assert sorted(freeze_guard.pre(project)) == ["daily/day-001-a/index.qmd", "daily/day-002-b/index.qmd"]


def test_the_scripts_run_as_quarto_runs_them(project):
    """Quarto runs pre/post-render scripts from the project folder with its Python."""
    shutil.copytree(ROOT / "scripts", project / "scripts")
    (project / "node_modules").symlink_to(ROOT / "node_modules")  # KaTeX, installed by `make setup` (npm ci)
    env = {**os.environ, "QUARTO_PROJECT_OUTPUT_DIR": str(project / "_site")}
    subprocess.run([sys.executable, "scripts/post_render.py"], cwd=project, check=True, env=env)
    assert json.loads((project / "_freeze-sources.json").read_text()).keys() == frozen(project)
    # The post-render step also copies the browser libraries the site serves itself.
    for asset in ("vendor/katex/katex.min.js", "vendor/katex/katex.min.css", "vendor/plotly/plotly.min.js"):
        assert (project / "_site" / asset).is_file(), asset
    assert list((project / "_site" / "vendor" / "katex" / "fonts").glob("*.woff2"))
    (project / "code" / "mechlearn" / "pkg" / "alpha.py").write_text("def f():\n    return 3\n")
    out = subprocess.run([sys.executable, "scripts/pre_render.py"], cwd=project, check=True, capture_output=True, text=True)
    assert "dropped frozen output of daily/day-001-a/index.qmd" in out.stdout
    assert frozen(project) == set()
