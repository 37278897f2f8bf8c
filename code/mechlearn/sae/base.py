"""The `SAE` base class: encoder and decoder, unit-norm decoder columns, and `SAEOutput`.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
