"""Run the superposition recipes: ``python -m mechlearn.superposition RECIPE [--out DIR] [--quick]``.

A recipe trains with fixed seeds and writes a small result into ``DIR`` with its manifest (config,
seed, metrics, steps, seconds, sha256). ``DIR`` is ``--out``, the current directory by default, never
the installed package: the shipped results in ``mechlearn/superposition/checkpoints/`` are not
overwritten. ``--quick`` runs a short version (what the tests run).
"""

from __future__ import annotations

from mechlearn._recipe_cli import run_recipe_cli

RECIPES = {
    "dimensionality": ("mechlearn.superposition.geometry", "dimensionality_recipe"),
}
"""Recipe name → (module, function). Each function is called as ``fn(out_dir, quick=..., progress=True)``
and returns its manifest."""


def main(argv: list[str] | None = None) -> int:
    """The command line: see `mechlearn._recipe_cli.run_recipe_cli`."""
    return run_recipe_cli("python -m mechlearn.superposition", __doc__.splitlines()[0], RECIPES, argv)


if __name__ == "__main__":
    raise SystemExit(main())
