"""Part IV-a, circuits (ARENA 1.2 and 1.4.1): a reader's toolkit for mechanistic interpretability.

    core         one interface over our `GPT` and a TransformerLens ``TransformerBridge``: sizes,
                 hook names, caching, hooks, stacked weights, argument checks
    induction    the repeated-random-tokens task (second half repeats the first at a random offset),
                 the 2-layer attention-only model, its training recipe and committed checkpoint
    detectors    previous-token, current-token and first-token scores; the induction score
    decompose    per-head results, the residual stream decomposed into components, the final
                 LayerNorm applied to a stack (TransformerLens's ``ActivationCache`` semantics)
    attribution  logit difference and direct logit attribution
    ablation     zero, mean and resample ablation of heads
    circuits     factored matrices, QK and OV circuits, copying scores, Q/K/V-composition scores
    patching     activation patching, path patching and attribution patching
    ioi          a synthetic indirect-object-identification task and the model trained on it
    planted      a transformer with hand-set weights whose circuit is known by construction
    plots        interactive plotly figures: attention patterns, patching heat maps, attribution bars

Every tool takes either our `mechlearn.gpt.GPT` or a TransformerLens 4.x ``TransformerBridge``
(the hook names are the same), so a reader with internet can point it at GPT-2 unchanged.

Any public name of a submodule can be imported from here (``from mechlearn.interp import
induction_score``); the submodule is imported on first use. Pages import from the submodule they
show. Training runs longer than a page's minute are recipes, ``python -m mechlearn.interp
RECIPE --out DIR``, whose small checkpoints and manifests ship in ``mechlearn/interp/checkpoints``.

Importing it imports torch (TransformerLens only when a bridge is passed in, or for references).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from mechlearn._optional import require

require("torch", "mechlearn.interp", extra="interp")  # first, so a missing torch names its extra

SUBMODULES = (
    "core", "induction", "detectors", "decompose", "attribution", "ablation", "circuits", "patching",
    "ioi", "planted", "plots",
)
"""The submodules, in the order of the list above; a name is looked up in them in this order."""

__all__ = ["SUBMODULES"]


def _submodule(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"mechlearn.interp.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"mechlearn.interp.{name}":
            return None  # not written yet
        raise


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        module = _submodule(name)
        if module is not None:
            return module
    for sub in SUBMODULES:
        module = _submodule(sub)
        if module is not None and name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module 'mechlearn.interp' has no attribute {name!r}")


def __dir__() -> list[str]:
    names = set(globals()) | set(SUBMODULES)
    for sub in SUBMODULES:
        module = _submodule(sub)
        if module is not None:
            names |= set(getattr(module, "__all__", ()))
    return sorted(names)
