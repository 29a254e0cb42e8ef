"""Checks shared by several commands' options, where typer's own types let a bad value
through."""

from __future__ import annotations

import math

import typer


def finite(value: float | None) -> float | None:
    """A number option (a margin in metres): `inf` and `nan` parse as floats and pass a
    minimum, but are not numbers anyone can mean; refused as a usage error (exit 2)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"expected a finite number, got {value}")
    return value
