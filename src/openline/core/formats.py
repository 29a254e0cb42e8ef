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

A GeoJSON polygon's edges are straight lines in longitude and latitude (RFC 7946 §3.1.1), a
volume's are geodesics: vertices are added along each edge until the geodesics through them
stray from it by at most 1 cm (`_as_drawn`). ASTM Volume4D edges are geodesics already.

A route is turned into a corridor geodesically: it is cut into pieces of equal length
along the ellipsoid, at most `ROUTE_PIECE_M` each, and each piece, with points every
kilometre along its geodesics, is buffered in the azimuthal equidistant projection
centred half-way along it (`volumes.projection`, then shapely), simplified and projected
back. Distances from that centre are true and across it never shrunk (`volumes.stretch`
bounds how far they stretch), so a buffer widened by the stretch, and by how far the
simplification, the geodesic edges (`volumes.chord_error`) and rounding could move the
outline in, holds the whole corridor: never less than asked for, and at most 0.1% of the
width plus 3 cm more (docs/notices.md). Round ends and bends are polygons whose sides
touch the circle, so that their corners, not their sides, stray: outward.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import shapely
import shapely.affinity
from numpy.typing import NDArray

from openline.core.clock import parse_rfc3339
from openline.core.encoding import parse_json, undecodable
from openline.core.notices import CATEGORIES, OPEN_ENDED
from openline.core.volumes import (
    FEET,
    MAX_AREA_KM2,
    WGS84,
    Circle,
    FloatArray,
    Polygon,
    Volume,
    VolumeError,
    chord_error,
    projection,
    stretch,
    validate,
)

# A protected site given without an altitude band is protected from below any terrain
# (the Dead Sea shore is at -430 m) to above any aircraft that could strike it.
SITE_ALT_LOWER_M: Final = -500.0
SITE_ALT_UPPER_M: Final = 20_000.0

ROUTE_PIECE_M: Final = 50_000.0  # the longest stretch of a route in one volume
# The route is drawn through points at most this far apart along its geodesics. In the
# projection they turn by under 1e-6 radians there, so the buffer's joins at them lie under
# a micrometre inside their arcs (covered by `_SLACK_M`).
_DENSIFY_M: Final = 1_000.0
# Round ends and bends: 96-gons whose sides touch the circle, their corners 0.054% beyond it.
_QUAD_SEGS: Final = 24
_ROUND_OUT: Final = 1 / math.cos(math.pi / (4 * _QUAD_SEGS))
_SIMPLIFY_M: Final = 0.002  # the most shapely's simplification moves the outline
# The most a geodesic edge strays from its chord in the projection: this, or this fraction of
# the half width if more (few edges of a wide corridor are long enough to need splitting).
_EDGE_M: Final = 0.01
_EDGE_FRACTION: Final = 1e-5
# Vertices are written to 8 decimal places of a degree (they move by 0.8 mm at most): a
# thousand fit in one notice.
_DEGREE_DIGITS: Final = 8
_SLACK_M: Final = 0.002  # the joins above, the rounding of vertices, and floating point
_MAX_SPLITS: Final = 8  # halvings of a piece whose corridor would enclose a hole

# RFC 7946 §3.1.1: the edge between two positions of a GeoJSON polygon is straight in
# longitude and latitude (as QGIS draws it), not a geodesic, which bows poleward from it
# (440 m half-way along 2° of the parallel at 46°N). Vertices are added along each edge so
# that the geodesics through them stray from it by at most this (the 1 cm rule, GEN0500).
_DRAWN_M: Final = 0.01
# Each piece's middle is brought this near its geodesic; the rest of the centimetre is for
# rounding the added vertices (0.8 mm) and the terms beyond the parabola (~1e-4 of it).
_DRAWN_PIECE_M: Final = 0.008
_DRAWN_ROUNDS: Final = 8
# A polygon that takes more to follow is refused: it could never be sent (a notice holds
# about 1,000 vertices), and a crafted file could ask for billions.
_MAX_DRAWN_VERTICES: Final = 100_000

SITE_COLUMNS: Final = ("name", "lat", "lon", "radius_m")
SITE_OPTIONAL_COLUMNS: Final = ("alt_lower_m", "alt_upper_m", "time_start", "time_end")
# Other spellings of a column, as spreadsheets head them: `radius` is in metres, as the
# issue's list of sites has it (name, lat, lon, radius).
SITE_COLUMN_ALIASES: Final = {"radius": "radius_m"}
_SITE_SHOWN: Final = 60  # the characters of a site's name that name its volume


class FormatError(ValueError):
    """The input is not one of the formats, or describes an invalid volume. The message
    names the file, the volume (or feature, or CSV line) and the field or vertex."""


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


@dataclass(frozen=True)
class _Limits:
    now: int
    overrides: Mapping[str, Any]  # horizon_s / max_area_km2 when the caller set them


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


def corridor(
    route: Sequence[tuple[float, float]], corridor_m: float, *, piece_m: float = ROUTE_PIECE_M
) -> list[Polygon]:
    """The corridor of full width `corridor_m` along a route of (lat, lng) points, as
    outlines of at most `piece_m` of route each. The route's ends are round; a piece that
    continues another starts flat, inside the round end of the one before. Together they
    cover every point within `corridor_m / 2` of the route, and at most 0.1% of the width
    plus 3 cm more."""
    pieces = _cut(list(route), piece_m)
    # No point of a piece is farther than half its length from its centre, nor any point of
    # its outline than that and the widened half width: under 1.01 times the half width
    # while the stretch is under 1.004, 1,000 km from the centre (a corridor's round end
    # alone is at most MAX_AREA_KM2, 282 km in radius). One bound for all pieces widens them
    # alike, as the hand-over from one to the next needs (`_outline`).
    reach = _length(route) / len(pieces) / 2 + 1.01 * corridor_m / 2 + 1.0
    return [
        outline
        for n, piece in enumerate(pieces)
        for outline in _buffer_piece(piece, corridor_m / 2, reach, _MAX_SPLITS, round_start=n == 0)
    ]


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


# --- GeoJSON (RFC 7946) ----------------------------------------------------------------------


def _geojson(name: str, obj: Any, limits: _Limits, *, open_ended: bool = False) -> list[Volume]:
    root = _obj(obj, name, "")
    if root.get("type") == "Feature":
        features = [root]
    elif root.get("type") == "FeatureCollection":
        features = _list(_get(root, "features", name, ""), name, "features")
    else:
        raise FormatError(
            f"{name}: type: expected 'FeatureCollection' or 'Feature', got {_show(root.get('type'))}"
        )
    if not features:
        raise FormatError(f"{name}: features: empty; expected at least one feature")
    volumes: list[Volume] = []
    for k, feature in enumerate(features, 1):
        volumes += _feature(name, k, len(volumes) + 1, feature, limits, open_ended=open_ended)
    return volumes


def _feature(
    name: str, k: int, n: int, obj: Any, limits: _Limits, *, open_ended: bool, label: str = "feature"
) -> list[Volume]:
    where = f"{name} volume {n} ({label} {k})"
    feature = _obj(obj, where, "")
    if feature.get("type") != "Feature":
        raise FormatError(f"{where}: type: expected 'Feature', got {_show(feature.get('type'))}")
    geometry = _obj(_get(feature, "geometry", where, ""), where, "geometry")
    props = _obj(_get(feature, "properties", where, ""), where, "properties")
    kind = geometry.get("type")
    if label == "route" and kind != "LineString":
        raise FormatError(f"{where}: geometry.type: a route is a 'LineString', got {_show(kind)}")
    # Told by its type before its coordinates: a GeometryCollection has none, but `geometries`.
    if kind not in ("Polygon", "MultiPolygon", "Point", "LineString"):
        raise FormatError(
            f"{where}: geometry.type: expected Polygon, MultiPolygon, Point or LineString, got {_show(kind)}"
        )
    lower, upper = _band(props, where)
    start = _time(_get(props, "time_start", where, "properties"), where, "properties.time_start")
    end = None
    if props.get("time_end") is not None:
        end = _time(props["time_end"], where, "properties.time_end")
    elif not open_ended:
        raise FormatError(f"{where}: properties.time_end: missing (only a protected site may be open-ended)")
    coordinates = _get(geometry, "coordinates", where, "geometry")

    outlines: list[Polygon | Circle]
    if kind == "Polygon":
        outlines = [_ring_polygon(coordinates, where, "geometry.coordinates")]
    elif kind == "MultiPolygon":
        parts = _list(coordinates, where, "geometry.coordinates")
        if not parts:
            raise FormatError(f"{where}: geometry.coordinates: empty; expected at least one polygon")
        outlines = [
            _ring_polygon(p, _part(name, n, i, label, k), f"geometry.coordinates[{i}]")
            for i, p in enumerate(parts)
        ]
    elif kind == "Point":
        lat, lng = _position(coordinates, where, "geometry.coordinates")
        radius = _number(_get(props, "radius_m", where, "properties"), where, "properties.radius_m")
        outlines = [Circle(lat, lng, radius)]
    else:
        outlines = list(_route(coordinates, props, where, limits))
    volumes = []
    for i, outline in enumerate(outlines):
        volume = Volume(outline, lower, upper, start, end, _part(name, n, i, label, k))
        if kind in ("Polygon", "MultiPolygon"):
            volumes.append(_drawn_polygon(volume, limits, open_ended=open_ended))
        else:
            volumes.append(_validated(volume, limits, open_ended=open_ended, geojson=True))
    return volumes


def _part(name: str, n: int, i: int, label: str, k: int) -> str:
    """The name of part i of feature (or route) k, whose first part is volume n: each part
    of a MultiPolygon, and each piece of a corridor, is a volume of its own."""
    return f"{name} volume {n + i} ({label} {k})"


def _ring_polygon(value: Any, where: str, field: str) -> Polygon:
    rings = _list(value, where, field)
    if not rings:
        raise FormatError(f"{where}: {field}: empty; expected the exterior ring")
    if len(rings) > 1:
        raise FormatError(
            f"{where}: {field}: the polygon has {len(rings) - 1} hole(s); a volume's outline has "
            "none (split the area into polygons without holes)"
        )
    ring = _list(rings[0], where, f"{field}[0]")
    points = [_position(p, where, _vertex(f"{field}[0]", i)) for i, p in enumerate(ring)]
    # RFC 7946 §3.1.6: a linear ring is closed; a Volume4D polygon is not.
    if len(points) < 4 or points[0] != points[-1]:
        raise FormatError(
            f"{where}: {field}[0]: a GeoJSON linear ring has at least 4 positions and ends where "
            f"it starts (RFC 7946 §3.1.6); got {len(points)} position(s)"
            + ("" if len(points) < 4 else f" ending at {list(ring[-1])} instead of {list(ring[0])}")
        )
    return Polygon(tuple(points[:-1]))


def _drawn_polygon(volume: Volume, limits: _Limits, *, open_ended: bool) -> Volume:
    """A GeoJSON polygon's volume with its edges as the file draws them (`_as_drawn`),
    validated; an error names the file's vertices and edges, not the added ones."""
    assert isinstance(volume.outline, Polygon)
    lats, lngs = np.array(volume.outline.vertices, dtype=np.float64).T
    if not (np.all(np.abs(lats) <= 90) and np.all(np.abs(lngs) <= 180)):
        _validated(volume, limits, open_ended=open_ended, geojson=True)  # refuses it, naming the vertex
    try:
        drawn, own = _as_drawn(volume.outline)
    except ValueError as exc:
        raise FormatError(f"{volume.name}: {exc}") from None
    drawn_volume = dataclasses.replace(volume, outline=drawn)
    try:
        return _validated(drawn_volume, limits, open_ended=open_ended, geojson=True)
    except FormatError as exc:
        raise FormatError(_renumbered(str(exc), volume.name, own)) from None


def _renumbered(message: str, where: str, own: NDArray[np.int64]) -> str:
    """A validation message about a drawn polygon, naming the file's vertices and edges: a
    vertex of the drawn ring lies on the file's edge from vertex `start`, and so does an edge."""

    def start(drawn: str) -> int:
        return int(np.searchsorted(own, int(drawn) - 1, side="right"))

    if not message.startswith(where):
        return message
    rest = message[len(where) :]
    rest = re.sub(r"\bvertex (\d+)", lambda m: f"vertex {start(m[1])}", rest)
    rest = re.sub(r"\bedge (\d+)-\d+", lambda m: f"edge {start(m[1])}-{start(m[1]) % len(own) + 1}", rest)
    return where + rest


def _as_drawn(polygon: Polygon) -> tuple[Polygon, NDArray[np.int64]]:
    """The polygon with vertices added along each edge, evenly in longitude and latitude, so
    that the geodesics joining them stray at most `_DRAWN_M` from the edge RFC 7946 §3.1.1
    draws; and where the polygon's own vertices are in it. Raises ValueError when that takes
    more than `_MAX_DRAWN_VERTICES`."""
    lat, lng = np.array(polygon.vertices, dtype=np.float64).T
    dlat, dlng = np.roll(lat, -1) - lat, np.roll(lng, -1) - lng
    # An edge across the antimeridian is taken the short way, as a geodesic edge is (RFC 7946
    # §3.1.9 asks writers to cut such a polygon there, which leaves edges along it, meridians).
    dlng = np.where(dlng > 180, dlng - 360, np.where(dlng < -180, dlng + 360, dlng))
    pieces = np.ones(len(lat), dtype=np.int64)
    for _ in range(_DRAWN_ROUNDS):
        worst = _worst_piece(lat, lng, dlat, dlng, pieces)
        over = worst > _DRAWN_PIECE_M
        if not over.any():
            break
        # A piece strays from its geodesic as its length squared.
        grown = np.ceil(pieces * np.sqrt(worst / _DRAWN_PIECE_M) * 1.05)
        pieces = np.where(over, np.minimum(grown, _MAX_DRAWN_VERTICES + 1), pieces).astype(np.int64)
        if pieces.sum() > _MAX_DRAWN_VERTICES:
            raise ValueError(
                f"followed to within {_DRAWN_M * 100:g} cm of its edges as GeoJSON draws them (straight in "
                f"longitude and latitude, RFC 7946 §3.1.1), the polygon needs more than "
                f"{_MAX_DRAWN_VERTICES:,} vertices: split it into smaller polygons"
            )
    else:  # pragma: no cover - the halving above converges in two or three rounds
        raise ValueError("its edges could not be followed as GeoJSON draws them: split it")
    edge, t = _piece_starts(pieces)
    lats, lngs = lat[edge] + t * dlat[edge], lng[edge] + t * dlng[edge]
    lngs = np.where(lngs > 180, lngs - 360, np.where(lngs < -180, lngs + 360, lngs))
    own = np.cumsum(pieces) - pieces
    added = np.ones(len(t), dtype=bool)
    added[own] = False
    # The added vertices to 8 decimal places (0.8 mm at most), as a corridor's are; the file's as given.
    lats[added] = np.round(lats[added], _DEGREE_DIGITS)
    lngs[added] = np.round(lngs[added], _DEGREE_DIGITS)
    return Polygon(tuple(zip(lats.tolist(), lngs.tolist(), strict=True))), own


def _piece_starts(pieces: NDArray[np.int64]) -> tuple[NDArray[np.int64], FloatArray]:
    """For each piece of each edge, in order: its edge, and how far along the edge it starts (0 to 1)."""
    edge = np.repeat(np.arange(len(pieces)), pieces)
    k = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    return edge, k / pieces[edge]


def _worst_piece(
    lat: FloatArray, lng: FloatArray, dlat: FloatArray, dlng: FloatArray, pieces: NDArray[np.int64]
) -> FloatArray:
    """For each edge cut into `pieces` even lon/lat pieces, the most any piece's lon/lat middle
    lies off the geodesic between the piece's ends, in metres. A short piece's geodesic strays
    from it as a parabola, most at the middle."""
    edge, t = _piece_starts(pieces)
    step = 1 / pieces[edge]
    a_lat, a_lng = lat[edge] + t * dlat[edge], lng[edge] + t * dlng[edge]
    b_lat, b_lng = a_lat + step * dlat[edge], a_lng + step * dlng[edge]
    m_lat, m_lng = a_lat + step / 2 * dlat[edge], a_lng + step / 2 * dlng[edge]
    to_b, _, _ = WGS84.inv(a_lng, a_lat, b_lng, b_lat)
    to_m, _, metres = WGS84.inv(a_lng, a_lat, m_lng, m_lat)
    # The distance across the geodesic, from the azimuths at its start: exact to (L / R)^2.
    off = np.abs(np.asarray(metres) * np.sin(np.radians(np.asarray(to_m) - np.asarray(to_b))))
    worst: FloatArray = np.maximum.reduceat(off, np.cumsum(pieces) - pieces)
    return worst


def _route(value: Any, props: Mapping[str, Any], where: str, limits: _Limits) -> list[Polygon]:
    field = "geometry.coordinates"
    points = [_position(p, where, _vertex(field, i)) for i, p in enumerate(_list(value, where, field))]
    width = _number(_get(props, "corridor_m", where, "properties"), where, "properties.corridor_m")
    if width <= 0:
        raise FormatError(f"{where}: properties.corridor_m: expected a width above 0 metres, got {width:g}")
    # Each volume of a corridor holds a round end at least: refused before it is built, since
    # building one of a million kilometres took a minute and gigabytes.
    end_km2 = math.pi * (width / 2) ** 2 / 1e6
    most = float(limits.overrides.get("max_area_km2", MAX_AREA_KM2))
    if end_km2 > most:
        raise FormatError(
            f"{where}: properties.corridor_m: a corridor {width:g} m wide covers {end_km2:,.1f} km² "
            f"at each end alone, above the limit of {most:,.1f} km²"
        )
    if len(points) < 2:
        raise FormatError(f"{where}: {field}: a route needs at least 2 positions, got {len(points)}")
    for i, (lat, lng) in enumerate(points):
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            what = (
                f"latitude {lat:g} is outside [-90, 90]"
                if abs(lat) > 90
                else f"longitude {lng:g} is outside [-180, 180]"
            )
            raise FormatError(
                f"{where}: {_vertex(field, i)}: {what} (GeoJSON positions are [longitude, latitude])"
            )
    if _length(points) == 0:
        raise FormatError(f"{where}: {field}: the route has zero length (all its positions are equal)")
    try:
        return corridor(points, width)
    except ValueError as exc:
        raise FormatError(f"{where}: {exc}") from None


def _band(props: Mapping[str, Any], where: str) -> tuple[float, float]:
    band = []
    for bound in ("lower", "upper"):
        metres, feet = f"alt_{bound}_m", f"alt_{bound}_ft"
        if props.get(metres) is not None and props.get(feet) is not None:
            raise FormatError(f"{where}: properties: both {metres} and {feet}; give one")
        if props.get(metres) is not None:
            band.append(_number(props[metres], where, f"properties.{metres}"))
        elif props.get(feet) is not None:
            band.append(_number(props[feet], where, f"properties.{feet}") * FEET)
        else:
            raise FormatError(f"{where}: properties.{metres} (or {feet}): missing")
    return band[0], band[1]


def _position(value: Any, where: str, field: str) -> tuple[float, float]:
    """A GeoJSON position, [longitude, latitude] (RFC 7946 §3.1.1), as (lat, lng). A third
    element (altitude) is ignored: the band comes from the feature's properties."""
    position = _list(value, where, field)
    if len(position) not in (2, 3):
        raise FormatError(f"{where}: {field}: expected [longitude, latitude], got {_show(position)}")
    lng = _number(position[0], where, f"{field} longitude")
    lat = _number(position[1], where, f"{field} latitude")
    return lat, lng


# --- CSV of sites ----------------------------------------------------------------------------


def _sites(name: str, text: str, limits: _Limits) -> list[tuple[str, Volume, str]]:
    """Each site's name, volume, and how errors name its row. Every error about a row gives
    its line in the file: "volume n" counts only the rows that are not blank, and two sites
    may have one name."""
    # Universal newlines: Excel for Mac ends lines with a lone CR, which the csv module refuses
    # ("new-line character seen in unquoted field") unless it is turned into LF first.
    reader = csv.reader(io.StringIO(text, newline=None))
    try:
        first = next(reader, [])
        # Excel's "sep=," first line says the separator; the header follows it.
        sep = re.fullmatch(r"sep=(.)", ",".join(first).strip(" "), re.IGNORECASE)
        if sep and sep[1] != ",":
            raise FormatError(
                f"{name}: line 1: {_show(','.join(first).strip(' '))} says the columns are separated by "
                f"{_show(sep[1])}; a CSV of sites separates them by commas (export it as CSV, "
                "comma-separated)"
            )
        heading = next(reader, []) if sep else first
        header_line = reader.line_num
        header = [SITE_COLUMN_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in heading]
        rows = [(reader.line_num, row) for row in reader]  # the line a row ends on
    except csv.Error as exc:
        raise FormatError(f"{name}: not valid CSV: {exc}") from None
    missing = [c for c in SITE_COLUMNS if c not in header]
    if missing:
        # A spreadsheet set to a decimal comma exports columns separated by ';'.
        for other, also in ((";", ", and writes numbers with a decimal point"), ("\t", "")):
            split = [h.strip().lower() for h in ",".join(heading).split(other)]
            if all(c in [SITE_COLUMN_ALIASES.get(h, h) for h in split] for c in SITE_COLUMNS):
                raise FormatError(
                    f"{name}: line {header_line}: the columns are separated by {_show(other)}; a CSV of "
                    f"sites separates them by commas{also} (export it as CSV, comma-separated)"
                )
        raise FormatError(
            f"{name}: not JSON, so read as a CSV of sites, but its header "
            f"{_show(','.join(header))} lacks {', '.join(missing)}; expected the columns "
            f"{','.join(SITE_COLUMNS)} (and optionally {','.join(SITE_OPTIONAL_COLUMNS)})"
        )
    # A spreadsheet may export empty columns after the last: no name and no value.
    empty = {
        i
        for i, h in enumerate(header)
        if not h and not any(i < len(row) and row[i].strip() for _, row in rows)
    }
    if empty:
        header = [h for i, h in enumerate(header) if i not in empty]
        rows = [(line, [cell for i, cell in enumerate(row) if i not in empty]) for line, row in rows]
    unknown = [
        repr(h) if h else "one with no name but values"
        for h in header
        if h not in SITE_COLUMNS + SITE_OPTIONAL_COLUMNS
    ]
    if unknown or len(set(header)) != len(header):
        what = f"unknown column(s) {', '.join(unknown)}" if unknown else "a repeated column"
        raise FormatError(
            f"{name}: line {header_line}: {what}; the columns are {','.join(SITE_COLUMNS)} "
            f"and optionally {','.join(SITE_OPTIONAL_COLUMNS)}"
        )
    volumes: list[tuple[str, Volume, str]] = []
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        n = len(volumes) + 1
        if len(row) != len(header):
            raise FormatError(
                f"{name} volume {n} (line {line}): expected {len(header)} fields, got {len(row)}"
            )
        cells = {h: cell.strip() for h, cell in zip(header, row, strict=True)}
        site = cells["name"]
        # Named by its first characters: a name of thousands (a cell pasted whole) would be a
        # line of kilobytes in every message; the line tells the row.
        shown = site if len(site) <= _SITE_SHOWN else site[:_SITE_SHOWN] + "…"
        where = f"{name} volume {n} ({shown})"
        at = f"{name} volume {n} ({shown}, line {line})" if site else f"{name} volume {n} (line {line})"
        if not site:
            raise FormatError(f"{at}: name: empty; every site needs a name")
        lat = _csv_number(cells["lat"], at, "lat")
        lng = _csv_number(cells["lon"], at, "lon")
        radius = _csv_number(cells["radius_m"], at, "radius_m")
        lower = _csv_number(cells["alt_lower_m"], at, "alt_lower_m") if cells.get("alt_lower_m") else None
        upper = _csv_number(cells["alt_upper_m"], at, "alt_upper_m") if cells.get("alt_upper_m") else None
        start = _time(cells["time_start"], at, "time_start") if cells.get("time_start") else limits.now
        end = _time(cells["time_end"], at, "time_end") if cells.get("time_end") else None
        volume = Volume(
            Circle(lat, lng, radius),
            SITE_ALT_LOWER_M if lower is None else lower,
            SITE_ALT_UPPER_M if upper is None else upper,
            start,
            end,
            where,
        )
        try:
            volumes.append((site, _validated(volume, limits, open_ended=True), at))
        except FormatError as exc:  # named by the volume: by its row, with the line
            raise FormatError(at + str(exc).removeprefix(where)) from None
    if not volumes:
        raise FormatError(f"{name}: a CSV of sites with no sites (only a header)")
    return volumes


# A number as a spreadsheet writes one: ASCII digits, a point, an exponent. Python's
# float() also reads '1_000', Arabic-Indic digits and full-width ones.
_CSV_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _csv_number(text: str, where: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(f"{where}: {field}: expected a number, got {_show(text)}") from None
    if not math.isfinite(value):
        raise FormatError(f"{where}: {field}: expected a finite number, got {_show(text)}")
    if not _CSV_NUMBER.fullmatch(text):
        raise FormatError(
            f"{where}: {field}: expected a number in plain digits (0-9, a point, an exponent), "
            f"got {_show(text)}"
        )
    return value


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


# --- route geometry (pyproj + shapely; no geometry of our own) -------------------------------


def _length(points: Sequence[tuple[float, float]]) -> float:
    lats, lngs = zip(*points, strict=True)
    return float(WGS84.line_length(lngs, lats))


def _at(a: tuple[float, float], b: tuple[float, float], metres: float) -> tuple[float, float]:
    """The point `metres` from `a` along the geodesic to `b`."""
    azimuth, _, _ = WGS84.inv(a[1], a[0], b[1], b[0])
    lng, lat, _ = WGS84.fwd(a[1], a[0], azimuth, metres)
    return float(lat), float(lng)


def _cut(points: list[tuple[float, float]], piece_m: float) -> list[list[tuple[float, float]]]:
    """The route in pieces of equal geodesic length, none longer than `piece_m`."""
    return _cut_into(points, max(1, math.ceil(_length(points) / piece_m)))


def _cut_into(points: list[tuple[float, float]], count: int) -> list[list[tuple[float, float]]]:
    """The route in `count` pieces of equal geodesic length, each piece's last point the next
    one's first."""
    points = _distinct(points)
    step = _length(points) / count
    pieces: list[list[tuple[float, float]]] = []
    current = [points[0]]
    walked = 0.0  # along the route to current[-1]
    for b in points[1:]:
        a = current[-1]
        _, _, segment = WGS84.inv(a[1], a[0], b[1], b[0])
        while len(pieces) < count - 1 and walked + segment >= (len(pieces) + 1) * step:
            a = _at(a, b, (len(pieces) + 1) * step - walked)
            pieces.append([*current, a])
            current = [a]
            walked = len(pieces) * step
            _, _, segment = WGS84.inv(a[1], a[0], b[1], b[0])
        current.append(b)
        walked += segment
    pieces.append(current)
    return [_distinct(piece) for piece in pieces]


def _distinct(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]


def _buffer_piece(
    piece: list[tuple[float, float]], half_width_m: float, reach_m: float, splits: int, *, round_start: bool
) -> list[Polygon]:
    if len(piece) < 2:
        return []
    halves = _cut_into(piece, 2)
    proj = projection(*halves[0][-1])  # centred half-way along the piece
    points, corners = _densify(piece)
    x, y = proj.forward(*np.array(points, dtype=np.float64).T)
    area = _outline(x, y, corners if round_start else corners[1:], half_width_m, reach_m)
    if not isinstance(area, shapely.Polygon) or area.interiors:
        # The piece loops round on itself and its corridor encloses land that is not in it:
        # halves of it do not.
        if splits == 0:
            raise ValueError("the route loops so tightly that its corridor cannot be cut into volumes")
        first, second = halves
        return [
            *_buffer_piece(first, half_width_m, reach_m, splits - 1, round_start=round_start),
            *_buffer_piece(second, half_width_m, reach_m, splits - 1, round_start=False),
        ]
    lats, lngs = proj.inverse(*(np.asarray(c) for c in area.exterior.xy))
    vertices = [
        (round(float(lat), _DEGREE_DIGITS), round(float(lng), _DEGREE_DIGITS))
        for lat, lng in zip(lats, lngs, strict=True)
    ][:-1]
    return [Polygon(tuple(_distinct(vertices)))]


def _outline(
    x: FloatArray, y: FloatArray, rounds: list[int], half_width_m: float, reach_m: float
) -> shapely.Geometry:
    """The projected outline of a piece, whose route is drawn through `x`, `y`, that holds
    every point within `half_width_m` of it on the ellipsoid; round at the points `rounds`
    (indices into `x` and `y`), flat at an end that is not one of them. No point of it is
    farther than `reach_m` from the centre.

    The sides and flat ends are shapely's buffer of the route; each round end and bend is a
    polygon whose sides touch its circle (`_round`). A piece that continues another starts flat: a
    point the flat start leaves out is nearer to the piece's first point than to the route
    it is beside, and the piece before holds every point that near its last one. The radius
    is widened by all that could bring the outline in: the projection's stretch (twice, for
    that hand-over), the route's chords, the simplification and the geodesic edges."""
    grow = stretch(reach_m)
    from_centre = np.hypot(x, y)
    lengths = np.hypot(np.diff(x), np.diff(y))
    route_error = float(chord_error(lengths, np.maximum(from_centre[:-1], from_centre[1:])).max())
    edge_error = max(_EDGE_M, _EDGE_FRACTION * half_width_m)
    radius = grow * (grow * half_width_m + route_error) + _SIMPLIFY_M + edge_error + _SLACK_M
    body = shapely.LineString(np.column_stack([x, y])).buffer(radius, quad_segs=_QUAD_SEGS, cap_style="flat")
    area = shapely.union_all([body, *(_round(x, y, i, radius) for i in rounds)])
    area = shapely.simplify(area, _SIMPLIFY_M, preserve_topology=True)
    # A geodesic edge strays from its chord as its length squared: edges this long stray at
    # most edge_error anywhere within `reach_m` of the centre.
    step = math.sqrt(edge_error / float(chord_error(np.array(1.0), np.array(reach_m))))
    return shapely.segmentize(area, step)


def _round(x: FloatArray, y: FloatArray, i: int, radius: float) -> shapely.Geometry:
    """A polygon whose sides touch the circle of `radius` round the route's point i, turned so
    that sides touch it square to the route where it arrives (leaves, at the first point):
    there a round end meets the buffer's sides without a step."""
    a, b = (0, 1) if i == 0 else (i - 1, i)
    heading = math.degrees(math.atan2(y[b] - y[a], x[b] - x[a]))
    circle = shapely.Point(x[i], y[i]).buffer(radius * _ROUND_OUT, quad_segs=_QUAD_SEGS)
    # shapely's circle has corners every 90 / _QUAD_SEGS degrees from the x axis, and sides
    # touching the circle half-way between them.
    return shapely.affinity.rotate(circle, heading - 45 / _QUAD_SEGS, origin=(x[i], y[i]))


def _densify(piece: list[tuple[float, float]]) -> tuple[list[tuple[float, float]], list[int]]:
    """The piece with points every `_DENSIFY_M` at most along each geodesic segment, so that
    straight lines in the projection follow the geodesics; and where the piece's own points
    are among them."""
    out, own = [piece[0]], [0]
    for a, b in itertools.pairwise(piece):
        _, _, segment = WGS84.inv(a[1], a[0], b[1], b[0])
        between = max(0, math.ceil(segment / _DENSIFY_M) - 1)
        if between:
            for lng, lat in WGS84.npts(a[1], a[0], b[1], b[0], between):
                out.append((lat, lng))
        own.append(len(out))
        out.append(b)
    return out, own


# --- small parsers ---------------------------------------------------------------------------


def _limits(now: int, horizon_s: int | None, max_area_km2: float | None) -> _Limits:
    kwargs: dict[str, Any] = {}
    if horizon_s is not None:
        kwargs["horizon_s"] = horizon_s
    if max_area_km2 is not None:
        kwargs["max_area_km2"] = max_area_km2
    return _Limits(now, kwargs)


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


def _lat_lng(value: Any, where: str, field: str) -> tuple[float, float]:
    point = _fields(value, _POINT, where, field, "a point")
    lat = _number(_get(point, "lat", where, field), where, f"{field}.lat")
    lng = _number(_get(point, "lng", where, field), where, f"{field}.lng")
    return lat, lng


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
