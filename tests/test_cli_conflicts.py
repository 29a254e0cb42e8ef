"""`openline conflicts` through the real command: no station home, files only; exit 0 when
nothing conflicts, 1 when something does (naming the pair, its time window and altitude
band), 2 on invalid input (naming the file, the volume and the vertex)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod

from tests.zygote import ZYGOTE

OPENLINE = [sys.executable, "-m", "openline"]
GEOD = Geod(ellps="WGS84")
# Real times: the command checks the planning horizon against the real clock.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(hours: float) -> str:
    """The same time as printed: RFC 3339 with microseconds."""
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    return ZYGOTE.run(["conflicts", *args], env, cwd=cwd, timeout=120)


def write(path: Path, content: Any) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path.name


def astm(
    vertices: list[tuple[float, float]], *, upper_ft: float = 3000, start: float = 0, end: float = 3
) -> Any:
    return {
        "extents": [
            {
                "volume": {
                    "outline_polygon": {"vertices": [{"lat": lat, "lng": lng} for lat, lng in vertices]},
                    "altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
                    "altitude_upper": {"value": upper_ft, "reference": "W84", "units": "FT"},
                },
                "time_start": {"value": at(start), "format": "RFC3339"},
                "time_end": {"value": at(end), "format": "RFC3339"},
            }
        ]
    }


def point(lat: float, lng: float, radius_m: float, *, lower: float = 500, upper: float = 800) -> Any:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lng, lat]},
        "properties": {
            "radius_m": radius_m,
            "alt_lower_m": lower,
            "alt_upper_m": upper,
            "time_start": at(1),
            "time_end": at(5),
        },
    }


def collection(*features: Any) -> Any:
    return {"type": "FeatureCollection", "features": list(features)}


STUTTGART = [(48.77, 9.18), (48.79, 9.25), (48.74, 9.27)]


def test_conflicts_across_an_astm_file_and_a_geojson_file_exit_1(tmp_path: Path) -> None:
    plan = write(tmp_path / "plan.json", astm(STUTTGART))
    other = write(tmp_path / "other.geojson", collection(point(48.77, 9.22, 500)))
    r = run_cli(plan, other, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "CONFLICT plan.json volume 1 with other.geojson volume 1 (feature 1)" in r.stdout
    # Time: the later start and the earlier end; altitude: 500-800 m inside 0-3000 ft.
    assert f"time {micro(1)} to {micro(3)}; altitude 500.0 m to 800.0 m (WGS84)" in r.stdout
    assert "1 conflicting and 0 clear of 1 pair(s)" in r.stdout


def test_conflicts_json_fields(tmp_path: Path) -> None:
    plan = write(tmp_path / "plan.json", astm(STUTTGART, upper_ft=1000))
    other = write(
        tmp_path / "other.geojson", collection(point(48.77, 9.22, 500, lower=0), point(48.77, 9.5, 500))
    )
    r = run_cli(plan, other, "--json", "--margin-vertical", "10", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout)
    assert result["files"] == [
        {"file": "plan.json", "format": "astm", "category": None, "volumes": 1},
        {"file": "other.geojson", "format": "geojson", "category": None, "volumes": 2},
    ]
    assert result["margins"] == {"horizontal_m": 0.0, "vertical_m": 10.0, "minutes": 0}
    assert (result["pairs"], result["conflict_count"], result["clear_count"]) == (2, 1, 1)
    assert result["clear_listed"] == "all"
    [conflict] = result["conflicts"]
    assert conflict == {
        "a": "plan.json volume 1",
        "b": "other.geojson volume 1 (feature 1)",
        "conflict": True,
        "time": {"start": micro(1), "end": micro(3)},
        "altitude": {"lower_m": 0.0, "upper_m": pytest.approx(304.8)},
        "distance_m": 0.0,
    }
    [clear] = result["clear"]
    assert clear["b"] == "other.geojson volume 2 (feature 2)"
    assert clear["conflict"] is False
    assert clear["distance_m"] > 15_000


def test_conflicts_clear_pair_prints_its_geodesic_distance_and_exits_0(tmp_path: Path) -> None:
    a = write(tmp_path / "a.geojson", collection(point(48.0, 9.0, 300)))
    b = write(tmp_path / "b.geojson", collection(point(48.01, 9.0, 200)))
    _, _, between = GEOD.inv(9.0, 48.0, 9.0, 48.01)
    gap = between - 500  # about 612 m
    r = run_cli(a, b, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    [clear] = json.loads(r.stdout)["clear"]
    assert clear["distance_m"] == pytest.approx(gap, abs=0.01)
    r = run_cli(a, b, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (
        f"clear    a.geojson volume 1 (feature 1) with b.geojson volume 1 (feature 1): {gap:,.1f} m apart"
        in r.stdout
    )
    assert "0 conflicting and 1 clear of 1 pair(s)" in r.stdout


def test_conflicts_a_geojson_polygon_is_the_area_its_file_draws(tmp_path: Path) -> None:
    """RFC 7946 §3.1.1: GeoJSON edges are straight in longitude and latitude (as QGIS draws
    them); the geodesics between the corners of this rectangle bow 440 m north."""
    rect = [[30.0, 46.4], [32.0, 46.4], [32.0, 46.6], [30.0, 46.6], [30.0, 46.4]]
    props = {"alt_lower_m": 0, "alt_upper_m": 3000, "time_start": at(1), "time_end": at(5)}
    area = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [rect]}, "properties": props}
    plan = write(tmp_path / "rect.geojson", collection(area))
    inside = GEOD.fwd(31.0, 46.4, 0, 300)  # 300 m inside the south edge
    outside = GEOD.fwd(31.0, 46.6, 0, 300)  # 300 m outside the north edge
    sites = write(
        tmp_path / "sites.csv",
        f"name,lat,lon,radius_m\nInside,{inside[1]},{inside[0]},20\nOutside,{outside[1]},{outside[0]},20\n",
    )
    r = run_cli(plan, sites, "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout)
    [conflict] = result["conflicts"]
    assert conflict["b"] == "sites.csv volume 1 (Inside)"
    [clear] = result["clear"]
    assert clear["b"] == "sites.csv volume 2 (Outside)"
    assert clear["distance_m"] == pytest.approx(280, abs=0.02)


def test_conflicts_margins_turn_a_near_miss_into_a_conflict(tmp_path: Path) -> None:
    a = write(tmp_path / "a.geojson", collection(point(48.0, 9.0, 300)))
    b = write(tmp_path / "b.geojson", collection(point(48.01, 9.0, 200)))
    assert run_cli(a, b, "--margin-horizontal", "600", cwd=tmp_path).returncode == 0
    r = run_cli(a, b, "--margin-horizontal", "620", cwd=tmp_path)
    assert r.returncode == 1, r.stdout
    assert "margins 620 m, 0 m, 0 min" in r.stdout


def test_conflicts_a_clear_pair_under_a_metre_apart_says_how_far_to_the_millimetre(tmp_path: Path) -> None:
    """2 cm apart is clear (more than the 1 cm rule), and read as touching when printed as 0.0 m."""
    lng, lat, _ = GEOD.fwd(9.0, 48.0, 0.0, 300 + 200 + 0.02)  # due north, edges 2 cm apart
    a = write(tmp_path / "a.geojson", collection(point(48.0, 9.0, 300)))
    b = write(tmp_path / "b.geojson", collection(point(lat, lng, 200)))
    r = run_cli(a, b, cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    assert ": 0.020 m apart" in r.stdout


def test_conflicts_time_and_altitude_separation(tmp_path: Path) -> None:
    plan = write(tmp_path / "plan.json", astm(STUTTGART, upper_ft=1000, start=-2, end=1))
    high = point(48.77, 9.22, 500, lower=400, upper=800)
    later = write(tmp_path / "later.geojson", collection(high))
    r = run_cli(plan, later, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    [clear] = json.loads(r.stdout)["clear"]
    # They touch in time (at +1 h, closed intervals) but 304.8 m is below 400 m.
    assert clear["time"] == {"start": micro(1), "end": micro(1)}
    assert clear["altitude"] is None
    assert clear["distance_m"] == 0.0
    assert "apart in altitude (outlines 0.0 m apart)" in run_cli(plan, later, cwd=tmp_path).stdout
    assert run_cli(plan, later, "--margin-vertical", "100", cwd=tmp_path).returncode == 1


def test_conflicts_margin_minutes(tmp_path: Path) -> None:
    early = write(tmp_path / "early.json", astm(STUTTGART, start=-2, end=0.5))
    late = write(tmp_path / "late.geojson", collection(point(48.77, 9.22, 500)))  # from +1 h
    r = run_cli(early, late, cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    assert "apart in time" in r.stdout
    assert run_cli(early, late, "--margin-minutes", "30", cwd=tmp_path).returncode == 1


def test_conflicts_volumes_of_one_file_are_one_activity(tmp_path: Path) -> None:
    same = write(tmp_path / "op.geojson", collection(point(48.0, 9.0, 300), point(48.0, 9.0, 300)))
    r = run_cli(same, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert (result["pairs"], result["conflicts"], result["clear"]) == (0, [], [])


def _route() -> dict[str, Any]:
    """A 200 m corridor along 31.52 N from 34.40 to 34.50 E, 0-100 m, for two hours."""
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[34.40, 31.52], [34.50, 31.52]]},
        "properties": {
            "corridor_m": 200,
            "alt_lower_m": 0,
            "alt_upper_m": 100,
            "time_start": at(0),
            "time_end": at(2),
        },
    }


def test_conflicts_protected_sites_against_a_route_notice(tmp_path: Path) -> None:
    sites = write(
        tmp_path / "sites.csv",
        "name,lat,lon,radius_m\nHospital,31.52,34.45,150\nSchool,31.60,34.60,150\n",
    )
    other_sites = write(tmp_path / "more.csv", "name,lat,lon,radius_m\nClinic,31.52,34.45,150\n")
    route = _route()
    notice = write(
        tmp_path / "convoy.json",
        {"category": "ground_movement", "text": "Fuel convoy", "extents": [], "routes": [route]},
    )
    r = run_cli(sites, other_sites, notice, "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout)
    assert [f["category"] for f in result["files"]] == ["protected_site", "protected_site", "ground_movement"]
    # Two lists of sites are not checked against each other: 2 + 1 pairs with the convoy.
    assert result["pairs"] == 3
    assert sorted((c["a"], c["b"]) for c in result["conflicts"]) == [
        ("more.csv volume 1 (Clinic)", "convoy.json volume 1 (route 1)"),
        ("sites.csv volume 1 (Hospital)", "convoy.json volume 1 (route 1)"),
    ]
    [school] = result["clear"]
    assert school["a"] == "sites.csv volume 2 (School)"
    assert school["time"]["end"] == micro(2)


def test_conflicts_protected_movements_against_sites_each_other_and_an_air_operation(tmp_path: Path) -> None:
    sites = write(tmp_path / "sites.csv", "name,lat,lon,radius_m\nClinic,31.52,34.45,150\n")
    route = _route()
    # The same convoy, notified to two parties; a strike package over its route.
    convoy = {"category": "protected_movement", "text": "Relief convoy", "extents": [], "routes": [route]}
    to_a = write(tmp_path / "convoy_a.json", convoy)
    to_b = write(tmp_path / "convoy_b.json", convoy)
    over = [(31.50, 34.42), (31.54, 34.42), (31.54, 34.44), (31.50, 34.44)]
    strike = write(tmp_path / "strike.json", {"category": "air_operation", "text": "Strike"} | astm(over))
    r = run_cli(sites, to_a, to_b, strike, "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout)
    # Of what must not be struck, no two are checked: 3 pairs, each with the strike.
    assert result["pairs"] == 3
    assert sorted((c["a"], c["b"]) for c in result["conflicts"]) == [
        ("convoy_a.json volume 1 (route 1)", "strike.json volume 1"),
        ("convoy_b.json volume 1 (route 1)", "strike.json volume 1"),
    ]
    [clinic] = result["clear"]
    assert (clinic["a"], clinic["b"]) == ("sites.csv volume 1 (Clinic)", "strike.json volume 1")


def test_conflicts_many_pairs_list_only_the_near_clear_ones(tmp_path: Path) -> None:
    # 40 sites 11 km apart; 29 points on sites 0-28 and one 1 km north of site 39: 1,200 pairs.
    rows = "".join(f"S{i},{31.0 + i * 0.1:.1f},34.0,100\n" for i in range(40))
    sites = write(tmp_path / "sites.csv", "name,lat,lon,radius_m\n" + rows)
    lng, lat, _ = GEOD.fwd(34.0, 34.9, 0, 1000)
    points = [point(31.0 + i * 0.1, 34.0, 100) for i in range(29)] + [point(lat, lng, 100)]
    plan = write(tmp_path / "plan.geojson", collection(*points))
    r = run_cli(sites, plan, "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout)
    assert (result["pairs"], result["conflict_count"], result["clear_count"]) == (1200, 29, 1171)
    assert result["clear_listed"] == "near"
    [near] = result["clear"]
    assert (near["a"], near["b"]) == ("sites.csv volume 40 (S39)", "plan.geojson volume 30 (feature 30)")
    assert near["distance_m"] == pytest.approx(800, abs=0.01)
    text = run_cli(sites, plan, cwd=tmp_path).stdout
    assert "only the 1 clear pair(s) within 5,000 m beyond the margins are listed" in text


def test_conflicts_invalid_file_names_file_volume_and_vertex_exit_2(tmp_path: Path) -> None:
    plan = write(tmp_path / "plan.json", astm(STUTTGART))
    bowtie = [[9.0, 48.0], [9.1, 48.1], [9.1, 48.0], [9.0, 48.1], [9.0, 48.0]]
    bad = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [bowtie]},
        "properties": {"alt_lower_m": 0, "alt_upper_m": 100, "time_start": at(0), "time_end": at(1)},
    }
    other = write(tmp_path / "bad.geojson", collection(point(48.0, 9.0, 100), bad))
    r = run_cli(plan, other, cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert r.stdout == ""
    assert (
        "error (invalid_input): bad.geojson volume 2 (feature 2), vertex 1: the polygon intersects itself: "
        "edge 1-2 crosses edge 3-4"
    ) in r.stderr
    r = run_cli(plan, other, "--json", cwd=tmp_path)
    assert r.returncode == 2
    assert json.loads(r.stdout)["error"].startswith("bad.geojson volume 2 (feature 2), vertex 1:")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["plan.json", "missing.json"], "cannot read missing.json: No such file or directory"),
        (["plan.json", "plan.json"], "plan.json is given twice: each file is one activity, give it once"),
        (["plan.json", "notes.txt"], "notes.txt: not JSON, so read as a CSV of sites"),
        (["plan.json", "far.json"], "far.json volume 1: the start, "),
    ],
    ids=["missing", "twice", "not-a-format", "beyond-horizon"],
)
def test_conflicts_unusable_input_exits_2(tmp_path: Path, files: list[str], message: str) -> None:
    write(tmp_path / "plan.json", astm(STUTTGART))
    write(tmp_path / "notes.txt", "call the duty officer at six\n")
    write(tmp_path / "far.json", astm(STUTTGART, start=24 * 40, end=24 * 40 + 1))
    r = run_cli(*files, cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert f"error (invalid_input): {message}" in r.stderr


def test_conflicts_negative_margin_is_a_usage_error(tmp_path: Path) -> None:
    plan = write(tmp_path / "plan.json", astm(STUTTGART))
    r = run_cli(plan, "--margin-horizontal", "-1", cwd=tmp_path)
    assert r.returncode == 2
    assert "--margin-horizontal" in r.stderr


@pytest.mark.parametrize("margin", ["--margin-horizontal", "--margin-vertical"])
@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_conflicts_a_margin_that_is_no_distance_is_a_usage_error(
    tmp_path: Path, margin: str, value: str
) -> None:
    """Exit 2, not a traceback and exit 1, which says there is a conflict (inf did that)."""
    a = write(tmp_path / "a.geojson", collection(point(48.0, 9.0, 300)))
    r = run_cli(a, a, margin, value, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
