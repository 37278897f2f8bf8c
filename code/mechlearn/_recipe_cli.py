"""The command line shared by the recipe runners ``python -m mechlearn.rl`` and ``python -m mechlearn.interp``.

Each runner names its recipes, ``{name: (module, function)}``; a recipe is called as
``fn(out_dir, quick=..., progress=True)`` and returns its manifest. The command refuses to write
into the installed package (`mechlearn._recipes.recipe_output_dir`), runs on one torch thread
(small models: one thread is fastest and the runs reproduce), and prints the manifest's scalars.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from mechlearn._recipes import recipe_output_dir

__all__ = ["run_recipe_cli"]


def run_recipe_cli(prog: str, description: str, recipes: dict[str, tuple[str, str]], argv: list[str] | None = None) -> int:
    """Parse ``argv`` (``RECIPE [--out DIR] [--quick]``), run the recipe, print its manifest's scalars; return 0.

    Exits through ``argparse`` with a message when ``--out`` lies inside the package or the recipe's
    function is missing from this version.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("recipe", choices=sorted(recipes))
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                        help="folder to write into (created if missing; default: the current directory; "
                             "never the mechlearn package)")
    parser.add_argument("--quick", action="store_true", help="a short run (for a smoke test)")
    args = parser.parse_args(argv)
    try:
        out = recipe_output_dir(args.out)
    except ValueError as err:
        parser.error(str(err))
    module, name = recipes[args.recipe]
    fn = getattr(importlib.import_module(module), name, None)
    if fn is None:
        parser.error(f"recipe {args.recipe!r} is not available in this version ({module}.{name} is missing)")
    import torch

    torch.set_num_threads(1)  # an entry point: the one place a thread count may be set
    manifest = fn(out, quick=args.quick, progress=True)
    print(json.dumps({k: v for k, v in manifest.items() if not isinstance(v, (list, dict))} | {"out": str(out)}, indent=1))
    return 0
