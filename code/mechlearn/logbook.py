"""The site's own data: page front matter, the 100-day plan, progress, and freshness of frozen pages.

The home page, the curriculum page and the tests all read the same front matter through this
module, so the progress grid, the hours per part and the ARENA → day → module map are
generated from the pages themselves and cannot drift from them.

It also knows which ``mechlearn`` source files a page depends on (`page_fingerprint`):
Quarto's ``freeze: auto`` re-executes a page when the page changes but not when code it imports
changes (quarto-cli issue 6793), so ``scripts/freeze_guard.py`` drops a page's frozen output
whenever this fingerprint moves.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import html
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "FIRST_DAY",
    "N_DAYS",
    "PARTS",
    "DAY_FIELDS",
    "day_date",
    "read_front_matter",
    "python_cells",
    "load_days",
    "load_posts",
    "load_plan",
    "validate_day",
    "progress_grid_html",
    "hours_by_part",
    "curriculum_rows",
    "page_imports",
    "module_file",
    "module_closure",
    "package_data",
    "page_fingerprint",
]

FIRST_DAY = dt.date(2026, 8, 15)
"""The date of Day 1; Day ``n`` is ``FIRST_DAY + (n - 1)`` days."""
N_DAYS = 100
"""The number of days in the plan."""

PARTS: dict[str, str] = {
    "Fundamentals": "fundamentals",
    "Transformers": "transformers",
    "Reinforcement learning": "rl",
    "Interpretability": "interp",
    "Evals and alignment": "evals",
}
"""The five parts, in order, with the CSS class suffix each uses on the site."""

DAY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "title": str,
    "day": int,
    "date": (str, dt.date),
    "part": str,
    "arena": str,
    "categories": list,
    "hours": (int, float),
    "hours-basis": str,
    "modules": list,
    "description": str,
}
"""Front-matter fields every day page must have, with their types."""

HOURS_BASES = ("arena", "estimate")
"""``arena``: ARENA's own suggested time for the exercises; ``estimate``: our estimate, labelled as such."""

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", re.DOTALL)
_PY_CELL = re.compile(r"^```\{python[^}]*\}[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def day_date(day: int) -> dt.date:
    """The fixed date of day ``day`` (1-based)."""
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= N_DAYS:
        raise ValueError(f"day should be an integer from 1 to {N_DAYS}, got {day!r}")
    return FIRST_DAY + dt.timedelta(days=day - 1)


def read_front_matter(path: str | Path) -> dict[str, Any]:
    """The YAML front matter of a ``.qmd`` file (``{}`` if it has none)."""
    text = Path(path).read_text(encoding="utf-8")
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}
    meta = yaml.safe_load(m.group(1)) or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: front matter should be a YAML mapping, got {type(meta).__name__}")
    return meta


def python_cells(text: str) -> list[str]:
    """The source of every executable ```` ```{python} ```` cell in a ``.qmd`` text."""
    return _PY_CELL.findall(text)


def _load_pages(root: Path, pattern: str) -> list[dict[str, Any]]:
    pages = []
    for path in sorted(Path(root).glob(pattern)):
        meta = read_front_matter(path)
        meta["path"] = path.relative_to(root).as_posix()
        pages.append(meta)
    return pages


def load_days(root: str | Path, include_drafts: bool = False) -> list[dict[str, Any]]:
    """Front matter of every day page (``daily/day-NNN-slug/index.qmd``), sorted by day, with ``path`` added.

    Pages marked ``draft: true`` are left out unless ``include_drafts``: Quarto does not publish them.
    """
    days = [d for d in _load_pages(Path(root), "daily/day-*/index.qmd") if include_drafts or not d.get("draft")]
    return sorted(days, key=lambda d: (d.get("day") or 0))


def load_posts(root: str | Path, include_drafts: bool = False) -> list[dict[str, Any]]:
    """Front matter of every blog post (``posts/YYYY-MM-DD-slug/index.qmd``), with ``path`` added."""
    return [p for p in _load_pages(Path(root), "posts/*/index.qmd") if include_drafts or not p.get("draft")]


def load_plan(root: str | Path) -> list[dict[str, Any]]:
    """The 100-day plan from ``_curriculum.yml``: one ``{day, title, part, arena}`` per day."""
    plan = yaml.safe_load((Path(root) / "_curriculum.yml").read_text(encoding="utf-8"))["days"]
    if [d["day"] for d in plan] != list(range(1, N_DAYS + 1)):
        raise ValueError(f"_curriculum.yml should list days 1..{N_DAYS} in order")
    return plan


def validate_day(meta: dict[str, Any], plan: list[dict[str, Any]] | None = None) -> list[str]:
    """Every problem with a day page's front matter, as readable sentences (empty if none)."""
    problems = []
    for name, kind in DAY_FIELDS.items():
        if name not in meta:
            problems.append(f"missing field `{name}`")
        elif isinstance(meta[name], bool) or not isinstance(meta[name], kind):
            problems.append(f"`{name}` should be {_kind_name(kind)}, got {type(meta[name]).__name__} {meta[name]!r}")
    if problems:
        return problems
    day = meta["day"]
    if not 1 <= day <= N_DAYS:
        return [f"`day` should be from 1 to {N_DAYS}, got {day}"]
    expected = day_date(day).isoformat()
    if str(meta["date"]) != expected:
        problems.append(f"`date` should be {expected} (Day 1 is {FIRST_DAY} and days are consecutive), got {meta['date']}")
    if meta["part"] not in PARTS:
        problems.append(f"`part` should be one of {list(PARTS)}, got {meta['part']!r}")
    if not meta["hours"] > 0:
        problems.append(f"`hours` should be positive, got {meta['hours']}")
    if meta["hours-basis"] not in HOURS_BASES:
        problems.append(f"`hours-basis` should be one of {list(HOURS_BASES)}, got {meta['hours-basis']!r}")
    for mod in meta["modules"]:
        if not (isinstance(mod, str) and (mod == "mechlearn" or mod.startswith("mechlearn."))):
            problems.append(f"`modules` should list mechlearn module names like 'mechlearn.backprop.value', got {mod!r}")
    path = meta.get("path", "")
    if path and not re.fullmatch(rf"daily/day-{day:03d}-[a-z0-9-]+/index\.qmd", path):
        problems.append(f"a Day {day} page should live at daily/day-{day:03d}-<slug>/index.qmd, not {path}")
    if plan is not None and plan[day - 1]["part"] != meta["part"]:
        problems.append(f"the plan puts Day {day} in part {plan[day - 1]['part']!r}, the page says {meta['part']!r}")
    return problems


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({"str": "text", "int": "an integer", "float": "a number", "list": "a list", "date": "a date"}.get(k.__name__, k.__name__) for k in kinds)


def _page_href(page: dict[str, Any], prefix: str) -> str:
    return prefix + page["path"].removesuffix("index.qmd")


def progress_grid_html(plan: list[dict[str, Any]], days: list[dict[str, Any]], href_prefix: str = "") -> str:
    """A 10 × 10 grid, one cell per day, coloured by part; published days are filled and linked."""
    published = {d["day"]: d for d in days}
    cells = []
    for entry in plan:
        n, part = entry["day"], entry["part"]
        cls = f"day-cell part-{PARTS[part]}"
        if n in published:
            page = published[n]
            tip = html.escape(f"Day {n}: {page['title']} ({part}, ARENA {page['arena']})", quote=True)
            cells.append(f'<a class="{cls} done" role="listitem" href="{_page_href(page, href_prefix)}" title="{tip}" aria-label="{tip}">{n}</a>')
        else:
            tip = html.escape(f"Day {n} (planned): {entry['title']} ({part})", quote=True)
            cells.append(f'<span class="{cls} todo" role="listitem" title="{tip}" aria-label="{tip}">{n}</span>')
    legend = "".join(f'<span class="legend-item"><span class="swatch part-{c}"></span>{html.escape(p)}</span>' for p, c in PARTS.items())
    done = len(published)
    return (
        f'<div class="progress-summary">{done} of {len(plan)} days published</div>'
        f'<div class="progress-grid" role="list" aria-label="The 100 days">{"".join(cells)}</div>'
        f'<div class="progress-legend">{legend}</div>'
    )


def hours_by_part(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Study hours and day counts per part, in curriculum order (parts with no days give zeros)."""
    rows = []
    for part in PARTS:
        mine = [d for d in days if d["part"] == part]
        rows.append({
            "part": part,
            "days": len(mine),
            "hours": float(sum(d["hours"] for d in mine)),
            "estimated hours": float(sum(d["hours"] for d in mine if d["hours-basis"] == "estimate")),
        })
    return rows


def curriculum_rows(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ARENA section → days → ``mechlearn`` modules map, one row per ARENA section, in day order."""
    rows: dict[str, dict[str, Any]] = {}
    for d in days:
        row = rows.setdefault(str(d["arena"]), {"arena": str(d["arena"]), "part": d["part"], "days": [], "modules": []})
        row["days"].append(d)
        for m in d["modules"]:
            if m not in row["modules"]:
                row["modules"].append(m)
    return list(rows.values())


# --- Which source files a page depends on ---------------------------------------------------


def _imports_in(code: str) -> set[str]:
    """mechlearn modules imported by a piece of Python (``from mechlearn.x import y`` gives ``mechlearn.x``
    and, if ``y`` is a submodule, ``mechlearn.x.y``; resolved later against the files that exist)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        # IPython magics and shell escapes are not Python: drop those lines and try again.
        tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mechlearn")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "mechlearn":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def page_imports(qmd_text: str) -> set[str]:
    """The ``mechlearn`` modules (or candidate submodules) that a page's Python cells import."""
    found: set[str] = set()
    for cell in python_cells(qmd_text):
        found |= _imports_in(cell)
    return found


def module_file(name: str, code_root: str | Path) -> Path | None:
    """The source file of module ``name`` under ``code_root`` (a package's ``__init__.py``), or None if it is not a module."""
    code_root = Path(code_root)
    base = code_root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def module_closure(names: set[str] | list[str], code_root: str | Path) -> list[Path]:
    """Every source file executed by importing ``names``: the modules, their parent packages'
    ``__init__.py`` and, transitively, every ``mechlearn`` module they import. Sorted.

    Names that are not modules (``mechlearn.backprop.Value``, a class) are ignored.
    """
    code_root = Path(code_root)
    todo = list(names)
    seen: set[str] = set()
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        file = module_file(name, code_root)
        if file is None:
            continue
        files.add(file)
        todo.extend(_imports_in(file.read_text(encoding="utf-8")))
    return sorted(files)


def package_data(files: list[Path] | set[Path]) -> list[Path]:
    """The data files shipped beside the given modules: every non-Python file under each module's
    package folder, except inside subpackages (their own ``__init__.py`` brings their data in)."""
    found: set[Path] = set()
    for folder in {f.parent for f in files}:
        stack = [folder]
        while stack:
            current = stack.pop()
            for entry in current.iterdir():
                if entry.is_dir():
                    if entry.name != "__pycache__" and not (entry / "__init__.py").exists():
                        stack.append(entry)
                elif entry.suffix not in (".py", ".pyc"):
                    found.add(entry)
    return sorted(found)


def page_fingerprint(page: str | Path, code_root: str | Path, environment: list[Path] | tuple[Path, ...] = ()) -> str:
    """sha256 over everything that decides a page's numbers: every ``mechlearn`` file its declared
    ``modules`` and its imports execute, the data shipped beside them (committed checkpoints), and the
    ``environment`` files (the pinned versions), so a retrained checkpoint or a version bump counts too."""
    page = Path(page)
    names = set(read_front_matter(page).get("modules") or []) | page_imports(page.read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    code_root = Path(code_root)
    sources = module_closure(names, code_root)
    for file in [*sources, *package_data(sources)]:
        digest.update(file.relative_to(code_root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    for file in environment:
        digest.update(Path(file).name.encode() + b"\0")
        digest.update((Path(file).read_bytes() if Path(file).exists() else b"(missing)") + b"\0")
    return digest.hexdigest()
