"""Lazy re-exports for a subpackage (PEP 562): ``from mechlearn.sae import TopKSAE`` imports only ``topk``.

A package's ``__init__`` names its submodules and calls `lazy_exports`; a public name of any
submodule (one in its ``__all__``) then resolves on first use, and the submodule is imported then.
There are no star imports, so public names must be unique across a package's submodules
(``tests/test_lazy_packages.py`` checks it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, submodules: tuple[str, ...], namespace: dict[str, Any]) -> tuple[
        Callable[[str], Any], Callable[[], list[str]]]:
    """Build a package's module-level ``__getattr__`` and ``__dir__``.

    Args:
        package: the package's dotted name, e.g. ``"mechlearn.sae"``.
        submodules: its submodules, in lookup order.
        namespace: the package's ``globals()``; a resolved name is cached there.

    Returns:
        ``(__getattr__, __dir__)``, to assign at module level in the package's ``__init__``.
    """

    def submodule(name: str) -> ModuleType | None:
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"{package}.{name}":
                return None  # not written yet
            raise

    def getattr_(name: str) -> Any:
        if name in submodules:
            module = submodule(name)
            if module is not None:
                return module
        for sub in submodules:
            module = submodule(sub)
            if module is not None and name in getattr(module, "__all__", ()):
                value = getattr(module, name)
                namespace[name] = value
                return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        names = set(namespace) | set(submodules)
        for sub in submodules:
            module = submodule(sub)
            if module is not None:
                names |= set(getattr(module, "__all__", ()))
        return sorted(names)

    return getattr_, dir_
