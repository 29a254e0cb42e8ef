"""The outbox: outgoing envelopes are written in the same transaction as the state change
that caused them, with the next sequence number of their line. The deliverer
(`openline.services.delivery`) sends them later; nothing is sent from inside a use case.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy import ColumnElement, Connection, bindparam, insert, select, update
from uuid6 import uuid7

from openline.adapters.schema import envelopes, lines, peers
from openline.core.clock import rfc3339
from openline.core.encoding import b64d
from openline.core.envelope import Envelope, make_envelope, open_sealed
from openline.core.keys import encryption_public_key
from openline.services import ledger
from openline.services.station import Station, Tx


def waiting(line: Any) -> tuple[ColumnElement[bool], ...]:
    """The envelopes of `line` (its id, or a column or parameter holding it) still waiting
    for the peer's receipt: the prefix of the outbox index, so that finding them costs what
    waits, not what the line has ever carried."""
    return (envelopes.c.line_id == line, envelopes.c.direction == "out", envelopes.c.delivered_at.is_(None))


# Built once: every outgoing envelope runs these, and building a SQLAlchemy statement
# costs several times more than executing it.
_NEXT_SEQ = (
    update(lines)
    .where(lines.c.id == bindparam("b_line"))
    .values(next_out_seq=lines.c.next_out_seq + 1)
    .returning(lines.c.next_out_seq, lines.c.peer)
)
_PEER_KEY = select(peers.c.encryption_key).where(peers.c.name == bindparam("b_peer"))
_INSERT = insert(envelopes)


@functools.lru_cache(maxsize=64)
def _sealing_key(text: str) -> X25519PublicKey:
    """A peer's encryption key, parsed once per key text rather than once per envelope."""
    return encryption_public_key(text)


def new_id() -> str:
    return str(uuid7())


def enqueue(
    station: Station,
    tx: Tx,
    line_id: str,
    kind: str,
    ref: str | None,
    body: dict[str, Any],
    *,
    time: int | None = None,
    envelope_id: str | None = None,
) -> Envelope:
    seq_row = tx.conn.execute(_NEXT_SEQ, {"b_line": line_id}).one()
    seq = int(seq_row.next_out_seq) - 1
    peer = tx.conn.execute(_PEER_KEY, {"b_peer": seq_row.peer}).one()
    at = tx.now if time is None else time
    body = ledger.with_salt(body)
    env, self_copy = make_envelope(
        station.keys,
        recipient=_sealing_key(peer.encryption_key),
        envelope_id=envelope_id or new_id(),
        line=line_id,
        sender=station.name,
        receiver=seq_row.peer,
        seq=seq,
        time=rfc3339(at) or "",
        kind=kind,
        ref=ref,
        body=body,
    )
    tx.conn.execute(
        _INSERT,
        {
            "id": env.id,
            "line_id": line_id,
            "direction": "out",
            "seq": seq,
            "kind": kind,
            "call_id": ref,
            "time": at,
            "wire": json.dumps(env.to_json(), separators=(",", ":")),
            "self_body": self_copy,
            "stored_at": tx.now,
        },
    )
    tx.queued_lines.add(line_id)
    ledger.append(
        tx,
        "envelope.sent",
        at,
        {
            "envelope": env.id,
            "line": line_id,
            "peer": seq_row.peer,
            "seq": seq,
            "kind": kind,
            "ref": ref,
            "header": env.digest(),
        },
        content=ledger.body_commitment(body),
        call_id=ref if kind.startswith(ledger.INDEXED) else None,
    )
    return env


_REFUSED = select(envelopes.c.refused).where(envelopes.c.id == bindparam("b_id"))


def refused_for_good(conn: Connection, envelope_id: str | None) -> bool:
    """Whether the peer refused this envelope of ours for good: it never had what it
    carried (a call, a notice), so nothing about that is to be sent to it."""
    return envelope_id is not None and conn.execute(_REFUSED, {"b_id": envelope_id}).scalar() is not None


def refused_on_arrival(conn: Connection, ref: str) -> str:
    """Why nothing here holds the call or notice `ref` when we refused, for good, the peer's
    envelope that would have made it: to end a `not_found` with, which alone would read
    as if the peer had never sent it. Empty when there is no such envelope."""
    row = conn.execute(
        select(envelopes.c.kind, envelopes.c.refused, lines.c.peer)
        .join(lines, lines.c.id == envelopes.c.line_id)
        .where(envelopes.c.call_id == ref, envelopes.c.direction == "in", envelopes.c.refused.is_not(None))
        .order_by(envelopes.c.seq)
        .limit(1)
    ).first()
    if row is None:
        return ""
    return (
        f": we refused {row.peer}'s {row.kind} envelope about it when it arrived ({row.refused}); "
        f"the sender's proof of it carries our signed refusal"
    )


def open_body(station: Station, row: Any) -> dict[str, Any]:
    """Open a stored envelope's body: our own copy if we sent it, the wire body if not."""
    env = json.loads(row.wire)
    if row.direction == "out":
        return open_sealed(row.self_body, station.keys.encryption, env["header"], to_self=True)
    return open_sealed(b64d(env["body"]), station.keys.encryption, env["header"])
