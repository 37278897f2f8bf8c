"""The lazily re-exporting packages (`mechlearn._lazy`): names resolve, are unique, and unknown ones fail clearly."""

from __future__ import annotations

import importlib

import pytest

pytest.importorskip("torch")

PACKAGES = ["mechlearn.superposition", "mechlearn.sae"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_to_its_submodule(package):
    pkg = importlib.import_module(package)
    owner: dict[str, str] = {}
    for sub in pkg.SUBMODULES:
        module = importlib.import_module(f"{package}.{sub}")
        for name in module.__all__:
            assert name not in owner, f"{name} is public in both {owner[name]} and {sub}: lazy lookup would be ambiguous"
            owner[name] = sub
            assert getattr(pkg, name) is getattr(module, name)
            assert name in dir(pkg)
    for sub in pkg.SUBMODULES:
        assert getattr(pkg, sub) is importlib.import_module(f"{package}.{sub}")


@pytest.mark.parametrize("package", PACKAGES)
def test_an_unknown_name_raises_attribute_error(package):
    pkg = importlib.import_module(package)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        pkg.no_such_name  # noqa: B018


def test_the_sae_recipe_runner_refuses_the_package_folder():
    from pathlib import Path

    import mechlearn
    from mechlearn.sae.__main__ import main

    with pytest.raises(SystemExit):
        main(["char_lm", "--out", str(Path(mechlearn.__file__).parent / "sae" / "checkpoints"), "--quick"])
