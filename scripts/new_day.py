"""Scaffold the next day page from ``_templates/day.qmd``, with valid front matter.

Usage::

    python scripts/new_day.py            # the first day of the plan that has no page yet
    python scripts/new_day.py 4          # day 4
    python scripts/new_day.py 4 --slug tensor-recipes

The title, part and ARENA section come from the plan (``_curriculum.yml``) and the date is
fixed by the day number (Day 1 is 2026-08-15). The page starts as a draft (``draft: true``):
Quarto does not publish drafts and the home page does not count them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent

try:
    from mechlearn import logbook
except ImportError:  # run with a Python that has not installed mechlearn
    sys.path.insert(0, str(ROOT / "code"))
    from mechlearn import logbook


def slugify(text: str, max_words: int = 5) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower().split(":")[0])
    return "-".join(words[:max_words]) or "day"


def scaffold(root: Path, day: int | None = None, slug: str | None = None) -> Path:
    """Write ``daily/day-NNN-slug/index.qmd`` and return its path; refuse to overwrite a day."""
    plan = logbook.load_plan(root)
    existing = {d["day"] for d in logbook.load_days(root, include_drafts=True)}
    if day is None:
        missing = [p["day"] for p in plan if p["day"] not in existing]
        if not missing:
            raise SystemExit("every day of the plan already has a page")
        day = missing[0]
    if not 1 <= day <= logbook.N_DAYS:
        raise SystemExit(f"day should be from 1 to {logbook.N_DAYS}, got {day}")
    if day in existing:
        raise SystemExit(f"Day {day} already has a page: {next(root.glob(f'daily/day-{day:03d}-*/index.qmd'))}")
    entry = plan[day - 1]
    slug = slug or slugify(entry["title"])
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
        raise SystemExit(f"slug should be lowercase words joined by hyphens, got {slug!r}")
    title = entry["title"].replace('"', "'")
    text = Template((root / "_templates" / "day.qmd").read_text(encoding="utf-8")).substitute(
        title=title,
        day=day,
        date=logbook.day_date(day).isoformat(),
        part=entry["part"],
        arena=entry["arena"],
        check=entry["check"].replace('"', "'") if entry["check"] != "—" else "Notes",
        category=entry["part"].lower(),
    )
    path = root / "daily" / f"day-{day:03d}-{slug}" / "index.qmd"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    meta = logbook.read_front_matter(path)
    meta["path"] = path.relative_to(root).as_posix()
    problems = logbook.validate_day(meta, plan)
    if problems:  # the template and the plan disagree: a bug here, not the author's
        path.unlink()
        path.parent.rmdir()
        raise SystemExit(f"the scaffolded front matter is invalid: {problems}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("day", type=int, nargs="?", help="the day number (default: the first without a page)")
    parser.add_argument("--slug", help="the folder name after day-NNN- (default: from the plan's title)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path = scaffold(args.root.resolve(), args.day, args.slug)
    print(f"wrote {path.relative_to(args.root.resolve())}")
    print("next: write it in `make preview`, run `make test`, and remove `draft: true` when it is ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
