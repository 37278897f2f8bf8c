"""Keep Quarto's frozen page outputs honest when the ``mechlearn`` code behind them changes.

Quarto's ``freeze: auto`` re-executes a page when the page's own text changes, not when a module
it imports changes (quarto-cli issue 6793), so a frozen page could show numbers that today's code
no longer produces. This guard closes the gap:

* ``pre``  (``scripts/pre_render.py``, before every render): for every page with frozen output,
  compare the fingerprint of the ``mechlearn`` source it executes (``mechlearn.logbook.page_fingerprint``:
  its declared ``modules``, its imports, and everything those import) with the fingerprint
  recorded when it was frozen. If they differ, or none was recorded, delete the page's folder in
  ``_freeze/`` so that Quarto executes the page again.
* ``post`` (``scripts/post_render.py``, after every render): record the fingerprint of every page
  that now has frozen output, in ``_freeze-sources.json`` (committed beside ``_freeze/``). The
  fingerprint recorded is the one ``pre`` computed before the pages executed (kept in
  ``.freeze-guard-pending.json``), so code edited while a render runs leaves those pages stale
  rather than recorded as current.

A fingerprint covers the ``mechlearn`` source a page executes, the data shipped beside it (the
committed checkpoints) and ``requirements.txt`` (the pinned versions): retraining a checkpoint or
bumping a version re-executes the pages that depend on it.

The guard deletes Quarto's files but never writes inside ``_freeze/``.

Usage: ``python scripts/freeze_guard.py pre|post|status [--root DIR]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD_NAME = "_freeze-sources.json"
PENDING_NAME = ".freeze-guard-pending.json"
ENVIRONMENT = ("requirements.txt",)

try:
    from mechlearn.logbook import page_fingerprint
except ImportError:  # Quarto ran this with a Python that has not installed mechlearn
    sys.path.insert(0, str(ROOT / "code"))
    from mechlearn.logbook import page_fingerprint


def frozen_pages(root: Path) -> dict[str, Path]:
    """``{page path: its _freeze folder}`` for every page that has frozen output."""
    freeze = root / "_freeze"
    found = {}
    for results in sorted(freeze.glob("**/execute-results")):
        folder = results.parent  # _freeze/daily/day-001-x/index
        page = folder.relative_to(freeze).as_posix() + ".qmd"
        found[page] = folder
    return found


def fingerprint(root: Path, page: str) -> str:
    """The fingerprint of ``page`` as the project stands now."""
    return page_fingerprint(root / page, root / "code", [root / name for name in ENVIRONMENT])


def load_record(root: Path) -> dict[str, str]:
    path = root / RECORD_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def stale_reason(root: Path, page: str, record: dict[str, str] | None = None) -> str | None:
    """Why the frozen output of ``page`` is stale, or None if its code fingerprint is the recorded one."""
    record = load_record(root) if record is None else record
    if not (root / page).exists():
        return "the page no longer exists"
    if page not in record:
        return "no fingerprint was recorded when it was frozen"
    if record[page] != fingerprint(root, page):
        return "the mechlearn code, checkpoints or pinned versions it depends on changed since it was frozen"
    return None


def stale_pages(root: Path) -> dict[str, str]:
    """``{page: why}`` for every frozen page whose code fingerprint is not the recorded one."""
    record = load_record(root)
    reasons = {page: stale_reason(root, page, record) for page in frozen_pages(root)}
    return {page: why for page, why in reasons.items() if why}


def all_pages(root: Path) -> list[str]:
    """Every page Quarto renders that could have frozen output (files and folders starting with _ or . are skipped)."""
    pages = []
    for path in sorted(root.rglob("*.qmd")):
        rel = path.relative_to(root)
        if not any(part.startswith((".", "_")) for part in rel.parts) and rel.parts[0] not in ("reference", "reports"):
            pages.append(rel.as_posix())
    return pages


def pre(root: Path) -> list[str]:
    """Drop the frozen output of every stale page; note every page's fingerprint for ``post``; return the pages dropped."""
    pending = {page: fingerprint(root, page) for page in all_pages(root)}
    (root / PENDING_NAME).write_text(json.dumps(pending, indent=2, sort_keys=True) + "\n")
    folders = frozen_pages(root)
    dropped = []
    for page, why in stale_pages(root).items():
        shutil.rmtree(folders[page])
        print(f"freeze guard: dropped frozen output of {page} ({why}); it will execute again")
        dropped.append(page)
    return dropped


def post(root: Path) -> dict[str, str]:
    """Record the fingerprint of every page that has frozen output now, as ``pre`` computed it."""
    pending_file = root / PENDING_NAME
    pending = json.loads(pending_file.read_text()) if pending_file.exists() else {}
    record = {
        page: pending.get(page) or fingerprint(root, page)
        for page in frozen_pages(root)
        if (root / page).exists()
    }
    pending_file.unlink(missing_ok=True)
    (root / RECORD_NAME).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["pre", "post", "status"])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project folder (default: this repository)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.step == "pre":
        pre(root)
    elif args.step == "post":
        post(root)
    else:
        stale = stale_pages(root)
        for page, why in stale.items():
            print(f"stale: {page}: {why}")
        print(f"{len(frozen_pages(root))} frozen pages, {len(stale)} stale")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
