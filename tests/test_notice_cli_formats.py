"""`openline notice send FILE` takes every format `openline conflicts` reads, told by
content, through the real CLI in process: a notice file as it is; an ASTM Volume4D or
GeoJSON file as one notice of the `--category` given; a CSV of sites as one
`protected_site` notice per site. Bad input is refused with a clear error and sends
nothing; a refusal part-way through a CSV says which sites were sent and which not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openline.cli import notices as cli_notices
from openline.core import formats
from openline.core.clock import FakeClock, rfc3339
from openline.core.volumes import Polygon
from openline.errors import DatabaseUnavailable
from openline.services import notices as notice_service
from tests.inproc import Node
from tests.notice_docs import HOUR, cli, cli_json, cli_table, show, site, soon

CATEGORIES = (
    "air_operation, fire_area, maritime, ground_movement, protected_site, protected_movement, exercise"
)
SITES = (
    "name,lat,lon,radius_m\n"
    "Al-Shifa hospital,31.5234,34.4453,300\nClinic,31.51,34.46,100\nSchool,31.53,34.47,80\n"
)


@pytest.fixture(autouse=True)
def _cli_clock(clock: FakeClock, monkeypatch: Any) -> None:
    """The CLI reads a file at the stations' time: the start of a site given none."""
    monkeypatch.setattr(cli_notices, "_now", clock.now)


def _ids(node: Node, monkeypatch: Any) -> list[str]:
    return [n["id"] for n in cli_json(node, monkeypatch, "notices")]


def _refused(node: Node, monkeypatch: Any, *args: str) -> str:
    """`openline ARGS`, refused with exit status 1 and nothing changed; its error line."""
    before = node.snapshot()
    result = cli(node, monkeypatch, *args)
    assert result.exit_code == 1, result.output
    assert node.snapshot() == before
    return str(result.stderr)


def test_an_astm_file_is_one_notice_of_the_category_given(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, b = nodes
    plan = tmp_path / "plan.json"
    extents = soon(a, 48.0, 9.0)["extents"] + soon(a, 48.1, 9.0)["extents"]
    plan.write_text(json.dumps({"extents": extents}))
    send = ("notice", "send", str(plan), "--to", "moscow")

    error = _refused(a, monkeypatch, *send)
    assert "error (invalid_input)" in error
    assert (
        f"{plan} is an ASTM Volume4D file, which does not say what activity it announces: "
        f"give --category, one of {CATEGORIES}"
    ) in error
    assert f"--category: expected one of {CATEGORIES}, got 'picnic'" in _refused(
        a, monkeypatch, *send, "--category", "picnic"
    )

    sent = cli_json(a, monkeypatch, *send, "--category", "air_operation", "--text", "Strike package")
    assert (sent["category"], sent["text"], sent["state"], sent["peer"]) == (
        "air_operation",
        "Strike package",
        "sent",
        "moscow",
    )
    assert [e["volume"]["outline_polygon"] for e in sent["extents"]] == [
        e["volume"]["outline_polygon"] for e in extents
    ]
    a.drain()
    assert show(b, sent["id"])["text"] == "Strike package"

    # A new version of it, from an ASTM file too; a text is optional.
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(soon(a, 48.2, 9.0)["extents"]))  # a bare list of Volume4D
    amended = cli_json(
        a, monkeypatch, "notice", "send", str(moved), "--to", "moscow", "--category", "air_operation",
        "--amends", sent["id"],
    )  # fmt: skip
    assert (amended["version"], amended["supersedes"], amended["text"]) == (2, sent["id"], "")
    assert show(a, sent["id"])["state"] == "amended"


def test_an_astm_protected_site_may_be_open_ended(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, _ = nodes
    hospital = tmp_path / "hospital.json"
    hospital.write_text(json.dumps(site(a, 31.5234, 34.4453)["extents"][0]))  # one Volume4D, no end
    send = ("notice", "send", str(hospital), "--to", "moscow")
    assert "time_end: missing (only a protected site may be open-ended)" in _refused(
        a, monkeypatch, *send, "--category", "exercise"
    )
    sent = cli_json(a, monkeypatch, *send, "--category", "protected_site", "--text", "Al-Shifa hospital")
    assert sent["category"] == "protected_site"
    assert "time_end" not in sent["extents"][0]
    assert sent["ends_at"] is None


def test_a_geojson_file_is_one_notice_its_routes_corridors(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, b = nodes
    now = a.station.clock.now()
    props = {"alt_lower_m": 0, "alt_upper_m": 500, "time_start": rfc3339(now + HOUR),
             "time_end": rfc3339(now + 3 * HOUR)}  # fmt: skip
    square = [[9.0, 48.0], [9.02, 48.0], [9.02, 48.02], [9.0, 48.02], [9.0, 48.0]]
    collection = {
        "type": "FeatureCollection",
        "name": "convoy",  # as GIS tools write it
        "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square]},
             "properties": {**props, "name": "Staging area", "fill": "#00f"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [9.1, 48.1]},
             "properties": {**props, "radius_m": 250}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[9.0, 48.0], [9.2, 48.0]]},
             "properties": {**props, "corridor_m": 1000, "name": "Route 1"}},
        ],
    }  # fmt: skip
    path = tmp_path / "convoy.geojson"
    path.write_text(json.dumps(collection))
    send = ("notice", "send", str(path), "--to", "moscow")
    assert f"{path} is a GeoJSON file, which does not say what activity it announces: give --category" in (
        _refused(a, monkeypatch, *send, "--text", "Convoy")
    )

    draft = cli_json(a, monkeypatch, *send, "--category", "ground_movement", "--text", "Convoy", "--draft")
    assert (draft["state"], draft["category"], draft["text"]) == ("draft", "ground_movement", "Convoy")
    square_out, circle, corridor = draft["extents"]
    assert circle["volume"]["outline_circle"]["radius"] == {"value": 250.0, "units": "M"}
    # The polygon and the route's corridor go exactly as `formats` reads them offline: the
    # polygon with points added along its east-west edges, which GeoJSON draws straight in
    # longitude and latitude (the ring's closing point dropped); the corridor's polygon.
    offline = formats.load("convoy.geojson", path.read_bytes(), now=a.station.clock.now())
    for sent_volume, read in ((square_out, offline[0]), (corridor, offline[2])):
        vertices = sent_volume["volume"]["outline_polygon"]["vertices"]
        assert isinstance(read.outline, Polygon)
        assert [(v["lat"], v["lng"]) for v in vertices] == list(read.outline.vertices)
    corners = [(v["lat"], v["lng"]) for v in square_out["volume"]["outline_polygon"]["vertices"]]
    assert [c for c in corners if [c[1], c[0]] in square] == [
        (48.0, 9.0),
        (48.0, 9.02),
        (48.02, 9.02),
        (48.02, 9.0),
    ]
    assert len(corners) > 4
    sent = cli_json(a, monkeypatch, "notice", "send-draft", draft["id"])
    assert sent["state"] == "sent"
    a.drain()
    assert len(show(b, draft["id"])["extents"]) == 3


def test_a_geojson_polygon_too_large_to_send_is_refused_naming_its_feature(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    """A rectangle 7° by 4° at 55-59°N takes about 1,700 vertices to follow its edges as the
    file draws them: more than a notice carries. The refusal says which feature."""
    a, _ = nodes
    now = a.station.clock.now()
    props = {"alt_lower_m": 0, "alt_upper_m": 500, "time_start": rfc3339(now + HOUR),
             "time_end": rfc3339(now + 3 * HOUR)}  # fmt: skip
    small = [[30, 50], [30.1, 50], [30.1, 50.1], [30, 50.1], [30, 50]]
    large = [[30, 55], [37, 55], [37, 59], [30, 59], [30, 55]]
    path = tmp_path / "big.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": props}
        for ring in (small, large)
    ]}))  # fmt: skip
    error = _refused(a, monkeypatch, "notice", "send", str(path), "--to", "moscow", "--category", "exercise")
    assert f"{path}: the notice is too large to send (" in error
    assert f"its largest volume, {path} volume 2 (feature 2), has 1," in error
    assert "to follow them as the file draws them); split it into smaller areas" in error


def test_a_csv_of_sites_is_one_protected_site_notice_per_site(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, b = nodes
    sites = tmp_path / "sites.csv"
    sites.write_text(SITES)
    send = ("notice", "send", str(sites), "--to", "moscow")
    sent = cli_json(a, monkeypatch, *send)
    assert isinstance(sent, list)
    assert [(x["category"], x["text"], x["state"]) for x in sent] == [
        ("protected_site", "Al-Shifa hospital", "sent"),
        ("protected_site", "Clinic", "sent"),
        ("protected_site", "School", "sent"),
    ]
    assert [x["extents"][0]["volume"]["outline_circle"]["radius"]["value"] for x in sent] == [300, 100, 80]
    assert all(len(x["extents"]) == 1 and "time_end" not in x["extents"][0] for x in sent)
    a.drain()
    assert [show(b, x["id"])["text"] for x in sent] == ["Al-Shifa hospital", "Clinic", "School"]

    # Read by people: each notice as it is sent, its id first of all, then how many.
    one = tmp_path / "one.csv"
    one.write_text("Name,Lat,Lon,Radius\nWell 4,31.40,34.38,50\n")
    table = cli_table(  # wide enough that the file's path is not wrapped
        a,
        monkeypatch,
        "notice",
        "send",
        str(one),
        "--to",
        "moscow",
        "--category",
        "protected_site",
        columns=400,
    )
    [well] = [n for n in _ids(a, monkeypatch) if n not in {x["id"] for x in sent}]
    assert f"id {well}" in table
    assert "protected_site to moscow, version 1: Well 4" in table
    assert f"1 notice sent, one per site of {one}." in " ".join(table.split())
    # A CSV of one site may amend a site; it is a list all the same.
    [moved] = cli_json(a, monkeypatch, "notice", "send", str(one), "--to", "moscow", "--amends", well)
    assert (moved["supersedes"], moved["version"]) == (well, 2)


def test_a_csv_with_a_bad_row_sends_nothing(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, _ = nodes
    bad = tmp_path / "sites.csv"
    bad.write_text(SITES + "Bakery,north,34.48,60\n")
    assert f"{bad} volume 4 (Bakery, line 5): lat: expected a number, got 'north'" in _refused(
        a, monkeypatch, "notice", "send", str(bad), "--to", "moscow"
    )
    # What only the station's own check refuses is refused before the first site is sent.
    bad.write_text(SITES + "Bakery\x1b[2J,31.54,34.48,60\n")
    assert f"{bad} volume 4 (Bakery\\x1b[2J, line 5): text must not contain control characters" in _refused(
        a, monkeypatch, "notice", "send", str(bad), "--to", "moscow", "--json"
    )
    # A name pasted whole (a note of 9,000 characters): its first 60 name the row, with its line.
    long = "Bakery " + "B" * 9000
    bad.write_text(SITES + f"{long},31.54,34.48,60\n")
    error = _refused(a, monkeypatch, "notice", "send", str(bad), "--to", "moscow")
    assert f"{bad} volume 4 ({long[:60]}…, line 5): text must be at most 8000 characters, got 9007" in error
    assert len(error) < 500
    good = tmp_path / "good.csv"
    good.write_text(SITES)
    for option, words in (
        (
            ("--category", "exercise"),
            f"{good}: a CSV of sites, all of category 'protected_site', not 'exercise'",
        ),
        (
            ("--text", "Sites"),
            f"{good} is a CSV of sites: each site is a notice whose text is the site's name",
        ),
        (("--amends", "01a2"), f"{good} has 3 sites, each its own notice: --amends names the one notice"),
    ):
        assert words in _refused(a, monkeypatch, "notice", "send", str(good), "--to", "moscow", *option)
    assert _ids(a, monkeypatch) == []


def test_a_csv_refused_part_way_says_which_sites_were_sent(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    """The station checks each notice as it comes: one it cannot take (here its database
    fails on the second) stops the file there, and the officer is told which were sent."""
    a, _ = nodes
    sites = tmp_path / "sites.csv"
    sites.write_text(SITES)
    real, calls = notice_service.send, []

    def failing_second(*args: Any, **kwargs: Any) -> str:
        calls.append(args)
        if len(calls) == 2:
            raise DatabaseUnavailable("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(notice_service, "send", failing_second)
    result = cli(a, monkeypatch, "notice", "send", str(sites), "--to", "moscow", "--json")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    [first] = json.loads("\n".join(lines[next(i for i, x in enumerate(lines) if x == "[") :]))
    assert first["text"] == "Al-Shifa hospital"
    assert "error (database_unavailable)" in result.stderr
    message = result.stderr.replace("\n", "")
    assert f"{sites} volume 2 (Clinic): the station cannot reach its database (disk full)" in message
    assert (
        f"1 of 3 sites were sent: {sites} volume 1 (Al-Shifa hospital) as notice {first['id']}; "
        f"not sent: {sites} volume 2 (Clinic), {sites} volume 3 (School)"
    ) in message
    assert _ids(a, monkeypatch) == [first["id"]]


def test_a_notice_file_says_its_own_category_and_fields(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, _ = nodes
    plan = tmp_path / "plan.json"
    doc = soon(a, 48.0, 9.0, text="Strike")
    plan.write_text(json.dumps(doc))
    send = ("notice", "send", str(plan), "--to", "moscow")
    assert (
        f"{plan} is a notice file whose category is 'air_operation', not --category 'exercise'"
        in _refused(a, monkeypatch, *send, "--category", "exercise")
    )
    assert f"{plan} is a notice file whose text is 'Strike', not --text 'Other'" in _refused(
        a, monkeypatch, *send, "--text", "Other"
    )
    # A misspelt or misplaced field is refused by the station, named with the file.
    route = {k: v for k, v in doc.items() if k != "extents"} | {"route": doc["extents"]}
    plan.write_text(json.dumps(route))
    assert (
        f"{plan}: notice: unknown field 'route' (a notice file has category, text, extents, routes; "
        "removes for a removal)"
    ) in _refused(a, monkeypatch, *send)
    plan.write_text(json.dumps({**doc, "amends": "01a2"}))
    inside = _refused(a, monkeypatch, *send)
    assert f"{plan}: notice: unknown field 'amends'" in inside
    assert "(`notice send --amends ID`)" in inside
    plan.write_text(json.dumps(doc))
    sent = cli_json(a, monkeypatch, *send, "--category", "air_operation", "--text", "Strike")
    assert isinstance(sent, dict)
    assert (sent["category"], sent["text"]) == ("air_operation", "Strike")
    assert f"cannot read {tmp_path / 'missing.json'}" in _refused(
        a, monkeypatch, "notice", "send", str(tmp_path / "missing.json"), "--to", "moscow"
    )
