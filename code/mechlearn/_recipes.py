"""Recipe plumbing shared by the training recipes: output folders, sha256 fingerprints, manifests.

A *recipe* is a training run too long for a page. It writes a small checkpoint ``<name>.pt`` and a
manifest ``<name>.json`` (config, seed, metrics, steps, seconds, the checkpoint's sha256) into a
folder the user chooses, never into the installed package; the project commits one run's files
beside the package so pages can load them (`load_manifest` checks the sha256 first).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PACKAGE_DIR", "recipe_output_dir", "sha256_file", "write_manifest", "load_manifest"]

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed ``mechlearn`` package folder, which recipes refuse to write into."""


def recipe_output_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as an absolute folder (created if missing), after refusing the installed package.

    Raises:
        ValueError: ``out_dir`` is the ``mechlearn`` package or inside it: recipes never overwrite the
            shipped checkpoints (copy a run's files into the package's ``checkpoints/`` by hand to replace one).
    """
    out = Path(out_dir).expanduser().resolve()
    if out == PACKAGE_DIR or PACKAGE_DIR in out.parents:
        raise ValueError(
            f"refusing to write into the mechlearn package ({out}): recipes write to a folder you choose; "
            "to replace a shipped checkpoint, copy the files into the package's checkpoints/ by hand"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "tolist"):  # a torch tensor, without importing torch here
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} into a manifest")


def write_manifest(checkpoint: str | Path, **fields: Any) -> dict:
    """Write ``<checkpoint>.json`` beside ``checkpoint`` with ``fields`` and the checkpoint's sha256.

    Recipes pass at least ``config``, ``seed`` (or ``seeds``), ``metrics``, ``steps`` and ``seconds``.
    Returns the manifest.

    Raises:
        ValueError: one of ``config``, ``metrics``, ``steps``, ``seconds`` is missing.
    """
    ckpt = Path(checkpoint)
    for key in ("config", "metrics", "steps", "seconds"):
        if key not in fields:
            raise ValueError(f"a manifest needs `{key}`")
    manifest = {"file": ckpt.name, **fields, "sha256": sha256_file(ckpt)}
    ckpt.with_suffix(".json").write_text(json.dumps(manifest, indent=1, default=_jsonable) + "\n")
    return manifest


def load_manifest(name: str, directory: str | Path, make_with: str) -> tuple[Path, dict]:
    """``(checkpoint path, manifest)`` for ``<directory>/<name>.pt``, after checking its sha256.

    Args:
        name: the recipe's file stem, e.g. ``"induction_2l"``.
        directory: the folder holding it (a recipe's ``--out`` folder, or the shipped ``checkpoints/``).
        make_with: the command that makes it, for the error message.

    Raises:
        FileNotFoundError: the checkpoint or its manifest is missing (the message says how to make it).
        ValueError: the file's sha256 is not the manifest's (it changed after the manifest was written).
    """
    ckpt = Path(directory) / f"{name}.pt"
    manifest_path = ckpt.with_suffix(".json")
    if not ckpt.exists() or not manifest_path.exists():
        raise FileNotFoundError(f"no checkpoint {ckpt} with manifest {manifest_path.name}; make one with `{make_with}`")
    manifest = json.loads(manifest_path.read_text())
    digest = sha256_file(ckpt)
    if digest != manifest.get("sha256"):
        raise ValueError(f"{ckpt} has sha256 {digest[:12]}…, but its manifest records {str(manifest.get('sha256'))[:12]}…")
    return ckpt, manifest
