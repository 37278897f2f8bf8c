"""Shared test setup: one thread per process, project paths, and the page-timing report.

Tests may run in two processes (``pytest -n 2``). With the other core busy, multi-threaded BLAS
stalls small matrix products by orders of magnitude, so every test process and every page kernel
gets one thread. This is an entry point, so setting it here (not in the library) is right.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
_TIMINGS_VAR = "MECHLEARN_PAGE_TIMINGS"


def _timings_dir() -> Path:
    """This test run's folder of page timings: set by the controller, inherited by xdist workers,
    so two pytest runs at once (say, one in the editor and `make test`) never mix their records."""
    return Path(os.environ[_TIMINGS_VAR])


def pytest_configure(config):
    import shutil

    import torch

    torch.set_num_threads(1)
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        folder = REPORTS / ".page-times" / str(os.getpid())
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ[_TIMINGS_VAR] = str(folder)


def record_page_time(page: str, seconds: float, cpu_seconds: float, n_cells: int, status: str, run: int) -> None:
    """Called by the page tests; one small file per page run, so parallel workers never clash."""
    name = page.replace("/", "__") + f".run{run}.json"
    record = {"page": page, "seconds": seconds, "cpu_seconds": cpu_seconds, "cells": n_cells, "status": status, "run": run}
    (_timings_dir() / name).write_text(json.dumps(record))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    import shutil

    folder = _timings_dir()
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.parent / (folder.name + "-rendered"), ignore_errors=True)
    if not records:
        return
    first = sorted((r for r in records if r["run"] == 1), key=lambda r: -r["cpu_seconds"])
    second = {r["page"]: r["cpu_seconds"] for r in records if r["run"] == 2}
    from pagerun import PAGE_LIMIT_S, WALL_LIMIT_S

    lines = [
        "# Page execution times",
        "",
        f"Each page ran once in a fresh Jupyter kernel (network blocked, one thread); pages with `freeze: false` "
        f"ran twice. Limits: {PAGE_LIMIT_S:.0f} s of CPU time, {WALL_LIMIT_S:.0f} s of wall time. Most CPU first.",
        "",
        "| page | cells | CPU (s) | wall (s) | second run, CPU (s) | status |",
        "|:--|--:|--:|--:|--:|:--|",
    ]
    for r in first:
        again = f"{second[r['page']]:.1f}" if r["page"] in second else "–"
        lines.append(f"| {r['page']} | {r['cells']} | {r['cpu_seconds']:.1f} | {r['seconds']:.1f} | {again} | {r['status']} |")
    total = sum(r["seconds"] for r in first)
    cpu = sum(r["cpu_seconds"] for r in first)
    lines += ["", f"{len(first)} pages, {cpu:.1f} s of CPU and {total:.1f} s of wall time in total (first runs)."]
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "page-times.md").write_text("\n".join(lines) + "\n")
    (REPORTS / "page-times.json").write_text(json.dumps(first, indent=2) + "\n")
    tr = terminalreporter
    tr.section("page execution times (slowest first)")
    for r in first:
        again = f"  (second run {second[r['page']]:.1f} s CPU)" if r["page"] in second else ""
        tr.write_line(f"{r['cpu_seconds']:6.1f} s CPU {r['seconds']:6.1f} s wall  {r['cells']:3d} cells  {r['status']:5s}  {r['page']}{again}")
    tr.write_line(f"{len(first)} pages, {cpu:.1f} s CPU, {total:.1f} s wall in total; report: reports/page-times.md")


def unchecked(fn):
    """``fn`` without the jaxtyping/beartype wrapper that the test run adds to every mechlearn function.

    Bad-input tests call this to check *our own* validation and its message: users run mechlearn
    without the test-time type checker, so our checks are what they see. (The type checker would
    otherwise reject the bad input first, with its own message.)
    """
    import inspect

    return inspect.unwrap(fn)


def quarto_command() -> str | None:
    """The quarto executable on PATH or beside this Python, or None."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "quarto"
    return shutil.which("quarto") or (str(beside) if beside.exists() else None)


@pytest.fixture(scope="session")
def rendered_site():
    """``(project folder, CompletedProcess)``: a copy of the repository rendered by ``quarto render``.

    Rendered once per test run and shared by the render and browser tests, whichever xdist worker
    gets there first (a file lock in this run's folder; the other waits and reuses it). Set
    ``MECHLEARN_RENDERED_PROJECT`` to a folder already rendered to skip the render while working
    on those tests.
    """
    import fcntl
    import shutil
    import subprocess
    import sys

    given = os.environ.get("MECHLEARN_RENDERED_PROJECT")
    if given:
        return Path(given), subprocess.CompletedProcess([], 0, "", "")
    quarto = quarto_command()
    if quarto is None:
        pytest.skip("quarto is not on PATH")
    shared = _timings_dir().parent / (_timings_dir().name + "-rendered")
    shared.mkdir(exist_ok=True)
    project, record = shared / "site", shared / "result.json"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits here while one renders
        if not record.exists():
            ignore = shutil.ignore_patterns(".venv", "_site", ".quarto", "reports", ".git", "__pycache__", ".pytest_cache",
                                            ".hypothesis", "node_modules")
            shutil.rmtree(project, ignore_errors=True)
            shutil.copytree(ROOT, project, ignore=ignore, symlinks=True)
            if (ROOT / "node_modules").is_dir():
                (project / "node_modules").symlink_to(ROOT / "node_modules")
            env = {**os.environ, "QUARTO_PYTHON": sys.executable,
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
            subprocess.run([str(Path(sys.executable).parent / "quartodoc"), "build"], cwd=project, env=env, check=True,
                           timeout=300, capture_output=True)
            result = subprocess.run([quarto, "render"], cwd=project, env=env, capture_output=True, text=True, timeout=2400)
            record.write_text(json.dumps({"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}))
    saved = json.loads(record.read_text())
    return project, subprocess.CompletedProcess(["quarto", "render"], saved["returncode"], saved["stdout"], saved["stderr"])
