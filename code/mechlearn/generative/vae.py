"""Autoencoders and variational autoencoders on small images (ARENA 0.5).

An **autoencoder** squeezes an image through a small code and reconstructs it. Its codes need not
form a space you can sample from: points between training codes may decode to nothing.

A **VAE** makes the code a distribution. The encoder outputs a mean ``μ`` and a log-variance
``log σ²`` per latent dimension; a code is sampled as ``z = μ + σ ⊙ ε`` with ``ε ~ N(0, I)`` (the
**reparameterisation trick**: the randomness is moved into ``ε``, so ``z`` is a differentiable
function of ``μ`` and ``σ`` and backprop reaches the encoder). Training maximises the evidence
lower bound, i.e. minimises

    reconstruction loss  +  β · KL( N(μ, σ²) ‖ N(0, I) ),

and the KL between two Gaussians has a closed form, ``½ Σ (μ² + σ² − 1 − log σ²)``. The KL term
pulls every code distribution towards the same prior, so the latent space is filled without gaps
and samples from ``N(0, I)`` decode to plausible images.

Reference: Kingma & Welling, *Auto-Encoding Variational Bayes* (2014); ARENA chapter 0.5.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from mechlearn.data import minibatch_indices
from mechlearn.generative.common import mlp

__all__ = ["Autoencoder", "VAE", "reparameterise", "kl_to_standard_normal", "vae_loss", "train_autoencoder"]


class Autoencoder(nn.Module):
    """``decoder(encoder(x))`` with MLPs; the decoder ends in a sigmoid (pixels in [0, 1])."""

    def __init__(self, n_pixels: int = 64, hidden: int = 128, latent_dim: int = 2) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = mlp((n_pixels, hidden, latent_dim))
        self.decoder = nn.Sequential(mlp((latent_dim, hidden, n_pixels)), nn.Sigmoid())

    def forward(self, x: Float[Tensor, "batch pixels"]) -> tuple[Tensor, ...]:
        """``(reconstruction, code)`` for a batch of flattened images."""
        z = self.encoder(x)
        return (self.decoder(z), z)


class VAE(nn.Module):
    """An encoder to ``(μ, log σ²)``, a reparameterised sample, and a decoder (sigmoid output)."""

    def __init__(self, n_pixels: int = 64, hidden: int = 128, latent_dim: int = 2) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = mlp((n_pixels, hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(mlp((latent_dim, hidden, n_pixels)), nn.Sigmoid())

    def encode(self, x: Float[Tensor, "batch pixels"]) -> tuple[Tensor, Tensor]:
        """The posterior's ``(mu, logvar)`` for a batch of flattened images."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def forward(self, x: Float[Tensor, "batch pixels"], generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """``(reconstruction, mu, logvar)``: encode, sample ``z`` with the reparameterisation trick, decode."""
        mu, logvar = self.encode(x)
        z = reparameterise(mu, logvar, generator)
        return (self.decoder(z), mu, logvar)


def reparameterise(mu: Float[Tensor, "*batch latent"], logvar: Float[Tensor, "*batch latent"],
                   generator: torch.Generator | None = None) -> Float[Tensor, "*batch latent"]:
    """``z = μ + exp(½ log σ²) ⊙ ε``, ``ε ~ N(0, I)``: a sample that gradients flow through to ``μ`` and ``σ``."""
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar should have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mu: Float[Tensor, "*batch latent"], logvar: Float[Tensor, "*batch latent"]) -> Float[Tensor, "*batch"]:
    """``KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²)``, summed over the latent axis."""
    if mu.shape != logvar.shape or mu.ndim == 0:
        raise ValueError(f"mu and logvar should have the same shape (*batch, latent), got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)


def vae_loss(x: Tensor, x_hat: Tensor, mu: Tensor, logvar: Tensor, beta: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """``(total, reconstruction, kl)``, each a mean over the batch; reconstruction is binary cross-entropy summed over pixels."""
    if x.shape != x_hat.shape:
        raise ValueError(f"image and reconstruction shapes differ: {tuple(x.shape)} vs {tuple(x_hat.shape)}")
    if x.ndim < 1 or x.numel() == 0 or mu.numel() == 0:
        raise ValueError(f"vae_loss needs a non-empty batch of shape (batch, pixels), got {tuple(x.shape)} and mu {tuple(mu.shape)}")
    if not ((x_hat >= 0) & (x_hat <= 1)).all() or not ((x >= 0) & (x <= 1)).all():
        raise ValueError("x and x_hat should be probabilities in [0, 1] (binary cross-entropy); NaN is not allowed")
    recon = nn.functional.binary_cross_entropy(x_hat, x, reduction="none").sum(-1).mean()
    kl = kl_to_standard_normal(mu, logvar).mean()
    return recon + beta * kl, recon, kl


def train_autoencoder(model: Autoencoder | VAE, x: np.ndarray, *, epochs: int, batch_size: int = 64, lr: float = 1e-3,
                      beta: float = 1.0, seed: int = 0) -> list[dict[str, float]]:
    """Adam on the reconstruction loss (plus β·KL for a VAE); one history row per epoch."""
    from mechlearn.optim import Adam

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = Adam(model.parameters(), lr=lr)
    xt = torch.tensor(x, dtype=torch.float32)
    history = []
    for epoch in range(epochs):
        totals = np.zeros(3)
        n = 0
        for idx in minibatch_indices(len(x), batch_size, rng):
            batch = xt[idx]
            if isinstance(model, VAE):
                x_hat, mu, logvar = model(batch, gen)
                loss, recon, kl = vae_loss(batch, x_hat, mu, logvar, beta)
            else:
                x_hat, _ = model(batch)
                loss = recon = nn.functional.binary_cross_entropy(x_hat, batch, reduction="none").sum(-1).mean()
                kl = torch.zeros(())
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals += np.array([loss.item(), recon.item(), kl.item()]) * len(idx)
            n += len(idx)
        history.append({"epoch": float(epoch), "loss": totals[0] / n, "reconstruction": totals[1] / n, "kl": totals[2] / n})
    return history
