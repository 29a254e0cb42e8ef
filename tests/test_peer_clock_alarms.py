"""The watch floor's alarms when the peer's clock is wrong: the caller's own check of an
unanswered call never reads the peer's clock, and a `clock_skew` alert keeps saying what
the latest measurement proves, paging again when the peer's clock moves the other way or
further than the officer acknowledged. Two stations in process, each on its own clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from openline.adapters.schema import envelopes, lines, notifications
from openline.core.clock import MICROS, FakeClock, rfc3339
from openline.services import alert_paging, watch
from tests.inproc import Node, add_staff, link, make_node, picked_up, place_and_ring, put_on_duty, show
from tests.test_peer_clock import SkewedClock, skews


@pytest.fixture
def pair(
    tmp_path: Path, clock: FakeClock, database_url: str | None, second_database_url: str | None
) -> Iterator[tuple[Node, Node, SkewedClock]]:
    """stuttgart on the shared clock, its floor staffed (`duty` on duty); moscow on its own
    clock, right until the test sets it off; the line active, with a 60 s answer deadline."""
    theirs = SkewedClock(clock)
    a = make_node(tmp_path, "stuttgart", clock, database_url)
    b = make_node(tmp_path, "moscow", theirs, second_database_url)
    try:
        link(a, b)
        for node in (a, b):
            with node.station.tx() as tx:
                tx.conn.execute(update(lines).values(answer_deadline_s=60))
        add_staff(a)
        put_on_duty(a, "duty", clock)
        yield a, b, theirs
    finally:
        for n in (a, b):
            n.station.db.dispose()


def unanswered(node: Node) -> list[dict[str, Any]]:
    return [x for x in node.api.get("/api/v1/alerts").json() if x["kind"] == watch.UNANSWERED]


def heard_ringing_at(node: Node, call_id: str) -> int:
    """When `node` stored the peer's `call.ringing` for the call, on its own clock."""
    with node.station.db.read() as conn:
        return int(
            conn.execute(
                select(envelopes.c.stored_at).where(
                    envelopes.c.call_id == call_id, envelopes.c.kind == "call.ringing"
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("peer_offset_s", [-600.0, 3600.0], ids=["peer-10-min-behind", "peer-1-h-ahead"])
def test_the_callers_check_of_an_unanswered_call_never_reads_the_peers_clock(
    pair: tuple[Node, Node, SkewedClock], clock: FakeClock, peer_offset_s: float
) -> None:
    """moscow's clock is off ours: 10 minutes behind (the minute after its deadline would
    be long past by our clock the moment it rang), or an hour ahead (it would not come
    for an hour). moscow then stops keeping its deadlines. stuttgart raises
    `unanswered_call` a minute after the deadline, neither sooner nor later."""
    a, b, theirs = pair
    theirs.offset_s = peer_offset_s
    call_id = place_and_ring(a, b, priority="flash")
    at_moscow = show(b, call_id)
    assert at_moscow["state"] == "ringing"
    assert at_moscow["deadline_at"] == rfc3339(theirs.now() + 60 * MICROS)  # a minute away
    before = a.snapshot()
    assert watch.audit_unanswered(a.station) == 0
    assert a.snapshot() == before
    heard = heard_ringing_at(a, call_id)

    clock.advance(60 + watch.UNANSWERED_GRACE_S)
    assert watch.audit_unanswered(a.station) == 0  # not yet: the grace is not over
    assert unanswered(a) == []
    clock.advance(1)
    assert watch.audit_unanswered(a.station) == 1
    [alert] = unanswered(a)
    assert alert["subject"] == call_id
    assert alert["detail"] == {
        "call": call_id,
        "peer": "moscow",
        "priority": "flash",
        "ringing_since": show(a, call_id)["ringing_at"],  # moscow's time, as the call records it
        "ringing_heard_at": rfc3339(heard),  # ours, which the minute counts from
    }
    assert show(a, call_id)["ringing_at"] == rfc3339(heard + round(peer_offset_s * MICROS))
    assert watch.audit_unanswered(a.station) == 0  # raised once


def test_a_call_that_rings_out_at_a_skewed_peer_is_still_reported_once(
    pair: tuple[Node, Node, SkewedClock], clock: FakeClock
) -> None:
    """moscow, 10 minutes behind, keeps its deadline: its signed `call.missed` raises the
    alert; the caller's own check, a minute later, adds none."""
    a, b, theirs = pair
    theirs.offset_s = -600.0
    call_id = place_and_ring(a, b)
    clock.advance(60)
    assert b.expire() == 1
    b.drain()
    assert show(a, call_id)["state"] == "missed"
    assert [x["detail"] for x in unanswered(a)] == [
        {"call": call_id, "peer": "moscow", "priority": "routine"}
    ]
    clock.advance(watch.UNANSWERED_GRACE_S + 1)
    assert watch.audit_unanswered(a.station) == 0
    assert len(unanswered(a)) == 1


def traffic(a: Node, b: Node, call_id: str, text: str) -> None:
    """stuttgart says something in the call: moscow's receipt measures moscow's clock."""
    r = a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": text})
    assert r.status_code == 201, r.text
    a.drain()
    b.drain()


def console_pages(node: Node, alert_id: int) -> list[str]:
    with node.station.db.read() as conn:
        rows = conn.execute(
            select(notifications.c.recipient)
            .where(notifications.c.alert_id == alert_id, notifications.c.channel == "console")
            .order_by(notifications.c.created_at, notifications.c.recipient)
        ).all()
    return [r.recipient for r in rows]


def test_a_clock_skew_alert_follows_the_peers_clock_and_pages_again_when_it_moves_on(
    pair: tuple[Node, Node, SkewedClock], clock: FakeClock
) -> None:
    a, b, theirs = pair
    theirs.offset_s = 600.0  # moscow 10 minutes ahead
    call_id = picked_up(a, b)
    traffic(a, b, call_id, "first")
    (first,) = skews(a)
    assert first["detail"]["says"] == "moscow's clock is at least 600.0 s ahead of ours"
    assert alert_paging.page_due(a.station) >= 1
    assert console_pages(a, first["id"]) == ["duty"]
    paging = skews(a)[0]["paging"]

    # moscow is restarted 10 minutes behind: the same episode (no round trip proved the
    # clocks within the limit), and the open alert now says what is true.
    theirs.offset_s = -600.0
    clock.advance(10)
    traffic(a, b, call_id, "second")
    (alert,) = skews(a)
    assert alert["id"] == first["id"]
    assert alert["subject"] == first["subject"]
    assert alert["detail"] == {
        "peer": "moscow",
        "offset_s": -600.0,
        "limit_s": 5.0,
        "source": "receipts",
        "says": "moscow's clock is at least 600.0 s behind ours",
    }
    assert alert["acknowledged_at"] is None
    assert alert["paging"] == paging  # it was paging already, and goes on as it was
    # moscow learns it from our envelopes' times, stamped ahead of their arrival.
    assert [x["detail"]["says"] for x in skews(b)] == ["stuttgart's clock is at least 600.0 s ahead of ours"]

    # Someone sets it nearer: the alert says no more than is proved.
    theirs.offset_s = -300.0
    clock.advance(10)
    traffic(a, b, call_id, "nearer")
    (alert,) = skews(a)
    assert alert["detail"]["says"] == "moscow's clock is at least 300.0 s behind ours"
    assert alert["paging"] == paging

    r = a.api.post(f"/api/v1/alerts/{alert['id']}/acknowledge")
    assert r.status_code == 200, r.text
    acknowledged = r.json()

    # A few more seconds behind, within the limit of what was acknowledged: nobody paged.
    theirs.offset_s = -303.0
    clock.advance(10)
    traffic(a, b, call_id, "third")
    assert skews(a) == [acknowledged]

    # An hour ahead: the other way. The alert is raised again, open and paging as if new.
    theirs.offset_s = 3600.0
    clock.advance(10)
    traffic(a, b, call_id, "fourth")
    (again,) = skews(a)
    assert again["id"] == first["id"]
    assert again["acknowledged_at"] is None
    assert again["detail"]["says"] == "moscow's clock is at least 3600.0 s ahead of ours"
    assert again["paging"] == {"step": "round 1, step 1", "next_at": rfc3339(clock.now())}
    paged = len(console_pages(a, again["id"]))
    assert alert_paging.page_due(a.station) >= 1
    assert console_pages(a, again["id"])[paged:] == ["duty"]
    assert a.api.post(f"/api/v1/alerts/{again['id']}/acknowledge").status_code == 200

    # Further ahead by more than the limit again: raised again.
    theirs.offset_s = 3700.0
    clock.advance(10)
    traffic(a, b, call_id, "fifth")
    (grown,) = skews(a)
    assert grown["acknowledged_at"] is None
    assert grown["detail"]["offset_s"] == 3700.0
    assert grown["paging"] == {"step": "round 1, step 1", "next_at": rfc3339(clock.now())}

    # Back in step: the episode ends, and the next drift is a new alert, as before.
    theirs.offset_s = 0.0
    clock.advance(10)
    traffic(a, b, call_id, "sixth")
    assert a.api.get("/api/v1/lines").json()[0]["peer_clock"]["off_since"] is None
    assert len(skews(a)) == 1
