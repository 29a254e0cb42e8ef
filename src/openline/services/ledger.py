"""The evidence ledger: entries in, hash tiles and signed checkpoints out, proofs on demand.

A use case appends entries inside its own transaction (`append`), so an event and its
entry commit together. They wait unsequenced until the integrator (`integrate`, run by
the ledger worker in `openline serve`) takes a batch, gives each entry its leaf index and
extends the hash tiles: one write per touched tile, not one per node. Proofs are computed
from the tiles (`openline.core.merkle.range_root`), so they read O(log n) rows.
`sign_checkpoint` signs the tree as it stands, after proving it consistent with the last
checkpoint this station signed. Formats: docs/ledger.md.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, func, insert, literal, or_, select, update

from openline.adapters import db
from openline.adapters.schema import (
    ledger_bundles,
    ledger_calls,
    ledger_checkpoints,
    ledger_pending,
    ledger_state,
    ledger_tiles,
)
from openline.core import encoding, merkle, note
from openline.core import ledger as entries_core
from openline.core import tiles as tiles_core
from openline.core.clock import rfc3339
from openline.core.encoding import b64d, b64e, canonical
from openline.core.tiles import MAX_ENTRY, TILE_HEIGHT, TILE_WIDTH
from openline.errors import Code, InvalidInput, OpenLineError
from openline.services import alerts
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.ledger")
BATCH = 20_000  # entries integrated per transaction
HASH = merkle.HASH_SIZE
MAX_RANGE = 1000  # entries per request for entries by range
# Far beyond any ledger, and within the signed 64-bit integers both databases store sizes
# in: a size asked for beyond it is none this station signed, not a driver's overflow.
# The API's ledger routes take sizes and indexes up to it.
MAX_SIZE = 2**62


class LedgerInconsistent(OpenLineError):
    status = 409
    title = "Ledger inconsistent"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code=Code.CONFLICT)


# Appending ---------------------------------------------------------------------------


# Envelope kinds whose entries are indexed under their `ref`, the call's or the notice's
# id (`ledger_calls`), as the call's and the notice's own entries are: what `prove` reads.
INDEXED = ("call.", "notice.")


def append(
    tx: Tx,
    event_type: str,
    at: int,
    metadata: dict[str, Any],
    *,
    content: str | None = None,
    call_id: str | None = None,
    also_id: str | None = None,
) -> None:
    """Add one entry to the log in this transaction (it is sequenced after the commit),
    indexed under `call_id`, the call's or the notice's id, if given, and under `also_id`
    too (a conflict is in the proof of both its notices)."""
    data = entries_core.entry(event_type, rfc3339(at) or "", metadata, content)
    if len(data) > MAX_ENTRY:
        raise entries_core.EntryError(f"{event_type} entry: {len(data)} bytes, at most {MAX_ENTRY}")
    tx.insert_later(ledger_pending, {"call_id": call_id, "also_id": also_id, "data": data})
    tx.ledger_grew = True


def digest(value: Any) -> str:
    """`sha-256=` and the base64url SHA-256 of a JSON value's canonical form."""
    return encoding.digest(canonical(value))


def with_salt(body: dict[str, Any]) -> dict[str, Any]:
    """The body to seal: with a fresh salt for the ledger's commitment to its content."""
    return {**body, "salt": b64e(secrets.token_bytes(entries_core.SALT_BYTES))}


def body_commitment(body: dict[str, Any]) -> str:
    """The salted commitment to a body's content: everything in it but the salt."""
    salt = b64d(str(body.get("salt", "")), what="body salt")
    content = canonical({k: v for k, v in body.items() if k != "salt"})
    return entries_core.commitment(content, salt)


# Tiles ------------------------------------------------------------------------------

_TILE = select(ledger_tiles.c.hashes).where(
    ledger_tiles.c.level == bindparam("b_level"), ledger_tiles.c.idx == bindparam("b_idx")
)


class Tiles:
    """The hash tiles, read once each per use and cached. Any node of the tree is the
    Merkle root of a run of one tile's hashes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._cache: dict[tuple[int, int], bytes] = {}

    def tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            row = self.conn.execute(_TILE, {"b_level": level, "b_idx": index}).first()
            self._cache[key] = b"" if row is None else bytes(row.hashes)
        return self._cache[key]

    def node(self, height: int, index: int) -> bytes:
        level, k = divmod(height, TILE_HEIGHT)
        t, offset = divmod(index << k, TILE_WIDTH)
        data = self.tile(level, t)
        begin, end = offset * HASH, (offset + (1 << k)) * HASH
        if len(data) < end:
            raise merkle.ProofError(f"node {height}/{index} is not in the log yet")
        return merkle.perfect_root_of(data[begin:end])

    def root(self, size: int) -> bytes:
        return merkle.EMPTY_ROOT if size == 0 else merkle.range_root(0, size, self.node)

    def extend(self, size: int, leaves: list[bytes]) -> None:
        """Add `leaves` after the first `size`, level by level: a tile that fills up adds
        its root to the level above. Each touched tile is written once, all of them in
        one statement per kind (insert, update)."""
        full = TILE_WIDTH * HASH
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        level, before, new = 0, size, b"".join(leaves)
        while new:
            t, offset = divmod(before, TILE_WIDTH)
            existed = offset > 0
            run = self.tile(level, t)[: offset * HASH] + new if existed else new
            done = []
            for at in range(0, len(run), full):
                data = run[at : at + full]
                row = {"b_level": level, "b_idx": t, "b_hashes": data}
                (updates if existed else inserts).append(row)
                self._cache[(level, t)] = data
                if len(data) == full:
                    done.append(merkle.perfect_root_of(data))
                t, existed = t + 1, False
            level, before, new = level + 1, before // TILE_WIDTH, b"".join(done)
        if inserts:
            self.conn.execute(_TILE_INSERT, inserts)
        if updates:
            self.conn.execute(_TILE_UPDATE, updates)


_TILE_INSERT = insert(ledger_tiles).values(
    level=bindparam("b_level"), idx=bindparam("b_idx"), hashes=bindparam("b_hashes")
)
_TILE_UPDATE = (
    update(ledger_tiles)
    .where(ledger_tiles.c.level == bindparam("b_level"), ledger_tiles.c.idx == bindparam("b_idx"))
    .values(hashes=bindparam("b_hashes"))
)


# Integrating -----------------------------------------------------------------------

_PENDING = select(ledger_pending.c.seq).order_by(ledger_pending.c.seq).limit(bindparam("b_limit"))
_TAKE_SQL = (
    "DELETE FROM ledger_pending WHERE seq IN (SELECT seq FROM ledger_pending ORDER BY seq LIMIT ?) "
    "RETURNING seq, call_id, also_id, data"
)


def _take(conn: Connection, limit: int) -> list[tuple[int, tuple[str, ...], bytes]]:
    """Take the oldest waiting entries off the queue in one statement: exactly the rows it
    returns are gone, even on PostgreSQL where an older row may commit after a newer one.
    Straight to the driver: SQLAlchemy fetches RETURNING rows one at a time."""
    sql = _TAKE_SQL.replace("?", "?" if conn.dialect.paramstyle == "qmark" else "%s")
    result = conn.exec_driver_sql(sql, (limit,))
    return [
        (int(seq), tuple(dict.fromkeys(i for i in (call, also) if i)), bytes(data))
        for seq, call, also, data in result.fetchall()
    ]


_BUNDLE = select(ledger_bundles.c.data).where(ledger_bundles.c.idx == bindparam("b_idx"))


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


# Built once: the ledger worker runs these several times a second under load, and building
# a SQLAlchemy statement costs several times more than executing it.
_STATE = select(ledger_state).where(ledger_state.c.id == 1)
_SET_STATE = (
    update(ledger_state)
    .where(ledger_state.c.id == 1)
    .values(size=bindparam("b_size"), root=bindparam("b_root"), updated_at=bindparam("b_at"))
)


def _locked_state(conn: Connection) -> TreeHead:
    row = conn.execute(db.for_update(conn, _STATE)).one()
    return TreeHead(int(row.size), bytes(row.root))


def head(conn: Connection) -> TreeHead:
    row = conn.execute(_STATE).one()
    return TreeHead(int(row.size), bytes(row.root))


def integrate(station: Station, limit: int = BATCH) -> int:
    """Sequence up to `limit` waiting entries into the tree. Returns how many. Several
    processes may run this: the tree head's row lock lets one at a time extend it."""
    with station.db.read() as conn:  # the common case, answered without the write lock
        if conn.execute(_PENDING, {"b_limit": 1}).first() is None:
            return 0
    with station.db.write() as conn:
        state = _locked_state(conn)
        rows = sorted(_take(conn, limit), key=itemgetter(0))
        if not rows:
            return 0
        size = state.size
        data = [bytes(d) for _, _, d in rows]
        _extend_bundles(conn, size, data)
        tiles = Tiles(conn)
        tiles.extend(size, [merkle.leaf_hash(d) for d in data])
        about = [(about_id, size + i) for i, (_, ids, _) in enumerate(rows) for about_id in ids]
        if about:  # straight to the driver: one row per entry, and SQLAlchemy's per-row cost shows
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            sql = f"INSERT INTO ledger_calls (call_id, idx) VALUES ({mark}, {mark})"  # noqa: S608 - placeholders
            conn.exec_driver_sql(sql, about)
        new = TreeHead(size + len(rows), tiles.root(size + len(rows)))
        conn.execute(_SET_STATE, {"b_size": new.size, "b_root": new.root, "b_at": station.clock.now()})
    return len(rows)


def _extend_bundles(conn: Connection, size: int, data: list[bytes]) -> None:
    """Append entries to the entry bundles: each touched bundle written once, in one
    statement per kind."""
    n, offset = divmod(size, TILE_WIDTH)
    row = conn.execute(_BUNDLE, {"b_idx": n}).first() if offset else None
    if offset and row is None:
        raise LedgerInconsistent(f"entry bundle {n} is missing, though the log has {size} entries")
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    at = 0
    while at < len(data):
        take = data[at : at + TILE_WIDTH - offset]
        prefix = bytes(row.data) if offset and row is not None else b""
        blob = prefix + b"".join(struct.pack(">H", len(d)) + d for d in take)
        (updates if offset else inserts).append({"b_idx": n, "b_data": blob})
        at += len(take)
        n, offset = n + 1, 0
    if inserts:
        conn.execute(_BUNDLE_INSERT, inserts)
    if updates:
        conn.execute(_BUNDLE_UPDATE, updates)


_BUNDLE_INSERT = insert(ledger_bundles).values(idx=bindparam("b_idx"), data=bindparam("b_data"))
_BUNDLE_UPDATE = (
    update(ledger_bundles).where(ledger_bundles.c.idx == bindparam("b_idx")).values(data=bindparam("b_data"))
)


def pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(ledger_pending)).scalar_one())


# Proofs and entries ----------------------------------------------------------------


def _check_size(conn: Connection, size: int) -> TreeHead:
    current = head(conn)
    if not 0 < size <= current.size:
        raise InvalidInput(f"tree size must be 1 to {current.size} (the log's size), got {size}")
    return current


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    _check_size(conn, size)
    if not 0 <= index < size:
        raise InvalidInput(f"entry index must be 0 to {size - 1} in a tree of size {size}, got {index}")
    tiles = Tiles(conn)
    return [merkle.range_root(lo, hi, tiles.node) for lo, hi in merkle.inclusion_ranges(index, size)]


def consistency_proof(conn: Connection, size1: int, size2: int) -> list[bytes]:
    _check_size(conn, size2)
    if not 0 < size1 <= size2:
        raise InvalidInput(f"sizes must satisfy 0 < size1 <= size2, got {size1} and {size2}")
    tiles = Tiles(conn)
    return [merkle.range_root(lo, hi, tiles.node) for lo, hi in merkle.consistency_ranges(size1, size2)]


def root_at(conn: Connection, size: int) -> bytes:
    _check_size(conn, size)
    return Tiles(conn).root(size)


def entries(conn: Connection, start: int, end: int) -> list[tuple[int, bytes]]:
    """Entries [start, end) of the log as (index, bytes)."""
    current = head(conn)
    if not 0 <= start < end <= current.size:
        raise InvalidInput(f"entry range must satisfy 0 <= start < end <= {current.size}, got {start}, {end}")
    if end - start > MAX_RANGE:
        raise InvalidInput(f"at most {MAX_RANGE} entries per request, asked for {end - start}")
    first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
    rows = conn.execute(
        select(ledger_bundles.c.idx, ledger_bundles.c.data)
        .where(ledger_bundles.c.idx >= first, ledger_bundles.c.idx <= last)
        .order_by(ledger_bundles.c.idx)
    ).all()
    out = []
    for row in rows:
        base = int(row.idx) * TILE_WIDTH
        for i, data in enumerate(tiles_core.decode_bundle(bytes(row.data))):
            if start <= base + i < end:
                out.append((base + i, data))
    return out


def call_entries(conn: Connection, call_id: str) -> list[tuple[int | None, bytes]]:
    """Every entry indexed under a call's (or a notice's) id, in log order; None for the
    indexes of those not yet sequenced."""
    indexes = conn.execute(
        select(ledger_calls.c.idx).where(ledger_calls.c.call_id == call_id).order_by(ledger_calls.c.idx)
    ).scalars()
    wanted = [int(i) for i in indexes]
    bundles: dict[int, list[bytes]] = {}  # each bundle read and decoded once
    for n in sorted({i // TILE_WIDTH for i in wanted}):
        blob = conn.execute(_BUNDLE, {"b_idx": n}).scalar_one()
        bundles[n] = tiles_core.decode_bundle(bytes(blob))
    out: list[tuple[int | None, bytes]] = [(i, bundles[i // TILE_WIDTH][i % TILE_WIDTH]) for i in wanted]
    waiting = conn.execute(
        select(ledger_pending.c.data)
        .where(or_(ledger_pending.c.call_id == call_id, ledger_pending.c.also_id == call_id))
        .order_by(ledger_pending.c.seq)
    ).scalars()
    return out + [(None, bytes(d)) for d in waiting]


# Checkpoints ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str
    signed_at: int
    cosigned_by: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),  # standard base64, as in the note
            "note": self.note,
            "signed_at": rfc3339(self.signed_at),
            "cosigned_by": list(self.cosigned_by),
        }


def _checkpoint(row: Any) -> SignedCheckpoint:
    by = tuple(p for p in str(row.cosigned_by).split(",") if p)
    return SignedCheckpoint(int(row.size), bytes(row.root), str(row.note), int(row.signed_at), by)


_LATEST = select(ledger_checkpoints).order_by(ledger_checkpoints.c.size.desc()).limit(1)
_LATEST_COSIGNED = _LATEST.where(ledger_checkpoints.c.cosigned_by != "")


def latest_checkpoint(conn: Connection, *, cosigned: bool = False) -> SignedCheckpoint | None:
    """The latest checkpoint this station signed; with `cosigned`, the latest that any
    peer has cosigned (`cosigned_checkpoint`)."""
    if cosigned:
        return cosigned_checkpoint(conn)
    row = conn.execute(_LATEST).first()
    return None if row is None else _checkpoint(row)


def cosigned_checkpoint(conn: Connection, by: Iterable[str] = ()) -> SignedCheckpoint | None:
    """The latest checkpoint that every peer in `by` has cosigned, or any peer if `by` is
    empty. A checkpoint keeps the cosignatures it got and a peer is asked for the newest
    only, so while one peer is silent, the checkpoints the others cosign are not its:
    evidence about a line rests on what that line's peer cosigned (docs/ledger.md)."""
    query = _LATEST_COSIGNED
    listed = literal(",") + ledger_checkpoints.c.cosigned_by + literal(",")
    for peer in by:
        query = query.where(listed.contains(f",{peer},", autoescape=True))
    row = conn.execute(query).first()
    return None if row is None else _checkpoint(row)


def checkpoint_of_size(conn: Connection, size: int) -> SignedCheckpoint | None:
    """The checkpoint of `size` entries, if this station signed one. Every checkpoint is
    kept, so the evidence of an older one (the one a report was computed against) can
    still be exported."""
    if not 0 < size <= MAX_SIZE:
        return None
    row = conn.execute(select(ledger_checkpoints).where(ledger_checkpoints.c.size == size)).first()
    return None if row is None else _checkpoint(row)


def sign_checkpoint(station: Station) -> SignedCheckpoint | None:
    """Sign the tree as it stands, unless the last checkpoint already has its size.

    Never signs two inconsistent checkpoints: the new tree must extend the last signed
    one, which its own tiles must prove. If they cannot (a database restored from an old
    backup, rows edited by hand), it signs nothing and raises a `ledger_inconsistent`
    alert. Returns the new checkpoint, or None when there was nothing new to sign."""
    # The proof and the signature are made in a read transaction: under load the write
    # lock is what every message waits for, and holding it for them showed as latency
    # spikes. The write transaction then signs only what it finds unchanged.
    with station.db.read() as conn:
        current, signed = head(conn), latest_checkpoint(conn)
        if _nothing_new(current, signed):
            return None  # the common case, answered without the write lock
        ready = None
        if signed is None or _inconsistency(conn, signed, current) is None:
            ready = _signed_note(station, current)
    with station.tx() as tx:
        state = _locked_state(tx.conn)
        last = latest_checkpoint(tx.conn)
        if ready is None or state != current or _key(last) != _key(signed):
            # Something moved since the read (an integration, a checkpoint signed by another
            # process), or the read found a problem: decide again, holding the lock.
            if _nothing_new(state, last):
                return None
            if last is not None:
                problem = _inconsistency(tx.conn, last, state)
                if problem:
                    alerts.raise_alert(
                        tx,
                        "ledger_inconsistent",
                        f"own:{last.size}",
                        {"signed_size": last.size, "log_size": state.size, "problem": problem},
                    )
                    log.error("ledger inconsistent: no checkpoint signed", problem=problem)
                    return None
            ready = _signed_note(station, state)
        tx.conn.execute(
            insert(ledger_checkpoints).values(
                size=state.size, root=state.root, note=ready, signed_at=tx.now, cosigned_by=""
            )
        )
        return SignedCheckpoint(state.size, state.root, ready, tx.now, ())


def _nothing_new(state: TreeHead, last: SignedCheckpoint | None) -> bool:
    return state.size == 0 or _key(last) == (state.size, state.root)


def _key(checkpoint: SignedCheckpoint | None) -> tuple[int, bytes] | None:
    return None if checkpoint is None else (checkpoint.size, checkpoint.root)


def _signed_note(station: Station, state: TreeHead) -> str:
    origin = station.card.origin
    return note.sign(note.Checkpoint(origin, state.size, state.root).body(), origin, station.keys.ledger)


def _inconsistency(conn: Connection, last: SignedCheckpoint, state: TreeHead) -> str | None:
    if state.size < last.size:
        return f"the log has {state.size} entries; checkpoint {last.size} was signed before"
    try:
        if state.size == last.size:
            if state.root != last.root:
                raise merkle.ProofError(f"another root for size {last.size}")
        else:
            proof = consistency_proof(conn, last.size, state.size)
            merkle.verify_consistency(last.size, state.size, last.root, state.root, proof)
        if Tiles(conn).root(last.size) != last.root:
            raise merkle.ProofError(f"the tiles give another root for size {last.size}")
    except (merkle.ProofError, InvalidInput) as exc:
        return str(exc)
    return None


def add_cosignature(conn: Connection, size: int, peer: str, signature: note.Signature) -> None:
    """Add a peer's verified cosignature to our checkpoint of `size` (in the caller's write
    transaction)."""
    row = conn.execute(
        db.for_update(conn, select(ledger_checkpoints).where(ledger_checkpoints.c.size == size))
    ).one()
    cp = _checkpoint(row)
    text = note.parse(cp.note).with_signature(signature).render()
    by = ",".join(sorted({*cp.cosigned_by, peer}))
    conn.execute(
        update(ledger_checkpoints).where(ledger_checkpoints.c.size == size).values(note=text, cosigned_by=by)
    )


def status(conn: Connection) -> dict[str, Any]:
    """What the console and `openline ledger status` show."""
    current = head(conn)
    last = latest_checkpoint(conn)
    cosigned = latest_checkpoint(conn, cosigned=True)
    return {
        "size": current.size,
        "root": base64.b64encode(current.root).decode(),
        "pending": pending(conn),
        "checkpoint": None if last is None else last.to_json(),
        "cosigned_checkpoint": None if cosigned is None else cosigned.to_json(),
    }


def entry_json(index: int, data: bytes) -> dict[str, Any]:
    """An entry as the API shows it: its exact bytes (base64) and its fields. Entries hold
    metadata and commitments only, never content, so every role may see them."""
    return {"index": index, "entry": base64.b64encode(data).decode(), "fields": json.loads(data)}
