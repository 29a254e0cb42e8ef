"""Input formats: ASTM Volume4D, GeoJSON, CSV of sites and notice files parsed right, and
every invalid input refused with a message naming the file, the volume and the field."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from pyproj import Geod

from openline.core import formats, geojson
from openline.core.clock import FakeClock, parse_rfc3339
from openline.core.conflicts import check
from openline.core.formats import FormatError, load, parse, parse_notice
from openline.core.volumes import Circle, Polygon, Volume

NOW = FakeClock().now()  # 2026-01-01T00:00:00Z
START, END = "2026-01-02T06:00:00Z", "2026-01-02T09:00:00Z"
GEOD = Geod(ellps="WGS84")
STUTTGART = [(48.77, 9.18), (48.79, 9.25), (48.74, 9.27)]


def v4(
    outline: dict[str, Any] | None = None,
    *,
    lower: Any = 0,
    upper: Any = 3000,
    units: str = "M",
    start: str = START,
    end: str | None = END,
) -> dict[str, Any]:
    outline = outline or {"outline_polygon": {"vertices": [{"lat": a, "lng": b} for a, b in STUTTGART]}}
    obj: dict[str, Any] = {
        "volume": {
            **outline,
            "altitude_lower": {"value": lower, "reference": "W84", "units": units},
            "altitude_upper": {"value": upper, "reference": "W84", "units": units},
        },
        "time_start": {"value": start, "format": "RFC3339"},
    }
    if end is not None:
        obj["time_end"] = {"value": end, "format": "RFC3339"}
    return obj


def feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    base = {"alt_lower_m": 0, "alt_upper_m": 1000, "time_start": START, "time_end": END}
    return {"type": "Feature", "geometry": geometry, "properties": {**base, **props}}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def ring(points: list[tuple[float, float]]) -> list[list[float]]:
    """A closed GeoJSON ring of [lng, lat] from (lat, lng) points."""
    return [[lng, lat] for lat, lng in [*points, points[0]]]


def js(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def load_now(name: str, data: bytes, **kwargs: Any) -> list[Volume]:
    return load(name, data, now=NOW, **kwargs)


def point_volume(lat: float, lng: float) -> Volume:
    return Volume(Circle(lat, lng, 0.001), 0, 1000, parse_rfc3339(START), parse_rfc3339(END), "probe")


def distance_to(volumes: list[Volume], lat: float, lng: float) -> float:
    """Geodesic distance from a point to the nearest of the volumes (0 inside one)."""
    gap = min(check(point_volume(lat, lng), v).distance_m for v in volumes)
    return gap + 0.001 if gap > 0 else 0.0


def own_vertices(volume: Volume, given: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The vertices of a GeoJSON polygon's volume that are the file's (the others were added
    along its edges), in order."""
    assert isinstance(volume.outline, Polygon)
    assert volume.outline.vertices[0] == given[0]
    return [p for p in volume.outline.vertices if p in given]


def offset(lat: float, lng: float, azimuth: float, metres: float) -> tuple[float, float]:
    lng2, lat2, _ = GEOD.fwd(lng, lat, azimuth, metres)
    return lat2, lng2


# --- ASTM Volume4D --------------------------------------------------------------------------------


def test_formats_astm_polygon_keeps_lat_lng_and_converts_feet() -> None:
    [v] = load_now("plan.json", js({"extents": [v4(lower=100, upper=3000, units="FT")]}))
    assert v.name == "plan.json volume 1"
    assert isinstance(v.outline, Polygon)
    assert v.outline.vertices == tuple(STUTTGART)
    assert v.alt_lower_m == pytest.approx(30.48)
    assert v.alt_upper_m == pytest.approx(914.4)
    assert (v.start, v.end) == (parse_rfc3339(START), parse_rfc3339(END))


def test_formats_astm_circle() -> None:
    circle = {"outline_circle": {"center": {"lat": 48.7, "lng": 9.1}, "radius": {"value": 500, "units": "M"}}}
    [v] = load_now("c.json", js({"extents": [v4(circle)]}))
    assert v.outline == Circle(48.7, 9.1, 500.0)
    assert (v.alt_lower_m, v.alt_upper_m) == (0, 3000)


def test_formats_astm_takes_a_bare_list_or_one_volume4d() -> None:
    assert [v.name for v in load_now("l.json", js([v4(), v4()]))] == ["l.json volume 1", "l.json volume 2"]
    [one] = load_now("o.json", js(v4()))
    assert one.name == "o.json volume 1"
    assert parse("o.json", js(v4()), now=NOW).kind == "astm"


def test_formats_astm_time_format_may_be_left_out() -> None:
    obj = v4()
    del obj["time_start"]["format"]
    assert load_now("t.json", js(obj))[0].start == parse_rfc3339(START)


# --- GeoJSON ----------------------------------------------------------------------------------------


def test_formats_geojson_polygon_swaps_lng_lat_and_drops_the_closing_position() -> None:
    data = collection(feature({"type": "Polygon", "coordinates": [ring(STUTTGART)]}, alt_upper_ft=1000))
    del data["features"][0]["properties"]["alt_upper_m"]
    [v] = load_now("area.geojson", js(data))
    assert isinstance(v.outline, Polygon)
    assert own_vertices(v, STUTTGART) == STUTTGART  # with points added along the edges
    assert v.alt_upper_m == pytest.approx(304.8)
    assert v.name == "area.geojson volume 1 (feature 1)"
    assert parse("area.geojson", js(data), now=NOW).kind == "geojson"


def test_formats_geojson_point_with_radius_is_a_circle() -> None:
    [v] = load_now(
        "p.geojson", js(collection(feature({"type": "Point", "coordinates": [9.1, 48.7]}, radius_m=250)))
    )
    assert v.outline == Circle(48.7, 9.1, 250.0)


def test_formats_geojson_a_single_feature_is_read_too() -> None:
    [v] = load_now("f.geojson", js(feature({"type": "Point", "coordinates": [9.1, 48.7]}, radius_m=250)))
    assert v.outline == Circle(48.7, 9.1, 250.0)


def test_formats_geojson_multipolygon_parts_are_volumes_numbered_on() -> None:
    other = [(lat + 1, lng) for lat, lng in STUTTGART]
    multi = {"type": "MultiPolygon", "coordinates": [[ring(STUTTGART)], [ring(other)]]}
    point = feature({"type": "Point", "coordinates": [9.1, 48.7]}, radius_m=250)
    volumes = load_now("m.geojson", js(collection(feature(multi), point)))
    assert [v.name for v in volumes] == [
        "m.geojson volume 1 (feature 1)",
        "m.geojson volume 2 (feature 1)",
        "m.geojson volume 3 (feature 2)",
    ]
    assert own_vertices(volumes[1], other) == other


def test_formats_geojson_multipolygon_errors_name_the_volume_of_the_part() -> None:
    other = [(lat + 1, lng) for lat, lng in STUTTGART]
    point = feature({"type": "Point", "coordinates": [9.1, 48.7]}, radius_m=250)
    holed = {"type": "MultiPolygon", "coordinates": [[ring(STUTTGART)], [ring(other), ring(other)]]}
    with pytest.raises(
        FormatError, match=r"^m\.geojson volume 3 \(feature 2\): geometry\.coordinates\[1\]: the "
    ):
        load_now("m.geojson", js(collection(point, feature(holed))))
    crossed = [(49.77, 9.18), (49.79, 9.28), (49.79, 9.18), (49.77, 9.28)]
    multi = {"type": "MultiPolygon", "coordinates": [[ring(STUTTGART)], [ring(crossed)]]}
    with pytest.raises(
        FormatError, match=r"^m\.geojson volume 3 \(feature 2\), vertex \d: the polygon intersects"
    ):
        load_now("m.geojson", js(collection(point, feature(multi))))


# A GeoJSON polygon's edges are straight in longitude and latitude (RFC 7946 §3.1.1), as QGIS
# draws them; a geodesic between the same corners bows poleward, 440 m half-way along 2° of
# the parallel at 46.4°N.
RECT = [(46.4, 30.0), (46.4, 32.0), (46.6, 32.0), (46.6, 30.0)]


def rect_volume(vertices: list[tuple[float, float]] = RECT) -> Volume:
    [v] = load_now(
        "rect.geojson", js(collection(feature({"type": "Polygon", "coordinates": [ring(vertices)]})))
    )
    return v


def test_formats_geojson_polygon_edges_are_straight_in_lon_lat() -> None:
    v = rect_volume()
    # 300 m inside the south edge: inside, though the geodesic edge passed 140 m north of it.
    assert distance_to([v], *offset(46.4, 31.0, 0, 300)) == 0
    # 300 m outside the north edge: clear by 300 m, though the geodesic edge held it.
    assert distance_to([v], *offset(46.6, 31.0, 0, 300)) == pytest.approx(300, abs=0.01)
    assert distance_to([v], *offset(46.4, 31.0, 180, 300)) == pytest.approx(300, abs=0.01)


def test_formats_geojson_polygon_follows_its_lon_lat_edges_to_within_1_cm() -> None:
    v = rect_volume()
    assert isinstance(v.outline, Polygon)
    vertices = v.outline.vertices
    corners = [vertices.index(corner) for corner in RECT]
    assert corners == sorted(corners)
    assert corners[0] == 0
    added = [corners[1] - corners[0] - 1, corners[2] - corners[1] - 1, corners[3] - corners[2] - 1]
    added.append(len(vertices) - corners[3] - 1)
    print(f"vertices added along the edges of 2°, 0.2°, 2°, 0.2° at 46.4-46.6°N: {added}")
    assert added[1] == added[3] == 0  # meridians are geodesics
    assert 150 <= added[0] <= 350
    assert 150 <= added[2] <= 350
    # The added vertices lie on the lon/lat edges, evenly, to 8 decimal places.
    south = vertices[: corners[1] + 1]
    assert {lat for lat, _ in south} == {46.4}
    steps = [b[1] - a[1] for a, b in itertools.pairwise(south)]
    assert max(steps) - min(steps) < 2e-8
    # Every point of the lon/lat edges, the middles of the pieces (where they stray most)
    # too, is within 1 cm of the outline: 1 cm in from it is inside, 1 cm out is outside.
    pieces = len(south) - 1
    for lat, inward in ((46.4, 0), (46.6, 180)):
        for k in [*range(0, pieces, 7), pieces - 1]:
            for t in (0.25, 0.5, 0.75):
                lng = 30.0 + 2.0 * (k + t) / pieces
                assert distance_to([v], *offset(lat, lng, inward, 0.01)) == 0, (lat, k, t)
                assert distance_to([v], *offset(lat, lng, inward + 180, 0.01)) > 0, (lat, k, t)


def test_formats_geojson_polygon_edges_on_meridians_and_the_equator_and_short_ones_are_kept() -> None:
    # Meridians and the equator are geodesics; 100 m of a parallel strays 0.2 mm from one.
    small = [(46.4, 30.0), (46.4, 30.0013), (46.4009, 30.0013), (46.4009, 30.0)]
    v = rect_volume(small)
    assert isinstance(v.outline, Polygon)
    assert v.outline.vertices == tuple(small)
    v = rect_volume([(0.0, 30.0), (0.0, 30.2), (0.2, 30.2), (0.2, 30.0)])
    assert isinstance(v.outline, Polygon)
    assert v.outline.vertices[:3] == ((0.0, 30.0), (0.0, 30.2), (0.2, 30.2))  # the equator, a meridian
    assert v.outline.vertices[-1] == (0.2, 30.0)  # the parallel at 0.2°N has vertices added


@pytest.mark.parametrize(
    ("vertices", "span"),
    [
        # Across the antimeridian, not cut there: straight in longitude, the long way round.
        ([(10.0, 179.5), (10.0, -179.5), (11.0, -179.5), (11.0, 179.5)], "359"),
        # 200° wide near the pole, drawn through longitude 0: it used to be read the other way
        # round, so a site at longitude 0 inside it was clear and one at 180 outside conflicted.
        ([(85.0, -100.0), (85.0, 100.0), (86.0, 100.0), (86.0, -100.0)], "200"),
    ],
)
def test_formats_geojson_polygon_with_an_edge_over_180_degrees_of_longitude_is_refused(
    vertices: list[tuple[float, float]], span: str
) -> None:
    with pytest.raises(
        FormatError,
        match=rf"^rect\.geojson volume 1 \(feature 1\), vertex 1: its edge to vertex 2 spans {span}° of "
        r"longitude, which GeoJSON draws the long way round \(RFC 7946 §3\.1\.1\): cut a polygon",
    ):
        rect_volume(vertices)


def test_formats_geojson_polygon_cut_at_the_antimeridian_is_read_as_two_volumes() -> None:
    east = ring([(10.0, 179.5), (10.0, 180.0), (11.0, 180.0), (11.0, 179.5)])
    west = ring([(10.0, -180.0), (10.0, -179.5), (11.0, -179.5), (11.0, -180.0)])
    geometry = {"type": "MultiPolygon", "coordinates": [[east], [west]]}
    volumes = load_now("cut.geojson", js(collection(feature(geometry))))
    assert len(volumes) == 2
    assert distance_to(volumes, 10.5, 180.0) == 0
    assert distance_to(volumes, 10.5, -179.6) == 0
    assert distance_to(volumes, *offset(11.0, 180.0, 0, 0.01)) > 0
    assert distance_to(volumes, 10.5, 0.0) > 1e6


def test_formats_geojson_polygon_errors_name_the_files_vertices_and_edges() -> None:
    bowtie = [(46.4, 30.0), (46.6, 32.0), (46.4, 32.0), (46.6, 30.0)]
    message = (
        r"^rect\.geojson volume 1 \(feature 1\), vertex 1: the polygon intersects itself: edge 1-2 crosses"
    )
    with pytest.raises(FormatError, match=message + r" edge 3-4$"):
        rect_volume(bowtie)


def test_formats_geojson_polygon_too_long_to_follow_is_refused_naming_the_feature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(geojson, "_MAX_DRAWN_VERTICES", 100)
    with pytest.raises(
        FormatError,
        match=r"^rect\.geojson volume 1 \(feature 1\): followed to within 1 cm of its edges as GeoJSON draws "
        r"them \(straight in longitude and latitude, RFC 7946 §3\.1\.1\), the polygon needs more than 100 "
        r"vertices: split it into smaller polygons$",
    ):
        rect_volume()


# --- routes -----------------------------------------------------------------------------------------


def route_volumes(coordinates: list[list[float]], corridor_m: float) -> list[Volume]:
    data = collection(feature({"type": "LineString", "coordinates": coordinates}, corridor_m=corridor_m))
    return load_now("route.geojson", js(data))


def test_formats_route_corridor_has_the_right_width_geodesically() -> None:
    # Stuttgart to Munich, bending at Ulm: about 190 km, so four pieces of at most 50 km.
    route = [[9.18, 48.78], [9.99, 48.40], [11.58, 48.14]]
    volumes = route_volumes(route, 2000)
    length = sum(GEOD.inv(a[0], a[1], b[0], b[1])[2] for a, b in itertools.pairwise(route))
    assert len(volumes) == math.ceil(length / 50_000)
    assert all(isinstance(v.outline, Polygon) for v in volumes)
    # Across the route, at points along both legs (piece joints included): 1 km either side
    # is the edge of the corridor.
    for (lng1, lat1), (lng2, lat2) in itertools.pairwise(route):
        azimuth, _, leg = GEOD.inv(lng1, lat1, lng2, lat2)
        for fraction in (0.1, 0.25, 0.5, 0.75, 0.9):
            lng, lat, back = GEOD.fwd(lng1, lat1, azimuth, leg * fraction)
            along = back + 180  # the route's azimuth at this point
            for side in (along - 90, along + 90):
                assert distance_to(volumes, *offset(lat, lng, side, 990)) == 0
                assert distance_to(volumes, *offset(lat, lng, side, 1010)) == pytest.approx(10, abs=0.05)
            assert distance_to(volumes, lat, lng) == 0


def test_formats_route_corridor_ends_are_round() -> None:
    route = [[9.0, 48.0], [9.2, 48.0]]
    volumes = route_volumes(route, 500)
    azimuth, _, _ = GEOD.inv(9.0, 48.0, 9.2, 48.0)
    beyond = offset(48.0, 9.0, azimuth + 180, 260)
    assert distance_to(volumes, *beyond) == pytest.approx(10, abs=0.15)
    diagonal = offset(48.0, 9.0, azimuth + 135, 260)
    assert distance_to(volumes, *diagonal) == pytest.approx(10, abs=0.15)


def test_formats_route_across_the_antimeridian() -> None:
    volumes = route_volumes([[179.9, -16.5], [-179.9, -16.6]], 1000)
    [v] = volumes
    assert isinstance(v.outline, Polygon)
    assert all(-180 <= lng <= 180 and -17 < lat < -16 for lat, lng in v.outline.vertices)
    azimuth, _, leg = GEOD.inv(179.9, -16.5, -179.9, -16.6)
    lng, lat, _ = GEOD.fwd(179.9, -16.5, azimuth, leg / 2)
    assert distance_to(volumes, *offset(lat, lng, azimuth + 90, 520)) == pytest.approx(20, abs=0.05)


def test_formats_route_that_loops_is_cut_until_no_corridor_has_a_hole() -> None:
    # A 6 km square patrol: one 50 km piece would enclose the middle, which is not flown.
    square = [(48.0, 9.0), (48.0, 9.08), (48.054, 9.08), (48.054, 9.0), (48.0, 9.0)]
    volumes = route_volumes([[lng, lat] for lat, lng in square], 400)
    assert len(volumes) > 1
    assert distance_to(volumes, 48.027, 9.04) > 2000
    assert distance_to(volumes, 48.0, 9.04) == 0


def test_formats_corridor_helper_pieces() -> None:
    pieces = formats.corridor([(0.0, 0.0), (0.0, 1.0)], 100, piece_m=20_000)
    assert len(pieces) == math.ceil(111_319.5 / 20_000)


# --- CSV of sites -----------------------------------------------------------------------------------


def test_formats_sites_csv_defaults_and_open_end() -> None:
    text = (
        "name,lat,lon,radius_m,alt_lower_m,alt_upper_m,time_start,time_end\n"
        "Al-Shifa hospital,31.5233,34.4447,300,,,,\n"
        "Warehouse 4,31.40,34.38,150.5,0,2000,2026-01-03T00:00:00Z,2026-01-10T00:00:00Z\n"
    )
    notice = parse("sites.csv", text.encode(), now=NOW)
    assert (notice.kind, notice.category) == ("sites", "protected_site")
    hospital, warehouse = notice.volumes
    assert hospital.name == "sites.csv volume 1 (Al-Shifa hospital)"
    assert hospital.outline == Circle(31.5233, 34.4447, 300.0)
    assert (hospital.alt_lower_m, hospital.alt_upper_m) == (
        formats.SITE_ALT_LOWER_M,
        formats.SITE_ALT_UPPER_M,
    )
    assert (hospital.start, hospital.end) == (NOW, None)
    assert warehouse.outline == Circle(31.40, 34.38, 150.5)
    assert (warehouse.alt_lower_m, warehouse.alt_upper_m) == (0, 2000)
    assert warehouse.end == parse_rfc3339("2026-01-10T00:00:00Z")


def test_formats_sites_csv_minimal_header_bom_and_blank_lines() -> None:
    text = "\ufeffname,lat,lon,radius_m\r\nClinic,31.5,34.4,100\r\n\r\n"
    [v] = load_now("s.csv", text.encode())
    assert v.outline == Circle(31.5, 34.4, 100.0)


def test_formats_sites_csv_as_a_spreadsheet_heads_it() -> None:
    # The issue's own columns (name, lat, lon, radius), capitalised as spreadsheets do.
    text = "\ufeffName,Lat,Lon,Radius\r\nAl-Shifa hospital,31.5236,34.4440,250\r\n"
    [v] = load_now("s.csv", text.encode())
    assert v.outline == Circle(31.5236, 34.444, 250.0)
    assert v.name == "s.csv volume 1 (Al-Shifa hospital)"


def test_formats_sites_csv_reads_signs_points_and_exponents() -> None:
    text = "name,lat,lon,radius_m\nA,-31.5,+34.4,1.5e2\nB, .5 ,5.,2E+1\n"
    a, b = load_now("s.csv", text.encode())
    assert a.outline == Circle(-31.5, 34.4, 150.0)
    assert b.outline == Circle(0.5, 5.0, 20.0)


def test_formats_sites_csv_errors_found_after_a_row_is_read_give_its_line() -> None:
    # "volume n" counts the rows that are not blank, and names repeat: the line tells which.
    text = SITES + "School,31.5,34.4,100\n\nSchool,31.6,34.4,-5\n"
    with pytest.raises(
        FormatError, match=r"^s\.csv volume 2 \(School, line 4\): the radius must be a positive"
    ):
        load_now("s.csv", text.encode())
    times = "2026-01-03T00:00:00Z,2026-01-02T00:00:00Z"
    text = f"name,lat,lon,radius_m,time_start,time_end\n\nA,31.5,34.4,100,{times}\n"
    with pytest.raises(
        FormatError, match=r"^s\.csv volume 1 \(A, line 3\): the end, 2026-01-02T00:00:00Z, is before"
    ):
        load_now("s.csv", text.encode())
    with pytest.raises(
        FormatError, match=r"^s\.csv volume 1 \(A, line 2\): the area, 3,141,592\.7 km², is above"
    ):
        load_now("s.csv", (SITES + "A,31.5,34.4,1000000\n").encode())
    rows = parse(
        "s.csv", (SITES + 'A,31.5,34.4,100\n\n"B\nC",31.6,34.4,100\nD,1,2,3\n').encode(), now=NOW
    ).rows
    assert rows == (
        "s.csv volume 1 (A, line 2)",
        "s.csv volume 2 (B\nC, line 5)",
        "s.csv volume 3 (D, line 6)",
    )


def test_formats_sites_csv_with_any_line_ends() -> None:
    # Excel for Mac ends lines with CR alone; Windows with CR LF.
    for end in ("\r", "\r\n", "\n"):
        text = end.join(
            ["name,lat,lon,radius_m", "Clinic A,50.0,36.2,100", "", "Clinic B,50.1,36.2,north", ""]
        )
        with pytest.raises(
            FormatError, match=r"^s\.csv volume 2 \(Clinic B, line 4\): radius_m: expected a number"
        ):
            load_now("s.csv", text.encode())
        [a] = load_now("s.csv", end.join(["name,lat,lon,radius_m", "Clinic A,50.0,36.2,100", ""]).encode())
        assert (a.name, a.outline) == ("s.csv volume 1 (Clinic A)", Circle(50.0, 36.2, 100.0))


def test_formats_sites_csv_as_excel_exports_it() -> None:
    rows = "Clinic A,50.0,36.2,100\n"
    # Its "sep=," first line, and empty columns after the last (no name, no value): skipped.
    for text in (
        "sep=,\n" + SITES + rows,
        "SEP=,\r\n" + SITES.replace("\n", "\r\n") + rows.replace("\n", "\r\n"),
        "name,lat,lon,radius_m,,\nClinic A,50.0,36.2,100,,\n\n",
        "name,lat,lon,radius_m,,\nClinic A,50.0,36.2,100\n",
    ):
        [v] = load_now("s.csv", text.encode())
        assert (v.name, v.outline) == ("s.csv volume 1 (Clinic A)", Circle(50.0, 36.2, 100.0))
    # Line numbers count the "sep=," line.
    with pytest.raises(FormatError, match=r"^s\.csv volume 1 \(Clinic A, line 3\): lat: expected a number"):
        load_now("s.csv", ("sep=,\n" + SITES + "Clinic A,north,36.2,100\n").encode())
    # An unnamed column that holds a value is not ignored.
    with pytest.raises(
        FormatError, match=r"^s\.csv: line 1: unknown column\(s\) one with no name but values; "
    ):
        load_now("s.csv", b"name,lat,lon,radius_m,\nClinic A,50.0,36.2,100,\nB,50.0,36.2,100,x\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # as a spreadsheet set to a decimal comma exports it
            "\ufeffName;Lat;Lon;Radius_m\nKharkiv Regional Hospital, Ward 3;50,0;36,25;300\n",
            r"^s\.csv: line 1: the columns are separated by ';'; a CSV of sites separates them by commas, "
            r"and writes numbers with a decimal point \(export it as CSV, comma-separated\)$",
        ),
        (
            "name\tlat\tlon\tradius\nA\t50.0\t36.2\t100\n",
            r"^s\.csv: line 1: the columns are separated by '\\t'; a CSV of sites separates them by commas "
            r"\(export",
        ),
        (
            "sep=;\nName;Lat;Lon;Radius_m\n",
            r"^s\.csv: line 1: 'sep=;' says the columns are separated by ';'; a CSV of sites separates "
            r"them by commas",
        ),
    ],
)
def test_formats_sites_csv_separated_otherwise_is_refused_saying_so(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        load_now("s.csv", text.encode())


def test_formats_sites_csv_long_names_are_shortened_where_they_name_a_volume() -> None:
    long = "Regional Hospital " + "H" * 9000
    text = SITES + f"A,31.5,34.4,100\n{long},31.6,34.4,-5\n"
    with pytest.raises(FormatError) as refused:
        load_now("s.csv", text.encode())
    assert str(refused.value).startswith(f"s.csv volume 2 ({long[:60]}…, line 3): the radius must be")
    assert len(str(refused.value)) < 200
    notice = parse("s.csv", (SITES + f"{long},31.6,34.4,5\n").encode(), now=NOW)
    assert notice.volumes[0].name == f"s.csv volume 1 ({long[:60]}…)"
    assert notice.rows == (f"s.csv volume 1 ({long[:60]}…, line 2)",)
    assert notice.sites == (long,)  # the site's name, whole, is its notice's text


# --- notice files -----------------------------------------------------------------------------------


def test_formats_notice_file_with_extents_and_routes() -> None:
    route = feature({"type": "LineString", "coordinates": [[9.0, 48.0], [9.3, 48.0]]}, corridor_m=1000)
    obj = {"category": "air_operation", "text": "Transfer flight", "extents": [v4(), v4()], "routes": [route]}
    notice = parse("op.json", js(obj), now=NOW)
    assert (notice.kind, notice.category, notice.text) == ("notice", "air_operation", "Transfer flight")
    assert [v.name for v in notice.volumes] == [
        "op.json volume 1",
        "op.json volume 2",
        "op.json volume 3 (route 1)",
    ]
    assert parse_notice("op.json", obj, now=NOW) == notice


def test_formats_notice_protected_site_may_be_open_ended() -> None:
    obj = {"category": "protected_site", "text": "Hospital", "extents": [v4(end=None)]}
    [v] = parse_notice("site.json", obj, now=NOW).volumes
    assert v.end is None
    obj["category"] = "fire_area"
    with pytest.raises(FormatError, match=r"^site\.json volume 1: time_end: missing \(only a protected site"):
        parse_notice("site.json", obj, now=NOW)


def test_formats_read_volume4d_reads_a_stored_volume_back_without_validating_it() -> None:
    from openline.core.notices import volume4d

    stored = parse_notice(
        "site.json", {"category": "protected_site", "text": "", "extents": [v4(end=None)]}, now=NOW
    )
    [site] = stored.volumes
    back = formats.read_volume4d(json.loads(json.dumps(volume4d(site))), "notice n1 volume 1")
    assert (back.outline, back.start, back.end) == (site.outline, site.start, None)
    assert (back.alt_lower_m, back.alt_upper_m, back.name) == (0, 3000, "notice n1 volume 1")
    # No horizon, no area limit: it was checked when it came in.
    far = v4(start="2031-01-01T00:00:00Z", end="2031-01-02T00:00:00Z")
    assert formats.read_volume4d(far, "n").start == parse_rfc3339("2031-01-01T00:00:00Z")
    with pytest.raises(FormatError, match=r"^n: volume: expected exactly one of outline_polygon"):
        formats.read_volume4d({"volume": {}, "time_start": far["time_start"]}, "n")


def test_formats_limits_are_passed_to_validation() -> None:
    with pytest.raises(FormatError, match=r"above the limit of 10\.0 km²"):
        load_now("big.json", js(v4()), max_area_km2=10)
    with pytest.raises(FormatError, match=r"planning horizon of 0\.5 days"):
        load_now("far.json", js(v4()), horizon_s=43_200)


# --- invalid input ----------------------------------------------------------------------------------


def with_vertices(*points: tuple[Any, Any]) -> dict[str, Any]:
    return v4({"outline_polygon": {"vertices": [{"lat": a, "lng": b} for a, b in points]}})


def edit(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of obj with the dotted path set to value (or removed, for ...)."""
    obj = json.loads(json.dumps(obj))
    *parents, last = path.split(".")
    target = obj
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return obj


POINT = feature({"type": "Point", "coordinates": [9.1, 48.7]}, radius_m=250)
ROUTE = feature({"type": "LineString", "coordinates": [[9.0, 48.0], [9.3, 48.0]]}, corridor_m=1000)
CIRCLE = v4({"outline_circle": {"center": {"lat": 48.7, "lng": 9.1}, "radius": {"value": 500, "units": "M"}}})
SITES = "name,lat,lon,radius_m\n"

INVALID: list[tuple[str, bytes | str | dict[str, Any] | list[Any], str]] = [
    # Not a format at all.
    ("x.json", b"\xff\xfe{", r"x\.json: not UTF-8 text \(byte 0 is 0xff\)"),
    ("x.json", b'{"extents": [}', r"x\.json: not valid JSON: Expecting value: line 1 column 14"),
    ("x.json", b"[" * 100_000 + b"]" * 100_000, r"x\.json: not valid JSON: JSON nested too deeply"),
    (
        "x.csv",
        b" \n\r\n",
        r"x\.csv: an empty file: expected a notice, ASTM or GeoJSON file, or a CSV of sites",
    ),
    ("x.json", {"hello": 1}, r"x\.json: JSON, but not a notice \(no 'category'\), ASTM Volume4D"),
    ("x.json", {"type": "Polygon", "coordinates": []}, r"x\.json: GeoJSON of type 'Polygon': expected a"),
    ("x.txt", b"hello world\n", r"x\.txt: not JSON, so read as a CSV of sites, but its header 'hello world'"),
    # JSON, but not an object or a list: it was called "not JSON" and read as a CSV.
    ("x.json", b"null", r"^x\.json: JSON, but null: expected a notice, ASTM or GeoJSON object"),
    ("x.json", b" 42\n", r"^x\.json: JSON, but 42: expected a notice"),
    ("x.json", b'"hello"', r"^x\.json: JSON, but 'hello': expected a notice"),
    (
        "x.json",
        b'{"extents": [], "extents": [1]}',
        r"x\.json: not valid JSON: the key 'extents' appears twice",
    ),
    (
        "a.json",
        [edit(v4(), "time_start.value", "2026-11-29T08:59:59.9999999Z")],
        r"time_start\.value: .* has 7 digits after the seconds: at most 6 \(microseconds\)",
    ),
    ("x.json", {"extents": []}, r"x\.json: extents: empty; expected at least one Volume4D"),
    ("x.json", {"extents": {}}, r"x\.json: extents: expected a list, got \{\}"),
    # ASTM: missing fields, wrong types.
    ("a.json", {"extents": [{"time_start": {}}]}, r"^a\.json volume 1: volume: missing$"),
    ("a.json", [v4(), edit(v4(), "time_start", ...)], r"^a\.json volume 2: time_start: missing$"),
    (
        "a.json",
        [edit(v4(), "time_end", ...)],
        r"^a\.json volume 1: time_end: missing \(only a protected site",
    ),
    (
        "a.json",
        [edit(v4(), "volume.altitude_upper", ...)],
        r"^a\.json volume 1: volume\.altitude_upper: missing",
    ),
    (
        "a.json",
        [edit(v4(), "volume.outline_circle", CIRCLE["volume"]["outline_circle"])],
        "exactly one of outline_polygon and outline_circle, got both",
    ),
    (
        "a.json",
        [edit(v4(), "volume.outline_polygon", ...)],
        "exactly one of outline_polygon and outline_circle, got neither",
    ),
    (
        "a.json",
        [with_vertices((48.7, 9.1), ("48.8", 9.2), (48.7, 9.3))],
        r"volume\.outline_polygon\.vertices\[1\] \(vertex 2\)\.lat: expected a number, got '48\.8'",
    ),
    (
        "a.json",
        [with_vertices((48.7, 9.1), (48.8, True), (48.7, 9.3))],
        r"vertices\[1\] \(vertex 2\)\.lng: expected a number, got true",
    ),
    (
        "a.json",
        [with_vertices((48.7, 9.1), (10**400, 9.2), (48.7, 9.3))],  # float() would overflow
        r"vertices\[1\] \(vertex 2\)\.lat: 1000000000.*\.\.\. is too large a number",
    ),
    (
        "a.json",
        [
            edit(
                with_vertices((48.7, 9.1), (48.8, 9.2), (48.7, 9.3)),
                "volume.outline_polygon.vertices.2",
                {"lat": 48.7},
            )
        ],
        r"vertices\[2\] \(vertex 3\)\.lng: missing",
    ),
    (
        "a.json",
        b'[{"volume": {"outline_circle": {"center": {"lat": NaN, "lng": 0}}}}]',
        "not valid JSON: NaN is not a JSON number",
    ),
    ("a.json", [edit(v4(), "volume", [])], r"^a\.json volume 1: volume: expected an object, got \[\]"),
    ("a.json", ["oops"], r"^a\.json volume 1: expected an object, got 'oops'"),
    # ASTM: units, references, formats, times.
    (
        "a.json",
        [edit(v4(), "volume.altitude_lower.reference", "SFC")],
        r"volume\.altitude_lower\.reference: expected 'W84' \(metres above the WGS84 ellipsoid\), got 'SFC'",
    ),
    ("a.json", [v4(units="KM")], r"volume\.altitude_lower\.units: expected 'M' or 'FT', got 'KM'"),
    (
        "a.json",
        [edit(CIRCLE, "volume.outline_circle.radius.units", "FT")],
        r"volume\.outline_circle\.radius\.units: expected 'M', got 'FT'",
    ),
    (
        "a.json",
        [edit(v4(), "time_start.format", "unix")],
        r"time_start\.format: expected 'RFC3339', got 'unix'",
    ),
    (
        "a.json",
        [v4(start="tomorrow")],
        r"time_start\.value: expected an RFC 3339 time such as .*, got 'tomorrow'",
    ),
    ("a.json", [v4(end="2026-01-02T09:00:00")], r"time_end\.value: expected an RFC 3339 time"),
    (
        "a.json",
        [v4(end="2026-02-30T09:00:00Z")],
        r"time_end\.value: '2026-02-30T09:00:00Z' is not a time: day is out of range for month",
    ),
    ("a.json", [v4(lower="0")], r"volume\.altitude_lower\.value: expected a number, got '0'"),
    # What volumes.validate refuses, named by file, volume and vertex.
    (
        "a.json",
        [v4(), with_vertices((48.7, 9.1), (48.8, 9.2))],
        r"^a\.json volume 2: a polygon needs at least 3 vertices, got 2",
    ),
    (
        "a.json",
        [with_vertices((48.7, 9.1), (48.8, 9.2), (48.7, 9.3), (48.7, 9.1))],
        r"^a\.json volume 1, vertex 4: repeats vertex 1",
    ),
    (
        "a.json",
        [with_vertices((48.7, 9.1), (48.8, 9.2), (48.8, 9.2), (48.7, 9.3))],
        r"^a\.json volume 1, vertex 3: equals vertex 2",
    ),
    (
        "a.json",
        [with_vertices((48.0, 9.0), (48.1, 9.1), (48.0, 9.1), (48.1, 9.0))],
        r"^a\.json volume 1, vertex 1: the polygon intersects itself: edge 1-2 crosses edge 3-4",
    ),
    (
        "a.json",
        [with_vertices((48.0, 9.0), (48.1, 9.0), (48.2, 9.0))],
        r"^a\.json volume 1: degenerate polygon",
    ),
    (
        "a.json",
        [with_vertices((48.0, 9.0), (91.0, 9.0), (48.0, 9.1))],
        r"^a\.json volume 1, vertex 2: latitude 91\.0 is outside \[-90, 90\]",
    ),
    (
        "a.json",
        [edit(CIRCLE, "volume.outline_circle.radius.value", 0)],
        r"^a\.json volume 1: the radius must be a positive number",
    ),
    (
        "a.json",
        [v4(lower=500, upper=100)],
        r"^a\.json volume 1: the lower altitude, 500\.0 m, is above the upper",
    ),
    (
        "a.json",
        [v4(start=END, end=START)],
        r"^a\.json volume 1: the end, 2026-01-02T06:00:00Z, is before the start",
    ),
    (
        "a.json",
        [v4(start="2026-03-01T00:00:00Z", end="2026-03-02T00:00:00Z")],
        r"^a\.json volume 1: the start, 2026-03-01T00:00:00Z, is beyond the planning horizon of 30 days",
    ),
    # GeoJSON.
    ("g.geojson", collection(), r"^g\.geojson: features: empty"),
    ("g.geojson", {"type": "FeatureCollection"}, r"^g\.geojson: features: missing"),
    (
        "g.geojson",
        collection(POINT, {"type": "Point"}),
        r"^g\.geojson volume 2 \(feature 2\): type: expected 'Feature', got 'Point'",
    ),
    (
        "g.geojson",
        collection(edit(POINT, "properties.radius_m", ...)),
        r"^g\.geojson volume 1 \(feature 1\): properties\.radius_m: missing",
    ),
    (
        "g.geojson",
        collection(edit(POINT, "properties.alt_lower_m", ...)),
        r"properties\.alt_lower_m \(or alt_lower_ft\): missing",
    ),
    (
        "g.geojson",
        collection(edit(POINT, "properties.alt_lower_ft", 10)),
        r"properties: both alt_lower_m and alt_lower_ft; give one",
    ),
    (
        "g.geojson",
        collection(edit(POINT, "properties.time_end", ...)),
        r"properties\.time_end: missing \(only a protected site",
    ),
    (
        "g.geojson",
        collection(edit(POINT, "properties.time_start", 1767225600)),
        r"properties\.time_start: expected an RFC 3339 time",
    ),
    (
        "g.geojson",
        collection(edit(POINT, "geometry.coordinates", [9.1])),
        r"geometry\.coordinates: expected \[longitude, latitude\], got \[9\.1\]",
    ),
    (
        "g.geojson",
        collection(feature({"type": "MultiLineString", "coordinates": []})),
        r"geometry\.type: expected Polygon, MultiPolygon, Point or LineString, got 'MultiLineString'",
    ),
    (  # told by its type, not by the coordinates it does not have
        "g.geojson",
        collection(
            feature({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [9, 48]}]})
        ),
        r"^g\.geojson volume 1 \(feature 1\): geometry\.type: expected Polygon, MultiPolygon, Point or "
        r"LineString, got 'GeometryCollection'$",
    ),
    (
        "g.geojson",
        collection(feature({"type": "MultiPoint", "coordinates": [[9, 48]]}, time_end=None)),
        r"geometry\.type: expected Polygon, MultiPolygon, Point or LineString, got 'MultiPoint'$",
    ),
    (
        "g.geojson",
        collection(feature({"type": "Polygon", "coordinates": [ring(STUTTGART), ring(STUTTGART)]})),
        r"geometry\.coordinates: the polygon has 1 hole\(s\); a volume's outline has none",
    ),
    (
        "g.geojson",
        collection(feature({"type": "Polygon", "coordinates": [ring(STUTTGART)[:-1]]})),
        r"coordinates\[0\]: a GeoJSON linear ring has at least 4 positions and ends where it starts "
        r"\(RFC 7946 §3\.1\.6\); got 3",
    ),
    (
        "g.geojson",
        collection(
            feature(
                {"type": "Polygon", "coordinates": [[[9.0, 48.0], [9.1, 48.0], [9.1, 48.1], [9.0, 48.1]]]}
            )
        ),
        r"ending at \[9\.0, 48\.1\] instead of \[9\.0, 48\.0\]",
    ),
    (
        "g.geojson",
        collection(
            feature({"type": "Polygon", "coordinates": [[[9.0, 48.0], [9.1, "x"], [9.1, 48.1], [9.0, 48.0]]]})
        ),
        r"geometry\.coordinates\[0\]\[1\] \(vertex 2\) latitude: expected a number, got 'x'",
    ),
    # Latitude where the longitude belongs: caught by validation, naming the vertex.
    (
        "g.geojson",
        collection(
            feature(
                {"type": "Polygon", "coordinates": [[[48.0, 9.0], [48.1, 9.0], [48.1, 95.0], [48.0, 9.0]]]}
            )
        ),
        r"^g\.geojson volume 1 \(feature 1\), vertex 3: latitude 95\.0 is outside \[-90, 90\] "
        r"\(GeoJSON positions are \[longitude, latitude\]\)",
    ),
    ("g.geojson", collection(edit(ROUTE, "properties.corridor_m", ...)), r"properties\.corridor_m: missing"),
    (
        "g.geojson",
        collection(edit(ROUTE, "properties.corridor_m", -5)),
        r"properties\.corridor_m: expected a width above 0 metres, got -5",
    ),
    (  # refused before it is built: a million kilometres wide took a minute and 2 GB
        "g.geojson",
        collection(edit(ROUTE, "properties.corridor_m", 1e9)),
        r"properties\.corridor_m: a corridor 1e\+09 m wide covers 785,398,163,397\.4 km² at each end alone, "
        r"above the limit of 250,000\.0 km²",
    ),
    (
        "g.geojson",
        collection(edit(ROUTE, "geometry.coordinates", [[9.0, 48.0]])),
        r"a route needs at least 2 positions, got 1",
    ),
    (
        "g.geojson",
        collection(edit(ROUTE, "geometry.coordinates", [[9.0, 48.0], [9.0, 48.0]])),
        r"the route has zero length",
    ),
    (
        "g.geojson",
        collection(edit(ROUTE, "geometry.coordinates", [[9.0, 48.0], [48.0, 190.0]])),
        r"geometry\.coordinates\[1\] \(vertex 2\): latitude 190 is outside \[-90, 90\] "
        r"\(GeoJSON positions are \[longitude, latitude\]\)",
    ),
    # CSV of sites.
    (
        "s.csv",
        "name,lat,lng,radius_m\nA,1,2,3\n",
        r"^s\.csv: not JSON, so read as a CSV of sites, but its header 'name,lat,lng,radius_m' lacks lon",
    ),
    (
        "s.csv",
        "name,lat,lon,radius,radius_m\nA,1,2,3,4\n",
        r"^s\.csv: line 1: a repeated column",
    ),
    (
        "s.csv",
        "name,lat,lon,radius_m,alt_lower_ft\nA,1,2,3,4\n",
        r"^s\.csv: line 1: unknown column\(s\) 'alt_lower_ft'",
    ),
    ("s.csv", SITES, r"^s\.csv: a CSV of sites with no sites"),
    (
        "s.csv",
        SITES + "A,31.5,34.4,100\nB,north,34.4,100\n",
        r"^s\.csv volume 2 \(B, line 3\): lat: expected a number, got 'north'",
    ),
    (
        "s.csv",
        SITES + "A,31.5,34.4,nan\n",
        r"^s\.csv volume 1 \(A, line 2\): radius_m: expected a finite number, got 'nan'",
    ),
    (
        "s.csv",
        SITES + "A,31.5,34.4,1_000\n",
        r"^s\.csv volume 1 \(A, line 2\): radius_m: expected a number in plain digits .*, got '1_000'",
    ),
    (
        "s.csv",
        SITES + "A,\u0663\u0661.5,34.4,100\n",
        r"^s\.csv volume 1 \(A, line 2\): lat: expected a number in plain digits .*, got '\u0663\u0661\.5'",
    ),
    (
        "s.csv",
        SITES + "A,31.5,\uff13\uff14,100\n",
        r"^s\.csv volume 1 \(A, line 2\): lon: expected a number in plain digits .*, got '\uff13\uff14'",
    ),
    ("s.csv", SITES + "A,31.5,34.4\n", r"^s\.csv volume 1 \(line 2\): expected 4 fields, got 3"),
    ("s.csv", SITES + ",31.5,34.4,100\n", r"^s\.csv volume 1 \(line 2\): name: empty"),
    (
        "s.csv",
        SITES + "A,31.5,34.4,-1\n",
        r"^s\.csv volume 1 \(A, line 2\): the radius must be a positive number",
    ),
    (
        "s.csv",
        SITES + "A,31.5,200,100\n",
        r"^s\.csv volume 1 \(A, line 2\): centre longitude 200\.0 is outside",
    ),
    (
        "s.csv",
        "name,lat,lon,radius_m,time_end\nA,31.5,34.4,100,soon\n",
        r"^s\.csv volume 1 \(A, line 2\): time_end: expected an RFC 3339 time",
    ),
    # Notice files.
    (
        "n.json",
        {"category": "party", "text": "", "extents": [v4()]},
        r"^n\.json: category: expected one of air_operation, fire_area, .*, got 'party'",
    ),
    ("n.json", {"category": "exercise", "extents": [v4()]}, r"^n\.json: text: missing"),
    (
        "n.json",
        {"category": "exercise", "text": 5, "extents": [v4()]},
        r"^n\.json: text: expected a string, got 5",
    ),
    (
        "n.json",
        {"category": "exercise", "text": "", "extents": []},
        r"^n\.json: a notice needs at least one volume in extents or routes",
    ),
    (
        "n.json",
        {"category": "exercise", "text": "", "extents": [v4()], "routes": [POINT]},
        r"^n\.json volume 2 \(route 1\): geometry\.type: a route is a 'LineString', got 'Point'",
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "message"), INVALID, ids=[f"{i}-{m[:40]}" for i, (_, _, m) in enumerate(INVALID)]
)
def test_formats_refuse_invalid_input_naming_where(name: str, data: Any, message: str) -> None:
    raw = data if isinstance(data, bytes) else data.encode() if isinstance(data, str) else js(data)
    with pytest.raises(FormatError, match=message):
        load_now(name, raw)


def test_formats_what_a_station_writes_is_read_back() -> None:
    """`core.notices.volume4d` (stored volumes, envelope bodies, the console's documents)
    writes only the fields the reader knows: a polygon, a circle and an open end, read
    back as stored volumes and as the document a body carries."""
    from openline.core.notices import volume4d

    circle = v4(
        {"outline_circle": {"center": {"lat": 48.7, "lng": 9.1}, "radius": {"value": 500, "units": "M"}}}
    )
    obj = {"category": "protected_site", "text": "Hospital", "extents": [v4(), circle, v4(end=None)]}
    written = parse_notice("site.json", obj, now=NOW).volumes
    extents = json.loads(json.dumps([volume4d(v) for v in written]))
    body = {"category": "protected_site", "text": "Hospital", "extents": extents, "removes": None}
    again = parse_notice("notice", body, now=NOW).volumes
    assert [(v.outline, v.start, v.end) for v in again] == [(v.outline, v.start, v.end) for v in written]
    for n, extent in enumerate(extents, 1):
        assert formats.read_volume4d(extent, f"notice n1 volume {n}").outline == written[n - 1].outline


def test_formats_geojson_properties_may_hold_others() -> None:
    """GIS tools write names, styles and ids into a feature; they are not ours to refuse."""
    point = feature({"type": "Point", "coordinates": [9.1, 48.7]}, radius_m=250, name="Depot", stroke="#f00")
    point["id"] = "depot-1"
    route = feature(
        {"type": "LineString", "coordinates": [[9.0, 48.0], [9.3, 48.0]]}, corridor_m=1000, name="R1"
    )
    assert len(load_now("ops.geojson", js({**collection(point), "name": "ops"}))) == 1
    notice = {"category": "ground_movement", "text": "Convoy", "extents": [], "routes": [route]}
    assert len(parse_notice("convoy.json", notice, now=NOW).volumes) == 1


NOTICE = {"category": "exercise", "text": "Drill", "extents": [v4()]}
UNKNOWN: list[tuple[str, Any, str]] = [
    (
        "notice.json",
        {"category": "ground_movement", "text": "Convoy", "route": [ROUTE]},
        r"^notice\.json: unknown field 'route' \(a notice file has category, text, extents, routes; "
        r"removes for a removal\)$",
    ),
    (
        "notice.json",
        {**NOTICE, "amends": "0190a3c1-0000-7000-8000-000000000001"},
        r"^notice\.json: unknown field 'amends' \(a notice file has .*\); the notice a new version amends "
        r"is named when it is sent \(`notice send --amends ID`\)$",
    ),
    (
        "notice.json",
        {**NOTICE, "Text": "x", "peer": "moscow", "draft": True, "extends": [], "z": 1},
        r"^notice\.json: unknown fields 'Text', 'peer', 'draft' and 2 more \(a notice file has",
    ),
    (
        "plan.json",
        {"extents": [v4()], "routes": [ROUTE]},
        r"^plan\.json: unknown field 'routes' \(an ASTM Volume4D file has extents; a notice file, with a "
        r"category, has text and routes too\)$",
    ),
    (
        "plan.json",
        [v4(), {**v4(), "time_stop": {"value": END}}],
        r"^plan\.json volume 2: unknown field 'time_stop' \(a Volume4D has volume, time_start, time_end\)$",
    ),
    (
        "plan.json",
        edit(v4(), "volume.outline_polgon", {"vertices": []}),
        r"^plan\.json volume 1: volume: unknown field 'outline_polgon' \(a Volume3D has outline_polygon, "
        r"outline_circle, altitude_lower, altitude_upper\)$",
    ),
    (
        "notice.json",
        {**NOTICE, "extents": [v4(), edit(v4(), "volume.altitude_upper.unit", "FT")]},
        r"^notice\.json volume 2: volume\.altitude_upper: unknown field 'unit' \(an altitude has value, "
        r"reference, units\)$",
    ),
    (
        "plan.json",
        [edit(v4(), "time_start.timezone", "CET")],
        r"^plan\.json volume 1: time_start: unknown field 'timezone' \(a time has value, format\)$",
    ),
    (
        "plan.json",
        [edit(v4(), "volume.outline_polygon.closed", False)],
        r"^plan\.json volume 1: volume\.outline_polygon: unknown field 'closed' \(a polygon has vertices\)$",
    ),
    (
        "plan.json",
        [edit(v4(), "volume.outline_polygon.vertices.1.alt", 300)],
        r"^plan\.json volume 1: volume\.outline_polygon\.vertices\[1\] \(vertex 2\): unknown field 'alt' "
        r"\(a point has lat, lng\)$",
    ),
    (
        "plan.json",
        [edit(CIRCLE, "volume.outline_circle.center", {"lat": 48.7, "lon": 9.1})],
        r"^plan\.json volume 1: volume\.outline_circle\.center: unknown field 'lon' "
        r"\(a point has lat, lng\)$",
    ),
    (
        "plan.json",
        [edit(CIRCLE, "volume.outline_circle.radius.unit", "M")],
        r"^plan\.json volume 1: volume\.outline_circle\.radius: unknown field 'unit' \(a radius has value, "
        r"units\)$",
    ),
    (
        "plan.json",
        [edit(CIRCLE, "volume.outline_circle.radius_m", 500)],
        r"^plan\.json volume 1: volume\.outline_circle: unknown field 'radius_m' "
        r"\(a circle has center, radius\)$",
    ),
]


@pytest.mark.parametrize(("name", "data", "message"), UNKNOWN, ids=[m[:60] for _, _, m in UNKNOWN])
def test_formats_refuse_unknown_fields_naming_file_volume_and_field(
    name: str, data: Any, message: str
) -> None:
    with pytest.raises(FormatError, match=message):
        load_now(name, js(data))
    if isinstance(data, dict) and "category" in data:  # as the station reads a document
        with pytest.raises(FormatError, match=message):
            parse_notice(name, data, now=NOW)


def test_formats_read_volume4d_refuses_unknown_fields() -> None:
    with pytest.raises(FormatError, match=r"^notice n1 volume 1: volume: unknown field 'name' \(a Volume3D"):
        formats.read_volume4d(edit(v4(), "volume.name", "depot"), "notice n1 volume 1")


def test_formats_decode_tells_the_format_by_content() -> None:
    assert formats.decode("n.json", js(NOTICE)) == ("notice", NOTICE)
    assert formats.decode("a.json", js([v4()]))[0] == "astm"
    assert formats.decode("g.geojson", js(collection(POINT)))[0] == "geojson"
    assert formats.decode("s.csv", (SITES + "A,31.5,34.4,100\n").encode()) == (
        "sites",
        SITES + "A,31.5,34.4,100\n",
    )
    with pytest.raises(FormatError, match=r"^x\.json: JSON, but null"):
        formats.decode("x.json", b"null")


def test_formats_parse_takes_the_category_a_file_does_not_say() -> None:
    site = parse("site.json", js([v4(end=None)]), now=NOW, category="protected_site")
    assert (site.kind, site.category, site.volumes[0].end) == ("astm", "protected_site", None)
    with pytest.raises(FormatError, match=r"^site\.json volume 1: time_end: missing \(only a protected site"):
        parse("site.json", js([v4(end=None)]), now=NOW, category="exercise")
    area = parse("a.geojson", js(collection(POINT)), now=NOW, category="fire_area")
    assert (area.kind, area.category) == ("geojson", "fire_area")
    open_point = feature({"type": "Point", "coordinates": [9.1, 48.7]}, radius_m=250, time_end=None)
    assert parse("a.geojson", js(open_point), now=NOW, category="protected_site").volumes[0].end is None
    assert parse("n.json", js(NOTICE), now=NOW, category="exercise").category == "exercise"
    sites = parse("s.csv", (SITES + "Clinic,31.5,34.4,100\nSchool,31.6,34.4,50\n").encode(), now=NOW)
    assert (sites.category, sites.sites) == ("protected_site", ("Clinic", "School"))
    assert parse(
        "s.csv", (SITES + "Clinic,31.5,34.4,100\n").encode(), now=NOW, category="protected_site"
    ).sites


@pytest.mark.parametrize(
    ("name", "data", "category", "message"),
    [
        (
            "n.json",
            js(NOTICE),
            "air_operation",
            r"^n\.json: a notice file of category 'exercise', not 'air_operation'$",
        ),
        (
            "s.csv",
            (SITES + "Clinic,31.5,34.4,100\n").encode(),
            "exercise",
            r"^s\.csv: a CSV of sites, all of category 'protected_site', not 'exercise'$",
        ),
        (
            "a.json",
            js([v4()]),
            "picnic",
            r"^a\.json: category: expected one of air_operation, .*, got 'picnic'$",
        ),
    ],
)
def test_formats_parse_refuses_a_category_the_file_contradicts(
    name: str, data: bytes, category: str, message: str
) -> None:
    with pytest.raises(FormatError, match=message):
        parse(name, data, now=NOW, category=category)


def test_formats_route_over_the_pole() -> None:
    volumes = route_volumes([[0.0, 89.6], [180.0, 89.6]], 1000)
    assert len(volumes) == 2  # about 89 km over the top
    assert distance_to(volumes, 90.0, 0.0) == 0
    lng, lat, _ = GEOD.fwd(0.0, 90.0, 90.0, 510)  # 510 m from the pole, across the route
    assert distance_to(volumes, lat, lng) == pytest.approx(10, abs=0.05)
