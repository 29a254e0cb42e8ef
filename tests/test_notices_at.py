"""The investigator's question: "was this place notified, and was the notice acknowledged
before the strike?" `GET /api/v1/notices?at=LAT,LNG` (and `openline notices --at`) lists
every notice sent or received here that covered the place, whatever became of it since,
found through the same index and exact test as conflicts; `when` and `altitude_m` narrow
it; drafts were never announced and are left out; bad input is refused."""

from __future__ import annotations

from typing import Any

import pytest

from openline.core.clock import FakeClock, rfc3339
from tests.inproc import Node
from tests.notice_docs import HOUR, act, circle, cli, cli_json, east_of, send, site, soon

HOSPITAL = (31.5234, 34.4453)


def at(node: Node, **params: Any) -> list[dict[str, Any]]:
    r = node.api.get("/api/v1/notices", params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


def test_which_notices_covered_a_place_and_whether_they_were_acknowledged(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: Any
) -> None:
    a, b = nodes
    lat, lng = HOSPITAL
    protected = send(b, "stuttgart", site(b, lat, lng))  # moscow notifies the hospital
    b.drain()
    act(a, protected["id"], "acknowledge")  # by stuttgart's admin, now
    a.drain()
    acknowledged_at = rfc3339(clock.now())
    withdrawn = send(a, "moscow", soon(a, lat, lng, text="Strike package"))  # covers it too
    a.drain()
    act(a, withdrawn["id"], "withdraw")
    a.drain()
    elsewhere = send(a, "moscow", soon(a, lat + 1, lng))  # 111 km north
    draft = send(a, "moscow", soon(a, lat, lng), draft=True)
    a.drain()

    place = f"{lat},{lng}"
    found = at(a, at=place)
    assert [n["id"] for n in found] == [withdrawn["id"], protected["id"]]  # newest first
    assert [n["state"] for n in found] == ["withdrawn", "acknowledged"]
    assert found[1]["acknowledged_by"] == "stuttgart:admin"
    assert found[1]["acknowledged_at"] == acknowledged_at
    assert found[1]["covers"] == [
        {"volume": 1, "from": found[1]["starts_at"], "until": None, "altitude_m": [-500.0, 20_000.0]}
    ]
    assert {n["id"] for n in found}.isdisjoint({elsewhere["id"], draft["id"]})
    # The same on the other station, which holds both sides' notices too.
    assert [n["id"] for n in at(b, at=place)] == [withdrawn["id"], protected["id"]]

    # At a time: before the strike package's window only the hospital was covered.
    assert [n["id"] for n in at(a, at=place, when=rfc3339(clock.now()))] == [protected["id"]]
    assert [n["id"] for n in at(a, at=place, when=rfc3339(clock.now() + 2 * HOUR))] == [
        withdrawn["id"],
        protected["id"],
    ]
    # At an altitude: above the strike package's 3,000 m, below the site's 20,000 m.
    assert [n["id"] for n in at(a, at=place, altitude_m=5000)] == [protected["id"]]
    # A place 300 m east: outside the 200 m site, inside the 2 km square; a radius of
    # 150 m round it reaches the site's edge.
    east = "{},{}".format(*east_of(lat, lng, 300))
    assert [n["id"] for n in at(a, at=east)] == [withdrawn["id"]]
    assert [n["id"] for n in at(a, at=east, radius_m=150)] == [withdrawn["id"], protected["id"]]

    # The CLI asks the same, and its table says who acknowledged and when.
    assert [n["id"] for n in cli_json(a, monkeypatch, "notices", "--at", place)] == [
        withdrawn["id"],
        protected["id"],
    ]
    table = cli(a, monkeypatch, "notices", "--at", place)
    assert table.exit_code == 0, table.output
    assert "acknowledged" in table.stdout
    assert "stuttgart:admin" in table.stdout
    nothing = cli(a, monkeypatch, "notices", "--at", "0,0")
    assert "No notice covered 0,0." in nothing.stdout


def test_an_open_ended_site_is_found_at_any_later_time(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, _ = nodes
    lat, lng = HOSPITAL
    now = clock.now()
    ended = send(a, "moscow", circle(lat, lng, 500, now + HOUR, now + 2 * HOUR, category="exercise"))
    protected = send(a, "moscow", site(a, lat, lng))
    a.drain()
    years_later = rfc3339(now + 365 * 24 * HOUR)
    assert [n["id"] for n in at(a, at=f"{lat},{lng}", when=years_later)] == [protected["id"]]
    assert {n["id"] for n in at(a, at=f"{lat},{lng}")} == {ended["id"], protected["id"]}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"at": "31.5"}, "at: expected LAT,LNG in degrees"),
        ({"at": "north,east"}, "at: expected LAT,LNG in degrees"),
        ({"at": "91,0"}, "latitude must be in [-90, 90]"),
        ({"at": "0,181"}, "longitude in [-180, 180]"),
        ({"at": "nan,0"}, "latitude must be in [-90, 90]"),
        ({"at": "0,0", "radius_m": 0}, "radius_m: expected more than 0"),
        ({"at": "0,0", "radius_m": 1e6}, "at most 100,000 m"),
        ({"at": "0,0", "when": "yesterday"}, "when: expected an RFC 3339 time"),
        ({"at": "0,0", "altitude_m": "inf"}, "altitude_m: expected a number of metres"),
        ({"when": "2026-11-27T00:00:00Z"}, "give it with at=LAT,LNG"),
        ({"radius_m": 5}, "give it with at=LAT,LNG"),
    ],
)
def test_a_bad_place_is_refused(nodes: tuple[Node, Node], params: dict[str, Any], words: str) -> None:
    a, _ = nodes
    before = a.snapshot()
    r = a.api.get("/api/v1/notices", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert words in r.json()["detail"]
    assert a.snapshot() == before
