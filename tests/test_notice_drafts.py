"""Drafts: a notice checked and kept on the station that wrote it, with a preview of its
conflicts; sent later exactly as a new notice is sent, or discarded without a trace on
the wire. Bad input is refused and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openline.adapters.schema import notices
from openline.core.clock import parse_rfc3339
from openline.services import accounts, delivery
from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import act, alerts, ledger_entries, send, show, site, soon


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {table for table in before if before[table] != after[table]}


def test_a_draft_stays_here_previews_its_conflicts_and_is_sent_later(
    nodes: tuple[Node, Node], clock: Any
) -> None:
    a, b = nodes
    theirs = send(b, "stuttgart", soon(b, 48.0, 9.0))
    b.drain()
    logged = len(ledger_entries(a))
    before = a.snapshot()
    draft = send(a, "moscow", soon(a, 48.005, 9.005, text="Convoy at the bridge"), draft=True)
    # Stored here only: no envelope, no ledger entry, no conflict recorded or alarmed.
    assert _changed(before, a.snapshot()) == {"notices", "notice_volumes"}
    assert draft["state"] == "draft"
    assert draft["text"] == "Convoy at the bridge"
    assert (draft["deadline_at"], draft["sent_at"]) == (None, None)
    assert draft["conflicts"] == []
    assert [c["other_notice"] for c in draft["would_conflict"]] == [theirs["id"]]
    assert alerts(a, "notice_conflict") == []
    with a.station.db.read() as conn:
        sealed = conn.execute(select(notices.c.draft_body).where(notices.c.id == draft["id"])).scalar_one()
    assert b"Convoy" not in sealed  # the text is sealed to our own key, as sent bodies are
    assert a.deliver() is delivery.Outcome.IDLE
    assert b.api.get(f"/api/v1/notices/{draft['id']}").status_code == 404  # only its writer sees it

    clock.advance(60)
    sent = act(a, draft["id"], "send")
    assert sent["state"] == "sent"
    assert sent["would_conflict"] is None
    assert [c["other_notice"] for c in sent["conflicts"]] == [theirs["id"]]
    assert parse_rfc3339(sent["deadline_at"]) == parse_rfc3339(sent["sent_at"]) + 3600 * 1_000_000
    assert sent["created_at"] == draft["created_at"]
    assert sent["sent_at"] != sent["created_at"]
    assert [e["type"] for e in ledger_entries(a)[logged:]] == ["notice.sent", "notice.conflict"]
    a.drain()
    got = show(b, draft["id"])
    assert (got["state"], got["text"], got["direction"]) == ("delivered", "Convoy at the bridge", "in")
    for node in (a, b):
        assert len(alerts(node, "notice_conflict")) == 1, node.name

    before = a.snapshot()
    r = a.api.post(f"/api/v1/notices/{draft['id']}/send")  # sent already
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "illegal_transition"
    assert "not a draft" in r.json()["detail"]
    assert a.snapshot() == before


def test_a_discarded_draft_never_crosses_the_line(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    draft = send(a, "moscow", soon(a, 48.0, 9.0), draft=True)
    before = a.snapshot()
    discarded = act(a, draft["id"], "discard")
    assert discarded["state"] == "discarded"
    assert discarded["discarded_at"] is not None
    assert _changed(before, a.snapshot()) == {"notices"}
    assert ledger_entries(a) == []
    assert a.deliver() is delivery.Outcome.IDLE
    assert b.api.get("/api/v1/notices").json() == []
    for action, detail in (("discard", "cannot discard a notice that is discarded"), ("send", "not a draft")):
        before = a.snapshot()
        r = a.api.post(f"/api/v1/notices/{draft['id']}/{action}")
        assert r.status_code == 409, r.text
        assert detail in r.json()["detail"]
        assert a.snapshot() == before


def test_only_a_draft_is_discarded_and_a_draft_is_not_withdrawn(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    sent = send(a, "moscow", soon(a, 48.0, 9.0))
    draft = send(a, "moscow", soon(a, 49.0, 9.0), draft=True)
    a.drain()
    refusals = [
        (a, sent["id"], "discard", "cannot discard a notice that is delivered"),
        (b, sent["id"], "discard", "only the sender may discard"),
        (a, draft["id"], "withdraw", "cannot withdraw a notice that is draft"),
        (a, draft["id"], "acknowledge", "only the receiver may acknowledge"),
    ]
    for node, notice_id, action, detail in refusals:
        before = node.snapshot()
        r = node.api.post(f"/api/v1/notices/{notice_id}/{action}")
        assert r.status_code == 409, (action, r.text)
        assert detail in r.json()["detail"]
        assert node.snapshot() == before
    before = b.snapshot()
    assert b.api.post(f"/api/v1/notices/{draft['id']}/send").status_code == 404  # not b's draft
    assert b.snapshot() == before


def test_drafts_amend_and_remove_as_sent_notices_do(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    first = send(a, "moscow", soon(a, 48.0, 9.0))
    protected = send(a, "moscow", site(a, 50.0, 9.0))
    a.drain()
    act(b, protected["id"], "acknowledge")
    b.drain()
    v2 = send(a, "moscow", soon(a, 48.2, 9.0), draft=True, amends=first["id"])
    assert (v2["series"], v2["version"], v2["supersedes"]) == (first["id"], 2, first["id"])
    assert show(a, first["id"])["state"] == "delivered"  # amended only when the draft is sent
    removal = {"category": "protected_site", "text": "Closed", "removes": protected["id"]}
    draft_removal = send(a, "moscow", removal, draft=True)
    assert (draft_removal["removes"], draft_removal["extents"]) == (protected["id"], [])
    act(a, v2["id"], "send")
    act(a, draft_removal["id"], "send")
    a.drain()
    for node in (a, b):
        assert show(node, first["id"])["state"] == "amended"
        assert show(node, v2["id"])["version"] == 2
        assert show(node, draft_removal["id"])["removes"] == protected["id"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"peer": "moscow", "notice": {"category": "picnic", "text": "", "extents": []}}, 422, "category"),
        ({"peer": "nowhere", "notice": None}, 404, "no line to a station named 'nowhere'"),
        ({"peer": "moscow", "notice": None, "draft": "maybe"}, 422, "draft"),
        ({"peer": "moscow", "notice": None, "amends": "no-such-notice"}, 404, "no-such-notice"),
    ],
)
def test_bad_drafts_are_refused_and_change_nothing(
    nodes: tuple[Node, Node], body: dict[str, Any], status: int, detail: str
) -> None:
    a, _ = nodes
    body = {**body, "notice": body["notice"] or soon(a, 48.0, 9.0)}
    before = a.snapshot()
    r = a.api.post("/api/v1/notices", json={**body, "draft": body.get("draft", True)})
    assert r.status_code == status, r.text
    assert detail in r.text
    assert a.snapshot() == before


def test_a_draft_is_sent_only_when_the_line_is_active_and_only_by_who_works_calls(
    nodes: tuple[Node, Node],
) -> None:
    a, _ = nodes
    draft = send(a, "moscow", soon(a, 48.0, 9.0), draft=True)
    with a.station.tx() as tx:
        user = accounts.create_user(
            tx.conn, tx.now, "inspector", Role.AUDITOR, "correct horse battery staple"
        )
        token = accounts.issue_token(tx.conn, tx.now, user, "test")
    auditor = TestClient(a.app, headers={"Authorization": f"Bearer {token}"})
    seen = auditor.get(f"/api/v1/notices/{draft['id']}").json()
    assert (seen["state"], seen["content_withheld"], "text" in seen) == ("draft", True, False)
    before = a.snapshot()
    for path, body in (
        (f"/api/v1/notices/{draft['id']}/send", None),
        (f"/api/v1/notices/{draft['id']}/discard", None),
        ("/api/v1/notices", {"peer": "moscow", "notice": soon(a, 48.0, 9.0), "draft": True}),
    ):
        r = auditor.post(path, json=body)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["code"] == "forbidden"
    assert a.snapshot() == before

    from openline.adapters.schema import lines

    with a.station.tx() as tx:  # as if the line had never completed its handshake
        tx.conn.execute(lines.update().values(state="pending"))
    before = a.snapshot()
    r = a.api.post(f"/api/v1/notices/{draft['id']}/send")
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "line_not_active"
    assert a.snapshot() == before
