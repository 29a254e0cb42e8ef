"""New terms for an open line: proposed on each side, adopted by both stations in the
handshake that finds them proposed alike, while the line keeps working under its old
terms; withdrawn by proposing the terms it has; each step in the ledger; bad proposals
refused with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openline.services import accounts, delivery
from openline.services.accounts import Role
from tests.inproc import Node, make_node, place_and_ring
from tests.inproc import show as show_call
from tests.notice_docs import HOUR, circle, cli, east_of, ledger_entries, send, show
from tests.test_notice_terms import _add, _wire

WIDER = {"margin_horizontal_m": 500, "notice_deadline_s": 900}


def _line(node: Node) -> dict[str, Any]:
    (line,) = node.api.get("/api/v1/lines").json()
    return dict(line)


def _alerts(node: Node, kind: str) -> list[dict[str, Any]]:
    return [x for x in node.api.get("/api/v1/alerts").json() if x["kind"] == kind]


def _propose(node: Node, peer: str, **changes: Any) -> dict[str, Any]:
    r = node.api.put(f"/api/v1/lines/{peer}/terms", json=changes)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _near_pair(node: Node, lat: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two circles 300 m apart, at the same time and altitude: clear without margins."""
    now = node.station.clock.now()
    start, end = now + HOUR, now + 2 * HOUR
    return circle(lat, 9.0, 500, start, end), circle(*east_of(lat, 9.0, 1300), 500, start, end)


def test_terms_proposed_on_both_sides_are_adopted_by_both(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    old = {k: _line(a)[k] for k in ("answer_deadline_s", "notice_deadline_s", "margins")}
    first = _propose(a, "moscow", **WIDER)
    # Not yet: moscow has proposed nothing. The proposal is kept; the line works as before.
    assert first["proposal"] == "waiting"
    assert "line terms differ" in first["handshake"]
    assert first["state"] == "active"
    assert first["margins"] == old["margins"]
    assert first["proposed_terms"] == {
        "answer_deadline_s": old["answer_deadline_s"],
        "notice_deadline_s": 900,
        "margins": {"horizontal_m": 500.0, "vertical_m": 0.0, "minutes": 0},
    }
    assert _line(b)["proposed_terms"] is None
    near = _near_pair(a, 48.0)
    before = send(a, "moscow", near[0])
    a.drain()
    near_id = send(b, "stuttgart", near[1])["id"]
    assert show(b, near_id)["conflicts"] == []  # the old margins (none) still hold
    b.drain()
    call_id = place_and_ring(a, b)  # calls too
    assert show_call(b, call_id)["state"] == "ringing"
    assert [e["type"] for e in ledger_entries(a, "line.terms")] == ["line.terms_proposed"]

    # moscow's watch floor was told of stuttgart's proposal, once, with both sets of terms.
    (told,) = _alerts(b, "line_terms_differ")
    assert told["subject"].startswith("stuttgart ")
    assert (told["detail"]["theirs"], told["detail"]["ours"]) == (first["proposed_terms"], old)
    assert _propose(a, "moscow", **WIDER)["proposal"] == "waiting"  # the same again: no second alert
    assert len(_alerts(b, "line_terms_differ")) == 1

    # moscow proposes a different set: refused, both keep theirs, and stuttgart is told.
    other = _propose(b, "stuttgart", margin_horizontal_m=400, notice_deadline_s=900)
    assert "line terms differ" in other["handshake"]
    assert (_line(a)["margins"], _line(b)["margins"]) == (old["margins"], old["margins"])
    (told,) = _alerts(a, "line_terms_differ")
    assert told["detail"]["proposed"] == first["proposed_terms"]

    # Then the same set: both adopt it at once.
    agreed = _propose(b, "stuttgart", **WIDER)
    assert (agreed["proposal"], agreed["handshake"]) == ("adopted", "ok")
    for node in (a, b):
        line = _line(node)
        assert (line["notice_deadline_s"], line["proposed_terms"]) == (900, None), node.name
        assert line["margins"] == {"horizontal_m": 500.0, "vertical_m": 0.0, "minutes": 0}, node.name
        (entry,) = ledger_entries(node, "line.terms")[-1:]
        assert entry["type"] == "line.terms"
        assert entry["previous"] == old
        assert entry["terms"]["margins"]["horizontal_m"] == 500.0
    assert ledger_entries(a, "line.terms")[-1]["role"] == "answered"
    assert ledger_entries(b, "line.terms")[-1]["role"] == "initiated"

    # From now on: a near pair sent afterwards conflicts, on both stations alike, and a
    # notice's deadline is the new one. The near pair sent before was checked again under
    # the new margins as both adopted them: it conflicts now, on both stations alike.
    later = _near_pair(a, 49.0)
    first_notice = send(a, "moscow", later[0])
    a.drain()
    second = send(b, "stuttgart", later[1])
    b.drain()
    for node in (a, b):
        assert [c["other_notice"] for c in show(node, second["id"])["conflicts"]] == [first_notice["id"]]
        assert [c["other_notice"] for c in show(node, before["id"])["conflicts"]] == [near_id], node.name
    got = show(b, first_notice["id"])
    assert got["margins"]["horizontal_m"] == 500.0


def test_proposals_made_while_the_peer_was_down_are_adopted_when_it_announces_itself(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    a.transport.down = b.transport.down = True
    assert "connection refused" in _propose(a, "moscow", margin_minutes=10)["handshake"]
    assert "connection refused" in _propose(b, "stuttgart", margin_minutes=10)["handshake"]
    a.transport.down = b.transport.down = False
    assert delivery.announce(b.station, b.transport, b.line().id)  # moscow is back up
    for node in (a, b):
        assert (_line(node)["margins"]["minutes"], _line(node)["proposed_terms"]) == (10, None), node.name
    # A proposal the peer has not made does not keep a station from announcing itself.
    _propose(a, "moscow", margin_minutes=20)
    assert delivery.announce(a.station, a.transport, a.line().id)
    assert _line(a)["proposed_terms"]["margins"]["minutes"] == 20
    assert _line(b)["margins"]["minutes"] == 10


def test_a_proposal_is_withdrawn_by_proposing_the_terms_the_line_has(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    current = _line(a)
    _propose(a, "moscow", margin_minutes=15)
    withdrawn = _propose(a, "moscow", margin_minutes=current["margins"]["minutes"])
    assert (withdrawn["proposal"], withdrawn["proposed_terms"]) == ("withdrawn", None)
    assert [e["type"] for e in ledger_entries(a, "line.terms")] == [
        "line.terms_proposed",
        "line.terms_withdrawn",
    ]
    before = a.snapshot()
    r = a.api.put("/api/v1/lines/moscow/terms", json={})  # the terms it has, and no proposal
    assert r.status_code == 409, r.text
    assert "has these terms already" in r.json()["detail"]
    assert a.snapshot() == before


def test_a_pending_line_whose_terms_differ_is_opened_by_proposing_the_peers(
    tmp_path: Any, clock: Any, database_url: str | None, second_database_url: str | None
) -> None:
    a = make_node(tmp_path, "stuttgart", clock, database_url)
    b = make_node(tmp_path, "moscow", clock, second_database_url)
    try:
        _wire(a, b)
        _add(a, b, margin_vertical_m=30)
        assert "line terms differ" in _add(b, a, margin_vertical_m=50)["handshake"]
        opened = _propose(b, "stuttgart", margin_vertical_m=30)  # moscow takes stuttgart's
        assert (opened["handshake"], opened["state"]) == ("ok", "active")
        for node in (a, b):
            assert _line(node)["margins"]["vertical_m"] == 30.0
            assert _line(node)["state"] == "active"
    finally:
        for n in (a, b):
            n.station.db.dispose()


@pytest.mark.parametrize(
    ("changes", "status", "detail"),
    [
        ({"margin_horizontal_m": -1}, 422, "margin_horizontal_m"),
        ({"margin_horizontal_m": 100_001}, 422, "margin_horizontal_m"),
        ({"margin_vertical_m": "high"}, 422, "margin_vertical_m"),
        ({"margin_minutes": 1441}, 422, "margin_minutes"),
        ({"notice_deadline_s": 59}, 422, "notice_deadline_s"),
        ({"answer_deadline_s": 4}, 422, "answer_deadline_s"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_bad_proposals_are_refused_and_change_nothing(
    nodes: tuple[Node, Node], changes: dict[str, Any], status: int, detail: str
) -> None:
    a, _ = nodes
    before = a.snapshot()
    r = a.api.put("/api/v1/lines/moscow/terms", json=changes)
    assert r.status_code == status, r.text
    assert detail in r.text
    assert a.snapshot() == before


def test_only_who_manages_lines_proposes_terms_and_only_for_a_line_there_is(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    before = a.snapshot()
    r = a.api.put("/api/v1/lines/nowhere/terms", json={"margin_minutes": 5})
    assert r.status_code == 404, r.text
    assert "no line to a station named 'nowhere'" in r.json()["detail"]
    assert a.snapshot() == before
    with a.station.tx() as tx:
        user = accounts.create_user(
            tx.conn, tx.now, "duty", Role.WATCH_OFFICER, "correct horse battery staple"
        )
        token = accounts.issue_token(tx.conn, tx.now, user, "test")
    before = a.snapshot()
    officer = TestClient(a.app, headers={"Authorization": f"Bearer {token}"})
    r = officer.put("/api/v1/lines/moscow/terms", json={"margin_minutes": 5})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "forbidden"
    assert a.snapshot() == before


def test_line_terms_from_the_cli(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    a, b = nodes
    first = cli(
        a, monkeypatch, "line", "terms", "moscow", "--margin-minutes", "10", "--notice-deadline", "900"
    )
    assert first.exit_code == 0, first.output
    assert "Proposed: calls answered within" in first.stdout
    assert "notices within 900 s" in first.stdout
    assert "Not adopted yet" in first.stdout
    listed = cli(a, monkeypatch, "lines")
    assert "New terms proposed to moscow, not adopted yet" in listed.stdout.replace("\n", " ")
    before = b.snapshot()
    bad = cli(b, monkeypatch, "line", "terms", "stuttgart", "--margin-minutes", "2000")
    assert bad.exit_code == 1
    assert "invalid_input" in bad.stderr
    assert "margin_minutes" in bad.stderr
    assert b.snapshot() == before
    agreed = cli(
        b, monkeypatch, "line", "terms", "stuttgart", "--margin-minutes", "10", "--notice-deadline", "900"
    )
    assert agreed.exit_code == 0, agreed.output
    assert "No proposal pending: both stations hold these terms." in agreed.stdout
    for node in (a, b):
        assert (_line(node)["margins"]["minutes"], _line(node)["notice_deadline_s"]) == (10, 900)
