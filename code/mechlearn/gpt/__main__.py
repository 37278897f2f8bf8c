"""Run Part II's training recipes: ``python -m mechlearn.gpt {char_lm,scaling} [--out DIR] [--max-steps N]``.

``char_lm`` trains the character-level model and writes ``DIR/char_lm.pt`` with its manifest
``DIR/char_lm.json``; ``scaling`` runs the scaling sweep and writes ``DIR/scaling.json``. ``DIR``
is ``--out``, the current directory by default, and never the installed package: the checkpoints
shipped in ``mechlearn/gpt/checkpoints/`` are not overwritten (the command refuses that folder).
Load a run with ``load_char_lm(DIR)`` or ``load_scaling(DIR)``; to replace a shipped checkpoint,
copy the files into the package's ``checkpoints/`` by hand and commit them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mechlearn.gpt.scaling import scaling_recipe
from mechlearn.gpt.training import recipe_output_dir, train_char_lm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mechlearn.gpt", description=__doc__.splitlines()[0])
    parser.add_argument("recipe", choices=["char_lm", "scaling"])
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                        help="folder to write into (created if missing; default: the current directory; "
                             "never the mechlearn package)")
    parser.add_argument("--max-steps", type=int, default=None, help="shorten the run (for a smoke test)")
    args = parser.parse_args(argv)
    try:
        out = recipe_output_dir(args.out)
    except ValueError as err:
        parser.error(str(err))
    if args.recipe == "char_lm":
        result = train_char_lm(out, max_steps=args.max_steps, progress=True)
        result = {k: v for k, v in result.items() if k != "history"}
    else:
        result = {k: v for k, v in scaling_recipe(out, max_steps=args.max_steps).items() if k != "rows"}
    print(json.dumps({**result, "out": str(out)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
