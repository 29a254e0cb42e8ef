"""Suspending a line: an administrator who stops trusting the peer (its key may be stolen)
suspends the line, and from that commit nothing the peer signs is taken, nothing is sent
to it and nobody here can act on the line; the audit trail and the ledger say who, when
and why; resuming brings the line back and what waited is delivered. Bad requests are
refused with nothing changed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from openline.adapters.schema import calls as calls_table
from openline.adapters.transport import PeerRefused
from openline.core.clock import parse_rfc3339
from openline.core.evidence import _out_of_order, _Proven, verify_call_proof
from openline.services import delivery, line_health, lines, watch
from tests.inproc import Node, picked_up, place_and_ring, settle_ledgers
from tests.inproc import show as show_call
from tests.notice_docs import HOUR, circle, cli, cli_json, cli_table, ledger_entries, send

REASON = "stuttgart's signing key may have been copied (incident 4471)"


def _line(node: Node) -> dict[str, Any]:
    (line,) = node.api.get("/api/v1/lines").json()
    return dict(line)


def _suspend(node: Node, peer: str, reason: str = REASON) -> dict[str, Any]:
    r = node.api.post(f"/api/v1/lines/{peer}/suspend", json={"reason": reason})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _say(node: Node, call_id: str, text: str) -> Any:
    return node.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": text})


def test_a_suspended_line_takes_nothing_sends_nothing_and_resumes(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    assert _say(b, call_id, "queued before the suspension").status_code == 201  # not delivered yet

    line = _suspend(b, "stuttgart")
    assert line["state"] == "suspended"
    assert line["suspended"]["by"] == "admin"
    assert line["suspended"]["reason"] == REASON
    assert line["outbox_depth"] == 1

    # What stuttgart signs is refused whole, before anything is written: its batch...
    assert _say(a, call_id, "from the suspended side").status_code == 201
    before = b.snapshot()
    assert a.deliver() is not delivery.Outcome.SENT
    assert b.snapshot() == before
    mine = _line(a)
    assert mine["outbox_depth"] == 1  # kept, to be sent once moscow resumes
    assert "line_suspended" in mine["last_error"]
    assert "suspended its line with 'stuttgart'" in mine["last_error"]
    # ... and its handshake.
    assert a.transport is not None
    with pytest.raises(PeerRefused) as refused:
        lines.initiate_handshake(a.station, a.transport, "moscow")
    assert refused.value.peer_code == "line_suspended"
    assert b.snapshot() == before

    # moscow sends nothing, and its people cannot act on the line.
    assert b.deliver(force=True) is delivery.Outcome.IDLE
    assert _line(b)["outbox_depth"] == 1
    for r in (
        b.api.post("/api/v1/calls", json={"peer": "stuttgart", "subject": "Anyone there?"}),
        _say(b, call_id, "refused"),
        b.api.post(f"/api/v1/calls/{call_id}/close", json={}),
    ):
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "line_suspended"
        assert "line resume stuttgart" in r.json()["detail"]
    assert b.snapshot() == before

    # A suspended line is not a stalled one: moscow raises no line_down; stuttgart does.
    a.station.clock.advance(2 * HOUR)  # type: ignore[attr-defined]
    assert line_health.audit_lines(b.station) == 0
    assert line_health.audit_lines(a.station) == 1

    # In the audit trail with the reason, and in the ledger with the key no longer trusted.
    audit = b.api.get("/api/v1/audit").json()
    assert any(x["action"] == "line.suspend" and x["target"] == f"stuttgart: {REASON}" for x in audit)
    (entry,) = ledger_entries(b, "line.suspended")
    assert (entry["peer"], entry["actor"], entry["was"]) == ("stuttgart", "admin", "active")
    assert entry["fingerprint"] == a.station.card.fingerprint

    # Resumed: active again, a handshake at once, and what waited on both sides delivered.
    r = b.api.post("/api/v1/lines/stuttgart/resume")
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["handshake"], r.json()["suspended"]) == ("active", "ok", None)
    b.drain()
    a.deliver(force=True)
    a.drain()
    texts = [m["text"] for m in show_call(b, call_id)["messages"]]
    assert texts == ["queued before the suspension", "from the suspended side"]
    assert [m["text"] for m in show_call(a, call_id)["messages"]] == texts
    assert _line(a)["outbox_depth"] == _line(b)["outbox_depth"] == 0
    (entry,) = ledger_entries(b, "line.resumed")
    assert (entry["peer"], entry["state"]) == ("stuttgart", "active")


def test_notices_wait_for_a_resumed_line(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    now = a.station.clock.now()
    notice_id = send(a, "moscow", circle(48.0, 9.0, 500, now + HOUR, now + 2 * HOUR))["id"]
    a.drain()
    _suspend(b, "stuttgart")
    before = b.snapshot()
    r = b.api.post(f"/api/v1/notices/{notice_id}/acknowledge")
    assert (r.status_code, r.json()["code"]) == (409, "line_suspended")
    r = b.api.post(
        "/api/v1/notices",
        json={"peer": "stuttgart", "notice": circle(10.0, 9.0, 500, now + HOUR, now + 2 * HOUR)},
    )
    assert (r.status_code, r.json()["code"]) == (409, "line_suspended")
    assert b.snapshot() == before


def test_bad_suspensions_are_refused_and_change_nothing(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    before = b.snapshot()
    for path, body, status, code in (
        ("/api/v1/lines/nobody/suspend", {"reason": "x"}, 404, "not_found"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": ""}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": "\u200b\u200b"}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": "x" * 1001}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": "bell \x07"}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": "real\rFAKE: resumed"}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": "one\ntwo"}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": "tab\there"}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": "x\u2028y"}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/suspend", {"reason": "x", "for": "ever"}, 422, "invalid_input"),
        ("/api/v1/lines/stuttgart/resume", None, 409, "conflict"),
    ):
        r = b.api.post(path, json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), (path, body, r.text)
        assert b.snapshot() == before, (path, body)
    _suspend(b, "stuttgart")
    suspended = b.snapshot()
    r = b.api.post("/api/v1/lines/stuttgart/suspend", json={"reason": "again"})
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    assert "suspended already" in r.json()["detail"]
    assert b.snapshot() == suspended


def test_the_cli_suspends_lists_and_resumes(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, b = nodes
    done = cli_json(b, monkeypatch, "line", "suspend", "stuttgart", "--reason", REASON)
    assert (done["state"], done["suspended"]["reason"]) == ("suspended", REASON)
    table = cli_table(b, monkeypatch, "lines", columns=200)
    assert "suspended" in table
    assert "Line with stuttgart suspended" in table
    assert REASON in table
    result = cli(b, monkeypatch, "call", "stuttgart", "--subject", "Anyone?")
    assert result.exit_code != 0
    assert "line_suspended" in result.output
    back = cli_json(b, monkeypatch, "line", "resume", "stuttgart")
    assert (back["state"], back["handshake"]) == ("active", "ok")
    assert "suspended" not in cli_table(b, monkeypatch, "lines", columns=200).replace("Line with", "")


def _paging(node: Node, call_id: str) -> Any:
    with node.station.db.read() as conn:
        return conn.execute(
            select(calls_table.c.next_escalation_at).where(calls_table.c.id == call_id)
        ).scalar_one()


def test_a_suspended_line_s_calls_page_nobody_until_it_is_resumed(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody may pick up a call from a peer whose line is suspended: it stops paging (and
    no escalation_stalled says otherwise), and pages again from where it was once the
    line is resumed. One that rings out meanwhile is missed without paging."""
    a, b = nodes
    first = place_and_ring(a, b, "Rings across the suspension")
    second = place_and_ring(a, b, "Rings out while suspended")
    assert _paging(b, first) is not None
    _suspend(b, "stuttgart")
    assert _paging(b, first) is None
    b.station.clock.advance(30)  # type: ignore[attr-defined]
    assert watch.escalate_due(b.station) == 0
    assert watch.audit_escalations(b.station) == 0
    assert b.api.post(f"/api/v1/calls/{first}/pickup").json()["code"] == "line_suspended"

    # The second call's deadline passes while the line is suspended: missed, paging nobody.
    with b.station.tx() as tx:
        tx.conn.execute(update(calls_table).where(calls_table.c.id == second).values(deadline_at=tx.now))
    assert b.expire() == 1
    assert show_call(b, second)["state"] == "missed"
    assert [x for x in b.api.get("/api/v1/alerts").json() if x["kind"] == "missed_call"] == []

    r = b.api.post("/api/v1/lines/stuttgart/resume")
    assert r.status_code == 200, r.text
    assert _paging(b, first) == b.station.clock.now()
    assert watch.escalate_due(b.station) >= 1  # pages again, at once
    assert "escalated" in [e["event"] for e in show_call(b, first)["events"]]
    # Each call's event log says why it stopped paging, and who started it again: its
    # silence would otherwise read as a fault.
    log = [(e["event"], e["actor"], e.get("detail")) for e in show_call(b, first)["events"]]
    held = log.index(("paging_held", "admin", {"why": "line suspended"}))
    resumed = log.index(("paging_resumed", "admin", {"why": "line resumed"}))
    assert held < resumed < max(i for i, e in enumerate(log) if e[0] == "escalated")
    second_log = [e["event"] for e in show_call(b, second)["events"]]
    assert "paging_held" in second_log
    assert "paging_resumed" not in second_log  # missed by then
    shown = " ".join(cli_table(b, monkeypatch, "show", first, columns=200).split())
    assert "paging_held" in shown
    assert "line suspended" in shown  # the event log's why, not only in --json
    kinds = [e["type"] for e in ledger_entries(b, "call.paging_")]
    assert kinds == ["call.paging_held", "call.paging_held", "call.paging_resumed"]


def test_a_proof_that_waits_for_a_suspended_peer_says_so(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    settle_ledgers(a, b)
    call_id = place_and_ring(a, b, "After the last cosigned checkpoint")
    _suspend(b, "stuttgart")
    r = b.api.get(f"/api/v1/ledger/calls/{call_id}/proof")
    assert r.status_code == 409, r.text
    assert "stuttgart will not while its line is suspended here" in r.json()["detail"]
    assert "try again" not in r.json()["detail"]


@pytest.mark.parametrize(
    ("reason", "said"), [("why\r\nmore", "a line break at position 4"), ("a\tb", "a tab at position 2")]
)
def test_a_reason_over_two_lines_is_refused_in_words(
    nodes: tuple[Node, Node], reason: str, said: str
) -> None:
    """A browser sends a line break typed in the console's form as CR LF: the refusal
    names it as the officer typed it, not as `\\x0d`."""
    _, b = nodes
    r = b.api.post("/api/v1/lines/stuttgart/suspend", json={"reason": reason})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == f"reason must be one line of text, without tabs or line breaks; got {said}"


def test_a_proof_says_when_a_message_held_by_the_suspension_was_taken(nodes: tuple[Node, Node]) -> None:
    """What the peer sent while its line was suspended is dated by the peer's own header,
    inside the suspension; the station takes it only once the line is resumed, and the
    proof's story says when (`stored_at` of its envelope.received entry)."""
    a, b = nodes
    call_id = picked_up(a, b)
    _suspend(b, "stuttgart")
    said = _say(a, call_id, "Sent while moscow no longer trusted our key")
    assert said.status_code == 201, said.text
    assert a.deliver() is not delivery.Outcome.SENT  # refused whole: line_suspended
    assert show_call(b, call_id)["messages"] == []
    b.station.clock.advance(300)  # type: ignore[attr-defined]
    r = b.api.post("/api/v1/lines/stuttgart/resume")
    assert r.status_code == 200, r.text
    b.drain()
    a.deliver(force=True)
    a.drain()
    (message,) = show_call(b, call_id)["messages"]
    settle_ledgers(a, b)
    r = b.api.get(f"/api/v1/ledger/calls/{call_id}/proof")
    assert r.status_code == 200, r.text
    result = verify_call_proof(json.dumps(r.json()))
    assert result.ok, result
    assert result.story is not None
    (received,) = [e for e in result.story.events if e.event == "message_received"]
    assert received.at == message["time"]  # the peer's time, inside the suspension
    assert "; stored here at " in received.text
    taken = received.text.rsplit(" ", 1)[-1]
    assert taken == message["received_at"]  # the receipt moscow gave, once resumed
    assert parse_rfc3339(taken) - parse_rfc3339(received.at) >= 300 * 1_000_000
    # The rest of the story, taken at once, says nothing more.
    assert all("stored here at" not in e.text for e in result.story.events if e is not received)


def test_an_envelope_taken_late_is_not_read_only_as_a_clock_set_back() -> None:
    """Entries in log order: our own at 10:05, then the peer's message stamped 10:00 by the
    peer but stored here at 10:06 (it waited out a suspension). The note no longer blames
    only a clock."""
    ours = {"type": "call.picked_up", "at": "2026-11-29T10:05:00.000000Z", "call": "c"}
    theirs = {"type": "envelope.received", "at": "2026-11-29T10:00:00.000000Z", "envelope": "e"}
    said = {"type": "call.message_received", "at": "2026-11-29T10:00:00.000000Z", "envelope": "e"}
    log = [_Proven(1, ours), _Proven(2, theirs), _Proven(3, said)]
    (note,) = _out_of_order(log)  # an older release's entry: when it came is not said
    assert "its envelope is the peer's, stamped by the peer: it was taken here later than that" in note
    assert "(an entry of a release before 2026-11-29 does not say when it was stored)" in note
    mine = [_Proven(1, ours), _Proven(2, {**said, "envelope": "ours", "type": "call.closed"})]
    (note,) = _out_of_order(mine)  # not the peer's: only a clock
    assert note.endswith("a clock was set between them, or they are two stations' clocks")
    theirs["stored_at"] = "2026-11-29T10:06:00.000000Z"  # said when it came: both readings
    (note,) = _out_of_order(log)
    assert "its envelope, stamped by the peer, was stored here at 2026-11-29T10:06:00.000000Z" in note
    assert "taken later than the peer stamped it (the line down or suspended), or the peer's clock" in note
