"""Notices logged before stations indexed them (migration 0014). A station indexes a
notice's ledger entries under its id as it logs them only since migration 0013; the
upgrade indexes the older ones by the same rule, so that an investigator can prove last
year's notice, and a notice sent before the upgrade and acknowledged after it has a proof
with its announcement. Each test makes an old station by taking the notice rows out of
the index (and out of the entries still waiting to be sequenced), as a station before
0013 had them, then upgrades it."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import text

from openline.core.evidence import verify_proof
from tests.inproc import Node, migrate_to, place_and_ring, settle_ledgers
from tests.notice_docs import act, send, show, site, soon
from tests.test_notice_proof import acknowledged_site, proof_of, types

_NOTICE_ROWS = "SELECT l.call_id, l.idx FROM ledger_calls l JOIN notices n ON n.id = l.call_id"
_CALL_ROWS = "SELECT l.call_id, l.idx FROM ledger_calls l JOIN calls c ON c.id = l.call_id"


def _rows(node: Node, sql: str) -> set[tuple[str, int]]:
    with node.station.db.read() as conn:
        return {(str(i), int(n)) for i, n in conn.execute(text(sql))}


def _waiting(node: Node) -> list[Any]:
    with node.station.db.read() as conn:
        return list(conn.execute(text("SELECT seq, call_id, also_id FROM ledger_pending ORDER BY seq")))


def _as_before_0013(node: Node) -> None:
    """The notice index as a station before migration 0013 had it: empty."""
    with node.station.db.write() as conn:
        conn.execute(text("DELETE FROM ledger_calls WHERE call_id IN (SELECT id FROM notices)"))
        for slot in ("call_id", "also_id"):
            conn.execute(
                text(f"UPDATE ledger_pending SET {slot} = NULL WHERE {slot} IN (SELECT id FROM notices)")  # noqa: S608
            )


def _upgrade(node: Node) -> None:
    migrate_to(node, "0013", down=True)
    migrate_to(node, "head")


def test_the_upgrade_indexes_every_notice_entry_as_the_station_would_have(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    site_id = acknowledged_site(a, b)
    strike = send(a, "moscow", soon(a, 31.5234, 34.4453))  # over the site: a conflict
    a.drain()
    b.drain()
    place_and_ring(a, b)  # a call in the same logs, indexed from the start
    settle_ledgers(a, b)
    assert show(b, strike["id"])["conflicts"], "the strike should conflict with the site"

    for node in (a, b):
        live, calls = _rows(node, _NOTICE_ROWS), _rows(node, _CALL_ROWS)
        assert {notice for notice, _ in live} == {site_id, strike["id"]}
        assert calls
        _as_before_0013(node)
        assert _rows(node, _NOTICE_ROWS) == set()
        _upgrade(node)
        assert _rows(node, _NOTICE_ROWS) == live  # the live rule, row for row
        assert _rows(node, _CALL_ROWS) == calls

    for node, notice in ((b, site_id), (a, strike["id"])):
        proof = proof_of(node, notice)
        result = verify_proof(json.dumps(proof))
        assert result.ok, result.failures
        assert {"notice.sent", "notice.conflict"} <= set(types(proof))  # each its own notice
    assert "notice.acknowledged" in types(proof_of(b, site_id))


def test_a_notice_sent_before_the_upgrade_and_acknowledged_after_it_has_a_whole_proof(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    protected = send(b, "stuttgart", site(b, 31.5234, 34.4453))
    b.drain()
    # Stopped before the ledger worker ran: its entries are still waiting to be sequenced.
    unindexed = [w for w in _waiting(b) if w.call_id == protected["id"]]
    assert unindexed
    _as_before_0013(a)
    _as_before_0013(b)
    assert not [w for w in _waiting(b) if protected["id"] in (w.call_id, w.also_id)]

    _upgrade(a)
    _upgrade(b)
    assert [w.seq for w in _waiting(b) if w.call_id == protected["id"]] == [w.seq for w in unindexed]
    act(a, protected["id"], "acknowledge")
    a.drain()
    b.drain()
    settle_ledgers(a, b)

    for node in (a, b):
        proof = proof_of(node, protected["id"])
        result = verify_proof(json.dumps(proof))
        assert result.ok, result.failures
        assert "notice.acknowledged" in types(proof)
    assert {"envelope.sent", "receipt.received", "notice.sent"} <= set(types(proof_of(b, protected["id"])))


def test_a_sites_proof_holds_its_removal(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    site_id = acknowledged_site(a, b)
    removal = send(b, "stuttgart", {"category": "protected_site", "text": "Moved", "removes": site_id})
    b.drain()
    act(a, removal["id"], "acknowledge")
    a.drain()
    b.drain()
    settle_ledgers(a, b)
    assert show(b, site_id)["state"] == "removed"

    for node in (a, b):
        live = _rows(node, _NOTICE_ROWS)
        proof = proof_of(node, site_id)
        assert verify_proof(json.dumps(proof)).ok
        about = [json.loads(base64.b64decode(e["entry"])) for e in proof["entries"]]
        # The removal announced (naming the site) and the site removed (naming the removal).
        assert any(e.get("removes") == site_id for e in about)
        assert any(e["type"] == "notice.removed" and e["removal"] == removal["id"] for e in about)
        _as_before_0013(node)
        _upgrade(node)
        assert _rows(node, _NOTICE_ROWS) == live
