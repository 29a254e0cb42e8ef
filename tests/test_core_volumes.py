"""Volumes (openline.core.volumes): every refusal with its message, polygons across the
antimeridian and around a pole, and the bounds the conflict engine builds on, measured
against PROJ and GeographicLib rather than taken on trust."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from openline.core import volumes
from openline.core.volumes import (
    FEET,
    WGS84,
    Circle,
    Polygon,
    Volume,
    VolumeError,
    bounding_cap,
    bounding_caps,
    cap_box,
    cap_boxes,
    centre,
    chord_error,
    nvector_boxes,
    nvectors,
    outline_in,
    projection,
    stretch,
    validate,
)

NOW = 1_800_000_000_000_000
HOUR = 3_600_000_000
DAY = 24 * HOUR
NAME = "notice.json volume 2"
SQUARE = ((48.0, 9.0), (48.0, 9.1), (48.1, 9.1), (48.1, 9.0))
ACROSS_ANTIMERIDIAN = ((-1.0, 179.5), (1.0, 179.5), (1.0, -179.5), (-1.0, -179.5))
AROUND_NORTH_POLE = ((89.5, 0.0), (89.5, 90.0), (89.5, 180.0), (89.5, -90.0))


def volume(
    outline: Polygon | Circle | tuple[tuple[float, float], ...] = SQUARE,
    *,
    lower: float = 0.0,
    upper: float = 1000.0,
    start: int = NOW,
    end: int | None = NOW + HOUR,
) -> Volume:
    shape = Polygon(outline) if isinstance(outline, tuple) else outline
    return Volume(shape, lower, upper, start, end, NAME)


def geodesic_points(
    lat1: float, lng1: float, lat2: float, lng2: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """n points along the geodesic, both ends included (GeographicLib, via pyproj)."""
    line = WGS84.inv_intermediate(
        lng1, lat1, lng2, lat2, npts=n, initial_idx=0, terminus_idx=0, return_back_azimuth=True
    )
    return np.array(line.lats), np.array(line.lons)


def refused(vol: Volume, message: str, **kwargs: Any) -> None:
    with pytest.raises(VolumeError) as caught:
        validate(vol, now=NOW, **kwargs)
    assert str(caught.value) == message


# --- refusals -------------------------------------------------------------------------------


def test_validate_accepts_a_plain_square_a_circle_and_an_instant() -> None:
    validate(volume(), now=NOW)
    validate(volume(Circle(48.0, 9.0, 500.0)), now=NOW)
    validate(volume(start=NOW, end=NOW), now=NOW)


def test_validate_refuses_fewer_than_three_vertices() -> None:
    refused(volume(((48.0, 9.0), (48.1, 9.0))), f"{NAME}: a polygon needs at least 3 vertices, got 2")


def test_validate_refuses_a_repeated_closing_vertex() -> None:
    refused(
        volume((*SQUARE, SQUARE[0])),
        f"{NAME}, vertex 5: repeats vertex 1: the ring must not be closed (leave the closing vertex out)",
    )


def test_validate_refuses_equal_consecutive_vertices() -> None:
    vertices = (SQUARE[0], SQUARE[1], SQUARE[1], SQUARE[2], SQUARE[3])
    refused(volume(vertices), f"{NAME}, vertex 3: equals vertex 2 before it")


def test_validate_knows_both_spellings_of_the_antimeridian_are_one_point() -> None:
    vertices = ((0.0, 179.0), (0.0, 180.0), (0.0, -180.0), (1.0, 179.5))
    refused(volume(vertices), f"{NAME}, vertex 3: equals vertex 2 before it")


def test_validate_knows_every_longitude_at_a_pole_is_one_point() -> None:
    vertices = ((89.0, 0.0), (90.0, 0.0), (90.0, 90.0), (89.0, 90.0))
    refused(volume(vertices), f"{NAME}, vertex 3: equals vertex 2 before it")


def test_validate_refuses_a_self_intersecting_polygon_naming_the_crossing_edge() -> None:
    bowtie = ((48.0, 9.0), (48.1, 9.1), (48.1, 9.0), (48.0, 9.1))
    refused(
        volume(bowtie),
        f"{NAME}, vertex 1: the polygon intersects itself: edge 1-2 crosses edge 3-4",
    )


def test_validate_names_the_first_crossing_edge_not_the_first_vertex() -> None:
    # Edges 1-2 and 2-3 are fine; edge 3-4 crosses edge 5-1.
    ring = ((0.0, 0.0), (0.0, 0.2), (0.1, 0.2), (0.05, -0.1), (0.1, 0.0))
    refused(volume(ring), f"{NAME}, vertex 3: the polygon intersects itself: edge 3-4 crosses edge 5-1")


def test_validate_refuses_a_self_intersection_across_the_antimeridian() -> None:
    bowtie = ((0.0, 179.9), (0.1, -179.9), (0.1, 179.9), (0.0, -179.9))
    refused(volume(bowtie), f"{NAME}, vertex 1: the polygon intersects itself: edge 1-2 crosses edge 3-4")


def test_validate_refuses_a_ring_that_touches_itself_at_a_vertex() -> None:
    figure_eight = ((0.0, 0.0), (0.1, 0.1), (0.0, 0.2), (0.1, 0.2), (0.1, 0.1), (0.0, 0.1))
    with pytest.raises(VolumeError, match=r"^notice.json volume 2, vertex 1: the polygon intersects itself"):
        validate(volume(figure_eight), now=NOW)


def test_validate_refuses_an_edge_that_folds_back_over_the_previous_one() -> None:
    spike = ((0.0, 0.0), (0.0, 0.1), (0.0, 0.05), (0.1, 0.05))
    refused(
        volume(spike), f"{NAME}, vertex 1: the polygon intersects itself: edge 1-2 folds back over edge 2-3"
    )


def _ellipse(n: int) -> list[tuple[float, float]]:
    turns = [2 * math.pi * i / n for i in range(n)]
    return [(48.0 + 0.3 * math.sin(t), 9.0 + 0.45 * math.cos(t)) for t in turns]


def test_validate_checks_a_ring_of_many_vertices_edge_by_edge() -> None:
    ring = _ellipse(20_000)
    validate(volume(tuple(ring)), now=NOW)
    folded = [*ring[:15_001], ring[14_999], *ring[15_001:]]  # back to vertex 15,000, then on
    refused(
        volume(tuple(folded)),
        f"{NAME}, vertex 14999: the polygon intersects itself: edge 14999-15000 crosses edge 15001-15002",
    )
    again = [*ring[:19_998], ring[19_997], *ring[19_998:]]
    refused(volume(tuple(again)), f"{NAME}, vertex 19999: equals vertex 19998 before it")


def test_validate_refuses_collinear_vertices_as_degenerate() -> None:
    refused(
        volume(((0.0, 0.0), (0.0, 1.0), (0.0, 2.0))),
        f"{NAME}: degenerate polygon: its vertices lie on one line (zero area)",
    )


def test_validate_refuses_a_sliver_as_degenerate() -> None:
    # A caret with a twin 0.1 mm beneath it: simple, with a fat hull, but no inside.
    caret = ((0.0, 0.0), (0.001, 0.001), (0.0, 0.002), (0.001 - 1e-9, 0.001))
    with pytest.raises(VolumeError, match=r"^notice.json volume 2: degenerate polygon: it encloses no area"):
        validate(volume(caret), now=NOW)


@pytest.mark.parametrize(
    ("vertex", "message"),
    [
        ((90.5, 9.0), "vertex 3: latitude 90.5 is outside [-90, 90]"),
        ((-91.0, 9.0), "vertex 3: latitude -91.0 is outside [-90, 90]"),
        ((48.0, 180.5), "vertex 3: longitude 180.5 is outside [-180, 180]"),
        ((float("nan"), 9.0), "vertex 3: latitude nan is outside [-90, 90]"),
    ],
)
def test_validate_refuses_coordinates_out_of_range(vertex: tuple[float, float], message: str) -> None:
    refused(volume((SQUARE[0], SQUARE[1], vertex, SQUARE[3])), f"{NAME}, {message}")


def test_validate_refuses_a_circle_centre_out_of_range() -> None:
    refused(volume(Circle(48.0, -181.0, 10.0)), f"{NAME}: centre longitude -181.0 is outside [-180, 180]")


@pytest.mark.parametrize("radius", [0.0, -5.0, float("nan"), float("inf")])
def test_validate_refuses_a_radius_that_is_not_positive(radius: float) -> None:
    refused(
        volume(Circle(48.0, 9.0, radius)),
        f"{NAME}: the radius must be a positive number of metres, got {radius}",
    )


def test_validate_refuses_an_area_above_the_limit() -> None:
    big = ((40.0, 0.0), (40.0, 10.0), (50.0, 10.0), (50.0, 0.0))
    with pytest.raises(
        VolumeError, match=r"^notice.json volume 2: the area, 8\d\d,\d{3}\.\d km², is above the limit"
    ):
        validate(volume(big), now=NOW)
    refused(
        volume(Circle(0.0, 0.0, 1000.0)),
        f"{NAME}: the area, 3.1 km², is above the limit of 3.0 km²",
        max_area_km2=3.0,
    )
    validate(volume(Circle(0.0, 0.0, 1000.0)), now=NOW, max_area_km2=3.2)


def test_validate_refuses_a_lower_altitude_above_the_upper() -> None:
    refused(
        volume(lower=3000 * FEET, upper=900.0),
        f"{NAME}: the lower altitude, {3000 * FEET} m, is above the upper altitude, 900.0 m",
    )


def test_validate_refuses_altitudes_that_are_not_numbers() -> None:
    refused(
        volume(upper=float("inf")), f"{NAME}: altitudes must be finite numbers of metres, got 0.0 and inf"
    )


def test_validate_refuses_an_end_before_its_start() -> None:
    refused(
        volume(start=NOW + HOUR, end=NOW + HOUR - 1),
        f"{NAME}: the end, 2027-01-15T08:59:59.999999Z, is before the start, 2027-01-15T09:00:00Z",
    )


def test_validate_refuses_a_start_beyond_the_planning_horizon() -> None:
    validate(volume(start=NOW + 30 * DAY, end=NOW + 31 * DAY), now=NOW)
    refused(
        volume(start=NOW + 30 * DAY + 1, end=NOW + 31 * DAY),
        f"{NAME}: the start, 2027-02-14T08:00:00.000001Z, is beyond the planning horizon "
        "of 30 days (2027-02-14T08:00:00Z)",
    )
    refused(
        volume(start=NOW + 2 * DAY, end=NOW + 3 * DAY),
        f"{NAME}: the start, 2027-01-17T08:00:00Z, is beyond the planning horizon of 1 days "
        "(2027-01-16T08:00:00Z)",
        horizon_s=86_400,
    )


def test_validate_allows_an_open_end_only_to_a_protected_site() -> None:
    refused(volume(end=None), f"{NAME}: no end time: only a protected site may be open-ended")
    validate(volume(end=None), now=NOW, open_ended=True)


# --- the antimeridian and the poles ---------------------------------------------------------


def test_a_polygon_across_the_antimeridian_is_the_small_one_the_short_way_round() -> None:
    validate(volume(ACROSS_ANTIMERIDIAN), now=NOW)
    lat, lng = centre(Polygon(ACROSS_ANTIMERIDIAN))
    assert abs(lat) < 1e-9
    assert abs(abs(lng) - 180.0) < 1e-9
    shifted = tuple((lat, lng - 180.0 if lng > 0 else lng + 180.0) for lat, lng in ACROSS_ANTIMERIDIAN)
    area = outline_in(Polygon(ACROSS_ANTIMERIDIAN), projection(lat, lng)).area
    assert area == pytest.approx(outline_in(Polygon(shifted), projection(0.0, 0.0)).area, rel=1e-9)
    assert 24_000e6 < area < 25_000e6  # 1 degree by 2, not the rest of the world


def test_a_polygon_around_a_pole_encloses_it() -> None:
    validate(volume(AROUND_NORTH_POLE), now=NOW)
    lat, _ = centre(Polygon(AROUND_NORTH_POLE))
    assert lat == pytest.approx(90.0)
    proj = projection(89.9, 10.0)
    x, y = proj.forward(np.array([90.0]), np.array([0.0]))
    assert outline_in(Polygon(AROUND_NORTH_POLE), proj).contains(shapely.Point(x[0], y[0]))


def test_bounding_cap_holds_every_vertex() -> None:
    lat, lng, radius = bounding_cap(Polygon(ACROSS_ANTIMERIDIAN))
    for v_lat, v_lng in ACROSS_ANTIMERIDIAN:
        _, _, dist = WGS84.inv(lng, lat, v_lng, v_lat)
        assert dist <= radius + 1e-6
    assert radius == pytest.approx(124_000, rel=0.01)


def test_bounding_caps_of_many_outlines_are_each_ones_cap() -> None:
    outlines = [Circle(10.0, 20.0, 500.0), Polygon(ACROSS_ANTIMERIDIAN), Polygon(AROUND_NORTH_POLE)]
    caps = bounding_caps(outlines)
    assert caps.shape == (3, 3)
    assert tuple(caps[0]) == (10.0, 20.0, 500.0)
    for row, outline in zip(caps, outlines, strict=True):
        _assert_same_cap(tuple(row), bounding_cap(outline))


def _assert_same_cap(a: tuple[float, ...], b: tuple[float, ...]) -> None:
    """The same cap up to rounding: the same centre (at a pole any longitude names it) and
    the same radius."""
    _, _, apart = WGS84.inv(a[1], a[0], b[1], b[0])
    assert apart < 1e-6
    assert a[2] == pytest.approx(b[2], abs=1e-6)


# --- the projection and its bounds, checked against PROJ ------------------------------------


def test_projection_needs_no_network_and_is_exact_from_its_centre() -> None:
    assert not pyproj.network.is_network_enabled()
    proj = projection(48.77, 9.18)
    lats, lngs = np.array([48.9, 47.0, -30.0]), np.array([9.5, 12.0, 100.0])
    x, y = proj.forward(lats, lngs)
    azimuth, _, dist = WGS84.inv(np.full(3, 9.18), np.full(3, 48.77), lngs, lats)
    assert np.allclose(np.hypot(x, y), dist, rtol=0, atol=1e-6)
    assert np.allclose(np.degrees(np.arctan2(x, y)), azimuth, atol=1e-9)
    back_lats, back_lngs = proj.inverse(x, y)
    assert np.allclose(back_lats, lats, atol=1e-12)
    assert np.allclose(back_lngs, lngs, atol=1e-12)


def test_projection_is_cached_on_the_exact_centre_only() -> None:
    assert projection(10.0, 20.0) is projection(10.0, 20.0)
    assert projection(10.0, 20.0) is not projection(10.0, 20.0 + 1e-12)


@settings(max_examples=60)
@given(
    lat=st.floats(-89.99, 89.99),
    rho=st.floats(100.0, 2_000_000.0),
    length=st.floats(100.0, 200_000.0),
    bearing=st.floats(0.0, 360.0),
    heading=st.floats(0.0, 360.0),
)
def test_chord_error_and_stretch_bound_what_proj_does(
    lat: float, rho: float, length: float, bearing: float, heading: float
) -> None:
    """A geodesic edge `rho` from the centre: its projected points stay within
    chord_error of the chord, and planar distances overstate geodesic ones by at most
    `stretch` (and never understate them)."""
    proj = projection(lat, 30.0)
    lng1, lat1, _ = WGS84.fwd(30.0, lat, bearing, rho)
    lng2, lat2, _ = WGS84.fwd(lng1, lat1, heading, length)
    lats, lngs = geodesic_points(lat1, lng1, lat2, lng2, 101)
    x, y = proj.forward(lats, lngs)
    rho_ends = np.hypot(x[[0, -1]], y[[0, -1]])
    chord = np.array([x[-1] - x[0], y[-1] - y[0]])
    planar_length = float(np.hypot(*chord))
    normal = np.array([-chord[1], chord[0]]) / planar_length
    deviation = np.abs((np.column_stack([x, y]) - [x[0], y[0]]) @ normal).max()
    bound = chord_error(np.array(planar_length), np.array(rho_ends.max()))
    assert deviation <= bound + 1e-7  # PROJ and GeographicLib round at about 15 nm
    rho_max = float(np.hypot(x, y).max())
    assert length - 1e-6 <= planar_length <= length * stretch(rho_max) + 1e-6


@settings(max_examples=40)
@given(lat=st.floats(-89.0, 89.0), lng=st.floats(-180.0, 180.0), size=st.floats(100.0, 300_000.0))
def test_outline_in_stays_within_half_a_millimetre_of_the_true_edges(
    lat: float, lng: float, size: float
) -> None:
    corners = WGS84.fwd(
        np.full(4, lng), np.full(4, lat), np.array([10.0, 100.0, 190.0, 280.0]), np.full(4, size)
    )
    polygon = Polygon(tuple((float(a), float(b)) for a, b in zip(corners[1], corners[0], strict=True)))
    proj = projection(*centre(Circle(lat, lng, 1.0)))
    shape = outline_in(polygon, proj)
    for i in range(4):
        j = (i + 1) % 4
        lats, lngs = geodesic_points(corners[1][i], corners[0][i], corners[1][j], corners[0][j], 200)
        x, y = proj.forward(lats, lngs)
        assert shapely.distance(shape.exterior, shapely.points(x, y)).max() <= volumes.MAX_CHORD_ERROR_M


# --- index boxes -----------------------------------------------------------------------------


def _boundary_samples(outline: Polygon | Circle) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(outline, Circle):
        azimuths = np.linspace(0.0, 360.0, 2000, endpoint=False)
        lngs, lats, _ = WGS84.fwd(
            np.full(2000, outline.lng), np.full(2000, outline.lat), azimuths, np.full(2000, outline.radius_m)
        )
        return np.asarray(lats), np.asarray(lngs)
    all_lats, all_lngs = [], []
    ring = outline.vertices
    for (lat1, lng1), (lat2, lng2) in zip(ring, (*ring[1:], ring[0]), strict=True):
        lats, lngs = geodesic_points(lat1, lng1, lat2, lng2, 500)
        all_lats.append(lats)
        all_lngs.append(lngs)
    return np.concatenate(all_lats), np.concatenate(all_lngs)


def _assert_boxed(outline: Polygon | Circle, extra: tuple[tuple[float, float], ...] = ()) -> None:
    mins, maxs = nvector_boxes([outline])
    lats, lngs = _boundary_samples(outline)
    if extra:
        lats = np.concatenate([lats, [e[0] for e in extra]])
        lngs = np.concatenate([lngs, [e[1] for e in extra]])
    points = nvectors(lats, lngs)
    assert (points >= mins[0]).all()
    assert (points <= maxs[0]).all()
    # The box round its bounding cap (an index query's window) holds it too.
    cap = bounding_caps([outline])
    _assert_same_cap(tuple(cap[0]), bounding_cap(outline))
    cap_mins, cap_maxs = cap_boxes(cap)
    assert (points >= cap_mins[0]).all()
    assert (points <= cap_maxs[0]).all()
    # The scalar form used for one query gives the same box, up to rounding.
    one_mins, one_maxs = cap_box(bounding_cap(outline))
    assert (points >= np.array(one_mins)).all()
    assert (points <= np.array(one_maxs)).all()
    assert one_mins == pytest.approx(tuple(cap_mins[0]), abs=1e-6)
    assert one_maxs == pytest.approx(tuple(cap_maxs[0]), abs=1e-6)


def test_nvector_box_of_a_polygon_around_the_pole_holds_the_pole() -> None:
    _assert_boxed(Polygon(AROUND_NORTH_POLE), ((90.0, 0.0),))
    _assert_boxed(Circle(-90.0, 0.0, 5000.0), ((-90.0, 0.0),))
    _assert_boxed(Circle(-89.99, 17.0, 5000.0), ((-90.0, 0.0),))


def test_nvector_box_of_a_polygon_across_the_antimeridian_holds_the_crossing() -> None:
    _assert_boxed(Polygon(ACROSS_ANTIMERIDIAN), ((0.0, 180.0),))
    _assert_boxed(Circle(0.0, 0.0, 200_000.0), ((0.0, 0.0),))


@settings(max_examples=80)
@given(
    lat=st.floats(-90.0, 90.0),
    lng=st.floats(-180.0, 180.0),
    size=st.floats(50.0, 250_000.0),
    sides=st.integers(3, 9),
    circle=st.booleans(),
    turn=st.floats(0.0, 360.0),
)
def test_nvector_boxes_hold_every_boundary_point(
    lat: float, lng: float, size: float, sides: int, circle: bool, turn: float
) -> None:
    if circle:
        _assert_boxed(Circle(lat, lng, size))
        return
    azimuths = turn + np.arange(sides) * 360.0 / sides
    lngs, lats, _ = WGS84.fwd(np.full(sides, lng), np.full(sides, lat), azimuths, np.full(sides, size))
    vertices = tuple((float(a), float(b)) for a, b in zip(lats, lngs, strict=True))
    _assert_boxed(Polygon(vertices), ((lat, lng),))


def test_feet_are_exact() -> None:
    assert math.isclose(10_000 * FEET, 3048.0, rel_tol=0, abs_tol=1e-9)
