"""Statements that cross on the line: each side acts before hearing the other's latest.
Both keep and receipt what the other said, so the two threads stay the same, and the
event log records what changed nothing."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from openline.core.clock import FakeClock
from openline.core.evidence import verify_call_proof
from openline.services import delivery
from openline.services.accounts import Role
from openline.services.delivery import Outcome
from tests.inproc import Node, picked_up, place_and_ring, send_unsettled, settle_ledgers, show
from tests.notice_docs import cli_table
from tests.test_console import add_user, browser, log_in


def test_ringing_that_overtakes_the_receipt_for_the_call_leaves_it_ringing(
    nodes: tuple[Node, Node],
) -> None:
    """The receipt for call.place comes back in the answer to stuttgart's request, and
    moscow's call.ringing in a request of its own: either may be taken first."""
    a, b = nodes
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "Convoy", "priority": "flash"})
    assert r.status_code == 201, r.text
    call_id = r.json()["id"]
    answer = send_unsettled(a)  # moscow stores it and rings
    b.drain()  # its call.ringing reaches stuttgart before stuttgart settles the receipt
    assert show(a, call_id)["state"] == "ringing"
    assert delivery._settle(a.station, answer) is Outcome.SENT

    sa, sb = show(a, call_id), show(b, call_id)
    assert sa["state"] == sb["state"] == "ringing"  # the late receipt does not step it back
    assert [e["event"] for e in sa["events"]] == ["placed", "ringing", "delivered"]
    for key in ("delivered_at", "ringing_at"):
        assert sa[key] == sb[key] is not None


def test_a_reply_that_crosses_the_close_is_in_both_threads(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    # moscow replies while stuttgart, not having heard it yet, closes the call.
    assert b.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "Understood."}).status_code == 201
    assert a.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": "Done"}).status_code == 200
    a.drain()  # the close reaches moscow first
    b.drain()  # then the reply reaches stuttgart, after its close

    sa, sb = show(a, call_id), show(b, call_id)
    assert sa["state"] == sb["state"] == "closed"
    assert [(m["from"], m["text"]) for m in sa["messages"]] == [("moscow", "Understood.")]
    assert sa["messages"] == sb["messages"]
    assert sa["messages"][0]["receipt"] is not None  # stuttgart stored it and said so
    last = sa["events"][-1]  # it changed nothing at stuttgart, where the call was closed
    assert (last["event"], last["envelope_id"]) == ("ignored", sa["messages"][0]["id"])
    assert last["detail"]["kind"] == "call.say"
    assert [e["event"] for e in sa["events"]][-2] == "closed"


# The caller's statement crosses the callee's: the callee's station decides, and both end
# the same (core.calls.crossed). Each case: moscow rings; stuttgart cancels and moscow
# answers before either hears the other; then both deliver.

SAME = ("state", "picked_up_at", "declined_at", "missed_at", "cancelled_at", "closed_at", "ringing_at")


def _crossed(a: Node, b: Node, call_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    a.drain()  # the cancel reaches moscow after its answer: ignored there
    b.drain()  # moscow's answer reaches stuttgart after its cancel: taken there
    a.drain()
    sa, sb = show(a, call_id), show(b, call_id)
    assert {k: sa[k] for k in SAME} == {k: sb[k] for k in SAME}
    assert sa["cancelled_at"] is None
    assert [e["event"] for e in sa["events"]][-2:] == ["cancelled", sa["state"]]
    assert sa["events"][-1]["detail"] == {"crossed": "cancelled"}
    ignored = sb["events"][-1]
    assert (ignored["event"], ignored["detail"]["kind"]) == ("ignored", "call.cancel")
    return sa, sb


def test_a_pick_up_that_crosses_the_cancel_stands_on_both_sides(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    # Through the CLI, which says at once that an answer already given would stand.
    cancelled = " ".join(cli_table(a, monkeypatch, "cancel", call_id, columns=200).split())
    assert cancelled == (
        f"Call {call_id}: cancelled If the peer picked it up or declined it before the cancel reached "
        "it, its answer stands (the callee's station decides): `openline show` then says so."
    )
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    assert show(a, call_id)["state"] == "cancelled"  # until moscow's pick-up arrives
    sa, sb = _crossed(a, b, call_id)
    assert sa["state"] == "picked_up"
    assert sa["picked_up_by"] == sb["picked_up_by"] == "moscow:admin"
    # `openline show` says why, on both sides, and not only in --json.
    for node, why in (
        (a, "picked_up station:moscow crossed our cancel: the callee's station decides"),
        (b, "ignored station:stuttgart call.cancel: cannot cancel a call that is picked_up"),
    ):
        table = " ".join(cli_table(node, monkeypatch, "show", call_id, columns=200).replace("│", " ").split())
        assert why in table, table
        assert f"picked_up {sa['picked_up_at']} by moscow:admin" in table, table
        # And the console's call page, in its event log.
        add_user(node, "duty", Role.WATCH_OFFICER)
        c = browser(node)
        log_in(c, "duty")
        page = html.unescape(re.sub(r"<[^>]+>", " ", c.get(f"/calls/{call_id}").text))
        assert why.split(" ", 2)[2] in " ".join(page.split()), page
    # The call goes on: stuttgart can speak and close it like any other.
    assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "Still there."}).status_code == 201
    assert a.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": "Crossed"}).status_code == 200
    a.drain()
    assert show(b, call_id)["state"] == "closed"
    assert show(b, call_id)["summary"] == show(a, call_id)["summary"] == "Crossed"


def test_a_decline_that_crosses_the_cancel_stands_with_its_reason(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    assert a.api.post(f"/api/v1/calls/{call_id}/cancel").status_code == 200
    r = b.api.post(f"/api/v1/calls/{call_id}/decline", json={"reason": "Line busy with a flash call"})
    assert r.status_code == 200, r.text
    sa, sb = _crossed(a, b, call_id)
    assert sa["state"] == "declined"
    assert sa["decline_reason"] == sb["decline_reason"] == "Line busy with a flash call"


def test_a_deadline_that_passed_before_the_cancel_arrived_is_missed_on_both_sides(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """moscow's station was down when stuttgart cancelled, and came back after the answer
    deadline: its timer missed the call before the cancel reached it."""
    a, b = nodes
    call_id = place_and_ring(a, b)
    assert a.api.post(f"/api/v1/calls/{call_id}/cancel").status_code == 200
    clock.advance(61)
    assert b.expire() == 1
    sa, _ = _crossed(a, b, call_id)
    assert sa["state"] == "missed"


def test_closes_that_cross_end_with_the_callees(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    assert a.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": "Stuttgart's"}).status_code == 200
    assert b.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": "Moscow's"}).status_code == 200
    a.drain()
    b.drain()
    sa, sb = show(a, call_id), show(b, call_id)
    assert sa["state"] == sb["state"] == "closed"
    assert sa["closed_at"] == sb["closed_at"]
    assert sa["summary"] == sb["summary"] == "Moscow's"  # not the close each side ignored
    assert sa["events"][-1]["detail"] == {"crossed": "closed"}
    assert sb["events"][-1]["event"] == "ignored"


def test_a_crossed_call_proves_and_counts_the_same_on_both_sides(nodes: tuple[Node, Node]) -> None:
    """Each station's proof of the call tells the same outcome, and the two transparency
    reports count it the same: the caller's log holds its cancel and the callee's answer."""
    a, b = nodes
    call_id = place_and_ring(a, b)
    assert a.api.post(f"/api/v1/calls/{call_id}/cancel").status_code == 200
    assert b.api.post(f"/api/v1/calls/{call_id}/decline").status_code == 200
    _crossed(a, b, call_id)
    settle_ledgers(a, b)
    stories = []
    for node in (a, b):
        r = node.api.get(f"/api/v1/ledger/calls/{call_id}/proof")
        assert r.status_code == 200, r.text
        result = verify_call_proof(json.dumps(r.json()))
        assert result.ok, result
        assert result.story is not None
        stories.append(result.story.outcome)
    assert stories == ["declined", "declined"]
    period = show(a, call_id)["placed_at"][:7]
    counts = []
    for node, direction in ((a, "out"), (b, "in")):
        r = node.api.get("/api/v1/report", params={"period": period})
        assert r.status_code == 200, r.text
        figures = r.json()["lines"][0]["by_direction"][direction]
        counts.append({k: figures[k] for k in ("calls", "declined", "cancelled", "unresolved")})
    assert counts == [{"calls": 1, "declined": 1, "cancelled": 0, "unresolved": 0}] * 2


def test_a_callee_that_gainsays_its_own_answer_raises_an_alert(nodes: tuple[Node, Node]) -> None:
    """moscow picked the call up, then (restored from a backup taken while it rang, its
    timer having run out) says it was missed. No crossing explains that: stuttgart keeps
    its state, as for any statement that changes nothing, and its floor is told that the
    two stations now hold different states of the call."""
    from openline.services import outbox
    from tests.notice_docs import alerts

    a, b = nodes
    call_id = picked_up(a, b)
    a.drain()
    with b.station.tx() as tx:  # what moscow's restored timer sends
        outbox.enqueue(
            b.station, tx, b.line_id(), "call.missed", call_id, {"deadline_at": "2026-01-01T00:01:00Z"}
        )
    b.drain()
    assert show(a, call_id)["state"] == "picked_up"
    (alert,) = alerts(a, "call_states_differ")
    assert alert["detail"] == {
        "call": call_id,
        "peer": "moscow",
        "priority": show(a, call_id)["priority"],  # for `openline alerts`, as the board shows it
        "ours": "picked_up",
        "theirs": "call.missed",
    }
    # A crossing raises nothing: moscow's close crossing stuttgart's close.
    a.api.post(f"/api/v1/calls/{call_id}/close", json={})
    b.api.post(f"/api/v1/calls/{call_id}/close", json={})
    a.drain()
    b.drain()
    assert len(alerts(a, "call_states_differ")) == 1
    assert alerts(b, "call_states_differ") == []
