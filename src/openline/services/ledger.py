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
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, insert, select, update

from openline.adapters import db
from openline.adapters.schema import ledger_checkpoints, ledger_entries, ledger_state, ledger_tiles
from openline.core import encoding, merkle, note
from openline.core import ledger as entries_core
from openline.core.clock import rfc3339
from openline.core.encoding import b64d, b64e, canonical
from openline.core.tiles import MAX_ENTRY, TILE_HEIGHT, TILE_WIDTH
from openline.errors import Code, InvalidInput, NotFound, OpenLineError
from openline.services import alerts
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.ledger")
BATCH = 20_000  # entries integrated per transaction
HASH = merkle.HASH_SIZE
MAX_RANGE = 1000  # entries per request for entries by range


class LedgerInconsistent(OpenLineError):
    status = 409
    title = "Ledger inconsistent"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code=Code.CONFLICT)


# Appending ---------------------------------------------------------------------------


def append(
    tx: Tx,
    event_type: str,
    at: int,
    metadata: dict[str, Any],
    *,
    content: str | None = None,
    call_id: str | None = None,
) -> None:
    """Add one entry to the log in this transaction (it is sequenced after the commit)."""
    data = entries_core.entry(event_type, rfc3339(at) or "", metadata, content)
    if len(data) > MAX_ENTRY:
        raise entries_core.EntryError(f"{event_type} entry: {len(data)} bytes, at most {MAX_ENTRY}")
    tx.insert_later(
        ledger_entries, {"type": event_type, "at": at, "call_id": call_id, "data": data, "idx": None}
    )
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
        first = index << k
        t, offset = divmod(first, TILE_WIDTH)
        data = self.tile(level, t)
        end = (offset + (1 << k)) * HASH
        if len(data) < end:
            raise merkle.ProofError(f"node {height}/{index} is not in the log yet")
        if k == 0:
            return data[offset * HASH : end]
        return merkle.root([data[i : i + HASH] for i in range(offset * HASH, end, HASH)])

    def root(self, size: int) -> bytes:
        return merkle.EMPTY_ROOT if size == 0 else merkle.range_root(0, size, self.node)

    def extend(self, size: int, leaves: list[bytes]) -> None:
        """Add `leaves` after the first `size`, level by level: a tile that fills up adds
        its root to the level above. Writes each touched tile once."""
        level, before, new = 0, size, leaves
        while new:
            t, offset = divmod(before, TILE_WIDTH)
            existed = bool(self.tile(level, t))
            buf = bytearray(self.tile(level, t)[: offset * HASH])
            done: list[bytes] = []
            for h in new:
                buf += h
                if len(buf) == TILE_WIDTH * HASH:
                    self._write(level, t, bytes(buf), existed)
                    done.append(merkle.root([bytes(buf[i : i + HASH]) for i in range(0, len(buf), HASH)]))
                    t, buf, existed = t + 1, bytearray(), False
            if buf:
                self._write(level, t, bytes(buf), existed)
            level, before, new = level + 1, before // TILE_WIDTH, done

    def _write(self, level: int, index: int, data: bytes, existed: bool) -> None:
        if existed:
            self.conn.execute(
                update(ledger_tiles)
                .where(ledger_tiles.c.level == level, ledger_tiles.c.idx == index)
                .values(hashes=data)
            )
        else:
            self.conn.execute(insert(ledger_tiles).values(level=level, idx=index, hashes=data))
        self._cache[(level, index)] = data


# Integrating -----------------------------------------------------------------------

_PENDING = (
    select(ledger_entries.c.seq, ledger_entries.c.data)
    .where(ledger_entries.c.idx.is_(None))
    .order_by(ledger_entries.c.seq)
    .limit(bindparam("b_limit"))
)
_SET_INDEX = (
    update(ledger_entries).where(ledger_entries.c.seq == bindparam("b_seq")).values(idx=bindparam("b_idx"))
)


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


def _locked_state(conn: Connection) -> TreeHead:
    row = conn.execute(db.for_update(conn, select(ledger_state).where(ledger_state.c.id == 1))).one()
    return TreeHead(int(row.size), bytes(row.root))


def head(conn: Connection) -> TreeHead:
    row = conn.execute(select(ledger_state).where(ledger_state.c.id == 1)).one()
    return TreeHead(int(row.size), bytes(row.root))


def integrate(station: Station, limit: int = BATCH) -> int:
    """Sequence up to `limit` waiting entries into the tree. Returns how many. Several
    processes may run this: the tree head's row lock lets one at a time extend it."""
    with station.db.read() as conn:  # the common case, answered without the write lock
        if conn.execute(_PENDING, {"b_limit": 1}).first() is None:
            return 0
    with station.db.write() as conn:
        state = _locked_state(conn)
        rows = conn.execute(_PENDING, {"b_limit": limit}).all()
        if not rows:
            return 0
        size = state.size
        conn.execute(_SET_INDEX, [{"b_seq": r.seq, "b_idx": size + i} for i, r in enumerate(rows)])
        tiles = Tiles(conn)
        tiles.extend(size, [merkle.leaf_hash(bytes(r.data)) for r in rows])
        new = TreeHead(size + len(rows), tiles.root(size + len(rows)))
        conn.execute(
            update(ledger_state)
            .where(ledger_state.c.id == 1)
            .values(size=new.size, root=new.root, updated_at=station.clock.now())
        )
    return len(rows)


def pending(conn: Connection) -> int:
    return len(conn.execute(_PENDING, {"b_limit": BATCH}).all())


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
    rows = conn.execute(
        select(ledger_entries.c.idx, ledger_entries.c.data)
        .where(ledger_entries.c.idx >= start, ledger_entries.c.idx < end)
        .order_by(ledger_entries.c.idx)
    ).all()
    return [(int(r.idx), bytes(r.data)) for r in rows]


def call_entries(conn: Connection, call_id: str) -> list[tuple[int | None, bytes]]:
    """Every entry that names a call, in log order (None: not yet sequenced)."""
    rows = conn.execute(
        select(ledger_entries.c.idx, ledger_entries.c.data)
        .where(ledger_entries.c.call_id == call_id)
        .order_by(ledger_entries.c.seq)
    ).all()
    return [(None if r.idx is None else int(r.idx), bytes(r.data)) for r in rows]


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
            "root": b64e(self.root),
            "note": self.note,
            "signed_at": rfc3339(self.signed_at),
            "cosigned_by": list(self.cosigned_by),
        }


def _checkpoint(row: Any) -> SignedCheckpoint:
    by = tuple(p for p in str(row.cosigned_by).split(",") if p)
    return SignedCheckpoint(int(row.size), bytes(row.root), str(row.note), int(row.signed_at), by)


def latest_checkpoint(conn: Connection, *, cosigned: bool = False) -> SignedCheckpoint | None:
    query = select(ledger_checkpoints).order_by(ledger_checkpoints.c.size.desc()).limit(1)
    if cosigned:
        query = query.where(ledger_checkpoints.c.cosigned_by != "")
    row = conn.execute(query).first()
    return None if row is None else _checkpoint(row)


def checkpoint_at(conn: Connection, size: int) -> SignedCheckpoint:
    row = conn.execute(select(ledger_checkpoints).where(ledger_checkpoints.c.size == size)).first()
    if row is None:
        raise NotFound(f"this station signed no checkpoint of size {size}")
    return _checkpoint(row)


def sign_checkpoint(station: Station) -> SignedCheckpoint | None:
    """Sign the tree as it stands, unless the last checkpoint already has its size.

    Never signs two inconsistent checkpoints: the new tree must extend the last signed
    one, which its own tiles must prove. If they cannot (a database restored from an old
    backup, rows edited by hand), it signs nothing and raises a `ledger_inconsistent`
    alert. Returns the new checkpoint, or None when there was nothing new to sign."""
    with station.db.read() as conn:  # the common case, answered without the write lock
        current, signed = head(conn), latest_checkpoint(conn)
        if current.size == 0 or (
            signed is not None and (signed.size, signed.root) == (current.size, current.root)
        ):
            return None
    with station.tx() as tx:
        state = _locked_state(tx.conn)
        last = latest_checkpoint(tx.conn)
        if state.size == 0 or (last is not None and last.size == state.size and last.root == state.root):
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
        origin = station.card.origin
        text = note.sign(note.Checkpoint(origin, state.size, state.root).body(), origin, station.keys.ledger)
        tx.conn.execute(
            insert(ledger_checkpoints).values(
                size=state.size, root=state.root, note=text, signed_at=tx.now, cosigned_by=""
            )
        )
        return SignedCheckpoint(state.size, state.root, text, tx.now, ())


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


def add_cosignature(station: Station, size: int, peer: str, signature: note.Signature) -> None:
    """Add a peer's verified cosignature to our checkpoint of `size`."""
    with station.db.write() as conn:
        row = conn.execute(
            db.for_update(conn, select(ledger_checkpoints).where(ledger_checkpoints.c.size == size))
        ).one()
        cp = _checkpoint(row)
        text = note.parse(cp.note).with_signature(signature).render()
        by = ",".join(sorted({*cp.cosigned_by, peer}))
        conn.execute(
            update(ledger_checkpoints)
            .where(ledger_checkpoints.c.size == size)
            .values(note=text, cosigned_by=by)
        )


def status(conn: Connection) -> dict[str, Any]:
    """What the console and `openline ledger status` show."""
    current = head(conn)
    last = latest_checkpoint(conn)
    cosigned = latest_checkpoint(conn, cosigned=True)
    return {
        "size": current.size,
        "root": b64e(current.root),
        "pending": pending(conn),
        "checkpoint": None if last is None else last.to_json(),
        "cosigned_checkpoint": None if cosigned is None else cosigned.to_json(),
    }


def entry_json(index: int, data: bytes) -> dict[str, Any]:
    """An entry as the API shows it: its exact bytes (base64) and its fields. Entries hold
    metadata and commitments only, never content, so every role may see them."""
    return {"index": index, "entry": base64.b64encode(data).decode(), "fields": json.loads(data)}
