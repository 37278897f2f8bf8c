"""SAEs on a language model's residual stream: activations, splicing, CE loss recovered, recipes.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
