"""Part I, generative models: autoencoders and VAEs (Day 19), GANs (Day 21) (ARENA 0.5).

Importing it imports torch.
"""

from mechlearn._optional import require

require("torch", "mechlearn.generative")  # before the submodules, so a missing torch names its extra

from mechlearn.generative import gan
from mechlearn.generative.vae import VAE, Autoencoder, kl_to_standard_normal, reparameterise, train_autoencoder, vae_loss

__all__ = ["gan", "Autoencoder", "VAE", "reparameterise", "kl_to_standard_normal", "vae_loss", "train_autoencoder"]
