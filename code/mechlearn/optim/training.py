"""A minimal, deterministic training loop for torch classifiers, used by the optimiser days.

It returns its history (one dict per step) instead of printing, so a page can plot it and a
sweep can collect it: the "logged locally" replacement for ARENA's Weights & Biases runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mechlearn.data import minibatch_indices

__all__ = ["mlp", "train_classifier", "accuracy"]


def mlp(sizes: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> torch.nn.Sequential:
    """A ReLU MLP with torch's default initialisation, drawn from ``torch.Generator`` seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = torch.nn.Linear(a, b, dtype=dtype)
        bound = 1 / np.sqrt(a)
        with torch.no_grad():  # torch's default bounds, but from our generator
            linear.weight.uniform_(-bound, bound, generator=gen)
            linear.bias.uniform_(-bound, bound, generator=gen)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def train_classifier(model: torch.nn.Module, optimizer: Any, x: np.ndarray, y: np.ndarray, *, epochs: int,
                     batch_size: int, seed: int, scheduler: Any = None) -> list[dict[str, int | float]]:
    """Minibatch training on cross-entropy; ``scheduler.step()`` after every optimiser step.

    Returns:
        One ``{"step", "epoch", "loss", "lr"}`` per step (``lr`` of the first parameter group).
    """
    rng = np.random.default_rng(seed)
    xt, yt = torch.tensor(x), torch.tensor(y)
    history = []
    for epoch in range(epochs):
        for idx in minibatch_indices(len(y), batch_size, rng):
            lr = optimizer.param_groups[0]["lr"]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history.append({"step": len(history), "epoch": epoch, "loss": loss.item(), "lr": lr})
    return history


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """The share of rows of ``x`` whose largest logit under ``model`` is the label in ``y`` (no gradients)."""
    if len(y) == 0:
        raise ValueError("accuracy of an empty batch is undefined (the mean of nothing)")
    with torch.no_grad():
        return float((model(torch.tensor(x)).argmax(-1).numpy() == y).mean())
