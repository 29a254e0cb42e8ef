"""What the readers of input formats share (openline.core.formats, and openline.core.geojson
and openline.core.sites, which it reads GeoJSON and CSV files with): `FormatError`, the limits
each volume is validated against, and the readers of one field, whose errors name the file,
the volume and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openline.core.clock import parse_rfc3339
from openline.core.volumes import Volume, VolumeError, validate


class FormatError(ValueError):
    """The input is not one of the formats, or describes an invalid volume. The message
    names the file, the volume (or feature, or CSV line) and the field or vertex."""


@dataclass(frozen=True)
class _Limits:
    now: int
    overrides: Mapping[str, Any]  # horizon_s / max_area_km2 when the caller set them


def _validated(volume: Volume, limits: _Limits, *, open_ended: bool, geojson: bool = False) -> Volume:
    try:
        validate(volume, now=limits.now, open_ended=open_ended, **limits.overrides)
    except VolumeError as exc:
        message = str(exc)
        if geojson and "latitude" in message:
            message += " (GeoJSON positions are [longitude, latitude])"
        raise FormatError(message) from None
    return volume


def _prefix(where: str, field: str) -> str:
    return f"{where}: {field}" if field else where


def _obj(value: Any, where: str, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"{_prefix(where, field)}: expected an object, got {_show(value)}")
    return value


def _fields(
    value: Any,
    allowed: tuple[str, ...],
    where: str,
    field: str,
    what: str,
    *,
    listed: str = "",
    hint: str = "",
) -> Mapping[str, Any]:
    """`value` as an object of no fields but `allowed`: a misspelt or misplaced field is
    refused, naming it and what `what` has (`listed`, or the allowed fields), not silently
    ignored."""
    obj = _obj(value, where, field)
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        shown = ", ".join(_show(key) for key in unknown[:3])
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise FormatError(
            f"{_prefix(where, field)}: unknown field{'s' if len(unknown) > 1 else ''} {shown}{more} "
            f"({what} has {listed or ', '.join(allowed)}){hint}"
        )
    return obj


def _list(value: Any, where: str, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise FormatError(f"{_prefix(where, field)}: expected a list, got {_show(value)}")
    return value


def _get(obj: Mapping[str, Any], key: str, where: str, field: str) -> Any:
    if obj.get(key) is None:
        raise FormatError(f"{where}: {f'{field}.{key}' if field else key}: missing")
    return obj[key]


def _number(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{where}: {field}: expected a number, got {_show(value)}")
    try:
        return float(value)
    except OverflowError:  # a JSON integer of hundreds of digits
        raise FormatError(f"{where}: {field}: {_show(value)} is too large a number") from None


def _time(value: Any, where: str, field: str) -> int:
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        reason = str(exc) if str(exc).startswith("expected") else f"{_show(value)} is not a time: {exc}"
        raise FormatError(f"{where}: {field}: {reason}") from None


def _vertex(field: str, index: int) -> str:
    return f"{field}[{index}] (vertex {index + 1})"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
