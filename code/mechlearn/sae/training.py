"""The shared SAE training loop, dead-latent tracking and resampling.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
