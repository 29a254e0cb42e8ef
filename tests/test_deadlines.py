"""An unanswered call turns `missed` exactly at the line's answer deadline."""

from __future__ import annotations

from openline.core.clock import MICROS, FakeClock, parse_rfc3339
from openline.runtime import build_station
from openline.services import calls
from openline.settings import load
from tests.inproc import Node, place_and_ring, show


def test_call_is_missed_exactly_at_the_deadline(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b, priority="flash")
    ringing = show(b, call_id)
    assert ringing["state"] == "ringing"
    deadline = parse_rfc3339(ringing["deadline_at"])
    assert deadline == parse_rfc3339(ringing["ringing_at"]) + 60 * MICROS

    clock.set(deadline - 1)
    assert b.expire() == 0
    assert show(b, call_id)["state"] == "ringing"

    clock.set(deadline)
    assert b.expire() == 1
    missed = show(b, call_id)
    assert missed["state"] == "missed"
    assert parse_rfc3339(missed["missed_at"]) == deadline
    assert missed["events"][-1]["event"] == "missed"

    b.drain()
    seen_by_caller = show(a, call_id)
    assert seen_by_caller["state"] == "missed"
    assert seen_by_caller["missed_at"] == missed["missed_at"]


def test_pickup_after_the_deadline_is_refused_and_the_call_is_missed(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    deadline = parse_rfc3339(show(b, call_id)["deadline_at"])
    clock.set(deadline + 5 * MICROS)  # the timer loop has not run yet
    r = b.api.post(f"/api/v1/calls/{call_id}/pickup")
    assert r.status_code == 409
    assert r.json()["code"] == "illegal_transition"
    assert "missed" in r.json()["detail"]
    assert b.expire() == 1
    assert parse_rfc3339(show(b, call_id)["missed_at"]) == deadline


def test_pickup_just_before_the_deadline_wins(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    deadline = parse_rfc3339(show(b, call_id)["deadline_at"])
    clock.set(deadline - 1)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    clock.set(deadline + 1)
    assert b.expire() == 0
    b.drain()
    assert show(a, call_id)["state"] == "picked_up"


def test_deadline_survives_a_restart(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    b.station.db.dispose()
    clock.advance(3600)
    restarted = build_station(load(b.home), clock=clock)  # a new process: only the database remains
    assert calls.expire_due(restarted) == 1
    assert calls.show_call(restarted, call_id)["state"] == "missed"
    restarted.db.dispose()


def test_answer_deadline_is_a_line_term(tmp_path: object, clock: FakeClock) -> None:
    from pathlib import Path

    from tests.inproc import link, make_node

    root = Path(str(tmp_path))
    a, b = make_node(root, "stuttgart", clock, None), make_node(root, "moscow", clock, None)
    a.station.answer_deadline_s = b.station.answer_deadline_s = 15
    link(a, b)
    call_id = place_and_ring(a, b)
    ringing = show(b, call_id)
    assert ringing["answer_deadline_s"] == 15
    assert parse_rfc3339(ringing["deadline_at"]) - parse_rfc3339(ringing["ringing_at"]) == 15 * MICROS
