"""Part IV-b, sparse autoencoders (ARENA 1.5.4 and 1.3.3): four architectures, one training loop.

    base       the `SAE` base class every architecture extends: encoder and decoder weights,
               unit-norm decoder columns, `SAEOutput` (reconstruction, latents, loss terms)
    standard   ReLU latents with an L1 penalty (Bricken et al., 2023)
    gated      a gate that decides which latents fire and a magnitude path that sets their size
               (Rajamanoharan et al., 2024a)
    jumprelu   JumpReLU latents with learned thresholds, trained with a straight-through
               estimator whose pseudo-derivative is a kernel density (Rajamanoharan et al., 2024b)
    topk       exactly k latents fire (Gao et al., 2024)
    training   the shared training loop, dead-latent tracking, and Anthropic's resampling of dead
               latents
    metrics    L0, fraction of variance explained, dead fraction, mean max cosine similarity
    lm         SAEs on a language model's residual stream: activations, splicing the SAE into the
               forward pass, cross-entropy loss recovered; the char-LM recipe and checkpoints
    dashboard  latent dashboards as self-contained HTML: top activating contexts, activation
               histogram, the next characters a latent boosts and suppresses
    steering   steering with a latent, ablating a latent, attribution patching over latents

Any public name of a submodule can be imported from here (``from mechlearn.sae import TopKSAE``);
the submodule is imported on first use. Pages import from the submodule they show. Training runs
longer than a page's minute are recipes, ``python -m mechlearn.sae RECIPE --out DIR``, whose
small checkpoints and manifests ship in ``mechlearn/sae/checkpoints``. Importing it imports torch.
"""

from __future__ import annotations

from mechlearn._lazy import lazy_exports
from mechlearn._optional import require

require("torch", "mechlearn.sae", extra="sae")  # first: a missing torch names its extra

SUBMODULES = (
    "base", "standard", "gated", "jumprelu", "topk", "training", "metrics", "lm", "dashboard", "steering",
)
"""The submodules, in the order of the list above; a name is looked up in them in this order."""

__all__ = ["SUBMODULES"]

__getattr__, __dir__ = lazy_exports(__name__, SUBMODULES, globals())
