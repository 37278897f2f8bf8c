"""Reuse as a stranger would: every import is a declared dependency, and a missing extra says which to install.

* Every third-party module that ``code/mechlearn`` imports (``import``/``from`` anywhere in a
  file, including inside functions, and every ``require("...")`` of `mechlearn._optional`) is
  provided by a distribution in ``pyproject.toml``'s ``dependencies`` or one of its extras.
* With torch, matplotlib, scikit-learn, tqdm or TransformerLens absent (simulated in a
  subprocess by ``sys.modules[name] = None``), the core still imports, and whatever needs the
  missing module raises ``ImportError`` naming the extra (``pip install "mechlearn[torch]"``).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "code" / "mechlearn"

# Import name → distribution name, where they differ (checked against the installed metadata below).
DIST_OF = {"yaml": "pyyaml", "sklearn": "scikit-learn", "transformer_lens": "transformer-lens"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.match(r"\s*([A-Za-z0-9_.\-]+)", req).group(1))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _extras() -> dict[str, set[str]]:
    """Each extra's distributions, with self-references (``mechlearn[a,b]``) expanded."""
    raw = _pyproject()["project"]["optional-dependencies"]
    out: dict[str, set[str]] = {}

    def expand(extra: str) -> set[str]:
        if extra not in out:
            out[extra] = set()
            for req in raw[extra]:
                m = re.match(r"\s*mechlearn\[([^\]]+)\]", req)
                if m:
                    for sub in m.group(1).split(","):
                        out[extra] |= expand(sub.strip())
                else:
                    out[extra].add(_requirement_name(req))
        return out[extra]

    for extra in raw:
        expand(extra)
    return out


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module → the files of code/mechlearn that import it (stdlib and mechlearn excluded)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "require"
                  and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.append(node.args[0].value)
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in ("mechlearn", "__future__"):
                continue
            found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_audit_sees_the_known_imports():
    found = _third_party_imports()
    for module in ("numpy", "torch", "einops", "jaxtyping", "yaml", "matplotlib", "transformer_lens", "sklearn", "tqdm"):
        assert module in found, f"the import audit no longer finds {module}: is the ast walk broken?"


def test_every_import_is_a_declared_dependency_or_extra():
    core = {_requirement_name(r) for r in _pyproject()["project"]["dependencies"]}
    extras = _extras()
    declared = core.union(*extras.values())
    missing = {
        module: sorted(files)
        for module, files in _third_party_imports().items()
        if _norm(DIST_OF.get(module, module)) not in declared
    }
    assert not missing, f"imported but declared neither in dependencies nor in an extra of pyproject.toml: {missing}"


def test_dist_names_match_the_installed_metadata():
    from importlib.metadata import packages_distributions

    installed = packages_distributions()
    for module, dist in DIST_OF.items():
        if module in installed:
            assert _norm(dist) in {_norm(d) for d in installed[module]}, (module, installed[module])


def test_the_extras_named_in_errors_exist_and_install_the_module():
    from mechlearn._optional import EXTRAS

    extras = _extras()
    for module, (dist, extra) in EXTRAS.items():
        assert extra in extras, f"mechlearn._optional names the extra {extra!r}, which pyproject.toml lacks"
        assert _norm(dist) in extras[extra], f"the extra {extra!r} does not install {dist} (for {module})"
        assert _norm(dist) in extras["all"], f"'all' does not install {dist}"
    assert "torch" in extras["gpt"] and "tqdm" in extras["gpt"]  # what `require(..., extra="gpt")` promises


def _run_without(missing: list[str], body: str) -> str:
    script = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in missing) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "code") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_missing_torch_matplotlib_sklearn_name_their_extra():
    out = _run_without(["torch", "matplotlib", "sklearn", "tqdm", "transformer_lens"], """
        import mechlearn, mechlearn.backprop, mechlearn.tensor_ops, mechlearn.testing, mechlearn.display
        import mechlearn.seeding, mechlearn.logbook, mechlearn.data
        from mechlearn.backprop import Value
        mechlearn.set_seed(0)                      # seeds torch only if it is there
        print("core imports")

        def expect(call, extra):
            try:
                call()
            except ImportError as err:
                assert f'pip install "mechlearn[{extra}]"' in str(err), str(err)
                assert isinstance(err, ModuleNotFoundError) and err.name, err
                print("ok", extra)
            else:
                raise AssertionError(f"{call} did not raise")

        import importlib
        for mod in ["mechlearn.optim", "mechlearn.cnn", "mechlearn.generative", "mechlearn.raytrace", "mechlearn.distributed"]:
            expect(lambda: importlib.import_module(mod), "torch")
        expect(lambda: importlib.import_module("mechlearn.gpt"), "gpt")
        expect(lambda: importlib.import_module("mechlearn.gpt.model"), "gpt")
        expect(lambda: mechlearn.display.draw_value_graph(Value(1.0)), "display")
        expect(lambda: mechlearn.data.load_digits_split(), "data")
    """)
    assert "core imports" in out
    assert out.count("ok ") == 9, out


def test_missing_transformer_lens_names_the_interop_extra():
    out = _run_without(["transformer_lens"], """
        from mechlearn.gpt import GPTConfig, to_transformer_lens_config
        try:
            to_transformer_lens_config(GPTConfig(d_vocab=5, n_ctx=4, d_model=8, n_layers=1, n_heads=2))
        except ImportError as err:
            assert 'pip install "mechlearn[interop]"' in str(err), str(err)
            print("ok")
    """)
    assert out.strip() == "ok"


@pytest.mark.parametrize("module", ["torch", "transformer_lens"])
def test_require_passes_through_a_broken_install(module, monkeypatch):
    """A module that *is* installed but fails inside (its own dependency missing) is not misreported."""
    from mechlearn import _optional

    def fail(name):
        raise ModuleNotFoundError("No module named 'some_dep_of_it'", name="some_dep_of_it")

    monkeypatch.setattr(_optional.importlib, "import_module", fail)
    with pytest.raises(ModuleNotFoundError, match="some_dep_of_it"):
        _optional.require(module, "test")
