"""`make day` scaffolds a day page whose front matter is valid and whose cells execute."""

from __future__ import annotations

import shutil
import sys

import pytest

from conftest import ROOT
from mechlearn import logbook
from pagerun import run_page

sys.path.insert(0, str(ROOT / "scripts"))
import new_day  # noqa: E402


@pytest.fixture
def project(tmp_path):
    shutil.copytree(ROOT / "_templates", tmp_path / "_templates")
    shutil.copy(ROOT / "_curriculum.yml", tmp_path)
    shutil.copytree(ROOT / "daily", tmp_path / "daily")
    return tmp_path


def test_scaffolds_the_first_missing_day_with_valid_front_matter(project):
    published = {d["day"] for d in logbook.load_days(ROOT, include_drafts=True)}
    expected = min(set(range(1, 101)) - published)
    path = new_day.scaffold(project)
    meta = logbook.read_front_matter(path)
    meta["path"] = path.relative_to(project).as_posix()
    assert meta["day"] == expected and meta["draft"] is True
    assert logbook.validate_day(meta, logbook.load_plan(project)) == []
    assert str(meta["date"]) == logbook.day_date(expected).isoformat()
    assert expected not in {d["day"] for d in logbook.load_days(project)}, "a draft must not count as published"


def test_the_scaffolded_page_executes(project):
    path = new_day.scaffold(project, 99, "notes")  # a day of the plan that has no page yet
    run = run_page(path)
    assert run.error is None, run.error
    # Its placeholder check fails until the author writes a real one, so a forgotten placeholder shows.
    assert any("❌" in t and "replace me" in t for t in run.texts), run.texts


def test_refuses_to_overwrite_and_checks_its_arguments(project):
    with pytest.raises(SystemExit, match="already has a page"):
        new_day.scaffold(project, 1)
    with pytest.raises(SystemExit, match="from 1 to 100"):
        new_day.scaffold(project, 101)
    with pytest.raises(SystemExit, match="slug"):
        new_day.scaffold(project, 98, "Bad Slug")  # a day of the plan that has no page yet
