"""The notices map draws a polygon's edges as the conflict check tests them, along their
WGS84 geodesics: the console's map data traces each edge through points of its geodesic
(pyproj), close enough that Leaflet's straight lines in Web Mercator stray from it by
under a metre; across the antimeridian unwrapped, round a pole run on to the pole; and the
notice's own `extents`, which the API and the CLI show, stay as sent. A circle likewise:
traced through points radius_m from its centre on the ellipsoid where L.circle, drawn for
a sphere, would stray by a metre or more, within a budget of points for the page."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from pyproj import Transformer
from pyproj.enums import TransformDirection

from openline.core.clock import rfc3339
from openline.services.accounts import Role
from openline.services.notice_view import (
    MAP_CIRCLE_POINTS_PER_PAGE,
    MAP_CIRCLE_TRACED_ABOVE_M,
    MAP_ERROR_M,
    MAP_POINTS_PER_CIRCLE,
    MAP_POINTS_PER_EDGE,
    circle_error_m,
    drawn_circles,
    drawn_rings,
)
from tests.inproc import Node
from tests.notice_docs import HOUR, WGS84, send
from tests.test_console import add_user, log_in
from tests.test_console import browser as client

MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)  # Leaflet's plane
MERCATOR_MAX_LAT = 85.0511287798


def _rectangle(south: float, west: float, north: float, east: float, node: Node) -> dict[str, Any]:
    corners = [(south, west), (south, east), (north, east), (north, west)]
    return _notice(
        {"outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in corners]}}, node
    )


def _notice(outline: dict[str, Any], node: Node) -> dict[str, Any]:
    now = node.station.clock.now()
    return {
        "category": "exercise",
        "text": "Exercise over the plain",
        "extents": [
            {
                "volume": {
                    **outline,
                    "altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
                    "altitude_upper": {"value": 3000, "reference": "W84", "units": "M"},
                },
                "time_start": {"value": rfc3339(now + HOUR), "format": "RFC3339"},
                "time_end": {"value": rfc3339(now + 3 * HOUR), "format": "RFC3339"},
            }
        ],
    }


def _map_notices(node: Node) -> list[dict[str, Any]]:
    add_user(node, "duty", Role.WATCH_OFFICER)
    c = client(node)
    log_in(c, "duty")
    page = c.get("/notices/live").text
    match = re.search(r'<script type="application/json" id="notice-data">(.*?)</script>', page, re.S)
    assert match, "no map data in the page"
    return list(json.loads(match.group(1))["notices"])


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(WGS84.inv(a[1], a[0], b[1], b[0])[2])


def test_the_map_draws_a_long_east_west_edge_bowed_as_the_geodesic_is(nodes: tuple[Node, Node]) -> None:
    """A 2-degree-wide rectangle from 46.4 degrees: Leaflet drew its south edge along the
    parallel, while the geodesic the conflict check tests bows 486 m north of it at its
    middle. The map's data traces it within a metre of the geodesic (pyproj's)."""
    a, b = nodes
    doc = _rectangle(46.4, 9.0, 48.4, 11.0, a)
    sent = send(a, "moscow", doc)
    a.drain()
    (shown,) = _map_notices(b)
    assert shown["id"] == sent["id"]
    assert shown["extents"] == doc["extents"]  # the notice's own data, as sent
    assert "drawn_outlines" not in b.api.get(f"/api/v1/notices/{sent['id']}").json()  # the console's only

    (traced,) = shown["drawn_outlines"]
    points = np.array(traced)
    assert points[0].tolist() == [46.4, 9.0]
    south = points[(points[:, 0] < 47.0) & (points[:, 1] > 9.0) & (points[:, 1] < 11.0)]
    assert len(south) > 10
    drawn_lat = float(np.interp(10.0, south[:, 1], south[:, 0]))
    ((_, geodesic_lat),) = WGS84.npts(9.0, 46.4, 11.0, 46.4, 1)
    assert _metres((drawn_lat, 10.0), (geodesic_lat, 10.0)) < MAP_ERROR_M
    assert 480 < _metres((drawn_lat, 10.0), (46.4, 10.0)) < 490  # where Leaflet drew it


def _stray(ring: list[list[float]], *, closed: bool = True) -> float:
    """How far, at most, Leaflet's straight lines between consecutive points of `ring`
    (each on a geodesic edge; the last joined to the first when `closed`) stray from the
    geodesic between them: the middle of each line in Web Mercator, measured across the
    geodesic with pyproj. Lines beyond Web Mercator's edge, which Leaflet draws on it, are
    left out."""
    p = np.array(ring)
    q = np.roll(p, -1, axis=0)
    if not closed:
        p, q = p[:-1], q[:-1]
    keep = (np.abs(p[:, 0]) < MERCATOR_MAX_LAT) & (np.abs(q[:, 0]) < MERCATOR_MAX_LAT)
    p, q = p[keep], q[keep]
    _, y0 = MERCATOR.transform(np.zeros(len(p)), p[:, 0])
    _, y1 = MERCATOR.transform(np.zeros(len(q)), q[:, 0])
    _, mid_lat = MERCATOR.transform(np.zeros(len(p)), (y0 + y1) / 2, direction=TransformDirection.INVERSE)
    mid_lng = (p[:, 1] + q[:, 1]) / 2  # x is linear in the (unwrapped) longitude
    az_edge, _, _ = WGS84.inv(p[:, 1], p[:, 0], q[:, 1], q[:, 0])
    az_mid, _, to_mid = WGS84.inv(p[:, 1], p[:, 0], mid_lng, mid_lat)
    return float(np.max(np.abs(to_mid * np.sin(np.radians(az_mid - az_edge)))))


# Triangles with a long east-west edge, a meridian and a long diagonal, at latitudes from
# the equator to the top of Web Mercator, north and south; and a quadrilateral that runs
# 1,500 km east to west.
TRIANGLES = [
    [(lat, 10.0), (lat, 10.0 + width), (lat + sign * 1.5, 10.0 + width / 3)]
    for lat, width in ((0.3, 3.0), (20.0, 3.0), (46.0, 2.0), (60.0, 4.0), (75.0, 8.0), (83.0, 20.0))
    for sign in (1.0, -1.0)
] + [
    [(-lat, 10.0 + width), (-lat, 10.0), (-lat - 1.5, 10.0 + width / 2)]
    for lat, width in ((46.0, 2.0), (70.0, 8.0))
]
WIDE = [(50.0, -10.0), (50.0, 11.0), (51.0, 11.0), (51.0, -10.0)]


@pytest.mark.parametrize("ring", [*TRIANGLES, WIDE], ids=lambda r: f"{r[0][0]}N{r[1][1] - r[0][1]:+}E")
def test_drawn_lines_stray_from_the_geodesic_by_under_a_metre(ring: list[tuple[float, float]]) -> None:
    (traced,) = drawn_rings([ring])
    assert traced is not None
    assert _stray(traced) < MAP_ERROR_M
    assert len(traced) < 2_000


def test_a_ring_across_the_antimeridian_is_drawn_unwrapped_past_180() -> None:
    """The exercise area of the map's antimeridian test: its east-west edges cross 180
    degrees; each step between drawn points is taken the short way round."""
    ring = [(-17.0, 179.9), (-17.0, -179.9), (-18.0, -179.9), (-18.0, 179.9)]
    (traced,) = drawn_rings([ring])
    assert traced is not None
    lngs = np.array([lng for _, lng in traced])
    assert np.all(np.abs(np.diff(lngs)) < 1.0)
    assert lngs.min() == 179.9
    assert lngs.max() == pytest.approx(180.1)
    assert _stray(traced) < MAP_ERROR_M


def test_a_ring_round_a_pole_runs_on_to_the_pole() -> None:
    """A ring round the north pole (as the conflict tests have one) winds once round the
    map: it is drawn on to the pole and back, so that Leaflet fills the pole's side of it;
    a ring round the south pole, the south pole's. One with a vertex on the pole does not
    wind, and is drawn as it goes."""
    north = [(89.5, 0.0), (89.5, 90.0), (89.5, 180.0), (89.5, -90.0)]
    south = [(-80.0, 170.0 - 30.0 * k) for k in range(12)]  # a larger area than by default
    on_the_pole = [(89.9, -10.0), (89.9, 10.0), (90.0, 0.0)]
    round_north, round_south, touching = drawn_rings([north, south, on_the_pole])
    assert round_north is not None
    assert round_south is not None
    assert touching is not None
    assert round_north[0] == [89.5, 0.0]
    assert round_north[-3:] == [[89.5, 360.0], [90.0, 360.0], [90.0, 0.0]]
    assert max(lat for lat, _ in round_north[:-2]) < 90.0  # the edges themselves keep off it
    assert round_south[-3:] == [[-80.0, 170.0 - 360.0], [-90.0, 170.0 - 360.0], [-90.0, 170.0]]
    assert _stray(round_south[:-2], closed=False) < MAP_ERROR_M  # up to its first vertex again
    assert [-90.0, 90.0] not in touching
    assert [90.0, 0.0] in touching
    lngs = np.array([lng for _, lng in touching])
    assert abs(lngs[-1] - lngs[0]) < 30  # no turn round the pole


def _polygon(vertices: list[tuple[float, float]]) -> dict[str, Any]:
    return {"outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in vertices]}}


def _circle(lat: float, lng: float, radius_m: float) -> dict[str, Any]:
    return {
        "outline_circle": {"center": {"lat": lat, "lng": lng}, "radius": {"value": radius_m, "units": "M"}}
    }


def test_a_volume_beyond_the_map_s_edge_is_pinned_on_the_edge(nodes: tuple[Node, Node]) -> None:
    """Web Mercator ends at 85.05 degrees and Leaflet draws anything beyond on the map's
    edge: a ring round the north pole at 88 degrees (the default area limit keeps any ring
    round a pole above about 87.7) was a line along the top edge, with no area and no pin.
    The map's data says which volumes lie wholly or mostly beyond the edge, which side, and
    where on the edge their pin goes: the ring's first vertex's longitude, a circle's
    centre's, the middle of a polygon's longitudes. Volumes on the map have none."""
    a, b = nodes
    around = [(88.0, 0.0), (88.0, 90.0), (88.0, 180.0), (88.0, -90.0)]
    beyond = [(86.0, 179.0), (86.0, -177.0), (87.0, -177.0), (87.0, 179.0)]  # across 180
    small = [(46.0, 9.0), (46.0, 9.1), (46.1, 9.0)]
    outlines = [
        _polygon(around),
        _polygon(beyond),
        _circle(-86.0, -60.0, 100),
        _circle(85.5, 20.0, 100_000),
        _circle(84.0, 20.0, 100_000),
        _polygon(small),
    ]
    base = _notice(outlines[0], a)
    extent = base["extents"][0]
    band = {key: extent["volume"][key] for key in ("altitude_lower", "altitude_upper")}
    doc = {**base, "extents": [{**extent, "volume": {**outline, **band}} for outline in outlines]}
    send(a, "moscow", doc)
    a.drain()
    (shown,) = _map_notices(b)
    edge = MERCATOR_MAX_LAT
    assert shown["beyond_edge"] == [
        {"side": "north", "wholly": True, "pin": [edge, 0.0]},
        {"side": "north", "wholly": True, "pin": [edge, 181.0]},  # on the outline, unwrapped
        {"side": "south", "wholly": True, "pin": [-edge, -60.0]},
        {"side": "north", "wholly": False, "pin": [edge, 20.0]},  # 84.6 to 86.4 degrees
        None,
        None,
    ]
    ring = shown["drawn_outlines"][1]
    assert min(lng for _, lng in ring) < 181.0 < max(lng for _, lng in ring)


def test_short_edges_are_drawn_from_the_vertices_and_long_ones_are_capped() -> None:
    """A 1 km square draws as its vertices do (no field: the map falls back on them); an
    edge of 3,000 km at 80 degrees gets at most MAP_POINTS_PER_EDGE points; many rings
    come back in their order."""
    small = [(48.0, 9.0), (48.0, 9.01), (48.01, 9.01), (48.01, 9.0)]
    long = [(80.0, -60.0), (80.0, 60.0), (81.0, 0.0)]
    small_drawn, long_drawn, again = drawn_rings([small, long, small])
    assert small_drawn is None
    assert again is None
    assert long_drawn is not None
    assert MAP_POINTS_PER_EDGE < len(long_drawn) <= 3 * MAP_POINTS_PER_EDGE
    assert drawn_rings([]) == []


# Circles ------------------------------------------------------------------------------------

MERCATOR_R = 6_378_137.0  # EPSG:3857's sphere
LEAFLET_R = 6_371_000.0  # L.CRS.Earth.R, which L.circle measures its radius on


def _circle_stray(ring: list[list[float]], lat: float, lng: float, radius_m: float) -> float:
    """How far, at most, the outline Leaflet draws through `ring` (straight lines in Web
    Mercator, closed) strays from the circle radius_m round (lat, lng) on the ellipsoid:
    each point's and each line's middle's distance from the centre (pyproj), less the
    radius. Lines beyond Web Mercator's edge are left out, as in `_stray`."""
    p = np.array(ring)
    q = np.roll(p, -1, axis=0)
    keep = (np.abs(p[:, 0]) < MERCATOR_MAX_LAT) & (np.abs(q[:, 0]) < MERCATOR_MAX_LAT)
    p, q = p[keep], q[keep]
    _, y0 = MERCATOR.transform(np.zeros(len(p)), p[:, 0])
    _, y1 = MERCATOR.transform(np.zeros(len(q)), q[:, 0])
    _, mid_lat = MERCATOR.transform(np.zeros(len(p)), (y0 + y1) / 2, direction=TransformDirection.INVERSE)
    lats = np.concatenate([p[:, 0], mid_lat])
    lngs = np.concatenate([p[:, 1], (p[:, 1] + q[:, 1]) / 2])
    _, _, dist = WGS84.inv(np.full(len(lats), lng), np.full(len(lats), lat), lngs, lats)
    return float(np.max(np.abs(dist - radius_m)))


def _leaflet_circle_stray(lat: float, lng: float, radius_m: float) -> float:
    """How far L.circle strays from the circle on the ellipsoid: the ellipse Leaflet 1.9.4
    draws in Web Mercator (Circle._project, for L.CRS.Earth, as the map is), 3,600 points
    of it measured from the centre with pyproj, less the radius."""
    lat_r = math.degrees(radius_m / LEAFLET_R)
    _, top = MERCATOR.transform(lng, lat + lat_r)
    _, bottom = MERCATOR.transform(lng, lat - lat_r)
    x, _ = MERCATOR.transform(lng, lat)
    y = (top + bottom) / 2
    _, lat2 = MERCATOR.transform(x, y, direction=TransformDirection.INVERSE)
    d = math.pi / 180
    cos = (math.cos(lat_r * d) - math.sin(lat * d) * math.sin(lat2 * d)) / (
        math.cos(lat * d) * math.cos(lat2 * d)
    )
    lng_r = math.acos(cos) / d if abs(cos) <= 1 and cos != 1 else lat_r / math.cos(lat * d)
    west, _ = MERCATOR.transform(lng - lng_r, lat2)
    t = np.linspace(0, 2 * np.pi, 3_600, endpoint=False)
    lngs, lats = MERCATOR.transform(
        x + (x - west) * np.cos(t), y + (top - y) * np.sin(t), direction=TransformDirection.INVERSE
    )
    _, _, dist = WGS84.inv(np.full(len(t), lng), np.full(len(t), lat), lngs, lats)
    return float(np.max(np.abs(dist - radius_m)))


def test_the_map_draws_a_100_km_circle_at_60_degrees_as_the_ellipsoid_measures_it(
    nodes: tuple[Node, Node],
) -> None:
    """L.circle measures its radius on a sphere of 6,371 km and draws an ellipse in Web
    Mercator: a 100 km circle at 60 degrees north was drawn 364 m wide of the circle the
    conflict check tests (radius_m along the ellipsoid). The map's data traces it: every
    point 100 km from the centre, and the straight lines between them within a metre."""
    assert 360 < _leaflet_circle_stray(60.0, 10.0, 100_000) < 370  # as it was drawn
    a, b = nodes
    circle = {
        "outline_circle": {"center": {"lat": 60.0, "lng": 10.0}, "radius": {"value": 100_000, "units": "M"}}
    }
    doc = _notice(circle, a)
    sent = send(a, "moscow", doc)
    a.drain()
    (shown,) = _map_notices(b)
    assert shown["id"] == sent["id"]
    assert shown["extents"] == doc["extents"]

    (traced,) = shown["drawn_outlines"]
    assert traced is not None
    points = np.array(traced)
    assert 500 < len(points) <= MAP_POINTS_PER_CIRCLE
    _, _, dist = WGS84.inv(np.full(len(points), 10.0), np.full(len(points), 60.0), points[:, 1], points[:, 0])
    assert np.all(np.abs(dist - 100_000) < MAP_ERROR_M)
    assert _circle_stray(traced, 60.0, 10.0, 100_000) < MAP_ERROR_M
    north = WGS84.fwd(10.0, 60.0, 0.0, 100_000)
    assert traced[0] == [round(north[1], 7), round(north[0], 7)]  # from due north, clockwise
    assert traced[1][1] > traced[0][1]


@pytest.mark.parametrize("lat", [0.0, 30.0, -45.0, 60.0, 75.0, -85.0])
def test_a_small_circle_is_left_to_l_circle_within_a_metre(lat: float) -> None:
    """Up to MAP_CIRCLE_TRACED_ABOVE_M L.circle's ellipse is within a metre of the circle
    (0.56% of the radius at worst, north-south at the equator), and nothing is sent for it;
    just above, the circle is traced."""
    assert _leaflet_circle_stray(lat, 10.0, MAP_CIRCLE_TRACED_ABOVE_M) < 0.85
    if lat == 0.0:  # where it is worst: 1.2 times larger, and it is not
        assert _leaflet_circle_stray(lat, 10.0, 1.2 * MAP_CIRCLE_TRACED_ABOVE_M) > MAP_ERROR_M
    small, larger = drawn_circles(
        [(lat, 10.0, MAP_CIRCLE_TRACED_ABOVE_M), (lat, 10.0, MAP_CIRCLE_TRACED_ABOVE_M + 1)]
    )
    assert small is None
    assert larger is not None
    assert _circle_stray(larger, lat, 10.0, MAP_CIRCLE_TRACED_ABOVE_M + 1) < MAP_ERROR_M


CIRCLES = [
    (lat, lng, radius)
    for lat, lng in ((0.0, 10.0), (20.0, -70.0), (-46.0, 170.0), (60.0, 10.0), (-75.0, 0.0), (83.0, 40.0))
    for radius in (151.0, 1_000.0, 25_000.0, 282_000.0)
]


@pytest.mark.parametrize("circle", CIRCLES, ids=lambda c: f"{c[0]}N{c[1]}E{c[2]:.0f}m")
def test_drawn_circles_stray_from_the_ellipsoid_s_by_under_a_metre(
    circle: tuple[float, float, float],
) -> None:
    (traced,) = drawn_circles([circle])
    assert traced is not None
    assert _circle_stray(traced, *circle) < MAP_ERROR_M
    assert len(traced) <= MAP_POINTS_PER_CIRCLE


def test_a_circle_across_the_antimeridian_is_drawn_unwrapped_past_180() -> None:
    """A 20 km circle at 179.95: each step between its drawn points is taken the short way
    round, from its north point at the centre's longitude; a 200 m one at -179.99 stays
    on its side."""
    wide, small = drawn_circles([(-17.5, 179.95, 20_000.0), (-17.5, -179.99, 200.0)])
    assert wide is not None
    assert small is not None
    for ring, lng in ((wide, 179.95), (small, -179.99)):
        lngs = np.array([p[1] for p in ring])
        assert lngs[0] == lng
        assert np.all(np.abs(np.diff(lngs)) < 0.01)
    assert max(p[1] for p in wide) > 180.1
    assert min(p[1] for p in small) > -180.0
    assert _circle_stray(wide, -17.5, 179.95, 20_000.0) < MAP_ERROR_M


def test_a_circle_round_a_pole_runs_on_to_the_pole() -> None:
    """A 100 km circle at 89.5 degrees holds the north pole and winds once round the map:
    it is drawn on to the pole and back, as a polygon round one is (`drawn_rings`); so is
    one centred on the south pole. One at 89 degrees, 111 km from the pole, does not wind."""
    north, south, near = drawn_circles(
        [(89.5, 0.0, 100_000.0), (-90.0, 0.0, 300_000.0), (89.0, 10.0, 100_000.0)]
    )
    assert north is not None
    assert south is not None
    assert near is not None
    lat, lng = north[0]
    assert north[-3:] == [[lat, lng - 360.0], [90.0, lng - 360.0], [90.0, lng]]
    assert max(p[0] for p in north[:-2]) < 90.0
    ring = np.array(north[:-2])  # all beyond Web Mercator's edge: each point on the circle
    _, _, dist = WGS84.inv(np.zeros(len(ring)), np.full(len(ring), 89.5), ring[:, 1], ring[:, 0])
    assert np.all(np.abs(dist - 100_000.0) < 0.01)
    lat, lng = south[0]
    assert south[-3:] in (
        [[lat, lng - 360.0], [-90.0, lng - 360.0], [-90.0, lng]],
        [[lat, lng + 360.0], [-90.0, lng + 360.0], [-90.0, lng]],
    )
    lngs = np.array([p[1] for p in near])
    assert lngs[0] == 10.0
    assert abs(lngs[-1] - lngs[0]) < 10  # no turn round the pole
    assert max(p[0] for p in near) < 90.0


def test_a_page_of_large_circles_is_traced_within_its_budget() -> None:
    """1,500 circles of 100 km would need a million points; the page's circles get
    MAP_CIRCLE_POINTS_PER_PAGE, the same error for each (52 m, still every point on its
    circle), and those that L.circle draws as well (up to 7.8 km then) are left to it.
    500 of 1 km fit within a metre; no circles, nothing."""
    rng = np.random.default_rng(7)
    circles = [
        (float(lat), float(lng), 100_000.0)
        for lat, lng in zip(rng.uniform(-60, 60, 1_500), rng.uniform(-180, 180, 1_500), strict=True)
    ]
    circles += [(40.0, 20.0, 20_000.0), (40.0, 20.0, 2_000.0)]
    error = circle_error_m(circles)
    assert 40 < error < 60
    drawn = drawn_circles(circles)
    assert sum(len(ring or []) for ring in drawn) <= MAP_CIRCLE_POINTS_PER_PAGE
    for circle, ring in list(zip(circles, drawn, strict=True))[:-1:50]:
        assert ring is not None
        assert _circle_stray(ring, *circle) < error
    assert drawn[-1] is None  # 2 km: L.circle strays by 11 m, well within
    assert drawn[-2] is not None  # 20 km: L.circle would stray by up to 112 m (at the equator)

    assert circle_error_m([(40.0, 20.0, 1_000.0)] * 500) == MAP_ERROR_M
    assert drawn_circles([]) == []
