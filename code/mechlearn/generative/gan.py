"""Generative adversarial networks on a 2-D mixture of Gaussians: mode collapse, and packing as a fix (ARENA 0.5).

A generator ``G`` maps noise to samples; a discriminator ``D`` scores real against generated
samples. ``D`` is trained to tell them apart (binary cross-entropy), ``G`` to make ``D`` call its
samples real (the *non-saturating* loss ``−log D(G(z))``). At the game's equilibrium the generated
distribution equals the data distribution.

In practice the generator often finds a few points ``D`` currently likes and puts all its mass
there: **mode collapse**. The generator learns only from ``D``'s slope at its own samples, so once
they sit where ``D`` is fooled, nothing pulls mass towards the modes they miss. **PacGAN** gives the
discriminator ``pack`` samples at once, all real or all generated, concatenated, so a lack of
variety within a pack is itself evidence it can penalise.

A ring of Gaussians makes collapse measurable: count the modes that received samples.

References: Goodfellow et al., *Generative Adversarial Nets* (2014); Lin et al., *PacGAN* (2018);
Metz et al., *Unrolled GANs* (2017) for the ring-of-Gaussians benchmark; ARENA chapter 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from mechlearn.generative.common import mlp

__all__ = ["ring_modes", "sample_ring", "Generator", "Discriminator", "train_gan", "mode_coverage"]


def ring_modes(n_modes: int = 8, radius: float = 2.0) -> Float[np.ndarray, "modes 2"]:
    """Centres of ``n_modes`` Gaussians evenly spaced on a circle."""
    if n_modes < 1:
        raise ValueError(f"need at least one mode, got {n_modes}")
    angles = 2 * math.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_ring(n: int, rng: np.random.Generator, n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> Float[np.ndarray, "n 2"]:
    """``n`` samples from an equal mixture of Gaussians on a ring."""
    centres = ring_modes(n_modes, radius)
    return centres[rng.integers(0, n_modes, size=n)] + std * rng.normal(size=(n, 2))


class Generator(nn.Module):
    """Maps latent noise ``z`` of shape ``(batch, latent_dim)`` to 2-D points through an MLP."""
    def __init__(self, latent_dim: int = 4, hidden: int = 128) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp((latent_dim, hidden, hidden, 2))

    def forward(self, z: Float[Tensor, "batch latent"]) -> Float[Tensor, "batch 2"]:
        """2-D points, one per row of ``z``."""
        return self.net(z)


class Discriminator(nn.Module):
    """Scores groups of ``pack`` samples (``pack = 1`` is the standard GAN); returns logits."""

    def __init__(self, pack: int = 1, hidden: int = 128) -> None:
        super().__init__()
        if pack < 1:
            raise ValueError(f"pack should be at least 1, got {pack}")
        self.pack = pack
        self.net = mlp((2 * pack, hidden, hidden, 1))

    def forward(self, x: Float[Tensor, "batch 2"]) -> Float[Tensor, " groups"]:
        """One logit per group of ``pack`` consecutive points (real vs generated)."""
        if x.shape[0] % self.pack:
            raise ValueError(f"a batch of {x.shape[0]} samples cannot be split into packs of {self.pack}")
        return self.net(x.reshape(-1, 2 * self.pack)).squeeze(-1)


def train_gan(generator: Generator, discriminator: Discriminator, *, steps: int, batch_size: int = 256, lr: float = 1e-3,
              seed: int = 0, snapshot_every: int = 0) -> list[dict[str, object]]:
    """Alternate one discriminator and one generator Adam step per iteration on the ring data.

    Returns:
        One row per step with both losses; rows at multiples of ``snapshot_every`` also hold
        ``"samples"``, 1,000 generated points (for plots of training progress).
    """
    from mechlearn.optim import Adam

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt_g = Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    bce = nn.functional.binary_cross_entropy_with_logits
    fixed_z = torch.randn(1000, generator.latent_dim, generator=gen)
    history: list[dict[str, object]] = []
    for step in range(steps):
        real = torch.tensor(sample_ring(batch_size, rng), dtype=torch.float32)
        fake = generator(torch.randn(batch_size, generator.latent_dim, generator=gen))
        d_real, d_fake = discriminator(real), discriminator(fake.detach())
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        d_fake = discriminator(fake)
        loss_g = bce(d_fake, torch.ones_like(d_fake))  # non-saturating: maximise log D(G(z))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        row: dict[str, object] = {"step": step, "loss_d": loss_d.item(), "loss_g": loss_g.item()}
        if snapshot_every and (step % snapshot_every == 0 or step == steps - 1):
            with torch.no_grad():
                row["samples"] = generator(fixed_z).numpy()
        history.append(row)
    return history


def mode_coverage(samples: Float[np.ndarray, "n 2"], centres: Float[np.ndarray, "modes 2"], std: float = 0.05,
                  min_share: float = 0.01) -> dict[str, float]:
    """How many modes the samples cover, and how many samples are near any mode.

    A sample belongs to its nearest mode if within ``3 std`` of it; a mode counts as covered when
    at least ``min_share`` of the samples belong to it.
    """
    dist = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)
    nearest, close = dist.argmin(1), dist.min(1) <= 3 * std
    counts = np.bincount(nearest[close], minlength=len(centres))
    return {"modes covered": float((counts >= min_share * len(samples)).sum()), "high-quality share": float(close.mean())}
