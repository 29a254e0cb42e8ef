"""The inbox: envelopes from a peer, checked, stored and receipted exactly once.

Checks, in order, each refusal carrying its wire code and changing nothing:
shape (`malformed`, `oversize`), addressing (`unknown_station`, `wrong_destination`),
the line (`line_not_active`), the signature and body digest (`bad_signature`), identity
(`replay`: a known id with other content, or a used sequence number) and order
(`sequence_gap`). A known id with the same content is a retry: it is answered with what
we answered the first time.

An envelope refused as a `replay` is the peer's and can never be stored (its id or its
number is taken by another of its envelopes): the refusal is signed, for the peer to
settle for good, and changes nothing here (`_refuse_replay`).

Then the content: the sealed body opened, checked and applied. An envelope refused there
is the peer's and in its turn, so it is refused for good: it takes its sequence number,
is kept with our signed refusal, and raises an `envelope_refused` alert, and the envelopes
behind it are applied (`_refuse`).

The stored envelope, our receipt and its effect on the call commit in one transaction,
so a crash at any point leaves either all of it or none of it.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from sqlalchemy import bindparam, select, update

from openline import metrics
from openline.adapters.db import for_update
from openline.adapters.schema import envelopes, lines
from openline.core.clock import parse_rfc3339, rfc3339, stamped_before
from openline.core.encoding import visible
from openline.core.envelope import (
    Envelope,
    make_receipt,
    make_refusal,
    open_sealed,
    parse_envelope,
    verify_envelope,
)
from openline.core.keys import signing_public_key
from openline.core.ledger import EntryError
from openline.errors import Code, EnvelopeRefused, IllegalTransition, InvalidInput
from openline.services import alerts, calls, ledger, notices, parallel, peer_clock
from openline.services.lines import ACTIVE, drop_backoff, pinned_signing_key, refuse_if_suspended
from openline.services.station import Station, Tx

MAX_BATCH = 50
log = structlog.get_logger("openline.inbox")

# Built once: every inbound envelope runs these, and building a SQLAlchemy statement
# costs several times more than executing it.
_LINE_OF_PEER = select(lines).where(lines.c.peer == bindparam("b_peer"))
_KNOWN = select(envelopes.c.id, envelopes.c.wire, envelopes.c.receipt).where(
    envelopes.c.id.in_(bindparam("b_ids", expanding=True))
)
_LINE_RECEIVED = (
    update(lines)
    .where(lines.c.id == bindparam("b_line"))
    .values(next_in_seq=bindparam("b_next"), last_contact_at=bindparam("b_at"))
)


def _refusal(index: int, env_id: Any, exc: EnvelopeRefused) -> dict[str, Any]:
    return {
        "index": index,
        "id": env_id if isinstance(env_id, str) else None,
        "status": "refused",
        "error": {"code": exc.code.value, "detail": exc.detail},
    }


def receive_batch(
    station: Station, origin: str, batch_id: str, payload: Any, *, pinned: str | None = None
) -> dict[str, Any]:
    """Process one batch from `origin` (already authenticated by request signature, whose
    check read the peer's pinned signing key: `pinned`, else it is read here).

    The peer has reached us, so it is up: any backoff of ours towards it is dropped in the
    same transaction, and our deliverer wakes (RFC 1123 5.3.1.1; what
    `delivery.peer_contacted` does for the other requests). Not when we refused every
    envelope of the batch: then the line is broken, not down (a station restored from an
    old backup reuses sequence numbers), and two stations refusing each other would
    otherwise answer each refusal with an immediate retry, many times a second, for ever."""
    if (
        not isinstance(payload, dict)
        or set(payload) != {"envelopes"}
        or not isinstance(payload["envelopes"], list)
    ):
        raise EnvelopeRefused(Code.MALFORMED, 'batch: expected {"envelopes": [...]}')
    items = payload["envelopes"]
    if not items:
        raise EnvelopeRefused(Code.MALFORMED, "batch: at least one envelope")
    if len(items) > MAX_BATCH:
        raise EnvelopeRefused(Code.OVERSIZE, f"batch: at most {MAX_BATCH} envelopes, got {len(items)}")
    if pinned is None:
        with station.db.read() as conn:
            pinned = pinned_signing_key(conn, origin)
    if pinned is None:
        raise EnvelopeRefused(Code.UNKNOWN_STATION, f"no line to {origin!r}")
    sender_key = signing_public_key(pinned)  # pinned: it never changes
    # Shapes and signatures are checked before the transaction and on every core.
    checked = parallel.map_in_order(lambda item: _parse_and_verify(item, sender_key), items)
    results: list[dict[str, Any]] = []
    with station.tx() as tx:
        # On PostgreSQL the line row is locked: batches from one peer are applied one at a
        # time even when several `serve` processes share the database.
        line = tx.conn.execute(for_update(tx.conn, _LINE_OF_PEER), {"b_peer": origin}).first()
        if line is None:
            raise EnvelopeRefused(Code.UNKNOWN_STATION, f"no line to {origin!r}")
        refuse_if_suspended(line.state, origin)  # suspended since the request was authenticated
        # Only this transaction moves the line's inbound sequence, so it is counted here
        # and written once with the batch.
        next_seq = int(line.next_in_seq)
        stored_at = rfc3339(tx.now) or ""  # the time in every receipt of this batch
        ids = [_id_of(item) for item in items]
        known = {
            row.id: (json.loads(row.wire), json.loads(row.receipt))
            for row in tx.conn.execute(_KNOWN, {"b_ids": [i for i in ids if i is not None]})
        }
        progressed = False  # an envelope stored, or taken: the line works
        for index, env_id in enumerate(ids):
            try:
                # Every check comes before the first write, so a refusal changes nothing
                # without a savepoint per envelope.
                result = _receive_one(station, tx, line, next_seq, stored_at, checked[index], index, known)
                results.append(result)
                if result["status"] == "stored" or result.pop("taken", False):
                    next_seq += 1  # stored, or refused for good: either way its number is taken
                    progressed = True
                elif result["status"] == "duplicate":
                    progressed = True
            except EnvelopeRefused as exc:
                log.warning(
                    "envelope refused",
                    peer=origin,
                    batch=batch_id,
                    envelope=env_id,
                    code=exc.code.value,
                    detail=exc.detail,
                )
                results.append(_refusal(index, env_id, exc))
        tx.conn.execute(_LINE_RECEIVED, {"b_line": line.id, "b_next": next_seq, "b_at": tx.now})
        _check_peer_clock(station, tx, line, checked, results)
        if line.retry_at is not None and progressed:
            drop_backoff(tx, line.id)
    for result in results:  # counted once committed
        metrics.ENVELOPES_RECEIVED.labels(result["status"]).inc()
        if result["status"] == "refused":
            metrics.ENVELOPES_REFUSED.labels(result["error"]["code"]).inc()
    return {"batch": batch_id, "results": results}


def _check_peer_clock(
    station: Station, tx: Tx, line: Any, checked: list[Any], results: list[dict[str, Any]]
) -> None:
    """An envelope stamped later than it reached us proves the peer's clock ahead of ours
    by at least that much (`peer_clock`). Written to only when it is too far ahead."""
    stamped = [
        parse_rfc3339(checked[r["index"]][0].header["time"]) for r in results if r["status"] == "stored"
    ]
    if stamped and max(stamped) - tx.now > peer_clock.limit_of(station):
        peer_clock.observe(station, tx, line, stamped_before(max(stamped), tx.now), "envelope times")


def _id_of(item: Any) -> str | None:
    header = item.get("header") if isinstance(item, dict) else None
    env_id = header.get("id") if isinstance(header, dict) else None
    return env_id if isinstance(env_id, str) else None


def _parse_and_verify(item: Any, sender_key: Any) -> tuple[Envelope, bytes | EnvelopeRefused]:
    """The envelope (or its shape error, raised) and its sealed body (or the signature error,
    returned so that addressing errors are still reported first)."""
    env = parse_envelope(item)
    try:
        return env, verify_envelope(env, sender_key)
    except EnvelopeRefused as exc:
        return env, exc


def _receive_one(
    station: Station,
    tx: Tx,
    line: Any,
    expected: int,
    stored_at: str,
    checked: tuple[Envelope, bytes | EnvelopeRefused] | Exception,
    index: int,
    known: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> dict[str, Any]:
    if isinstance(checked, Exception):
        raise checked
    env, verified = checked
    h = env.header
    if h["from"] != line.peer:
        raise EnvelopeRefused(
            Code.UNKNOWN_STATION, f"envelope from {h['from']!r} in a request from {line.peer!r}"
        )
    if h["to"] != station.name:
        raise EnvelopeRefused(
            Code.WRONG_DESTINATION, f"envelope addressed to {h['to']!r}; this station is {station.name!r}"
        )
    if h["line"] != line.id:
        raise EnvelopeRefused(
            Code.WRONG_DESTINATION, f"envelope for line {h['line']}; the line with {line.peer!r} is {line.id}"
        )
    if line.state != ACTIVE:
        raise EnvelopeRefused(Code.LINE_NOT_ACTIVE, f"the line with {line.peer!r} is {line.state}")
    if isinstance(verified, EnvelopeRefused):
        raise verified
    sealed = verified
    if env.id in known:
        stored, receipt = known[env.id]
        if stored == env.to_json():
            if receipt.get("type") == "refusal":  # refused the first time: refused again, alike
                return {"index": index, "id": env.id, "status": "refused", "error": receipt["error"],
                        "refusal": receipt}  # fmt: skip
            return {"index": index, "id": env.id, "status": "duplicate", "receipt": receipt}
        used = EnvelopeRefused(Code.REPLAY, f"envelope id {env.id} was already used for other content")
        return _refuse_replay(station, line, stored_at, env, index, used)
    if env.seq < expected:
        used = EnvelopeRefused(
            Code.REPLAY, f"sequence number {env.seq} was already used (next expected {expected})"
        )
        return _refuse_replay(station, line, stored_at, env, index, used)
    if env.seq > expected:
        raise EnvelopeRefused(Code.SEQUENCE_GAP, f"expected sequence number {expected}, got {env.seq}")
    try:
        body = open_sealed(sealed, station.keys.encryption, h)
        notice = env.kind.startswith("notice.")
        if notice:
            notices.validate_body(env.kind, body, tx.now)
        else:
            calls.validate_body(env.kind, body)
        content = _commitment(body)
        # Each checks first, then writes.
        (notices if notice else calls).apply_inbound(station, tx, line, env, body)
    except (EnvelopeRefused, InvalidInput, IllegalTransition) as exc:
        return _refuse(station, tx, line, stored_at, env, index, known, _for_good(exc))
    receipt = make_receipt(station.keys, env, stored_at)
    # `at` is the sender's time; `stored_at` ours (a suspended line takes what waited only
    # once it is resumed).
    _log(
        tx,
        "envelope.received",
        line,
        env,
        content=content,
        receipt=ledger.digest(receipt),
        stored_at=stored_at,
    )
    _keep(tx, line, env, known, receipt)
    return {"index": index, "id": env.id, "status": "stored", "receipt": receipt}


def _for_good(exc: EnvelopeRefused | InvalidInput | IllegalTransition) -> EnvelopeRefused:
    """Why the content is refused, as a wire code: a check written for our own API met by a
    peer's body is `malformed`, and an event that cannot happen to what we hold keeps its
    `illegal_transition`."""
    if isinstance(exc, InvalidInput):
        return EnvelopeRefused(Code.MALFORMED, f"envelope body: {exc.detail}")
    if isinstance(exc, IllegalTransition):
        return EnvelopeRefused(Code.ILLEGAL_TRANSITION, exc.detail)
    return exc


def _refuse(
    station: Station,
    tx: Tx,
    line: Any,
    stored_at: str,
    env: Envelope,
    index: int,
    known: dict[str, tuple[dict[str, Any], dict[str, Any]]],
    exc: EnvelopeRefused,
) -> dict[str, Any]:
    """An envelope that is the peer's (its signature verified) and whose turn it was, but
    whose content we will not apply. It takes its sequence number with it: we keep it,
    answer with a signed refusal the peer settles, and the line goes on. Refused without
    taking its number, every later envelope would wait behind it for good."""
    refusal = make_refusal(station.keys, env, stored_at, exc)
    code = refusal["error"]["code"]
    _log(tx, "envelope.refused", line, env, refusal=ledger.digest(refusal), code=code)
    _keep(tx, line, env, known, refusal, refused=visible(f"{code}: {refusal['error']['detail']}"))
    alerts.raise_alert(
        tx,
        alerts.ENVELOPE_REFUSED,
        env.id,
        {
            "peer": line.peer,
            "direction": "in",
            "envelope_kind": env.kind,
            "ref": env.header["ref"],
            "code": code,
        },
    )
    log.warning(
        "envelope refused, its sequence number taken",
        peer=line.peer,
        envelope=env.id,
        seq=env.seq,
        kind=env.kind,
        code=code,
        detail=exc.detail[:200],
    )
    return {"index": index, "id": env.id, "status": "refused", "error": refusal["error"], "refusal": refusal,
            "taken": True}  # fmt: skip


def _refuse_replay(
    station: Station, line: Any, stored_at: str, env: Envelope, index: int, exc: EnvelopeRefused
) -> dict[str, Any]:
    """An envelope of the peer's (its signature verified) whose id or sequence number we
    hold for another of its envelopes: it can never be stored, so the peer may settle it
    for good, on our signed refusal. Nothing changes here, and nothing is kept: what we
    hold under that number is the record. (The peer sends such envelopes only after it
    was restored from a backup: what it made since reuses the numbers it had used.)"""
    refusal = make_refusal(station.keys, env, stored_at, exc)
    log.warning(
        "envelope refused: its number is used",
        peer=line.peer,
        envelope=env.id,
        seq=env.seq,
        kind=env.kind,
        detail=exc.detail[:200],
    )
    return {"index": index, "id": env.id, "status": "refused", "error": refusal["error"], "refusal": refusal}


def _log(
    tx: Tx, entry_type: str, line: Any, env: Envelope, *, content: str | None = None, **more: Any
) -> None:
    h = env.header
    ledger.append(
        tx,
        entry_type,
        parse_rfc3339(h["time"]),
        {
            "envelope": env.id,
            "line": line.id,
            "peer": line.peer,
            "seq": env.seq,
            "kind": env.kind,
            "ref": h["ref"],
            "header": env.digest(),
            **more,
        },
        content=content,
        call_id=h["ref"] if env.kind.startswith(ledger.INDEXED) else None,
    )


def _keep(
    tx: Tx,
    line: Any,
    env: Envelope,
    known: dict[str, tuple[dict[str, Any], dict[str, Any]]],
    answer: dict[str, Any],
    *,
    refused: str | None = None,
) -> None:
    """Store the envelope with our answer to it (its receipt or its refusal)."""
    h = env.header
    known[env.id] = (env.to_json(), answer)  # the same envelope twice in one batch
    tx.insert_later(
        envelopes,
        {
            "id": env.id,
            "line_id": line.id,
            "direction": "in",
            "seq": env.seq,
            "kind": env.kind,
            "call_id": h["ref"],
            "time": parse_rfc3339(h["time"]),
            "wire": json.dumps(env.to_json(), separators=(",", ":")),
            "stored_at": tx.now,
            "delivered_at": tx.now,
            "receipt": json.dumps(answer, separators=(",", ":")),
            "refused": refused,
        },
    )


def _commitment(body: dict[str, Any]) -> str:
    """The ledger's commitment to the body's content, from the salt the sender put in it."""
    try:
        return ledger.body_commitment(body)
    except (EnvelopeRefused, EntryError):
        raise EnvelopeRefused(
            Code.MALFORMED, "envelope body: needs a salt of 32 bytes (base64url) for the ledger"
        ) from None
