"""``nn`` modules from scratch on torch tensors: Linear, ReLU, Flatten, Conv2d, MaxPool2d, BatchNorm2d (ARENA 0.2).

Each subclasses ``torch.nn.Module`` but computes its forward pass without the corresponding
``torch.nn`` layer (convolutions and pooling come from `mechlearn.cnn.functional`). Parameters and
buffers have torch's names and shapes (``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``), so a state dict moves between these modules and ``torch.nn`` unchanged;
the tests copy weights across and compare outputs.

**BatchNorm** normalises each channel over the batch and spatial positions, then applies a learned
scale and shift: ``y = (x − μ) / √(σ² + ε) · γ + β``. In training it uses the batch's own μ and
(biased) σ², and updates running averages ``r ← (1 − m) r + m · batch_stat`` (the running variance
uses the *unbiased* batch variance, as torch does); in evaluation it uses the running averages, so
an example's output does not depend on the rest of its batch.

Reference: ARENA chapter 0.2, *CNNs & ResNets*; Ioffe & Szegedy, *Batch Normalization* (2015).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

from mechlearn.cnn import functional as F

__all__ = ["Linear", "ReLU", "Flatten", "Conv2d", "MaxPool2d", "BatchNorm2d"]


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator | None) -> nn.Parameter:
    return nn.Parameter((torch.rand(shape, generator=generator) * 2 - 1) * bound)


class Linear(nn.Module):
    """``y = x Wᵀ + b``; weights uniform in ``±1/√in_features`` as ``nn.Linear``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive sizes, got {in_features} → {out_features}")
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = _uniform((out_features, in_features), bound, generator)
        self.bias = _uniform((out_features,), bound, generator) if bias else None

    def forward(self, x: Float[Tensor, "*batch in_features"]) -> Float[Tensor, "*batch out_features"]:
        """``x @ weight.T + bias`` over the last axis of ``x``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects inputs with last axis {self.in_features}, got shape {tuple(x.shape)}")
        out = torch.einsum("... i, o i -> ... o", x, self.weight)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        """Sizes and whether there is a bias, as ``nn.Linear`` prints them."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(nn.Module):
    """``max(x, 0)`` elementwise, as ``nn.ReLU`` (the gradient at 0 is 0, as torch)."""
    def forward(self, x: Tensor) -> Tensor:
        """``max(x, 0)`` elementwise."""
        return torch.maximum(x, torch.zeros((), dtype=x.dtype))


class Flatten(nn.Module):
    """Merge axes ``start_dim..end_dim`` into one (by default all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        """``x`` with axes ``start_dim..end_dim`` merged into one."""
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        if start > end:
            raise ValueError(f"start_dim {self.start_dim} comes after end_dim {self.end_dim} for a {x.ndim}-d input")
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])


class Conv2d(nn.Module):
    """2-D convolution without bias (as in ResNets); weights uniform in ``±1/√(in·kH·kW)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.weight = _uniform((out_channels, in_channels, kernel_size, kernel_size), bound, generator)

    def forward(self, x: Float[Tensor, "batch in_channels h w"]) -> Float[Tensor, "batch out_channels oh ow"]:
        """The convolution of ``x`` (``(batch, in_channels, h, w)``) with this layer's weight."""
        return F.conv2d(x, self.weight, self.stride, self.padding)

    def extra_repr(self) -> str:
        """Channels, kernel size, stride and padding, as ``nn.Conv2d`` prints them."""
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(nn.Module):
    """Max-pooling over ``kernel_size`` windows (stride defaults to the kernel size), as ``nn.MaxPool2d``."""
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        """The maximum of each window of ``x`` (``(batch, channels, h, w)``); see `mechlearn.cnn.functional.maxpool2d`."""
        return F.maxpool2d(x, self.kernel_size, self.stride, self.padding)


class BatchNorm2d(nn.Module):
    """Per-channel batch normalisation with running statistics (train and eval modes, as ``nn.BatchNorm2d``)."""

    running_mean: Tensor
    running_var: Tensor
    num_batches_tracked: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Float[Tensor, "batch channels h w"]) -> Float[Tensor, "batch channels h w"]:
        """Normalise each channel (batch statistics in training, running ones in eval), then scale and shift."""
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d expects (batch, {self.num_features}, h, w), got {tuple(x.shape)}")
        if self.training:
            n = x.numel() / x.shape[1]
            if n < 2:
                raise ValueError(f"BatchNorm2d in training mode needs more than one value per channel, got shape {tuple(x.shape)}")
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))  # unbiased, as torch
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        shape = (1, -1, 1, 1)
        x_hat = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + self.eps)
        return x_hat * self.weight.reshape(shape) + self.bias.reshape(shape)

    def extra_repr(self) -> str:
        """Features, eps and momentum, as ``nn.BatchNorm2d`` prints them."""
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
