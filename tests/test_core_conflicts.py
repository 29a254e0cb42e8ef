"""Conflicts (openline.core.conflicts): the exact pair test at the centimetre, in time,
altitude and margins, across the antimeridian and around a pole; and the R-tree index,
which must agree with the brute-force oracle on 10^4 random volumes.

Distances are checked against independent references: GeographicLib's geodesic between
two known points (pyproj.Geod), or a golden-section search along each geodesic edge."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openline.core.conflicts import (
    TOLERANCE_M,
    ConflictIndex,
    Margins,
    PairResult,
    _cell_projection,
    brute_force,
    check,
    confirm,
)
from openline.core.conflicts import conflict as conflict_of
from openline.core.volumes import WGS84, Circle, Polygon, Volume, outline_in, projection, validate

T0 = 1_800_000_000_000_000
HOUR = 3_600_000_000
MINUTE = 60_000_000
METRE_IN_DEGREES = 180.0 / (math.pi * 6_378_137.0)  # of longitude, on the equator
ORIGIN_LAT, ORIGIN_LNG = 48.77, 9.18


def vol(
    outline: Polygon | Circle,
    *,
    lower: float = 0.0,
    upper: float = 1000.0,
    start: int = T0,
    end: int | None = T0 + HOUR,
    name: str = "v",
) -> Volume:
    return Volume(outline, lower, upper, start, end, name)


def _wrap(lng: float) -> float:
    return (lng + 180.0) % 360.0 - 180.0


def box(lat0: float, lng0: float, lat1: float, lng1: float) -> Polygon:
    """Four corners; the west and east edges are meridians, which are geodesics."""
    return Polygon(((lat0, lng0), (lat1, lng0), (lat1, lng1), (lat0, lng1)))


def facing_boxes(gap_m: float, at_lng: float = 10.0) -> tuple[Volume, Volume]:
    """Two boxes on the equator whose facing meridian edges are gap_m apart (negative:
    overlapping). Between meridians the nearest points lie at the edge ends, 0.1 degrees
    from the equator, where a metre is METRE_IN_DEGREES * 1.0000015 of longitude."""
    half = gap_m / 2 * METRE_IN_DEGREES / math.cos(math.radians(0.1))
    west = box(-0.1, at_lng - 0.1, 0.1, at_lng - half)
    east = box(-0.1, _wrap(at_lng + half), 0.1, _wrap(at_lng + 0.1))
    return vol(west, name="west"), vol(east, name="east")


def local_polygon(
    points: Sequence[tuple[float, float]], lat: float = ORIGIN_LAT, lng: float = ORIGIN_LNG
) -> Polygon:
    """A polygon drawn in metres (x east, y north) in the projection centred on (lat, lng)."""
    x, y = np.array(points, dtype=np.float64).T
    lats, lngs = projection(lat, lng).inverse(x, y)
    return Polygon(tuple((float(a), float(b)) for a, b in zip(lats, lngs, strict=True)))


# --- an independent reference distance ------------------------------------------------------


def _point_to_edge(lat: float, lng: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance from a point to a geodesic edge, by golden-section search along it."""
    azimuth, _, length = WGS84.inv(a[1], a[0], b[1], b[0])

    def at(s: float) -> float:
        p_lng, p_lat, _ = WGS84.fwd(a[1], a[0], azimuth, s)
        return float(WGS84.inv(lng, lat, p_lng, p_lat)[2])

    lo, hi = 0.0, float(length)
    ratio = (math.sqrt(5) - 1) / 2
    while hi - lo > 1e-5:
        m1, m2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if at(m1) < at(m2):
            hi = m2
        else:
            lo = m1
    return min(at(lo), at(0.0), at(float(length)))


def reference_distance(a: Polygon, b: Polygon) -> float:
    """Between disjoint geodesic polygons the shortest path ends at a vertex of one."""
    best = math.inf
    for one, other in ((a, b), (b, a)):
        ring = other.vertices
        for lat, lng in one.vertices:
            for p, q in zip(ring, (*ring[1:], ring[0]), strict=True):
                best = min(best, _point_to_edge(lat, lng, p, q))
    return best


# --- the centimetre -------------------------------------------------------------------------


@pytest.mark.parametrize(("gap_cm", "conflict"), [(2.0, False), (1.5, False), (-1.5, True), (-2.0, True)])
def test_check_tells_a_centimetre_overlap_from_a_centimetre_gap(gap_cm: float, conflict: bool) -> None:
    west, east = facing_boxes(gap_cm / 100)
    result = check(west, east)
    assert result.conflict is conflict
    assert result.distance_m == pytest.approx(max(0.0, gap_cm / 100), abs=1e-3)
    assert check(east, west).conflict is conflict


@pytest.mark.parametrize(("gap_cm", "conflict"), [(2.0, False), (1.5, False), (-1.5, True), (-2.0, True)])
def test_check_tells_a_centimetre_across_the_antimeridian(gap_cm: float, conflict: bool) -> None:
    west, east = facing_boxes(gap_cm / 100, at_lng=180.0)
    assert isinstance(east.outline, Polygon)
    assert east.outline.vertices[2][1] == pytest.approx(-179.9)
    result = check(west, east)
    assert result.conflict is conflict
    assert result.distance_m == pytest.approx(max(0.0, gap_cm / 100), abs=1e-3)


def test_circles_a_centimetre_apart_or_overlapping() -> None:
    _, _, between = WGS84.inv(10.0, 20.0, 10.3, 20.1)
    near = Circle(20.0, 10.0, 10_000.0)
    for extra_m, conflict in ((-0.02, False), (0.02, True)):
        far = Circle(20.1, 10.3, between - 10_000.0 + extra_m)
        result = check(vol(near), vol(far))
        assert result.conflict is conflict
        assert result.distance_m == pytest.approx(max(0.0, -extra_m), abs=1e-6)


def test_circle_against_polygon_at_the_centimetre() -> None:
    # The equator is a geodesic that meets the meridian edge at right angles.
    square = vol(box(-0.1, 9.9, 0.1, 10.0))
    _, _, reach = WGS84.inv(10.0, 0.0, 10.2, 0.0)
    for extra_m, conflict in ((-0.02, False), (0.02, True)):
        circle = vol(Circle(0.0, 10.2, reach + extra_m))
        assert check(square, circle).conflict is conflict
        assert check(circle, square).conflict is conflict
        assert check(circle, square).distance_m == pytest.approx(max(0.0, -extra_m), abs=1e-3)
        assert check(square, circle).distance_m == pytest.approx(max(0.0, -extra_m), abs=1e-3)


def test_circle_against_polygon_far_apart_is_measured_exactly() -> None:
    square = box(-0.1, 9.9, 0.1, 10.0)
    _, _, reach = WGS84.inv(10.0, 0.0, 10.5, 0.0)
    result = check(vol(Circle(0.0, 10.5, 1000.0)), vol(square))
    assert not result.conflict
    assert result.distance_m == pytest.approx(reach - 1000.0, abs=1e-3)


def test_pairs_across_the_world_are_clear_and_measured() -> None:
    """Nearly antipodal shapes: a projection centred on one would fold the other up."""
    stuttgart = box(48.0, 9.0, 48.4, 9.5)
    antipodes = box(-48.0, -171.0, -47.5, -170.0)
    expected = reference_distance(stuttgart, antipodes)
    assert expected > 19_000_000
    result = check(vol(stuttgart), vol(antipodes))
    assert not result.conflict
    assert result.distance_m == pytest.approx(expected, rel=1e-6)
    from_centre = min(
        _point_to_edge(48.0, 9.0, p, q)
        for p, q in zip(antipodes.vertices, (*antipodes.vertices[1:], antipodes.vertices[0]), strict=True)
    )
    result = check(vol(Circle(48.0, 9.0, 20_000.0)), vol(antipodes))
    assert not result.conflict
    assert result.distance_m == pytest.approx(from_centre - 20_000.0, rel=1e-6)


# --- time and altitude ----------------------------------------------------------------------


def test_touching_time_windows_conflict_as_closed_intervals() -> None:
    a = vol(Circle(0.0, 0.0, 100.0), start=T0, end=T0 + HOUR)
    b = vol(Circle(0.0, 0.0, 100.0), start=T0 + HOUR, end=T0 + 2 * HOUR)
    assert check(a, b) == PairResult(True, (T0 + HOUR, T0 + HOUR), (0.0, 1000.0), 0.0)
    c = vol(Circle(0.0, 0.0, 100.0), start=T0 + HOUR + 1, end=T0 + 2 * HOUR)
    assert check(a, c) == PairResult(False, None, (0.0, 1000.0), 0.0)


def test_an_open_ended_site_overlaps_everything_after_its_start() -> None:
    site = vol(Circle(0.0, 0.0, 100.0), start=T0, end=None)
    later = vol(Circle(0.0, 0.0, 100.0), start=T0 + 1000 * HOUR, end=T0 + 1001 * HOUR)
    assert check(site, later).time == (T0 + 1000 * HOUR, T0 + 1001 * HOUR)
    assert check(site, site).time == (T0, None)


def test_altitude_only_separation_is_clear() -> None:
    low = vol(Circle(0.0, 0.0, 1000.0), lower=0.0, upper=100.0)
    high = vol(Circle(0.0, 0.0, 1000.0), lower=100.5, upper=200.0)
    assert check(low, high) == PairResult(False, (T0, T0 + HOUR), None, 0.0)
    touching = vol(Circle(0.0, 0.0, 1000.0), lower=100.0, upper=200.0)
    assert check(low, touching).altitude == (100.0, 100.0)
    assert check(low, touching).conflict


# --- margins --------------------------------------------------------------------------------


def test_margin_in_minutes_widens_time() -> None:
    a = vol(Circle(0.0, 0.0, 100.0), start=T0, end=T0 + HOUR)
    b = vol(Circle(0.0, 0.0, 100.0), start=T0 + HOUR + 10 * MINUTE, end=T0 + 2 * HOUR)
    assert not check(a, b, Margins(minutes=9)).conflict
    result = check(a, b, Margins(minutes=10))
    assert result.conflict
    assert result.time == (T0 + HOUR, T0 + HOUR + 10 * MINUTE)


def test_vertical_margin_widens_altitude() -> None:
    low = vol(Circle(0.0, 0.0, 100.0), lower=0.0, upper=100.0)
    high = vol(Circle(0.0, 0.0, 100.0), lower=150.0, upper=200.0)
    assert not check(low, high, Margins(vertical_m=49.9)).conflict
    assert check(low, high, Margins(vertical_m=50.0)).altitude == (100.0, 150.0)


def test_horizontal_margin_widens_outlines_at_the_centimetre() -> None:
    west, east = facing_boxes(100.0)
    assert not check(west, east, Margins(horizontal_m=99.98)).conflict
    result = check(west, east, Margins(horizontal_m=100.02))
    assert result.conflict
    assert result.distance_m == pytest.approx(100.0, abs=1e-3)


def test_a_wide_horizontal_margin_is_exact_between_far_polygons() -> None:
    """20 km between two thin polygons' tips, at 70 degrees north, where the pair's
    projection alone would be centimetres out: the per-vertex refinement decides."""
    tip_lng, tip_lat = 20.0, 70.0
    far_lng, far_lat, _ = WGS84.fwd(tip_lng, tip_lat, 60.0, 20_000.0)
    west = Polygon(((tip_lat, tip_lng), (69.0, 15.0), (69.1, 14.0)))
    back_lng, back_lat, _ = WGS84.fwd(far_lng, far_lat, 60.0, 80_000.0)
    east = Polygon(((far_lat, far_lng), (back_lat + 0.2, back_lng), (back_lat - 0.2, back_lng)))
    expected = reference_distance(west, east)
    assert expected == pytest.approx(20_000.0, abs=0.5)
    for margin, conflict in ((expected - 0.02, False), (expected + 0.02, True)):
        assert check(vol(west), vol(east), Margins(horizontal_m=margin)).conflict is conflict
        assert check(vol(east), vol(west), Margins(horizontal_m=margin)).conflict is conflict
    assert check(vol(west), vol(east)).distance_m == pytest.approx(expected, abs=2e-3)


def test_margins_refuse_negative_values() -> None:
    with pytest.raises(ValueError, match="margin vertical_m must be a non-negative number, got -1"):
        Margins(vertical_m=-1)


# --- shapes whose boxes overlap -------------------------------------------------------------

COMB = [(0, 0), (500, 0), (500, 1089), (400, 1089), (400, 100), (300, 100), (300, 1089), (200, 1089),
        (200, 100), (100, 100), (100, 1089), (0, 1089)]  # fmt: skip
# Teeth hanging down between the comb's, 11 m from it everywhere they come closest.
RAKE = [(111, 1100), (111, 111), (189, 111), (189, 1100), (311, 1100), (311, 111), (389, 111),
        (389, 1100), (600, 1100), (600, 1200), (-100, 1200), (-100, 1100)]  # fmt: skip


def test_interlocking_combs_eleven_metres_apart_are_clear_and_the_index_agrees() -> None:
    comb, rake = vol(local_polygon(COMB), name="comb"), vol(local_polygon(RAKE), name="rake")
    validate(comb, now=T0)
    validate(rake, now=T0)
    result = check(comb, rake)
    assert not result.conflict
    assert result.distance_m == pytest.approx(11.0, abs=0.01)
    index = ConflictIndex.bulk([("comb", comb)])
    assert index.query(rake) == []
    assert brute_force({"comb": comb}, rake) == []
    assert [key for key, _ in index.query(rake, Margins(horizontal_m=11.02))] == ["comb"]
    assert index.query(rake, Margins(horizontal_m=10.98)) == []


# --- the antimeridian and the poles ---------------------------------------------------------

ACROSS = vol(box(-1.0, 179.5, 1.0, -179.5), name="across")


def test_a_polygon_across_the_antimeridian_meets_a_circle_on_either_side() -> None:
    assert check(ACROSS, vol(Circle(0.0, 180.0, 1000.0))).conflict
    assert check(ACROSS, vol(Circle(0.5, -179.9, 1000.0))).conflict
    assert check(ACROSS, vol(Circle(0.5, 179.9, 1000.0))).conflict
    _, _, reach = WGS84.inv(-179.5, 0.0, -179.0, 0.0)
    clear = check(ACROSS, vol(Circle(0.0, -179.0, 50_000.0)))
    assert not clear.conflict
    assert clear.distance_m == pytest.approx(reach - 50_000.0, abs=1e-3)


def test_the_index_finds_conflicts_across_the_antimeridian() -> None:
    index = ConflictIndex.bulk([("across", ACROSS), ("far", vol(Circle(0.0, 0.0, 1000.0)))])
    assert [key for key, _ in index.query(vol(Circle(0.0, -179.6, 100.0)))] == ["across"]
    assert [key for key, _ in index.query(vol(Circle(0.0, 179.6, 100.0)))] == ["across"]
    assert index.query(vol(Circle(0.0, -179.0, 50_000.0))) == []


AROUND_POLE = vol(Polygon(((89.5, 0.0), (89.5, 90.0), (89.5, 180.0), (89.5, -90.0))), name="pole")


def test_a_polygon_around_the_north_pole_against_circles_near_it() -> None:
    assert check(AROUND_POLE, vol(Circle(89.9, 45.0, 1000.0))).conflict
    assert check(AROUND_POLE, vol(Circle(90.0, 0.0, 1000.0))).conflict
    assert check(vol(Circle(89.9, -135.0, 10.0)), AROUND_POLE).conflict
    clear = check(AROUND_POLE, vol(Circle(89.0, 45.0, 10_000.0)))
    assert not clear.conflict
    # The edge from 0 to 90 degrees bows towards the pole, to 89.65 degrees at 45.
    expected = _point_to_edge(89.0, 45.0, (89.5, 0.0), (89.5, 90.0)) - 10_000.0
    assert 62_000 < expected < 63_000
    assert clear.distance_m == pytest.approx(expected, abs=1e-3)


def test_polygons_on_either_side_of_the_pole() -> None:
    near = Polygon(((89.9, -10.0), (89.9, 10.0), (90.0, 0.0)))  # a vertex on the pole itself
    beyond = Polygon(((89.99, 170.0), (89.99, -170.0), (89.0, 180.0)))
    expected = reference_distance(near, beyond)
    assert 1000 < expected < 1200
    result = check(vol(near), vol(beyond))
    assert not result.conflict
    assert result.distance_m == pytest.approx(expected, abs=2e-3)
    assert check(vol(near), vol(beyond), Margins(horizontal_m=expected + 0.02)).conflict
    assert not check(vol(beyond), vol(near), Margins(horizontal_m=expected - 0.02)).conflict
    over = Polygon(((89.95, 60.0), (89.95, -60.0), (89.0, 180.0)))  # encloses the pole
    assert check(vol(near), vol(over)).conflict
    index = ConflictIndex.bulk([("near", vol(near)), ("beyond", vol(beyond))])
    assert [key for key, _ in index.query(vol(over))] == ["near", "beyond"]
    assert index.query(vol(Circle(89.5, 90.0, 100.0))) == []
    assert [key for key, _ in index.query(vol(beyond), Margins(horizontal_m=1200.0))] == ["near", "beyond"]


def test_the_index_finds_a_circle_at_the_pole_inside_a_ring_around_it() -> None:
    index = ConflictIndex.bulk([("pole", AROUND_POLE), ("equator", ACROSS)])
    assert [key for key, _ in index.query(vol(Circle(89.95, 120.0, 10.0)))] == ["pole"]
    assert [key for key, _ in index.query(vol(Circle(90.0, 0.0, 10.0)))] == ["pole"]


def test_an_index_prepares_the_probe_projections_its_checks_need() -> None:
    """Making a projection costs as much as the rest of a probe: a built index has made
    those of the cells round its volumes, at the pole and the antimeridian too, so that
    no check is the first in its cell."""
    _cell_projection.cache_clear()
    stuttgart = vol(local_polygon([(0, 0), (20_000, 0), (20_000, 20_000), (0, 20_000)]), name="stuttgart")
    index = ConflictIndex.bulk([("stuttgart", stuttgart), ("pole", AROUND_POLE), ("across", ACROSS)])
    # Round Stuttgart nine cells; round the pole four: the pole itself, whatever the
    # longitude, and three at 89 degrees (PROJ refuses a centre beyond 90, and the bulk
    # load would have raised); round the antimeridian nine, three of them on longitude 180
    # and made under both signs.
    made = _cell_projection.cache_info()
    assert made.currsize == 9 + 4 + 12
    queries = [
        vol(local_polygon([(15_000, 15_000), (40_000, 15_000), (40_000, 40_000)])),
        vol(Circle(89.95, -120.0, 10.0)),
        vol(Polygon(((0.5, 179.8), (0.6, 179.8), (0.6, 179.9)))),
        vol(Polygon(((0.5, -179.8), (0.6, -179.8), (0.6, -179.9)))),
    ]
    for query, key in zip(queries, ["stuttgart", "pole", "across", "across"], strict=True):
        assert [found for found, _ in index.query(query)] == [key]
    after = _cell_projection.cache_info()
    assert after.misses == made.misses  # every probe found its projection made
    assert after.hits > made.hits
    index.add("later", vol(Circle(-33.9, 18.4, 1000.0)))  # Cape Town: its cells, added
    assert _cell_projection.cache_info().currsize == made.currsize + 9


# --- the index API --------------------------------------------------------------------------


def test_index_add_replace_remove_and_len() -> None:
    index: ConflictIndex[str] = ConflictIndex()
    assert len(index) == 0
    assert index.query(ACROSS) == []
    index.add("a", ACROSS)
    index.add("b", AROUND_POLE)
    assert len(index) == 2
    assert "a" in index
    index.add("a", vol(Circle(0.0, 0.0, 10.0)))  # an amended notice replaces its volume
    assert len(index) == 2
    assert index.query(ACROSS) == []
    assert [key for key, _ in index.query(vol(Circle(0.0, 0.0, 1.0)))] == ["a"]
    index.remove("a")
    assert index.query(vol(Circle(0.0, 0.0, 1.0))) == []
    with pytest.raises(KeyError):
        index.remove("a")
    for i in range(200):  # past the first block of stored boxes
        index.add(f"c{i}", vol(Circle(10.0, i / 100, 10.0)))
    assert len(index) == 201


def test_index_bulk_refuses_duplicate_keys_and_accepts_none() -> None:
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        ConflictIndex.bulk([("a", ACROSS), ("a", ACROSS)])
    assert len(ConflictIndex.bulk([])) == 0


def test_index_query_answers_as_check_does() -> None:
    index = ConflictIndex.bulk([("across", ACROSS)])
    candidate = vol(Circle(0.0, 179.6, 100.0), start=T0 + HOUR // 2, end=T0 + 2 * HOUR, lower=500.0)
    [(key, result)] = index.query(candidate)
    assert key == "across"
    assert result == check(candidate, ACROSS)
    assert result.time == (T0 + HOUR // 2, T0 + HOUR)
    assert result.altitude == (500.0, 1000.0)


# --- the index against the brute-force oracle, on 10^4 random volumes ------------------------

REGIONS = ("antimeridian", "pole")


def make_volume(
    region: str,
    u: float,
    v: float,
    across_m: float,
    kind: int,
    shape: Sequence[float],
    start: int,
    hours: float,
    lower: float,
    thickness: float,
    name: str,
) -> Volume:
    """A volume of realistic size: 0.1-50 km across, 1-12 h, somewhere in a 4-by-4 degree
    square across the antimeridian or in the cap north of 88.5 degrees."""
    if region == "antimeridian":
        lat, lng = -2.0 + 4.0 * u, _wrap(178.0 + 4.0 * v)
    else:
        lat, lng = 88.5 + 1.5 * u, -180.0 + 360.0 * v
    end = start + int(hours * HOUR)
    if kind == 0:
        return Volume(Circle(lat, lng, across_m / 2), lower, lower + thickness, start, end, name)
    sides = 3 + kind
    azimuths = [(i + 0.8 * (shape[i] - 0.5)) * 360.0 / sides for i in range(sides)]
    radii = [across_m / 2 * (0.3 + 0.7 * shape[sides + i]) for i in range(sides)]
    lngs, lats, _ = WGS84.fwd([lng] * sides, [lat] * sides, azimuths, radii)
    vertices = tuple((float(a), _wrap(float(b))) for a, b in zip(lats, lngs, strict=True))
    return Volume(Polygon(vertices), lower, lower + thickness, start, end, name)


def _random_volume(rng: random.Random, name: str) -> Volume:
    return make_volume(
        REGIONS[rng.random() < 0.2],
        rng.random(),
        rng.random(),
        math.exp(rng.uniform(math.log(100.0), math.log(50_000.0))),
        rng.randrange(6),
        [rng.random() for _ in range(16)],
        T0 + rng.randrange(24 * HOUR),
        rng.uniform(1.0, 12.0),
        rng.uniform(0.0, 5000.0),
        rng.uniform(100.0, 3000.0),
        name,
    )


@pytest.fixture(scope="module")
def population() -> dict[int, Volume]:
    rng = random.Random(20261127)
    return {i: _random_volume(rng, f"v{i}") for i in range(10_000)}


@pytest.fixture(scope="module")
def indexed(population: dict[int, Volume]) -> ConflictIndex[int]:
    return ConflictIndex.bulk(population.items())


def test_random_volumes_are_valid(population: dict[int, Volume]) -> None:
    for key in range(0, 10_000, 50):
        validate(population[key], now=T0)


candidates = st.builds(
    make_volume,
    region=st.sampled_from(REGIONS),
    u=st.floats(0.0, 1.0),
    v=st.floats(0.0, 1.0),
    across_m=st.floats(100.0, 50_000.0),
    kind=st.integers(0, 5),
    shape=st.lists(st.floats(0.0, 1.0), min_size=16, max_size=16),
    start=st.integers(T0, T0 + 24 * HOUR),
    hours=st.floats(1.0, 12.0),
    lower=st.floats(0.0, 5000.0),
    thickness=st.floats(100.0, 3000.0),
    name=st.just("candidate"),
)
margins = st.one_of(
    st.just(Margins()),
    st.builds(
        Margins,
        horizontal_m=st.floats(0.0, 5000.0),
        vertical_m=st.floats(0.0, 300.0),
        minutes=st.integers(0, 60),
    ),
)


@settings(max_examples=300, deadline=None)
@given(candidate=candidates, margin=margins)
def test_index_agrees_with_the_brute_force_oracle(
    population: dict[int, Volume], indexed: ConflictIndex[int], candidate: Volume, margin: Margins
) -> None:
    found = indexed.query(candidate, margin)
    expected = set(brute_force(population, candidate, margin))
    # The R-tree alone finds a superset: every conflict, and what the exact test clears.
    assert {k for k, _ in found} | expected <= set(indexed.candidates(candidate, margin))
    for key in {k for k, _ in found} ^ expected:
        # Only a pair within the centimetre of touching may be called either way.
        result = check(candidate, population[key], margin)
        assert result.time is not None
        assert result.altitude is not None
        assert abs(result.distance_m - margin.horizontal_m) <= TOLERANCE_M
    for key, result in found:
        exact = check(candidate, population[key], margin)
        assert (result.time, result.altitude) == (exact.time, exact.altitude)
        assert result.distance_m == pytest.approx(exact.distance_m, abs=2e-3)


def test_index_built_one_by_one_agrees_with_the_oracle(population: dict[int, Volume]) -> None:
    index: ConflictIndex[int] = ConflictIndex()
    kept = {key: population[key] for key in range(0, 2000)}
    for key, volume in kept.items():
        index.add(key, volume)
    for key in range(0, 2000, 2):
        index.remove(key)
        del kept[key]
    rng = random.Random(7)
    for i in range(20):
        candidate = _random_volume(rng, f"q{i}")
        assert sorted(key for key, _ in index.query(candidate)) == sorted(brute_force(kept, candidate))


@settings(max_examples=40, deadline=None)
@given(a=candidates, b=candidates)
def test_check_is_symmetric(a: Volume, b: Volume) -> None:
    one, other = check(a, b), check(b, a)
    assert (one.time, one.altitude) == (other.time, other.altitude)
    assert one.distance_m == pytest.approx(other.distance_m, abs=2e-3)
    if abs(one.distance_m) > 0.01:
        assert one.conflict is other.conflict


@settings(max_examples=60, deadline=None)
@given(a=candidates, b=candidates, margin=margins)
def test_conflict_answers_as_check_does_without_measuring_clear_pairs(
    a: Volume, b: Volume, margin: Margins
) -> None:
    full = check(a, b, margin)
    quick = conflict_of(a, b, margin)
    if abs(full.distance_m - margin.horizontal_m) > 0.01 or full.distance_m == 0:
        assert (quick is not None) is full.conflict
    if quick is not None and full.conflict:
        assert (quick.time, quick.altitude) == (full.time, full.altitude)
        assert quick.distance_m == pytest.approx(full.distance_m, abs=2e-3)


@settings(max_examples=60, deadline=None)
@given(
    query=candidates,
    others=st.lists(st.tuples(candidates, margins), min_size=1, max_size=6),
    data=st.data(),
)
def test_confirming_a_batch_answers_as_conflict_does_for_each_pair(
    population: dict[int, Volume], query: Volume, others: list[tuple[Volume, Margins]], data: st.DataObject
) -> None:
    # Neighbours from the population too, so that some pairs come close or overlap.
    keys = data.draw(st.lists(st.integers(0, 9_999), max_size=4))
    pairs = others + [(population[k], others[0][1]) for k in keys]
    volumes, each = [v for v, _ in pairs], [m for _, m in pairs]
    for result, (other, margin) in zip(confirm(query, volumes, each), pairs, strict=True):
        alone = conflict_of(query, other, margin)
        full = check(query, other, margin)
        if abs(full.distance_m - margin.horizontal_m) > TOLERANCE_M or full.distance_m == 0:
            assert (result is not None) is (alone is not None)
        if result is not None and alone is not None:
            assert (result.time, result.altitude) == (alone.time, alone.altitude)
            assert result.distance_m == pytest.approx(alone.distance_m, abs=2e-3)


def test_confirm_takes_one_margin_for_all_or_one_each() -> None:
    west, east = facing_boxes(500.0)
    assert confirm(west, []) == []
    same, other = confirm(west, [west, east])
    assert same is not None
    assert same.distance_m == 0
    assert other is None
    # 500 m apart: a 600 m margin takes the pair in, a 400 m one does not.
    wide, narrow, none = confirm(
        west, [east, east, east], [Margins(horizontal_m=600.0), Margins(horizontal_m=400.0), Margins()]
    )
    assert wide is not None
    assert wide.distance_m == pytest.approx(500.0, abs=0.01)
    assert narrow is None
    assert none is None


near_polygons = st.builds(
    make_volume,
    region=st.sampled_from(REGIONS),
    u=st.floats(0.5, 0.52),
    v=st.floats(0.5, 0.52),
    across_m=st.floats(100.0, 8000.0),
    kind=st.integers(1, 5),
    shape=st.lists(st.floats(0.0, 1.0), min_size=16, max_size=16),
    start=st.just(T0),
    hours=st.just(1.0),
    lower=st.just(0.0),
    thickness=st.just(100.0),
    name=st.just("near"),
)


@settings(max_examples=30, deadline=None)
@given(a=near_polygons, b=near_polygons)
def test_check_measures_what_the_reference_measures(a: Volume, b: Volume) -> None:
    assert isinstance(a.outline, Polygon)
    assert isinstance(b.outline, Polygon)
    result = check(a, b)
    if result.distance_m > 0:
        assert result.distance_m == pytest.approx(reference_distance(a.outline, b.outline), abs=2e-3)
    else:
        # Seen from a projection 300 km away, they still meet (the map is one-to-one).
        lat, lng = a.outline.vertices[0]
        far_lng, far_lat, _ = WGS84.fwd(lng, lat, 45.0, 300_000.0)
        elsewhere = projection(float(far_lat), float(far_lng))
        assert outline_in(a.outline, elsewhere).intersects(outline_in(b.outline, elsewhere))
