"""Feature norms, superposition (interference), feature dimensionality and neuron monosemanticity.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
