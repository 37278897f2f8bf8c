"""Part I, backpropagation: a scalar autograd, an MLP differentiated by hand, and softmax done right.

* `~mechlearn.backprop.value` — ``Value``, the chain rule on a graph of scalars (Day 1).
* `~mechlearn.backprop.manual_mlp` — ``ManualMLP``, backprop derived with matrix calculus (Day 2).
* `~mechlearn.backprop.softmax` — stable softmax, log-sum-exp and cross-entropy with derived backward (Day 3).
"""

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
]
