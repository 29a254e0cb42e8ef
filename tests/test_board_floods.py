"""The watch board in a flood: a call that rings stays on the board however many calls
follow it, a notice waiting for our answer stays however many notices follow it, and a
line that is down stays marked however many alerts follow its alert. The board used to
take its ringing calls from the 50 newest calls, its waiting notices from the 500 newest
notices and its marks from the 20 newest open alerts, so a busy hour could hide them.
And a render reads no table that grows with history from end to end, so that it costs the
same after a year as on the first day."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from openline.console import notices as notice_pages
from openline.console import routes
from openline.core.clock import FakeClock
from openline.services import alerts
from openline.services.accounts import Role
from openline.services.timers import Auditor
from tests.inproc import Node, place_and_ring
from tests.notice_docs import send, site, soon
from tests.test_console import add_user, browser, log_in


def _board(node: Node) -> str:
    add_user(node, "duty", Role.WATCH_OFFICER)
    c = browser(node)
    log_in(c, "duty")
    page = c.get("/")
    assert page.status_code == 200
    return page.text


def officer_with_a_call_and_a_notice(a: Node, b: Node) -> TestClient:
    """A watch officer logged in on b's console, with a call from a ringing there
    ("Convoy at checkpoint 4") and a notice of a's waiting for b's answer."""
    place_and_ring(a, b, "Convoy at checkpoint 4", "flash")
    send(a, b.name, site(a, 31.5234, 34.4453))
    a.drain()
    add_user(b, "duty", Role.WATCH_OFFICER)
    c = browser(b)
    log_in(c, "duty")
    return c


def _place(node: Node, peer: str, count: int, priority: str = "routine") -> None:
    for i in range(count):
        r = node.api.post("/api/v1/calls", json={"peer": peer, "subject": f"Call {i}", "priority": priority})
        assert r.status_code == 201, r.text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_ringing_call_stays_on_the_board_however_many_calls_follow_it(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = place_and_ring(b, a, "Convoy at checkpoint 4", "flash")
    _place(a, "moscow", 60)  # our own calls, newer than the one ringing here
    board = _board(a)
    assert "Convoy at checkpoint 4" in board
    assert f'action="/calls/{call_id}/pickup"' in board
    assert "<title>(1) RINGING · " in board
    assert 'data-ringing-count="1"' in board
    assert "data-ringing-more" not in board


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_most_urgent_ringing_calls_are_shown_and_the_rest_counted(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    monkeypatch.setattr(routes, "RINGING_SHOWN", 3)
    _place(b, "stuttgart", 4, "routine")
    _place(b, "stuttgart", 1, "flash")
    _place(b, "stuttgart", 2, "immediate")
    b.drain()
    a.drain()
    board = _board(a)
    shown = re.findall(r'<article class="call prio-(\w+)" data-ringing', board)
    assert shown == ["flash", "immediate", "immediate"]  # the most urgent, in that order
    assert "<title>(7) RINGING · " in board
    assert 'data-ringing-count="7"' in board
    (more,) = re.findall(r"<p [^>]*data-ringing-more[^>]*>(.*?)</p>", board, re.S)
    assert "4 more calls ringing" in more
    assert 'href="/history?state=ringing&amp;direction=in"' in more


def test_a_line_down_stays_marked_however_many_alerts_follow_it(
    nodes: tuple[Node, Node], clock: FakeClock, backend: str
) -> None:
    a, _ = nodes
    assert a.transport is not None
    a.transport.down = True
    a.station.line_down_after_s = 120
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "Flash"})
    assert r.status_code == 201
    a.deliver()
    clock.advance(121)
    Auditor(a.station).step()
    with a.station.tx() as tx:  # a busy hour: 25 alerts of lesser kinds after it
        for i in range(25):
            alerts.raise_alert(tx, "roster_gap", f"gap {i}", {"from": i})
    board = _board(a)
    assert re.search(r"<li [^>]*data-line-down><strong>moscow</strong>", board)
    assert "<title>LINE DOWN · Watch board" in board
    shown = re.findall(r'<li class="warn" data-alert="(\d+)"><span id="alert-\1">(\w+)', board)
    shown = [kind for _, kind in shown]
    assert shown[0] == "line_down"  # the most urgent first
    assert len(shown) == 20
    total = len(a.api.get("/api/v1/alerts?open=true&limit=1000").json())
    assert total >= 26
    assert re.search(rf"data-alerts-more[^>]*>\s*{total - 20} more open alerts", board)


def test_a_flash_call_alert_stays_on_the_board_however_many_routine_ones_follow_it(
    nodes: tuple[Node, Node],
) -> None:
    """Alerts of one kind were listed newest first, whatever their call: 20 routine calls
    unanswered after a flash one pushed the flash one off the board. It is listed first of
    its kind, with the call's priority and peer, though its detail (as an older alert's)
    does not say them."""
    a, _ = nodes
    _place(a, "moscow", 1, "flash")
    _place(a, "moscow", 20, "routine")
    placed = a.api.get("/api/v1/calls?limit=21").json()  # the newest first
    flash, *routine = reversed(placed)
    assert flash["priority"] == "flash"
    with a.station.tx() as tx:
        alerts.raise_alert(tx, "unanswered_call", flash["id"], {"call": flash["id"]})
        for call in routine:
            detail = {"call": call["id"], "peer": "moscow", "priority": "routine"}
            alerts.raise_alert(tx, "unanswered_call", call["id"], detail)
    board = _board(a)
    shown = [
        " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for row in re.findall(r'<li class="warn" data-alert="\d+">(.*?)</li>', board, re.S)
    ]
    assert len(shown) == 20
    assert shown[0].startswith(f"unanswered_call · FLASH call to moscow · {flash['id']} ")
    assert shown[1].startswith("unanswered_call · ROUTINE call to moscow · ")
    (more,) = re.findall(r"<p [^>]*data-alerts-more[^>]*>(.*?)</p>", board, re.S)
    assert "1 more open alerts" in more
    assert "<code>openline alerts --open</code>" in more


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_notice_waiting_for_us_stays_on_the_board_however_many_notices_follow_it(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The board took the notices waiting for our answer from the newest NOTICE_LIMIT
    (500) notices; here the limit is 2 and three notices follow the one waiting."""
    a, b = nodes
    monkeypatch.setattr(notice_pages, "NOTICE_LIMIT", 2)
    hospital = send(b, "stuttgart", site(b, 31.5234, 34.4453))
    b.drain()
    later = [send(a, "moscow", soon(a, 48.0 + i, 9.0)) for i in range(3)]
    board = _board(a)
    assert f'data-waiting-notice="{hospital["id"]}"' in board
    assert not [n for n in later if f'data-waiting-notice="{n["id"]}"' in board]  # ours wait for them


# Tables that grow with every day a station runs.
_HISTORY = (
    "calls",
    "call_events",
    "envelopes",
    "alerts",
    "notices",
    "notice_conflicts",
    "notice_volumes",
    "notifications",
    "audit",
    "handovers",
)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_board_reads_no_history_table_through(nodes: tuple[Node, Node]) -> None:
    """Every statement a board render runs, explained by SQLite: none reads a table that
    grows with history from end to end. A scan is allowed only along an index and with a
    LIMIT (the newest calls), so a render costs the same after a year as on the first day
    (bench/board_history.py measures it)."""
    a, b = nodes
    c = officer_with_a_call_and_a_notice(a, b)
    ran: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        ran.append((statement, parameters))

    event.listen(b.station.db.engine, "before_cursor_execute", record)
    try:
        assert "Convoy at checkpoint 4" in c.get("/").text
    finally:
        event.remove(b.station.db.engine, "before_cursor_execute", record)
    selects = [(s, p) for s, p in ran if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) > 5
    with b.station.db.read() as conn:
        for statement, parameters in selects:
            plan = [
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
            for step in plan:
                scan = re.match(r"SCAN (\w+)( USING (?:COVERING )?INDEX \w+)?$", step)
                if scan and scan.group(1) in _HISTORY:
                    assert scan.group(2), f"{step}\n{statement}"
                    assert "LIMIT" in statement, f"{step}\n{statement}"
