"""Evidence that leaves the station: the tlog-tiles bundle and the proof of one call or
one notice.

Both are built from a checkpoint a peer has cosigned, so whoever receives them needs only
the station cards to check them (`openline verify`). A proof about a line rests on the
latest checkpoint that line's peer has cosigned, and shows of it our signature and that
peer's cosignature only: with several lines, the other peers' names, keys and times are
theirs. With `disclose`, a proof also carries the opened bodies of the envelopes in it,
so that anyone can check them against the commitments its entries hold. Formats:
docs/ledger.md.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from openline.adapters.schema import (
    calls,
    envelopes,
    ledger_bundles,
    ledger_peers,
    ledger_tiles,
    lines,
    notices,
    peers,
)
from openline.core import note, tiles
from openline.core.clock import rfc3339
from openline.errors import Conflict, InvalidInput, NotFound
from openline.services import ledger, outbox, witness
from openline.services.lines import SUSPENDED, peer_card
from openline.services.station import Station

BUNDLE_FORMAT = "openline-evidence-bundle/v1"
PROOF_FORMAT = "openline-call-proof/v1"
NOTICE_PROOF_FORMAT = "openline-notice-proof/v1"
PROOF_FORMATS = {"call": PROOF_FORMAT, "notice": NOTICE_PROOF_FORMAT}
Progress = Callable[[int, int], None]
NONE_COSIGNED = (
    "no checkpoint of this ledger has been cosigned by a peer yet: with the line up, "
    "one is within seconds of the log growing (`openline ledger checkpoint` asks now)"
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def cosigned_for(
    station: Station, conn: Connection, peer: str, size: int | None = None
) -> ledger.SignedCheckpoint:
    """The latest checkpoint `peer` has cosigned (or the one of `size` entries), its note
    carrying our signature and that peer's cosignature only: the checkpoint of every piece
    of evidence about its line. Raises `Conflict`, saying since when the peer has been
    silent, when it has none."""
    peer_card(conn, peer)  # an unknown name is not_found, before any question of cosigning
    if size is not None:
        chosen = of_size(conn, size)
        if peer not in chosen.cosigned_by:
            raise Conflict(
                f"{peer} has not cosigned the checkpoint of {size} entries: a peer is asked to "
                "cosign the newest only (`openline ledger status` shows how far it has)"
            )
        return shown_to(station, conn, chosen, [peer])
    cp = ledger.cosigned_checkpoint(conn, [peer])
    if cp is None:
        if ledger.cosigned_checkpoint(conn) is None and witness.cosigned_lost(conn, peer) is None:
            raise Conflict(NONE_COSIGNED)
        raise Conflict(f"no checkpoint of this ledger has been cosigned by {peer} yet{_silence(conn, peer)}")
    return shown_to(station, conn, cp, [peer])


def shown_to(
    station: Station, conn: Connection, cp: ledger.SignedCheckpoint, peers: Iterable[str]
) -> ledger.SignedCheckpoint:
    """`cp` with our signature and the cosignatures of those of `peers` that cosigned it,
    and nothing of the other peers: their names, key IDs and times are theirs."""
    wanted = set(peers)
    by = tuple(p for p in cp.cosigned_by if p in wanted)
    keys = [station.card.ledger_verifier(), *(peer_card(conn, p).cosigner_verifier() for p in by)]
    kept = note.parse(cp.note).keeping(keys).render()
    return ledger.SignedCheckpoint(cp.size, cp.root, kept, cp.signed_at, by)


def of_size(conn: Connection, size: int) -> ledger.SignedCheckpoint:
    """The checkpoint of `size` entries, which a peer has cosigned: an export of one that
    none has would not pass `openline verify`. Raises `NotFound` or `Conflict`."""
    cp = ledger.checkpoint_of_size(conn, size)
    if cp is None:
        latest = ledger.latest_checkpoint(conn)
        newest = "none yet" if latest is None else f"the latest has {latest.size} entries"
        raise NotFound(
            f"this station signed no checkpoint of {size} entries ({newest}); "
            "`openline report` names the size of the checkpoint it was computed against"
        )
    if not cp.cosigned_by:
        raise Conflict(
            f"no peer has cosigned the checkpoint of {size} entries, so its bundle would prove "
            "nothing to a third party; export one that a peer has cosigned"
        )
    return cp


def _silence(conn: Connection, peer: str) -> str:
    """Why `peer` has not cosigned more, if asking it failed: since when, and the error."""
    line = conn.execute(select(lines.c.state).where(lines.c.peer == peer)).first()
    if line is not None and line.state == SUSPENDED:
        return f"; and {peer} will not while its line is suspended here (`openline lines`)"
    lost = witness.cosigned_lost(conn, peer)
    if lost is not None:
        return (
            f"; and {peer} never will: it cosigned {lost} entries of the log this station held "
            f"before it was restored from a backup (alert ledger_inconsistent), and its witness "
            f"keeps that one. Prove it on {peer}'s station (`openline prove` there)"
        )
    row = conn.execute(select(ledger_peers).where(ledger_peers.c.peer == peer)).first()
    if row is None or not row.attempt:
        return ": try again in a few seconds"
    since = f"since {rfc3339(row.cosigned_at)}" if row.cosigned_at is not None else "anything yet"
    return f"; {peer} has not cosigned {since} (the last error asking it: {row.last_error})"


def _cards(station: Station, conn: Connection, only: str | None = None) -> dict[str, dict[str, Any]]:
    """Our card and the peers' (or only `only`'s)."""
    out = {station.name: station.card.to_json()}
    query = select(peers.c.name, peers.c.card).order_by(peers.c.name)
    if only is not None:
        query = query.where(peers.c.name == only)
    for row in conn.execute(query):
        out[row.name] = json.loads(row.card)
    return out


# The bundle -------------------------------------------------------------------------


def export_bundle(
    station: Station,
    out: Path,
    progress: Progress | None = None,
    *,
    peer: str | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """Write the bundle into `out` (which must not exist or be empty). It is written
    beside it first and renamed into place, so a failed export leaves nothing behind.

    With `peer`, the bundle for that peer's eyes: the latest checkpoint it cosigned, with
    our signature and its cosignature only, its card and its checkpoint alone. With
    `size`, the checkpoint of that many entries instead of the latest: the one a
    transparency report names, which may be older while a peer is silent."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} exists and is not an empty directory: choose a new one")
    # Into an existing directory only, as `prove` writes its file: a mistyped path must not
    # make a tree of directories wherever it points.
    if not out.parent.is_dir():
        raise InvalidInput(f"cannot write {out}: {out.parent} is not a directory")
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        with station.db.read() as conn:
            manifest = _write_bundle(station, conn, work, progress, peer, size)
        if out.exists():
            out.rmdir()
        os.replace(work, out)
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_bundle(
    station: Station,
    conn: Connection,
    root: Path,
    progress: Progress | None,
    peer: str | None,
    size: int | None,
) -> dict[str, Any]:
    if peer is not None:
        cp = cosigned_for(station, conn, peer, size)
    elif size is not None:
        cp = of_size(conn, size)
    else:
        latest = ledger.cosigned_checkpoint(conn)
        if latest is None:
            raise Conflict(NONE_COSIGNED)
        cp = latest
    root.mkdir()
    _write(root, "checkpoint", cp.note.encode())
    cards = _cards(station, conn, peer)
    for name, card in cards.items():
        _write(root, f"cards/{name}.json", json.dumps(card, indent=2).encode() + b"\n")
    witnessed = {}
    query = select(ledger_peers).where(ledger_peers.c.witnessed_note.is_not(None))
    if peer is not None:
        query = query.where(ledger_peers.c.peer == peer)
    ours = station.card.cosigner_verifier()
    for row in conn.execute(query):
        # Its signature and ours only: witnesses used to keep the cosignatures of the peer's
        # other parties that came along with its checkpoint.
        held = note.parse(str(row.witnessed_note)).keeping(
            [peer_card(conn, row.peer).ledger_verifier(), ours]
        )
        witnessed[row.peer] = f"peer-checkpoints/{row.peer}"
        _write(root, witnessed[row.peer], held.render().encode())
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


# The proof of one call or notice ----------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """A proof, and the peers of the other lines whose conflicting notices were left out
    of it (one name per conflict left out)."""

    doc: dict[str, Any]
    left_out: tuple[str, ...] = ()


def prove(
    station: Station, subject_id: str, *, with_conflicts: bool = False, disclose: bool = False
) -> dict[str, Any]:
    """The proof of a call or of a notice, whichever `subject_id` names."""
    return proof(station, subject_id, with_conflicts=with_conflicts, disclose=disclose).doc


def proof(
    station: Station, subject_id: str, *, with_conflicts: bool = False, disclose: bool = False
) -> Proof:
    """`prove`, saying what it left out. With `disclose`, the proof carries the opened body
    of each envelope in it (`disclosed`): what was said, for whoever receives the file. The
    caller decides who may ask for that (an auditor may not)."""
    with station.db.read() as conn:
        is_notice = conn.execute(select(notices.c.id).where(notices.c.id == subject_id)).first() is not None
        is_call = conn.execute(select(calls.c.id).where(calls.c.id == subject_id)).first() is not None
        refused = "" if is_notice or is_call else outbox.refused_on_arrival(conn, subject_id)
    if not (is_notice or is_call):
        raise NotFound(f"no call or notice with id {subject_id!r}{refused}")
    if is_notice:
        return _prove(station, "notice", subject_id, with_conflicts, disclose)
    return _prove(station, "call", subject_id, with_conflicts, disclose)


def prove_call(station: Station, call_id: str, *, disclose: bool = False) -> dict[str, Any]:
    """The call's entries with inclusion proofs in the latest checkpoint the peer has
    cosigned, and the peer's signed receipts for the envelopes we sent about it."""
    return _prove(station, "call", call_id, False, disclose).doc


def prove_notice(
    station: Station, notice_id: str, *, with_conflicts: bool = False, disclose: bool = False
) -> dict[str, Any]:
    """The same for a notice: its entries (sent or received, delivered, acknowledged or
    rejected, withdrawn, removed, expired, every conflict with a notice of its line, and
    `with_conflicts` those with notices of other lines too) and the peer's receipts."""
    return _prove(station, "notice", notice_id, with_conflicts, disclose).doc


def _other_line(conn: Connection, subject_id: str, peer: str, data: bytes) -> str | None:
    """The peer of the other notice of a conflict entry, if that notice is on another line
    than the subject's (its id and window are that line's business), else None."""
    entry = json.loads(data)
    if entry.get("type") != "notice.conflict":
        return None
    other = entry.get("other_notice") if entry.get("notice") == subject_id else entry.get("notice")
    other_peer = conn.execute(select(notices.c.peer).where(notices.c.id == other)).scalar()
    return None if other_peer == peer else str(other_peer or "an unknown line")


def _disclosed(
    station: Station, conn: Connection, found: list[tuple[int | None, bytes]]
) -> list[dict[str, Any]]:
    """The opened body, salt included, of every envelope whose sending or receiving entry
    is in `found` and commits to its content: our own sealed copy of what we sent, the
    peer's body of what we received. The salt is what lets anyone recompute the entry's
    commitment (docs/ledger.md, "Disclosing content")."""
    committed = [
        entry["envelope"]
        for entry in (json.loads(data) for _, data in found)
        if entry.get("type") in ("envelope.sent", "envelope.received") and "content" in entry
    ]
    rows = {
        row.id: row
        for row in conn.execute(
            select(envelopes.c.id, envelopes.c.direction, envelopes.c.wire, envelopes.c.self_body).where(
                envelopes.c.id.in_(committed)
            )
        )
    }
    return [
        {"envelope": envelope_id, "body": outbox.open_body(station, rows[envelope_id])}
        for envelope_id in dict.fromkeys(committed)
        if envelope_id in rows
    ]


def _prove(station: Station, about: str, subject_id: str, with_conflicts: bool, disclose: bool) -> Proof:
    table = calls if about == "call" else notices
    with station.db.read() as conn:
        peer = conn.execute(select(table.c.peer).where(table.c.id == subject_id)).scalar()
        if peer is None:
            raise NotFound(f"no {about} with id {subject_id!r}")
        found = ledger.call_entries(conn, subject_id)
        if not found:
            hint = ": a draft is not logged until it is sent" if about == "notice" else ""
            raise NotFound(f"{about} {subject_id} has no entries in the ledger{hint}")
        left_out: list[str] = []
        if about == "notice" and not with_conflicts:
            kept = []
            for index, data in found:
                other = _other_line(conn, subject_id, peer, data)
                if other is None:
                    kept.append((index, data))
                else:
                    left_out.append(other)
            found = kept
        cp = cosigned_for(station, conn, peer)
        late = [i for i, _ in found if i is None or i >= cp.size]
        if late:
            raise Conflict(
                f"{len(late)} entries of {about} {subject_id} are not yet in a checkpoint cosigned by "
                f"{peer} (the latest it cosigned has {cp.size} entries){_silence(conn, peer)}"
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
        cards = _cards(station, conn, peer)
        disclosed = _disclosed(station, conn, found) if disclose else None
    doc: dict[str, Any] = {
        "format": PROOF_FORMATS[about],
        about: subject_id,
        "station": station.name,
        "cards": cards,
        "checkpoint": cp.note,
        "entries": items,
        "receipts": receipts,
    }
    if disclosed is not None:  # without it, the proof is content-free, as it always was
        doc["disclosed"] = disclosed
    return Proof(doc, tuple(left_out))
