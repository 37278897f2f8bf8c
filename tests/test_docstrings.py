"""Every public object of mechlearn is documented.

Walks every module of the package (``__main__`` excepted) and checks:

* the module has a docstring and an ``__all__``;
* every function and class in ``__all__`` has its own docstring (a class does not inherit one);
* every public method and property that a public class defines has its own docstring (an
  override such as ``forward`` too: the parent's text describes the parent, not this class);
* every constant in ``__all__`` has an attribute docstring (a string right after its assignment)
  in the module that assigns it, which is what quartodoc shows.

The API reference is generated from these docstrings, so a gap here is a gap there.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types

import pytest

import mechlearn


def _modules() -> list[types.ModuleType]:
    mods = [mechlearn]
    for info in pkgutil.walk_packages(mechlearn.__path__, "mechlearn."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        mods.append(importlib.import_module(info.name))
    return mods


def _has_doc(obj) -> bool:
    return bool((getattr(obj, "__doc__", None) or "").strip())


def _assigned_with_docstring(mod: types.ModuleType) -> tuple[set[str], set[str]]:
    """Module-level names that ``mod`` assigns, and those followed by an attribute docstring."""
    tree = ast.parse(inspect.getsource(mod))
    assigned, documented = set(), set()
    for i, stmt in enumerate(tree.body):
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            assigned |= names
            nxt = tree.body[i + 1] if i + 1 < len(tree.body) else None
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                documented |= names
    return assigned, documented


def _undocumented(mod: types.ModuleType) -> list[str]:
    missing = []
    if not _has_doc(mod):
        missing.append(f"{mod.__name__} (module docstring)")
    names = getattr(mod, "__all__", None)
    if names is None:
        return missing + [f"{mod.__name__} (no __all__)"]
    assigned, documented = _assigned_with_docstring(mod)
    for name in names:
        obj = getattr(mod, name)
        where = f"{mod.__name__}.{name}"
        if isinstance(obj, types.ModuleType):
            continue
        if inspect.isclass(obj):
            if not _has_doc(obj):
                missing.append(where)
            if obj.__module__ != mod.__name__:
                continue  # a re-export: its methods are checked where it is defined
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, property):
                    target = member
                elif isinstance(member, (staticmethod, classmethod)):
                    target = member.__func__
                elif callable(member) and inspect.isfunction(inspect.unwrap(member)):
                    target = inspect.unwrap(member)
                    member = getattr(member, "__func__", member)
                else:
                    continue  # a class attribute or dataclass field (documented by attribute docstrings)
                if not (_has_doc(target) or _has_doc(member)):
                    missing.append(f"{where}.{attr}")
        elif inspect.isroutine(inspect.unwrap(obj)):
            # The test run's type checker wraps functions; a docstring set on the wrapper counts too.
            if not (_has_doc(obj) or _has_doc(inspect.unwrap(obj))):
                missing.append(where)
        elif name in assigned and name not in documented and not name.startswith("__"):
            missing.append(f"{where} (constant: add a docstring line after its assignment)")
    return missing


MODULES = _modules()


def test_the_walk_finds_the_package():
    names = {m.__name__ for m in MODULES}
    for expected in ("mechlearn.backprop.tensor", "mechlearn.gpt.model", "mechlearn.cnn.layers", "mechlearn.optim.sgd"):
        assert expected in names


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__)
def test_every_public_object_has_a_docstring(mod):
    missing = _undocumented(mod)
    assert not missing, "public objects without a docstring:\n  " + "\n  ".join(missing)


def test_the_check_catches_a_missing_docstring():
    fake = types.ModuleType("fake", "A module.")
    exec("def f():\n    pass\nclass C:\n    '''C.'''\n    def m(self):\n        pass\n", fake.__dict__)
    for obj in (fake.f, fake.C):
        obj.__module__ = "fake"
    fake.__all__ = ["f", "C"]
    # inspect.getsource needs a file; give the ast walk an empty module instead.
    assigned = _assigned_with_docstring
    try:
        globals()["_assigned_with_docstring"] = lambda m: (set(), set())
        assert _undocumented(fake) == ["fake.f", "fake.C.m"]
    finally:
        globals()["_assigned_with_docstring"] = assigned
