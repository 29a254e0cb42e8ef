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
from functools import cached_property
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
    cap_boxes,
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
    k = float(stretch(_reach(shape_a, shape_b)))
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
    """Polygons projected by their vertices alone (one batch), with bounds on how far each
    true image can be from that (its largest chord error) and from the centre."""

    shapes: NDArray[np.object_]
    x: FloatArray
    y: FloatArray
    offsets: NDArray[np.int64]
    counts: NDArray[np.int64]
    errors: FloatArray
    reaches: FloatArray
    valid: NDArray[np.bool_]

    def vertices(self, i: int) -> NDArray[np.object_]:
        start = self.offsets[i]
        end = start + self.counts[i]
        points: NDArray[np.object_] = shapely.points(self.x[start:end], self.y[start:end])
        return points


def _coarse(polygons: Sequence[Polygon], proj: Projection) -> _Coarse:
    counts = np.array([len(p.vertices) for p in polygons], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    vertices = np.array([v for p in polygons for v in p.vertices], dtype=np.float64)
    x, y = proj.forward(vertices[:, 0], vertices[:, 1])
    following = np.arange(len(x)) + 1
    following[offsets + counts - 1] = offsets
    rho = np.hypot(x, y)
    error = chord_error(np.hypot(x[following] - x, y[following] - y), np.maximum(rho, rho[following]))
    owner = np.repeat(np.arange(len(polygons)), counts)
    shapes = shapely.polygons(shapely.linearrings(np.column_stack([x, y]), indices=owner))
    # A vertex-only ring can cross itself where the true edges do not: no verdict then.
    valid = shapely.is_valid(shapes)
    errors = np.maximum.reduceat(error, offsets) + _ERR
    return _Coarse(shapes, x, y, offsets, counts, errors, np.maximum.reduceat(rho, offsets), valid)


class _Probe:
    """A query outline projected once, so that most candidates are settled in a batch
    without the exact test: certainly farther apart than the margin (clear), or certainly
    overlapping (a true vertex or centre lies deeper inside the other than the other's
    chord error). Centred on a circle, planar distance from the origin is geodesic
    distance; elsewhere planar distances overstate geodesic ones by at most `stretch`."""

    def __init__(self, outline: Outline, margin_m: float) -> None:
        self.outline, self.margin = outline, margin_m

    @cached_property
    def proj(self) -> Projection:
        # Made only when needed: two circles are settled without one.
        return projection(*centre(self.outline))

    @cached_property
    def ours(self) -> _Coarse | None:
        if not isinstance(self.outline, Polygon):
            return None
        ours = _coarse([self.outline], self.proj)
        shapely.prepare(ours.shapes)
        return ours

    def settle(self, outlines: Sequence[Outline]) -> list[_Verdict]:
        """Per outline: (distance, within margin) when settled, else None. The distance
        of a clear verdict is only a lower bound."""
        verdicts: list[_Verdict] = [None] * len(outlines)
        circles = [(i, o) for i, o in enumerate(outlines) if isinstance(o, Circle)]
        polygons = [(i, o) for i, o in enumerate(outlines) if isinstance(o, Polygon)]
        if circles:
            for (i, _), verdict in zip(circles, self._circles([c for _, c in circles]), strict=True):
                verdicts[i] = verdict
        if polygons:
            for (i, _), verdict in zip(polygons, self._polygons([p for _, p in polygons]), strict=True):
                verdicts[i] = verdict
        return verdicts

    def _circles(self, circles: Sequence[Circle]) -> list[_Verdict]:
        lats = np.array([c.lat for c in circles])
        lngs = np.array([c.lng for c in circles])
        radii = np.array([c.radius_m for c in circles])
        if isinstance(self.outline, Circle):
            ours = self.outline
            _, _, between = WGS84.inv(np.full_like(lats, ours.lng), np.full_like(lats, ours.lat), lngs, lats)
            gaps = np.maximum(0.0, between - radii - ours.radius_m)
            return [(float(gap), bool(gap <= self.margin)) for gap in gaps]
        if self.ours is None or not self.ours.valid[0]:
            return [None] * len(circles)
        x, y = self.proj.forward(lats, lngs)
        centres = shapely.points(x, y)
        shape, error = self.ours.shapes[0], float(self.ours.errors[0])
        planar = shapely.distance(shape, centres)
        lower = np.maximum(0.0, planar - error) / stretch(np.maximum(self.ours.reaches[0], np.hypot(x, y)))
        inside = shapely.contains(shape, centres) & (shapely.distance(shape.exterior, centres) > error)
        overlap = (planar + error <= radii) | inside
        return [
            _verdict(lo - r, bool(hit), self.margin) for lo, r, hit in zip(lower, radii, overlap, strict=True)
        ]

    def _polygons(self, polygons: Sequence[Polygon]) -> list[_Verdict]:
        theirs = _coarse(polygons, self.proj)
        if isinstance(self.outline, Circle):
            radius = self.outline.radius_m
            planar = shapely.distance(_ORIGIN, theirs.shapes)
            lower, overlap = planar - theirs.errors - radius, planar + theirs.errors <= radius
            return [
                _verdict(float(lo), bool(hit), self.margin) if ok else None
                for lo, hit, ok in zip(lower, overlap, theirs.valid, strict=True)
            ]
        ours = self.ours
        if ours is None or not ours.valid[0]:
            return [None] * len(polygons)
        planar = shapely.distance(ours.shapes[0], theirs.shapes)
        slack = ours.errors[0] + theirs.errors
        lower = np.maximum(0.0, planar - slack) / stretch(np.maximum(ours.reaches[0], theirs.reaches))
        verdicts: list[_Verdict] = []
        for i in range(len(polygons)):
            hit = planar[i] == 0 and _overlap(ours, theirs, i)
            verdicts.append(_verdict(float(lower[i]), hit, self.margin) if theirs.valid[i] else None)
        return verdicts


def _verdict(lower: float, overlap: bool, margin_m: float) -> _Verdict:
    if overlap:
        return 0.0, True
    return (lower, False) if lower > margin_m else None


def _overlap(ours: _Coarse, theirs: _Coarse, i: int) -> bool:
    """Whether a true vertex of either lies inside the other beyond its chord error."""
    return _deep(theirs.shapes[i], ours.vertices(0), float(theirs.errors[i])) or _deep(
        ours.shapes[0], theirs.vertices(i), float(ours.errors[0])
    )


def _deep(shape: shapely.Polygon, points: NDArray[np.object_], error: float) -> bool:
    inside = shapely.contains(shape, points)
    if not inside.any():
        return False
    return bool((inside & (shapely.distance(shape.exterior, points) > error)).any())


# --- the index -----------------------------------------------------------------------------

# Altitude is in n-vector units (metres over R_MIN) and 4 h of time spans about what 25 km
# does (4e-3), so that no dimension dwarfs the others in the R-tree's node splits. Scaling
# changes no answer: every box is padded for rounding.
_ALT_SCALE = 1.0 / R_MIN
_TIME_SCALE = 1.0 / 3.6e12
_OPEN_END = 1e6
_PAD = 1e-9
_CHUNK = 65_536


def _boxes(volumes: Sequence[Volume], caps: FloatArray | None = None) -> FloatArray:
    """Five-dimensional boxes (n-vector x, y, z; altitude; time), one row per volume, as
    the R-tree takes them: the five minima, then the five maxima. With `caps` (their
    `bounding_caps`), the boxes round the caps: looser, and quicker for one volume."""
    if caps is None:
        space_min, space_max = nvector_boxes([v.outline for v in volumes])
    else:
        space_min, space_max = cap_boxes(caps)
    alt = np.array([(v.alt_lower_m, v.alt_upper_m) for v in volumes], dtype=np.float64) * _ALT_SCALE
    start = np.array([v.start for v in volumes], dtype=np.float64) * _TIME_SCALE
    end = np.array([_OPEN_END if v.end is None else v.end * _TIME_SCALE for v in volumes])
    return np.column_stack(
        [space_min, alt[:, 0] - _PAD, start - _PAD, space_max, alt[:, 1] + _PAD, end + _PAD]
    )


def _margin_growth(margins: Margins) -> FloatArray:
    """How far the margins reach in each dimension of the boxes, rounded up. A point within
    h metres of another has a normal within h / R_MIN of it (chord <= angle)."""
    space = margins.horizontal_m / R_MIN
    reach = np.array(
        [
            space,
            space,
            space,
            margins.vertical_m * _ALT_SCALE,
            margins.minutes * _MICROS_PER_MINUTE * _TIME_SCALE,
        ]
    )
    grow: FloatArray = reach * (1 + 1e-9) + _PAD
    return np.concatenate([-grow, grow])


def _properties() -> index.Property:
    properties = index.Property()
    properties.dimension = 5
    properties.leaf_capacity = properties.index_capacity = 40
    properties.near_minimum_overlap_factor = 16
    return properties


def _dimension_order(rows: FloatArray) -> NDArray[np.int64]:
    """The box columns with the dimensions most worth splitting first: the bulk loader
    (sort-tile-recursive) slices dimension by dimension in order, and slicing along one
    where the data hardly spread (an n-vector coordinate that is nearly constant over the
    region) only wastes its slabs. Worth is range over mean extent."""
    extent = np.maximum((rows[:, 5:] - rows[:, :5]).mean(axis=0), 1e-12)
    spread = rows[:, 5:].max(axis=0) - rows[:, :5].min(axis=0)
    dims = np.argsort(-spread / extent, kind="stable")
    return np.concatenate([dims, dims + 5]).astype(np.int64)


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
        # The query's box is its bounding cap's, grown by the margins: cheaper to make for
        # one volume than the tight box, and its extra candidates fall to the cap test.
        cap = bounding_caps([volume.outline])
        window = (_boxes([volume], cap)[0] + _margin_growth(margins))[self._order]
        candidates, ids = [], []
        for entry_id in sorted(self._tree.intersection(window)):
            key, other = self._entries[entry_id]
            time = _time_overlap(volume, other, margins.minutes)
            altitude = _altitude_overlap(volume, other, margins.vertical_m)
            if time is not None and altitude is not None:
                candidates.append((key, other, time, altitude))
                ids.append(entry_id)
        if not candidates:
            return []
        # Caps farther apart than the margin hold outlines that are too (with 0.5 mm to
        # spare for rounding): clear without projecting anything.
        theirs = self._caps[ids]
        lat, lng, reach = cap[0]
        n = len(ids)
        _, _, between = WGS84.inv(np.full(n, lng), np.full(n, lat), theirs[:, 1], theirs[:, 0])
        near = between - reach - theirs[:, 2] <= margins.horizontal_m + _ERR
        candidates = [c for c, ok in zip(candidates, near, strict=True) if ok]
        if not candidates:
            return []
        verdicts = _Probe(volume.outline, margins.horizontal_m).settle([c[1].outline for c in candidates])
        found = []
        for (key, other, time, altitude), verdict in zip(candidates, verdicts, strict=True):
            distance = _confirmed_distance(volume.outline, other.outline, margins.horizontal_m, verdict)
            if distance is not None:
                found.append((key, PairResult(True, time, altitude, distance)))
        return found


def _confirmed_distance(a: Outline, b: Outline, margin_m: float, verdict: _Verdict) -> float | None:
    """The distance between two outlines if they are within the margin, else None."""
    distance, near = verdict or _horizontal(a, b, margin_m, exact_distance=False)
    if not near:
        return None
    if distance > 0:
        distance, _ = _horizontal(a, b, margin_m, exact_distance=True)
    return distance
