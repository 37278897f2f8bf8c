"""The toy model of superposition ReLU(WᵀWx + b), the neuron model, sparse synthetic features and the trainer, with an instance axis.

This is the model of Elhage et al. (2022), "Toy Models of Superposition" (transformer-circuits.pub),
as ARENA 1.5.4 builds it. ``n_features`` synthetic features ``x`` are squeezed into ``d_hidden <
n_features`` dimensions and read back out with the *same* matrix::

    h = W x                      W: (d_hidden, n_features), column i is feature i's direction
    x' = ReLU(Wᵀ h + b)          = ReLU(Wᵀ W x + b)

and trained to minimise the importance-weighted squared error ``Σ_i I_i (x_i - x'_i)²``. A linear
model can do no better than keep the ``d_hidden`` most important features on orthogonal directions
and drop the rest (it is PCA). The ReLU changes that when features are *sparse*: if feature ``i`` is
usually zero, its interference with the others (``W_i·W_j x_j`` leaking into output ``i``) is usually
negative or zero after the bias, and the ReLU removes it. So a sparse feature can share a
dimension with others at little cost, and the model stores more features than it has dimensions:
superposition.

Every tensor carries an *instance* axis (ARENA's ``inst``): ``W`` is ``(n_inst, d_hidden,
n_features)`` and a batch is ``(batch, n_inst, n_features)``, so ``n_inst`` independent models, each
with its own feature probability and importance, train in one run (one einsum per layer). A sweep
over sparsity is one training run.

Features (``generate_batch``) are as ARENA generates them: feature ``i`` of instance ``k`` is present
with probability ``p[k, i]``, and then uniform on ``[0, 1)``. Optionally the first
``2 * n_correlated_pairs`` features come in correlated pairs (both present or both absent, with the
pair's probability) and the next ``2 * n_anticorrelated_pairs`` in anticorrelated pairs (at most one
present; each present with probability ``p``, which needs ``p <= 1/2``). Features ``2k`` and ``2k + 1``
of each block form a pair.

Differences from ARENA: ARENA calls ``nn.init.xavier_normal_`` on the whole 3-D ``W``, whose fan
counts the instance axis; here each instance is initialised with the Xavier-normal standard
deviation of its own ``(d_hidden, n_features)`` matrix, ``sqrt(2 / (d_hidden + n_features))``, so an
instance does not depend on how many others train beside it. Pairs may have their own probability
(ARENA requires one probability per instance when there are pairs). Randomness comes from explicit
``torch.Generator`` arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

__all__ = [
    "ToyConfig",
    "ToyModel",
    "NeuronModel",
    "correlated_present",
    "anticorrelated_present",
    "LR_SCHEDULES",
    "train_toy",
]


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class ToyConfig:
    """The shape of a toy model: instances, features, hidden dimensions and paired features.

    ``n_correlated_pairs`` pairs come first (features ``0 .. 2c - 1``), then ``n_anticorrelated_pairs``
    pairs, then the independent features; ``2 * (n_correlated_pairs + n_anticorrelated_pairs)`` must
    not exceed ``n_features``.
    """

    n_instances: int
    n_features: int = 5
    d_hidden: int = 2
    n_correlated_pairs: int = 0
    n_anticorrelated_pairs: int = 0

    def __post_init__(self) -> None:
        _check_count("n_instances", self.n_instances, 1)
        _check_count("n_features", self.n_features, 1)
        _check_count("d_hidden", self.d_hidden, 1)
        _check_count("n_correlated_pairs", self.n_correlated_pairs, 0)
        _check_count("n_anticorrelated_pairs", self.n_anticorrelated_pairs, 0)
        paired = 2 * (self.n_correlated_pairs + self.n_anticorrelated_pairs)
        if paired > self.n_features:
            raise ValueError(
                f"{self.n_correlated_pairs} correlated + {self.n_anticorrelated_pairs} anticorrelated "
                f"pairs need {paired} features, but n_features = {self.n_features}"
            )

    @property
    def n_inst(self) -> int:
        """ARENA's name for ``n_instances``."""
        return self.n_instances

    @property
    def n_uncorrelated(self) -> int:
        """How many features are independent (not in a pair): the last ones."""
        return self.n_features - 2 * (self.n_correlated_pairs + self.n_anticorrelated_pairs)


def _per_feature(
    name: str, value: Tensor | float | int, cfg: ToyConfig, low: float, high: float
) -> Tensor:
    """``value`` broadcast to ``(n_instances, n_features)`` as float32, checked to lie in ``[low, high]``."""
    shape = (cfg.n_instances, cfg.n_features)
    tensor = torch.as_tensor(value, dtype=torch.float64)  # checked at full precision, stored as float32
    try:
        tensor = tensor.broadcast_to(shape)
    except RuntimeError:
        raise ValueError(
            f"{name} must be a number or a tensor broadcastable to (n_instances, n_features) = {shape}, "
            f"got shape {tuple(tensor.shape)}"
        ) from None
    bad = torch.isnan(tensor) | (tensor < low) | (tensor > high)
    if bad.any():
        where = tuple(int(i) for i in bad.nonzero()[0])
        upper = "1" if high == 1 else "inf"
        raise ValueError(
            f"{name} must lie in [{low:g}, {upper}], got {float(tensor[where]):g} at (instance, feature) = {where}"
        )
    return tensor.to(torch.float32)


class ToyModel(nn.Module):
    """``n_inst`` toy models ReLU(WᵀW x + b_final) trained side by side (ARENA 1.5.4's ``Model``).

    Args:
        cfg: the shapes.
        feature_probability: probability that a feature is present (``1 - S`` in the paper's
            notation, ``S`` the sparsity): a number or a tensor broadcastable to
            ``(n_instances, n_features)``, each entry in ``[0, 1]``.
        importance: the weight ``I_i >= 0`` of feature ``i`` in the loss, broadcast the same way.
        generator: the random generator for the initial ``W`` (None: torch's global one).

    Parameters: ``W (n_inst, d_hidden, n_features)``, Xavier-normal per instance (the columns are the
    feature directions), and ``b_final (n_inst, n_features)``, zero. ``feature_probability`` and
    ``importance`` are buffers of shape ``(n_inst, n_features)``.
    """

    W: Tensor
    b_final: Tensor
    feature_probability: Tensor
    importance: Tensor

    def __init__(
        self,
        cfg: ToyConfig,
        feature_probability: Tensor | float | int = 1.0,
        importance: Tensor | float | int = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(cfg, ToyConfig):
            raise TypeError(f"cfg must be a ToyConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        probability = _per_feature("feature_probability", feature_probability, cfg, 0.0, 1.0)
        _check_pairs(cfg, probability)
        self.register_buffer("feature_probability", probability)
        self.register_buffer("importance", _per_feature("importance", importance, cfg, 0.0, math.inf))
        std = math.sqrt(2.0 / (cfg.d_hidden + cfg.n_features))
        shape = (cfg.n_instances, cfg.d_hidden, cfg.n_features)
        self.W = nn.Parameter(torch.randn(shape, generator=generator) * std)
        self.b_final = nn.Parameter(torch.zeros(cfg.n_instances, cfg.n_features))

    def check_features(self, features: Tensor) -> None:
        """Raise a clear error unless ``features`` is a tensor shaped ``(..., n_inst, n_features)``."""
        expected = (self.cfg.n_instances, self.cfg.n_features)
        if not isinstance(features, Tensor):
            raise TypeError(f"features must be a torch.Tensor, got {type(features).__name__}")
        if features.ndim < 2 or tuple(features.shape[-2:]) != expected:
            raise ValueError(
                f"features must have shape (..., n_instances, n_features) = (..., {expected[0]}, "
                f"{expected[1]}), got {tuple(features.shape)}"
            )

    def hidden(self, features: Float[Tensor, "... inst feats"]) -> Float[Tensor, "... inst d_hidden"]:
        """The hidden activations ``h = W x`` per instance (linear in this model)."""
        self.check_features(features)
        return torch.einsum("...if,ihf->...ih", features, self.W)

    def forward(self, features: Float[Tensor, "... inst feats"]) -> Float[Tensor, "... inst feats"]:
        """The reconstruction ``ReLU(WᵀW x + b_final)`` per instance.

        ``WᵀW`` is formed first: ``(n_features, n_features)`` per instance, one matmul per batch
        instead of two thin ones through ``d_hidden`` (the same maths, faster on a CPU).
        """
        self.check_features(features)
        gram = self.W.mT @ self.W
        return F.relu(torch.einsum("...if,ifg->...ig", features, gram) + self.b_final)

    def generate_batch(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> Float[Tensor, "batch inst feats"]:
        """A batch of sparse features ``(batch_size, n_inst, n_features)``: correlated pairs first,
        then anticorrelated pairs, then independent features (see the module docstring)."""
        _check_count("batch_size", batch_size, 1)
        cfg, p = self.cfg, self.feature_probability
        device = self.W.device
        c, a = 2 * cfg.n_correlated_pairs, 2 * cfg.n_anticorrelated_pairs
        blocks = []
        if c:
            blocks.append(correlated_present(batch_size, p[:, 0:c:2], generator).to(device))
        if a:
            blocks.append(anticorrelated_present(batch_size, p[:, c : c + a : 2], generator).to(device))
        if cfg.n_uncorrelated:
            seeds = torch.rand((batch_size, cfg.n_instances, cfg.n_uncorrelated), generator=generator)
            blocks.append(seeds.to(device) < p[:, c + a :])
        present = torch.cat(blocks, dim=-1)
        magnitude = torch.rand(present.shape, generator=generator).to(device=device, dtype=self.W.dtype)
        return torch.where(present, magnitude, torch.zeros((), dtype=self.W.dtype, device=device))

    def loss_per_instance(
        self, out: Float[Tensor, "*batch inst feats"], features: Float[Tensor, "*batch inst feats"]
    ) -> Float[Tensor, " inst"]:
        """Importance-weighted squared error, averaged over the batch and the features, per instance."""
        self.check_features(features)
        if out.shape != features.shape:
            raise ValueError(f"out has shape {tuple(out.shape)} but features have {tuple(features.shape)}")
        error = self.importance * (features - out) ** 2
        return error.mean(dim=tuple(range(error.ndim - 2)) + (-1,))

    def loss(
        self, out: Float[Tensor, "*batch inst feats"], features: Float[Tensor, "*batch inst feats"]
    ) -> Float[Tensor, ""]:
        """ARENA's loss: ``loss_per_instance`` summed over instances (so each instance trains as if alone)."""
        return self.loss_per_instance(out, features).sum()


class NeuronModel(ToyModel):
    """The toy model with a privileged basis: ``ReLU(Wᵀ ReLU(W x) + b_final)`` (ARENA 1.5.4's ``NeuronModel``).

    The ReLU on the hidden layer makes its standard basis special (a neuron is a direction the
    non-linearity acts on one at a time), so one can ask which features each neuron represents.
    """

    def hidden(self, features: Float[Tensor, "... inst feats"]) -> Float[Tensor, "... inst d_hidden"]:
        """The hidden activations ``ReLU(W x)`` per instance."""
        return F.relu(super().hidden(features))

    def forward(self, features: Float[Tensor, "... inst feats"]) -> Float[Tensor, "... inst feats"]:
        """The reconstruction ``ReLU(Wᵀ ReLU(W x) + b_final)`` per instance."""
        out = torch.einsum("...ih,ihf->...if", self.hidden(features), self.W)
        return F.relu(out + self.b_final)


def _check_pairs(cfg: ToyConfig, probability: Tensor) -> None:
    """Both features of a pair must share a probability; anticorrelated pairs need ``p <= 1/2``."""
    paired = 2 * (cfg.n_correlated_pairs + cfg.n_anticorrelated_pairs)
    first, second = probability[:, 0:paired:2], probability[:, 1:paired:2]
    if not torch.equal(first, second):
        raise ValueError("both features of a correlated or anticorrelated pair must have the same feature_probability")
    c, a = 2 * cfg.n_correlated_pairs, 2 * cfg.n_anticorrelated_pairs
    anti = probability[:, c : c + a]
    if anti.numel() and float(anti.max()) > 0.5:
        raise ValueError(
            f"anticorrelated features need feature_probability <= 0.5 (at most one of a pair is present, "
            f"each with probability p, so 2p <= 1), got {float(anti.max()):g}"
        )


def correlated_present(
    batch_size: int, p: Float[Tensor, "inst pairs"], generator: torch.Generator | None = None
) -> Tensor:
    """Which features of correlated pairs are present, ``(batch_size, inst, 2 * pairs)`` booleans.

    One uniform draw per pair decides both features (present when it falls below the pair's
    probability ``p``), so the two are present together or not at all (ARENA 1.5.4's method).
    """
    pair_present = torch.rand((batch_size, *p.shape), generator=generator) < p.cpu()
    return pair_present.repeat_interleave(2, dim=-1)


def anticorrelated_present(
    batch_size: int, p: Float[Tensor, "inst pairs"], generator: torch.Generator | None = None
) -> Tensor:
    """Which features of anticorrelated pairs are present, ``(batch_size, inst, 2 * pairs)`` booleans.

    ARENA 1.5.4's method: the first feature is present with probability ``p``; only when it is
    absent is the second present, with probability ``p / (1 - p)``. Each has marginal probability
    ``(1 - p) · p / (1 - p) = p``, and the two are never present together (needs ``p <= 1/2``).
    """
    first_seed, second_seed = torch.rand((2, batch_size, *p.shape), generator=generator)
    p = p.cpu()
    first = first_seed < p
    second = ~first & (second_seed < p / (1 - p).clamp_min(1e-12))
    return torch.stack([first, second], dim=-1).flatten(-2)


def _constant_lr(step: int, steps: int) -> float:
    return 1.0


def _linear_lr(step: int, steps: int) -> float:
    return 1.0 - step / steps


def _cosine_lr(step: int, steps: int) -> float:
    return math.cos(0.5 * math.pi * step / (steps - 1)) if steps > 1 else 1.0


LR_SCHEDULES: dict[str, Callable[[int, int], float]] = {
    "constant": _constant_lr,
    "linear": _linear_lr,
    "cosine": _cosine_lr,
}
"""ARENA's learning-rate scales ``(step, steps) -> factor``: constant, linear decay to 0, cosine decay."""


def train_toy(
    model: ToyModel,
    steps: int = 5_000,
    batch_size: int = 1024,
    lr: float | int = 1e-3,
    generator: torch.Generator | None = None,
    *,
    lr_schedule: str | Callable[[int, int], float] = "constant",
    log_every: int = 50,
) -> dict:
    """Train all instances at once with Adam on fresh batches (ARENA 1.5.4's ``optimize``).

    Args:
        model: a ToyModel or NeuronModel (trained in place).
        steps, batch_size, lr: optimisation steps, examples per step, Adam's learning rate.
        generator: the random generator for the batches.
        lr_schedule: "constant", "linear" or "cosine" (see ``LR_SCHEDULES``), or a function
            ``(step, steps) -> factor`` multiplying ``lr``.
        log_every: record the loss every this many steps (and at the last step).

    Returns:
        a history dict: ``step`` (the logged steps), ``loss`` (the summed loss at those steps),
        ``loss_per_instance`` (a ``(n_logged, n_inst)`` tensor) and ``lr`` (the learning rate used).
    """
    if not isinstance(model, ToyModel):
        raise TypeError(f"model must be a ToyModel, got {type(model).__name__}")
    _check_count("steps", steps, 1)
    _check_count("batch_size", batch_size, 1)
    _check_count("log_every", log_every, 1)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if isinstance(lr_schedule, str):
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {sorted(LR_SCHEDULES)} or a function, got {lr_schedule!r}")
        lr_schedule = LR_SCHEDULES[lr_schedule]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict = {"step": [], "loss": [], "loss_per_instance": [], "lr": []}
    for step in range(steps):
        step_lr = lr * lr_schedule(step, steps)
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        features = model.generate_batch(batch_size, generator)
        per_instance = model.loss_per_instance(model(features), features)
        loss = per_instance.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % log_every == 0 or step == steps - 1:
            history["step"].append(step)
            history["loss"].append(loss.item())
            history["loss_per_instance"].append(per_instance.detach().clone())
            history["lr"].append(step_lr)
    history["loss_per_instance"] = torch.stack(history["loss_per_instance"])
    return history
