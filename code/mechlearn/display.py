"""Show the package's real source on a page, so the code a reader sees is the code that ran.

A day page never pastes library code (a pasted copy drifts). It calls :func:`show_source`,
which reads the source with :mod:`inspect` and returns an object that Jupyter, and so Quarto,
renders as a highlighted Python block with a caption naming the file and lines.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SourceCode", "show_source"]


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
        obj: anything :func:`inspect.getsource` accepts (a property is shown through its getter).
        docstring: if False, drop the docstring of a function or class to keep the listing short.

    Returns:
        A :class:`SourceCode`; in a notebook or Quarto page it renders as highlighted code.

    Raises:
        TypeError: for objects with no Python source (builtins, C extensions, numbers).
    """
    target = obj.fget if isinstance(obj, property) else obj
    try:
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
