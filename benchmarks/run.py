"""Run every benchmark (``bench_*.py``) and write ``results/*.json`` for the site's benchmarks page.

Usage: ``python benchmarks/run.py [--quick] [--out DIR]``. Each benchmark uses one torch thread,
the same as its reference, so that a ratio compares implementations, not thread counts.
``--quick`` runs fewer sizes as a smoke test and writes to ``results-quick/``, never over the
committed results.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    import common

    runs = [importlib.import_module(path.stem).run for path in sorted(HERE.glob("bench_*.py"))]
    return common.main(runs, argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
