"""4D volumes (the ASTM F3548-21 Volume4D shape): an outline on the WGS84 ellipsoid, an
altitude band and a time window; their validation; and the local projections the
conflict rules measure them in.

A polygon's edges are geodesics on the WGS84 ellipsoid: consecutive vertices are joined
the short way round, so the antimeridian is no seam and a ring may enclose a pole. A
circle is every point within `radius_m` of its centre, measured along the ellipsoid.

Planar work happens in an azimuthal equidistant projection (pyproj's `aeqd`) centred near
the shapes. PROJ computes it with GeographicLib's geodesics, so distances and azimuths
from the centre are exact; lengths across the radius are stretched, by at most
k(rho) = t / sin(t), t = rho / R_MIN, within rho of the centre (Rauch comparison with the
ellipsoid's largest curvature; 1 + 4e-6 at 30 km), and never shrunk. A geodesic is not
quite straight there: its chord strays by at most about L^2 rho / (10 R_MIN^2) (PROJ
measures L^2 rho / 12 R^2; tested), so `outline_in` splits long edges until that is under
half a millimetre. A shape therefore comes out within 0.5 mm of its true image, and
because the projection is one-to-one, "do two outlines touch" is answered exactly up to
that. `nvector_boxes` bounds outlines for an index, seamlessly round the globe.

Pure: no I/O. Geodesy is pyproj's (Geod, Transformer), planar geometry shapely's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Geod, Transformer
from pyproj.enums import TransformDirection

FEET = 0.3048
WGS84 = Geod(ellps="WGS84")
# The smallest radius of curvature of WGS84 (b^2 / a, meridional at the equator): no normal
# turns faster than 1 / R_MIN per metre, which makes the stretch and index bounds safe.
R_MIN = 6_335_439.327
MAX_CHORD_ERROR_M = 5e-4
MAX_AREA_KM2 = 250_000.0  # the largest outline `validate` takes, unless told otherwise
# A polygon thinner than this (area over perimeter) has no inside to speak of.
_DEGENERATE_WIDTH_M = 0.01
_SAME_POINT_M = 1e-3
_MICROS = 1_000_000

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Polygon:
    """A ring of (lat, lng) vertices in WGS84 degrees, not closed, joined by geodesics."""

    vertices: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Circle:
    """Every point within `radius_m` (along the ellipsoid) of (lat, lng)."""

    lat: float
    lng: float
    radius_m: float


Outline = Polygon | Circle


@dataclass(frozen=True, slots=True)
class Volume:
    """An outline, an altitude band in metres above the WGS84 ellipsoid, and a time window
    in integer microseconds since the epoch (UTC); `end` is None for an open-ended site."""

    outline: Outline
    alt_lower_m: float
    alt_upper_m: float
    start: int
    end: int | None
    name: str = "volume"


class VolumeError(ValueError):
    """A volume refused as given; the message names the volume and, where one is at fault,
    the vertex (numbered from 1)."""


# --- validation ---------------------------------------------------------------------------


def validate(
    volume: Volume,
    *,
    now: int,
    horizon_s: int = 30 * 86_400,
    max_area_km2: float = MAX_AREA_KM2,
    open_ended: bool = False,
) -> None:
    """Return if `volume` may be announced at `now` (microseconds); raise `VolumeError`.

    `open_ended` says the volume belongs to a protected site, the only kind allowed no end.
    """
    if isinstance(volume.outline, Circle):
        _check_circle(volume.outline, volume.name, max_area_km2)
    else:
        _check_polygon(volume.outline, volume.name, max_area_km2)
    _check_altitudes(volume)
    _check_times(volume, now, horizon_s, open_ended)


def _fail(name: str, message: str, vertex: int | None = None) -> VolumeError:
    where = name if vertex is None else f"{name}, vertex {vertex}"
    return VolumeError(f"{where}: {message}")


def _check_position(lat: float, lng: float, name: str, vertex: int | None, what: str) -> None:
    # Written as `not (a <= x <= b)` so that NaN is refused too.
    if not -90.0 <= lat <= 90.0:
        raise _fail(name, f"{what}latitude {lat} is outside [-90, 90]", vertex)
    if not -180.0 <= lng <= 180.0:
        raise _fail(name, f"{what}longitude {lng} is outside [-180, 180]", vertex)


def _same_point(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two vertices are one place (lng -180 and 180 are; so is any lng at a pole)."""
    _, _, dist = WGS84.inv(a[1], a[0], b[1], b[0])
    return bool(dist < _SAME_POINT_M)


def _check_circle(circle: Circle, name: str, max_area_km2: float) -> None:
    _check_position(circle.lat, circle.lng, name, None, "centre ")
    if not (math.isfinite(circle.radius_m) and circle.radius_m > 0):
        raise _fail(name, f"the radius must be a positive number of metres, got {circle.radius_m}")
    # pi r^2 is a little above the geodesic circle's area: refused a hair early, never late.
    _check_area(math.pi * circle.radius_m**2 / 1e6, name, max_area_km2)


def _check_area(area_km2: float, name: str, max_area_km2: float) -> None:
    if area_km2 > max_area_km2:
        raise _fail(name, f"the area, {area_km2:,.1f} km², is above the limit of {max_area_km2:,.1f} km²")


def _check_polygon(polygon: Polygon, name: str, max_area_km2: float) -> None:
    vertices = polygon.vertices
    if len(vertices) < 3:
        raise _fail(name, f"a polygon needs at least 3 vertices, got {len(vertices)}")
    for number, (lat, lng) in enumerate(vertices, start=1):
        _check_position(lat, lng, name, number, "")
    lats, lngs = vertex_arrays(polygon)
    # Each vertex against the one after it, the last against the first: one array call.
    _, _, gaps = WGS84.inv(lngs, lats, np.roll(lngs, -1), np.roll(lats, -1))
    if gaps[-1] < _SAME_POINT_M:
        raise _fail(
            name,
            "repeats vertex 1: the ring must not be closed (leave the closing vertex out)",
            len(vertices),
        )
    repeated = np.flatnonzero(gaps[:-1] < _SAME_POINT_M)
    if len(repeated):
        number = int(repeated[0]) + 2
        raise _fail(name, f"equals vertex {number - 1} before it", number)
    proj = projection(*centre(polygon))
    _check_not_collinear(polygon, proj, name)
    _check_simple(polygon, proj, name)
    area_m2, perimeter_m = WGS84.polygon_area_perimeter(lngs, lats)
    if abs(area_m2) <= perimeter_m * _DEGENERATE_WIDTH_M:
        raise _fail(name, f"degenerate polygon: it encloses no area ({abs(area_m2):.3g} m²)")
    _check_area(abs(area_m2) / 1e6, name, max_area_km2)


def _check_not_collinear(polygon: Polygon, proj: Projection, name: str) -> None:
    x, y = proj.forward(*vertex_arrays(polygon))
    hull = shapely.convex_hull(shapely.multipoints(np.column_stack([x, y])))
    if not isinstance(hull, shapely.Polygon) or hull.area <= hull.length * _DEGENERATE_WIDTH_M:
        raise _fail(name, "degenerate polygon: its vertices lie on one line (zero area)")


def _check_simple(polygon: Polygon, proj: Projection, name: str) -> None:
    """Refuse a ring that crosses or touches itself, naming the first vertex of the first
    edge at fault. Tested on the projected geodesic edges, not on lon/lat segments, in
    array calls: a ring of 10^5 vertices is checked in well under a second."""
    edges = _edge_lines(polygon, proj)
    n = len(edges)
    first, second = shapely.STRtree(edges).query(edges, predicate="intersects")
    ordered = first < second
    first, second = first[ordered], second[ordered]
    adjacent = (second == first + 1) | ((first == 0) & (second == n - 1))
    # Neighbours share their common vertex; anything more is a fold.
    shared = shapely.intersection(edges[first[adjacent]], edges[second[adjacent]])
    folds = shapely.get_type_id(shared) != shapely.GeometryType.POINT
    faults = [(int(i), int(j), "crosses") for i, j in zip(first[~adjacent], second[~adjacent], strict=True)]
    faults.extend(
        (int(i), int(j), "folds back over")
        for i, j in zip(first[adjacent][folds], second[adjacent][folds], strict=True)
    )
    if faults:
        i, j, how = min(faults)
        raise _fail(
            name,
            f"the polygon intersects itself: edge {_edge_name(i, n)} {how} edge {_edge_name(j, n)}",
            i + 1,
        )


def _edge_name(i: int, n: int) -> str:
    return f"{i + 1}-{(i + 1) % n + 1}"


def _edge_lines(polygon: Polygon, proj: Projection) -> NDArray[np.object_]:
    """One line string per geodesic edge (densified), made in one call: edge i runs from
    its start in the densified ring through its inner points to the next edge's start."""
    x, y, starts = _densified_ring(polygon, proj, MAX_CHORD_ERROR_M)
    first = np.asarray(starts, dtype=np.int64)
    counts = np.diff(np.append(first, len(x))) + 1
    edge = np.repeat(np.arange(len(first)), counts)
    step = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = (first[edge] + step) % len(x)
    lines: NDArray[np.object_] = shapely.linestrings(x[rows], y[rows], indices=edge)
    return lines


def _check_altitudes(volume: Volume) -> None:
    lower, upper = volume.alt_lower_m, volume.alt_upper_m
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise _fail(volume.name, f"altitudes must be finite numbers of metres, got {lower} and {upper}")
    if lower > upper:
        raise _fail(volume.name, f"the lower altitude, {lower} m, is above the upper altitude, {upper} m")


def _check_times(volume: Volume, now: int, horizon_s: int, open_ended: bool) -> None:
    if volume.end is None:
        if not open_ended:
            raise _fail(volume.name, "no end time: only a protected site may be open-ended")
    elif volume.end < volume.start:
        raise _fail(volume.name, f"the end, {_iso(volume.end)}, is before the start, {_iso(volume.start)}")
    limit = now + horizon_s * _MICROS
    if volume.start > limit:
        raise _fail(
            volume.name,
            f"the start, {_iso(volume.start)}, is beyond the planning horizon "
            f"of {horizon_s / 86_400:g} days ({_iso(limit)})",
        )


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / _MICROS, UTC).isoformat().replace("+00:00", "Z")


# --- where an outline is ------------------------------------------------------------------


def nvectors(lats: FloatArray, lngs: FloatArray) -> FloatArray:
    """Unit normals to the ellipsoid (n-vectors), one row per point: a seamless, pole-safe
    way to say where a point is."""
    phi, lam = np.radians(lats), np.radians(lngs)
    cos_phi = np.cos(phi)
    return np.column_stack([cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)])


def vertex_arrays(polygon: Polygon) -> tuple[FloatArray, FloatArray]:
    """(lats, lngs) of the vertices, for vectorised pyproj calls."""
    array = np.asarray(polygon.vertices, dtype=np.float64)
    return array[:, 0], array[:, 1]


def centre(outline: Outline) -> tuple[float, float]:
    """A (lat, lng) inside or near the outline to centre projections on: a circle's centre,
    or the normalised mean of a polygon's vertex n-vectors (which, unlike a mean of
    longitudes, does not break at the antimeridian or a pole). Scalar arithmetic: for one
    outline of a few vertices it is several times quicker than numpy's calls."""
    if isinstance(outline, Circle):
        return outline.lat, outline.lng
    x = y = z = 0.0
    for lat, lng in outline.vertices:
        phi, lam = math.radians(lat), math.radians(lng)
        cos_phi = math.cos(phi)
        x += cos_phi * math.cos(lam)
        y += cos_phi * math.sin(lam)
        z += math.sin(phi)
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


@lru_cache(maxsize=65_536)
def bounding_cap(outline: Outline) -> tuple[float, float, float]:
    """(lat, lng, radius_m): every point of the outline is within radius_m of (lat, lng).
    Geodesic balls this small are convex, so a polygon's farthest point is a vertex. A
    polygon's cap is centred on its `centre`."""
    if isinstance(outline, Circle):
        return outline.lat, outline.lng, outline.radius_m
    lat, lng = centre(outline)
    # One scalar geodesic per vertex: for the few vertices of one outline, several times
    # quicker than pyproj's array call (about 10 microseconds before its first point).
    reach = max(WGS84.inv(lng, lat, v_lng, v_lat)[2] for v_lat, v_lng in outline.vertices)
    return lat, lng, float(reach)


def bounding_caps(outlines: Sequence[Outline]) -> FloatArray:
    """`bounding_cap` of many outlines at once, one (lat, lng, radius_m) row each (the
    same caps, up to rounding)."""
    caps = np.empty((len(outlines), 3))
    polygons = [(i, o) for i, o in enumerate(outlines) if isinstance(o, Polygon)]
    for i, o in enumerate(outlines):
        if isinstance(o, Circle):
            caps[i] = o.lat, o.lng, o.radius_m
    if polygons:
        counts = np.array([len(p.vertices) for _, p in polygons])
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        vertices = np.array([v for _, p in polygons for v in p.vertices], dtype=np.float64)
        lats, lngs = vertices[:, 0], vertices[:, 1]
        mean = np.add.reduceat(nvectors(lats, lngs), offsets, axis=0)
        centre_lats = np.degrees(np.arctan2(mean[:, 2], np.hypot(mean[:, 0], mean[:, 1])))
        centre_lngs = np.degrees(np.arctan2(mean[:, 1], mean[:, 0]))
        owner = np.repeat(np.arange(len(polygons)), counts)
        _, _, dist = WGS84.inv(centre_lngs[owner], centre_lats[owner], lngs, lats)
        rows = [i for i, _ in polygons]
        caps[rows] = np.column_stack([centre_lats, centre_lngs, np.maximum.reduceat(dist, offsets)])
    return caps


# --- local projections --------------------------------------------------------------------


class Projection:
    """An azimuthal equidistant projection centred on (lat, lng), in metres.

    Thread-safe: pyproj (>= 3.1) gives each thread its own PROJ object behind a Transformer.
    """

    __slots__ = ("_transformer", "lat", "lng")

    def __init__(self, lat: float, lng: float) -> None:
        self.lat, self.lng = lat, lng
        # A bare operation: no datum lookup, no grids, nothing PROJ could want to download.
        # It takes and gives radians (half the set-up time of a pipeline converting units).
        self._transformer = Transformer.from_pipeline(
            f"+proj=aeqd +lat_0={lat!r} +lon_0={lng!r} +ellps=WGS84"
        )

    def forward(self, lats: FloatArray, lngs: FloatArray) -> tuple[FloatArray, FloatArray]:
        x, y = self._transformer.transform(np.radians(lngs), np.radians(lats), radians=True)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def inverse(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        lngs, lats = self._transformer.transform(x, y, radians=True, direction=TransformDirection.INVERSE)
        return np.degrees(lats), np.degrees(lngs)


@lru_cache(maxsize=4096)
def projection(lat: float, lng: float) -> Projection:
    """The projection centred exactly on (lat, lng). Cached on the exact centre, so a cache
    hit is the very same projection and can never change an answer."""
    return Projection(lat, lng)


def stretch(rho_m: float) -> float:
    """The most the projection can lengthen anything within rho_m of its centre (>= 1).
    Scalar arithmetic: callers bound a whole batch by its farthest point."""
    t = min(max(float(rho_m) / R_MIN, 1e-8), 3.0)
    return t / math.sin(t)


def chord_error(length_m: FloatArray, rho_m: FloatArray) -> FloatArray:
    """A bound on how far a projected geodesic edge of chord `length_m`, whose ends are at
    most `rho_m` from the centre, strays from its chord (PROJ measures ~L^2 rho / 12 R^2;
    the extra factor covers distances of thousands of kilometres)."""
    ratio = rho_m / R_MIN
    bound: FloatArray = length_m**2 * rho_m / (10.0 * R_MIN**2) * (1.0 + ratio**2)
    return bound


def _densified_ring(
    polygon: Polygon, proj: Projection, max_error_m: float
) -> tuple[FloatArray, FloatArray, list[int]]:
    """The projected ring with each geodesic edge split until it is within max_error_m of
    its chords; also where each edge starts in the arrays."""
    lats, lngs = vertex_arrays(polygon)
    x, y = proj.forward(lats, lngs)
    rho = np.maximum(np.hypot(x, y), np.roll(np.hypot(x, y), -1))
    length = np.hypot(np.roll(x, -1) - x, np.roll(y, -1) - y)
    pieces = np.maximum(1, np.ceil(np.sqrt(chord_error(length, rho) / max_error_m))).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(pieces)[:-1]])
    if int(pieces.max()) == 1:
        return x, y, [int(s) for s in starts]
    edge = np.repeat(np.arange(len(x)), pieces)
    step = np.arange(len(edge)) - starts[edge]
    inner = step > 0
    nxt = np.roll(np.arange(len(x)), -1)
    az, _, dist = WGS84.inv(lngs, lats, lngs[nxt], lats[nxt])
    e = edge[inner]
    mid_lngs, mid_lats, _ = WGS84.fwd(lngs[e], lats[e], az[e], dist[e] * step[inner] / pieces[e])
    out_x, out_y = np.empty(len(edge)), np.empty(len(edge))
    out_x[~inner], out_y[~inner] = x, y
    out_x[inner], out_y[inner] = proj.forward(np.asarray(mid_lats), np.asarray(mid_lngs))
    return out_x, out_y, [int(s) for s in starts]


def outline_in(outline: Outline, proj: Projection, max_error_m: float = MAX_CHORD_ERROR_M) -> shapely.Polygon:
    """The outline's image in `proj` as a shapely polygon whose boundary is within
    max_error_m of the true image's boundary."""
    if isinstance(outline, Polygon):
        x, y, _ = _densified_ring(outline, proj, max_error_m)
        return shapely.Polygon(np.column_stack([x, y]))
    if (outline.lat, outline.lng) == (proj.lat, proj.lng):
        # Centred on it, the geodesic circle is exactly a circle.
        sides = _circle_sides(outline.radius_m, max_error_m)
        return shapely.Point(0.0, 0.0).buffer(outline.radius_m, quad_segs=max(1, sides // 4))
    return _sampled_circle(outline, proj, max_error_m)


def _circle_sides(radius_m: float, max_error_m: float) -> int:
    ratio = min(max_error_m / radius_m, 1.0)
    return max(16, math.ceil(math.pi / math.acos(1.0 - ratio)))


def _sampled_circle(circle: Circle, proj: Projection, max_error_m: float) -> shapely.Polygon:
    _, _, rho = WGS84.inv(proj.lng, proj.lat, circle.lng, circle.lat)
    sides = _circle_sides(circle.radius_m * stretch(rho + circle.radius_m), max_error_m)
    azimuths = np.linspace(0.0, 360.0, sides, endpoint=False)
    lngs, lats, _ = WGS84.fwd(
        np.full(sides, circle.lng), np.full(sides, circle.lat), azimuths, np.full(sides, circle.radius_m)
    )
    x, y = proj.forward(np.asarray(lats), np.asarray(lngs))
    return shapely.Polygon(np.column_stack([x, y]))


# --- boxes for an index -------------------------------------------------------------------

_AXES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
_BOX_PAD = 1e-9


def nvector_boxes(outlines: Sequence[Outline]) -> tuple[FloatArray, FloatArray]:
    """Boxes around the outlines in n-vector space (x, y, z of the unit normal), one row
    each, never too small: an index of them misses no candidate. The antimeridian is no
    seam here and a pole no singularity. No normal turns faster than 1 / R_MIN per metre,
    which bounds everything below."""
    mins, maxs = np.empty((len(outlines), 3)), np.empty((len(outlines), 3))
    polygons = [(i, outline) for i, outline in enumerate(outlines) if isinstance(outline, Polygon)]
    circles = [(i, outline) for i, outline in enumerate(outlines) if isinstance(outline, Circle)]
    if polygons:
        rows = [i for i, _ in polygons]
        mins[rows], maxs[rows] = _polygon_boxes([p for _, p in polygons])
    if circles:
        rows = [i for i, _ in circles]
        mins[rows], maxs[rows] = _circle_boxes([c for _, c in circles])
    return mins, maxs


def _polygon_boxes(polygons: Sequence[Polygon]) -> tuple[FloatArray, FloatArray]:
    """All at once: the box of the vertices, padded by how far an edge can bow out between
    them (an arc of angle t strays t^2 / 8 from its chord), grown to any of the six axis
    points (the poles; 0 and 90 degrees of longitude and their opposites) the polygon
    could hold, since a coordinate's extreme over a patch of sphere lies on its boundary
    or at one of those."""
    counts = np.array([len(p.vertices) for p in polygons])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    vertices = np.array([v for p in polygons for v in p.vertices], dtype=np.float64)
    lats, lngs = vertices[:, 0], vertices[:, 1]
    following = np.arange(len(lats)) + 1
    following[offsets + counts - 1] = offsets
    _, _, length = WGS84.inv(lngs, lats, lngs[following], lats[following])
    turn = np.maximum.reduceat(length, offsets) / R_MIN
    normals = nvectors(lats, lngs)
    middle = np.add.reduceat(normals, offsets, axis=0)
    middle /= np.linalg.norm(middle, axis=1)[:, None]
    owner = np.repeat(np.arange(len(polygons)), counts)
    cos_spread = np.minimum.reduceat(np.einsum("ij,ij->i", normals, middle[owner]), offsets)
    # Every point of an edge is within half its length of one of its ends.
    spread = np.arccos(np.clip(cos_spread, -1.0, 1.0)) + turn / 2
    near = middle @ _AXES.T >= np.cos(np.minimum(spread * 1.001 + _BOX_PAD, math.pi))[:, None]
    mins = np.minimum.reduceat(normals, offsets, axis=0)
    maxs = np.maximum.reduceat(normals, offsets, axis=0)
    for axis in np.flatnonzero(near.any(axis=0)):
        rows = near[:, axis]
        mins[rows] = np.minimum(mins[rows], _AXES[axis])
        maxs[rows] = np.maximum(maxs[rows], _AXES[axis])
    pad = (1.2 * turn**2 / 8 + _BOX_PAD)[:, None]
    return mins - pad, maxs + pad


def _circle_boxes(circles: Sequence[Circle]) -> tuple[FloatArray, FloatArray]:
    return cap_boxes(np.array([(c.lat, c.lng, c.radius_m) for c in circles], dtype=np.float64))


def cap_boxes(caps: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Boxes in n-vector space round geodesic caps, given as (lat, lng, radius_m) rows (a
    circle, or a `bounding_caps` row): the exact box of the spherical cap of angle
    radius / R_MIN round the centre's normal, which holds every normal of the cap. Along
    each axis the cap reaches cos(angle to the axis - cap angle), or the axis point
    itself when that is inside."""
    lats, lngs = caps[:, 0], caps[:, 1]
    cap = np.minimum(caps[:, 2] / R_MIN * 1.001, math.pi)
    to_axis = np.arccos(np.clip(nvectors(lats, lngs), -1.0, 1.0))
    maxs = np.cos(np.maximum(to_axis - cap[:, None], 0.0))
    mins = -np.cos(np.maximum(math.pi - to_axis - cap[:, None], 0.0))
    return mins - _BOX_PAD, maxs + _BOX_PAD


def cap_box(cap: tuple[float, float, float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """`cap_boxes` of one cap, (mins, maxs), in scalar arithmetic: for a single query, several
    times quicker than the array form, and the same box up to rounding (padded for it)."""
    lat, lng, radius = cap
    angle = min(radius / R_MIN * 1.001, math.pi)
    phi, lam = math.radians(lat), math.radians(lng)
    normal = (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))
    mins, maxs = [], []
    for coordinate in normal:
        to_axis = math.acos(min(1.0, max(-1.0, coordinate)))
        maxs.append(math.cos(max(to_axis - angle, 0.0)) + _BOX_PAD)
        mins.append(-math.cos(max(math.pi - to_axis - angle, 0.0)) - _BOX_PAD)
    return tuple(mins), tuple(maxs)
