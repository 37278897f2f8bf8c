"""Shared helpers for the benchmarks: timing, the result format, and the table each one prints.

A benchmark measures *ratios against a reference in the same run* (ours / reference time), so a
result does not depend on how fast this machine is today. Each ``bench_*.py`` has a
``run(quick: bool) -> dict`` and writes ``results/<name>.json``, which the site's benchmarks page
reads. Run them all with ``make bench`` (or ``python benchmarks/run.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).parent / "results"
"""Where the committed results live (the site's benchmarks page reads them)."""
OUT_DIR = RESULTS
"""Where `save` writes: `RESULTS`, or another folder given with ``--out`` (``--quick`` never writes `RESULTS`)."""


def _loops_for(fn: Callable[[], Any], min_time: float) -> int:
    """How many calls of ``fn`` take at least ``min_time`` seconds (a power of two)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time:
            return n
        n *= 2


def _mean_call(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def median_seconds(fn: Callable[[], Any], repeats: int = 7, min_time: float = 0.05) -> float:
    """Median over ``repeats`` of the mean time of one call, each repeat looping for at least ``min_time``."""
    fn()  # warm up: first-call costs (allocation, dispatch caches) are not what we measure
    n = _loops_for(fn, min_time)
    return statistics.median(_mean_call(fn, n) for _ in range(repeats))


def paired_seconds(
    ours: Callable[[], Any], reference: Callable[[], Any], repeats: int = 9, min_time: float = 0.05
) -> tuple[float, float]:
    """Median seconds per call of ``ours`` and of ``reference``, timed in alternation.

    Each repeat times one loop of each, in alternating order, so a slow spell of the machine
    (another process, frequency scaling) lands on both sides of the ratio instead of on one.
    """
    ours(), reference()  # warm up both
    n_ours, n_ref = _loops_for(ours, min_time), _loops_for(reference, min_time)
    t_ours, t_ref = [], []
    for i in range(repeats):
        if i % 2:
            t_ref.append(_mean_call(reference, n_ref))
            t_ours.append(_mean_call(ours, n_ours))
        else:
            t_ours.append(_mean_call(ours, n_ours))
            t_ref.append(_mean_call(reference, n_ref))
    return statistics.median(t_ours), statistics.median(t_ref)


def machine() -> dict[str, Any]:
    import numpy
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def save(
    name: str,
    title: str,
    description: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    script: str,
    target: str | None = None,
    met: bool | None = None,
) -> dict[str, Any]:
    """Write ``<OUT_DIR>/<name>.json`` and print the rows as a table; return the result.

    ``target`` states the goal this benchmark is held to (from the project's issues) and ``met``
    whether this run reaches it; the benchmarks page shows both.
    """
    if (target is None) != (met is None):
        raise ValueError("give both `target` and `met`, or neither")
    result = {
        "name": name,
        "title": title,
        "description": description,
        "script": f"benchmarks/{Path(script).name}",
        "measured": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "columns": columns,
        "rows": rows,
    }
    if target is not None:
        result["target"], result["met"] = target, bool(met)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{title}\n")
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(_fmt(r[c]).ljust(w) for c, w in zip(columns, widths)))
    return result


def main(runs: list[Callable[[bool], Any]], argv: list[str] | None = None, description: str = "") -> int:
    """The command line of every benchmark script: one torch thread, ``--quick``, ``--out DIR``."""
    import argparse

    import torch

    global OUT_DIR
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer sizes, for a smoke test; writes to results-quick/ unless --out")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results (default: results/)")
    args = parser.parse_args(argv)
    OUT_DIR = args.out or (RESULTS.parent / "results-quick" if args.quick else RESULTS)
    # An entry point, not library code: setting the thread count is ours to do here. One thread for
    # ours and the reference alike, so a ratio compares implementations, not thread counts.
    torch.set_num_threads(1)
    for run in runs:
        run(args.quick)
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
