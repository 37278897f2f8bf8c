"""mechlearn: the code behind *100 Days of Mechanistic Learning*.

Every implementation that the daily pages run lives here, one concept per module, each
checked against an independent reference (torch, TransformerLens, gymnasium, scikit-learn or
a closed form) in the test suite.

Subpackages follow the curriculum::

    mechlearn.backprop   Part I   scalar autograd, hand-derived MLP backprop, softmax and friends
    mechlearn.optim      Part I   SGD, RMSprop, Adam(W), learning-rate schedules
    mechlearn.cnn        Part I   convolutions through as_strided, BatchNorm, ResNets
    mechlearn.generative Part I   autoencoders, VAEs, GANs
    mechlearn.gpt        Part II  a GPT from scratch that matches TransformerLens; tokenisers, sampling, hooks
    mechlearn.rl         Part III bandits, tabular RL, DQN, REINFORCE, PPO (checked against Stable-Baselines3), RLHF with LoRA
    mechlearn.testing             finite-difference gradient checks, named tolerances, comparisons
    mechlearn.display             show a function's real source on a page
    mechlearn.logbook             the site's own data: front matter, the plan, the progress grid

Importing ``mechlearn`` has no side effects: it does not print, seed, download or import torch.
"""

from mechlearn.seeding import set_seed

__version__ = "0.1.0"

__all__ = ["set_seed", "__version__"]
