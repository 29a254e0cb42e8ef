"""The console's notice buttons, in process: acknowledge, reject with a reason, withdraw and
amend, each shown only to roles that work calls and only where the station would accept
it, each refused with the reason on the page and nothing changed; the notice form keeping
what was typed; the watch board's notices waiting for an answer; the live part of the
notices page; the favicon; and the vendored drawing plugin."""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from openline.console import notices as notice_pages
from openline.console import routes
from openline.console.notices import actions
from openline.console.pages import MAX_FORM_BYTES
from openline.core.clock import FakeClock, rfc3339
from openline.services.accounts import GRANTS, Permission, Role
from tests.inproc import Node
from tests.notice_docs import act, send, site, square
from tests.test_console import add_user, csrf_of, log_in
from tests.test_console import browser as client

HOUR = 3_600_000_000
TEXT = "Strike package over the valley"
WORKERS = [r for r in Role if Permission.WORK_CALLS in GRANTS[r]]
VENDOR = Path(__file__).resolve().parent.parent / "src/openline/console/static/vendor"


def _doc(node: Node, lat: float = 48.0, lng: float = 9.0, **kw: Any) -> dict[str, Any]:
    now = node.station.clock.now()
    start, end = rfc3339(now + HOUR), rfc3339(now + 3 * HOUR)
    assert start is not None
    assert end is not None
    return square(lat, lng, start, end, **{"text": TEXT, **kw})


def _send(sender: Node, receiver: Node, peer: str, lat: float = 48.0) -> str:
    r = sender.api.post("/api/v1/notices", json={"peer": peer, "notice": _doc(sender, lat)})
    assert r.status_code == 201, r.text
    sender.drain()
    receiver.drain()
    return str(r.json()["id"])


def _state(node: Node, notice_id: str) -> str:
    return str(node.api.get(f"/api/v1/notices/{notice_id}").json()["state"])


def _officer(node: Node, role: Role = Role.WATCH_OFFICER, name: str = "duty") -> tuple[TestClient, str]:
    add_user(node, name, role)
    c = client(node)
    log_in(c, name)
    return c, csrf_of(c.get("/notices").text)


def _row(page: str, notice_id: str) -> str:
    match = re.search(rf'<tr data-notice="{notice_id}".*?</tr>', page, re.S)
    assert match, f"no row for {notice_id}"
    return match.group(0)


def _buttons(row: str, notice_id: str) -> set[str]:
    found = set(re.findall(rf'action="/notices/{notice_id}/(ack|reject|withdraw|send|discard|remove)"', row))
    for link in ("amend", "edit"):
        if f'href="/notices?{link}={notice_id}' in row:
            found.add(link)
    return found


def _textarea(page: str, name: str) -> str:
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, f"no textarea {name}"
    return html.unescape(match.group(1))


# Which buttons, for whom ---------------------------------------------------------------


def test_the_buttons_are_the_actions_the_station_would_accept() -> None:
    # Which actions a notice has is the station's answer (its `actions`, by the use cases'
    # own checks: test_console_notices_sites.py goes through the cases); the console only
    # names their buttons.
    assert actions({"actions": ["acknowledge", "reject"]}) == {"ack", "reject"}
    everything = ["withdraw", "amend", "send", "edit", "discard", "remove"]
    assert actions({"actions": everything}) == {"withdraw", "amend", "send", "edit", "discard", "remove"}
    assert actions({"actions": []}) == set()
    assert actions({}) == set()


@pytest.mark.parametrize(
    ("direction", "state", "expected"),
    [
        ("in", "delivered", {"ack", "reject"}),
        ("in", "acknowledged", set()),
        ("in", "rejected", set()),
        ("out", "delivered", {"withdraw", "amend"}),
        ("out", "acknowledged", {"withdraw", "amend"}),
        ("out", "rejected", {"amend"}),
        ("out", "withdrawn", set()),
        ("out", "amended", set()),
        ("out", "expired", set()),
    ],
)
def test_an_activitys_buttons_follow_its_state(
    nodes: tuple[Node, Node], clock: FakeClock, direction: str, state: str, expected: set[str]
) -> None:
    a, b = nodes
    notice_id = _send(a, b, "moscow")
    answer = {"acknowledged": ("acknowledge", None), "rejected": ("reject", {"reason": "no"})}
    if state in answer:
        action, body = answer[state]
        assert b.api.post(f"/api/v1/notices/{notice_id}/{action}", json=body).status_code == 200
        b.drain()
    elif state == "withdrawn":
        assert a.api.post(f"/api/v1/notices/{notice_id}/withdraw").status_code == 200
    elif state == "amended":
        r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": _doc(a), "amends": notice_id})
        assert r.status_code == 201, r.text
    elif state == "expired":
        clock.advance(4 * 3600)  # past its end: it reads as expired at once
    a.drain()
    node = a if direction == "out" else b
    assert _state(node, notice_id) == state
    c, _ = _officer(node)
    assert _buttons(_row(c.get("/notices").text, notice_id), notice_id) == expected


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_the_notice_buttons_it_may_use(nodes: tuple[Node, Node], role: Role) -> None:
    a, b = nodes
    theirs = _send(a, b, "moscow")  # inbound at moscow, delivered
    ours = _send(b, a, "stuttgart", lat=50.0)  # outbound from moscow, delivered
    c, token = _officer(b, role, "someone")
    works = role in WORKERS
    page = c.get("/notices").text
    assert _buttons(_row(page, theirs), theirs) == ({"ack", "reject"} if works else set())
    assert _buttons(_row(page, ours), ours) == ({"withdraw", "amend"} if works else set())
    assert ("leaflet-geoman.min.js" in page) is works  # the drawing tools come with the form
    assert ("data-notice-form" in page) is works

    # The watch board lists the notices waiting for our answer, ours not.
    board = c.get("/").text
    pattern = r'<section class="card notices-waiting" id="notices-waiting".*?</section>'  # its anchor too
    waiting = re.search(pattern, board, re.S)
    assert waiting, "no waiting notices on the board"
    section = waiting.group(0)
    assert f'data-waiting-notice="{theirs}"' in section
    assert ours not in section  # ours waits for the peer
    deadline = b.api.get(f"/api/v1/notices/{theirs}").json()["deadline_at"]
    assert f'data-until="{deadline}"' in section
    assert f'href="/notices#notice-{theirs}"' in section
    assert (TEXT in section) is (role is not Role.AUDITOR)
    assert (f'action="/notices/{theirs}/ack"' in section) is works
    if not works:
        return
    r = c.post(f"/notices/{theirs}/ack", data={"csrf": token, "back": "board"})
    assert r.status_code == 303
    assert r.headers["location"] == "/#notices-waiting"
    assert _state(b, theirs) == "acknowledged"
    board = c.get("/board").text
    assert f'data-waiting-notice="{theirs}"' not in board
    assert "No notice is waiting for an answer." in board


# Reject ----------------------------------------------------------------------------------


def test_an_officer_rejects_a_notice_with_a_reason_and_the_sender_sees_it(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = _send(a, b, "moscow")
    c, token = _officer(b)
    before = b.snapshot()
    r = c.post(f"/notices/{notice_id}/reject", data={"csrf": token, "reason": "  "})
    assert r.status_code == 422
    assert "a rejection needs a reason" in r.text
    assert f'data-notice="{notice_id}"' in r.text  # the page, with the notice still to answer
    assert b.snapshot() == before
    r = c.post(f"/notices/{notice_id}/reject", data={"csrf": token, "reason": "Overlaps our corridor"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/notices#notice-{notice_id}"
    assert _state(b, notice_id) == "rejected"
    assert _buttons(_row(c.get("/notices").text, notice_id), notice_id) == set()
    b.drain()
    assert _state(a, notice_id) == "rejected"
    # The sender may now only amend it.
    sender, _ = _officer(a)
    assert _buttons(_row(sender.get("/notices").text, notice_id), notice_id) == {"amend"}


def test_a_second_answer_is_refused_on_the_page_and_changes_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = _send(a, b, "moscow")
    c, token = _officer(b)
    assert c.post(f"/notices/{notice_id}/ack", data={"csrf": token}).status_code == 303
    before = b.snapshot()
    r = c.post(f"/notices/{notice_id}/reject", data={"csrf": token, "reason": "too late"})
    assert r.status_code == 409
    assert "cannot reject a notice that is acknowledged" in r.text
    assert 'role="alert"' in r.text
    assert b.snapshot() == before


# Withdraw --------------------------------------------------------------------------------


def test_the_sender_withdraws_a_notice_and_the_receiver_sees_it(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = _send(a, b, "moscow")
    receiver, receiver_token = _officer(b)
    before = b.snapshot()
    r = receiver.post(f"/notices/{notice_id}/withdraw", data={"csrf": receiver_token})
    assert r.status_code == 409  # only the sender withdraws
    assert "only the sender may withdraw" in r.text
    assert b.snapshot() == before
    c, token = _officer(a)
    r = c.post(f"/notices/{notice_id}/withdraw", data={"csrf": token})
    assert r.status_code == 303
    assert _state(a, notice_id) == "withdrawn"
    assert _buttons(_row(c.get("/notices").text, notice_id), notice_id) == set()
    a.drain()
    assert _state(b, notice_id) == "withdrawn"
    assert _buttons(_row(receiver.get("/notices").text, notice_id), notice_id) == set()


def test_an_auditor_may_not_post_a_notice_action(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    theirs = _send(a, b, "moscow")
    ours = _send(b, a, "stuttgart", lat=50.0)
    c, token = _officer(b, Role.AUDITOR, "inspector")
    before = b.snapshot()
    for target, action in ((theirs, "ack"), (theirs, "reject"), (ours, "withdraw")):
        r = c.post(f"/notices/{target}/{action}", data={"csrf": token, "reason": "no"})
        assert r.status_code == 403, action
        assert 'data-refused="forbidden"' in r.text, action
    r = c.post("/notices", data={"csrf": token, "peer": "stuttgart", "amends": ours, "notice": "{}"})
    assert r.status_code == 403
    r = c.get(f"/notices?amend={ours}")
    assert r.status_code == 403
    assert "data-notice-form" not in r.text
    assert b.snapshot() == before


def test_a_notice_action_needs_the_csrf_token_and_a_known_action(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = _send(a, b, "moscow")
    c, token = _officer(b)
    before = b.snapshot()
    r = c.post(f"/notices/{notice_id}/reject", data={"csrf": "forged", "reason": "no"})
    assert r.status_code == 403
    assert 'data-refused="csrf"' in r.text
    r = c.post(f"/notices/{notice_id}/explode", data={"csrf": token})
    assert r.status_code == 422
    assert "no action &#39;explode&#39;" in r.text
    r = c.post("/notices/no-such-notice/withdraw", data={"csrf": token})
    assert r.status_code == 404
    assert b.snapshot() == before


# Amend -----------------------------------------------------------------------------------


def test_amend_loads_the_notice_into_the_form_and_sends_a_new_version(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    old = _send(a, b, "moscow")
    c, token = _officer(a)
    r = c.get(f"/notices?amend={old}")
    assert r.status_code == 200
    assert f'name="amends" value="{old}"' in r.text
    assert re.search(r'<option value="moscow" selected>', r.text)
    document = json.loads(_textarea(r.text, "notice"))
    assert document["category"] == "air_operation"
    assert document["text"] == TEXT
    (extent,) = document["extents"]
    assert extent["volume"]["outline_polygon"]["vertices"][0] == {"lat": 47.99, "lng": 8.99}
    extent["volume"]["altitude_upper"]["value"] = 1500
    r = c.post(
        "/notices", data={"csrf": token, "peer": "moscow", "amends": old, "notice": json.dumps(document)}
    )
    assert r.status_code == 303
    assert _state(a, old) == "amended"
    (new,) = [n for n in a.api.get("/api/v1/notices").json() if n["id"] != old]
    assert new["version"] == 2
    assert new["supersedes"] == old
    assert new["extents"][0]["volume"]["altitude_upper"]["value"] == 1500
    a.drain()
    assert _state(b, old) == "amended"
    assert _state(b, new["id"]) == "delivered"
    # The old version cannot be amended again, from the page or by posting.
    r = c.get(f"/notices?amend={old}")
    assert r.status_code == 409
    assert f"notice {old} cannot be amended" in r.text


def test_only_the_sender_amends_and_a_refused_amendment_keeps_the_form(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    theirs = _send(a, b, "moscow")
    c, token = _officer(b)
    r = c.get(f"/notices?amend={theirs}")
    assert r.status_code == 409
    assert 'name="amends"' not in r.text
    before = b.snapshot()
    pasted = json.dumps(_doc(b))
    r = c.post("/notices", data={"csrf": token, "peer": "stuttgart", "amends": theirs, "notice": pasted})
    assert r.status_code == 422
    assert "only the sender amends" in r.text
    assert f'name="amends" value="{theirs}"' in r.text  # still amending, with the text as typed
    assert _textarea(r.text, "notice") == pasted
    assert b.snapshot() == before


# The form keeps what was typed -------------------------------------------------------------


def test_a_refused_notice_is_shown_by_the_form_with_everything_typed(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    c, token = _officer(a)
    bad = _doc(a)
    bad["extents"][0]["volume"]["altitude_upper"]["units"] = "KM"
    typed = {
        "category": "fire_area",
        "text": "Artillery <range>",
        "alt_lower": "100",
        "alt_upper": "20000",
        "alt_units": "ft",
        "time_start": "2026-11-27 06:00",
        "time_end": "",
    }
    r = c.post("/notices", data={"csrf": token, "peer": "moscow", "notice": json.dumps(bad), **typed})
    assert r.status_code == 422
    form = r.text[r.text.index('id="send-notice"') :]
    error = re.search(r'<p class="error" role="alert" data-form-error>(.*?)</p>', form, re.S)
    assert error, "the refusal is not next to the form"
    assert "expected 'M' or 'FT', got 'KM'" in html.unescape(error.group(1))
    assert json.loads(_textarea(form, "notice")) == bad
    assert _textarea(form, "text") == "Artillery <range>"
    assert '<option value="fire_area" selected>' in form
    assert 'name="alt_lower" inputmode="decimal" value="100"' in form
    assert 'name="alt_upper" inputmode="decimal" value="20000"' in form
    assert '<option value="ft" selected>' in form
    assert 'name="time_start" value="2026-11-27 06:00"' in form
    assert 'name="time_end" value=""' in form
    assert a.api.get("/api/v1/notices").json() == []


def test_a_pasted_notice_may_be_larger_than_other_forms(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    c, token = _officer(a)
    big = _doc(a)
    big["extents"] = [_doc(a, 40.0 + i * 0.05, 9.0)["extents"][0] for i in range(100)]
    form = {"csrf": token, "peer": "moscow", "notice": json.dumps(big, indent=4)}  # as files are pasted
    assert len(urlencode(form)) > MAX_FORM_BYTES  # form-encoded JSON grows
    r = c.post("/notices", data=form)
    assert r.status_code == 303, r.text
    (sent,) = a.api.get("/api/v1/notices").json()
    assert len(sent["extents"]) == 100


def test_the_form_starts_with_a_band_and_a_window(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    c, _ = _officer(a)
    page = c.get("/notices").text
    for name in ("alt_lower", "alt_upper", "time_start", "time_end"):
        assert re.search(rf'name="{name}"[^>]* value="[^"]+"', page), name
    assert '<option value="air_operation" selected>' in page


# The watch board -------------------------------------------------------------------------


def test_notice_conflicts_show_as_alerts_on_both_boards(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    _send(a, b, "moscow")
    _send(b, a, "stuttgart", lat=48.005)  # overlaps stuttgart's square
    for node in (a, b):
        c, _ = _officer(node)
        alerts = re.search(r'aria-label="Alerts">.*?</section>', c.get("/").text, re.S)
        assert alerts, node.name
        assert "notice_conflict" in alerts.group(0), node.name


# Live ------------------------------------------------------------------------------------


def test_the_live_part_holds_the_history_and_the_map_data(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    c, _ = _officer(b)
    page = c.get("/notices").text
    assert '<div id="notices-live" hx-get="/notices/live" hx-trigger="sse:change, refresh"' in page
    touched: list[set[str]] = []
    b.station.on_commit.append(lambda tx: touched.append(set(tx.touched)))
    notice_id = _send(a, b, "moscow")
    assert any("notices" in t for t in touched)  # announced on /events, so the page re-fetches
    r = c.get("/notices/live")
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.text.startswith('<div id="notices-live"')
    assert "<html" not in r.text
    assert f'data-notice="{notice_id}"' in r.text
    data = re.search(r'<script type="application/json" id="notice-data">(.*?)</script>', r.text, re.S)
    assert data
    assert [n["id"] for n in json.loads(data.group(1))["notices"]] == [notice_id]
    assert client(b).get("/notices/live").status_code == 303  # no session


def test_a_notice_in_force_stays_on_the_map_however_many_notices_follow_it(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The history lists the newest notices (500; here 2); the map draws those and every
    older notice still in force (a protected site notified long ago), up to MAP_LIMIT,
    protected sites first, and says how many more it leaves out. A withdrawn notice is not
    in force."""
    a, b = nodes
    monkeypatch.setattr(notice_pages, "NOTICE_LIMIT", 2)
    hospital = send(a, "moscow", site(a, 31.5234, 34.4453))
    a.drain()
    act(b, hospital["id"], "acknowledge")
    gone = _send(a, b, "moscow", 47.0)
    act(a, gone, "withdraw")
    later = [_send(a, b, "moscow", 49.0 + i) for i in range(3)]
    c, _ = _officer(b)

    def drawn() -> tuple[list[str], str]:
        page = c.get("/notices/live").text
        data = re.search(r'<script type="application/json" id="notice-data">(.*?)</script>', page, re.S)
        assert data
        return [n["id"] for n in json.loads(data.group(1))["notices"]], page

    ids, page = drawn()
    # The history's, then the older in force: the protected site first.
    assert ids == [later[2], later[1], hospital["id"], later[0]]
    assert f'data-notice="{hospital["id"]}"' not in page  # not in the history table itself
    assert "data-history-more>The newest 2 of 5 notices" in page
    assert "data-not-drawn" not in page
    monkeypatch.setattr(notice_pages, "MAP_LIMIT", 1)
    monkeypatch.setattr(notice_pages, "NOTICE_LIMIT", 1)
    ids, page = drawn()
    assert ids == [later[2], hospital["id"]]  # the site before newer activities
    assert re.search(r"data-not-drawn>2 older notices in force are not drawn", page)


# The favicon and the vendored drawing plugin -----------------------------------------------


def test_every_page_links_the_favicon(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    c, _ = _officer(a)
    for path in ("/login", "/", "/notices", "/history", "/ledger"):
        page = c.get(path)
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text, path
    icon = c.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.text.startswith("<svg")
    for where in ("/favicon.ico", "/static/favicon.svg"):
        r = client(a).get(where)  # no login needed
        assert r.status_code == 200, where
        assert r.headers["content-type"].startswith("image/svg+xml"), where
        assert r.content == icon.content


def test_the_drawing_plugin_is_vendored_as_recorded() -> None:
    table = (VENDOR / "VENDORED.md").read_text()
    for name in ("leaflet-geoman.min.js", "leaflet-geoman.css"):
        row = re.search(rf"^\| `{re.escape(name)}` \|.*\| `([0-9a-f]{{64}})` \|", table, re.M)
        assert row, f"VENDORED.md has no row for {name}"
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == row.group(1), name
    assert (VENDOR / "LICENSE.leaflet-geoman.txt").read_text().startswith("MIT License")
    script = (VENDOR / "leaflet-geoman.min.js").read_text()
    assert "eval(" not in script


def test_the_board_lists_the_nearest_notices_to_answer_and_counts_the_rest(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 sites waiting were listed whole above the alerts and the handover, 46 screens
    down on a tablet. The board lists the nearest deadlines and says how many more wait;
    an answer from there, or an alert's acknowledgement, comes back to where it was."""
    monkeypatch.setattr(routes, "NOTICES_SHOWN", 2)
    a, b = nodes
    first = _send(a, b, "moscow", lat=48.0)  # the nearest deadline: sent first
    others = [_send(a, b, "moscow", lat=48.0 + i) for i in (1, 2)]
    c, token = _officer(b)
    board = c.get("/").text
    section = re.search(r'<section class="card notices-waiting".*?</section>', board, re.S)
    assert section
    assert re.findall(r'data-waiting-notice="([^"]+)"', section.group(0)) == [first, others[0]]
    assert "1 more notice waits for an answer, with the same or later deadlines" in section.group(0)
    assert 'href="/notices">the notices page</a> lists them all' in section.group(0)
    r = c.post(f"/notices/{first}/ack", data={"csrf": token, "back": "board"})
    assert (r.status_code, r.headers["location"]) == (303, "/#notices-waiting")
    board = c.get("/").text
    assert "data-notices-more" not in board  # two left, both shown
    assert 'id="alerts"' in board  # where an alert's acknowledgement comes back to
