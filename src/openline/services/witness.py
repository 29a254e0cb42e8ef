"""Cosigning over the line: each station witnesses its peer's ledger.

Both directions speak C2SP tlog-witness `add-checkpoint` (docs/ledger.md). As the log,
`push` sends our newest checkpoint to a peer with a consistency proof from the size the
peer last cosigned, and adds the cosignature it gets back to our checkpoint. It sends our
signature alone: the cosignatures of our other peers would name them to this one. As the
witness, `add_checkpoint` checks a peer's checkpoint against the last one of theirs we
cosigned, atomically with recording the new one. A validly signed checkpoint that
contradicts what the peer signed before (a fork, a truncation, a rewritten entry) is
refused, kept as evidence, and raises a `ledger_fork` alarm on the watch floor.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, insert, select, update

from openline.adapters import db
from openline.adapters.schema import alerts as alerts_table
from openline.adapters.schema import ledger_evidence, ledger_peers, lines
from openline.adapters.transport import ADD_CHECKPOINT_PATH, Transport
from openline.core import backoff, merkle, note
from openline.core.card import cosigner_name
from openline.core.clock import MICROS
from openline.core.encoding import digits
from openline.errors import OpenLineError
from openline.services import alerts, ledger
from openline.services.lines import ACTIVE, peer_card
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.witness")
MAX_PROOF_LINES = 63
SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Request:
    old: int
    proof: list[bytes]
    checkpoint: str  # the signed note


class BadRequest(ValueError):
    pass


def parse_request(body: str) -> Request:
    """`old <size>`, up to 63 base64 proof lines, a blank line, then the signed checkpoint."""
    head, sep, checkpoint = body.partition("\n\n")
    if not sep:
        raise BadRequest("expected an old size line, proof lines, a blank line and a checkpoint")
    first, *proof_lines = head.split("\n")
    size = first.removeprefix("old ")
    if size == first or not digits(size) or (size != "0" and size.startswith("0")):
        raise BadRequest(f"bad old size line {first[:40]!r}")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise BadRequest(f"at most {MAX_PROOF_LINES} proof lines, got {len(proof_lines)}")
    proof = []
    for i, line in enumerate(proof_lines):
        try:
            h = base64.b64decode(line, validate=True)
        except ValueError:  # binascii.Error, or characters outside ASCII
            raise BadRequest(f"proof line {i + 1} is not base64") from None
        if len(h) != merkle.HASH_SIZE:
            raise BadRequest(f"proof line {i + 1}: expected a 32-byte hash")
        proof.append(h)
    return Request(int(size), proof, checkpoint)


def render_request(old: int, proof: list[bytes], checkpoint: str) -> str:
    lines_ = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return "\n".join(lines_) + "\n\n" + checkpoint


# As the witness ---------------------------------------------------------------------


def _peer_row(tx: Tx, peer: str) -> Any:
    query = select(ledger_peers).where(ledger_peers.c.peer == peer)
    row = tx.conn.execute(db.for_update(tx.conn, query)).first()
    if row is None:
        tx.conn.execute(insert(ledger_peers).values(peer=peer))
        row = tx.conn.execute(db.for_update(tx.conn, query)).one()
    return row


def _contradiction(tx: Tx, peer: str, kind: str, body: str, row: Any, detail: str) -> None:
    """Keep a validly signed checkpoint that contradicts an earlier one, and sound the alarm.
    A peer retries the same request until it is cosigned, which this one never will be:
    the evidence is kept once."""
    kept = tx.conn.execute(
        select(ledger_evidence.c.id).where(ledger_evidence.c.peer == peer, ledger_evidence.c.request == body)
    ).first()
    if kept is not None:
        return
    tx.conn.execute(
        insert(ledger_evidence).values(
            peer=peer,
            kind=kind,
            received_at=tx.now,
            request=body,
            contradicts=row.witnessed_note,
            detail=detail,
        )
    )
    alerts.raise_alert(
        tx,
        "ledger_fork",
        f"{peer}:{kind}:{row.witnessed_size}",
        {"peer": peer, "contradiction": kind, "witnessed_size": int(row.witnessed_size), "problem": detail},
    )
    log.error("peer ledger contradicts itself", peer=peer, kind=kind, detail=detail)


def add_checkpoint(station: Station, peer: str, body: str) -> Answer:
    """Answer a peer's add-checkpoint request (its request signature already checked)."""
    try:
        req = parse_request(body)
        signed = note.parse(req.checkpoint)
        cp = note.parse_checkpoint(signed.text)
    except (BadRequest, note.NoteError) as exc:
        return Answer(400, f"{exc}\n")
    # The card and the signature are checked before the write transaction: they need no
    # lock, and a station under load queues every message behind that lock.
    with station.db.read() as conn:
        card = peer_card(conn, peer)
    if cp.origin != card.origin:
        return Answer(404, f"unknown origin {cp.origin!r}: {peer}'s ledger is {card.origin!r}\n")
    try:
        peer_sig = note.verify(signed, card.ledger_verifier())
    except note.NoteError as exc:
        return Answer(403, f"{exc}\n")
    with station.tx() as tx:
        row = _peer_row(tx, peer)
        seen, seen_root = int(row.witnessed_size), row.witnessed_root
        if req.old > cp.size:
            if req.old == seen:
                why = f"checkpoint of size {cp.size} after size {seen} was cosigned"
                _contradiction(tx, peer, "truncation", body, row, why)
            return Answer(400, f"old size {req.old} is larger than the checkpoint's {cp.size}\n")
        if req.old != seen:
            return Answer(409, f"{seen}\n", SIZE_TYPE)
        if req.old == cp.size and cp.root != seen_root:
            _contradiction(tx, peer, "fork", body, row, f"two roots for size {cp.size}")
            return Answer(409, f"{seen}\n", SIZE_TYPE)
        if 0 < req.old < cp.size:
            try:
                merkle.verify_consistency(req.old, cp.size, bytes(seen_root), cp.root, req.proof)
            except merkle.ProofError as exc:
                _contradiction(tx, peer, "rewrite", body, row, f"size {req.old} to {cp.size}: {exc}")
                return Answer(422, f"consistency proof: {exc}\n")
        elif req.proof:
            return Answer(400, "the proof must be empty when the old size is 0 or the checkpoint's\n")
        name = cosigner_name(station.name, station.card.fingerprint)
        sig = note.cosign(signed.text, name, station.keys.cosign, tx.now // MICROS)
        # Kept with the peer's signature and ours only: any cosignatures of its other
        # parties that came along are not ours to hold (nor to export in a bundle).
        kept = note.Note(signed.text, (peer_sig, sig))
        tx.conn.execute(
            update(ledger_peers)
            .where(ledger_peers.c.peer == peer)
            .values(
                witnessed_size=cp.size,
                witnessed_root=cp.root,
                witnessed_note=kept.render(),
                witnessed_at=tx.now,
            )
        )
    return Answer(200, sig.line())


# As the log -------------------------------------------------------------------------


def push(station: Station, transport: Transport, peer: str) -> bool:
    """Have `peer` cosign our newest checkpoint. Returns whether it did (or already had)."""
    with station.db.read() as conn:
        cp = ledger.latest_checkpoint(conn)
        row = conn.execute(select(ledger_peers).where(ledger_peers.c.peer == peer)).first()
        card = peer_card(conn, peer)
    if cp is None or peer in cp.cosigned_by:
        return True
    old = 0 if row is None else int(row.cosigned_size)
    try:
        for _ in range(2):  # a 409 tells us the size the peer has: then once more from there
            answer = transport.post_text(
                peer, card.url, ADD_CHECKPOINT_PATH, _request(station, peer, old, cp)
            )
            if (
                answer.status == 409
                and answer.content_type.startswith(SIZE_TYPE)
                and digits(answer.text.strip())
            ):
                old = int(answer.text.strip())
                _remember_size(station, peer, old)
                continue
            break
        if answer.status == 422 and answer.text.startswith("consistency proof") and old > 0:
            # Our log no longer extends the one the peer cosigned up to `old`: it was rolled
            # back (a restored backup) and has grown past that size again since.
            _lost(station, peer, old, cp.size)
        if answer.status != 200:
            raise OpenLineError(
                f"{peer} did not cosign checkpoint {cp.size}: {answer.status} {answer.text[:300]}"
            )
        try:
            sig = note.verify(note.parse(cp.note + answer.text), card.cosigner_verifier())
        except note.NoteError as exc:
            raise OpenLineError(f"{peer}'s cosignature on checkpoint {cp.size}: {exc}") from None
    except OpenLineError as exc:
        _failed(station, peer, str(exc.detail))
        return False
    with station.tx() as tx:  # the cosignature and the peer's progress, in one transaction
        ledger.add_cosignature(tx.conn, cp.size, peer, sig)
        _peer_row(tx, peer)
        tx.conn.execute(
            update(ledger_peers)
            .where(ledger_peers.c.peer == peer)
            .values(
                cosigned_size=cp.size, cosigned_at=tx.now, attempt=0, next_attempt_at=None, last_error=None
            )
        )
    return True


def _request(station: Station, peer: str, old: int, cp: ledger.SignedCheckpoint) -> str:
    # Our signature alone: the cosignatures other peers added name our other parties.
    signed = note.parse(cp.note).keeping([station.card.ledger_verifier()]).render()
    if old > cp.size:
        # The peer has cosigned more of our log than we have: ours was truncated (a restored
        # backup?). Say so here, and show the peer; no proof can bridge it.
        _lost(station, peer, old, cp.size)
        return render_request(old, [], signed)
    proof: list[bytes] = []
    if 0 < old < cp.size:
        with station.db.read() as conn:
            proof = ledger.consistency_proof(conn, old, cp.size)
    return render_request(old, proof, signed)


INCONSISTENT = "ledger_inconsistent"


def _lost(station: Station, peer: str, old: int, size: int) -> None:
    """The peer cosigned `old` entries of a log that is no longer ours (shorter than it, or
    grown again from a shorter one): raise `ledger_inconsistent`, once for that size. The
    peer will not cosign this log again, so it is asked no more (`due_peers`)."""
    with station.tx() as tx:
        alerts.raise_alert(
            tx, INCONSISTENT, f"{peer}:{old}", {"peer": peer, "peer_cosigned_size": old, "our_size": size}
        )


def cosigned_lost(conn: Connection, peer: str) -> int | None:
    """How many entries `peer` cosigned of a log this station no longer holds (it was
    restored from a backup, or its log rolled back), or None. The peer will never cosign
    this log again: its witness holds the other one (`add_checkpoint`)."""
    subjects = conn.execute(
        select(alerts_table.c.subject).where(
            alerts_table.c.kind == INCONSISTENT, alerts_table.c.subject.like(f"{peer}:%")
        )
    ).scalars()
    sizes = [int(s.rsplit(":", 1)[1]) for s in subjects if digits(s.rsplit(":", 1)[1])]
    return max(sizes) if sizes else None


def _remember_size(station: Station, peer: str, size: int) -> None:
    with station.tx() as tx:
        _peer_row(tx, peer)
        tx.conn.execute(update(ledger_peers).where(ledger_peers.c.peer == peer).values(cosigned_size=size))


def _failed(station: Station, peer: str, error: str) -> None:
    with station.tx() as tx:
        row = _peer_row(tx, peer)
        attempt = int(row.attempt) + 1
        if cosigned_lost(tx.conn, peer) is not None:  # asked no more (`due_peers`)
            tx.conn.execute(
                update(ledger_peers)
                .where(ledger_peers.c.peer == peer)
                .values(attempt=attempt, last_error=error[:1000], next_attempt_at=None)
            )
            return
        tx.conn.execute(
            update(ledger_peers)
            .where(ledger_peers.c.peer == peer)
            .values(
                attempt=attempt,
                last_error=error[:1000],
                next_attempt_at=tx.now + round(backoff.delay(attempt) * MICROS),
            )
        )
    log.warning("checkpoint not cosigned", peer=peer, error=error)


def due_peers(station: Station) -> list[str]:
    """Peers on active lines that have not cosigned our newest checkpoint and may be
    asked now (not waiting out a backoff)."""
    now = station.clock.now()
    with station.db.read() as conn:
        cp = ledger.latest_checkpoint(conn)
        if cp is None:
            return []
        rows = conn.execute(
            select(lines.c.peer, ledger_peers.c.next_attempt_at)
            .select_from(lines.outerjoin(ledger_peers, ledger_peers.c.peer == lines.c.peer))
            .where(lines.c.state == ACTIVE)
        ).all()
        due = [
            r.peer
            for r in rows
            if r.peer not in cp.cosigned_by and (r.next_attempt_at is None or r.next_attempt_at <= now)
        ]
        # One that keeps the log we lost will not cosign ours: asked no more.
        return [peer for peer in due if cosigned_lost(conn, peer) is None]
