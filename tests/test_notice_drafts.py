"""Drafts: a notice checked and kept on the station that wrote it, with a preview of its
conflicts; edited in place, sent later exactly as a new notice is sent, or discarded
without a trace on the wire. Bad input is refused and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openline.adapters.schema import lines, notice_volumes, notices
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
    for method, path, body in (
        ("POST", f"/api/v1/notices/{draft['id']}/send", None),
        ("POST", f"/api/v1/notices/{draft['id']}/discard", None),
        ("PUT", f"/api/v1/notices/{draft['id']}", {"notice": soon(a, 48.0, 9.0)}),
        ("POST", "/api/v1/notices", {"peer": "moscow", "notice": soon(a, 48.0, 9.0), "draft": True}),
    ):
        r = auditor.request(method, path, json=body)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["code"] == "forbidden"
    assert a.snapshot() == before

    with a.station.tx() as tx:  # as if the line had never completed its handshake
        tx.conn.execute(lines.update().values(state="pending"))
    before = a.snapshot()
    r = a.api.post(f"/api/v1/notices/{draft['id']}/send")
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "line_not_active"
    assert a.snapshot() == before


# Editing a draft in place ----------------------------------------------------------------


def _edit(node: Node, notice_id: str, doc: Any, **extra: Any) -> Any:
    return node.api.put(f"/api/v1/notices/{notice_id}", json={"notice": doc, **extra})


def _volumes(node: Node, notice_id: str) -> list[tuple[Any, ...]]:
    with node.station.db.read() as conn:
        rows = conn.execute(select(notice_volumes).where(notice_volumes.c.notice_id == notice_id))
        return [tuple(r) for r in rows]


def test_a_draft_is_edited_in_place_then_sent_as_edited(nodes: tuple[Node, Node], clock: Any) -> None:
    a, b = nodes
    theirs = send(b, "stuttgart", soon(b, 50.0, 9.0))
    b.drain()
    draft = send(a, "moscow", soon(a, 48.0, 9.0, text="Convoy at the bridge"), draft=True)
    assert draft["would_conflict"] == []
    assert "edit" in draft["actions"]
    old_volumes = _volumes(a, draft["id"])
    logged = len(ledger_entries(a))  # moscow's notice, received

    clock.advance(60)
    before = a.snapshot()
    r = _edit(a, draft["id"], soon(a, 50.005, 9.005, text="Convoy at the ford", category="ground_movement"))
    assert r.status_code == 200, r.text
    edited = r.json()
    # The same draft, changed: still here only, nothing sent, logged or alarmed.
    assert _changed(before, a.snapshot()) == {"notices", "notice_volumes"}
    assert (edited["id"], edited["state"], edited["version"]) == (draft["id"], "draft", 1)
    assert (edited["text"], edited["category"]) == ("Convoy at the ford", "ground_movement")
    assert edited["created_at"] == draft["created_at"]
    assert [c["other_notice"] for c in edited["would_conflict"]] == [theirs["id"]]
    assert edited["extents"] != draft["extents"]
    assert len(_volumes(a, draft["id"])) == 1
    assert _volumes(a, draft["id"]) != old_volumes  # the spatial index follows (SQLite's by trigger)
    assert len(ledger_entries(a)) == logged
    assert alerts(a, "notice_conflict") == []
    assert a.deliver() is delivery.Outcome.IDLE

    # Edited and sent in one step: the peer receives the edited notice under the draft's id.
    sent = _edit(a, draft["id"], soon(a, 50.005, 9.005, text="Convoy at the ford, 14:00Z"), send=True)
    assert sent.status_code == 200, sent.text
    assert (sent.json()["state"], sent.json()["would_conflict"]) == ("sent", None)
    assert [c["other_notice"] for c in sent.json()["conflicts"]] == [theirs["id"]]
    assert [e["type"] for e in ledger_entries(a)[logged:]] == ["notice.sent", "notice.conflict"]
    a.drain()
    got = show(b, draft["id"])
    assert (got["state"], got["text"], got["extents"]) == (
        "delivered",
        "Convoy at the ford, 14:00Z",
        sent.json()["extents"],
    )
    for node in (a, b):
        assert len(alerts(node, "notice_conflict")) == 1, node.name


def test_an_amending_draft_and_a_removal_draft_keep_what_they_are(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    first = send(a, "moscow", soon(a, 48.0, 9.0))
    protected = send(a, "moscow", site(a, 50.0, 9.0))
    other_site = send(a, "moscow", site(a, 51.0, 9.0))
    a.drain()
    for s in (protected, other_site):
        act(b, s["id"], "acknowledge")
    b.drain()
    v2 = send(a, "moscow", soon(a, 48.2, 9.0), draft=True, amends=first["id"])
    r = _edit(a, v2["id"], soon(a, 48.4, 9.0, text="Further north"))
    assert r.status_code == 200, r.text
    assert (r.json()["series"], r.json()["version"], r.json()["supersedes"]) == (first["id"], 2, first["id"])
    removal = send(
        a, "moscow", {"category": "protected_site", "text": "Closed", "removes": protected["id"]}, draft=True
    )
    moved = {"category": "protected_site", "text": "Closed instead", "removes": other_site["id"]}
    r = _edit(a, removal["id"], moved)
    assert r.status_code == 200, r.text
    assert (r.json()["removes"], r.json()["text"], r.json()["extents"]) == (
        other_site["id"],
        "Closed instead",
        [],
    )
    act(a, v2["id"], "send")
    act(a, removal["id"], "send")
    a.drain()
    for node in (a, b):
        assert show(node, first["id"])["state"] == "amended"
        assert show(node, v2["id"])["text"] == "Further north"


def test_bad_edits_are_refused_and_change_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    sent = send(a, "moscow", soon(a, 48.0, 9.0))
    draft = send(a, "moscow", soon(a, 49.0, 9.0), draft=True)
    amending = send(a, "moscow", soon(a, 48.1, 9.0), draft=True, amends=sent["id"])
    a.drain()
    crossing = [[48.0, 9.0], [48.1, 9.1], [48.0, 9.1], [48.1, 9.0]]  # a bow tie
    bow_tie = soon(a, 49.0, 9.0)
    bow_tie["extents"][0]["volume"]["outline_polygon"]["vertices"] = [
        {"lat": lat, "lng": lng} for lat, lng in crossing
    ]
    removal = {"category": "protected_site", "text": "x", "removes": sent["id"]}
    refusals: list[tuple[Node, str, Any, int, str]] = [
        (a, sent["id"], {"notice": soon(a, 48.0, 9.0)}, 409, "cannot edit a notice that is delivered"),
        (b, sent["id"], {"notice": soon(b, 48.0, 9.0)}, 409, "only the sender may edit"),
        (a, "no-such-notice", {"notice": soon(a, 48.0, 9.0)}, 404, "no-such-notice"),
        (a, draft["id"], {"notice": bow_tie}, 422, "volume 1"),
        (a, draft["id"], {"notice": soon(a, 49.0, 9.0), "peer": "moscow"}, 422, "peer"),
        (a, draft["id"], {"notice": soon(a, 49.0, 9.0), "send": "maybe"}, 422, "send"),
        (a, amending["id"], {"notice": removal}, 422, "a removal notice amends nothing"),
    ]
    for node, notice_id, body, status, detail in refusals:
        before = node.snapshot()
        r = node.api.put(f"/api/v1/notices/{notice_id}", json=body)
        assert r.status_code == status, (detail, r.text)
        assert detail in r.text
        assert node.snapshot() == before

    act(a, draft["id"], "discard")
    before = a.snapshot()
    r = _edit(a, draft["id"], soon(a, 49.0, 9.0))
    assert r.status_code == 409, r.text
    assert "cannot edit a notice that is discarded" in r.json()["detail"]
    assert a.snapshot() == before


def test_an_edit_that_cannot_be_sent_leaves_the_draft_as_it_was(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    draft = send(a, "moscow", soon(a, 48.0, 9.0, text="As drafted"), draft=True)
    with a.station.tx() as tx:  # as if the line had never completed its handshake
        tx.conn.execute(lines.update().values(state="pending"))
    before = a.snapshot()
    r = _edit(a, draft["id"], soon(a, 48.5, 9.0, text="Changed"), send=True)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "line_not_active"
    assert a.snapshot() == before
    assert show(a, draft["id"])["text"] == "As drafted"
    # Saved without sending, the edit is kept: a draft waits for the line.
    r = _edit(a, draft["id"], soon(a, 48.5, 9.0, text="Changed"))
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["text"]) == ("draft", "Changed")
