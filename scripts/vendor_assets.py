"""Serve the site's browser libraries from the site itself: copy them into ``vendor/``, relink pages.

The published pages load nothing from another host, so they work offline, are reproducible, and
can be tested with the network blocked (``tests/test_browser.py``). Every library is pinned:

* ``vendor/katex/``: KaTeX's script, stylesheet and fonts (npm, ``package-lock.json``). Pages point
  Quarto's ``html-math-method`` at it (``_quarto.yml`` for top-level pages, ``daily/_metadata.yml``
  and ``posts/_metadata.yml`` for pages two folders down).
* ``vendor/lato/``: the Lato font of the flatly/darkly themes (npm ``@fontsource/lato``), imported by
  the theme through ``$web-font-path`` in ``styles.scss`` instead of Google Fonts.
* ``vendor/requirejs/`` and ``vendor/jquery/``: the exact releases Quarto links from a CDN on every
  page with an HTML output (require.js 2.3.6, jQuery 3.5.1; npm).
* ``vendor/plotly/plotly.min.js``: plotly.js as bundled by the pinned ``plotly`` Python package.

``install`` copies the files; ``localise`` rewrites each page's ``<script src="https://...">`` tags
for those libraries to the vendored copy (relative to the page) with a ``sha384`` integrity hash of
the file actually served, and loads KaTeX with require.js's ``define`` hidden (see ``_KATEX``). Any other remote script or stylesheet is left alone, and the render test
fails on it.

Run by the post-render step (into Quarto's output folder) and by ``make preview`` (into ``_site``).

Usage: ``python scripts/vendor_assets.py [SITE_DIR]`` (default ``_site``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "node_modules"
LATO_WEIGHTS = ("400", "400-italic", "700", "700-italic")


def _plotly_js() -> tuple[Path, str]:
    try:
        import plotly
        from plotly.offline import get_plotlyjs_version
    except ImportError as err:  # pragma: no cover - requirements.txt pins plotly
        raise SystemExit("plotly is not installed: run `make setup` (plotly is pinned in requirements.txt)") from err
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise SystemExit(f"the plotly package has no bundled plotly.min.js at {path}")
    return path, get_plotlyjs_version()


def sources() -> dict[str, Path]:
    """``{path under vendor/: source}`` for every vendored file or folder; raises with the fix if one is missing."""
    if not (NODE / "katex" / "dist" / "katex.min.js").is_file():
        raise SystemExit(
            f"the site's browser libraries are not installed ({NODE} is incomplete): run `npm ci` in {ROOT} "
            "(`make setup` does), so the site can serve them without a CDN"
        )
    out = {f"katex/{name}": NODE / "katex" / "dist" / name for name in ("katex.min.js", "katex.min.css", "fonts")}
    lato = NODE / "@fontsource" / "lato"
    out.update({f"lato/{w}.css": lato / f"{w}.css" for w in LATO_WEIGHTS})
    out.update({f"lato/files/{f.name}": f for f in sorted((lato / "files").glob("*")) if any(f"-{w}" in f.name for w in
               ("400-normal", "400-italic", "700-normal", "700-italic"))})
    out["requirejs/require.js"] = NODE / "requirejs" / "require.js"
    out["jquery/jquery.min.js"] = NODE / "jquery" / "dist" / "jquery.min.js"
    out["plotly/plotly.min.js"] = _plotly_js()[0]
    return out


def remote_to_vendored() -> dict[str, str]:
    """``{CDN url a page may contain: path under vendor/}``, for the pinned releases only."""
    import json

    def version(package: str) -> str:
        return json.loads((NODE / package / "package.json").read_text())["version"]

    return {
        f"https://cdn.jsdelivr.net/npm/requirejs@{version('requirejs')}/require.min.js": "requirejs/require.js",
        f"https://cdn.jsdelivr.net/npm/jquery@{version('jquery')}/dist/jquery.min.js": "jquery/jquery.min.js",
        f"https://cdn.plot.ly/plotly-{_plotly_js()[1]}.min.js": "plotly/plotly.min.js",
    }


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
    # One stylesheet for the theme's $web-font-path (styles.scss): the weights the themes use.
    (site / "vendor" / "lato" / "lato.css").write_text("".join(f'@import url("{w}.css");\n' for w in LATO_WEIGHTS))
    return written


def integrity(path: Path) -> str:
    """The Subresource Integrity value of a file: ``sha384-`` and its base64 digest."""
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


_SCRIPT = re.compile(r'<script\b([^>]*?)\bsrc="(https?://[^"]+)"([^>]*)>\s*</script>')
# KaTeX's UMD bundle registers itself with require.js instead of as window.katex when require.js is
# on the page (Quarto links it for pages with HTML outputs), and the typesetting script then fails.
# Quarto hides `define` around KaTeX when html-math-method is the string "katex", but not when it
# names a url, as ours does; this does the same.
_KATEX = re.compile(r'<script defer="" src="([^"]*vendor/katex/katex\.min\.js)"></script>')
_HIDE_DEFINE = ('<script>window.backupDefine = window.define; window.define = undefined;</script>{}'
                '<script>window.define = window.backupDefine; window.backupDefine = undefined;</script>')
_UMD = {"plotly/plotly.min.js"}
_KATEX_SAFE = _HIDE_DEFINE.format('<script src="\\1"></script>')


def localise(site: Path) -> dict[str, int]:
    """Point every page's CDN script tags for the vendored libraries at ``vendor/``; returns ``{page: tags rewritten}``."""
    mapping = remote_to_vendored()
    hashes = {rel: integrity(site / "vendor" / rel) for rel in set(mapping.values())}
    changed = {}
    for page in sorted(site.rglob("*.html")):
        if "vendor" in page.relative_to(site).parts:
            continue
        text = page.read_text(encoding="utf-8")
        prefix = "../" * (len(page.relative_to(site).parts) - 1)
        count = 0

        def swap(m: re.Match) -> str:
            nonlocal count
            rel = mapping.get(m.group(2))
            if rel is None:
                return m.group(0)
            count += 1
            attrs = re.sub(r'\s*\b(integrity|crossorigin)="[^"]*"', "", m.group(1) + m.group(3)).strip()
            tag = f'<script src="{prefix}vendor/{rel}" integrity="{hashes[rel]}"{" " + attrs if attrs else ""}></script>'
            # plotly.js, like KaTeX, registers with require.js instead of as window.Plotly when it is on the page.
            return _HIDE_DEFINE.format(tag) if rel in _UMD else tag

        new = _SCRIPT.sub(swap, text)
        new, n_katex = _KATEX.subn(_KATEX_SAFE, new)
        count += n_katex
        if count:
            page.write_text(new, encoding="utf-8")
            changed[page.relative_to(site).as_posix()] = count
    return changed


def main(site: Path) -> None:
    install(site)
    changed = localise(site)
    print(f"vendor_assets: served {len(sources())} files from {site.name}/vendor/; relinked CDN scripts in {len(changed)} pages")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("QUARTO_PROJECT_OUTPUT_DIR", ROOT / "_site")))
