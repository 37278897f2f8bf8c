"""Part I, optimisers: SGD and momentum, RMSprop, Adam, AdamW, and learning-rate schedules (ARENA 0.3).

They work on torch tensors with the same interface as ``torch.optim`` (parameter groups,
``zero_grad``, ``step``), and after any number of steps give the same parameters as it, in
float64, to a tight tolerance (see the tests). Importing this subpackage imports torch.
"""

from mechlearn._optional import require

require("torch", "mechlearn.optim")  # before the submodules, so a missing torch names its extra

from mechlearn.optim.adaptive import Adam, AdamW, RMSprop
from mechlearn.optim.base import Optimizer
from mechlearn.optim.landscapes import rosenbrock, trajectory
from mechlearn.optim.schedules import CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, StepLR, warmup_cosine
from mechlearn.optim.sgd import SGD
from mechlearn.optim.training import accuracy, mlp, train_classifier

__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "LRScheduler",
    "LambdaLR",
    "StepLR",
    "CosineAnnealingLR",
    "LinearLR",
    "warmup_cosine",
    "rosenbrock",
    "trajectory",
    "mlp",
    "train_classifier",
    "accuracy",
]
