"""Input formats for volumes: ASTM F3548-21 Volume4D, GeoJSON, a CSV of sites, notice files.

Pure: every function takes text, bytes or decoded JSON that the caller has read, and
returns `Volume`s (openline.core.volumes) or raises `FormatError`. The formats are those of
docs/notices.md, "Input formats":

- ASTM F3548-21 Volume4D with the InterUSS DSS field names, as `{"extents": [Volume4D, ...]}`,
  a bare list `[Volume4D, ...]` or one Volume4D object;
- GeoJSON (RFC 7946): a FeatureCollection (or one Feature) of Polygon, MultiPolygon, Point
  (with `radius_m`) and LineString routes (with `corridor_m`);
- a CSV of protected sites: `name,lat,lon,radius_m[,alt_lower_m,alt_upper_m,time_start,time_end]`
  (headers in any case; `radius` for `radius_m`);
- a notice file: `{"category", "text", "extents", "routes"}`.

A notice file and the ASTM objects hold only the fields they have: an unknown one (a
misspelt `route`, an `amends` put inside the document) is refused, as an unknown CSV column
is, never silently ignored. A GeoJSON feature's properties may hold others (GIS tools add
names and styles).

Each volume is named `"<file> volume <n>"`, numbered from 1 in the order of the file, so
that errors and conflicts say which one; the GeoJSON feature, notice route or site name
follows in parentheses. Every volume passes `volumes.validate` before it is returned.

The GeoJSON reader is openline.core.geojson, with the corridors of its routes in
openline.core.corridors; the CSV reader is openline.core.sites; what they share with this
module (`FormatError`, the field readers) is openline.core.fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from openline.core.corridors import corridor
from openline.core.encoding import parse_json, undecodable
from openline.core.fields import (
    FormatError,
    _fields,
    _get,
    _Limits,
    _list,
    _number,
    _show,
    _time,
    _validated,
    _vertex,
)
from openline.core.geojson import _feature, _geojson
from openline.core.notices import CATEGORIES, OPEN_ENDED
from openline.core.sites import SITE_ALT_LOWER_M, SITE_ALT_UPPER_M, _sites
from openline.core.volumes import FEET, Circle, Polygon, Volume

# `corridor` and the SITE_ALT_* defaults live in openline.core.corridors and .sites, and are
# re-exported where callers have always found them.
__all__ = [
    "SITE_ALT_LOWER_M",
    "SITE_ALT_UPPER_M",
    "FormatError",
    "ParsedNotice",
    "corridor",
    "decode",
    "load",
    "parse",
    "parse_notice",
    "read_volume4d",
]


@dataclass(frozen=True)
class ParsedNotice:
    """What a file announces. `category` is None when the file does not say (ASTM and
    GeoJSON files) and the caller did not either; a CSV of sites is `protected_site`.
    `kind` is the format it was in: `notice`, `astm`, `geojson` or `sites`. `sites` is a
    CSV's site names, one per volume in order, and `rows` how errors name each one's row,
    with its line in the file (`sites.csv volume 2 (School, line 4)`); both are empty for
    the other formats."""

    category: str | None
    text: str
    volumes: tuple[Volume, ...]
    kind: str
    sites: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()


# The fields of each object (ASTM F3548-21 with the InterUSS DSS names; docs/notices.md).
# A document with `removes` is a removal notice, read by core.notices.parse_removal, not
# here: the field is known, so that a removal given here is refused for having no volumes.
_NOTICE: Final = ("category", "text", "extents", "routes", "removes")
_NOTICE_HAS: Final = "category, text, extents, routes; removes for a removal"
_ASTM_FILE_HAS: Final = "extents; a notice file, with a category, has text and routes too"
_VOLUME4D: Final = ("volume", "time_start", "time_end")
_VOLUME3D: Final = ("outline_polygon", "outline_circle", "altitude_lower", "altitude_upper")
_POLYGON: Final = ("vertices",)
_CIRCLE: Final = ("center", "radius")
_RADIUS: Final = ("value", "units")
_POINT: Final = ("lat", "lng")
_ALTITUDE: Final = ("value", "reference", "units")
_TIME: Final = ("value", "format")
# `amends` is said beside the document, not in it: a file that carried it was sent as a
# new notice, unrelated to the one it meant to amend.
_AMENDS_HINT: Final = "; the notice a new version amends is named when it is sent (`notice send --amends ID`)"


# --- entry points ------------------------------------------------------------------------


def load(
    name: str,
    data: bytes,
    *,
    now: int,
    horizon_s: int | None = None,
    max_area_km2: float | None = None,
) -> list[Volume]:
    """The validated volumes of a file of any of the formats, detected by content."""
    return list(parse(name, data, now=now, horizon_s=horizon_s, max_area_km2=max_area_km2).volumes)


def parse(
    name: str,
    data: bytes,
    *,
    now: int,
    category: str | None = None,
    horizon_s: int | None = None,
    max_area_km2: float | None = None,
) -> ParsedNotice:
    """Detect the format by content (`decode`) and parse. `category` is what the caller
    says the file announces: an ASTM or GeoJSON file, which does not say, takes it (a
    `protected_site`'s volumes may then be open-ended); a notice file or a CSV of sites
    (`protected_site`), which says, is refused when it says otherwise."""
    limits = _limits(now, horizon_s, max_area_km2)
    if category is not None and category not in CATEGORIES:
        raise FormatError(f"{name}: category: expected one of {', '.join(CATEGORIES)}, got {_show(category)}")
    kind, content = decode(name, data)
    if kind == "notice":
        parsed = _notice(name, content, limits)
        _agree(name, "a notice file of category", parsed.category, category)
        return parsed
    if kind == "sites":
        _agree(name, "a CSV of sites, all of category", "protected_site", category)
        sites = _sites(name, content, limits)
        names, volumes, rows = zip(*sites, strict=True)
        return ParsedNotice("protected_site", "", tuple(volumes), kind, tuple(names), tuple(rows))
    open_ended = category in OPEN_ENDED
    read = _astm if kind == "astm" else _geojson
    return ParsedNotice(category, "", tuple(read(name, content, limits, open_ended=open_ended)), kind)


def decode(name: str, data: bytes) -> tuple[str, Any]:
    """A file's format, told by content, and its content: `("notice" | "astm" | "geojson",
    the decoded JSON)`, or `("sites", the text)` for anything that is not JSON. JSON with
    `category` is a notice file; JSON with `extents`, a list, or an object with `volume` is
    ASTM Volume4D; JSON with a GeoJSON `type` is GeoJSON. Raises FormatError for a file
    that is none of them (empty, not UTF-8, JSON of another shape)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{name}: {undecodable(exc)}") from None
    if not text.strip():
        raise FormatError(
            f"{name}: an empty file: expected a notice, ASTM or GeoJSON file, or a CSV of sites"
        )
    if text.lstrip()[:1] not in ("{", "["):
        try:  # null, 42, "text": JSON, but no document of ours; a CSV fails at its first line
            scalar = parse_json(text)
        except ValueError:
            return "sites", text
        raise FormatError(
            f"{name}: JSON, but {_show(scalar)}: expected a notice, ASTM or GeoJSON object, or a CSV of sites"
        )
    try:
        obj = parse_json(text)
    except ValueError as exc:
        raise FormatError(f"{name}: not valid JSON: {exc}") from None
    if isinstance(obj, dict) and "category" in obj:
        return "notice", obj
    if isinstance(obj, list) or (isinstance(obj, dict) and ("extents" in obj or "volume" in obj)):
        return "astm", obj
    if isinstance(obj, dict) and obj.get("type") in ("FeatureCollection", "Feature"):
        return "geojson", obj
    if isinstance(obj, dict) and "type" in obj:
        raise FormatError(
            f"{name}: GeoJSON of type {obj['type']!r:.40}: expected a FeatureCollection or a Feature "
            "(the altitude band and time window are properties of a feature)"
        )
    raise FormatError(
        f"{name}: JSON, but not a notice (no 'category'), ASTM Volume4D (no 'extents') "
        "or GeoJSON (no 'type': 'FeatureCollection')"
    )


def parse_notice(
    name: str,
    obj: Any,
    *,
    now: int,
    horizon_s: int | None = None,
    max_area_km2: float | None = None,
) -> ParsedNotice:
    """A notice file already decoded from JSON: `{"category", "text", "extents", "routes"}`."""
    return _notice(name, obj, _limits(now, horizon_s, max_area_km2))


# --- ASTM F3548-21 Volume4D ----------------------------------------------------------------


def _astm(name: str, obj: Any, limits: _Limits, *, open_ended: bool = False) -> list[Volume]:
    if isinstance(obj, dict) and "extents" in obj:
        wrapper = _fields(obj, ("extents",), name, "", "an ASTM Volume4D file", listed=_ASTM_FILE_HAS)
        items = _list(wrapper["extents"], name, "extents")
    elif isinstance(obj, dict):
        items = [obj]
    else:
        items = _list(obj, name, "")
    if not items:
        raise FormatError(f"{name}: extents: empty; expected at least one Volume4D")
    return [
        _volume4d(item, f"{name} volume {n}", limits, open_ended=open_ended)
        for n, item in enumerate(items, 1)
    ]


def read_volume4d(obj: Any, name: str) -> Volume:
    """One Volume4D as this station stored it after validating it (an open end allowed),
    read back without validating it again: for the conflict check, which re-reads every
    candidate. Raises FormatError on a malformed one, as `parse` does."""
    return _read_volume4d(obj, name, open_ended=True)


def _volume4d(obj: Any, where: str, limits: _Limits, *, open_ended: bool) -> Volume:
    return _validated(_read_volume4d(obj, where, open_ended=open_ended), limits, open_ended=open_ended)


def _read_volume4d(obj: Any, where: str, *, open_ended: bool) -> Volume:
    v4 = _fields(obj, _VOLUME4D, where, "", "a Volume4D")
    v3 = _fields(_get(v4, "volume", where, ""), _VOLUME3D, where, "volume", "a Volume3D")
    has_polygon = v3.get("outline_polygon") is not None
    has_circle = v3.get("outline_circle") is not None
    if has_polygon == has_circle:
        raise FormatError(
            f"{where}: volume: expected exactly one of outline_polygon and outline_circle, got "
            + ("both" if has_polygon else "neither")
        )
    outline: Polygon | Circle
    if has_polygon:
        polygon = _fields(v3["outline_polygon"], _POLYGON, where, "volume.outline_polygon", "a polygon")
        field = "volume.outline_polygon.vertices"
        vertices = _list(_get(polygon, "vertices", where, "volume.outline_polygon"), where, field)
        outline = Polygon(tuple(_lat_lng(v, where, _vertex(field, i)) for i, v in enumerate(vertices)))
    else:
        field = "volume.outline_circle"
        circle = _fields(v3["outline_circle"], _CIRCLE, where, field, "a circle")
        lat, lng = _lat_lng(_get(circle, "center", where, field), where, f"{field}.center")
        radius = _fields(_get(circle, "radius", where, field), _RADIUS, where, f"{field}.radius", "a radius")
        units = _get(radius, "units", where, f"{field}.radius")
        if units != "M":
            raise FormatError(f"{where}: {field}.radius.units: expected 'M', got {_show(units)}")
        outline = Circle(lat, lng, _number(_get(radius, "value", where, f"{field}.radius"), where, field))
    lower = _altitude(_get(v3, "altitude_lower", where, "volume"), where, "volume.altitude_lower")
    upper = _altitude(_get(v3, "altitude_upper", where, "volume"), where, "volume.altitude_upper")
    start = _astm_time(_get(v4, "time_start", where, ""), where, "time_start")
    end = None
    if v4.get("time_end") is not None:
        end = _astm_time(v4["time_end"], where, "time_end")
    elif not open_ended:
        raise FormatError(f"{where}: time_end: missing (only a protected site may be open-ended)")
    return Volume(outline, lower, upper, start, end, where)


def _altitude(value: Any, where: str, field: str) -> float:
    alt = _fields(value, _ALTITUDE, where, field, "an altitude")
    reference = _get(alt, "reference", where, field)
    if reference != "W84":
        raise FormatError(
            f"{where}: {field}.reference: expected 'W84' (metres above the WGS84 ellipsoid), "
            f"got {_show(reference)}"
        )
    units = _get(alt, "units", where, field)
    if units not in ("M", "FT"):
        raise FormatError(f"{where}: {field}.units: expected 'M' or 'FT', got {_show(units)}")
    metres = _number(_get(alt, "value", where, field), where, f"{field}.value")
    return metres * FEET if units == "FT" else metres


def _astm_time(value: Any, where: str, field: str) -> int:
    t = _fields(value, _TIME, where, field, "a time")
    fmt = t.get("format", "RFC3339")
    if fmt != "RFC3339":
        raise FormatError(f"{where}: {field}.format: expected 'RFC3339', got {_show(fmt)}")
    return _time(_get(t, "value", where, field), where, f"{field}.value")


# --- notice files ----------------------------------------------------------------------------


def _notice(name: str, obj: Any, limits: _Limits) -> ParsedNotice:
    hint = _AMENDS_HINT if isinstance(obj, dict) and "amends" in obj else ""
    notice = _fields(obj, _NOTICE, name, "", "a notice file", listed=_NOTICE_HAS, hint=hint)
    category = _get(notice, "category", name, "")
    if category not in CATEGORIES:
        raise FormatError(f"{name}: category: expected one of {', '.join(CATEGORIES)}, got {_show(category)}")
    text = _get(notice, "text", name, "")
    if not isinstance(text, str):
        raise FormatError(f"{name}: text: expected a string, got {_show(text)}")
    open_ended = category in OPEN_ENDED
    extents = _list(notice.get("extents", []), name, "extents")
    routes = _list(notice.get("routes", []), name, "routes")
    if not extents and not routes:
        raise FormatError(f"{name}: a notice needs at least one volume in extents or routes; both are empty")
    volumes = [
        _volume4d(item, f"{name} volume {n}", limits, open_ended=open_ended)
        for n, item in enumerate(extents, 1)
    ]
    for k, route in enumerate(routes, 1):
        volumes += _feature(name, k, len(volumes) + 1, route, limits, open_ended=open_ended, label="route")
    return ParsedNotice(category, text, tuple(volumes), "notice")


def _agree(name: str, says: str, said: str | None, given: str | None) -> None:
    if given is not None and said != given:
        raise FormatError(f"{name}: {says} {_show(said)}, not {_show(given)}")


# --- small parsers ---------------------------------------------------------------------------


def _limits(now: int, horizon_s: int | None, max_area_km2: float | None) -> _Limits:
    kwargs: dict[str, Any] = {}
    if horizon_s is not None:
        kwargs["horizon_s"] = horizon_s
    if max_area_km2 is not None:
        kwargs["max_area_km2"] = max_area_km2
    return _Limits(now, kwargs)


def _lat_lng(value: Any, where: str, field: str) -> tuple[float, float]:
    point = _fields(value, _POINT, where, field, "a point")
    lat = _number(_get(point, "lat", where, field), where, f"{field}.lat")
    lng = _number(_get(point, "lng", where, field), where, f"{field}.lng")
    return lat, lng
