"""Execute a Quarto page the way Quarto's Jupyter engine does, but under test conditions.

A ``.qmd`` page is converted with jupytext's R Markdown reader (which understands
```` ```{python} ```` cells and keeps ``#|`` option comments), then executed top to bottom in a
fresh ``python3`` Jupyter kernel through nbclient, with the page's folder as working directory
(as Quarto does). Before the page's first cell, a hidden cell blocks the network: any socket
connection to a non-loopback address raises ``OSError``. Each kernel gets one BLAS/OpenMP/torch
thread, because pages run two at a time on two cores and multi-threaded BLAS then stalls.

Quarto cell options honoured here: ``#| eval: false`` (the cell is skipped),
``#| error: true`` (the cell may raise) and ``#| warning: false`` (its stderr is not shown, so it
may write there; anywhere else, text on stderr fails the page because readers would see it); a
page-level ``execute: eval: false`` skips the page and ``execute: warning: false`` quiets all cells.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from mechlearn.logbook import python_cells, read_front_matter

PAGE_LIMIT_S = 60.0
"""Every page must execute within this many seconds of CPU time (the kernel and any processes it
waits for). CPU time, not wall time, so a busy neighbour on the machine cannot fail a good page;
pages aim for 20 s on a quiet machine, a 3x margin."""
WALL_LIMIT_S = 180.0
"""A hang guard: a page (or one cell) still running after this many seconds of wall time fails."""

THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}

GUARD_CELL = r'''
def _mechlearn_block_network():
    import ipaddress, socket, sys
    def loopback(host):
        if host in ("localhost", "", None):
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False
    def refuse(what):
        raise OSError(f"network access is blocked while pages execute ({what}): a page must not download "
                      "anything; use data that ships with a package, or generate it on the page")
    real_connect, real_connect_ex, real_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            refuse(f"connect to {address[0]}")
        return real_connect(self, address)
    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            refuse(f"connect to {address[0]}")
        return real_connect_ex(self, address)
    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode()
        if not loopback(host):
            refuse(f"look up {host}")
        return real_getaddrinfo(host, *args, **kwargs)
    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
    return sys.executable
_mechlearn_block_network()
def _mechlearn_cpu_seconds():
    """User + system CPU seconds of this kernel and the child processes it has waited for."""
    import resource
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
_mechlearn_cpu_start = _mechlearn_cpu_seconds()
__import__("sys").executable
'''

TRAILER_CELL = "_mechlearn_cpu_seconds() - _mechlearn_cpu_start"


@dataclass
class PageRun:
    """What happened when a page ran."""

    path: Path
    seconds: float
    """Wall-clock seconds."""
    n_cells: int
    notebook: nbformat.NotebookNode
    error: str | None = None
    kernel_python: str = ""
    texts: list[str] = field(default_factory=list)
    """The text outputs of every cell, in order, for comparing two runs."""
    cpu_seconds: float = float("nan")
    """CPU seconds of the page's cells: the kernel and the processes it waited for."""


def is_executable(path: Path) -> bool:
    """True if the page has Python cells and does not switch evaluation off for the whole page."""
    meta = read_front_matter(path)
    if (meta.get("execute") or {}).get("eval") is False:
        return False
    return bool(python_cells(path.read_text(encoding="utf-8")))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")


def cell_options(source: str) -> dict[str, str]:
    """The ``#| key: value`` options at the top of a cell."""
    options = {}
    for line in source.splitlines():
        m = _OPTION.match(line)
        if not m:
            break
        options[m.group(1)] = m.group(2)
    return options


def to_notebook(path: Path) -> nbformat.NotebookNode:
    """Convert a ``.qmd`` page into the notebook that will be executed (guard cell first)."""
    text = path.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="Rmd")
    code = [c for c in nb.cells if c.cell_type == "code"]
    expected = python_cells(text)
    if len(code) != len(expected):
        raise AssertionError(
            f"{path}: jupytext found {len(code)} code cells but the page has {len(expected)} ```{{python}} cells; "
            "check for a malformed fence"
        )
    page_warning = (read_front_matter(path).get("execute") or {}).get("warning")
    cells = [nbformat.v4.new_code_cell(GUARD_CELL)]
    for cell in code:
        options = cell_options(cell.source)
        if options.get("eval") == "false":
            continue
        new = nbformat.v4.new_code_cell(cell.source)
        if options.get("error") == "true":
            new.metadata["tags"] = ["raises-exception"]
        if options.get("warning") == "false" or page_warning is False:
            new.metadata["quiet_stderr"] = True  # Quarto leaves this cell's warnings off the page
        cells.append(new)
    cells.append(nbformat.v4.new_code_cell(TRAILER_CELL))
    out = nbformat.v4.new_notebook(cells=cells)
    out.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return out


def _texts(nb: nbformat.NotebookNode) -> list[str]:
    texts = []
    for cell in nb.cells[1:-1]:  # the page's cells, without the guard and the CPU-time trailer
        previous_stream = None
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                # The kernel flushes printed text in chunks whose boundaries depend on timing, so
                # consecutive chunks of one stream are one output; only their joined text is compared.
                if previous_stream == out.name:
                    texts[-1] += out.text
                else:
                    texts.append(out.text)
                previous_stream = out.name
                continue
            previous_stream = None
            if "data" in out and not any(mime.startswith("image/") for mime in out.data):
                # A figure's text/plain fallback ("<Figure size ...>") is not shown on the page, so it is not compared.
                for mime in ("text/markdown", "text/html", "text/plain"):
                    if mime in out.data:
                        texts.append(out.data[mime])
                        break
    # Object addresses differ between runs and say nothing about the numbers.
    return [re.sub(r" at 0x[0-9a-f]+", " at 0x…", t) for t in texts]


_FREEZE_HINT = ("render it with Quarto (`make site`, or `quarto render PAGE` with QUARTO_PYTHON set to .venv/bin/python) "
                "and commit _freeze/ and _freeze-sources.json")


# A float64 comparison's error at rounding level (say 3.6e-15) can differ from run to run: BLAS
# kernels pick their summation order by memory alignment. Below 1e-11 such numbers count as equal.
_ROUNDING_NOISE = re.compile(r"\b\d(?:\.\d+)?e-(?:1[1-9]|[2-9]\d|\d{3})\b")


def _normalise(text: str) -> str:
    text = _ANSI.sub("", text)
    text = re.sub(r" at 0x[0-9a-f]+", " at 0x…", text)
    text = _ROUNDING_NOISE.sub("(rounding)", text)
    return re.sub(r"\s+", " ", text).strip()


def frozen_markdown(root: Path, path: Path) -> tuple[str | None, str | None]:
    """``(markdown, problem)``: the page's frozen output from ``_freeze/``, or why it cannot be used.

    The frozen output is current when Quarto's hash of the page source (MD5 of its text with LF
    line endings) matches and the freeze guard finds the mechlearn code behind it unchanged.
    """
    import hashlib
    import json

    rel = Path(path).resolve().relative_to(root)
    results = root / "_freeze" / rel.with_suffix("") / "execute-results" / "html.json"
    if not results.is_file():
        return None, f"{rel} has no frozen output ({results.relative_to(root)} is missing): {_FREEZE_HINT}"
    frozen = json.loads(results.read_text(encoding="utf-8"))
    source = Path(path).read_text(encoding="utf-8").replace("\r\n", "\n")
    if frozen.get("hash") != hashlib.md5(source.encode("utf-8")).hexdigest():
        return None, f"{rel} changed since it was frozen: {_FREEZE_HINT}"
    sys.path.insert(0, str(root / "scripts"))
    try:
        import freeze_guard
    finally:
        sys.path.remove(str(root / "scripts"))
    why = freeze_guard.stale_reason(root, rel.as_posix())  # this page's fingerprint only, not every page's
    if why:
        return None, f"{rel}'s frozen output is stale ({why}): {_FREEZE_HINT}"
    return frozen["result"]["markdown"], None


_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def _visible(html: str) -> str:
    """The text a reader sees in an HTML output: scripts, styles and tags removed."""
    return _normalise(_TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", html)))


def compare_with_frozen(texts: list[str], markdown: str) -> str | None:
    """None if every text output of this run appears in the frozen page (whitespace aside), else the first that does not.

    An HTML output (a table, a plotly figure) is compared by the text a reader sees in it, because
    Quarto moves the scripts of such outputs into the page head when it freezes them.
    """
    frozen, frozen_visible = _normalise(markdown), _visible(markdown)
    for i, text in enumerate(texts):
        norm = _normalise(text)
        if not norm or norm in frozen:
            continue
        if text.lstrip().startswith("<") and _visible(text) in frozen_visible:
            continue
        return f"output {i} of this run is not in the committed _freeze/ output (a missing seed, or _freeze/ is out of date):\n{text[:600]}"
    return None


def run_page(path: Path, limit: float = PAGE_LIMIT_S, wall_limit: float = WALL_LIMIT_S) -> PageRun:
    """Execute one page in a fresh kernel; never raises for a page error (see ``PageRun.error``).

    ``limit`` bounds the page's CPU seconds, ``wall_limit`` its wall-clock seconds (a hang guard).
    """
    path = Path(path).resolve()
    nb = to_notebook(path)
    env = {**os.environ, **THREAD_ENV, **OFFLINE_ENV}
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=max(1, int(wall_limit)),  # per cell, so a hung cell is stopped; the page totals are checked below
        startup_timeout=60,
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    error = None
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except CellTimeoutError:
        error = f"a cell ran longer than {wall_limit:.0f} s of wall time (the hang guard)"
    except CellExecutionError as err:
        error = _ANSI.sub("", str(err))
    seconds = time.perf_counter() - start
    kernel_python = ""
    guard = nb.cells[0].get("outputs", [])
    for out in guard:
        if out.output_type == "execute_result":
            kernel_python = out.data.get("text/plain", "").strip("'\"")
    cpu = float("nan")
    for out in nb.cells[-1].get("outputs", []):
        if out.output_type == "execute_result":
            cpu = float(out.data.get("text/plain", "nan"))
    if error is None:
        for i, cell in enumerate(nb.cells[1:-1], start=1):
            for out in cell.get("outputs", []):
                if out.output_type == "error" and "raises-exception" not in cell.metadata.get("tags", []):
                    error = f"cell {i}: {out.ename}: {out.evalue}"
                if out.output_type == "stream" and out.name == "stderr" and "Traceback" in out.text:
                    error = f"cell {i} printed a traceback to stderr:\n{out.text}"
                elif out.output_type == "stream" and out.name == "stderr" and not cell.metadata.get("quiet_stderr"):
                    error = (f"cell {i} wrote to stderr, which Quarto shows on the page (fix the warning, or give the "
                             f"cell `#| warning: false` if it is expected):\n{out.text[:1000]}")
    if error is None and cpu > limit:
        error = f"the page took {cpu:.1f} s of CPU time, over the {limit:.0f} s limit (wall time {seconds:.1f} s)"
    if error is None and seconds > wall_limit:
        error = f"the page took {seconds:.1f} s of wall time, over the {wall_limit:.0f} s hang guard"
    if error is None and kernel_python and Path(kernel_python).resolve() != Path(sys.executable).resolve():
        error = (
            f"the python3 kernel ran {kernel_python}, not this environment's {sys.executable}: a user-level "
            "kernelspec is shadowing it (see `jupyter kernelspec list`)"
        )
    return PageRun(path, seconds, len(nb.cells) - 2, nb, error, kernel_python, _texts(nb), cpu)


if __name__ == "__main__":  # python tests/pagerun.py PAGE.qmd [...]: run pages as the tests do and show their output
    import argparse

    parser = argparse.ArgumentParser(description="Execute pages in a fresh kernel as the page tests do; print time, errors and text outputs.")
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--quiet", action="store_true", help="print only the verdict and the time")
    args = parser.parse_args()
    status = 0
    for page in args.pages:
        run = run_page(page)
        failed = [t for t in run.texts if "❌" in t]
        verdict = "ERROR" if run.error else ("FAILED CHECK" if failed else "ok")
        if not args.quiet:
            for text in run.texts:
                print(text.rstrip(), end="\n\n")
        print(f"{verdict}: {page}: {run.cpu_seconds:.1f} s CPU, {run.seconds:.1f} s wall, {run.n_cells} cells")
        if run.error:
            print(run.error)
        status |= bool(run.error or failed)
    sys.exit(status)
