"""Backpropagation through a multi-layer perceptron, derived by hand and written in NumPy.

The forward pass of layer ``l`` (rows are examples, so ``x @ W`` as in ``torch.nn.Linear``
with ``W`` stored transposed)::

    z_l = h_{l-1} @ W_l + b_l          h_l = relu(z_l)   (no relu on the last layer)

Given ``G = dL/dz_l`` (one row per example), matrix calculus gives the backward pass::

    dL/dW_l     = h_{l-1}^T @ G        (sum over the batch of outer products)
    dL/db_l     = G.sum(axis=0)        (the bias is broadcast over the batch, so its gradient sums)
    dL/dh_{l-1} = G @ W_l^T
    dL/dz_{l-1} = dL/dh_{l-1} * 1[z_{l-1} > 0]

With the mean-squared-error loss ``L = mean((y_hat - y)^2)`` over all ``N·d_out`` entries,
``dL/dy_hat = 2 (y_hat - y) / (N·d_out)``.

Reference: ARENA chapter 0.4 (backprop), and any matrix-calculus note (e.g. the *Matrix Cookbook*).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float

__all__ = ["ManualMLP", "mse_loss", "mse_loss_backward", "train_regression"]


@dataclass
class ManualMLP:
    """A ReLU MLP whose gradients are computed by hand-derived formulas (no autograd).

    Args:
        sizes: layer widths from input to output, e.g. ``(1, 32, 32, 1)``; at least two.
        rng: the generator that draws the initial weights (He-uniform, as ``nn.Linear`` does up to a constant).
    """

    sizes: tuple[int, ...]
    rng: np.random.Generator
    params: dict[str, np.ndarray] = field(init=False)
    """``W1, b1, W2, b2, ...``: ``W_l`` has shape ``(sizes[l-1], sizes[l])``; ``b_l`` has ``(sizes[l],)``."""
    _cache: list[tuple[np.ndarray, np.ndarray]] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.sizes = tuple(self.sizes)
        if len(self.sizes) < 2 or any((not isinstance(s, (int, np.integer))) or s < 1 for s in self.sizes):
            raise ValueError(f"sizes should be at least two positive integers (input ... output), got {self.sizes}")
        if not isinstance(self.rng, np.random.Generator):
            raise TypeError(f"rng should be a np.random.Generator, got {type(self.rng).__name__}")
        self.params = {}
        for l, (d_in, d_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            bound = 1.0 / np.sqrt(d_in)  # the same bound as torch.nn.Linear's default init
            self.params[f"W{l}"] = self.rng.uniform(-bound, bound, size=(d_in, d_out))
            self.params[f"b{l}"] = self.rng.uniform(-bound, bound, size=(d_out,))

    @property
    def n_layers(self) -> int:
        """The number of linear layers."""
        return len(self.sizes) - 1

    def forward(self, x: Float[np.ndarray, "batch d_in"]) -> Float[np.ndarray, "batch d_out"]:
        """Run the network, keeping what the backward pass needs (each layer's input and pre-activation)."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"input should have shape (batch, {self.sizes[0]}), got {x.shape}")
        cache = []
        h = x
        for l in range(1, self.n_layers + 1):
            z = h @ self.params[f"W{l}"] + self.params[f"b{l}"]
            cache.append((h, z))
            h = np.maximum(z, 0.0) if l < self.n_layers else z
        self._cache = cache
        return h

    __call__ = forward

    def backward(self, grad_out: Float[np.ndarray, "batch d_out"]) -> dict[str, np.ndarray]:
        """Given dL/d(output) from the last ``forward``, return dL/d(param) for every parameter."""
        if self._cache is None:
            raise RuntimeError("call forward before backward: the backward pass needs the cached activations")
        h_last, z_last = self._cache[-1]
        if grad_out.shape != z_last.shape:
            raise ValueError(f"grad_out should have the output's shape {z_last.shape}, got {grad_out.shape}")
        grads: dict[str, np.ndarray] = {}
        g = grad_out  # dL/dz_l for the current layer l
        for l in range(self.n_layers, 0, -1):
            h_prev, _ = self._cache[l - 1]
            grads[f"W{l}"] = h_prev.T @ g
            grads[f"b{l}"] = g.sum(axis=0)
            if l > 1:
                _, z_prev = self._cache[l - 2]
                g = (g @ self.params[f"W{l}"].T) * (z_prev > 0)
        return grads


def _check_float(y_hat: object, y: object) -> None:
    kinds = (np.asarray(y_hat).dtype, np.asarray(y).dtype)
    if not all(np.issubdtype(k, np.floating) for k in kinds):
        raise TypeError(f"predictions and targets should be floating-point arrays, got dtypes {kinds[0]} and {kinds[1]}")


def mse_loss(y_hat: Float[np.ndarray, "batch d_out"], y: Float[np.ndarray, "batch d_out"]) -> float:
    """Mean squared error over every entry: ``mean((y_hat - y)^2)``."""
    if y_hat.shape != y.shape:
        raise ValueError(f"prediction and target shapes differ: {y_hat.shape} vs {y.shape}")
    _check_float(y_hat, y)
    if y.size == 0:
        raise ValueError(f"mean squared error of an empty batch is undefined (the mean of nothing), got shape {y.shape}")
    return float(np.mean((y_hat - y) ** 2))


def mse_loss_backward(
    y_hat: Float[np.ndarray, "batch d_out"], y: Float[np.ndarray, "batch d_out"]
) -> Float[np.ndarray, "batch d_out"]:
    """dL/d(y_hat) for `mse_loss`: ``2 (y_hat - y) / y.size``."""
    if y_hat.shape != y.shape:
        raise ValueError(f"prediction and target shapes differ: {y_hat.shape} vs {y.shape}")
    _check_float(y_hat, y)
    if y.size == 0:
        raise ValueError(f"mean squared error of an empty batch is undefined (the mean of nothing), got shape {y.shape}")
    return 2.0 * (y_hat - y) / y.size


def train_regression(
    model: ManualMLP,
    x: Float[np.ndarray, "batch d_in"],
    y: Float[np.ndarray, "batch d_out"],
    lr: float = 0.05,
    steps: int = 1000,
) -> list[dict[str, int | float]]:
    """Full-batch gradient descent on the MSE loss with the hand-derived gradients.

    Returns:
        The history: one ``{"step", "loss"}`` dict per step, the loss measured before the update.
    """
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    history = []
    for step in range(steps):
        y_hat = model.forward(x)
        history.append({"step": step, "loss": mse_loss(y_hat, y)})
        grads = model.backward(mse_loss_backward(y_hat, y))
        for name, g in grads.items():
            model.params[name] -= lr * g
    return history
