"""Part IV-b, superposition (ARENA 1.5.4): Anthropic's toy models, trained as many instances at once.

    toy        the toy model ReLU(WᵀWx + b) and the neuron model ReLU(Wᵀ ReLU(Wx) + b), with an
               instance axis (one training run sweeps sparsity or importance), the synthetic
               sparse features (independent, correlated, anticorrelated) and the trainer
    geometry   what the papers measure: feature norms, superposition (interference), feature
               dimensionality and its "sticky" fractions, monosemantic vs polysemantic neurons
    plots      figures: WᵀW per instance, features as arrows in 2-D, norms coloured by superposition,
               dimensionality against dimensions per feature

The reference is Elhage et al. (2022), "Toy Models of Superposition" (transformer-circuits.pub).
Any public name of a submodule can be imported from here (``from mechlearn.superposition import
ToyModel``); the submodule is imported on first use. Importing it imports torch.
"""

from __future__ import annotations

from mechlearn._lazy import lazy_exports
from mechlearn._optional import require

require("torch", "mechlearn.superposition", extra="superposition")  # first: a missing torch names its extra

SUBMODULES = ("toy", "geometry", "plots")
"""The submodules, in the order of the list above; a name is looked up in them in this order."""

__all__ = ["SUBMODULES"]

__getattr__, __dir__ = lazy_exports(__name__, SUBMODULES, globals())
