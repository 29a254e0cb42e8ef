"""Route corridors: a route of (lat, lng) points and a width as the outlines of volumes
(`corridor`), for a GeoJSON LineString and a notice file's route (openline.core.geojson).

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

import itertools
import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import shapely
import shapely.affinity

from openline.core.volumes import WGS84, FloatArray, Polygon, chord_error, projection, stretch

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
