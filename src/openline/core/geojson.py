"""GeoJSON (RFC 7946) in: a FeatureCollection (or one Feature) of Polygon, MultiPolygon, Point
(with `radius_m`) and LineString routes (with `corridor_m`, widened by
openline.core.corridors) as volumes, read through openline.core.formats, which reads a
notice file's routes as features too (`_feature`).

A GeoJSON polygon's edges are straight lines in longitude and latitude (RFC 7946 §3.1.1), a
volume's are geodesics: vertices are added along each edge until the geodesics through them
stray from it by at most 1 cm (`_as_drawn`). ASTM Volume4D edges are geodesics already.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from openline.core.corridors import _DEGREE_DIGITS, _length, corridor
from openline.core.fields import (
    FormatError,
    _get,
    _Limits,
    _list,
    _number,
    _obj,
    _show,
    _time,
    _validated,
    _vertex,
)
from openline.core.volumes import FEET, MAX_AREA_KM2, WGS84, Circle, FloatArray, Polygon, Volume

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
    spans = np.abs(np.roll(lngs, -1) - lngs)
    if (wide := np.flatnonzero(spans > 180)).size:
        # Straight in longitude (RFC 7946 §3.1.1), such an edge goes the long way round, by
        # longitude 0; a writer that meant the short way across the antimeridian should have
        # cut the polygon there (§3.1.9). Either reading could be meant: neither is guessed.
        i = int(wide[0])
        raise FormatError(
            f"{volume.name}, vertex {i + 1}: its edge to vertex {(i + 1) % len(lngs) + 1} spans "
            f"{spans[i]:.6g}° of longitude, which GeoJSON draws the long way round (RFC 7946 §3.1.1): "
            "cut a polygon that crosses the antimeridian there into parts (RFC 7946 §3.1.9), and "
            "split one wider than 180° of longitude"
        )
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
    dlat, dlng = np.roll(lat, -1) - lat, np.roll(lng, -1) - lng  # at most 180° (`_drawn_polygon`)
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
