"""Figures for the toy models: WᵀW per instance, features in 2-D, norms and superposition, dimensionality.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
