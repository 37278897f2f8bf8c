"""Days 19 and 21: the VAE's pieces against closed forms and torch.distributions; training is deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import unchecked
from mechlearn.data import load_digits_split
from mechlearn.generative import VAE, Autoencoder, kl_to_standard_normal, reparameterise, train_autoencoder, vae_loss
from mechlearn.testing import FLOAT64, Tolerance, assert_close

MONTE_CARLO = Tolerance("MONTE_CARLO", rtol=0.0, atol=0.02)
"""Means of 400,000 samples with unit-scale variance: standard error ~0.002, so 0.02 is ten of them."""


def test_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.randn(5, 3, generator=gen, dtype=torch.float64)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert_close(kl_to_standard_normal(mu, logvar), torch.distributions.kl_divergence(q, p).sum(-1), FLOAT64)


def test_reparameterised_samples_have_the_right_moments_and_gradients():
    mu = torch.tensor([0.7, -1.2], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([-0.5, 0.4], dtype=torch.float64, requires_grad=True)
    z = reparameterise(mu.expand(400_000, 2), logvar.expand(400_000, 2), torch.Generator().manual_seed(1))
    assert_close(z.mean(0), mu.detach(), MONTE_CARLO, name="sample mean")
    assert_close(z.var(0), logvar.detach().exp(), MONTE_CARLO, name="sample variance")
    # E[z²] = μ² + σ², so d/dμ = 2μ and d/dlogvar = σ² (closed form); the sampled gradient must agree.
    (z**2).mean(0).sum().backward()
    assert_close(mu.grad, 2 * mu.detach(), MONTE_CARLO, name="gradient w.r.t. μ")
    assert_close(logvar.grad, logvar.detach().exp(), MONTE_CARLO, name="gradient w.r.t. log σ²")


def test_vae_loss_parts_and_training_are_deterministic():
    x, _, _, _ = load_digits_split(seed=0, dtype=np.float32)

    def run():
        torch.manual_seed(0)
        model = VAE(latent_dim=2)
        return train_autoencoder(model, x[:256], epochs=5, seed=0)

    h1, h2 = run(), run()
    assert h1 == h2
    assert h1[-1]["reconstruction"] < h1[0]["reconstruction"]
    for row in h1:
        assert abs(row["loss"] - row["reconstruction"] - row["kl"]) < 1e-6


def test_autoencoder_trains():
    x, _, _, _ = load_digits_split(seed=0, dtype=np.float32)
    torch.manual_seed(0)
    h = train_autoencoder(Autoencoder(latent_dim=4), x[:256], epochs=10, seed=0)
    assert h[-1]["loss"] < 0.8 * h[0]["loss"] and all(r["kl"] == 0 for r in h)


def test_bad_input_raises_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        unchecked(reparameterise)(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="shapes differ"):
        unchecked(vae_loss)(torch.zeros(2, 4), torch.zeros(2, 3), torch.zeros(2, 1), torch.zeros(2, 1))


def test_gan_pieces_and_training_are_deterministic():
    from mechlearn.generative import gan

    centres = gan.ring_modes()
    rng = np.random.default_rng(0)
    assert gan.mode_coverage(gan.sample_ring(2000, rng), centres)["modes covered"] == 8
    assert gan.mode_coverage(centres[2] + 0.05 * rng.normal(size=(500, 2)), centres)["modes covered"] == 1
    assert gan.mode_coverage(rng.normal(size=(500, 2)) * 10, centres)["high-quality share"] < 0.05

    def run():
        torch.manual_seed(0)
        h = gan.train_gan(gan.Generator(latent_dim=2, hidden=16), gan.Discriminator(pack=2, hidden=16), steps=30,
                          batch_size=32, seed=0, snapshot_every=29)
        return [r["loss_d"] for r in h], h[-1]["samples"]

    (l1, s1), (l2, s2) = run(), run()
    assert l1 == l2 and np.array_equal(s1, s2)
    with pytest.raises(ValueError, match="packs of 2"):
        unchecked(gan.Discriminator.forward)(gan.Discriminator(pack=2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="at least 1"):
        gan.Discriminator(pack=0)
