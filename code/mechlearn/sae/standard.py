"""The standard SAE: ReLU latents with an L1 penalty (Bricken et al., 2023).

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
