"""Copy the browser libraries the site serves itself into the built site's ``vendor/`` folder.

The published pages load nothing from a CDN, so they work offline, are reproducible, and can be
tested with the network blocked (tests/test_browser.py):

* ``vendor/katex/``: KaTeX's ``katex.min.js``, ``katex.min.css`` and fonts, from ``node_modules/katex``
  (pinned in package.json and package-lock.json; ``npm ci`` installs it). Pages point Quarto's
  ``html-math-method`` at it (``_quarto.yml`` for top-level pages, ``daily/_metadata.yml`` and
  ``posts/_metadata.yml`` for pages two folders down).
* ``vendor/plotly/plotly.min.js``: plotly.js as bundled by the pinned ``plotly`` Python package,
  so figures drawn by that package and the script they load are the same release.

Run by the post-render step (into Quarto's output folder) and by ``make preview`` (into ``_site``).

Usage: ``python scripts/vendor_assets.py [SITE_DIR]`` (default ``_site``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KATEX_FILES = ("katex.min.js", "katex.min.css", "fonts")


def sources() -> dict[str, Path]:
    """Where each vendored file comes from; raises with the fix if one is missing."""
    katex = ROOT / "node_modules" / "katex" / "dist"
    if not (katex / "katex.min.js").is_file():
        raise SystemExit(
            f"KaTeX is not installed ({katex} is missing): run `npm ci` in {ROOT} "
            "(`make site` and `make preview` do), so the site can serve maths without a CDN"
        )
    try:
        import plotly
    except ImportError as err:  # pragma: no cover - requirements.txt pins plotly
        raise SystemExit("plotly is not installed: run `make setup` (plotly is pinned in requirements.txt)") from err
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not plotly_js.is_file():
        raise SystemExit(f"the plotly package has no bundled plotly.min.js at {plotly_js}")
    out = {f"katex/{name}": katex / name for name in KATEX_FILES}
    out["plotly/plotly.min.js"] = plotly_js
    return out


def install(site: Path) -> list[Path]:
    """Copy every vendored file into ``site/vendor/``; returns the paths written."""
    written = []
    for rel, src in sources().items():
        dest = site / "vendor" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest)
        written.append(dest)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_site"
    for path in install(target):
        print(f"vendored {path.relative_to(target)}")
