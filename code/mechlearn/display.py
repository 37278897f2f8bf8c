"""Show the package's real source on a page, so the code a reader sees is the code that ran.

A day page never pastes library code (a pasted copy drifts). It calls `show_source`,
which reads the source with `inspect` and returns an object that Jupyter, and so Quarto,
renders as a highlighted Python block with a caption naming the file and lines.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SourceCode", "show_source", "draw_value_graph"]


@dataclass(frozen=True)
class SourceCode:
    """A piece of real source code, with where it came from."""

    code: str
    path: str
    """The file, relative to the ``mechlearn`` package's parent folder (e.g. ``mechlearn/backprop/value.py``)."""
    first_line: int
    last_line: int

    @property
    def caption(self) -> str:
        """Where the code comes from, e.g. ``mechlearn/backprop/value.py, lines 40–72``."""
        return f"{self.path}, lines {self.first_line}–{self.last_line}"

    def _repr_markdown_(self) -> str:
        # A fence longer than any backtick run in the code, so docstrings with ``` stay inside.
        fence = "`" * max(3, _longest_backtick_run(self.code) + 1)
        return f"{fence}python\n{self.code}\n{fence}\n\n*Source: `{self.caption}`*\n"

    def __str__(self) -> str:
        return f"# {self.caption}\n{self.code}"


def _longest_backtick_run(text: str) -> int:
    best = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    return best


def show_source(obj: Any, *, docstring: bool = True) -> SourceCode:
    """The source of a function, class, method or module, ready to display on a page.

    Args:
        obj: anything `inspect.getsource` accepts (a property is shown through its getter).
        docstring: if False, drop the docstring of a function or class to keep the listing short.

    Returns:
        A `SourceCode`; in a notebook or Quarto page it renders as highlighted code.

    Raises:
        TypeError: for objects with no Python source (builtins, C extensions, numbers).
    """
    target = obj.fget if isinstance(obj, property) else obj
    try:
        # Follow decorators (functools.wraps, jaxtyping/beartype checkers) to the function as written.
        target = inspect.unwrap(target)
        lines, start = inspect.getsourcelines(target)
        file = inspect.getsourcefile(target)
    except (TypeError, OSError) as err:
        raise TypeError(
            f"show_source needs a Python function, class, method or module with source on disk; "
            f"got {type(obj).__name__} {obj!r} ({err})"
        ) from None
    start = max(start, 1)  # modules report line 0
    code = textwrap.dedent("".join(lines)).rstrip("\n")
    if not docstring:
        code = _strip_docstring(code)
    return SourceCode(code, _relative_path(file), start, start + len(lines) - 1)


def _relative_path(file: str | None) -> str:
    if file is None:
        return "<unknown>"
    parts = Path(file).resolve().parts
    if "mechlearn" in parts:
        i = len(parts) - 1 - parts[::-1].index("mechlearn")
        return "/".join(parts[i:])
    return Path(file).name


def _strip_docstring(code: str) -> str:
    import ast

    tree = ast.parse(code)
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return code
    node = tree.body[0]
    first = node.body[0] if node.body else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return code
    lines = code.splitlines()
    del lines[first.lineno - 1 : first.end_lineno]
    return "\n".join(lines)


def draw_value_graph(root: Any, ax: Any = None, title: str | None = None) -> Any:
    """Draw the computation graph behind a scalar ``Value``: one box per node with its data and grad.

    Nodes are placed left to right by depth (longest path from an input), so every edge points
    right, from operand to result; the operation that made a node is written above it.

    Args:
        root: a ``mechlearn.backprop.Value`` (usually after ``root.backward()``).
        ax: a matplotlib ``Axes`` to draw on; a new figure is made if omitted.
        title: an optional title.

    Returns:
        The matplotlib ``Axes``.
    """
    from mechlearn._optional import require

    plt = require("matplotlib.pyplot", "mechlearn.display.draw_value_graph")

    from mechlearn.backprop.value import Value, topological_order

    if not isinstance(root, Value):
        raise TypeError(f"draw_value_graph expects a mechlearn Value, got {type(root).__name__}")
    order = topological_order(root)
    depth: dict[int, int] = {}
    for node in order:  # parents come first, so their depth is known
        depth[id(node)] = 1 + max((depth[id(p)] for p in node._prev), default=-1)
    columns: dict[int, list[Any]] = {}
    for node in order:
        columns.setdefault(depth[id(node)], []).append(node)
    pos = {}
    for d, nodes in columns.items():
        for i, node in enumerate(nodes):
            pos[id(node)] = (d, (len(nodes) - 1) / 2 - i)
    if ax is None:
        n_cols, n_rows = len(columns), max(len(v) for v in columns.values())
        _, ax = plt.subplots(figsize=(1.9 * n_cols + 0.6, 0.95 * n_rows + 0.8))
    for node in order:
        x1, y1 = pos[id(node)]
        for parent in node._prev:
            x0, y0 = pos[id(parent)]
            ax.annotate("", xy=(x1 - 0.36, y1), xytext=(x0 + 0.36, y0),
                        arrowprops={"arrowstyle": "->", "color": "0.55", "lw": 1})
    for node in order:
        x, y = pos[id(node)]
        name = node.label or (node.op if node.op else "")
        text = f"{name}\ndata {node.data:.3g}\ngrad {node.grad:.3g}"
        colour = "#d8efec" if not node._prev else "#fbe3da" if node is root else "#eeeeee"
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5, family="monospace",
                bbox={"boxstyle": "round,pad=0.3", "fc": colour, "ec": "0.4", "lw": 0.8})
        if node.op and node.label:
            ax.text(x, y + 0.36, node.op, ha="center", va="bottom", fontsize=8, color="0.35")
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.55, max(xs) + 0.55)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax
