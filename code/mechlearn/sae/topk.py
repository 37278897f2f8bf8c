"""The TopK SAE (Gao et al., 2024).

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
