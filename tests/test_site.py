"""The site's configuration and front matter: valid keys, existing targets, consistent days.

These checks need no Quarto and run in seconds, standing in for the parts of a render that would
catch a typo (tests/test_render.py runs the real render where Quarto is installed): every config key is one Quarto documents (the allow-lists below follow quarto.org's
reference for websites, listings and HTML options), every navbar and listing target exists, every
internal link resolves, and every day's front matter is complete and agrees with the plan.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from mechlearn import logbook
from test_pages import all_pages

CONFIG = yaml.safe_load((ROOT / "_quarto.yml").read_text())

# Keys documented by Quarto (quarto.org/docs/reference/projects/websites.html, .../formats/html.html,
# .../websites/website-listings.html), restricted to those this project may reasonably use.
PROJECT_KEYS = {"type", "output-dir", "pre-render", "post-render", "render", "resources", "execute-dir", "preview", "lib-dir"}
TOP_KEYS = {"project", "website", "format", "execute", "quartodoc", "metadata-files", "filters", "lang", "bibliography"}
WEBSITE_KEYS = {
    "title", "description", "site-url", "repo-url", "repo-subdir", "repo-branch", "repo-actions", "issue-url",
    "open-graph", "twitter-card", "search", "page-navigation", "navbar", "sidebar", "page-footer", "favicon",
    "bread-crumbs", "back-to-top-navigation", "image", "draft-mode", "announcement", "reader-mode",
}
HTML_KEYS = {
    "theme", "toc", "toc-depth", "toc-location", "toc-title", "code-copy", "code-tools", "code-fold", "code-overflow",
    "html-math-method", "fig-dpi", "fig-width", "fig-height", "link-external-newwindow", "link-external-icon", "css",
    "number-sections", "smooth-scroll", "anchor-sections", "highlight-style", "page-layout", "title-block-banner",
    "include-in-header", "grid", "mainfont", "fig-align",
}
LISTING_KEYS = {
    "id", "contents", "type", "sort", "max-items", "page-size", "sort-ui", "filter-ui", "categories", "feed",
    "fields", "field-display-names", "field-types", "field-links", "field-required", "include", "exclude",
    "date-format", "max-description-length", "table-striped", "table-hover", "image-height", "image-placeholder",
    "template",
}
FIELD_TYPES = {"date", "string", "number", "minutes"}
REPO_ACTIONS = {"edit", "source", "issue", "none"}
# Document-level options used in front matter and _metadata.yml, plus this project's own fields.
DOCUMENT_KEYS = {
    "title", "subtitle", "description", "date", "categories", "jupyter", "execute", "toc", "toc-depth", "listing",
    "number-sections", "code-fold", "title-block-banner", "draft", "image", "author", "format", "freeze", "fig-alt",
} | set(logbook.DAY_FIELDS)
EXECUTE_KEYS = {"freeze", "echo", "eval", "warning", "error", "output", "cache", "enabled"}


def _pages_meta():
    return {p.relative_to(ROOT).as_posix(): logbook.read_front_matter(p) for p in all_pages()}


def _unknown(keys, allowed):
    return sorted(set(keys) - allowed)


def test_config_uses_only_documented_quarto_keys():
    assert not _unknown(CONFIG, TOP_KEYS), "unknown top-level keys in _quarto.yml"
    assert not _unknown(CONFIG["project"], PROJECT_KEYS)
    assert CONFIG["project"]["type"] == "website"
    assert not _unknown(CONFIG["website"], WEBSITE_KEYS)
    assert not _unknown(CONFIG["format"]["html"], HTML_KEYS)
    assert not _unknown(CONFIG["execute"], EXECUTE_KEYS)
    assert set(CONFIG["website"]["repo-actions"]) <= REPO_ACTIONS
    assert CONFIG["execute"]["freeze"] == "auto"


def test_site_has_search_feed_themes_math_and_source_links():
    site, html = CONFIG["website"], CONFIG["format"]["html"]
    assert site["search"] and site["site-url"].startswith("https://") and site["repo-url"].startswith("https://github.com/")
    assert set(html["theme"]) == {"light", "dark"}
    assert html["code-copy"] is True
    # Maths is typeset by KaTeX served from the site itself, never from a CDN: the url is relative to
    # the page, so pages two folders down set their own (daily/_metadata.yml, posts/_metadata.yml).
    math = html["html-math-method"]
    assert math["method"] == "katex" and math["url"] == "vendor/katex/", math
    for folder in ("daily", "posts"):
        meta = yaml.safe_load((ROOT / folder / "_metadata.yml").read_text())
        assert meta["format"]["html"]["html-math-method"] == {"method": "katex", "url": "../../vendor/katex/"}, folder
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/katex"]["version"] == json.loads((ROOT / "package.json").read_text())["dependencies"]["katex"]
    for scss in {t for theme in html["theme"].values() for t in (theme if isinstance(theme, list) else [theme])}:
        if scss.endswith(".scss"):
            text = (ROOT / scss).read_text()
            assert "/*-- scss:defaults --*/" in text and "/*-- scss:rules --*/" in text, f"{scss} lacks Quarto's section markers"


def test_project_scripts_exist():
    for step in ("pre-render", "post-render"):
        scripts = CONFIG["project"][step]
        for script in [scripts] if isinstance(scripts, str) else scripts:
            assert (ROOT / script).is_file(), f"{step} script {script} is missing"


def test_navbar_targets_exist():
    items = CONFIG["website"]["navbar"]["left"] + CONFIG["website"]["navbar"]["right"]
    expected = {"index.qmd", "log.qmd", "blog.qmd", "curriculum.qmd", "benchmarks.qmd", "reference/index.qmd", "about.qmd"}
    hrefs = {item["href"] for item in items}
    assert expected <= hrefs, f"the navbar lacks {expected - hrefs}"
    generated = f"{CONFIG['quartodoc']['dir']}/index.qmd"  # written by `quartodoc build` (see test_quartodoc_builds)
    for href in hrefs:
        if href.startswith("http"):
            continue
        if href.endswith(".xml"):  # a listing feed, written by Quarto from the listing page of the same name
            page = ROOT / href.replace(".xml", ".qmd")
            assert (logbook.read_front_matter(page)["listing"] or {}).get("feed"), f"{href}: {page.name} has no feed"
            continue
        assert href == generated or (ROOT / href).is_file(), f"navbar target {href} does not exist"


def test_every_page_uses_only_known_front_matter_keys():
    for page, meta in _pages_meta().items():
        assert not _unknown(meta, DOCUMENT_KEYS), f"{page}: unknown front-matter keys"
        assert not _unknown(meta.get("execute") or {}, EXECUTE_KEYS), f"{page}: unknown execute options"
    for folder in ("daily", "posts"):
        meta = yaml.safe_load((ROOT / folder / "_metadata.yml").read_text())
        assert not _unknown(meta, DOCUMENT_KEYS), f"{folder}/_metadata.yml: unknown keys"
        assert meta["jupyter"] == "python3" and meta["execute"]["freeze"] == "auto" and meta["toc"] is True


def _listings():
    for page, meta in _pages_meta().items():
        listing = meta.get("listing")
        for item in listing if isinstance(listing, list) else [listing] if listing else []:
            yield page, item


def test_listings_are_valid_and_their_targets_exist():
    found = list(_listings())
    assert {p for p, _ in found} >= {"index.qmd", "log.qmd", "blog.qmd"}
    for page, item in found:
        assert not _unknown(item, LISTING_KEYS), f"{page}: unknown listing keys"
        assert set((item.get("field-types") or {}).values()) <= FIELD_TYPES, f"{page}: unknown field type"
        text = (ROOT / page).read_text()
        if "id" in item:
            assert re.search(rf"^:::\s*\{{#{re.escape(item['id'])}\}}", text, re.M), f"{page}: no :::{{#{item['id']}}} div"
        base = (ROOT / page).parent
        contents = item["contents"] if isinstance(item["contents"], list) else [item["contents"]]
        assert any(list(base.glob(c)) for c in contents), f"{page}: listing contents {contents} match no file"
        for field in item.get("sort-ui") if isinstance(item.get("sort-ui"), list) else []:
            assert field in item["fields"], f"{page}: sort-ui field {field} is not a column"
    log = dict((p, i) for p, i in found)["log.qmd"]
    assert log["type"] == "table" and log["categories"] is True
    assert {"day", "title", "part", "arena", "hours"} <= set(log["fields"])
    assert dict((p, i) for p, i in found)["blog.qmd"]["feed"] is True


_LINK = re.compile(r"\]\(([^)\s]+?\.qmd)(#[^)]*)?\)")


def test_internal_links_resolve():
    for path in all_pages():
        for target, _ in _LINK.findall(path.read_text()):
            if target.startswith("http"):
                continue
            resolved = (path.parent / target).resolve()
            generated = resolved == (ROOT / CONFIG["quartodoc"]["dir"] / "index.qmd").resolve()
            assert generated or resolved.is_file(), f"{path.relative_to(ROOT)} links to {target}, which does not exist"


def test_day_front_matter_is_complete_and_agrees_with_the_plan():
    plan = logbook.load_plan(ROOT)
    days = logbook.load_days(ROOT, include_drafts=True)
    assert days, "no day pages found"
    for meta in days:
        problems = logbook.validate_day(meta, plan)
        assert not problems, f"{meta['path']}: " + "; ".join(problems)
    for field in ("day", "date"):
        repeated = [v for v, n in Counter(str(d[field]) for d in days).items() if n > 1]
        assert not repeated, f"two day pages share a {field}: {repeated}"


def test_validate_day_catches_each_kind_of_mistake():
    plan = logbook.load_plan(ROOT)
    good = dict(logbook.load_days(ROOT)[0])
    assert logbook.validate_day(good, plan) == []
    cases = {
        "date": ("2026-08-16", "`date` should be 2026-08-15"),
        "part": ("Transformers", "the plan puts Day 1"),
        "hours": (0, "`hours` should be positive"),
        "hours-basis": ("log", "`hours-basis`"),
        "modules": (["numpy"], "`modules` should list mechlearn"),
        "day": ("1", "`day` should be an integer"),
        "path": ("daily/day-1-x/index.qmd", "should live at daily/day-001-"),
    }
    for field, (value, words) in cases.items():
        problems = logbook.validate_day({**good, field: value}, plan)
        assert any(words in p for p in problems), f"{field}={value!r} gave {problems}"
    assert "missing field `arena`" in logbook.validate_day({k: v for k, v in good.items() if k != "arena"})


def test_posts_have_dated_folders_and_required_fields():
    posts = logbook.load_posts(ROOT, include_drafts=True)
    assert posts
    for meta in posts:
        for field in ("title", "date", "description", "categories"):
            assert field in meta, f"{meta['path']}: missing `{field}`"
        assert meta["path"].startswith(f"posts/{meta['date']}-"), f"{meta['path']}: folder should start with its date"


def test_pages_declare_the_mechlearn_modules_they_import():
    code = ROOT / "code"
    for meta in logbook.load_days(ROOT, include_drafts=True):
        page = ROOT / meta["path"]
        declared = set(meta["modules"])
        for name in declared:
            assert logbook.module_file(name, code), f"{meta['path']}: `modules` lists {name}, which is not a mechlearn module"
        for name in logbook.page_imports(page.read_text()):
            if not logbook.module_file(name, code) or name == "mechlearn":
                continue  # a class or function imported from a module, or the top-level package
            covered = any(d == name or d.startswith(name + ".") for d in declared)
            assert covered, f"{meta['path']} imports {name} but its `modules` ({sorted(declared)}) do not name it"


def test_the_plan_has_100_days_in_five_parts_in_order():
    plan = logbook.load_plan(ROOT)
    parts = [p["part"] for p in plan]
    assert list(dict.fromkeys(parts)) == list(logbook.PARTS)
    assert parts == sorted(parts, key=list(logbook.PARTS).index)


def test_freeze_folder_holds_only_what_quarto_writes():
    for path in (ROOT / "_freeze").rglob("*"):
        rel = path.relative_to(ROOT / "_freeze")
        ok = rel.name == ".gitkeep" or rel.parts[0] == "site_libs" or "execute-results" in rel.parts or any(
            part.startswith("figure-") for part in rel.parts
        ) or path.is_dir()
        assert ok, f"_freeze/{rel} does not look like Quarto's output; _freeze is written by Quarto alone"


def test_quartodoc_builds_the_api_reference(tmp_path):
    """Every object named in the quartodoc config exists and gets a page (quartodoc reads source statically)."""
    quartodoc = Path(sys.executable).parent / "quartodoc"
    project = tmp_path / "site"
    project.mkdir()
    (project / "_quarto.yml").write_text((ROOT / "_quarto.yml").read_text())
    (project / "code").symlink_to(ROOT / "code")
    result = subprocess.run([str(quartodoc), "build"], cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ref = project / CONFIG["quartodoc"]["dir"]
    assert (ref / "index.qmd").is_file()
    for section in CONFIG["quartodoc"]["sections"]:
        for name in section["contents"]:
            assert (ref / f"{name}.qmd").is_file(), f"quartodoc wrote no page for {name}"
    assert "Value" in (ref / "backprop.value.Value.qmd").read_text()


def test_pages_import_only_the_public_api():
    """A page writes `from mechlearn.x import y` only where `y` is in `mechlearn.x.__all__` (or is a submodule)."""
    import ast
    import importlib
    import importlib.util

    problems = []
    for path in all_pages():
        for cell in logbook.python_cells(path.read_text(encoding="utf-8")):
            for node in ast.walk(ast.parse("\n".join(l for l in cell.splitlines() if not l.lstrip().startswith(("%", "!"))))):
                if not (isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mechlearn"):
                    continue
                module = importlib.import_module(node.module)
                public = set(getattr(module, "__all__", ()))
                for alias in node.names:
                    is_submodule = importlib.util.find_spec(f"{node.module}.{alias.name}") is not None if hasattr(module, "__path__") else False
                    if alias.name not in public and not is_submodule:
                        problems.append(f"{path.relative_to(ROOT)}: `from {node.module} import {alias.name}` is not in {node.module}.__all__")
    assert not problems, "\n".join(problems)
