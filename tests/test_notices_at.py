"""The investigator's question: "was this place notified, and was the notice acknowledged
before the strike?" `GET /api/v1/notices?at=LAT,LNG` (and `openline notices --at`) lists
every notice sent or received here that covered the place, whatever became of it since,
found through the same index and exact test as conflicts; `when` and `altitude_m` narrow
it; drafts were never announced and are left out; bad input is refused. With `when`,
each says what had become of it by then; the console asks the same on a page."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from openline.console import notices as notice_pages
from openline.core.clock import FakeClock, rfc3339
from openline.services import notice_view
from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import HOUR, act, circle, cli, cli_json, cli_table, east_of, send, show, site, soon
from tests.test_console import add_user, browser, log_in

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
    table = " ".join(cli_table(a, monkeypatch, "notices", "--at", place).split())
    assert "state acknowledged" in table
    assert "acknowledged stuttgart:admin" in table
    assert "text Al-Shifa hospital" in table  # which site it is, as the question names it
    assert "text Strike package" in table
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


def test_what_had_become_of_a_notice_by_the_time_asked(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    """With `when`, each notice found says what had become of it by then: the strike at
    12:05 met a site delivered at 12:00 but acknowledged only at 12:10."""
    a, b = nodes
    lat, lng = HOSPITAL
    protected = send(b, "stuttgart", site(b, lat, lng))
    b.drain()
    delivered = show(a, protected["id"])["delivered_at"]
    assert delivered is not None
    clock.advance(600)
    strike = rfc3339(clock.now() - 300 * 1_000_000)
    act(a, protected["id"], "acknowledge")
    a.drain()
    acknowledged = rfc3339(clock.now())
    place = f"{lat},{lng}"

    (then,) = at(a, at=place, when=strike)
    assert then["state"] == "acknowledged"  # now
    assert then["standing"] == {"state": "delivered", "since": delivered, "by": None}
    (later,) = at(a, at=place, when=rfc3339(clock.now() + HOUR))
    assert later["standing"] == {"state": "acknowledged", "since": acknowledged, "by": "stuttgart:admin"}
    # moscow, the sender, reads the same of its own notice.
    (theirs,) = at(b, at=place, when=strike)
    assert theirs["standing"]["state"] in {"sent", "delivered"}
    assert at(b, at=place, when=rfc3339(clock.now() + HOUR))[0]["standing"]["state"] == "acknowledged"
    # Without a time there is no instant to read it at.
    assert at(a, at=place)[0]["standing"] is None


def test_the_cli_says_what_had_become_of_each_notice_by_then(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: Any
) -> None:
    a, b = nodes
    lat, lng = HOSPITAL
    send(b, "stuttgart", site(b, lat, lng))
    b.drain()
    clock.advance(600)
    strike = rfc3339(clock.now() - 300 * 1_000_000)
    assert strike is not None
    protected = at(a, at=f"{lat},{lng}")[0]
    act(a, protected["id"], "acknowledge")
    a.drain()
    # 80 columns: too narrow for the table, so each notice is a block of `column value`.
    table = cli_table(a, monkeypatch, "notices", "--at", f"{lat},{lng}", "--when", strike)
    assert "by then delivered" in " ".join(table.split())
    later = cli_table(
        a, monkeypatch, "notices", "--at", f"{lat},{lng}", "--when", rfc3339(clock.now() + HOUR) or ""
    )
    assert "by then acknowledged by stuttgart:admin" in " ".join(later.split())


def test_standing_reads_the_last_state_reached_by_then() -> None:
    def row(**times: int) -> Any:
        names = (
            "sent",
            "delivered",
            "acknowledged",
            "rejected",
            "amended",
            "withdrawn",
            "removed",
            "expired",
        )
        return SimpleNamespace(**{f"{n}_at": times.get(n) for n in names}, acknowledged_by="moscow:boris")

    assert notice_view.standing_at(row(sent=10, delivered=20), 5) == {
        "state": None,
        "since": None,
        "by": None,
    }
    assert notice_view.standing_at(row(sent=10, delivered=20), 10)["state"] == "sent"
    assert notice_view.standing_at(row(sent=10, delivered=20, acknowledged=30), 25)["state"] == "delivered"
    acked = notice_view.standing_at(row(sent=10, delivered=20, acknowledged=30), 30)
    assert acked == {"state": "acknowledged", "since": rfc3339(30), "by": "moscow:boris"}
    # Delivered and acknowledged in the same microsecond: the later state in the lifecycle.
    assert notice_view.standing_at(row(sent=10, delivered=20, acknowledged=20), 20)["state"] == "acknowledged"
    assert notice_view.standing_at(row(sent=10, delivered=20, withdrawn=40), 50)["state"] == "withdrawn"


def test_the_console_asks_which_notices_covered_a_place(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    """The console's place page (`/notices/place`) answers the same question for every
    role, the auditor without the text; a bad place is refused on the page."""
    a, b = nodes
    lat, lng = HOSPITAL
    protected = send(b, "stuttgart", site(b, lat, lng, text="Al-Shifa hospital"))
    b.drain()
    elsewhere = send(a, "moscow", soon(a, lat + 1, lng))
    a.drain()
    add_user(a, "ivan", Role.AUDITOR)
    c = browser(a)
    log_in(c, "ivan")

    notices_page = c.get("/notices")
    assert notices_page.status_code == 200, notices_page.text
    assert 'action="/notices/place"' in notices_page.text  # the form below the map
    assert "Click the\n    map to fill in the place." in notices_page.text
    empty = c.get("/notices/place")
    assert empty.status_code == 200
    assert "data-place-form" in empty.text
    assert "data-place-found" not in empty.text

    r = c.get("/notices/place", params={"at": f"{lat},{lng}", "when": rfc3339(clock.now() + HOUR)})
    assert r.status_code == 200, r.text
    assert 'data-place-found="1"' in r.text
    assert f'data-notice="{protected["id"]}"' in r.text
    assert f'data-notice="{elsewhere["id"]}"' not in r.text
    assert 'data-standing="delivered"' in r.text
    assert "Al-Shifa hospital" not in r.text  # an auditor reads no text
    assert "withheld" in r.text
    assert f'value="{lat},{lng}"' in r.text  # the form keeps what was asked

    act(a, protected["id"], "acknowledge")
    a.drain()
    r = c.get("/notices/place", params={"at": f"{lat},{lng}", "when": rfc3339(clock.now() + HOUR)})
    assert 'data-standing="acknowledged"' in r.text
    assert "stuttgart:admin" in r.text
    anytime = c.get("/notices/place", params={"at": f"{lat},{lng}"})
    assert re.search(r"volume 1: <time[^>]*>[^<]+</time>\s+to open", anytime.text)  # the site's window
    assert "data-standing" not in anytime.text  # no time asked, nothing to read it at
    nothing = c.get("/notices/place", params={"at": "0,0"})
    assert 'data-place-found="0"' in nothing.text
    assert "No notice sent or received here covered it." in nothing.text

    before = a.snapshot()
    for params, words in [
        ({"at": "91,0"}, "latitude must be in [-90, 90]"),
        ({"at": "0,0", "radius_m": "wide"}, "radius_m: expected a number, got &#39;wide&#39;"),
        ({"at": "0,0", "when": "noon"}, "when: expected an RFC 3339 time"),
        ({"when": "2026-11-28T00:00:00Z"}, "give it with at=LAT,LNG"),
        ({"at": "0," + "0" * 80}, "at: at most 60 characters"),
    ]:
        bad = c.get("/notices/place", params=params)
        assert bad.status_code == 422, (params, bad.status_code)
        assert words in bad.text, params
        assert "data-place-found" not in bad.text
    assert a.snapshot() == before


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_place_page_counts_every_notice_that_covered_it_and_says_what_it_leaves_out(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page lists the newest NOTICE_LIMIT (500; here 1) of the notices that covered
    the place, and counts them all: an investigator is told when the list is not whole."""
    a, b = nodes
    lat, lng = HOSPITAL
    older = send(b, "stuttgart", site(b, lat, lng))
    newer = send(b, "stuttgart", soon(b, lat, lng))
    b.drain()
    monkeypatch.setattr(notice_pages, "NOTICE_LIMIT", 1)
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    r = c.get("/notices/place", params={"at": f"{lat},{lng}"})
    assert r.status_code == 200, r.text
    assert 'data-place-found="2"' in r.text
    assert re.search(r"<h2>2 notices covered", r.text)
    assert "data-place-more>The newest 1 are listed" in r.text
    assert f'data-notice="{newer["id"]}"' in r.text
    assert f'data-notice="{older["id"]}"' not in r.text
    monkeypatch.setattr(notice_pages, "NOTICE_LIMIT", 500)
    whole = c.get("/notices/place", params={"at": f"{lat},{lng}"}).text
    assert "data-place-more" not in whole
    assert f'data-notice="{older["id"]}"' in whole
