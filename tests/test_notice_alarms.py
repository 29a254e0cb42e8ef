"""A notice's alarms stop paging when their cause has gone, on both watch floors: an
unanswered notice answered late, a conflict whose notice was withdrawn or amended away.
The alerts stay open (what happened is for the watch to see) and say why they are quiet;
the conflicts stay recorded and say whether they still hold."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from openline.adapters.schema import alerts as alerts_table
from openline.core.clock import FakeClock
from openline.core.evidence import verify_notice_proof
from openline.services import alert_paging, notices
from tests.inproc import Node, settle_ledgers
from tests.notice_docs import act, alerts, cli_table, ledger_entries, send, show, soon
from tests.test_console_notices_actions import _officer, _row


def _paging(node: Node, kind: str) -> list[tuple[Any, Any]]:
    return [(x["paging"], x["detail"].get("over")) for x in alerts(node, kind)]


def test_a_notice_answered_after_its_deadline_pages_nobody_any_more(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: Any
) -> None:
    a, b = nodes
    late = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    clock.advance(3601)  # past the line's notice deadline, an hour
    for node in (a, b):
        assert notices.audit_deadlines(node.station) == 1
        assert alert_paging.page_due(node.station) == 1
        [(paging, over)] = _paging(node, "notice_unacknowledged")
        assert paging is not None, node.name
        assert over is None
        # In the ledger, once, as a call's miss is: provable later, not only an alert.
        assert notices.audit_deadlines(node.station) == 1
        [entry] = ledger_entries(node, "notice.unanswered")
        waiting = "peer" if node is a else "us"
        assert (entry["notice"], entry["actor"], entry["waiting_for"]) == (late["id"], "system", waiting)
        assert entry["deadline_at"] == show(node, late["id"])["deadline_at"]
    act(b, late["id"], "acknowledge")
    b.drain()
    settle_ledgers(a, b)
    for node in (a, b):  # and in the notice's proof, after its late acknowledgement
        r = node.api.get(f"/api/v1/ledger/notices/{late['id']}/proof")
        assert r.status_code == 200, r.text
        result = verify_notice_proof(json.dumps(r.json()))
        assert result.ok, result
        listed = [x["entry"]["type"] for x in result.about or []]
        assert listed.index("notice.unanswered") < listed.index("notice.acknowledged"), listed
    for node in (a, b):
        [alert] = alerts(node, "notice_unacknowledged")
        assert alert["paging"] is None, node.name
        assert alert["detail"]["over"]["why"] == "the notice is acknowledged"
        assert alert["acknowledged_at"] is None  # still open: the deadline was missed
    clock.advance(3600)
    for node in (a, b):
        assert alert_paging.page_due(node.station) == 0, node.name
        assert notices.audit_deadlines(node.station) == 0
    # The watch sees why it is quiet: in `openline alerts` and on the board.
    table = " ".join(cli_table(b, monkeypatch, "alerts", columns=200).split())
    assert "open, over: the notice is acknowledged" in table
    c, _ = _officer(b)
    [item] = re.findall(r'<li class="warn" data-alert=.*?</li>', c.get("/").text, re.S)
    assert "notice_unacknowledged" in item
    assert "over: the notice is acknowledged" in item
    assert "data-paging" not in item


def test_a_conflict_ends_when_its_notice_is_withdrawn_or_amended_away(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    a, b = nodes
    first = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    withdrawn = send(b, "stuttgart", soon(b, 48.005, 9.005))
    moved = send(b, "stuttgart", soon(b, 47.984, 8.984))  # overlaps the first only
    b.drain()
    for node in (a, b):
        assert [c["active"] for c in show(node, first["id"])["conflicts"]] == [True, True]
        assert [over for _, over in _paging(node, "notice_conflict")] == [None, None]
    gone = act(b, withdrawn["id"], "withdraw")
    away = send(b, "stuttgart", soon(b, 49.0, 9.0), amends=moved["id"])  # 110 km north: clear
    assert away["conflicts"] == []
    b.drain()
    for node in (a, b):
        ended = {c["other_notice"]: c for c in show(node, first["id"])["conflicts"]}
        assert ended[withdrawn["id"]]["active"] is False
        assert ended[withdrawn["id"]]["ended"] == f"notice {withdrawn['id']} is withdrawn"
        assert ended[moved["id"]]["ended"] == f"notice {moved['id']} is amended"
        whys = {over["why"] for paging, over in _paging(node, "notice_conflict") if paging is None}
        assert whys == {f"notice {moved['id']} is amended", f"notice {withdrawn['id']} is withdrawn"}, (
            node.name
        )
        assert alert_paging.page_due(node.station) == 0
    # `openline notices` and the notices page count the conflicts that still hold, and
    # say how many ended; `notice show` says why each ended.
    [listed] = [
        row for row in cli_table(a, monkeypatch, "notices", columns=300).splitlines() if first["id"] in row
    ]
    assert "(2 ended)" in listed
    shown = " ".join(cli_table(a, monkeypatch, "notice", "show", first["id"], columns=300).split())
    assert (
        f"conflict, ended (notice {withdrawn['id']} is withdrawn, at {gone['withdrawn_at']}): "
        f"volume 1 with notice {withdrawn['id']}" in shown
    )
    c, _ = _officer(a)
    row = _row(c.get("/notices").text, first["id"])
    assert "data-conflicts=" not in row
    assert 'data-conflicts-ended="2"' in row


def test_a_conflict_still_holds_while_both_notices_are_active(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    first = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    second = send(b, "stuttgart", soon(b, 48.005, 9.005))
    b.drain()
    act(a, second["id"], "acknowledge")  # acknowledging a notice does not end its conflict
    a.drain()
    [conflict] = show(b, second["id"])["conflicts"]
    assert (conflict["active"], conflict["ended"]) == (True, None)
    [(paging, over)] = _paging(b, "notice_conflict")
    assert paging is not None
    assert over is None
    clock.advance(4 * 3600)  # both notices are over (expired, even before the timer says so)
    [conflict] = show(a, first["id"])["conflicts"]
    assert conflict["active"] is False
    assert conflict["ended"] == f"notice {first['id']} is expired"


def test_a_conflict_alert_names_both_lines_and_pages_by_the_new_notices_line(
    staffed: tuple[Node, Node], monkeypatch: Any
) -> None:
    """With lines to several parties the officer must see whose notices collide, and the
    alert must page as that line's policy says (it named no peer: the built-in policy)."""
    a, b = staffed
    policy = {"steps": [{"targets": ["user:senior"], "delay_s": 120}], "repeat": 0,
              "final": {"targets": ["user:boss"], "delay_s": 600}}  # fmt: skip
    assert b.api.put("/api/v1/lines/stuttgart/policy", json=policy).status_code == 200
    theirs = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    ours = send(b, "stuttgart", soon(b, 48.005, 9.005))
    [alert] = alerts(b, "notice_conflict")
    assert {k: alert["detail"][k] for k in ("notice", "peer", "other_notice", "other_peer")} == {
        "notice": ours["id"],
        "peer": "stuttgart",
        "other_notice": theirs["id"],
        "other_peer": "stuttgart",
    }
    assert alert_paging.page_due(b.station) == 1
    with b.station.db.read() as conn:
        (escalation,) = conn.execute(
            select(alerts_table.c.escalation).where(alerts_table.c.id == alert["id"])
        ).one()
    assert json.loads(escalation)["steps"] == policy["steps"]
    text = " ".join(cli_table(b, monkeypatch, "alerts", columns=200).split())
    assert f"notice {ours['id']} volume 1 (stuttgart) with notice {theirs['id']} volume 1 (stuttgart)" in text


def test_an_answer_that_comes_while_deadlines_are_checked_is_not_undone(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: Any
) -> None:
    """The check read a notice as overdue; the acknowledgement committed before it wrote;
    the alert it then raised again paged for an acknowledged notice, and a second
    notice.unanswered followed the acknowledgement in the ledger."""
    a, b = nodes
    late = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    clock.advance(3601)
    assert notices.audit_deadlines(a.station) == 1  # raised, and logged, once
    real, asked = notices._overdue, []

    def answered_meanwhile(conn: Any, now: int, ids: Any = None) -> list[Any]:
        found = real(conn, now, ids)
        if not asked:  # the read outside the write: moscow's answer lands right after it
            asked.append(True)
            act(b, late["id"], "acknowledge")
            b.drain()
        return found

    monkeypatch.setattr(notices, "_overdue", answered_meanwhile)
    notices.audit_deadlines(a.station)
    assert show(a, late["id"])["state"] == "acknowledged"
    [alert] = alerts(a, "notice_unacknowledged")
    assert alert["paging"] is None
    assert alert["detail"]["over"]["why"] == "the notice is acknowledged"
    assert [e["type"] for e in ledger_entries(a, "notice.unanswered")] == ["notice.unanswered"]
