"""OpenLine: a deconfliction hotline between stations that do not trust each other."""

from __future__ import annotations

__version__ = "0.1.0"
PROTOCOL = "openline/1"

__all__ = ["PROTOCOL", "__version__"]
