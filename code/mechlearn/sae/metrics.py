"""SAE metrics: L0, fraction of variance explained, dead fraction, MMCS.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
