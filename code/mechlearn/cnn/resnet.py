"""Residual networks: blocks, block groups and a small ResNet with torchvision's parameter names (ARENA 0.2).

A residual block computes ``relu(x + F(x))`` instead of ``relu(F(x))``. At initialisation ``F`` is
small, so the block is close to the identity and a deep stack is close to a shallow one; the
gradient reaches early layers through the ``+ x`` path without passing through every ``F``
(Day 8 of the log measured what happens without such a path). When a block changes the number of
channels or the resolution, the shortcut is a 1×1 strided convolution with BatchNorm
("downsample").

Parameter names follow torchvision's ResNet (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``), so a state dict in that layout loads unchanged.

Reference: He et al., *Deep Residual Learning for Image Recognition* (2015); ARENA chapter 0.2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from mechlearn.cnn.layers import BatchNorm2d, Conv2d, Linear, ReLU

__all__ = ["ResidualBlock", "BlockGroup", "ResNet"]


class ResidualBlock(nn.Module):
    """``relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x))))))``, 3×3 convolutions (torchvision's ``BasicBlock``).

    Args:
        in_feats, out_feats: channels in and out.
        first_stride: the stride of the first convolution (and of the shortcut).
        generator: for the initial weights.
        batchnorm: False replaces every BatchNorm by the identity, to study residual connections alone.
        residual: False drops the shortcut, giving the "plain" block of the same depth.
    """

    def __init__(self, in_feats: int, out_feats: int, first_stride: int = 1, generator: torch.Generator | None = None,
                 batchnorm: bool = True, residual: bool = True) -> None:
        super().__init__()
        norm = BatchNorm2d if batchnorm else (lambda _: nn.Identity())
        self.residual = residual
        self.conv1 = Conv2d(in_feats, out_feats, 3, stride=first_stride, padding=1, generator=generator)
        self.bn1 = norm(out_feats)
        self.relu = ReLU()
        self.conv2 = Conv2d(out_feats, out_feats, 3, stride=1, padding=1, generator=generator)
        self.bn2 = norm(out_feats)
        if residual and (first_stride != 1 or in_feats != out_feats):
            self.downsample: nn.Module | None = nn.Sequential(
                Conv2d(in_feats, out_feats, 1, stride=first_stride, generator=generator), norm(out_feats)
            )
        else:
            self.downsample = None

    def forward(self, x: Float[Tensor, "batch in_feats h w"]) -> Float[Tensor, "batch out_feats oh ow"]:
        """``relu(left(x) + right(x))``: the residual branch plus the (possibly downsampled) shortcut."""
        left = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if not self.residual:
            return self.relu(left)
        right = self.downsample(x) if self.downsample is not None else x
        return self.relu(left + right)


class BlockGroup(nn.Sequential):
    """``n_blocks`` residual blocks; only the first may change channels and stride."""

    def __init__(self, n_blocks: int, in_feats: int, out_feats: int, first_stride: int = 1,
                 generator: torch.Generator | None = None) -> None:
        if n_blocks < 1:
            raise ValueError(f"a block group needs at least one block, got {n_blocks}")
        super().__init__(
            ResidualBlock(in_feats, out_feats, first_stride, generator),
            *(ResidualBlock(out_feats, out_feats, 1, generator) for _ in range(n_blocks - 1)),
        )


class ResNet(nn.Module):
    """A ResNet in torchvision's layout: stem (conv 7×7/2, BN, ReLU, max-pool 3×3/2), block groups,
    global average pool, linear classifier. ``ResNet((3, 4, 6, 3), (64, 128, 256, 512))`` is ResNet-34.

    Args:
        n_blocks_per_group: blocks in ``layer1``, ``layer2``, ...
        out_features_per_group: channels of each group.
        first_strides_per_group: stride of each group's first block (default 1, then 2, 2, ...).
        n_classes: outputs of ``fc``.
        in_channels: image channels.
        stem: False replaces the 7×7/2 convolution and max-pool by a 3×3/1 convolution, for tiny images.
    """

    def __init__(self, n_blocks_per_group: Sequence[int], out_features_per_group: Sequence[int],
                 first_strides_per_group: Sequence[int] | None = None, n_classes: int = 1000, in_channels: int = 3,
                 stem: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if len(n_blocks_per_group) != len(out_features_per_group):
            raise ValueError("n_blocks_per_group and out_features_per_group need one entry per group")
        strides = list(first_strides_per_group) if first_strides_per_group is not None else [1] + [2] * (len(n_blocks_per_group) - 1)
        width = out_features_per_group[0]
        self.conv1 = Conv2d(in_channels, width, 7 if stem else 3, stride=2 if stem else 1, padding=3 if stem else 1, generator=generator)
        self.bn1 = BatchNorm2d(width)
        self.relu = ReLU()
        self.stem = stem
        ins = [width, *out_features_per_group[:-1]]
        for i, (n, fin, fout, s) in enumerate(zip(n_blocks_per_group, ins, out_features_per_group, strides), start=1):
            setattr(self, f"layer{i}", BlockGroup(n, fin, fout, s, generator))
        self.n_groups = len(n_blocks_per_group)
        self.fc = Linear(out_features_per_group[-1], n_classes, generator=generator)

    def forward(self, x: Float[Tensor, "batch channels h w"]) -> Float[Tensor, "batch n_classes"]:
        """Class logits for a batch of images."""
        from mechlearn.cnn.functional import maxpool2d

        x = self.relu(self.bn1(self.conv1(x)))
        if self.stem:
            x = maxpool2d(x, 3, 2, 1)
        for i in range(1, self.n_groups + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(x.mean(dim=(2, 3)))
