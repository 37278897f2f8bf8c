"""Quarto post-render step (see _quarto.yml): record the code fingerprint of every frozen page,
and serve the site's browser libraries (KaTeX, Lato, require.js, jQuery, plotly.js) from the
output folder instead of CDNs (scripts/vendor_assets.py)."""

import os
from pathlib import Path

import vendor_assets
from freeze_guard import main

vendor_assets.main(Path(os.environ.get("QUARTO_PROJECT_OUTPUT_DIR", vendor_assets.ROOT / "_site")).resolve())
raise SystemExit(main(["post"]))
