"""Evidence that leaves the station: the tlog-tiles bundle and the proof of one call or
one notice.

Both are built from the latest checkpoint a peer has cosigned, so whoever receives them
needs only the two station cards to check them (`openline verify`). Formats:
docs/ledger.md.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from openline.adapters.schema import (
    calls,
    envelopes,
    ledger_bundles,
    ledger_peers,
    ledger_tiles,
    notices,
    peers,
)
from openline.core import tiles
from openline.core.clock import rfc3339
from openline.errors import Conflict, InvalidInput, NotFound
from openline.services import ledger
from openline.services.station import Station

BUNDLE_FORMAT = "openline-evidence-bundle/v1"
PROOF_FORMAT = "openline-call-proof/v1"
NOTICE_PROOF_FORMAT = "openline-notice-proof/v1"
PROOF_FORMATS = {"call": PROOF_FORMAT, "notice": NOTICE_PROOF_FORMAT}
Progress = Callable[[int, int], None]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _cosigned(conn: Connection) -> ledger.SignedCheckpoint:
    cp = ledger.latest_checkpoint(conn, cosigned=True)
    if cp is None:
        raise Conflict(
            "no checkpoint of this ledger has been cosigned by a peer yet: with the line up, "
            "one is within seconds of the log growing (`openline ledger checkpoint` asks now)"
        )
    return cp


def _cards(station: Station, conn: Connection) -> dict[str, dict[str, Any]]:
    out = {station.name: station.card.to_json()}
    for row in conn.execute(select(peers.c.name, peers.c.card).order_by(peers.c.name)):
        out[row.name] = json.loads(row.card)
    return out


# The bundle -------------------------------------------------------------------------


def export_bundle(station: Station, out: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Write the bundle into `out` (which must not exist or be empty). It is written
    beside it first and renamed into place, so a failed export leaves nothing behind."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} exists and is not an empty directory: choose a new one")
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        with station.db.read() as conn:
            manifest = _write_bundle(station, conn, work, progress)
        if out.exists():
            out.rmdir()
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_bundle(
    station: Station, conn: Connection, root: Path, progress: Progress | None
) -> dict[str, Any]:
    cp = _cosigned(conn)
    root.mkdir(parents=True)
    _write(root, "checkpoint", cp.note.encode())
    cards = _cards(station, conn)
    for name, card in cards.items():
        _write(root, f"cards/{name}.json", json.dumps(card, indent=2).encode() + b"\n")
    witnessed = {}
    for row in conn.execute(select(ledger_peers).where(ledger_peers.c.witnessed_note.is_not(None))):
        witnessed[row.peer] = f"peer-checkpoints/{row.peer}"
        _write(root, witnessed[row.peer], str(row.witnessed_note).encode())
    for level, index, width in tiles.tiles_for_size(cp.size):
        row = conn.execute(
            select(ledger_tiles.c.hashes).where(ledger_tiles.c.level == level, ledger_tiles.c.idx == index)
        ).one()
        _write(root, tiles.tile_path(level, index, width), bytes(row.hashes)[: width * ledger.HASH])
    bundles = -(-cp.size // tiles.TILE_WIDTH)
    for n in range(bundles):
        width = min(tiles.TILE_WIDTH, cp.size - n * tiles.TILE_WIDTH)
        row = conn.execute(select(ledger_bundles.c.data).where(ledger_bundles.c.idx == n)).one()
        kept = tiles.decode_bundle(bytes(row.data))[:width]  # the bundle may have grown since
        _write(root, tiles.tile_path("entries", n, width), tiles.encode_bundle(kept))
        if progress is not None:
            progress(n * tiles.TILE_WIDTH + width, cp.size)
    manifest = {
        "format": BUNDLE_FORMAT,
        "station": station.name,
        "origin": station.card.origin,
        "size": cp.size,
        "root": _b64(cp.root),
        "exported_at": rfc3339(station.clock.now()),
        "cards": {name: f"cards/{name}.json" for name in cards},
        "peer_checkpoints": witnessed,
    }
    _write(root, "bundle.json", json.dumps(manifest, indent=2).encode() + b"\n")
    return manifest


# The proof of one call --------------------------------------------------------------


def prove(station: Station, subject_id: str) -> dict[str, Any]:
    """The proof of a call or of a notice, whichever `subject_id` names."""
    with station.db.read() as conn:
        is_notice = conn.execute(select(notices.c.id).where(notices.c.id == subject_id)).first() is not None
        is_call = conn.execute(select(calls.c.id).where(calls.c.id == subject_id)).first() is not None
    if not (is_notice or is_call):
        raise NotFound(f"no call or notice with id {subject_id!r}")
    return prove_notice(station, subject_id) if is_notice else prove_call(station, subject_id)


def prove_call(station: Station, call_id: str) -> dict[str, Any]:
    """The call's entries with inclusion proofs in the latest cosigned checkpoint, and
    the peer's signed receipts for the envelopes we sent about it."""
    return _prove(station, "call", call_id)


def prove_notice(station: Station, notice_id: str) -> dict[str, Any]:
    """The same for a notice: its entries (sent or received, delivered, acknowledged or
    rejected, withdrawn, removed, expired, every conflict that names it) and the peer's
    receipts."""
    return _prove(station, "notice", notice_id)


def _prove(station: Station, about: str, subject_id: str) -> dict[str, Any]:
    table = calls if about == "call" else notices
    with station.db.read() as conn:
        peer = conn.execute(select(table.c.peer).where(table.c.id == subject_id)).scalar()
        if peer is None:
            raise NotFound(f"no {about} with id {subject_id!r}")
        found = ledger.call_entries(conn, subject_id)
        if not found:
            hint = ": a draft is not logged until it is sent" if about == "notice" else ""
            raise NotFound(f"{about} {subject_id} has no entries in the ledger{hint}")
        cp = _cosigned(conn)
        late = [i for i, _ in found if i is None or i >= cp.size]
        if late:
            raise Conflict(
                f"{len(late)} entries of {about} {subject_id} are not yet in a cosigned checkpoint "
                f"(the latest has {cp.size} entries); try again in a few seconds"
            )
        items = [
            {
                "index": index,
                "entry": _b64(data),
                "proof": [_b64(h) for h in ledger.inclusion_proof(conn, int(index), cp.size)],
            }
            for index, data in found
            if index is not None
        ]
        receipts = [
            json.loads(row.receipt)
            for row in conn.execute(
                select(envelopes.c.receipt)
                .where(
                    envelopes.c.call_id == subject_id,  # a call's or a notice's id
                    envelopes.c.direction == "out",
                    envelopes.c.receipt.is_not(None),
                )
                .order_by(envelopes.c.seq)
            )
        ]
        cards = {name: card for name, card in _cards(station, conn).items() if name in (station.name, peer)}
    return {
        "format": PROOF_FORMATS[about],
        about: subject_id,
        "station": station.name,
        "cards": cards,
        "checkpoint": cp.note,
        "entries": items,
        "receipts": receipts,
    }
