"""The notices map draws a polygon's edges as the conflict check tests them, along their
WGS84 geodesics: the console's map data traces each edge through points of its geodesic
(pyproj), close enough that Leaflet's straight lines in Web Mercator stray from it by
under a metre; across the antimeridian unwrapped, round a pole run on to the pole; and the
notice's own `extents`, which the API and the CLI show, stay as sent."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from pyproj import Transformer
from pyproj.enums import TransformDirection

from openline.core.clock import rfc3339
from openline.services.accounts import Role
from openline.services.notice_view import MAP_ERROR_M, MAP_POINTS_PER_EDGE, drawn_rings
from tests.inproc import Node
from tests.notice_docs import HOUR, WGS84, send
from tests.test_console import add_user, log_in
from tests.test_console import browser as client

MERCATOR = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)  # Leaflet's plane
MERCATOR_MAX_LAT = 85.0511287798


def _rectangle(south: float, west: float, north: float, east: float, node: Node) -> dict[str, Any]:
    now = node.station.clock.now()
    corners = [(south, west), (south, east), (north, east), (north, west)]
    return {
        "category": "exercise",
        "text": "Exercise over the plain",
        "extents": [
            {
                "volume": {
                    "outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in corners]},
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
