"""Quarto post-render step (see _quarto.yml): record the code fingerprint of every frozen page,
and copy the browser libraries the site serves itself (KaTeX, plotly.js) into the output folder."""

import os
from pathlib import Path

import vendor_assets
from freeze_guard import main

vendor_assets.install(Path(os.environ.get("QUARTO_PROJECT_OUTPUT_DIR", vendor_assets.ROOT / "_site")).resolve())
raise SystemExit(main(["post"]))
