"""Route corridors of a realistic size: each travels to the peer as one notice, and the
volumes it becomes hold the whole corridor, never less, reaching at most the documented
tolerance beyond it (docs/notices.md, "Input formats": 0.1% of the width plus 3 cm)."""

from __future__ import annotations

import itertools
import json

import pytest
from pyproj import Geod

from openline.cli import notice_files
from openline.core.clock import FakeClock, parse_rfc3339, rfc3339
from openline.core.conflicts import check
from openline.core.formats import load
from openline.core.volumes import Circle, Volume
from tests.inproc import Node

GEOD = Geod(ellps="WGS84")
NOW = FakeClock().now()  # 2026-01-01T00:00:00Z
START, END = "2026-01-02T06:00:00Z", "2026-01-02T09:00:00Z"
HOUR = 3_600_000_000

# (length in metres, full width in metres, bends): the sizes a tester found refused as too
# large to send, and the largest a convoy or a transfer flight plausibly asks for.
SIZES = [
    (300_000, 20, 0),
    (200_000, 1_000, 0),
    (100_000, 5_000, 0),
    (100_000, 20_000, 0),
    (140_000, 2_000, 1),
    (7_000, 100_000, 0),
    (500_000, 20, 3),
    (500_000, 1_000, 3),
    (500_000, 100_000, 3),
]


def outward(width_m: float) -> float:
    """The most the outline may reach beyond the corridor, as docs/notices.md states it."""
    return 0.001 * width_m + 0.03


def zigzag(length_m: float, bends: int, lat: float = 48.0, lng: float = 9.0) -> list[tuple[float, float]]:
    """(lat, lng) points of a route `length_m` long, heading east-north-east and turning 40
    degrees left and right at `bends` evenly spaced points."""
    points = [(lat, lng)]
    leg = length_m / (bends + 1)
    for i in range(bends + 1):
        azimuth = 70.0 + (0.0 if i % 2 == 0 else 40.0)
        lng2, lat2, _ = GEOD.fwd(points[-1][1], points[-1][0], azimuth, leg)
        points.append((float(lat2), float(lng2)))
    return points


def route_file(points: list[tuple[float, float]], width_m: float, start: str, end: str) -> bytes:
    geometry = {"type": "LineString", "coordinates": [[lng, lat] for lat, lng in points]}
    properties = {
        "corridor_m": width_m,
        "alt_lower_m": 0,
        "alt_upper_m": 500,
        "time_start": start,
        "time_end": end,
    }
    feature = {"type": "Feature", "geometry": geometry, "properties": properties}
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


def inside(volumes: list[Volume], lat: float, lng: float) -> bool:
    probe = Volume(Circle(lat, lng, 0.001), 0, 500, parse_rfc3339(START), parse_rfc3339(END), "probe")
    return any(check(probe, v).conflict for v in volumes)


def at(lat: float, lng: float, azimuth: float, metres: float) -> tuple[float, float]:
    lng2, lat2, _ = GEOD.fwd(lng, lat, azimuth, metres)
    return float(lat2), float(lng2)


def edge_points(points: list[tuple[float, float]], half_m: float) -> list[tuple[float, float]]:
    """Points `half_m` from the route, geodesically: across each leg at stations along it (far
    enough from the bends that the route's nearest point is the station), round each end in
    steps of 5 degrees, and round the outside of each bend."""
    out: list[tuple[float, float]] = []
    legs = list(itertools.pairwise(points))
    for k, ((lat1, lng1), (lat2, lng2)) in enumerate(legs):
        azimuth, _, leg = GEOD.inv(lng1, lat1, lng2, lat2)
        for fraction in (0.02, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.98):
            along = leg * fraction
            # Near a bend, the inside of the other leg is nearer than the station.
            if (k > 0 and along < 2 * half_m) or (k < len(legs) - 1 and leg - along < 2 * half_m):
                continue
            lng, lat, back_here = GEOD.fwd(lng1, lat1, azimuth, along)
            heading = back_here + 180
            out += [at(lat, lng, heading + 90, half_m), at(lat, lng, heading - 90, half_m)]
    (lat0, lng0), (lat1, lng1) = points[0], points[1]
    first, _, _ = GEOD.inv(lng0, lat0, lng1, lat1)
    out += [at(lat0, lng0, first + 90 + a, half_m) for a in range(0, 181, 5)]
    (lat0, lng0), (lat1, lng1) = points[-1], points[-2]
    last, _, _ = GEOD.inv(lng0, lat0, lng1, lat1)
    out += [at(lat0, lng0, last + 90 + a, half_m) for a in range(0, 181, 5)]
    for before, (lat, lng), after in zip(points, points[1:], points[2:], strict=False):
        _, incoming, _ = GEOD.inv(before[1], before[0], lng, lat)
        outgoing, _, _ = GEOD.inv(lng, lat, after[1], after[0])
        heading_in = incoming + 180
        turn = (outgoing - heading_in + 540) % 360 - 180
        # The outside of the bend: from the perpendicular of the leg in to that of the leg out.
        side = -90.0 if turn > 0 else 90.0
        steps = max(2, int(abs(turn) // 5))
        out += [at(lat, lng, heading_in + side + turn * i / steps, half_m) for i in range(steps + 1)]
    return out


@pytest.mark.parametrize(("length_m", "width_m", "bends"), SIZES)
def test_corridor_holds_the_whole_corridor_and_little_more(
    length_m: float, width_m: float, bends: int
) -> None:
    points = zigzag(length_m, bends)
    volumes = load("route.geojson", route_file(points, width_m, START, END), now=NOW)
    just_in = [p for p in edge_points(points, width_m / 2 - 0.005) if not inside(volumes, *p)]
    assert just_in == []
    beyond = [p for p in edge_points(points, width_m / 2 + outward(width_m)) if inside(volumes, *p)]
    assert beyond == []


@pytest.mark.parametrize("backend", ["sqlite"])  # the size check is the same on PostgreSQL
@pytest.mark.parametrize(("length_m", "width_m", "bends"), SIZES)
def test_corridor_travels_as_one_notice(
    nodes: tuple[Node, Node], length_m: float, width_m: float, bends: int
) -> None:
    a, _ = nodes
    now = a.station.clock.now()
    data = route_file(
        zigzag(length_m, bends), width_m, rfc3339(now + HOUR) or "", rfc3339(now + 3 * HOUR) or ""
    )
    _, [outgoing] = notice_files.notices(
        "route.geojson", data, category="protected_movement", text="Convoy", now=now
    )
    r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": outgoing.document})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "sent"


def test_corridor_of_a_thin_route_is_still_valid() -> None:
    # A corridor 1 m wide over 20 km: the volumes pass validation and hold the route.
    points = zigzag(20_000, 1)
    volumes = load("route.geojson", route_file(points, 1.0, START, END), now=NOW)
    assert all(inside(volumes, lat, lng) for lat, lng in points)
    assert [p for p in edge_points(points, 0.5 - 0.005) if not inside(volumes, *p)] == []
