"""(Being written: see `mechlearn.interp` for what this module will hold.)"""

from __future__ import annotations

__all__: list[str] = []
