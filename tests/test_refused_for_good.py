"""An envelope the peer will not apply takes its sequence number with it.

The receiver refuses it for good with a signed refusal, keeps it, and applies what comes
behind it; the sender settles the refusal as it settles a receipt. Before, the refused
envelope stayed in the sender's outbox and everything after it waited (`sequence_gap`)
for good: a line that one bad message could close.

The bodies here are what another version of OpenLine could send: a field this one does
not know, or text a stricter receiver's rule refuses (`_stricter`).
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
from typing import Any

import pytest
from sqlalchemy import select, update

from openline.adapters.schema import envelopes
from openline.adapters.schema import notices as notices_table
from openline.core.clock import FakeClock, rfc3339
from openline.core.envelope import make_refusal, parse_envelope
from openline.core.evidence import verify_proof
from openline.errors import Code, EnvelopeRefused, NotFound
from openline.services import calls, delivery, evidence, notice_expiry, notices, outbox
from openline.services.accounts import Role
from tests.inproc import Node, picked_up, send_unsettled, settle_ledgers, show
from tests.notice_docs import HOUR, act, alerts, cli_table, ledger_entries, send, soon, square
from tests.notice_docs import show as show_notice
from tests.test_console import add_user, browser, log_in
from tests.test_inbox_refusals import post_signed

ODD = {"text": "odd", "lang": "en", "colour": "red"}  # a field this version does not know


def _say_as_another_version(node: Node, call_id: str, body: dict[str, Any]) -> str:
    """Queue a call.say with `body` as it is, past this version's own checks."""
    with node.station.tx() as tx:
        return outbox.enqueue(node.station, tx, node.line_id(), "call.say", call_id, body).id


def _refused_in_flight(a: Node, b: Node) -> tuple[str, delivery.Answer]:
    """A picked-up call, and a's batch of one message another version wrote, sent and
    answered by b with its signed refusal, not yet settled."""
    call_id = picked_up(a, b)
    a.drain()
    _say_as_another_version(a, call_id, ODD)
    return call_id, send_unsettled(a)


def _stricter(monkeypatch: pytest.MonkeyPatch, module: Any, field: str) -> None:
    """The receiver refuses a body whose `field` holds "ZZZ": a rule a newer version might
    have that the sender's version did not."""
    real = module.validate_body

    def validate_body(kind: str, body: dict[str, Any], *args: Any) -> None:
        if "ZZZ" in str(body.get(field, "")):
            raise EnvelopeRefused(Code.MALFORMED, f"envelope body: {field} breaks a newer rule")
        real(kind, body, *args)

    monkeypatch.setattr(module, "validate_body", validate_body)


def test_a_refused_message_does_not_hold_the_ones_behind_it(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    a.drain()
    calls.say(a.station, "admin", call_id, "before")
    bad = _say_as_another_version(a, call_id, ODD)
    calls.say(a.station, "admin", call_id, "after")
    a.drain()

    # Everything left the outbox, and the line is up: no error, no backoff.
    line = a.line()
    assert (line.retry_at, line.last_error) == (None, None)
    assert a.api.get("/api/v1/lines").json()[0]["outbox_depth"] == 0
    theirs, ours = show(b, call_id)["messages"], show(a, call_id)["messages"]
    assert [(m["text"], m["refused"]) for m in theirs] == [
        ("before", None),
        (None, "malformed: envelope body of call.say: unknown fields ['colour']"),
        ("after", None),
    ]
    # The sender keeps its own text, and the peer's signed refusal as the message's receipt.
    assert [(m["text"], m["refused"] is not None) for m in ours] == [
        ("before", False),
        ("odd", True),
        ("after", False),
    ]
    refused = ours[1]
    assert refused["receipt"]["type"] == "refusal"
    assert refused["receipt"]["from"] == "moscow"
    assert refused["received_at"] is None
    assert [m["id"] for m in ours] == [m["id"] for m in theirs]
    # Both floors are told, and the sender's call says so in its event log.
    (mine,) = alerts(a, "envelope_refused")
    (their,) = alerts(b, "envelope_refused")
    assert (mine["subject"], mine["detail"]["direction"], mine["detail"]["peer"]) == (bad, "out", "moscow")
    assert (their["subject"], their["detail"]["direction"], their["detail"]["peer"]) == (
        bad,
        "in",
        "stuttgart",
    )
    events = [e for e in show(a, call_id)["events"] if e["event"] == "refused"]
    assert [(e["envelope_id"], e["actor"], e["detail"]["code"]) for e in events] == [
        (bad, "station:moscow", "malformed")
    ]
    # The ledgers: the receiver's refusal and the sender's receipt of it, by digest.
    (took,) = ledger_entries(b, "envelope.refused")
    (got,) = ledger_entries(a, "refusal.received")
    assert took["envelope"] == got["envelope"] == bad
    assert took["refusal"] == got["refusal"]


def test_a_refused_envelope_sent_again_is_refused_again_and_changes_nothing(
    nodes: tuple[Node, Node],
) -> None:
    """A retry (the sender crashed before settling) gets the same signed refusal, and
    does not take another sequence number."""
    a, b = nodes
    _, first = _refused_in_flight(a, b)
    (result,) = first.results
    assert result["status"] == "refused"
    before = b.snapshot()
    (wire,) = [e.to_json() for e in first.sent]
    again = post_signed(a, b, {"envelopes": [wire]}).json()["results"][0]
    assert again == {**result, "index": 0}
    assert b.snapshot() == before


def test_a_refusal_whose_signature_fails_settles_nothing(nodes: tuple[Node, Node]) -> None:
    """Only the peer's signed refusal takes an envelope out of the outbox: a forged or
    altered one leaves it waiting, and the line backs off as for any failure."""
    a, b = nodes
    _, answer = _refused_in_flight(a, b)
    forged = copy.deepcopy(answer.results[0])
    forged["refusal"]["error"]["detail"] = "something else"
    answer.results[0] = forged
    assert delivery._finish(a.station, answer) is delivery.Outcome.FAILED
    assert "bad refusal" in a.line().last_error
    assert a.api.get("/api/v1/lines").json()[0]["outbox_depth"] == 1
    assert alerts(a, "envelope_refused") == []

    # One signed by us, not by the peer, is no better.
    (env,) = answer.sent
    stored_at = forged["refusal"]["stored_at"]
    ours = make_refusal(
        a.station.keys, parse_envelope(env.to_json()), stored_at, EnvelopeRefused(Code.MALFORMED, "x")
    )
    answer.results[0] = {**forged, "refusal": {**ours, "from": "moscow", "to": "stuttgart"}}
    assert delivery._finish(a.station, answer) is delivery.Outcome.FAILED
    assert a.api.get("/api/v1/lines").json()[0]["outbox_depth"] == 1


def test_a_call_whose_placing_was_refused_stays_placed_and_cancels_alone(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    _stricter(monkeypatch, calls, "subject")
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "ZZZ", "priority": "flash"})
    call_id = r.json()["id"]
    a.drain()
    call = show(a, call_id)
    assert call["state"] == "placed"
    assert call["refused"] == "malformed: envelope body: subject breaks a newer rule"
    # The peer holds no call, and says why rather than as if it had never been sent.
    r = b.api.get(f"/api/v1/calls/{call_id}")
    assert r.status_code == 404
    assert r.json()["detail"] == (
        f"no call with id {call_id!r}: we refused stuttgart's call.place envelope about it when it "
        "arrived (malformed: envelope body: subject breaks a newer rule); the sender's proof of it "
        "carries our signed refusal"
    )
    # The peer took no call, so cancelling it sends nothing for the peer to refuse again.
    assert a.api.post(f"/api/v1/calls/{call_id}/cancel").status_code == 200
    assert show(a, call_id)["state"] == "cancelled"
    assert a.api.get("/api/v1/lines").json()[0]["outbox_depth"] == 0
    a.drain()
    assert len(alerts(a, "envelope_refused")) == 1
    # A call placed next is taken as usual.
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "Fine", "priority": "flash"})
    a.drain()
    assert show(b, r.json()["id"])["state"] == "ringing"


def test_a_notice_whose_sending_was_refused_says_so_and_withdraws_alone(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    a, b = nodes
    _stricter(monkeypatch, notices, "text")
    notice = send(a, "moscow", soon(a, 48.78, 9.18, text="ZZZ"))
    a.drain()
    mine = show_notice(a, notice["id"])
    assert mine["state"] == "sent"
    assert mine["refused"] == "malformed: envelope body: text breaks a newer rule"
    why = (
        "we refused stuttgart's notice.send envelope about it when it arrived (malformed: envelope "
        "body: text breaks a newer rule); the sender's proof of it carries our signed refusal"
    )
    r = b.api.get(f"/api/v1/notices/{notice['id']}")
    assert (r.status_code, r.json()["detail"]) == (404, f"no notice with id {notice['id']!r}: {why}")
    with pytest.raises(NotFound) as proving:  # `openline prove`
        evidence.proof(b.station, notice["id"])
    assert str(proving.value) == f"no call or notice with id {notice['id']!r}: {why}"
    shown = " ".join(cli_table(a, monkeypatch, "notice", "show", notice["id"], columns=200).split())
    assert "refused by moscow's station malformed: envelope body: text breaks a newer rule" in shown
    (entry,) = ledger_entries(a, "notice.refused")
    assert (entry["notice"], entry["code"]) == (notice["id"], "malformed")
    # Nobody at the peer can answer it: its deadline passes without an alarm.
    clock.advance(2 * 3600)
    assert notices.audit_deadlines(a.station) == 0
    assert alerts(a, "notice_unacknowledged") == []
    r = a.api.post(f"/api/v1/notices/{notice['id']}/withdraw")
    assert r.status_code == 200, r.text
    assert show_notice(a, notice["id"])["state"] == "withdrawn"
    assert a.api.get("/api/v1/lines").json()[0]["outbox_depth"] == 0
    # The next notice is delivered.
    other = send(a, "moscow", soon(a, 10.0, 10.0, text="fine"))
    a.drain()
    assert show_notice(b, other["id"])["state"] == "delivered"


def test_an_older_station_refusing_without_a_refusal_still_holds_the_envelope(
    nodes: tuple[Node, Node],
) -> None:
    """A refusal with no signed refusal (an older peer, or any refusal before the content:
    a gap, a bad signature) leaves the envelope waiting, as before."""
    a, b = nodes
    _, answer = _refused_in_flight(a, b)
    answer.results[0] = {k: v for k, v in answer.results[0].items() if k != "refusal"}
    assert delivery._finish(a.station, answer) is delivery.Outcome.FAILED
    assert "refused: malformed" in a.line().last_error
    with a.station.db.read() as conn:
        row = conn.execute(
            select(envelopes).where(envelopes.c.direction == "out").order_by(envelopes.c.seq.desc())
        ).first()
    assert (row.delivered_at, row.refused) == (None, None)
    assert json.loads(row.wire)["header"]["kind"] == "call.say"


def test_proofs_of_both_stations_show_the_refusal(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver's ledger logs the refusal and the sender's the signed refusal it got
    back; each station's proof of the call (or the notice) verifies, carries the peer's
    signed refusal beside its receipts, and tells the refusal in the story."""
    a, b = nodes
    call_id = picked_up(a, b)
    a.drain()
    bad = _say_as_another_version(a, call_id, ODD)
    calls.say(a.station, "admin", call_id, "after")
    a.drain()
    _stricter(monkeypatch, notices, "text")
    notice = send(a, "moscow", soon(a, 48.78, 9.18, text="ZZZ"))
    a.drain()
    settle_ledgers(a, b)

    for node in (a, b):
        proof = node.api.get(f"/api/v1/ledger/calls/{call_id}/proof").json()
        result = verify_proof(json.dumps(proof))
        assert result.ok, [str(f) for f in result.failures]
        assert result.story is not None
        (told,) = [e for e in result.story.events if e.event == "refused"]
        assert "moscow refused" in told.text, told
        assert "malformed" in told.text, told
    sender = a.api.get(f"/api/v1/ledger/calls/{call_id}/proof").json()
    assert [r["envelope"] for r in sender["receipts"] if r["type"] == "refusal"] == [bad]

    proof = a.api.get(f"/api/v1/ledger/notices/{notice['id']}/proof").json()
    result = verify_proof(json.dumps(proof))
    assert result.ok, [str(f) for f in result.failures]
    assert [r["type"] for r in proof["receipts"]] == ["refusal"]

    # A refusal altered in the proof fails it, as an altered receipt does.
    doctored = copy.deepcopy(sender)
    (refusal,) = [r for r in doctored["receipts"] if r["type"] == "refusal"]
    refusal["error"]["code"] = "replay"
    assert not verify_proof(json.dumps(doctored)).ok
    # A notice proof without its refusal fails as well.
    bare = {**proof, "receipts": []}
    failures = [str(f) for f in verify_proof(json.dumps(bare)).failures]
    assert failures == [
        f"entry {_index(proof, 'refusal.received')} (refusal.received): the peer's signed refusal "
        f"for envelope '{proof['receipts'][0]['envelope']}' is not in the proof"
    ]
    # So does one left out: its refusal.received entry says there was one.
    dropped = {**sender, "receipts": [r for r in sender["receipts"] if r["type"] != "refusal"]}
    failures = [str(f) for f in verify_proof(json.dumps(dropped)).failures]
    assert failures == [
        f"entry {_index(sender, 'refusal.received')} (refusal.received): the peer's signed refusal "
        f"for envelope '{bad}' is not in the proof"
    ]


def _index(proof: dict[str, Any], entry_type: str) -> int:
    (index,) = [
        e["index"] for e in proof["entries"] if json.loads(base64.b64decode(e["entry"]))["type"] == entry_type
    ]
    return int(index)


def test_the_cli_and_the_console_show_what_was_refused(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    a.drain()
    _say_as_another_version(a, call_id, ODD)
    a.drain()
    _stricter(monkeypatch, calls, "subject")
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "ZZZ", "priority": "flash"})
    never = r.json()["id"]
    a.drain()
    why = "malformed: envelope body of call.say: unknown fields ['colour']"

    theirs = " ".join(cli_table(b, monkeypatch, "show", call_id, columns=200).split())
    assert f"✗ (not shown) refused here: {why}" in theirs
    ours = " ".join(cli_table(a, monkeypatch, "show", call_id, columns=200).split())
    assert f"✗ odd refused by moscow: {why}" in ours
    assert "Refused by moscow's station" in cli_table(a, monkeypatch, "show", never, columns=200)
    listed = cli_table(a, monkeypatch, "calls", columns=200)
    (row,) = [line for line in listed.splitlines() if never in line]
    assert "placed (refused)" in row

    for node, says in ((a, f"✗ refused by moscow: {why}"), (b, f"✗ refused here: {why}")):
        client = browser(node)
        add_user(node, "wo", Role.WATCH_OFFICER)
        assert log_in(client, "wo").status_code == 303
        page = html.unescape(client.get(f"/calls/{call_id}").text)
        assert says in " ".join(page.split())
    page = html.unescape(client.get(f"/calls/{call_id}").text)
    assert "(not shown: refused)" in page
    page = browser_page(a, f"/calls/{never}")
    assert "data-refused-call" in page
    assert "data-undelivered" not in page
    # The board's alert says what was refused, and links the call.
    board = " ".join(re.sub(r"<[^>]+>", " ", browser_page(a, "/")).split())
    assert f"envelope_refused · call.say to moscow, malformed, about call {call_id}" in board
    assert f'<a href="/calls/{call_id}">' in browser_page(a, "/")


def browser_page(node: Node, path: str) -> str:
    client = browser(node)
    assert log_in(client, "wo").status_code == 303
    return html.unescape(client.get(path).text)


def test_an_amendment_that_meets_a_notice_expired_here_is_applied(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """Amended before its end while the line was down, the old version expired at the
    receiver before the amendment arrived: the receiver takes the amendment, as the sender
    did, instead of answering the whole batch with `illegal_transition` for ever."""
    a, b = nodes
    now = a.station.clock.now()
    first = send(a, "moscow", square(48.78, 9.18, rfc3339(now + HOUR) or "", rfc3339(now + 2 * HOUR) or ""))
    a.drain()
    assert a.transport is not None
    a.transport.down = True
    clock.advance(90 * 60)
    later = square(48.78, 9.18, rfc3339(now + 3 * HOUR) or "", rfc3339(now + 4 * HOUR) or "")
    second = send(a, "moscow", later, amends=first["id"])
    clock.advance(60 * 60)  # past the first version's end
    assert notice_expiry.expire_due(b.station) == 1
    a.transport.down = False
    a.drain()
    assert (show_notice(b, first["id"])["state"], show_notice(b, second["id"])["state"]) == (
        "amended",
        "delivered",
    )
    assert show_notice(a, first["id"])["state"] == "amended"
    assert a.line().last_error is None


def test_a_refused_amendment_leaves_the_old_version_in_force_on_both_stations(
    nodes: tuple[Node, Node],
) -> None:
    """What the refused envelope did at the sender is undone: the version it replaced
    there is in force again, as it is at the peer, which never took the amendment."""
    a, b = nodes
    first = send(a, "moscow", soon(a, 48.78, 9.18))
    a.drain()
    act(b, first["id"], "acknowledge")
    b.drain()
    with b.station.tx() as tx:  # the two disagree: moscow holds it withdrawn
        tx.conn.execute(
            update(notices_table).where(notices_table.c.id == first["id"]).values(state="withdrawn")
        )
    second = send(a, "moscow", soon(a, 48.79, 9.18), amends=first["id"])
    assert show_notice(a, first["id"])["state"] == "amended"
    a.drain()
    refused = show_notice(a, second["id"])
    assert refused["refused"].startswith("illegal_transition: notice ")
    assert show_notice(a, first["id"])["state"] == "acknowledged"
    (entry,) = ledger_entries(a, "notice.reinstated")
    assert (entry["notice"], entry["undone"], entry["state"]) == (first["id"], "amended", "acknowledged")
    assert a.line().last_error is None


def test_a_refusal_with_control_characters_is_kept_spelled_out(nodes: tuple[Node, Node]) -> None:
    """The peer's words in its refusal may hold NUL or ESC: kept spelled out (PostgreSQL
    refuses NUL in text, and a terminal obeys ESC), the signed refusal itself intact."""
    a, b = nodes
    call_id, answer = _refused_in_flight(a, b)
    (env,) = answer.sent
    refusal = make_refusal(
        b.station.keys,
        env,
        answer.results[0]["refusal"]["stored_at"],
        EnvelopeRefused(Code.MALFORMED, "a\x00b\x1b[2J"),
    )
    answer.results[0] = {**answer.results[0], "error": refusal["error"], "refusal": refusal}
    assert delivery._finish(a.station, answer) is delivery.Outcome.SENT
    (message,) = [m for m in show(a, call_id)["messages"] if m["refused"]]
    assert message["refused"] == "malformed: a\\x00b\\x1b[2J"
    assert message["receipt"] == refusal
