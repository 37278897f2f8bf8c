"""The toy model of superposition ReLU(WᵀWx + b), the neuron model, sparse synthetic features and the trainer, with an instance axis.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
