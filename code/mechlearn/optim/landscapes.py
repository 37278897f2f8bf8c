"""Test functions for optimisers, and the path an optimiser takes across them (ARENA 0.3).

The Rosenbrock function ``f(x, y) = (a − x)² + b (y − x²)²`` has its minimum at ``(a, a²)`` at the
bottom of a long, curved, narrow valley: the gradient points mostly across the valley, so it is
the classic picture of why plain gradient descent is slow and momentum helps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mechlearn.optim.base import Optimizer

__all__ = ["rosenbrock", "trajectory"]


def rosenbrock(x: Any, y: Any, a: float = 1.0, b: float = 100.0) -> Any:
    """``(a − x)² + b (y − x²)²``, on numbers, NumPy arrays or torch tensors."""
    return (a - x) ** 2 + b * (y - x**2) ** 2


def trajectory(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], start: tuple[float, float],
               make_optimizer: Callable[[list[torch.Tensor]], Optimizer | Any], steps: int) -> np.ndarray:
    """The points an optimiser visits minimising ``fn(x, y)`` from ``start``, shape ``(steps + 1, 2)``.

    ``make_optimizer`` receives ``[xy]`` (one float64 tensor of two coordinates) and returns any
    optimiser with ``zero_grad`` and ``step`` (ours, or ``torch.optim``'s for comparison).
    """
    if steps < 0:
        raise ValueError(f"steps should be non-negative, got {steps}")
    xy = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer([xy])
    path = [xy.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        fn(xy[0], xy[1]).backward()
        opt.step()
        path.append(xy.detach().numpy().copy())
    return np.stack(path)
