"""Building blocks shared by the generative models."""

from __future__ import annotations

from torch import nn

__all__ = ["mlp"]


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least input and output sizes, got {sizes}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
