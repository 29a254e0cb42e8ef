"""Escalation end to end on an injected clock: nobody picks up, so the duty officer, the
senior and the commander are rung in turn, the steps repeat, then the catch-all for ever;
every step in the call's event log; a restart in the middle loses no step; a pick-up is a
lease; a missed call and a step that reaches nobody raise alerts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from openline.adapters.schema import calls, notifications, users
from openline.core.clock import MICROS, FakeClock, rfc3339
from openline.runtime import build_station
from openline.services import accounts, handover, rosters, watch
from openline.services.accounts import Role
from openline.services.station import NotifyConfig
from openline.services.timers import Auditor
from openline.settings import load
from tests.inproc import Node, add_staff, link, make_node, place_and_ring, show
from tests.notice_docs import cli

PASSWORD = "correct horse battery staple"


@pytest.fixture
def floor(
    tmp_path: Path, clock: FakeClock, database_url: str | None, second_database_url: str | None
) -> Iterator[tuple[Node, Node]]:
    """stuttgart calls moscow; moscow has a duty officer on shift, a senior and a commander.
    Calls may ring for an hour, so the escalation has time to run."""
    a = make_node(tmp_path, "stuttgart", clock, database_url)
    b = make_node(tmp_path, "moscow", clock, second_database_url)
    for node in (a, b):
        node.station.answer_deadline_s = 3600
    link(a, b)
    add_staff(b, PASSWORD)
    start = clock.now() - 3600 * MICROS
    r = b.api.post(
        "/api/v1/shifts",
        json={"user": "duty", "start_local": _local(start), "tz": "UTC", "duration_s": 12 * 3600},
    )
    assert r.status_code == 201, r.text
    try:
        yield a, b
    finally:
        for n in (a, b):
            n.station.db.dispose()


def _local(micros: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(micros / MICROS, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def escalations(node: Node, call_id: str) -> list[dict[str, Any]]:
    return [e for e in show(node, call_id)["events"] if e["event"] in ("escalated", "rering")]


def run(node: Node, clock: FakeClock, seconds: int) -> None:
    """Let `seconds` pass one second at a time, as the timer loop would see them."""
    for _ in range(seconds):
        clock.advance(1)
        for _ in range(10):
            if not watch.escalate_due(node.station):
                break


def test_nobody_picks_up_so_it_escalates_repeats_then_never_stops(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = floor
    call_id = place_and_ring(a, b, "Convoy at checkpoint 4", "flash")
    assert watch.escalate_due(b.station) == 1  # the first step fires as it starts ringing
    run(b, clock, 59)
    assert [e["detail"]["recipients"] for e in escalations(b, call_id)] == [["duty"]]
    run(b, clock, 1)
    run(b, clock, 60)
    run(b, clock, 60 * 4 + 300 * 2)  # to 960 s after it started ringing
    steps = escalations(b, call_id)
    assert [(e["detail"]["step"], e["detail"]["recipients"]) for e in steps] == [
        ("round 1, step 1", ["duty"]),
        ("round 1, step 2", ["senior"]),
        ("round 1, step 3", ["boss"]),
        ("round 2, step 1", ["duty"]),
        ("round 2, step 2", ["senior"]),
        ("round 2, step 3", ["boss"]),
        ("final", ["admin", "boss", "duty", "senior"]),
        ("final", ["admin", "boss", "duty", "senior"]),
        ("final", ["admin", "boss", "duty", "senior"]),
    ]
    ringing_at = show(b, call_id)["ringing_at"]
    offsets = [_seconds(e["at"]) - _seconds(ringing_at) for e in steps]
    assert offsets == [0, 60, 120, 180, 240, 300, 360, 660, 960]
    assert all(e["detail"]["late_ms"] == 0 for e in steps)
    assert steps[0]["detail"]["on_duty"] == ["duty"]
    with b.station.db.read() as conn:
        sent = conn.execute(select(notifications.c.recipient, notifications.c.channel)).all()
    assert sorted({r.recipient for r in sent}) == ["admin", "boss", "duty", "senior"]
    assert {r.channel for r in sent} == {"console"}  # no webhook or SMTP configured here
    assert show(a, call_id)["state"] == "ringing"  # the caller sees it ringing, not our escalation


def _seconds(text: str) -> int:
    from openline.core.clock import parse_rfc3339

    return parse_rfc3339(text) // MICROS


def test_a_restart_in_the_middle_loses_no_step(floor: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = floor
    call_id = place_and_ring(a, b)
    run(b, clock, 61)
    assert len(escalations(b, call_id)) == 2
    b.station.db.dispose()  # the station stops; 130 s pass; it starts again
    clock.advance(130)
    restarted = build_station(load(b.home), clock=clock)
    try:
        for _ in range(10):
            watch.escalate_due(restarted)
    finally:
        restarted.db.dispose()
    steps = escalations(b, call_id)
    assert [e["detail"]["step"] for e in steps] == [
        "round 1, step 1",
        "round 1, step 2",
        "round 1, step 3",
        "round 2, step 1",
    ]
    # Late steps fire once each, in order, saying how late they were; the schedule holds.
    assert [e["detail"]["late_ms"] for e in steps[2:]] == [71_000, 11_000]
    assert [e["detail"]["due_at"] for e in steps[2:]] == [
        _at(show(b, call_id)["ringing_at"], 120),
        _at(show(b, call_id)["ringing_at"], 180),
    ]


def _at(base: str, plus: int) -> str:
    from openline.core.clock import parse_rfc3339, rfc3339

    return str(rfc3339(parse_rfc3339(base) + plus * MICROS))


def test_the_policy_is_copied_onto_the_call_when_it_starts_ringing(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = floor
    first = place_and_ring(a, b, "first")
    policy = {
        "steps": [{"targets": ["user:boss"], "delay_s": 30}],
        "repeat": 0,
        "final": {"targets": ["role:administrator"], "delay_s": 600},
    }
    r = b.api.put("/api/v1/lines/stuttgart/policy", json=policy)
    assert r.status_code == 200, r.text
    assert r.json()["default"] is False
    second = place_and_ring(a, b, "second")
    run(b, clock, 60)
    assert [e["detail"]["recipients"] for e in escalations(b, first)] == [["duty"], ["senior"]]
    assert [e["detail"]["recipients"] for e in escalations(b, second)] == [["boss"], ["admin"]]


def test_a_pick_up_is_a_lease_the_call_rings_again_when_nobody_acts(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = floor
    call_id = place_and_ring(a, b)
    run(b, clock, 10)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    run(b, clock, 299)
    assert [e["event"] for e in escalations(b, call_id)] == ["escalated"]
    assert b.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "go ahead"}).status_code == 201
    run(b, clock, 299)  # the message renewed the lease
    assert [e["event"] for e in escalations(b, call_id)] == ["escalated"]
    run(b, clock, 1)
    rering = escalations(b, call_id)[-1]
    assert rering["event"] == "rering"
    assert rering["detail"]["recipients"] == ["duty"]
    run(b, clock, 60)
    assert escalations(b, call_id)[-1]["detail"]["recipients"] == ["senior"]
    assert b.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": "done"}).status_code == 200
    before = len(escalations(b, call_id))
    run(b, clock, 3600)
    assert len(escalations(b, call_id)) == before  # closed: nothing left to escalate
    with b.station.db.read() as conn:
        row = conn.execute(select(calls.c.next_escalation_at, calls.c.lease_until)).first()
    assert tuple(row) == (None, None)


def test_a_call_that_rings_again_is_ringing_on_the_watch_floor_until_someone_acts(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    """It paged people ("rings again"), but the board, the header's count and its alarm
    showed nothing ringing: the officer paged found nothing to answer."""
    from openline.services import calls as call_service
    from tests.test_console_notices_actions import _officer

    a, b = floor
    call_id = place_and_ring(a, b)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    run(b, clock, 299)
    assert (call_service.ringing_count(b.station), show(b, call_id)["rings_again"]) == (0, False)
    run(b, clock, 1)  # the lease runs out: it rings again
    assert show(b, call_id)["state"] == "picked_up"
    assert show(b, call_id)["rings_again"] is True
    assert call_service.ringing_count(b.station) == 1
    [listed], total = call_service.ringing(b.station, limit=10)
    assert (listed["id"], total) == (call_id, 1)
    c, _ = _officer(b, name="night")
    board = c.get("/").text
    assert 'data-ringing-count="1"' in board
    assert "data-rings-again" in board
    assert f'action="/calls/{call_id}/pickup"' not in board  # picked up already: answer it
    assert "data-rings-again" in c.get(f"/calls/{call_id}").text
    assert b.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "still here"}).status_code == 201
    assert (call_service.ringing_count(b.station), show(b, call_id)["rings_again"]) == (0, False)


def test_a_step_that_reaches_nobody_raises_an_alert(floor: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = floor
    assert b.api.post("/api/v1/users/duty/disable").status_code == 200  # nobody on duty now
    call_id = place_and_ring(a, b)
    watch.escalate_due(b.station)
    assert escalations(b, call_id)[0]["detail"]["recipients"] == []
    alerts = b.api.get("/api/v1/alerts", params={"open": True}).json()
    assert [(x["kind"], x["subject"]) for x in alerts] == [("escalation_unheard", call_id)]


def test_a_missed_call_notifies_the_catch_all_and_raises_an_alert(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = floor
    with b.station.tx() as tx:  # a short answer deadline on this line
        from openline.adapters.schema import lines

        tx.conn.execute(update(lines).values(answer_deadline_s=90))
    call_id = place_and_ring(a, b)
    run(b, clock, 90)
    assert b.expire() == 1
    assert show(b, call_id)["state"] == "missed"
    alerts = b.api.get("/api/v1/alerts").json()
    assert ("missed_call", call_id) in [(x["kind"], x["subject"]) for x in alerts]
    with b.station.db.read() as conn:
        kinds = {r.kind for r in conn.execute(select(notifications.c.kind))}
    assert "call.missed" in kinds
    before = len(escalations(b, call_id))
    run(b, clock, 600)
    assert len(escalations(b, call_id)) == before


def test_a_step_that_fell_due_while_the_station_was_stopped_is_no_stall_at_restart(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    """Restarted a minute after a step fell due, the auditor looked before the timer loop
    had fired it (4 ms apart) and paged `escalation_stalled` at the floor, every restart.
    The timer loop has OVERDUE_S to fire it; a loop that really stalls is still told."""
    a, b = floor
    call_id = place_and_ring(a, b)
    clock.advance(90)  # stopped while the first steps fell due
    auditor = Auditor(b.station)
    auditor.step()  # the process starts again: its first look
    assert [x for x in b.api.get("/api/v1/alerts").json() if x["kind"] == "escalation_stalled"] == []
    clock.advance(watch.OVERDUE_S)  # and no timer loop has fired the step since
    auditor.step()
    stalled = [x for x in b.api.get("/api/v1/alerts").json() if x["kind"] == "escalation_stalled"]
    assert [x["subject"] for x in stalled] == [call_id]


def test_the_auditor_raises_an_alarm_for_a_ringing_call_without_a_next_step(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = floor
    call_id = place_and_ring(a, b)
    assert watch.audit_escalations(b.station) == 0
    with b.station.tx() as tx:  # a bug or a hand edit loses the timer
        tx.conn.execute(update(calls).values(next_escalation_at=None))
    assert watch.audit_escalations(b.station) == 1
    assert watch.audit_escalations(b.station) == 0  # raised once, not on every check
    alert = b.api.get("/api/v1/alerts").json()[0]
    assert (alert["kind"], alert["subject"]) == ("escalation_stalled", call_id)
    r = b.api.post(f"/api/v1/alerts/{alert['id']}/acknowledge")
    assert r.status_code == 200
    assert r.json()["acknowledged_by"] == "admin"
    before = b.snapshot()
    again = b.api.post(f"/api/v1/alerts/{alert['id']}/acknowledge")
    assert again.status_code == 409
    assert b.snapshot() == before


def test_bad_policies_are_refused_and_change_nothing(floor: tuple[Node, Node]) -> None:
    _, b = floor
    before = b.snapshot()
    for body, fragment in [
        ({"steps": [], "repeat": 0, "final": {"targets": ["on_duty"], "delay_s": 5}}, "policy.steps"),
        (
            {
                "steps": [{"targets": ["role:king"], "delay_s": 5}],
                "repeat": 0,
                "final": {"targets": ["on_duty"], "delay_s": 5},
            },
            "king",
        ),
    ]:
        r = b.api.put("/api/v1/lines/stuttgart/policy", json=body)
        assert r.status_code == 422, r.text
        assert fragment in r.json()["detail"]
    r = b.api.put("/api/v1/lines/nowhere/policy", json={})
    assert r.status_code in (404, 422)
    assert b.snapshot() == before


def _one_step(*targets: str) -> dict[str, Any]:
    return {
        "steps": [{"targets": list(targets), "delay_s": 5}],
        "repeat": 0,
        "final": {"targets": ["on_duty"], "delay_s": 5},
    }


def test_a_policy_whose_targets_reach_nobody_who_may_answer_is_refused(floor: tuple[Node, Node]) -> None:
    """Accepted, each was found only at 3 a.m., as `escalation_unheard` for a call already
    ringing; `notify test` refuses the same targets."""
    _, b = floor
    for name, role in (("ivan", "auditor"), ("gone", "watch_officer")):
        r = b.api.post("/api/v1/users", json={"name": name, "role": role, "password": "a long password 1"})
        assert r.status_code == 201, r.text
    assert b.api.post("/api/v1/users/gone/disable").status_code == 200
    before = b.snapshot()
    for targets, fragment in [
        (("user:ghost",), "user:ghost: no such user"),
        (("user:ivan",), "user:ivan: a auditor may not answer calls"),
        (("user:gone",), "user:gone: the user is disabled"),
        (("role:auditor",), "role:auditor: that role may not answer calls"),
        # moscow has no webhook_urls: a step that would notify nothing else reaches nobody
        (("webhook",), "policy.steps[0]: webhook: the station has no webhook_urls"),
    ]:
        r = b.api.put("/api/v1/lines/stuttgart/policy", json=_one_step(*targets))
        assert r.status_code == 422, r.text
        assert fragment in r.json()["detail"]
    assert b.snapshot() == before
    r = b.api.put("/api/v1/lines/stuttgart/policy", json=_one_step("user:duty", "role:senior_watch_officer"))
    assert r.status_code == 200, r.text


WEBHOOK_WARNING = (
    "webhook: the station has no webhook_urls: that target notifies nobody until they are set"
    " (docs/operations.md, Notifications)"
)
CLI_EXAMPLE_POLICY = {  # docs/cli.md, `openline policy set`
    "steps": [
        {"targets": ["on_duty"], "delay_s": 60},
        {"targets": ["role:senior_watch_officer"], "delay_s": 60},
        {"targets": ["role:commander"], "delay_s": 60},
    ],
    "repeat": 1,
    "final": {"targets": ["on_duty", "role:commander", "role:administrator", "webhook"], "delay_s": 300},
}


def test_a_station_without_webhooks_takes_back_its_own_default_policy(
    floor: tuple[Node, Node], monkeypatch: Any, tmp_path: Path
) -> None:
    """The built-in policy names `webhook` in its catch-all, as the example in the docs
    does; a station without webhook_urls refused both, so it could not set its own default
    again. A `webhook` beside other targets is taken, with a warning in the answer."""
    _, b = floor
    shown = b.api.get("/api/v1/lines/stuttgart/policy").json()
    assert shown["default"] is True
    assert shown["warnings"] == [WEBHOOK_WARNING]
    r = b.api.put("/api/v1/lines/stuttgart/policy", json=shown["policy"])
    assert r.status_code == 200, r.text
    assert r.json()["default"] is False
    assert r.json()["policy"] == shown["policy"]
    assert r.json()["warnings"] == [WEBHOOK_WARNING]
    example = tmp_path / "pol.json"
    example.write_text(json.dumps(CLI_EXAMPLE_POLICY))
    result = cli(b, monkeypatch, "policy", "set", "stuttgart", str(example))
    assert result.exit_code == 0, result.output
    assert f"warning: {WEBHOOK_WARNING}" in " ".join(result.stderr.split())
    assert b.api.get("/api/v1/lines/stuttgart/policy").json()["policy"] == CLI_EXAMPLE_POLICY


def test_a_station_with_webhooks_sets_a_webhook_policy_without_warning(floor: tuple[Node, Node]) -> None:
    _, b = floor
    b.station.notify = NotifyConfig(webhook_urls=("http://127.0.0.1:9/hook",))
    r = b.api.put("/api/v1/lines/stuttgart/policy", json=_one_step("webhook"))
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == []
    assert b.api.get("/api/v1/lines/stuttgart/policy").json()["warnings"] == []


def test_escalation_detail_is_metadata_only(floor: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = floor
    call_id = place_and_ring(a, b, "Secret subject line")
    run(b, clock, 60)
    with b.station.db.read() as conn:
        texts = [
            json.dumps(tuple(r)) for r in conn.execute(select(notifications.c.title, notifications.c.text))
        ]
    assert texts
    assert all("Secret subject line" not in t for t in texts)
    assert all(call_id in t for t in texts)


def test_a_roster_gap_in_the_next_24_hours_raises_one_alert(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    _, b = floor  # duty's shift started an hour ago and lasts 12 hours: a gap after it
    assert rosters.check_roster_gaps(b.station) == 1
    for _ in range(3):  # checked every minute: the same gap is not raised again
        clock.advance(60)
        assert rosters.check_roster_gaps(b.station) == 0
    clock.advance(12 * 3600)  # now inside the gap: still the same one
    assert rosters.check_roster_gaps(b.station) == 0
    (alert,) = b.api.get("/api/v1/alerts").json()
    assert alert["kind"] == "roster_gap"
    roster = b.api.get("/api/v1/roster").json()
    assert roster["on_duty"] == []
    shift_end = show_shift_end(roster)
    assert alert["detail"]["from"] == shift_end


def test_a_new_stations_first_roster_gap_begins_when_it_was_set_up(floor: tuple[Node, Node]) -> None:
    """Not a week before it existed ('ROSTER GAP: 2026-11-21...' paged on its first day)."""
    a, _ = floor  # stuttgart has nobody on its roster
    assert rosters.check_roster_gaps(a.station) == 1
    (alert,) = a.api.get("/api/v1/alerts").json()
    (admin,) = [u for u in a.api.get("/api/v1/users").json() if u["name"] == "admin"]
    assert alert["detail"]["from"][:19] == admin["created_at"][:19]
    assert alert["subject"] == admin["created_at"][:19] + "Z"


@pytest.mark.parametrize("acknowledged", [True, False])
def test_a_roster_gap_filled_then_opened_again_alarms_again(
    floor: tuple[Node, Node], clock: FakeClock, acknowledged: bool
) -> None:
    """Fill a gap, then take the fix away: the same gap was back with nobody told. With its
    alert acknowledged, alerts were one per kind and subject for good; with it still open,
    it was over ("the gap is filled or over", paging nobody) and said the gap was filled."""
    _, b = floor
    assert rosters.check_roster_gaps(b.station) == 1
    (alert,) = b.api.get("/api/v1/alerts").json()
    if acknowledged:
        assert b.api.post(f"/api/v1/alerts/{alert['id']}/acknowledge").status_code == 200
        assert rosters.check_roster_gaps(b.station) == 0  # seen: not raised again while it lasts
    now = clock.now()
    r = b.api.post(
        "/api/v1/overrides",
        json={"user": "senior", "start": rfc3339(now), "end": rfc3339(now + 48 * 3600 * MICROS)},
    )
    assert r.status_code == 201, r.text
    assert rosters.check_roster_gaps(b.station) == 0
    (filled,) = b.api.get("/api/v1/alerts").json()
    assert filled["detail"]["over"]["why"] == "the gap is filled or over"
    assert (filled["acknowledged_at"] is not None) is acknowledged
    assert filled["paging"] is None
    assert b.api.delete(f"/api/v1/overrides/{r.json()['id']}").status_code == 204
    clock.advance(60)
    assert rosters.check_roster_gaps(b.station) == 1  # the same gap, open again
    (again,) = b.api.get("/api/v1/alerts").json()
    assert again["id"] == alert["id"]
    assert (again["acknowledged_at"], again["acknowledged_by"]) == (None, None)
    assert again["paging"] is not None
    assert "over" not in again["detail"]
    assert rosters.check_roster_gaps(b.station) == 0


def test_a_removed_shift_or_overrides_number_is_never_given_again(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    """SQLite gave a removed row's number to the next one: the audit trail read `shift.add
    4 wo1`, `shift.remove 4`, `shift.add 4 cmd`, and a removal typed from an old listing
    removed someone else's shift."""
    _, b = floor
    body = {"user": "senior", "start_local": "2026-01-05T06:00", "tz": "UTC", "duration_s": 3600}
    first = b.api.post("/api/v1/shifts", json=body).json()["id"]
    assert b.api.delete(f"/api/v1/shifts/{first}").status_code == 204
    assert b.api.post("/api/v1/shifts", json=body).json()["id"] == first + 1
    now = clock.now()
    window = {"user": "senior", "start": rfc3339(now + 3600 * MICROS), "end": rfc3339(now + 7200 * MICROS)}
    override = b.api.post("/api/v1/overrides", json=window).json()["id"]
    assert b.api.delete(f"/api/v1/overrides/{override}").status_code == 204
    assert b.api.post("/api/v1/overrides", json=window).json()["id"] == override + 1


def test_roster_input_is_checked_and_bad_input_changes_nothing(floor: tuple[Node, Node]) -> None:
    _, b = floor
    before = b.snapshot()
    for body, fragment in [
        (
            {"user": "duty", "start_local": "2026-11-27T06:00", "tz": "Mars/Olympus", "duration_s": 3600},
            "time zone",
        ),
        ({"user": "duty", "start_local": "tomorrow", "tz": "UTC", "duration_s": 3600}, "start"),
        (
            {"user": "duty", "start_local": "2026-11-27T06:00+01:00", "tz": "UTC", "duration_s": 3600},
            "offset",
        ),
        (
            {
                "user": "duty",
                "start_local": "2026-11-27T06:00",
                "tz": "UTC",
                "duration_s": 3600,
                "rrule": "FREQ=HOURLY",
            },
            "HOURLY",
        ),
        ({"user": "nobody", "start_local": "2026-11-27T06:00", "tz": "UTC", "duration_s": 3600}, "nobody"),
        ({"user": "duty", "start_local": "2026-11-27T06:00", "tz": "UTC", "duration_s": 10}, "duration_s"),
    ]:
        r = b.api.post("/api/v1/shifts", json=body)
        assert r.status_code in (404, 422), (body, r.text)
        assert fragment in r.json()["detail"], (fragment, r.json()["detail"])
    for body, fragment in [
        ({"user": "duty", "start": "2026-11-27T06:00:00Z", "end": "2026-11-27T05:00:00Z"}, "end"),
        ({"user": "duty", "start": "yesterday", "end": "2026-11-27T05:00:00Z"}, "RFC 3339"),
        (
            {
                "user": "duty",
                "start": "2026-11-27T06:00:00Z",
                "end": "2026-11-28T06:00:00Z",
                "replaces": "duty",
            },
            "cannot replace themselves",
        ),
    ]:
        r = b.api.post("/api/v1/overrides", json=body)
        assert r.status_code == 422, (body, r.text)
        assert fragment in r.json()["detail"], (fragment, r.json()["detail"])
    assert b.api.delete("/api/v1/shifts/999").status_code == 404
    assert b.api.get("/api/v1/roster", params={"at": "noon"}).status_code == 422
    assert b.snapshot() == before


def test_only_someone_who_works_calls_is_put_on_the_roster(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    _, b = floor
    with b.station.tx() as tx:
        accounts.create_user(tx.conn, tx.now, "au", Role.AUDITOR, PASSWORD)
    now = clock.now()
    before = b.snapshot()
    for path, body in [
        ("/api/v1/shifts", {"user": "au", "start_local": _local(now), "tz": "UTC", "duration_s": 8 * 3600}),
        ("/api/v1/overrides", {"user": "au", "start": rfc3339(now), "end": rfc3339(now + 3600 * MICROS)}),
    ]:
        r = b.api.post(path, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_input"
        assert "user 'au' is auditor, who cannot work calls" in r.json()["detail"]
    assert b.snapshot() == before


@pytest.mark.parametrize("change", ["role", "disabled"])
def test_someone_who_can_no_longer_work_calls_covers_nothing(
    floor: tuple[Node, Node], clock: FakeClock, change: str
) -> None:
    a, b = floor
    assert b.api.get("/api/v1/roster").json()["on_duty"] == ["duty"]
    if change == "role":  # the station has no command for it: a hand edit, or a later version
        with b.station.tx() as tx:
            tx.conn.execute(update(users).where(users.c.name == "duty").values(role=Role.AUDITOR.value))
    else:
        assert b.api.post("/api/v1/users/duty/disable").status_code == 200
    roster = b.api.get("/api/v1/roster").json()
    assert roster["on_duty"] == []
    assert roster["gaps"][0]["from"] == roster["at"]
    assert [x["user"] for x in roster["shifts"]] == ["duty"]  # still listed, to be removed
    call_id = place_and_ring(a, b)
    watch.escalate_due(b.station)
    step = escalations(b, call_id)[0]["detail"]
    assert (step["on_duty"], step["recipients"]) == ([], [])
    open_alerts = b.api.get("/api/v1/alerts", params={"open": True}).json()
    assert ("escalation_unheard", call_id) in [(x["kind"], x["subject"]) for x in open_alerts]


def test_a_shift_past_year_9999_is_refused_and_the_roster_answers_to_the_end_of_time(
    floor: tuple[Node, Node],
) -> None:
    _, b = floor
    before = b.snapshot()
    for path, body, says in [
        (
            "/api/v1/shifts",
            {"user": "duty", "start_local": "9999-12-31T23:00", "tz": "UTC", "duration_s": 8 * 3600},
            "start: a shift from 9999-12-31T23:00:00 UTC ends after 9999-12-31T23:59:59Z",
        ),
        (
            "/api/v1/shifts",
            {"user": "duty", "start_local": "0001-01-01T01:00", "tz": "Asia/Tokyo", "duration_s": 3600},
            "starts before 0001-01-01T00:00:00Z",
        ),
        (
            "/api/v1/overrides",
            {"user": "duty", "start": "9999-12-31T23:00:00Z", "end": "9999-12-31T23:59:59-01:00"},
            "end: expected an RFC 3339 time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z",
        ),
    ]:
        r = b.api.post(path, json=body)
        assert r.status_code == 422, r.text
        assert says in r.json()["detail"]
    assert b.snapshot() == before
    # A daily shift at 22:00 in New York runs to the end of year 9999 and past it in UTC.
    r = b.api.post(
        "/api/v1/shifts",
        json={
            "user": "senior",
            "start_local": "2026-01-01T22:00",
            "tz": "America/New_York",
            "duration_s": 8 * 3600,
            "rrule": "FREQ=DAILY",
        },
    )
    assert r.status_code == 201, r.text
    last = "9999-12-31T23:59:59.999999Z"
    r = b.api.post("/api/v1/overrides", json={"user": "boss", "start": "9999-12-31T23:00:00Z", "end": last})
    assert r.status_code == 201, r.text
    for zone in ("Asia/Tokyo", "America/New_York"):  # local times in year 10000, and year 0
        b.station.time_zone = zone
        for at, on_duty in [
            ("9999-12-31T05:00:00Z", ["senior"]),
            ("9999-12-31T23:30:00Z", ["boss"]),
            (last, []),
            ("0001-01-01T00:00:00Z", []),
        ]:
            r = b.api.get("/api/v1/roster", params={"at": at})
            assert r.status_code == 200, (zone, at, r.text)
            assert r.json()["on_duty"] == on_duty, (zone, at)


def test_shift_hours_are_checked_in_hours_by_the_cli(
    floor: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, b = floor
    before = b.snapshot()
    for hours in ("nan", "inf", "-inf", "0", "-3", "0.001", "168.5", "1e308"):
        result = cli(
            b,
            monkeypatch,
            "shift",
            "add",
            "duty",
            "--start",
            "2026-11-27T06:00",
            "--tz",
            "UTC",
            "--hours",
            hours,
        )
        assert result.exit_code == 1, (hours, result.output)
        assert result.stderr == (
            "error (invalid_input): --hours: a shift lasts at least 1 minute (0.0167 hours)"
            f" and at most 7 days (168 hours), got {float(hours):g}\n"
        ), hours
    assert b.snapshot() == before
    args = ("shift", "add", "duty", "--start", "2026-11-27T06:00", "--tz", "UTC", "--hours", "168")
    assert cli(b, monkeypatch, *args).exit_code == 0


def test_overrides_swap_who_is_on_duty(floor: tuple[Node, Node], clock: FakeClock) -> None:
    _, b = floor
    now = clock.now()
    r = b.api.post(
        "/api/v1/overrides",
        json={
            "user": "senior",
            "replaces": "duty",
            "start": rfc3339(now),
            "end": rfc3339(now + 3600 * MICROS),
        },
    )
    assert r.status_code == 201, r.text
    assert b.api.get("/api/v1/roster").json()["on_duty"] == ["senior"]
    later = rfc3339(now + 3601 * MICROS)
    assert b.api.get("/api/v1/roster", params={"at": later}).json()["on_duty"] == ["duty"]
    assert b.api.get("/api/v1/roster").json()["next_handover"]["utc"] == rfc3339(now + 3600 * MICROS)
    assert b.api.delete(f"/api/v1/overrides/{r.json()['id']}").status_code == 204
    assert b.api.get("/api/v1/roster").json()["on_duty"] == ["duty"]


def show_shift_end(roster: dict[str, Any]) -> str:
    from datetime import datetime, timedelta

    (shift,) = roster["shifts"]
    start = datetime.fromisoformat(shift["start_local"] + "+00:00")
    end = start + timedelta(seconds=shift["duration_s"])
    return end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_handover_carries_the_open_calls_and_is_acknowledged_by_the_next_officer(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = floor
    ringing = place_and_ring(a, b, "still ringing")
    with b.station.tx() as tx:
        accounts.create_user(tx.conn, tx.now, "night", Role.WATCH_OFFICER, PASSWORD)
    duty = TestClient(b.app, headers={"Authorization": f"Bearer {token_for(b, 'duty')}"})
    night = TestClient(b.app, headers={"Authorization": f"Bearer {token_for(b, 'night')}"})
    before = b.snapshot()
    for body in ({"note": ""}, {"note": "x" * 4001}, {}):
        r = duty.post("/api/v1/handovers", json=body)
        assert r.status_code == 422, body
    assert b.snapshot() == before
    r = duty.post("/api/v1/handovers", json={"note": "Stuttgart's convoy call is still ringing; call back."})
    assert r.status_code == 201, r.text
    handover = r.json()
    assert [c["id"] for c in handover["open_items"]["calls"]] == [ringing]
    assert handover["open_items"]["calls"][0]["state"] == "ringing"
    assert handover["acknowledged_at"] is None
    assert (
        duty.post(f"/api/v1/handovers/{handover['id']}/acknowledge").status_code == 409
    )  # not by its writer
    r = night.post(f"/api/v1/handovers/{handover['id']}/acknowledge")
    assert r.status_code == 200
    assert r.json()["acknowledged_by"] == "night"
    assert night.post(f"/api/v1/handovers/{handover['id']}/acknowledge").status_code == 409
    assert b.api.get("/api/v1/handovers", params={"pending": True}).json() == []
    actions = [e["action"] for e in b.api.get("/api/v1/audit").json()]
    assert "handover.give" in actions
    assert "handover.acknowledge" in actions


def test_a_handover_nobody_acknowledges_raises_an_alert(floor: tuple[Node, Node], clock: FakeClock) -> None:
    _, b = floor
    r = b.api.post("/api/v1/handovers", json={"note": "quiet night"})
    assert r.status_code == 201
    assert handover.audit_handovers(b.station) == 0
    clock.advance(handover.HANDOVER_ACK_S)
    assert handover.audit_handovers(b.station) == 1
    assert handover.audit_handovers(b.station) == 0
    kinds = [x["kind"] for x in b.api.get("/api/v1/alerts", params={"open": True}).json()]
    assert "handover_unacknowledged" in kinds


def test_an_auditor_sees_handovers_without_their_note(floor: tuple[Node, Node]) -> None:
    _, b = floor
    assert b.api.post("/api/v1/handovers", json={"note": "private words"}).status_code == 201
    with b.station.tx() as tx:
        accounts.create_user(tx.conn, tx.now, "inspector", Role.AUDITOR, PASSWORD)
    auditor = TestClient(b.app, headers={"Authorization": f"Bearer {token_for(b, 'inspector')}"})
    (seen,) = auditor.get("/api/v1/handovers").json()
    assert seen["note"] is None
    assert seen["from"] == "admin"


def token_for(node: Node, name: str) -> str:
    with node.station.tx() as tx:
        user_id = accounts.check_password(tx.conn, name, PASSWORD).user_id
        return accounts.issue_token(tx.conn, tx.now, user_id, "test")
