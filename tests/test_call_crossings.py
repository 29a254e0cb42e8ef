"""Statements that cross on the line: each side acts before hearing the other's latest.
Both keep and receipt what the other said, so the two threads stay the same, and the
event log records what changed nothing."""

from __future__ import annotations

from openline.services import delivery
from openline.services.delivery import Outcome
from tests.inproc import Node, place_and_ring, send_unsettled, show


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
    call_id = place_and_ring(a, b)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    b.drain()
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
