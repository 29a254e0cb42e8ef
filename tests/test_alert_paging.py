"""An open alert pages people until somebody acknowledges it, as a ringing call does: the
officer on duty, then up the chain, then the catch-all for ever; a line's alert follows
that line's escalation policy and reaches its webhooks; acknowledging stops it; a failed
notification does not page; a missed call's alert does not page twice at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from openline.adapters.notify import WebhookChannel
from openline.adapters.schema import alerts, lines, notifications
from openline.core import escalation as esc
from openline.core.clock import FakeClock, rfc3339
from openline.errors import DatabaseUnavailable
from openline.services import alert_paging, notifier, timers, watch
from openline.services.alerts import raise_alert
from tests.full_disk import disk_full
from tests.inproc import Node, place_and_ring, show
from tests.servers import SECRET, Receiver

PASSWORD = "correct horse battery staple"


@pytest.fixture
def floor(staffed: tuple[Node, Node]) -> tuple[Node, Node]:
    """moscow has a duty officer on duty, a senior and a commander, and one webhook."""
    return staffed


def raise_one(node: Node, kind: str, subject: str, detail: dict[str, Any]) -> int:
    with node.station.tx() as tx:
        assert raise_alert(tx, kind, subject, detail)
        return int(tx.conn.execute(select(alerts.c.id).where(alerts.c.subject == subject)).scalar_one())


def pages(node: Node, alert_id: int) -> list[tuple[str, str]]:
    """(recipient, channel) of each notification the alert made, in order."""
    with node.station.db.read() as conn:
        rows = conn.execute(
            select(notifications.c.recipient, notifications.c.channel)
            .where(notifications.c.alert_id == alert_id)
            .order_by(notifications.c.created_at, notifications.c.recipient)
        ).all()
    return [(r.recipient, r.channel) for r in rows]


def recipients(node: Node, alert_id: int) -> list[str]:
    return [who for who, channel in pages(node, alert_id) if channel == "console"]


def run(node: Node, clock: FakeClock, seconds: int, every: int = 5) -> None:
    """Let `seconds` pass as the auditor loop sees them, one round every `every` s."""
    for _ in range(seconds // every):
        clock.advance(every)
        alert_paging.page_due(node.station)


def alert(node: Node, alert_id: int) -> dict[str, Any]:
    [row] = [x for x in node.api.get("/api/v1/alerts").json() if x["id"] == alert_id]
    return row


def test_an_alert_pages_up_the_chain_then_for_ever_until_acknowledged(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    _, b = floor
    alert_id = raise_one(b, "escalation_stalled", "call-1", {"call": "call-1"})
    assert alert(b, alert_id)["paging"] == {"step": "round 1, step 1", "next_at": rfc3339(clock.now())}
    assert alert_paging.page_due(b.station) == 1
    assert recipients(b, alert_id) == ["duty"]
    assert alert(b, alert_id)["paging"]["step"] == "round 1, step 2"
    assert alert_paging.page_due(b.station) == 0  # the next step is a minute away
    run(b, clock, 60)
    assert recipients(b, alert_id) == ["duty", "senior"]
    run(b, clock, 120)
    assert recipients(b, alert_id) == ["duty", "senior", "boss", "duty"]  # round 2 begins
    run(b, clock, 120)
    assert recipients(b, alert_id) == ["duty", "senior", "boss", "duty", "senior", "boss"]
    run(b, clock, 60)  # the catch-all: on duty, senior, commander, administrators, webhooks
    final = ["admin", "boss", "duty", "senior"]
    assert recipients(b, alert_id)[6:] == final
    assert ("station", "webhook") in pages(b, alert_id)
    assert alert(b, alert_id)["paging"]["step"] == "final"
    run(b, clock, 295)
    assert len(recipients(b, alert_id)) == 10
    run(b, clock, 5)  # and again every 5 minutes
    assert recipients(b, alert_id)[10:] == final

    with b.station.db.read() as conn:
        [row] = conn.execute(
            select(notifications).where(
                notifications.c.alert_id == alert_id, notifications.c.recipient == "duty"
            )
        ).all()[:1]
    assert row.kind == "alert.escalation_stalled"
    assert row.title == "ESCALATION STALLED: call-1"
    assert f"openline alert ack {alert_id}" in row.text
    assert row.text.endswith("https://moscow.example/console/")
    assert row.call_id is None

    r = b.api.post(f"/api/v1/alerts/{alert_id}/acknowledge")
    assert r.status_code == 200, r.text
    assert r.json()["paging"] is None
    count = len(pages(b, alert_id))
    run(b, clock, 3600)
    assert len(pages(b, alert_id)) == count


def test_a_line_alert_follows_the_lines_policy_and_its_webhook_is_signed(
    floor: tuple[Node, Node], clock: FakeClock, receiver: Receiver
) -> None:
    _, b = floor
    policy = {
        "steps": [{"targets": ["webhook", "user:senior"], "delay_s": 120}],
        "repeat": 0,
        "final": {"targets": ["role:commander"], "delay_s": 600},
    }
    r = b.api.put("/api/v1/lines/stuttgart/policy", json=policy)
    assert r.status_code == 200, r.text
    subject = "stuttgart since 2026-11-27T03:12:40.000000Z"
    alert_id = raise_one(b, "line_down", subject, {"peer": "stuttgart", "waiting": 1})
    # What the timer loop cannot do when it is the thing that stalled: the auditor pages.
    timers.Auditor(b.station).step()
    assert pages(b, alert_id) == [("senior", "console"), ("station", "webhook")]

    # The policy was copied when the alert first paged: a new one does not change it.
    other = {"steps": [{"targets": ["user:duty"], "delay_s": 60}], "repeat": 0, "final": policy["final"]}
    assert b.api.put("/api/v1/lines/stuttgart/policy", json=other).status_code == 200
    run(b, clock, 120)
    assert recipients(b, alert_id) == ["senior", "boss"]

    channel = WebhookChannel(SECRET)
    try:
        assert notifier.dispatch_due(b.station, channel) == 1
    finally:
        channel.close()
    [hit] = receiver.hits
    event = Webhook(SECRET).verify(hit.body, hit.headers)
    assert event["type"] == "alert.line_down"
    assert event["data"]["title"] == f"LINE DOWN: {subject}"
    assert event["data"]["call_id"] is None
    assert event["data"]["alert_id"] == alert_id
    with b.station.db.read() as conn:
        statuses = {
            r.status for r in conn.execute(select(notifications).where(notifications.c.alert_id == alert_id))
        }
    assert statuses == {"sent"}


def test_a_page_that_reaches_nobody_goes_on_to_the_next_step(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    _, b = floor
    assert b.api.post("/api/v1/users/duty/disable").status_code == 200  # nobody on duty now
    alert_id = raise_one(b, "roster_gap", "2026-11-28T00:00:00Z", {})
    assert alert_paging.page_due(b.station) == 1
    assert pages(b, alert_id) == []
    run(b, clock, 60)
    assert recipients(b, alert_id) == ["senior"]
    # Nothing else was raised about it: the board shows the alert itself.
    assert [x["kind"] for x in b.api.get("/api/v1/alerts").json()] == ["roster_gap"]


@pytest.mark.parametrize("backend", ["sqlite"])  # full as a disk is: tests/full_disk.py
def test_an_alert_is_logged_as_raised_only_once_it_is_stored(
    nodes: tuple[Node, Node], capsys: pytest.CaptureFixture[str]
) -> None:
    """On a full disk most transactions roll back: the log said "alert raised" of alerts
    that were never stored."""
    a, _ = nodes
    capsys.readouterr()

    def raise_two() -> None:
        with a.station.tx() as tx:
            assert raise_alert(tx, "ledger_inconsistent", "own:7", {"problem": "fits in a page"})
            # The rest of the use case needs more pages than the file has: all of it rolls back.
            raise_alert(tx, "ledger_inconsistent", "own:8", {"problem": "x" * 20_000})

    with disk_full(a.station.db), pytest.raises(DatabaseUnavailable, match="database or disk is full"):
        raise_two()
    assert "alert raised" not in capsys.readouterr().out
    assert [x["subject"] for x in a.api.get("/api/v1/alerts").json()] == []

    alert_id = raise_one(a, "ledger_inconsistent", "own:7", {"problem": "fits in a page"})
    raised = [line for line in capsys.readouterr().out.splitlines() if "alert raised" in line]
    assert len(raised) == 1, raised
    assert "subject=own:7" in raised[0]
    assert [x["id"] for x in a.api.get("/api/v1/alerts").json()] == [alert_id]


def test_a_failed_notification_does_not_page(floor: tuple[Node, Node], clock: FakeClock) -> None:
    _, b = floor
    alert_id = raise_one(b, "notification_failed", "n-1", {"channel": "webhook"})
    assert alert(b, alert_id)["paging"] is None
    run(b, clock, 600)
    assert pages(b, alert_id) == []


def test_a_missed_call_pages_the_catch_all_again_until_acknowledged(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = floor
    with b.station.tx() as tx:
        tx.conn.execute(update(lines).values(answer_deadline_s=60))
    call_id = place_and_ring(a, b)
    for _ in range(60):
        clock.advance(1)
        watch.escalate_due(b.station)
    assert b.expire() == 1
    assert show(b, call_id)["state"] == "missed"
    [missed] = [x for x in b.api.get("/api/v1/alerts").json() if x["kind"] == "missed_call"]
    # The call's own catch-all has just told everyone; the alert waits one interval.
    assert missed["paging"]["step"] == "final"
    assert alert_paging.page_due(b.station) == 0
    run(b, clock, 295)
    assert pages(b, missed["id"]) == []
    run(b, clock, 5)
    assert recipients(b, missed["id"]) == ["admin", "boss", "duty", "senior"]
    assert b.api.post(f"/api/v1/alerts/{missed['id']}/acknowledge").status_code == 200
    run(b, clock, 900)
    assert len(recipients(b, missed["id"])) == 4


def test_several_processes_share_the_paging_and_none_pages_twice(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    """Two stations on one database (two `serve` processes) each run the auditor: one
    step is one page, whichever fires it."""
    from openline.runtime import build_station
    from openline.settings import load

    _, b = floor
    twin = build_station(load(b.home), clock=clock)
    twin.notify = b.station.notify
    try:
        alert_id = raise_one(b, "escalation_stalled", "call-2", {"call": "call-2"})
        assert alert_paging.page_due(b.station) + alert_paging.page_due(twin) == 1
        clock.advance(60)
        assert alert_paging.page_due(twin) + alert_paging.page_due(b.station) == 1
        assert recipients(b, alert_id) == ["duty", "senior"]
    finally:
        twin.db.dispose()


def test_the_policy_each_alert_follows_is_the_one_named(floor: tuple[Node, Node]) -> None:
    """An alert about no line, or about a peer with no line, follows the built-in policy."""
    _, b = floor
    first = esc.DEFAULT_POLICY.steps[0].targets
    for subject, detail in (("x-1", {}), ("x-2", {"peer": "nowhere"}), ("x-3", {"peer": 7})):
        alert_id = raise_one(b, "escalation_unheard", subject, detail)
        alert_paging.page_due(b.station)
        with b.station.db.read() as conn:
            copied = conn.execute(select(alerts.c.escalation).where(alerts.c.id == alert_id)).scalar_one()
        assert esc.loads(copied) == esc.DEFAULT_POLICY, subject
        assert first == ("on_duty",)
        assert recipients(b, alert_id) == ["duty"]


def test_the_board_and_the_alerts_table_say_an_alert_is_paging(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    from tests.test_console import browser, log_in

    _, b = floor
    alert_id = raise_one(b, "escalation_stalled", "call-3", {"call": "call-3"})
    alert_paging.page_due(b.station)
    c = browser(b)
    log_in(c, "duty")
    board = c.get("/board", headers={"HX-Request": "true"}).text
    next_at = alert(b, alert_id)["paging"]["next_at"]
    assert f"paging until acknowledged: next round 1, step 2 at {next_at[11:19]}Z" in board
    assert b.api.post(f"/api/v1/alerts/{alert_id}/acknowledge").status_code == 200
    assert "paging until acknowledged" not in c.get("/board", headers={"HX-Request": "true"}).text


def test_a_call_the_peer_left_unanswered_raises_an_alert_on_the_callers_floor(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    """The founding story: the other side stops picking up. The caller's watch floor is
    told, and paged, not left to notice a state in a list."""
    a, b = floor
    with b.station.tx() as tx:
        tx.conn.execute(update(lines).values(answer_deadline_s=60))
    answered = place_and_ring(a, b, subject="Answered", priority="flash")
    assert b.api.post(f"/api/v1/calls/{answered}/pickup").status_code == 200
    call_id = place_and_ring(a, b, subject="Corridor 7", priority="flash")
    clock.advance(61)
    assert b.expire() == 1  # the picked-up call is not missed
    b.drain()
    a.drain()
    assert show(a, call_id)["state"] == "missed"
    [unanswered] = [x for x in a.api.get("/api/v1/alerts").json() if x["kind"] == "unanswered_call"]
    assert unanswered["subject"] == call_id
    assert unanswered["detail"] == {"call": call_id, "peer": "moscow", "priority": "flash"}
    assert unanswered["paging"]["step"] == "round 1, step 1"
    assert "Corridor" not in json.dumps(unanswered)
    # moscow's own floor has its missed_call; only the caller has unanswered_call.
    assert [x["kind"] for x in b.api.get("/api/v1/alerts").json()] == ["missed_call"]


def test_a_call_the_peer_says_nothing_of_past_its_deadline_raises_the_alert_all_the_same(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    """The peer's station rang the call, then stopped keeping its deadlines (its timer
    loop is dead): it never sends call.missed. The caller's own auditor notices."""
    a, b = floor
    with a.station.tx() as tx:
        tx.conn.execute(update(lines).values(answer_deadline_s=60))
    call_id = place_and_ring(a, b, priority="immediate")
    ringing_at = show(a, call_id)["ringing_at"]
    clock.advance(60 + watch.UNANSWERED_GRACE_S)
    assert watch.audit_unanswered(a.station) == 0  # not yet: the grace is not over
    clock.advance(1)
    before = a.snapshot()
    assert watch.audit_unanswered(a.station) == 1
    [alert] = [x for x in a.api.get("/api/v1/alerts").json() if x["kind"] == "unanswered_call"]
    assert alert["subject"] == call_id
    assert alert["detail"] == {
        "call": call_id,
        "peer": "moscow",
        "priority": "immediate",
        "ringing_since": ringing_at,
        "ringing_heard_at": ringing_at,  # one clock: what moscow stamped is when it reached us
    }
    after = a.snapshot()
    assert watch.audit_unanswered(a.station) == 0  # raised once; the next rounds only read
    assert a.snapshot() == after != before
    # The peer's word comes late: still one alert for the call.
    assert b.expire() == 1
    b.drain()
    a.drain()
    assert show(a, call_id)["state"] == "missed"
    assert len([x for x in a.api.get("/api/v1/alerts").json() if x["kind"] == "unanswered_call"]) == 1


def test_a_flood_of_alerts_is_folded_into_one_page_per_address(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    """Ten conflicts raised at once: the webhook gets three pages one by one and one
    that lists the other seven; each alert's console record is kept, and each pages on."""
    from openline.services import paging

    _, b = floor
    policy = {
        "steps": [{"targets": ["webhook", "user:senior"], "delay_s": 60}],
        "repeat": 0,
        "final": {"targets": ["webhook"], "delay_s": 300},
    }
    assert b.api.put("/api/v1/lines/stuttgart/policy", json=policy).status_code == 200
    ids = [raise_one(b, "notice_conflict", f"conflict {n}", {"peer": "stuttgart"}) for n in range(10)]
    assert alert_paging.page_due(b.station) == 10
    with b.station.db.read() as conn:
        sent = conn.execute(
            select(notifications).where(notifications.c.channel == "webhook").order_by(notifications.c.title)
        ).all()
    one_by_one = [r for r in sent if r.kind == "alert.notice_conflict" and r.status == "pending"]
    [folded] = [r for r in sent if r.kind == "alert.more"]
    assert len(one_by_one) == paging.FOLD_AFTER == 3
    assert folded.title == "7 MORE ALERTS at moscow"
    assert folded.alert_id is None
    named = {i for i in ids if f"(alert {i})" in folded.text}
    assert named == set(ids) - {r.alert_id for r in one_by_one}
    # The pages folded in stay on each alert's record, never sent.
    kept = {r.alert_id for r in sent if r.status == "folded"}
    assert kept == named
    assert all(r.next_attempt_at is None for r in sent if r.status == "folded")
    assert all(recipients(b, i) == ["senior"] for i in ids)
    assert all(alert(b, i)["paging"]["step"] == "final" for i in ids)


def test_in_a_flood_the_most_urgent_alert_still_pages_on_its_own(floor: tuple[Node, Node]) -> None:
    """Ten conflicts, then the line goes down, all due in one round: the line_down page
    goes one by one, ahead of the conflicts, and is not folded into their digest."""
    _, b = floor
    policy = {
        "steps": [{"targets": ["webhook"], "delay_s": 60}],
        "repeat": 0,
        "final": {"targets": ["webhook"], "delay_s": 300},
    }
    assert b.api.put("/api/v1/lines/stuttgart/policy", json=policy).status_code == 200
    for n in range(10):
        raise_one(b, "notice_conflict", f"conflict {n}", {"peer": "stuttgart"})
    down = raise_one(b, "line_down", "stuttgart since now", {"peer": "stuttgart"})
    assert alert_paging.page_due(b.station) == 11
    with b.station.db.read() as conn:
        sent = conn.execute(
            select(notifications.c.kind, notifications.c.alert_id, notifications.c.status).where(
                notifications.c.channel == "webhook"
            )
        ).all()
    assert ("alert.line_down", down, "pending") in [tuple(r) for r in sent]
    assert len([r for r in sent if r.status == "pending" and r.kind != "alert.more"]) == 3
