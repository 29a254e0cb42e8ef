"""A line that stops delivering raises `line_down` on the watch floor of the station whose
envelopes wait (services/line_health.py): a call placed while the peer is unreachable must
not sit `placed` with nobody told. In process on both backends, with an injected clock;
tests/test_e2e_line_down.py does it between real stations."""

from __future__ import annotations

import re
import time
from typing import Any

from openline.core.clock import FakeClock
from openline.services import delivery, line_health
from openline.services.accounts import Role
from openline.services.timers import Auditor
from tests import notice_docs
from tests.harness import wait_for
from tests.inproc import Node, show
from tests.test_console import add_user, browser, csrf_of, log_in


def _alerts(node: Node) -> list[dict[str, Any]]:
    r = node.api.get("/api/v1/alerts")
    assert r.status_code == 200, r.text
    return [a for a in r.json() if a["kind"] == "line_down"]


def _call(node: Node, subject: str, priority: str = "flash") -> str:
    r = node.api.post("/api/v1/calls", json={"peer": "moscow", "subject": subject, "priority": priority})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_call_that_cannot_get_through_raises_line_down_once(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    assert a.transport is not None
    a.transport.down = True
    placed_at = clock.now()
    first = _call(a, "Flash: corridor closing")
    a.deliver()
    clock.advance(10)
    second = _call(a, "Routine follow-up", "routine")
    hospital = notice_docs.send(a, "moscow", notice_docs.site(a, 31.52, 34.44))["id"]
    a.deliver(force=True)
    clock.advance(19.9)
    assert line_health.audit_lines(a.station) == 0  # 29.9 s: not yet
    assert _alerts(a) == []
    clock.advance(0.2)
    before = a.snapshot()
    assert line_health.audit_lines(a.station) == 1
    [alert] = _alerts(a)
    assert alert["subject"] == "moscow since 2026-01-01T00:00:00.000000Z"
    detail = alert["detail"]
    assert detail["peer"] == "moscow"
    assert detail["waiting"] == 3
    assert detail["calls"] == [{"call": first, "priority": "flash"}, {"call": second, "priority": "routine"}]
    assert detail["notices"] == [{"notice": hospital, "category": "protected_site"}]
    assert "connection refused" in detail["last_error"]
    assert detail["since"] == "2026-01-01T00:00:00.000000Z"
    assert line_health.subject("moscow", placed_at) == alert["subject"]
    # Looked at again, while still down: nothing new, and nothing written.
    after = a.snapshot()
    clock.advance(60)
    assert line_health.audit_lines(a.station) == 0
    assert a.snapshot() == after != before
    assert show(a, first)["state"] == "placed"
    # The peer's side knows nothing of it: nothing reached it.
    assert _alerts(b) == []

    # Back up: everything goes, and the alert stays for someone to acknowledge.
    a.transport.down = False
    a.drain()
    b.drain()
    assert show(b, first)["state"] == "ringing"
    assert line_health.audit_lines(a.station) == 0
    assert len(_alerts(a)) == 1

    # A new stall is a new alert.
    a.transport.down = True
    clock.advance(1)
    third = _call(a, "Again")
    a.deliver()
    clock.advance(31)
    assert line_health.audit_lines(a.station) == 1
    newest = _alerts(a)[0]
    assert newest["detail"]["calls"] == [{"call": third, "priority": "flash"}]
    assert newest["subject"] != alert["subject"]


def test_an_idle_line_and_a_delivering_line_raise_nothing(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, _ = nodes
    clock.advance(3600)
    assert line_health.audit_lines(a.station) == 0
    _call(a, "Delivered at once")
    a.drain()
    clock.advance(3600)
    assert line_health.audit_lines(a.station) == 0
    assert _alerts(a) == []


def test_the_auditor_loop_raises_it_and_the_board_shows_it(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """Through the auditor's step, as `openline serve` runs it every few seconds; the
    station's `line_down_after_s` setting decides when."""
    a, _ = nodes
    assert a.transport is not None
    a.transport.down = True
    a.station.line_down_after_s = 120
    _call(a, "Flash")
    a.deliver()
    clock.advance(100)
    Auditor(a.station).step()
    assert _alerts(a) == []
    [line] = a.api.get("/api/v1/lines").json()
    assert (line["outbox_depth"], line["waiting_since"]) == (1, "2026-01-01T00:00:00.000000Z")
    clock.advance(21)
    Auditor(a.station).step()
    assert len(_alerts(a)) == 1
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    board = c.get("/").text
    assert "line_down · moscow since 2026-01-01T00:00:00.000000Z" in board
    assert "(waiting since <time" in board
    assert "<title>LINE DOWN · Watch board" in board  # console.js keeps it as the board refreshes
    assert re.search(r"<li [^>]*data-line-down><strong>moscow</strong> active · <strong>DOWN</strong>", board)
    # Acknowledged, the line is no longer marked: someone has seen it.
    [alert] = _alerts(a)
    assert c.post(f"/alerts/{alert['id']}/ack", data={"csrf": csrf_of(board)}).status_code in (200, 303)
    board = c.get("/").text
    assert "data-line-down" not in board
    assert "LINE DOWN" not in board


def test_a_silent_line_is_checked_and_a_dead_one_raises_line_down(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """Nothing to send, so nothing would ever wait: the line's own check (a handshake after
    `line_check_s` without contact) finds a dead line before a call needs it."""
    a, b = nodes
    assert a.transport is not None
    line_id = a.line_id()
    contact = a.line().last_contact_at
    clock.advance(299)
    attempts = a.transport.attempts
    assert delivery.check_line(a.station, a.transport, line_id) == (delivery.Outcome.IDLE, 1.0)
    assert a.transport.attempts == attempts  # not due: nothing sent
    clock.advance(2)
    assert delivery.check_line(a.station, a.transport, line_id) == (delivery.Outcome.IDLE, 30.0)
    assert a.transport.attempts == attempts + 1
    assert a.line().last_contact_at == clock.now() > contact
    assert b.line().last_contact_at == clock.now()  # the peer heard from us too
    # The deliverer passes when it last had an answer: a check not due by it sends nothing.
    clock.advance(301)
    heard = clock.now() - 290 * 1_000_000
    assert delivery.check_line(a.station, a.transport, line_id, heard_at=heard) == (
        delivery.Outcome.IDLE,
        10.0,
    )
    assert a.transport.attempts == attempts + 1
    assert delivery.check_line(a.station, a.transport, line_id)[0] is delivery.Outcome.IDLE
    assert a.transport.attempts == attempts + 2

    a.transport.down = True
    last = clock.now()
    clock.advance(301)
    outcome, wait = delivery.check_line(a.station, a.transport, line_id)
    assert (outcome, wait) == (delivery.Outcome.FAILED, None)
    assert a.line().last_error.startswith("line check: moscow at http://moscow.test:8000: connection refused")
    clock.advance(28)  # 329 s of silence: not yet
    assert line_health.audit_lines(a.station) == 0
    clock.advance(2)
    assert line_health.audit_lines(a.station) == 1
    [alert] = _alerts(a)
    assert alert["subject"] == line_health.subject("moscow", last, silent=True)
    assert alert["subject"].startswith("moscow silent since ")
    assert (alert["detail"]["waiting"], alert["detail"]["calls"]) == (0, [])
    assert line_health.audit_lines(a.station) == 0

    # A call placed now is named in an alert of its own.
    call_id = _call(a, "Flash, on a dead line")
    a.deliver(force=True)
    clock.advance(31)
    assert line_health.audit_lines(a.station) == 1
    assert _alerts(a)[0]["detail"]["calls"] == [{"call": call_id, "priority": "flash"}]

    # Back up: the check succeeds and clears the error.
    a.transport.down = False
    a.drain()
    clock.advance(301)
    assert delivery.check_line(a.station, a.transport, line_id)[0] is delivery.Outcome.IDLE
    assert a.line().last_error is None
    assert line_health.audit_lines(a.station) == 0


def test_the_deliverer_checks_its_idle_line(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    """Through the line's deliverer thread, as `openline serve` runs it."""
    a, _ = nodes
    assert a.transport is not None
    worker = delivery.Deliverer(a.station, a.transport)
    before = a.transport.attempts
    worker.start()
    try:
        # The start-up announcement is two requests: the handshake, then the comparing of
        # sequence numbers (services/resync.py).
        wait_for(lambda: a.transport.attempts >= before + 2, what="the start-up announcement")
        attempts = a.transport.attempts
        time.sleep(0.2)
        assert a.transport.attempts == attempts  # idle, and not due
        clock.advance(a.station.line_check_s + 1)
        worker.wake({a.line_id()})
        wait_for(lambda: a.line().last_contact_at == clock.now(), what="the line's check")
        assert a.transport.attempts == attempts + 1
    finally:
        worker.stop()


def test_the_call_page_says_when_a_call_has_not_got_through(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """The officer who placed the call is looking at it: that page says it has not reached
    the peer, why, and to use the fallback procedure, once that is worth saying."""
    a, b = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    delivered = _call(a, "Delivered at once")
    a.drain()
    assert "data-undelivered" not in c.get(f"/calls/{delivered}").text
    assert a.transport is not None
    a.transport.down = True
    stuck = _call(a, "Flash: corridor closing")
    assert "data-undelivered" not in c.get(f"/calls/{stuck}").text  # just placed: not yet worth saying
    a.deliver()
    page = c.get(f"/calls/{stuck}").text
    assert "Not delivered to moscow yet" in page
    assert "(last attempt: moscow at http://moscow.test:8000: connection refused" in page
    assert "use your fallback procedure to reach moscow" in page
    a.transport.down = False
    a.deliver(force=True)
    a.drain()
    b.drain()
    assert "data-undelivered" not in c.get(f"/calls/{stuck}").text  # delivered, and ringing there
    # Waiting past line_down_after_s is worth saying even before any attempt has failed.
    a.transport.down = True
    late = _call(a, "Third")
    clock.advance(a.station.line_down_after_s)
    assert "Not delivered to moscow yet: it cannot ring there" in c.get(f"/calls/{late}").text
