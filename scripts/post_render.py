"""Quarto post-render step (see _quarto.yml): record the code fingerprint of every frozen page."""

from freeze_guard import main

raise SystemExit(main(["post"]))
