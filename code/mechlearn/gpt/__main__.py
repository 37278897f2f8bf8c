"""Run Part II's training recipes: ``python -m mechlearn.gpt {char_lm,scaling} [--max-steps N]``.

``char_lm`` trains the character-level model and writes ``checkpoints/char_lm.pt`` with its
manifest ``char_lm.json``; ``scaling`` runs the scaling sweep and writes ``checkpoints/scaling.json``.
Both record their config, seed, losses and seconds; commit what they write.
"""

from __future__ import annotations

import argparse
import json

from mechlearn.gpt.scaling import scaling_recipe
from mechlearn.gpt.train import train_char_lm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mechlearn.gpt", description=__doc__.splitlines()[0])
    parser.add_argument("recipe", choices=["char_lm", "scaling"])
    parser.add_argument("--max-steps", type=int, default=None, help="shorten the run (for a smoke test)")
    args = parser.parse_args(argv)
    if args.recipe == "char_lm":
        result = train_char_lm(max_steps=args.max_steps, progress=True)
        result = {k: v for k, v in result.items() if k != "history"}
    else:
        result = {k: v for k, v in scaling_recipe(max_steps=args.max_steps).items() if k != "rows"}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
