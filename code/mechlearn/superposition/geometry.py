"""Feature norms, superposition (interference), feature dimensionality and neuron monosemanticity.

What Elhage et al. (2022), "Toy Models of Superposition", measure on a trained toy model, and what
ARENA 1.5.4 plots. Every function takes the toy model's weights ``W`` with ARENA's shape
``(n_inst, d_hidden, n_features)``: column ``W[k, :, i]`` is feature ``i``'s direction ``W_i`` in
instance ``k``'s hidden space, so one call measures a whole sparsity sweep.

* **Norm** ``‖W_i‖``: near 1 when the model represents feature ``i``, near 0 when it drops it.
* **Superposition** ``Σ_{j≠i} (Ŵ_i·W_j)²`` (``Ŵ_i = W_i / ‖W_i‖``): how much of the other features
  lands on feature ``i``'s direction. It is 0 when ``W_i`` is orthogonal to every other feature
  (the feature has a dimension to itself) and grows as features share directions; the paper colours
  its norm bars with it.
* **Feature dimensionality** ``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²`` (the sum includes ``j = i``, so
  ``D_i = ‖W_i‖² / (‖W_i‖² + superposition_i)``): the fraction of a hidden dimension feature ``i``
  gets. Orthogonal features get 1, an antipodal pair 1/2 each, a triangle 2/3, a pentagon in 2-D
  2/5, a tetrahedron in 3-D 3/4. Writing ``G = WᵀW``, ``D_i = G_ii² / (G²)_ii``, and by
  Cauchy–Schwarz over ``G``'s eigenvectors ``D_i ≤ P_ii`` with ``P`` the projection onto ``G``'s
  column space, so ``Σ_i D_i ≤ rank(W) ≤ d_hidden``: the dimensionalities share out the hidden
  dimensions, which is why they settle at "sticky" fractions.
* **Dimensions per feature** ``d_hidden / ‖W‖_F²``: ``‖W‖_F² = Σ_i ‖W_i‖²`` counts the features the
  model represents (each about 1), so this is the hidden dimensions each one gets on average.
* **Monosemantic neurons** (the neuron model ``ReLU(Wᵀ ReLU(Wx) + b)`` of the paper's "privileged
  basis" section): row ``W[k, n, :]`` holds neuron ``n``'s input weights. Features are non-negative,
  so only features with a *positive* weight can make the neuron fire; a neuron is monosemantic when
  one feature carries at least `MONOSEMANTIC_SHARE` of its positive squared weight mass, dead when
  that mass is below `DEAD_MASS` (it can hardly fire), polysemantic otherwise.

A feature with ``W_i = 0`` has no direction: we set ``Ŵ_i = 0``, so its superposition and its
dimensionality are 0 (it occupies no dimension). The scale-free measures are computed on ``W``
divided by each instance's largest entry, so they neither overflow nor underflow.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechlearn._recipes import load_manifest, recipe_output_dir, write_manifest

__all__ = [
    "MONOSEMANTIC_SHARE",
    "DEAD_MASS",
    "check_toy_weights",
    "feature_norms",
    "superposition_scores",
    "feature_dimensionality",
    "dimensions_per_feature",
    "neuron_feature_shares",
    "neuron_counts",
    "STICKY_FRACTIONS",
    "sticky_share",
    "feature_clusters",
    "CHECKPOINT_DIR",
    "DIMENSIONALITY_SWEEP",
    "dimensionality_recipe",
    "load_dimensionality_sweep",
]

MONOSEMANTIC_SHARE = 0.9
"""A neuron is monosemantic when one feature carries at least this share of its positive squared weights."""
DEAD_MASS = 1e-3
"""A neuron whose positive squared input weights sum to less than this is dead (it can hardly fire)."""
STICKY_FRACTIONS = ((1, 1), (3, 4), (2, 3), (1, 2), (2, 5), (3, 8))
"""Dimensionalities ``(a, b)`` = a/b the paper finds features sticking to: a feature alone (1), in a
tetrahedron (3/4), a triangle (2/3), an antipodal pair (1/2), a pentagon (2/5), a square antiprism (3/8)."""
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
"""Where the committed result of ``python -m mechlearn.superposition dimensionality`` ships."""


def check_toy_weights(W: Tensor) -> Tensor:
    """``W`` as given, after checking it is a finite, non-empty ``(n_inst, d_hidden, n_features)`` float tensor.

    Raises:
        TypeError: ``W`` is not a floating-point torch tensor.
        ValueError: ``W`` is not 3-D, has an empty axis, or holds NaN or ±inf.
    """
    if not isinstance(W, Tensor):
        raise TypeError(
            f"W should be a torch.Tensor of shape (n_inst, d_hidden, n_features), got {type(W).__name__}"
        )
    if not W.is_floating_point():
        raise TypeError(f"W should be a floating-point tensor, got dtype {W.dtype}")
    if W.ndim != 3:
        raise ValueError(
            f"W should be 3-D (n_inst, d_hidden, n_features) as in ARENA's toy model, got shape {tuple(W.shape)}"
            + (" (add an instance axis: W[None])" if W.ndim == 2 else "")
        )
    if 0 in W.shape:
        raise ValueError(
            f"W should have at least one instance, hidden dimension and feature, got shape {tuple(W.shape)}"
        )
    if not bool(torch.isfinite(W).all()):
        raise ValueError("W should be finite, got NaN or ±inf entries")
    return W


def _scaled(W: Tensor) -> tuple[Tensor, Tensor]:
    """``(W / s, s)`` with ``s`` each instance's largest ``|entry|`` (1 for an all-zero instance), shape (n_inst, 1, 1)."""
    s = W.detach().abs().amax(dim=(1, 2), keepdim=True)
    s = torch.where(s > 0, s, torch.ones_like(s))
    return W / s, s


def _projections(W: Tensor) -> Tensor:
    """``(Ŵ_i · W_j)`` for every pair, shape (n_inst, n_features i, n_features j); ``Ŵ_i = 0`` where ``W_i = 0``."""
    norms = torch.linalg.vector_norm(W, dim=1, keepdim=True)  # (n_inst, 1, n_features)
    W_hat = W / torch.where(norms > 0, norms, torch.ones_like(norms))
    return torch.einsum("khi,khj->kij", W_hat, W)


def feature_norms(
    W: Float[Tensor, "n_inst d_hidden n_features"],
) -> Float[Tensor, "n_inst n_features"]:
    """``‖W_i‖`` for every feature of every instance, ``(n_inst, n_features)``."""
    W, s = _scaled(check_toy_weights(W))
    return torch.linalg.vector_norm(W, dim=1) * s[:, 0]


def superposition_scores(
    W: Float[Tensor, "n_inst d_hidden n_features"],
) -> Float[Tensor, "n_inst n_features"]:
    """``Σ_{j≠i} (Ŵ_i · W_j)²``: how much the others land on feature ``i``.

    0 for a feature orthogonal to all the others (and for a zero feature);
    for unit features, the sum of squared cosines with the others.
    Shape ``(n_inst, n_features)``.
    """
    W, s = _scaled(check_toy_weights(W))
    proj2 = _projections(W) ** 2
    off_diagonal = proj2.sum(-1) - torch.diagonal(proj2, dim1=1, dim2=2)
    return off_diagonal.clamp_min(0.0) * s[:, 0] ** 2


def feature_dimensionality(
    W: Float[Tensor, "n_inst d_hidden n_features"],
) -> Float[Tensor, "n_inst n_features"]:
    """``D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)²`` (Elhage et al. 2022), in ``[0, 1]``.

    The fraction of a hidden dimension feature ``i`` occupies: 1 alone in
    its dimension, 1/2 in an antipodal pair, 2/5 in a pentagon; 0 for a
    zero feature. Per instance, ``Σ_i D_i ≤ d_hidden``.
    Shape ``(n_inst, n_features)``.
    """
    W, _ = _scaled(check_toy_weights(W))
    norms2 = (W**2).sum(1)
    denominator = (_projections(W) ** 2).sum(-1)  # j = i adds ‖W_i‖²
    safe = torch.where(norms2 > 0, denominator, torch.ones_like(denominator))
    return torch.where(norms2 > 0, norms2 / safe, torch.zeros_like(norms2))


def dimensions_per_feature(
    W: Float[Tensor, "n_inst d_hidden n_features"],
) -> Float[Tensor, " n_inst"]:
    """``d_hidden / ‖W‖_F²`` per instance: hidden dimensions per feature.

    ``‖W‖_F² = Σ_i ‖W_i‖²`` is about the number of features the model
    represents (each with norm near 1). ``inf`` for an all-zero instance
    (no feature represented). Shape ``(n_inst,)``.
    """
    W, s = _scaled(check_toy_weights(W))
    frob2 = (W**2).sum((1, 2)) * s[:, 0, 0] ** 2
    d_hidden = torch.tensor(float(W.shape[1]), dtype=W.dtype, device=W.device)
    inf = torch.full_like(frob2, float("inf"))
    return torch.where(frob2 > 0, d_hidden / frob2, inf)


def neuron_feature_shares(
    W: Float[Tensor, "n_inst d_hidden n_features"],
) -> Float[Tensor, "n_inst d_hidden n_features"]:
    """Feature ``i``'s share of neuron ``n``'s positive squared weights.

    ``share_ni = relu(W_ni)² / Σ_j relu(W_nj)²``. In the neuron model the
    hidden layer is ``ReLU(W x)`` with ``x ≥ 0``, so only features with a
    positive weight can make neuron ``n`` fire. A neuron with no positive
    weight gets shares 0; a live neuron's shares sum to 1.
    Shape ``(n_inst, d_hidden, n_features)``.
    """
    W, _ = _scaled(check_toy_weights(W))
    mass = W.clamp_min(0.0) ** 2
    total = mass.sum(-1, keepdim=True)
    return mass / torch.where(total > 0, total, torch.ones_like(total))


def neuron_counts(
    W: Float[Tensor, "n_inst d_hidden n_features"],
    threshold: float | int = MONOSEMANTIC_SHARE,
    dead_mass: float | int = DEAD_MASS,
) -> dict[str, Int[Tensor, " n_inst"]]:
    """How many neurons of each instance are monosemantic, polysemantic, dead.

    Neuron ``n`` (row ``W[k, n, :]``) is *dead* when
    ``Σ_i relu(W_ni)² < dead_mass``; *monosemantic* when it is not dead and
    its largest `neuron_feature_shares` entry is at least ``threshold``;
    *polysemantic* otherwise. The three counts add up to ``d_hidden``.

    Returns:
        ``{"monosemantic": ..., "polysemantic": ..., "dead": ...}``, each an
        int64 tensor of shape ``(n_inst,)``.

    Raises:
        ValueError: ``threshold`` is not in (0.5, 1] (at or below 1/2 two
            features could both be "the" feature), or ``dead_mass`` is
            negative or not finite.
    """
    check_toy_weights(W)
    if not _is_number(threshold) or not 0.5 < threshold <= 1:
        raise ValueError(
            f"threshold should be a share in (0.5, 1], got {threshold!r}")
    if not _is_number(dead_mass) or not 0 <= dead_mass < float("inf"):
        raise ValueError(
            f"dead_mass should be a finite non-negative number, got {dead_mass!r}")
    dead = (W.clamp_min(0.0) ** 2).sum(-1) < dead_mass
    top_share = neuron_feature_shares(W).amax(-1)
    mono = ~dead & (top_share >= threshold)
    poly = ~dead & ~mono
    counts = {"monosemantic": mono, "polysemantic": poly, "dead": dead}
    return {name: which.sum(-1) for name, which in counts.items()}


def _is_number(x: object) -> bool:
    return isinstance(x, (float, int)) and not isinstance(x, bool)


def sticky_share(
    W: Float[Tensor, "n_inst d_hidden n_features"],
    tolerance: float | int = 0.02,
    min_norm: float | int = 0.5,
) -> Float[Tensor, " n_inst"]:
    """The share of each instance's represented features whose dimensionality is near a sticky fraction.

    A feature is represented when ``‖W_i‖ ≥ min_norm``; it is near a fraction when ``|D_i - a/b| <
    tolerance`` for some ``(a, b)`` in `STICKY_FRACTIONS`. For comparison, dimensionalities spread
    uniformly over [0, 1] would land near one with probability 0.205 at ``tolerance = 0.02`` (the
    windows around 3/8 and 2/5 overlap, and the one around 1 is cut off at 1).
    An instance with no represented feature gets 0.

    Raises:
        ValueError: ``tolerance`` is not in (0, 0.5] or ``min_norm`` is negative or not finite.
    """
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (float, int))
        or not 0 < tolerance <= 0.5
    ):
        raise ValueError(f"tolerance should be in (0, 0.5], got {tolerance!r}")
    if (
        isinstance(min_norm, bool)
        or not isinstance(min_norm, (float, int))
        or not 0 <= min_norm < float("inf")
    ):
        raise ValueError(
            f"min_norm should be a finite non-negative number, got {min_norm!r}"
        )
    D = feature_dimensionality(W)
    fractions = torch.tensor(
        [a / b for a, b in STICKY_FRACTIONS], dtype=D.dtype, device=D.device
    )
    near = (D[..., None] - fractions).abs().amin(-1) < tolerance
    represented = feature_norms(W) >= min_norm
    count = represented.sum(-1)
    share = (near & represented).sum(-1).to(D.dtype) / count.clamp_min(1).to(D.dtype)
    return torch.where(count > 0, share, torch.zeros_like(share))


def feature_clusters(
    W: Float[Tensor, "n_inst d_hidden n_features"],
    min_norm: float | int = 0.5,
    min_cosine: float | int = 0.1,
) -> list[list[tuple[list[int], int]]]:
    """The groups of represented features that share hidden dimensions, with the dimension they span.

    Represented features (``‖W_i‖ ≥ min_norm``) are joined when ``|cos(W_i, W_j)| > min_cosine``;
    a cluster is a connected group. Its dimension is the numerical rank of its columns (singular
    values above 5 % of the largest). An antipodal pair is ``([i, j], 1)``, a pentagon
    ``([five features], 2)``, a tetrahedron ``([four], 3)``; a feature alone is ``([i], 1)``.

    Returns:
        per instance, a list of ``(feature indices, dimension)``, largest clusters first.

    Raises:
        ValueError: ``min_norm`` is negative or not finite, or ``min_cosine`` not in [0, 1).
    """
    if not _is_number(min_norm) or not 0 <= min_norm < float("inf"):
        raise ValueError(f"min_norm should be a finite non-negative number, got {min_norm!r}")
    if not _is_number(min_cosine) or not 0 <= min_cosine < 1:
        raise ValueError(f"min_cosine should be in [0, 1), got {min_cosine!r}")
    norms = feature_norms(W)  # checks W
    W = _scaled(W.detach().to("cpu", torch.float64))[0]  # directions and ranks are scale-free
    out = []
    for k in range(W.shape[0]):
        kept = [i for i in range(W.shape[2]) if norms[k, i] >= min_norm]
        unit = W[k][:, kept] / torch.linalg.vector_norm(W[k][:, kept], dim=0)
        linked = ((unit.T @ unit).abs() > min_cosine).tolist()
        clusters, seen = [], set()
        for start in range(len(kept)):
            if start in seen:
                continue
            group, stack = [], [start]
            while stack:
                a = stack.pop()
                if a not in seen:
                    seen.add(a)
                    group.append(a)
                    stack += [b for b in range(len(kept)) if linked[a][b] and b not in seen]
            features = sorted(kept[a] for a in group)
            rank = int(torch.linalg.matrix_rank(W[k][:, features], rtol=0.05))
            clusters.append((features, rank))
        out.append(sorted(clusters, key=lambda c: (-len(c[0]), c[0])))
    return out


DIMENSIONALITY_SWEEP: dict[str, Any] = {
    "n_instances": 20,
    "n_features": 100,
    "d_hidden": 10,
    "probability_ratio": 20.0,
    "steps": 3000,
    "batch_size": 512,
    "lr": 1e-2,
    "lr_schedule": "constant",
    "seed": 0,
}
"""The committed sweep: ARENA 1.5.4's feature-geometry run (200 features, 20 hidden dimensions, 20
instances with feature probability ``20^-t``, ``t`` evenly spaced in [0, 1], uniform importance) at
half the width (100 features in 10 dimensions, the same ratio) with a smaller batch, fewer steps and
a larger learning rate, so it trains in minutes on one CPU core."""
_QUICK_SWEEP = {
    **DIMENSIONALITY_SWEEP,
    "n_instances": 4,
    "n_features": 20,
    "d_hidden": 4,
    "steps": 30,
    "batch_size": 64,
}
_MAKE_WITH = "python -m mechlearn.superposition dimensionality --out {folder}"


def dimensionality_recipe(
    out_dir: str | Path, quick: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train the `DIMENSIONALITY_SWEEP` toy models; write ``dimensionality.pt`` and its manifest into ``out_dir``.

    The checkpoint holds ``W`` ``(n_inst, d_hidden, n_features)``, ``b_final`` and the per-instance
    ``feature_probability``. The manifest's ``metrics`` give, per instance, the dimensions per feature,
    the number of represented features (norm ≥ 0.5), the `sticky_share` and the final loss.
    ``quick`` trains a 4-instance, 20-feature sweep for 30 steps (a smoke test). ``progress`` is
    accepted for the recipe interface (the run prints nothing).

    Raises:
        ValueError: ``out_dir`` is inside the ``mechlearn`` package.
    """
    from mechlearn.superposition.toy import ToyConfig, ToyModel, train_toy

    out = recipe_output_dir(out_dir)
    cfg = _QUICK_SWEEP if quick else DIMENSIONALITY_SWEEP
    toy = ToyConfig(
        n_instances=cfg["n_instances"],
        n_features=cfg["n_features"],
        d_hidden=cfg["d_hidden"],
    )
    p = cfg["probability_ratio"] ** -torch.linspace(0, 1, cfg["n_instances"])
    model = ToyModel(
        toy,
        feature_probability=p[:, None],
        generator=torch.Generator().manual_seed(cfg["seed"]),
    )
    start = time.process_time()
    history = train_toy(
        model,
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        generator=torch.Generator().manual_seed(cfg["seed"] + 1),
        lr_schedule=cfg["lr_schedule"],
        log_every=max(1, cfg["steps"] // 20),
    )
    seconds = time.process_time() - start
    W = model.W.detach().clone()
    ckpt = out / "dimensionality.pt"
    torch.save(
        {"W": W, "b_final": model.b_final.detach().clone(), "feature_probability": p},
        ckpt,
    )
    metrics = {
        "dimensions_per_feature": dimensions_per_feature(W).tolist(),
        "represented": (feature_norms(W) >= 0.5).sum(-1).tolist(),
        "sticky_share": sticky_share(W).tolist(),
        "final_loss_per_instance": history["loss_per_instance"][-1].tolist(),
    }
    return write_manifest(
        ckpt,
        name="dimensionality",
        recipe="mechlearn.superposition.geometry.dimensionality_recipe",
        config=cfg,
        seed=cfg["seed"],
        metrics=metrics,
        steps=cfg["steps"],
        seconds=round(seconds, 2),
        seconds_kind="CPU seconds (process time), one thread",
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        quick=quick,
        loss_history={"step": history["step"], "loss": history["loss"]},
    )


def load_dimensionality_sweep(
    directory: str | Path | None = None,
) -> tuple[
    Float[Tensor, "n_inst d_hidden n_features"], Float[Tensor, " n_inst"], dict[str, Any]
]:
    """``(W, feature_probability, manifest)`` of the committed sweep (or of a recipe's ``--out`` folder).

    Raises:
        FileNotFoundError: no ``dimensionality.pt`` with manifest there (the message says how to make one).
        ValueError: the checkpoint does not match its manifest's sha256.
    """
    folder = CHECKPOINT_DIR if directory is None else Path(directory)
    ckpt, manifest = load_manifest(
        "dimensionality", folder, _MAKE_WITH.format(folder=folder)
    )
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    return state["W"], state["feature_probability"], manifest
