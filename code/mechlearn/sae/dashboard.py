"""Latent dashboards as self-contained HTML.

Being written (issue 11).
"""

from __future__ import annotations

__all__: list[str] = []
