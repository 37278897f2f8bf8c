"""Part I, backpropagation: from a scalar autograd to a tensor engine that trains an MLP.

* `~mechlearn.backprop.value` — ``Value``, the chain rule on a graph of scalars (Day 1).
* `~mechlearn.backprop.manual_mlp` — ``ManualMLP``, backprop derived with matrix calculus (Day 2).
* `~mechlearn.backprop.softmax` — stable softmax, log-sum-exp and cross-entropy with derived backward (Day 3).
* `~mechlearn.backprop.tensor` — ``Tensor``, recipes, ``unbroadcast``, topological sort, backprop (Days 4–5).
* `~mechlearn.backprop.functional` — the operations and their backward functions (Day 6).
* `~mechlearn.backprop.nn` — ``Module``, ``Parameter``, ``Linear``, ``MLP``, cross-entropy, ``SGD`` (Day 7).
* `~mechlearn.backprop.init` — Xavier and Kaiming initialisation, per-layer gradient statistics (Day 8).
"""

from mechlearn.backprop import functional, init, nn
from mechlearn.backprop.manual_mlp import ManualMLP, mse_loss, mse_loss_backward, train_regression
from mechlearn.backprop.softmax import (
    cross_entropy,
    cross_entropy_backward,
    log_softmax,
    logsumexp,
    softmax,
    softmax_backward,
    softmax_naive,
)
from mechlearn.backprop.tensor import Recipe, Tensor, backprop, no_grad, topological_sort, unbroadcast, wrap_forward_fn
from mechlearn.backprop.value import Value, topological_order

__all__ = [
    "Value",
    "topological_order",
    "ManualMLP",
    "mse_loss",
    "mse_loss_backward",
    "train_regression",
    "logsumexp",
    "softmax",
    "softmax_naive",
    "log_softmax",
    "softmax_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "Tensor",
    "Recipe",
    "backprop",
    "wrap_forward_fn",
    "no_grad",
    "topological_sort",
    "unbroadcast",
    "functional",
    "init",
    "nn",
]
