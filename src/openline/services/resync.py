"""A line's two stations compare their sequence numbers, and mend what a restore broke.

A station restored from a backup is as it was then: its counters are behind what its peer
holds. Since the backup it may have sent envelopes the peer stored (so the numbers it
hands out next are taken), and the peer may have sent it envelopes it stored and has lost
(the peer holds them as delivered). Either way the line would stop for good: the peer
refuses the reused numbers (`replay`), and the restored station waits for numbers the
peer will never send again (`sequence_gap`).

So after each start-up handshake a station asks its peer for its counters
(`POST /_openline/v1/sync`, answered with a signature over them and the asker's nonce),
and each side then mends its own outgoing direction (`_mend`), on the counters of the
other:

* the peer expects a later number than we would send next: we lost envelopes we had sent
  (the peer holds them). We go on from the number it expects;
* the peer expects an earlier number than envelopes it receipted: it lost them. They go
  back into our outbox, to be sent again in order; each keeps the receipt the peer gave
  first, the one our ledger logged. The answer says how many (`resending`).

Both watch floors are told (`line_resynchronised`, one alert for each mending: a station
restored twice from one backup loses the same numbers twice) of what either side lost,
and only of that: each side's counters are read a moment before the other's, and an envelope stored
in between is sent again too (answered as a duplicate) without counting as lost. Lost are
those whose receipt the peer dated before it read its counters (`at`, on its own clock):
it had stored them then, and no longer holds them.

A station of an older version answers 404: nothing is compared, as before.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import structlog
from sqlalchemy import bindparam, select, update

from openline.adapters.db import for_update
from openline.adapters.schema import envelopes, lines
from openline.adapters.transport import SYNC_PATH, PeerRefused, Transport
from openline.core.clock import parse_rfc3339, rfc3339
from openline.core.encoding import canonical
from openline.core.keys import signing_public_key, verify
from openline.errors import Code, EnvelopeRefused
from openline.services import alerts, ledger
from openline.services.lines import ACTIVE, check_nonce, line_for_peer, peer_card
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.resync")
RESYNCHRONISED = "line_resynchronised"
_COUNTERS = ("next_in", "next_out")
_MOST = 2**62  # far beyond any sequence number a line reaches

_RECEIPTED = (
    select(envelopes.c.receipt)
    .where(
        envelopes.c.line_id == bindparam("b_line"),
        envelopes.c.direction == "out",
        envelopes.c.seq >= bindparam("b_from"),
        envelopes.c.delivered_at.is_not(None),
    )
    .order_by(envelopes.c.seq)
)
_REQUEUE = (
    update(envelopes)
    .where(
        envelopes.c.line_id == bindparam("b_line"),
        envelopes.c.direction == "out",
        envelopes.c.seq >= bindparam("b_from"),
        envelopes.c.delivered_at.is_not(None),
    )
    .values(delivered_at=None, batch_id=None)
)
_UNCLAIM = (
    update(envelopes)
    .where(
        envelopes.c.line_id == bindparam("b_line"),
        envelopes.c.direction == "out",
        envelopes.c.delivered_at.is_(None),
    )
    .values(batch_id=None)
)


def _statement(line_id: str, nonce: str, sender: str, receiver: str, said: dict[str, Any]) -> bytes:
    """What the answer's signature covers: the answering station's counters, when it read
    them and how many envelopes it sends again, over the asker's nonce."""
    return canonical({"type": "sync", "line": line_id, "nonce": nonce, "from": sender, "to": receiver,
                      **said})  # fmt: skip


def _read(value: Any, what: str, *, resending: bool = False) -> dict[str, Any]:
    """Counters and their time, as a peer sends them (and `resending`, in an answer)."""
    numbers = (*_COUNTERS, "resending") if resending else _COUNTERS
    if not isinstance(value, dict) or not all(
        type(value.get(k)) is int and (0 if k == "resending" else 1) <= value[k] <= _MOST for k in numbers
    ):
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: {', '.join(numbers)} must be whole numbers")
    try:
        parse_rfc3339(str(value["at"]))
    except (KeyError, ValueError, TypeError):
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: at must be an RFC 3339 time") from None
    return {k: value[k] for k in (*numbers, "at")}


def _ours(tx_now: int, line: Any) -> dict[str, Any]:
    return {"next_in": int(line.next_in_seq), "next_out": int(line.next_out_seq), "at": rfc3339(tx_now)}


def answer_sync(station: Station, origin: str, payload: Any) -> dict[str, Any]:
    """The peer (authenticated by its request's signature) sends its counters: mend our
    outgoing direction by them, and answer with ours, signed over its nonce."""
    if not isinstance(payload, dict) or set(payload) != {"line", "nonce", "at", *_COUNTERS}:
        raise EnvelopeRefused(Code.MALFORMED, "sync: expected line, nonce, next_in, next_out, at")
    nonce = payload["nonce"]
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= 64:
        raise EnvelopeRefused(Code.MALFORMED, "sync: nonce must be 8 to 64 characters")
    theirs = _read(payload, "sync")
    check_nonce(station, origin, nonce)
    with station.tx() as tx:
        line = tx.conn.execute(for_update(tx.conn, select(lines).where(lines.c.peer == origin))).first()
        if line is None or payload["line"] != line.id:
            what = f"sync: no line {payload['line']!r:.40} with {origin!r}"
            raise EnvelopeRefused(Code.WRONG_DESTINATION, what)
        if line.state != ACTIVE:
            raise EnvelopeRefused(Code.LINE_NOT_ACTIVE, f"sync: the line with {origin!r} is {line.state}")
        ours = _ours(tx.now, line)
        said = {**ours, "resending": _mend(tx, line, ours, theirs, "answered")}
    return {**said, "sig": station.keys.sign(_statement(line.id, nonce, station.name, origin, said))}


def sync(station: Station, transport: Transport, peer: str) -> bool:
    """Compare counters with the peer and mend our outgoing direction. Returns False when
    the peer runs a version without the sync (it answers 404); raises when not reached."""
    read_at = station.clock.now()  # before the counters: what we stored after is in them
    with station.db.read() as conn:
        line = line_for_peer(conn, peer)
        card = peer_card(conn, peer)
    if line.state != ACTIVE:
        return True
    nonce = secrets.token_urlsafe(16)
    asked = {"line": line.id, "nonce": nonce, **_ours(read_at, line)}
    try:
        answer = transport.post(peer, card.url, SYNC_PATH, asked)
    except PeerRefused as exc:
        if exc.http_status == 404:
            return False
        raise
    said = _read(answer, f"sync answer from {peer!r}", resending=True)
    if not isinstance(answer.get("sig"), str):
        raise EnvelopeRefused(Code.MALFORMED, f"sync answer from {peer!r}: no signature")
    verify(
        signing_public_key(card.signing_key),
        answer["sig"],
        _statement(line.id, nonce, peer, station.name, said),
        what=f"sync answer from {peer!r}",
    )
    with station.tx() as tx:
        now = tx.conn.execute(for_update(tx.conn, select(lines).where(lines.c.id == line.id))).one()
        _mend(tx, now, _ours(tx.now, now), said, "initiated")
        if said["resending"]:
            # The peer sends again what we had stored and receipted, and no longer hold.
            detail = {"peer": peer, "received_lost_from": asked["next_in"], "resending": said["resending"]}
            subject = f"{peer} resending from {asked['next_in']} at {rfc3339(tx.now)}"
            alerts.raise_alert(tx, RESYNCHRONISED, subject, detail)
            log.warning("we lost envelopes the peer had sent us: it sends them again", **detail)
    return True


def _mend(tx: Tx, line: Any, ours: dict[str, Any], theirs: dict[str, Any], role: str) -> int:
    """Mend our outgoing direction by the peer's counters (the module's docstring). Each
    mending is logged in the ledger as `line.resync`; nothing is written when the two
    agree. Returns how many of the envelopes sent again the peer had lost for certain."""
    expects, sent = int(theirs["next_in"]), int(ours["next_out"])
    facts = {"line": line.id, "peer": line.peer, "role": role, "ours": ours, "theirs": theirs}
    if expects > sent:
        # We lost envelopes we had sent: the peer holds numbers up to expects - 1.
        tx.conn.execute(update(lines).where(lines.c.id == line.id).values(next_out_seq=expects))
        ledger.append(tx, "line.resync", tx.now, {**facts, "skipped": [sent, expects]})
        detail = {"peer": line.peer, "lost_from": sent, "lost_to": expects - 1}
        alerts.raise_alert(
            tx, RESYNCHRONISED, f"{line.peer} going on from {expects} at {rfc3339(tx.now)}", detail
        )
        log.warning("we lost envelopes the peer holds: going on after them", **detail)
        return 0
    if expects == sent:
        return 0
    asked = {"b_line": line.id, "b_from": expects}
    read_at = parse_rfc3339(theirs["at"])
    receipts = [json.loads(r) for r in tx.conn.execute(_RECEIPTED, asked).scalars()]
    lost = sum(1 for r in receipts if parse_rfc3339(r["stored_at"]) < read_at)
    if not receipts:
        return 0
    tx.conn.execute(_REQUEUE, asked)
    # Every claim starts again from the oldest, so the line sends them first.
    tx.conn.execute(_UNCLAIM, {"b_line": line.id})
    tx.conn.execute(
        update(lines).where(lines.c.id == line.id).values(batch_id=None, retry_at=None, retry_attempt=0)
    )
    tx.wake_lines.add(line.id)
    ledger.append(
        tx, "line.resync", tx.now, {**facts, "resent_from": expects, "resent": len(receipts), "lost": lost}
    )
    log.warning("sending envelopes again", peer=line.peer, resent_from=expects, resent=len(receipts),
                lost=lost)  # fmt: skip
    if lost:
        detail = {"peer": line.peer, "resent_from": expects, "lost": lost}
        alerts.raise_alert(
            tx, RESYNCHRONISED, f"{line.peer} resent from {expects} at {rfc3339(tx.now)}", detail
        )
    return lost
