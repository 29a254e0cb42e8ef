"""Checks shared by several commands' options, where typer's own types let a bad value
through."""

from __future__ import annotations

import math
import re

import typer


def finite(value: float | None) -> float | None:
    """A number option (a margin in metres): `inf` and `nan` parse as floats and pass a
    minimum, but are not numbers anyone can mean; refused as a usage error (exit 2)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"expected a finite number, got {value}")
    return value


_SPACED = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2})")


def time_text(value: str | None) -> str | None:
    """A time option as the station takes it (RFC 3339), from the spelling our own tables
    print too: `2026-11-28 06:38:00Z`, with a space for the T, as RFC 3339 allows for
    readability. Anything else goes as typed, for the station to refuse with its reason."""
    return None if value is None else _SPACED.sub(r"\1T\2", value.strip(), count=1)
