"""Steering and ablating SAE latents; attribution patching over latents.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
