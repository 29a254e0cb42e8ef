"""Expiry: each station's timer loop records `expired` for an active notice whose last
volume has ended, on its own, with a ledger entry; nothing crosses the line, and an
expired notice is no longer checked for conflicts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from openline.adapters.schema import notices
from openline.core.clock import FakeClock, parse_rfc3339
from openline.services import delivery, notice_expiry
from openline.services.timers import MAX_SLEEP_SECONDS, TimerLoop
from tests.inproc import Node
from tests.notice_docs import HOUR, act, circle, ledger_entries, send, show, site, soon


def _stored_state(node: Node, notice_id: str) -> str:
    with node.station.db.read() as conn:
        return str(conn.execute(select(notices.c.state).where(notices.c.id == notice_id)).scalar_one())


def test_the_timer_loop_records_expiry_on_each_station(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    ending = send(a, "moscow", soon(a, 48.0, 9.0))
    open_site = send(a, "moscow", site(a, 50.0, 9.0))
    a.drain()
    act(b, ending["id"], "acknowledge")
    b.drain()
    end = parse_rfc3339(ending["ends_at"])
    assert notice_expiry.next_expiry(a.station) == end + 1

    clock.set(end)  # its last volume ends now: still active
    for node in (a, b):
        assert notice_expiry.expire_due(node.station) == 0
        assert _stored_state(node, ending["id"]) == "acknowledged"

    clock.set(end + 1)
    logged = {node.name: len(ledger_entries(node)) for node in (a, b)}
    wire = {node.name: node.snapshot()["envelopes"] for node in (a, b)}
    assert TimerLoop(a.station).step() == MAX_SLEEP_SECONDS  # nothing else is due
    assert _stored_state(a, ending["id"]) == "expired"
    assert _stored_state(b, ending["id"]) == "acknowledged"  # b's own timer has not run
    assert notice_expiry.expire_due(b.station) == 1
    for node in (a, b):
        assert notice_expiry.expire_due(node.station) == 0  # once
        expired = show(node, ending["id"])
        assert (expired["state"], expired["expired_at"]) == ("expired", ending["ends_at"])
        (entry,) = ledger_entries(node)[logged[node.name] :]
        assert (entry["type"], entry["notice"], entry["actor"]) == ("notice.expired", ending["id"], "system")
        assert node.snapshot()["envelopes"] == wire[node.name]  # nothing on the wire
        assert show(node, open_site["id"])["state"] == "delivered"  # open-ended: never expires
    assert a.deliver() is delivery.Outcome.IDLE
    assert notice_expiry.next_expiry(a.station) is None  # the site is open-ended


def test_the_timer_loop_wakes_for_the_next_expiry(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, _ = nodes
    now = clock.now()
    woken: list[bool] = []
    a.station.on_commit.append(lambda tx: woken.append(tx.new_deadline))
    quick = send(a, "moscow", circle(48.0, 9.0, 500, now, now + 1_500_000))
    assert woken == [True]  # sending a notice with an end tells the timer loop to look again
    clock.advance(1)
    assert TimerLoop(a.station).step() == pytest.approx(0.500001)
    clock.advance(1)
    TimerLoop(a.station).step()
    assert _stored_state(a, quick["id"]) == "expired"


def test_an_expired_notice_is_no_longer_checked_for_conflicts(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    now = clock.now()
    early = send(a, "moscow", circle(48.0, 9.0, 1000, now, now + HOUR))
    a.drain()
    clock.advance(3600)  # its end: still active, and a notice touching that instant meets it
    touching = circle(48.0, 9.0, 1000, now + HOUR, now + 2 * HOUR)
    assert [c["other_notice"] for c in send(b, "stuttgart", touching)["conflicts"]] == [early["id"]]
    clock.advance(1)
    for node in (a, b):
        assert notice_expiry.expire_due(node.station) == 1
    # The same activity again, its window reaching back over the expired one's.
    again = circle(48.0, 9.0, 1000, now, now + 3 * HOUR, text="again")
    found = send(b, "stuttgart", again)["conflicts"]
    assert early["id"] not in [c["other_notice"] for c in found]


def test_only_active_notices_expire(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    now = clock.now()
    drafts = send(a, "moscow", circle(48.0, 9.0, 500, now, now + HOUR), draft=True)
    rejected = send(a, "moscow", circle(49.0, 9.0, 500, now, now + HOUR))
    a.drain()
    act(b, rejected["id"], "reject", {"reason": "no"})
    b.drain()
    clock.advance(2 * 3600)
    for node in (a, b):
        assert notice_expiry.expire_due(node.station) == 0
    assert _stored_state(a, drafts["id"]) == "draft"
    assert _stored_state(a, rejected["id"]) == "rejected"
