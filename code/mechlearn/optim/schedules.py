"""Learning-rate schedules: warm up, then decay (ARENA 0.3).

A schedule multiplies each parameter group's base learning rate by a factor that depends on the
step: ``lr_t = base_lr · factor(t)``. Warm-up (a factor rising from small to 1) keeps the first
updates, made with poor Adam statistics and a random network, from being large; decay (step or
cosine) lets the weights settle into a minimum the large early steps could only bounce around.

Each schedule's factors equal those of the matching ``torch.optim.lr_scheduler`` (the reference in
the tests): `StepLR`, `CosineAnnealingLR`, `LinearLR`, and `LambdaLR` for anything else, such as
`warmup_cosine`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from mechlearn.optim.base import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "CosineAnnealingLR", "LinearLR", "warmup_cosine"]


class LRScheduler:
    """Sets ``group["lr"] = base_lr · factor(t)`` for every group; ``step()`` advances ``t`` by one."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"a schedule needs a mechlearn optimiser, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def factor(self, t: int) -> float:
        """The multiplier of each group's base learning rate at step ``t``; subclasses define it."""
        raise NotImplementedError

    def _apply(self) -> None:
        f = self.factor(self.last_epoch)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f

    def step(self) -> None:
        """Advance one step and set every group's learning rate to ``base * factor(step)``."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate of each parameter group now."""
        return [g["lr"] for g in self.optimizer.param_groups]


class LambdaLR(LRScheduler):
    """``factor(t) = lr_lambda(t)``."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float]) -> None:
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def factor(self, t: int) -> float:
        """``lr_lambda(t)``."""
        return float(self.lr_lambda(t))


class StepLR(LRScheduler):
    """Multiply by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"step_size should be at least 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def factor(self, t: int) -> float:
        """``gamma ** (t // step_size)``."""
        return self.gamma ** (t // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` steps (then back up, as torch)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 (torch's name)
        if T_max < 1:
            raise ValueError(f"T_max should be at least 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def _apply(self) -> None:
        # eta_min is an absolute learning rate, so this schedule is not a pure factor of base_lr.
        t = self.last_epoch
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Linear from ``start_factor`` to ``end_factor`` over ``total_iters`` steps, then constant."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1 / 3, end_factor: float = 1.0, total_iters: int = 5) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"need 0 < start_factor <= 1 and 0 <= end_factor <= 1, got {start_factor}, {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer)

    def factor(self, t: int) -> float:
        """Linear from ``start_factor`` to ``end_factor`` over ``total_iters`` steps, then constant."""
        frac = min(t, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * frac


def warmup_cosine(warmup_steps: int, total_steps: int, final_factor: float = 0.0) -> Callable[[int], float]:
    """A factor for `LambdaLR`: linear warm-up from 0 over ``warmup_steps``, then a cosine to ``final_factor``."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")

    def factor(t: int) -> float:
        if t < warmup_steps:
            return (t + 1) / warmup_steps
        progress = min(1.0, (t - warmup_steps) / (total_steps - warmup_steps))
        return final_factor + (1 - final_factor) * (1 + math.cos(math.pi * progress)) / 2

    return factor
