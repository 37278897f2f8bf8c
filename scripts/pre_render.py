"""Quarto pre-render step (see _quarto.yml): drop frozen output whose mechlearn code changed."""

from freeze_guard import main

raise SystemExit(main(["pre"]))
