"""The gated SAE (Rajamanoharan et al., 2024a).

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
