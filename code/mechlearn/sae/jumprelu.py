"""The JumpReLU SAE and its straight-through estimator (Rajamanoharan et al., 2024b).

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
