"""Conflicts between 4D volumes: the exact pair test, the R-tree that finds the pairs worth
testing, and a brute-force oracle to check the R-tree against.

Two volumes conflict when their time windows come within the line's margin in minutes,
their altitude bands within the vertical margin, and their outlines within the horizontal
margin (closed intervals: touching counts; with no margins, that is plain overlap). A
margin is the separation the line demands between two activities.

Outlines within 1 cm of each other either way may be called either way (ASTM F3548 /
InterUSS GEN0500). This module errs by about a millimetre:

- two circles: the geodesic distance between their centres, less both radii (pyproj);
- a circle and a polygon: the polygon in the azimuthal equidistant projection centred on
  the circle's centre, where distance from the origin is geodesic distance, so the gap
  is (distance from the origin to the polygon) - radius, off by the 0.5 mm of
  `volumes.outline_in`;
- two polygons: both in one projection centred midway between them. Whether they meet is
  answered within 0.5 mm (the projection is one-to-one). How far apart they are is first
  read off that projection: the geodesic length between the two points found nearest
  there, an upper bound that exceeds the truth by at most its planar distance times
  `stretch - 1` (4e-6 within 30 km of the centre). When that bound leaves the verdict open,
  or `check` is asked, the distance is made exact: on a surface of positive curvature
  (every ellipsoid) the shortest path between two disjoint geodesic polygons ends at a
  vertex of one of them (the second variation of length is negative between two
  geodesics), and a vertex's distance to the other polygon is exact in the projection
  centred on that vertex.

Pairs more than 1,000 km apart (and farther than the margin) are clear; their distance is
only reported, to about a millionth of itself.

The index holds one box per volume in five dimensions: the three coordinates of the unit
normal (n-vector), altitude and time. N-vector boxes have no seam at the antimeridian and
no singularity at the poles, and growing them by h / R_MIN covers a margin of h metres,
since no normal turns faster than that. A box covers samples of the outline's boundary,
padded by how far the boundary can bow out between samples, plus any of the six axis
points (the poles; 0 and 90 degrees of longitude and their opposites) that could be
inside it: a coordinate's extreme over a patch of sphere lies on its boundary or at one
of those points. A box is never too small, so the index never misses a candidate; every
candidate then goes through the exact test, after quick verdicts that are bounded the
same way (`_Probe`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

import numpy as np
import shapely
from numpy.typing import NDArray
from rtree import index

from openline.core.volumes import (
    MAX_CHORD_ERROR_M,
    R_MIN,
    WGS84,
    Circle,
    FloatArray,
    Outline,
    Polygon,
    Projection,
    Volume,
    bounding_cap,
    bounding_caps,
    cap_box,
    centre,
    chord_error,
    nvector_boxes,
    outline_in,
    projection,
    stretch,
    vertex_arrays,
)

TOLERANCE_M = 0.01
_ERR = MAX_CHORD_ERROR_M
# Pairs farther apart than this are only measured for the record (see _far_distance).
_FAR_M = 1_000_000.0
_ORIGIN = shapely.Point(0.0, 0.0)
_MICROS_PER_MINUTE = 60_000_000

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Margins:
    """The separation a line demands: metres apart, metres above or below, minutes apart."""

    horizontal_m: float = 0.0
    vertical_m: float = 0.0
    minutes: int = 0

    def __post_init__(self) -> None:
        for name in ("horizontal_m", "vertical_m", "minutes"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"margin {name} must be a non-negative number, got {value}")


@dataclass(frozen=True, slots=True)
class PairResult:
    """How two volumes stand. `time` and `altitude` are where they infringe the margins:
    their overlap, or, when they are apart by less than the margin, the gap between them;
    None when they are farther apart than that. `distance_m` is the minimum horizontal
    distance between the outlines, 0 when they touch or overlap."""

    conflict: bool
    time: tuple[int, int | None] | None
    altitude: tuple[float, float] | None
    distance_m: float


def check(a: Volume, b: Volume, margins: Margins = Margins()) -> PairResult:
    """The exact test of one pair (see the module docstring for the error bounds)."""
    time = _time_overlap(a, b, margins.minutes)
    altitude = _altitude_overlap(a, b, margins.vertical_m)
    distance, near = _horizontal(a.outline, b.outline, margins.horizontal_m, exact_distance=True)
    return PairResult(time is not None and altitude is not None and near, time, altitude, distance)


def conflict(a: Volume, b: Volume, margins: Margins = Margins()) -> PairResult | None:
    """How two volumes conflict, or None when they do not: `check` for the conflicting
    pairs only, without measuring how far apart a clear pair is (the costly part)."""
    time = _time_overlap(a, b, margins.minutes)
    if time is None:
        return None
    altitude = _altitude_overlap(a, b, margins.vertical_m)
    if altitude is None:
        return None
    distance = _confirmed_distance(a.outline, b.outline, margins.horizontal_m, None)
    return None if distance is None else PairResult(True, time, altitude, distance)


def brute_force(volumes: Mapping[K, Volume], candidate: Volume, margins: Margins = Margins()) -> list[K]:
    """The keys of every volume that conflicts with `candidate`, found without an index by
    testing each one exactly: the oracle `ConflictIndex.query` is held to."""
    return [key for key, volume in volumes.items() if conflict(candidate, volume, margins) is not None]


# --- time and altitude --------------------------------------------------------------------


def _time_overlap(a: Volume, b: Volume, minutes: int) -> tuple[int, int | None] | None:
    later_start = max(a.start, b.start)
    ends = [end for end in (a.end, b.end) if end is not None]
    earlier_end = min(ends) if ends else None
    if earlier_end is None or later_start <= earlier_end:
        return later_start, earlier_end
    if later_start - earlier_end <= minutes * _MICROS_PER_MINUTE:
        return earlier_end, later_start
    return None


def _altitude_overlap(a: Volume, b: Volume, margin_m: float) -> tuple[float, float] | None:
    higher_lower = max(a.alt_lower_m, b.alt_lower_m)
    lower_upper = min(a.alt_upper_m, b.alt_upper_m)
    if higher_lower <= lower_upper:
        return higher_lower, lower_upper
    if higher_lower - lower_upper <= margin_m:
        return lower_upper, higher_lower
    return None


# --- the exact horizontal test -------------------------------------------------------------


def _horizontal(a: Outline, b: Outline, margin_m: float, *, exact_distance: bool) -> tuple[float, bool]:
    """(distance, whether it is within margin_m). Without exact_distance, the distance of a
    pair that is not within the margin may be any lower bound above the margin."""
    if isinstance(a, Circle) and isinstance(b, Circle):
        distance = _circle_distance(a, b)
        return distance, distance <= margin_m
    gap = _cap_gap(a, b)
    if gap > margin_m and not exact_distance:
        return gap, False
    if gap > max(margin_m, _FAR_M):
        return _far_distance(a, b, gap), False
    if isinstance(a, Circle):
        distance = _circle_distance(a, b)
    elif isinstance(b, Circle):
        distance = _circle_distance(b, a)
    else:
        return _polygons(a, b, margin_m, exact_distance)
    return distance, distance <= margin_m


def _far_distance(a: Outline, b: Outline, gap: float) -> float:
    """How far apart two outlines are that are more than _FAR_M apart: only ever reported,
    never compared with a margin, so measured to about a millionth of itself in one
    projection midway (centred on either, the other could sit near its antipode). A circle
    is measured from its centre, less its radius, which the projection's stretching at
    thousands of kilometres cannot bend."""
    proj = projection(*_between(a, b))
    max_error = max(_ERR, gap * 1e-6)
    line = shapely.shortest_line(_far_shape(a, proj, max_error), _far_shape(b, proj, max_error))
    (x1, y1), (x2, y2) = line.coords
    lats, lngs = proj.inverse(np.array([x1, x2]), np.array([y1, y2]))
    radii = sum(outline.radius_m for outline in (a, b) if isinstance(outline, Circle))
    return float(WGS84.inv(lngs[0], lats[0], lngs[1], lats[1])[2]) - radii


def _far_shape(outline: Outline, proj: Projection, max_error: float) -> shapely.Geometry:
    if isinstance(outline, Polygon):
        return outline_in(outline, proj, max_error)
    x, y = proj.forward(np.array([outline.lat]), np.array([outline.lng]))
    return shapely.Point(float(x[0]), float(y[0]))


def _cap_gap(a: Outline, b: Outline) -> float:
    """A lower bound on the distance: the gap between caps that hold each outline."""
    lat_a, lng_a, reach_a = bounding_cap(a)
    lat_b, lng_b, reach_b = bounding_cap(b)
    _, _, between = WGS84.inv(lng_a, lat_a, lng_b, lat_b)
    return float(between - reach_a - reach_b)


def _circle_distance(circle: Circle, other: Outline) -> float:
    if isinstance(other, Circle):
        _, _, between = WGS84.inv(circle.lng, circle.lat, other.lng, other.lat)
        return max(0.0, float(between) - circle.radius_m - other.radius_m)
    shape = outline_in(other, projection(circle.lat, circle.lng))
    return max(0.0, float(shapely.distance(_ORIGIN, shape)) - circle.radius_m)


def _between(a: Outline, b: Outline) -> tuple[float, float]:
    """The point midway along the geodesic between the outlines' centres."""
    lat_a, lng_a = centre(a)
    lat_b, lng_b = centre(b)
    azimuth, _, between = WGS84.inv(lng_a, lat_a, lng_b, lat_b)
    lng, lat, _ = WGS84.fwd(lng_a, lat_a, azimuth, between / 2)
    return float(lat), float(lng)


def _polygons(a: Polygon, b: Polygon, margin_m: float, exact_distance: bool) -> tuple[float, bool]:
    proj = projection(*_between(a, b))
    shape_a, shape_b = outline_in(a, proj), outline_in(b, proj)
    if shape_a.intersects(shape_b):
        return 0.0, True
    (x1, y1), (x2, y2) = shapely.shortest_line(shape_a, shape_b).coords
    lats, lngs = proj.inverse(np.array([x1, x2]), np.array([y1, y2]))
    _, _, upper_m = WGS84.inv(lngs[0], lats[0], lngs[1], lats[1])
    upper = float(upper_m)
    k = stretch(_reach(shape_a, shape_b))
    lower = max(0.0, math.hypot(x2 - x1, y2 - y1) - 2 * _ERR) / k
    settled = upper <= margin_m or lower > margin_m
    if upper - lower <= 2 * _ERR or (settled and not exact_distance):
        return upper, upper <= margin_m
    exact = _vertex_distance(a, shape_b, b, proj, k, upper)
    exact = _vertex_distance(b, shape_a, a, proj, k, exact)
    return exact, exact <= margin_m


def _reach(*shapes: shapely.Polygon) -> float:
    """How far from the projection's centre any point of the shapes lies."""
    coords = shapely.get_coordinates(list(shapes))
    return float(np.hypot(coords[:, 0], coords[:, 1]).max())


def _vertex_distance(
    polygon: Polygon, other_shape: shapely.Polygon, other: Polygon, proj: Projection, k: float, best: float
) -> float:
    """min(best, the exact distance from any vertex of `polygon` to `other`), measuring
    only the vertices that the shared projection cannot rule out."""
    lats, lngs = vertex_arrays(polygon)
    x, y = proj.forward(lats, lngs)
    planar = shapely.distance(other_shape, shapely.points(x, y))
    for i in np.argsort(planar):
        if (planar[i] - 2 * _ERR) / k > best:
            break
        near = projection(float(lats[i]), float(lngs[i]))
        best = min(best, float(shapely.distance(_ORIGIN, outline_in(other, near))))
    return best


# --- quick verdicts for the index ----------------------------------------------------------

_Verdict = tuple[float, bool] | None


@dataclass(frozen=True, slots=True)
class _Coarse:
    """Polygons projected by their vertices alone, and circles by their centres (one
    batch), with bounds on how far each polygon's true image can be from that (its largest
    chord error) and on how much the projection lengthens anything in the batch (the
    `stretch` at its farthest point from the projection's centre).
    Polygon n's vertices are rows offsets[n] to offsets[n] + counts[n] - 1 of xy, and the
    row after them closes its ring (its first vertex again)."""

    shapes: NDArray[np.object_]
    xy: FloatArray
    offsets: NDArray[np.int64]
    counts: NDArray[np.int64]
    errors: FloatArray
    stretch: float
    valid: NDArray[np.bool_]
    points: NDArray[np.object_]
    radii: FloatArray


_NO_POINTS: NDArray[np.object_] = np.empty(0, dtype=object)


def _coarse(polygons: Sequence[Polygon], proj: Projection, circles: Sequence[Circle] = ()) -> _Coarse:
    counts = np.fromiter((len(p.vertices) for p in polygons), dtype=np.int64, count=len(polygons))
    # Each ring closed by its first vertex again (one more point to project), so that the
    # polygons are made from the projected rows in one call.
    where = [v for p in polygons for v in (*p.vertices, p.vertices[0])]
    where.extend((c.lat, c.lng) for c in circles)
    coords = np.array(where, dtype=np.float64)
    all_x, all_y = proj.forward(coords[:, 0], coords[:, 1])
    xy = np.column_stack([all_x, all_y])
    rows = len(xy) - len(circles)
    rings = xy[:rows]
    ring_offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts + 1, out=ring_offsets[1:])
    offsets = ring_offsets[:-1]
    every_rho = np.hypot(all_x, all_y)
    rho = every_rho[:rows]
    step = np.diff(rings, axis=0)
    # Row i's edge runs to row i + 1; a ring's last row has none (the next ring follows).
    error = np.zeros(rows)
    error[:-1] = chord_error(np.hypot(step[:, 0], step[:, 1]), np.maximum(rho[:-1], rho[1:]))
    error[offsets + counts] = 0.0
    shapes = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, rings, (ring_offsets, np.arange(len(counts) + 1))
    )
    # A vertex-only ring can cross itself where the true edges do not: no verdict then.
    valid = shapely.is_valid(shapes)
    return _Coarse(
        shapes,
        rings,
        offsets,
        counts,
        np.maximum.reduceat(error, offsets) + _ERR,
        stretch(float(every_rho.max())),
        valid,
        shapely.points(xy[rows:]) if circles else _NO_POINTS,
        np.array([c.radius_m for c in circles], dtype=np.float64),
    )


def _starts(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Where each run of `counts` starts in their concatenation."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _runs(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """The rows start, start + 1, ... for each (start, count), run after run."""
    rows: NDArray[np.int64] = np.arange(int(counts.sum())) + np.repeat(starts - _starts(counts), counts)
    return rows


# Probes project in one of a fixed set of projections, centred on whole degrees: made once
# and reused by every query near them (making one costs as much as the rest of a probe).
# The centre is then at most about 80 km from the query's, where `stretch` is 1 + 3e-5.
# They have a cache of their own, so that the one-off projections of exact tests never
# evict them (about 7 kB each), and an index makes those its volumes' checks will need
# when it is built (`_prepare_cells`).
_PROBE_GRID_DEG = 1.0
_PROBE_CELLS = 4096


def _cell(lat: float, lng: float) -> tuple[float, float]:
    """The centre of the probe projection for a query centred at (lat, lng): whole degrees,
    and at a pole the pole itself, whatever the longitude says."""
    step = _PROBE_GRID_DEG
    cell_lat = round(lat / step) * step
    return cell_lat, 0.0 if abs(cell_lat) >= 90 else round(lng / step) * step


def _probe_projection(lat: float, lng: float) -> Projection:
    return _cell_projection(*_cell(lat, lng))


@lru_cache(maxsize=_PROBE_CELLS)
def _cell_projection(lat: float, lng: float) -> Projection:
    return Projection(lat, lng)


def _prepare_cells(caps: FloatArray) -> None:
    """Make the probe projections of the cells that hold the caps' centres and of the cells
    round them, where a query that meets one of these caps is centred (a station's checks
    are then never the first in their cell): the most crowded cells first, and no more
    than the cache holds. Longitudes 180 and -180 are one meridian, and a query rounds to
    either."""
    if not len(caps):
        return
    step = _PROBE_GRID_DEG
    cells, counts = np.unique(np.round(caps[:, :2] / step).astype(np.int64), axis=0, return_counts=True)
    half = round(180 / step)
    wanted: dict[tuple[float, float], None] = {}
    for lat, lng in cells[np.argsort(-counts, kind="stable")].tolist():
        if len(wanted) >= _PROBE_CELLS:
            break
        for near_lat in (lat - 1, lat, lat + 1):
            if abs(near_lat * step) > 90:
                continue
            for near_lng in (lng - 1, lng, lng + 1):
                wrapped = (near_lng + half) % (2 * half) - half
                wanted[_cell(near_lat * step, wrapped * step)] = None
                if wrapped == -half:
                    wanted[_cell(near_lat * step, half * step)] = None
    for lat, lng in list(wanted)[:_PROBE_CELLS]:
        _cell_projection(lat, lng)


class _Probe:
    """A query outline and its candidates projected together (one batch), so that most
    candidates are settled without the exact test: certainly farther apart than the margin
    (clear), or certainly overlapping (a true vertex or centre lies deeper inside the other
    than the other's chord error). Planar distances there overstate geodesic ones by at
    most `stretch`, and never understate them; a circle is its centre and radius."""

    def __init__(self, outline: Outline, margin_m: float, at: tuple[float, float]) -> None:
        self.outline, self.margin, self.at = outline, margin_m, at

    def settle(self, outlines: Sequence[Outline]) -> list[_Verdict]:
        """Per outline: (distance, within margin) when settled, else None. The distance
        of a clear verdict is only a lower bound."""
        circles = [(i, o) for i, o in enumerate(outlines) if isinstance(o, Circle)]
        polygons = [(i, o) for i, o in enumerate(outlines) if isinstance(o, Polygon)]
        verdicts: list[_Verdict] = [None] * len(outlines)
        query = self.outline
        if isinstance(query, Circle):
            for i, circle in circles:  # two circles need no projection
                gap = _circle_distance(query, circle)
                verdicts[i] = gap, gap <= self.margin
            if polygons:
                batch = _coarse([p for _, p in polygons], _probe_projection(*self.at), [query])
                for (i, _), verdict in zip(polygons, _around_circle(batch, self.margin), strict=True):
                    verdicts[i] = verdict
            return verdicts
        # Ours is polygon 0 of the batch, theirs 1, 2, ...; their circles are its points.
        proj = _probe_projection(*self.at)
        batch = _coarse([query, *(p for _, p in polygons)], proj, [c for _, c in circles])
        if not batch.valid[0]:
            return verdicts
        for (i, _), verdict in zip([*polygons, *circles], _around_polygon(batch, self.margin), strict=True):
            verdicts[i] = verdict
        return verdicts


def _around_circle(batch: _Coarse, margin_m: float) -> list[_Verdict]:
    """Verdicts on each polygon of the batch against its one circle (the query). The true
    geodesic distance from the circle's centre to a polygon is at most the planar one plus
    the polygon's chord error, and at least that less the error, over the stretch."""
    centre, radius, errors = batch.points[0], float(batch.radii[0]), batch.errors
    planar = shapely.distance(batch.shapes, centre)
    lower = np.maximum(0.0, planar - errors) / batch.stretch - radius
    inside = shapely.contains(batch.shapes, centre) & (
        shapely.distance(shapely.get_exterior_ring(batch.shapes), centre) > errors
    )
    overlap = (planar + errors <= radius) | inside
    return [
        _verdict(bound, hit, margin_m) if ok else None
        for bound, hit, ok in zip(lower.tolist(), overlap.tolist(), batch.valid.tolist(), strict=True)
    ]


def _around_polygon(batch: _Coarse, margin_m: float) -> list[_Verdict]:
    """Verdicts on each other polygon of the batch, then each circle, against polygon 0
    (the query, valid), in shared calls. Bounds as in `_around_circle`, with both
    polygons' chord errors between two polygons. Certain overlaps: a circle's centre
    within its radius of the query, less the query's chord error; a circle's centre, or a
    true vertex of a polygon touching the query, inside the query deeper than the query's
    chord error; a true vertex of the query inside a touching polygon deeper than that
    polygon's chord error."""
    count, circles = len(batch.shapes) - 1, len(batch.points)
    query, error = batch.shapes[0], float(batch.errors[0])
    planar = shapely.distance(query, np.concatenate([batch.shapes[1:], batch.points]))
    slack = np.concatenate([batch.errors[1:] + error, np.full(circles, error)])
    lower = np.maximum(0.0, planar - slack) / batch.stretch
    lower[count:] -= batch.radii
    overlap = np.zeros(len(planar), dtype=bool)
    overlap[count:] = planar[count:] + error <= batch.radii
    valid = batch.valid[1:]
    touching = np.flatnonzero((planar[:count] == 0) & valid) + 1
    tested = batch.points  # points deep inside the query settle circles and polygons alike
    if len(touching):
        starts, counts = batch.offsets[touching], batch.counts[touching]
        ours = int(batch.counts[0])
        vertices = shapely.points(batch.xy[np.concatenate([np.arange(ours), _runs(starts, counts)])])
        tested = np.concatenate([tested, vertices[ours:]])
        shapes, errors = batch.shapes[touching], batch.errors[touching]
        ours_in = shapely.contains(shapes[:, None], vertices[None, :ours]) & (
            shapely.distance(shapely.get_exterior_ring(shapes)[:, None], vertices[None, :ours])
            > errors[:, None]
        )
        overlap[touching - 1] = ours_in.any(axis=1)
    if len(tested):
        deep = shapely.contains(query, tested) & (
            shapely.distance(shapely.get_exterior_ring(query), tested) > error
        )
        overlap[count:] |= deep[:circles]
        if len(touching):
            overlap[touching - 1] |= np.logical_or.reduceat(deep[circles:], _starts(counts))
    flags = np.concatenate([valid, np.ones(circles, dtype=bool)])
    return [
        _verdict(bound, hit, margin_m) if ok else None
        for bound, hit, ok in zip(lower.tolist(), overlap.tolist(), flags.tolist(), strict=True)
    ]


def _verdict(lower: float, overlap: bool, margin_m: float) -> _Verdict:
    if overlap:
        return 0.0, True
    return (lower, False) if lower > margin_m else None


# --- the index -----------------------------------------------------------------------------

# Altitude is in n-vector units (metres over R_MIN) and 4 h of time spans about what 25 km
# does (4e-3), so that no dimension dwarfs the others in the R-tree's node splits. Scaling
# changes no answer: every box is padded for rounding.
_ALT_SCALE = 1.0 / R_MIN
_TIME_SCALE = 1.0 / 3.6e12
_OPEN_END = 1e6
_PAD = 1e-9
_CHUNK = 65_536


def _boxes(volumes: Sequence[Volume]) -> FloatArray:
    """Five-dimensional boxes (n-vector x, y, z; altitude; time), one row per volume, as
    the R-tree takes them: the five minima, then the five maxima."""
    space_min, space_max = nvector_boxes([v.outline for v in volumes])
    alt = np.array([(v.alt_lower_m, v.alt_upper_m) for v in volumes], dtype=np.float64) * _ALT_SCALE
    start = np.array([v.start for v in volumes], dtype=np.float64) * _TIME_SCALE
    end = np.array([_OPEN_END if v.end is None else v.end * _TIME_SCALE for v in volumes])
    return np.column_stack(
        [space_min, alt[:, 0] - _PAD, start - _PAD, space_max, alt[:, 1] + _PAD, end + _PAD]
    )


def _window(volume: Volume, cap: tuple[float, float, float], margins: Margins) -> list[float]:
    """The query's box in the layout of `_boxes`, round its bounding cap (looser than the
    tight box, and far quicker to make for one volume), grown by the margins: scalar
    arithmetic, since numpy's per-call cost dominates for a single row."""
    space_min, space_max = cap_box(cap)
    end = _OPEN_END if volume.end is None else volume.end * _TIME_SCALE
    row = [
        *space_min,
        volume.alt_lower_m * _ALT_SCALE - _PAD,
        volume.start * _TIME_SCALE - _PAD,
        *space_max,
        volume.alt_upper_m * _ALT_SCALE + _PAD,
        end + _PAD,
    ]
    return [value + grow for value, grow in zip(row, _margin_growth(margins), strict=True)]


@lru_cache(maxsize=64)
def _margin_growth(margins: Margins) -> tuple[float, ...]:
    """How far the margins reach in each dimension of the boxes, rounded up: what to add to
    a box's five minima, then its five maxima. A point within h metres of another has a
    normal within h / R_MIN of it (chord <= angle)."""
    space = margins.horizontal_m / R_MIN
    reach = (
        space,
        space,
        space,
        margins.vertical_m * _ALT_SCALE,
        margins.minutes * _MICROS_PER_MINUTE * _TIME_SCALE,
    )
    grow = [value * (1 + 1e-9) + _PAD for value in reach]
    return tuple([-g for g in grow] + grow)


def _properties() -> index.Property:
    properties = index.Property()
    properties.dimension = 5
    properties.leaf_capacity = properties.index_capacity = 40
    properties.near_minimum_overlap_factor = 16
    return properties


def _dimension_order(rows: FloatArray) -> NDArray[np.int64]:
    """The box columns with the dimensions most worth splitting first: the bulk loader
    (sort-tile-recursive) slices dimension by dimension in order, and slicing along one
    where the data hardly spread only wastes its slabs. Worth is range over mean extent.
    The three n-vector coordinates describe a surface, so two of them place a volume
    nearly as well as three: the third comes after the worthier of altitude and time
    (at 10^6 volumes, 20% quicker lookups than the three first)."""
    extent = np.maximum((rows[:, 5:] - rows[:, :5]).mean(axis=0), 1e-12)
    spread = rows[:, 5:].max(axis=0) - rows[:, :5].min(axis=0)
    worth = spread / extent
    space = sorted(range(3), key=lambda d: -worth[d])
    other = sorted(range(3, 5), key=lambda d: -worth[d])
    dims = np.array([space[0], space[1], other[0], space[2], other[1]], dtype=np.int64)
    return np.concatenate([dims, dims + 5])


class ConflictIndex(Generic[K]):
    """The active volumes, each under a key, in an R-tree (libspatialindex) of their
    five-dimensional boxes. `query` returns only what the exact test confirms."""

    def __init__(self) -> None:
        self._tree = index.Index(properties=_properties())
        self._entries: dict[int, tuple[K, Volume]] = {}
        self._ids: dict[K, int] = {}
        # Row i is entry i's box as the tree holds it (the tree needs it to delete the entry).
        self._rows: FloatArray = np.empty((64, 10))
        self._caps: FloatArray = np.empty((64, 3))  # row i: entry i's bounding cap
        self._order: NDArray[np.int64] = np.arange(10)
        self._next_id = 0

    @classmethod
    def bulk(cls, items: Iterable[tuple[K, Volume]]) -> ConflictIndex[K]:
        """An index of many volumes at once, built by libspatialindex's bulk loader from
        arrays: far faster than adding them one by one. Keys must differ."""
        made: ConflictIndex[K] = cls()
        for key, volume in items:
            if key in made._ids:
                raise ValueError(f"duplicate key {key!r}")
            made._ids[key] = made._next_id
            made._entries[made._next_id] = (key, volume)
            made._next_id += 1
        volumes = [volume for _, volume in made._entries.values()]
        if volumes:
            rows = np.concatenate([_boxes(volumes[i : i + _CHUNK]) for i in range(0, len(volumes), _CHUNK)])
            made._order = _dimension_order(rows)
            made._rows = np.ascontiguousarray(rows[:, made._order])
            made._caps = np.concatenate(
                [
                    bounding_caps([v.outline for v in volumes[i : i + _CHUNK]])
                    for i in range(0, len(volumes), _CHUNK)
                ]
            )
            ids = np.arange(len(volumes), dtype=np.int64)
            made._tree = index.Index((ids, made._rows[:, :5], made._rows[:, 5:]), properties=_properties())
            _prepare_cells(made._caps)
        return made

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def add(self, key: K, volume: Volume) -> None:
        """Index `volume` under `key`, replacing what the key held (an amended notice)."""
        if key in self._ids:
            self.remove(key)
        entry_id = self._next_id
        self._next_id += 1
        if entry_id == len(self._rows):
            self._rows = np.concatenate([self._rows, np.empty_like(self._rows)])
            self._caps = np.concatenate([self._caps, np.empty_like(self._caps)])
        box = _boxes([volume])[0][self._order]
        self._rows[entry_id] = box
        self._caps[entry_id] = bounding_caps([volume.outline])[0]
        _prepare_cells(self._caps[entry_id : entry_id + 1])
        self._tree.insert(entry_id, box)
        self._ids[key] = entry_id
        self._entries[entry_id] = (key, volume)

    def remove(self, key: K) -> None:
        """Drop the volume under `key` (KeyError if there is none)."""
        entry_id = self._ids.pop(key)
        del self._entries[entry_id]
        self._tree.delete(entry_id, self._rows[entry_id])

    def query(self, volume: Volume, margins: Margins = Margins()) -> list[tuple[K, PairResult]]:
        """Every indexed volume that conflicts with `volume`, with how, in the order they
        were indexed. Each is confirmed by the exact test, never by its box alone."""
        cap = bounding_cap(volume.outline)
        ids = self._lookup(volume, cap, margins)
        if not ids:
            return []
        entries = [self._entries[entry_id] for entry_id in ids]
        results = confirm(volume, [other for _, other in entries], margins, self._caps[ids], cap)
        return [
            (key, result) for (key, _), result in zip(entries, results, strict=True) if result is not None
        ]

    def candidates(self, volume: Volume, margins: Margins = Margins()) -> list[K]:
        """The keys whose boxes meet `volume`'s window: what the R-tree alone finds, a
        superset of `query`'s keys. For measuring the lookup; never an answer."""
        ids = self._lookup(volume, bounding_cap(volume.outline), margins)
        return [self._entries[entry_id][0] for entry_id in ids]

    def _lookup(self, volume: Volume, cap: tuple[float, float, float], margins: Margins) -> list[int]:
        window = _window(volume, cap, margins)
        return sorted(self._tree.intersection([window[i] for i in self._order.tolist()]))


def confirm(
    volume: Volume,
    candidates: Sequence[Volume],
    margins: Margins | Sequence[Margins] = Margins(),
    caps: FloatArray | None = None,
    cap: tuple[float, float, float] | None = None,
) -> list[PairResult | None]:
    """`conflict(volume, c, margins)` for each of a handful of candidates (those an index
    found), at a fraction of the cost: time and altitude first; then candidates whose
    bounding caps are farther apart than the margin are clear without projecting
    anything; the rest are settled in one batch (`_Probe`), and only what that leaves
    open goes to the exact test. `margins` is one for all or one per candidate; `caps`
    are the candidates' `bounding_caps` when known, `cap` the volume's."""
    each = [margins] * len(candidates) if isinstance(margins, Margins) else list(margins)
    results: list[PairResult | None] = [None] * len(candidates)
    timed = []
    for i, (other, m) in enumerate(zip(candidates, each, strict=True)):
        time = _time_overlap(volume, other, m.minutes)
        altitude = _altitude_overlap(volume, other, m.vertical_m) if time is not None else None
        if altitude is not None:
            timed.append((i, time, altitude))
    if not timed:
        return results
    # Caps farther apart than the margin hold outlines that are too (with 0.5 mm to spare
    # for rounding). One scalar geodesic per candidate: there are a handful.
    lat, lng, reach = cap or bounding_cap(volume.outline)
    if caps is None:
        theirs = bounding_caps([candidates[i].outline for i, _, _ in timed]).tolist()
    else:
        theirs = caps[[i for i, _, _ in timed]].tolist()
    near = []
    for (i, time, altitude), (their_lat, their_lng, their_reach) in zip(timed, theirs, strict=True):
        _, _, between = WGS84.inv(lng, lat, their_lng, their_lat)
        if between - reach - their_reach <= each[i].horizontal_m + _ERR:
            near.append((i, time, altitude))
    if not near:
        return results
    # One probe at the widest margin: an overlap holds at any margin, and a pair farther
    # apart than the widest is farther than any; the rest go to the exact test.
    widest = max(each[i].horizontal_m for i, _, _ in near)
    verdicts = _Probe(volume.outline, widest, (lat, lng)).settle([candidates[i].outline for i, _, _ in near])
    for (i, time, altitude), verdict in zip(near, verdicts, strict=True):
        distance = _confirmed_distance(volume.outline, candidates[i].outline, each[i].horizontal_m, verdict)
        if distance is not None:
            results[i] = PairResult(True, time, altitude, distance)
    return results


def _confirmed_distance(a: Outline, b: Outline, margin_m: float, verdict: _Verdict) -> float | None:
    """The distance between two outlines if they are within the margin, else None."""
    distance, near = verdict or _horizontal(a, b, margin_m, exact_distance=False)
    if not near:
        return None
    if distance > 0:
        distance, _ = _horizontal(a, b, margin_m, exact_distance=True)
    return distance
