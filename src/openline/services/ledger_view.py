"""What the console's ledger page and `GET /api/v1/ledger/status` show: the tree head and
checkpoints (`ledger.status`), each peer's witness state in both directions, and the
evidence of any contradiction a peer's checkpoints were caught in (docs/ledger.md).
Metadata only, so every role that may view the station may see it.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Connection, func, select

from openline.adapters.schema import ledger_evidence, ledger_peers, lines
from openline.core.clock import rfc3339
from openline.services import ledger, witness

EVIDENCE_SHOWN = 50  # the newest; the rest are counted and exported with the bundle


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(bytes(value)).decode()


def witnesses(conn: Connection) -> list[dict[str, Any]]:
    """Per peer: how much of our log it has cosigned, how much of its log we have, and
    the last error asking it. Peers with a line but no exchange yet are listed with zeros."""
    rows = {r.peer: r for r in conn.execute(select(ledger_peers)).all()}
    peers = sorted({*rows, *conn.execute(select(lines.c.peer)).scalars()})
    out = []
    for peer in peers:
        r = rows.get(peer)
        out.append(
            {
                "peer": peer,
                "cosigned_size": 0 if r is None else int(r.cosigned_size),
                "cosigned_at": None if r is None else rfc3339(r.cosigned_at),
                "attempt": 0 if r is None else int(r.attempt),
                "next_attempt_at": None if r is None else rfc3339(r.next_attempt_at),
                "last_error": None if r is None else r.last_error,
                "witnessed_size": 0 if r is None else int(r.witnessed_size),
                "witnessed_root": None if r is None else _b64(r.witnessed_root),
                "witnessed_at": None if r is None else rfc3339(r.witnessed_at),
                "cosigned_lost": witness.cosigned_lost(conn, peer),
            }
        )
    return out


def evidence(conn: Connection, limit: int = EVIDENCE_SHOWN) -> list[dict[str, Any]]:
    """The newest contradictions kept as evidence: what kind, by whom, when, and why; and
    the evidence itself, to hand to anyone: the peer's signed request (its checkpoint
    note, signed with its ledger key, and the proof it sent) and the note of its that we
    had cosigned, which it contradicts. Both verify with the peer's card alone."""
    rows = conn.execute(
        select(
            ledger_evidence.c.id,
            ledger_evidence.c.peer,
            ledger_evidence.c.kind,
            ledger_evidence.c.received_at,
            ledger_evidence.c.detail,
            ledger_evidence.c.request,
            ledger_evidence.c.contradicts,
        )
        .order_by(ledger_evidence.c.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": r.id,
            "peer": r.peer,
            "kind": r.kind,
            "received_at": rfc3339(r.received_at),
            "detail": r.detail,
            "request": r.request,
            "contradicts": r.contradicts,
        }
        for r in rows
    ]


def status(conn: Connection) -> dict[str, Any]:
    """`ledger.status`, and the witnesses and evidence."""
    count = conn.execute(select(func.count()).select_from(ledger_evidence)).scalar_one()
    return {
        **ledger.status(conn),
        "peers": witnesses(conn),
        "evidence_count": int(count),
        "evidence": evidence(conn),
    }
