"""Run every benchmark (``bench_*.py``) and write ``results/*.json`` for the site's benchmarks page.

Usage: ``python benchmarks/run.py [--quick]``. Each benchmark process uses one torch thread, the
same as the reference, so that the ratio compares implementations, not thread counts.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer sizes, for a smoke test")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # an entry point, not library code: here setting it is ours to do
    sys.path.insert(0, str(HERE))
    for path in sorted(HERE.glob("bench_*.py")):
        importlib.import_module(path.stem).run(quick=args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
