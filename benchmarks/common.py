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


def median_seconds(fn: Callable[[], Any], repeats: int = 7, min_time: float = 0.05) -> float:
    """Median over ``repeats`` of the mean time of one call, each repeat looping for at least ``min_time``."""
    fn()  # warm up: first-call costs (allocation, dispatch caches) are not what we measure
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time:
            break
        n *= 2
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


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
    name: str, title: str, description: str, columns: list[str], rows: list[dict[str, Any]], script: str
) -> dict[str, Any]:
    """Write ``results/<name>.json`` and print the rows as a table; return the result."""
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{title}\n")
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(_fmt(r[c]).ljust(w) for c, w in zip(columns, widths)))
    return result


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
