"""Real evidence built from the core functions, for the verifier's tests (and for testing the
station's exporter against the verifier): stations with real keys and cards, ledgers of
canonical entries, hash tiles, cosigned checkpoints, bundles and call proofs."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openline.core import ledger, merkle, note, tiles
from openline.core.card import Card, make_card
from openline.core.clock import rfc3339
from openline.core.encoding import canonical, digest
from openline.core.envelope import Envelope, make_envelope, make_receipt
from openline.core.keys import StationKeys

T0 = 1_795_000_000 * 1_000_000  # 2026-11-18, in microseconds
COSIGNED_AT = 1_795_000_900  # seconds, as in a cosignature
EXPORTED_AT = "2026-11-26T10:00:00.000000Z"
LINE = "0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Station:
    keys: StationKeys
    card: Card

    @property
    def name(self) -> str:
        return self.card.name


def station(name: str, keys: StationKeys | None = None) -> Station:
    keys = keys or StationKeys.generate()
    return Station(keys, make_card(keys, name, [f"https://{name}.example.org"], ["en"]))


def at(seconds: float) -> str:
    """An RFC 3339 time `seconds` after T0."""
    return rfc3339(T0 + round(seconds * 1_000_000)) or ""


def synthetic_entries(n: int, peer: str = "moscow") -> list[bytes]:
    """`n` canonical ledger entries about messages on one line (what a busy log holds)."""
    return [
        ledger.entry(
            "envelope.sent",
            at(i),
            {
                "envelope": str(uuid.UUID(int=i + 1)),
                "line": LINE,
                "peer": peer,
                "seq": i + 1,
                "kind": "call.say",
            },
            "sha-256=" + "A" * 43,
        )
        for i in range(n)
    ]


def checkpoint_note(
    signer: Station,
    size: int,
    root: bytes,
    cosigners: list[Station],
    *,
    time: int = COSIGNED_AT,
    ledger_key: Any = None,
) -> str:
    """The signer's checkpoint note, cosigned by each of `cosigners` at `time`."""
    body = note.Checkpoint(signer.card.origin, size, root).body()
    n = note.parse(note.sign(body, signer.card.origin, ledger_key or signer.keys.ledger))
    for c in cosigners:
        n = n.with_signature(note.cosign(body, c.card.cosigner_verifier().name, c.keys.cosign, time))
    return n.render()


def hash_tiles(entries: list[bytes]) -> dict[str, bytes]:
    """tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>] for a log of these entries."""
    leaves = [merkle.leaf_hash(e) for e in entries]
    files = {
        tiles.tile_path(level, index, width): b"".join(tiles.tile_hashes(level, index, width, leaves))
        for level, index, width in tiles.tiles_for_size(len(entries))
    }
    for i in range(0, len(entries), tiles.TILE_WIDTH):
        chunk = entries[i : i + tiles.TILE_WIDTH]
        files[tiles.tile_path("entries", i // tiles.TILE_WIDTH, len(chunk))] = tiles.encode_bundle(chunk)
    return files


@dataclass
class Bundle:
    """An evidence bundle as {relative path: bytes}; `read` is what the verifier takes."""

    files: dict[str, bytes]
    ours: Station
    peers: list[Station]
    entries: list[bytes]

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def write(self, directory: Path) -> Path:
        for rel, data in self.files.items():
            target = directory / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return directory


def bundle(
    entries: list[bytes],
    ours: Station,
    peers: list[Station],
    *,
    peer_entries: dict[str, list[bytes]] | None = None,
    checkpoint: str | None = None,
) -> Bundle:
    """A bundle of `ours`'s log of `entries`, cosigned by every peer; each peer named in
    `peer_entries` also gets the checkpoint of its own log, cosigned by `ours`."""
    root = merkle.root([merkle.leaf_hash(e) for e in entries])
    files = hash_tiles(entries)
    files["checkpoint"] = (checkpoint or checkpoint_note(ours, len(entries), root, peers)).encode()
    for s in (ours, *peers):
        files[f"cards/{s.name}.json"] = canonical(s.card.to_json())
    by_name = {p.name: p for p in peers}
    for name, theirs in (peer_entries or {}).items():
        their_root = merkle.root([merkle.leaf_hash(e) for e in theirs])
        files[f"peer-checkpoints/{name}"] = checkpoint_note(
            by_name[name], len(theirs), their_root, [ours]
        ).encode()
    manifest = {
        "format": "openline-evidence-bundle/v1",
        "station": ours.name,
        "origin": ours.card.origin,
        "size": len(entries),
        "root": base64.b64encode(root).decode(),
        "exported_at": EXPORTED_AT,
        "cards": {s.name: f"cards/{s.name}.json" for s in (ours, *peers)},
        "peer_checkpoints": {name: f"peer-checkpoints/{name}" for name in peer_entries or {}},
    }
    files["bundle.json"] = canonical(manifest)
    return Bundle(files, ours, peers, entries)


# Call proofs -------------------------------------------------------------------------


@dataclass
class CallLog:
    """A log in which one call happened among other traffic, and what a proof needs of it."""

    ours: Station
    peer: Station
    call: str
    entries: list[bytes] = field(default_factory=list)
    about: list[int] = field(default_factory=list)  # indexes of the call's entries
    receipts: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0

    def add(self, raw: bytes, *, about_call: bool = True) -> int:
        self.entries.append(raw)
        if about_call:
            self.about.append(len(self.entries) - 1)
        return len(self.entries) - 1

    def event(self, event: str, when: float, actor: str, envelope: str | None, **detail: Any) -> None:
        meta: dict[str, Any] = {"call": self.call, "actor": actor}
        if envelope is not None:
            meta["envelope"] = envelope
        if detail:
            meta["detail"] = detail
        self.add(ledger.entry(f"call.{event}", at(when), meta))

    def envelope(self, sender: Station, receiver: Station, kind: str, when: float) -> Envelope:
        self.seq += 1
        env, _ = make_envelope(
            sender.keys,
            recipient=receiver.keys.encryption.public_key(),
            envelope_id=str(uuid.uuid4()),
            line=LINE,
            sender=sender.name,
            receiver=receiver.name,
            seq=self.seq,
            time=at(when),
            kind=kind,
            ref=self.call,
            body={"priority": "flash", "subject": "convoy on route 4"} if kind == "call.place" else {},
        )
        meta = {
            "envelope": env.id,
            "line": LINE,
            "peer": self.peer.name,
            "seq": env.seq,
            "kind": kind,
            "ref": self.call,
            "header": env.digest(),
        }
        if sender is self.ours:
            self.add(ledger.entry("envelope.sent", at(when), meta))
        else:
            receipt = make_receipt(self.ours.keys, env, at(when + 0.2))
            self.add(
                ledger.entry("envelope.received", at(when), {**meta, "receipt": digest(canonical(receipt))})
            )
        return env

    def receipt(self, env: Envelope, when: float, signer: StationKeys | None = None) -> dict[str, Any]:
        """The peer's receipt for our envelope, and its receipt.received entry."""
        r = make_receipt(signer or self.peer.keys, env, at(when))
        meta = {
            "envelope": env.id,
            "line": LINE,
            "peer": self.peer.name,
            "receipt": digest(canonical(r)),
            "stored_at": r["stored_at"],
        }
        self.add(ledger.entry("receipt.received", at(when), meta))
        self.receipts.append(r)
        return r

    def filler(self, n: int) -> None:
        for raw in synthetic_entries(n, self.peer.name):
            self.add(raw, about_call=False)

    def proof(self, *, cosigners: list[Station] | None = None) -> dict[str, Any]:
        """The call proof of docs/ledger.md, over a checkpoint of the whole log."""
        leaves = [merkle.leaf_hash(e) for e in self.entries]
        cp = checkpoint_note(
            self.ours, len(leaves), merkle.root(leaves), [self.peer] if cosigners is None else cosigners
        )
        return {
            "format": "openline-call-proof/v1",
            "call": self.call,
            "station": self.ours.name,
            "cards": {s.name: s.card.to_json() for s in (self.ours, self.peer)},
            "checkpoint": cp,
            "entries": [
                {
                    "index": i,
                    "entry": base64.b64encode(self.entries[i]).decode(),
                    "proof": [base64.b64encode(h).decode() for h in merkle.inclusion_proof(i, leaves)],
                }
                for i in self.about
            ],
            "receipts": list(self.receipts),
        }


def call_log(outcome: str, ours: Station, peer: Station, *, filler: int = 30) -> CallLog:
    """Our station calls the peer; the call is picked up (then closed), or missed."""
    log = CallLog(ours, peer, str(uuid.uuid4()))
    log.filler(filler)
    place = log.envelope(ours, peer, "call.place", 0)
    log.add(
        ledger.entry(
            "call.placed",
            at(0),
            {
                "call": log.call,
                "line": LINE,
                "peer": peer.name,
                "direction": "out",
                "priority": "flash",
                "envelope": place.id,
                "actor": f"{ours.name}:alice",
            },
        )
    )
    log.receipt(place, 0.4)
    log.event("delivered", 0.4, "system", place.id)
    log.filler(filler // 3)
    ring = log.envelope(peer, ours, "call.ringing", 0.5)
    log.event("ringing", 0.5, f"station:{peer.name}", ring.id, deadline_at=at(60.5))
    if outcome == "picked_up":
        pick = log.envelope(peer, ours, "call.pickup", 12)
        log.event("picked_up", 12, f"{peer.name}:ivan", pick.id)
        close = log.envelope(ours, peer, "call.close", 300)
        log.event("closed", 300, f"{ours.name}:alice", close.id)
        log.receipt(close, 300.3)
    else:
        miss = log.envelope(peer, ours, "call.missed", 60.5)
        log.event("missed", 60.5, f"station:{peer.name}", miss.id, deadline_at=at(60.5))
    log.filler(filler)
    return log


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2) + "\n")
    return path
