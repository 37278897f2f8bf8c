"""Run Part IV's training recipes: ``python -m mechlearn.interp RECIPE [--out DIR] [--quick]``.

Each recipe trains with fixed seeds and writes a small checkpoint ``DIR/<name>.pt`` with its
manifest ``DIR/<name>.json`` (config, seed, metrics, steps, seconds, sha256). ``DIR`` is ``--out``,
the current directory by default, never the installed package: the shipped checkpoints in
``mechlearn/interp/checkpoints/`` are not overwritten. ``--quick`` runs a short version (what the
tests run).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from mechlearn._recipes import recipe_output_dir

RECIPES = {
    "induction": ("mechlearn.interp.induction", "induction_recipe"),
    "ioi": ("mechlearn.interp.ioi", "ioi_recipe"),
}
"""Recipe name → (module, function). Each function is called as ``fn(out_dir, quick=..., progress=True)``
and returns its manifest."""


def main(argv: list[str] | None = None) -> int:
    """The command line: parse, refuse the package folder, run the recipe, print its manifest's scalars."""
    parser = argparse.ArgumentParser(prog="python -m mechlearn.interp", description=__doc__.splitlines()[0])
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                        help="folder to write into (created if missing; default: the current directory; "
                             "never the mechlearn package)")
    parser.add_argument("--quick", action="store_true", help="a short run (for a smoke test)")
    args = parser.parse_args(argv)
    try:
        out = recipe_output_dir(args.out)
    except ValueError as err:
        parser.error(str(err))
    module, name = RECIPES[args.recipe]
    fn = getattr(importlib.import_module(module), name, None)
    if fn is None:
        parser.error(f"recipe {args.recipe!r} is not available in this version ({module}.{name} is missing)")
    import torch

    torch.set_num_threads(1)
    manifest = fn(out, quick=args.quick, progress=True)
    print(json.dumps({k: v for k, v in manifest.items() if not isinstance(v, (list, dict))} | {"out": str(out)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
