"""Offline verification of ledger evidence: an exported bundle, or the proof of one call.

The formats are in docs/ledger.md ("Evidence bundle", "Call proof"). Nothing is taken on
the word of the file that carries it: card self-signatures, the checkpoint's signature
and its peers' cosignatures (C2SP signed-note and tlog-cosignature), every tile of the
tree recomputed from the entries (RFC 9162 hashing in the C2SP tlog-tiles layout),
inclusion proofs, and receipt signatures are all checked again from the bytes; so is
each body a proof discloses, against its entry's commitment (`core.disclosure`).

Pure: a bundle is read through a `read(path) -> bytes | None` callable, one entry bundle
at a time, keeping at most 256 hashes per tree level; so a bundle of millions of entries
verifies in constant memory. Binary values in bundle.json and call proofs are standard
base64 (as in checkpoints), accepted in their one canonical spelling only.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, TypeVar

from openline.core import calls, disclosure, merkle, note, tiles
from openline.core.card import NAME_RE, Card, parse_card
from openline.core.clock import MICROS, parse_rfc3339, rfc3339
from openline.core.encoding import canonical, digest, parse_json
from openline.core.envelope import RECEIPT_FIELDS, REFUSAL_FIELDS, refusal_error
from openline.core.keys import signing_public_key, verify
from openline.errors import OpenLineError

BUNDLE_FORMAT = "openline-evidence-bundle/v1"
PROOF_FORMAT = "openline-call-proof/v1"
NOTICE_PROOF_FORMAT = "openline-notice-proof/v1"
ENTRY_VERSION = 1
_W = tiles.TILE_WIDTH
_BUNDLE_FIELDS = frozenset({"format", "station", "origin", "size", "root", "exported_at", "cards"})
_PROOF_FIELDS = frozenset({"format", "station", "cards", "checkpoint", "entries", "receipts"})
_CARD_KEYS = ("signing_key", "encryption_key", "ledger_key", "cosigner_key")
_ENVELOPE_TYPES = frozenset(
    {"envelope.sent", "envelope.received", "envelope.refused", "receipt.received", "refusal.received"}
)
# The entries a station logs when the peer's signed answer to one of its envelopes comes
# back, by the answer's type, and the entry's field that holds the answer's digest.
_ANSWERS = {"receipt": ("receipt.received", "receipt"), "refusal": ("refusal.received", "refusal")}
_ANSWERED = frozenset(t for t, _ in _ANSWERS.values())

Read = Callable[[str], bytes | None]
Progress = Callable[[int, int], None]
T = TypeVar("T")


class NotEvidence(ValueError):
    """The input is not an evidence bundle or a call proof at all: nothing could be checked."""


class _Refused(Exception):
    """The first failure of one group of checks; later checks of the group would only echo it."""


@dataclass(frozen=True)
class Failure:
    check: str  # bundle, card, trust, checkpoint, tree, peer-checkpoint, proof, entry, call, receipt,
    # disclosure
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CardSummary:
    name: str
    fingerprint: str
    trusted: bool | None  # None: no trusted card of its name was given (or none at all)


@dataclass(frozen=True)
class CheckpointSummary:
    origin: str
    size: int
    root: str  # base64, as in the checkpoint


@dataclass(frozen=True)
class Cosignature:
    note: str  # "checkpoint" or "peer-checkpoints/<peer>"
    by: str  # the cosigning station
    key: str  # the cosigner key's name
    time: int  # seconds since the epoch, from the signed cosignature
    at: str


@dataclass(frozen=True)
class StoryEvent:
    at: str
    event: str  # placed, stored, delivered, ringing, picked_up, missed, closed, ...
    text: str


@dataclass(frozen=True)
class Story:
    """What a call proof shows happened, from verified entries and receipts only."""

    call: str
    station: str
    peer: str
    direction: str
    priority: str
    outcome: str
    events: tuple[StoryEvent, ...]


@dataclass
class Result:
    kind: str  # "bundle", "call-proof" or "notice-proof"
    station: str
    cards: list[CardSummary] = field(default_factory=list)
    checkpoint: CheckpointSummary | None = None
    cosignatures: list[Cosignature] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    story: Story | None = None
    # A notice proof's entries, or a bundle's verified `about` one id: the entries that
    # are about it (`About`), in log order, each as {"index", "entry"}.
    about: list[dict[str, Any]] | None = None
    # The bodies a proof disclosed that its entries' commitments vouch for, in its order.
    disclosed: list[disclosure.Disclosure] = field(default_factory=list)
    # How far a proof reaches: the station's log up to its checkpoint, nothing later.
    reach: str | None = None
    # A notice proof's last standing of the notice, from its entries, as of the checkpoint.
    standing: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


def _attempt(result: Result, check: str, step: Callable[[], T]) -> T | None:
    """Run one group of checks; record its first failure and go on with the next group."""
    try:
        return step()
    except _Refused as exc:
        result.failures.append(Failure(check, str(exc)))
        return None


def _passes(result: Result, check: str, step: Callable[[], str]) -> bool:
    """`_attempt` for a check whose success is a line in the report."""
    line = _attempt(result, check, step)
    if line is not None:
        result.passed.append(line)
    return line is not None


def _b64(text: Any, what: str, size: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise _Refused(f"{what}: expected base64 text, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or characters outside ASCII
        raise _Refused(f"{what}: not base64") from None
    if base64.b64encode(raw).decode() != text:  # one spelling per value, or bytes could be flipped unseen
        raise _Refused(f"{what}: not the canonical base64 spelling")
    if size is not None and len(raw) != size:
        raise _Refused(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


def _b64text(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _json(raw: bytes, what: str) -> Any:
    try:
        return parse_json(raw)
    except ValueError:  # UnicodeDecodeError too
        raise _Refused(f"{what}: not JSON") from None


def _fields(data: Any, required: frozenset[str], what: str, optional: frozenset[str] = frozenset()) -> None:
    if not isinstance(data, dict):
        raise _Refused(f"{what}: expected a JSON object, got {type(data).__name__}")
    missing, extra = sorted(required - data.keys()), sorted(data.keys() - required - optional)
    if missing or extra:
        raise _Refused(f"{what}: missing fields {missing}, unknown fields {extra}")


# Cards ---------------------------------------------------------------------------------


def _card(data: Any, name: str, where: str) -> Card:
    try:
        c = parse_card(data)
    except OpenLineError as exc:
        raise _Refused(f"{where}: {exc.detail}") from None
    if c.name != name:
        raise _Refused(f"{where}: the card is {c.name!r}'s, but it is listed as {name!r}")
    return c


def _card_file(read: Read, name: str, path: str) -> Card:
    return _card(_json(_need(read, path), path), name, path)


def _trust(c: Card, trusted: Sequence[Card]) -> str:
    same_name = [t for t in trusted if t.name == c.name]
    if not same_name:
        raise _Refused(
            f"card {c.name}: no trusted card given for {c.name}: with --trust, every card must be "
            "vouched for by one"
        )
    for t in same_name:
        if all(getattr(c, k) == getattr(t, k) for k in _CARD_KEYS):
            return f"card {c.name}: matches the trusted card"
    t = same_name[0]
    differ = ", ".join(k for k in _CARD_KEYS if getattr(c, k) != getattr(t, k))
    fingerprints = (
        f"fingerprint here {c.fingerprint}, trusted {t.fingerprint}"
        if c.fingerprint != t.fingerprint
        else "the same fingerprint, which does not cover the checkpoint keys"
    )
    raise _Refused(
        f"card {c.name}: does not match the trusted card of that name: its {differ} differ ({fingerprints})"
    )


def _accept_cards(
    result: Result, loaded: Mapping[str, Callable[[], Card]], trusted: Sequence[Card] | None
) -> dict[str, Card]:
    """Every card that verifies, by name; a failure for each one that does not."""
    cards: dict[str, Card] = {}
    for name, load in loaded.items():
        c = _attempt(result, "card", load)
        if c is None:
            continue
        cards[name] = c
        result.passed.append(f"card {name}: self-signed, fingerprint {c.fingerprint}")
        ok = None if trusted is None else _passes(result, "trust", partial(_trust, c, trusted))
        if trusted is not None and not any(t.name == name for t in trusted):
            ok = None  # not a forgery: no card of its name was given (the failure says so)
        result.cards.append(CardSummary(name, c.fingerprint, ok))
    return cards


# Checkpoints ---------------------------------------------------------------------------


def _parse_note(text: Any, where: str) -> tuple[note.Note, note.Checkpoint]:
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise _Refused(f"{where}: not UTF-8 text") from None
    if not isinstance(text, str):
        raise _Refused(f"{where}: expected the note's text, got {type(text).__name__}")
    try:
        n = note.parse(text)
        cp = note.parse_checkpoint(n.text)
    except note.NoteError as exc:
        raise _Refused(f"{where}: {exc}") from None
    if n.render() != text:  # base64 with stray padding bits would verify, yet differ in bytes
        raise _Refused(f"{where}: a signature line is not in canonical form")
    return n, cp


def _signatures(
    n: note.Note, cp: note.Checkpoint, where: str, signer: Card, peers: Sequence[Card]
) -> list[Cosignature]:
    """The signer's signature with its card's ledger key, and at least one peer cosignature."""
    if cp.origin != signer.origin:
        raise _Refused(f"{where}: origin is {cp.origin!r}, but {signer.name}'s card says {signer.origin!r}")
    key = signer.ledger_verifier()
    if not _has(n, key):
        raise _Refused(f"{where}: no signature by {signer.name}'s checkpoint key {key.name}")
    try:
        note.verify(n, key)
    except note.NoteError:
        raise _Refused(f"{where}: the signature by {signer.name} ({key.name}) does not verify") from None
    cosigned = [c for c in (_cosignature(n, where, p) for p in peers) if c is not None]
    if not cosigned:
        names = " or ".join(p.name for p in peers) or "a peer (no peer card is given)"
        raise _Refused(f"{where}: not cosigned by {names}, so it proves nothing to a third party")
    return cosigned


def _has(n: note.Note, key: note.Verifier) -> bool:
    return any((s.name, s.key_id) == (key.name, key.key_id) for s in n.signatures)


def _cosignature(n: note.Note, where: str, peer: Card) -> Cosignature | None:
    """The peer's verified cosignature, None if it did not cosign; a bad one is a failure."""
    key = peer.cosigner_verifier()
    if not _has(n, key):
        return None
    try:
        sig = note.verify(n, key)
    except note.NoteError:
        raise _Refused(f"{where}: the cosignature by {peer.name} ({key.name}) does not verify") from None
    time = int.from_bytes(sig.blob[:8], "big")  # tlog-cosignature: the signed time comes first
    return Cosignature(where, peer.name, key.name, time, _time_text(time))


def _time_text(seconds: int) -> str:
    try:
        return rfc3339(seconds * MICROS) or ""
    except (OverflowError, ValueError, OSError):
        return f"{seconds} s after the epoch"


def _checkpoint(
    result: Result,
    check: str,
    where: str,
    load: Callable[[], bytes | str],
    signer: Card | None,
    peers: Sequence[Card],
) -> note.Checkpoint | None:
    """Parse and verify one checkpoint note. Returns it parsed even when a signature fails,
    so that the tree or the proofs can still be checked against it and reported."""
    parsed = _attempt(result, check, lambda: _parse_note(load(), where))
    if parsed is None:
        return None
    n, cp = parsed
    if signer is None:
        result.failures.append(Failure(check, f"{where}: not checked: the signer's card did not verify"))
        return cp
    cosigned = _attempt(result, check, lambda: _signatures(n, cp, where, signer, peers))
    if cosigned is not None:
        result.cosignatures += cosigned
        by = ", ".join(f"{c.by} at {c.at}" for c in cosigned)
        result.passed.append(f"{where}: size {cp.size}, signed by {signer.name}, cosigned by {by}")
        result.notes += [
            f"{where}: not cosigned by {p.name}" for p in peers if p.name not in {c.by for c in cosigned}
        ]
    return cp


# Bundles -------------------------------------------------------------------------------


def verify_bundle(
    read: Read,
    *,
    trusted: Sequence[Card] | None = None,
    progress: Progress | None = None,
    about: str | None = None,
) -> Result:
    """Verify an exported evidence bundle read through `read(relative path)`, which returns
    None for a file that does not exist. Raises `NotEvidence` when there is no bundle.

    With `about` (a call's or a notice's id), also pick out every entry that names it, as
    the tree is verified: `Result.about`."""
    manifest = _load_manifest(read)
    station = manifest["station"] if isinstance(manifest.get("station"), str) else "?"
    result = Result("bundle", station)
    if not _passes(result, "bundle", lambda: _check_manifest(manifest)):
        return result
    cards = _accept_cards(
        result,
        {name: partial(_card_file, read, name, path) for name, path in manifest["cards"].items()},
        trusted,
    )
    peers = [c for name, c in cards.items() if name != station]
    cp = _checkpoint(
        result, "checkpoint", "checkpoint", partial(_need, read, "checkpoint"), cards.get(station), peers
    )
    if cp is not None:
        result.checkpoint = CheckpointSummary(cp.origin, cp.size, _b64text(cp.root))
        _passes(result, "bundle", lambda: _agrees(manifest, cp))
    size = cp.size if cp is not None else manifest["size"]
    root = cp.root if cp is not None else base64.b64decode(manifest["root"])
    picked = About(about) if about is not None else None
    tree = _Tree(read, size, picked)
    _passes(result, "tree", lambda: tree.verify(root, progress or (lambda done, total: None)))
    if picked is not None:
        result.about = picked.entries
        if not picked.entries:
            result.notes.append(f"no entry names {about}")
    ours = [cards[station]] if station in cards else []
    for peer, path in manifest.get("peer_checkpoints", {}).items():
        _checkpoint(result, "peer-checkpoint", path, partial(_need, read, path), cards.get(peer), ours)
    result.notes.append(f"exported at {manifest['exported_at']} (the exporter's claim: nothing signs it)")
    return result


def _need(read: Read, path: str) -> bytes:
    raw = read(path)
    if raw is None:
        raise _Refused(f"{path} is missing")
    return raw


def _load_manifest(read: Read) -> dict[str, Any]:
    raw = read("bundle.json")
    if raw is None:
        raise NotEvidence("no bundle.json: this is not an evidence bundle")
    try:
        data = parse_json(raw)
    except ValueError:
        raise NotEvidence("bundle.json is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        got = data.get("format") if isinstance(data, dict) else None
        raise NotEvidence(f"bundle.json: format {got!r} is not {BUNDLE_FORMAT!r}")
    return data


def _check_manifest(m: dict[str, Any]) -> str:
    _fields(m, _BUNDLE_FIELDS, "bundle.json", frozenset({"peer_checkpoints"}))
    if not isinstance(m["station"], str) or not NAME_RE.fullmatch(m["station"]):
        raise _Refused(f"bundle.json: station {m['station']!r} is not a station name")
    if type(m["size"]) is not int or m["size"] < 0:
        raise _Refused(f"bundle.json: size must be a whole number, got {m['size']!r}")
    _b64(m["root"], "bundle.json root", merkle.HASH_SIZE)
    try:
        parse_rfc3339(m["exported_at"])
    except (ValueError, TypeError):
        raise _Refused(f"bundle.json: exported_at {m['exported_at']!r:.60} is not an RFC 3339 time") from None
    _layout(m["cards"], "cards", "cards/{}.json")
    if m["station"] not in m["cards"]:
        raise _Refused(f"bundle.json: no card for the station {m['station']!r}")
    peers = m.get("peer_checkpoints", {})
    _layout(peers, "peer_checkpoints", "peer-checkpoints/{}")
    for peer in peers:
        if peer == m["station"] or peer not in m["cards"]:
            raise _Refused(f"bundle.json: peer checkpoint of {peer!r}, which is not a peer with a card here")
    return f"bundle.json: {m['station']}'s ledger, size {m['size']}"


def _layout(value: Any, what: str, pattern: str) -> None:
    """Files are where docs/ledger.md puts them; a manifest cannot point elsewhere."""
    if not isinstance(value, dict):
        raise _Refused(f"bundle.json: {what} must be an object of names to paths")
    for name, path in value.items():
        if not NAME_RE.fullmatch(name) or path != pattern.format(name):
            raise _Refused(
                f"bundle.json: {what}: {name!r} must be at {pattern.format(name)!r}, got {path!r:.80}"
            )


def _agrees(m: dict[str, Any], cp: note.Checkpoint) -> str:
    for what, here, there in (
        ("origin", m["origin"], cp.origin),
        ("size", m["size"], cp.size),
        ("root", m["root"], _b64text(cp.root)),
    ):
        if here != there:
            raise _Refused(f"bundle.json: {what} is {here!r}, but the checkpoint's is {there!r}")
    return "bundle.json agrees with the checkpoint (origin, size and root)"


class _Tree:
    """Recompute a tree from its entries, one entry bundle at a time, checking each tile on
    the way up: a level-L hash must be the Merkle root of the 256 level-(L-1) hashes below
    it, which were themselves checked. Only the part of each level that is not yet a whole
    tile is kept, and the partial tiles at the end of each level give the root."""

    def __init__(self, read: Read, size: int, about: About | None = None) -> None:
        self.read = read
        self.size = size
        self.about = about
        self.pending: dict[int, list[bytes]] = {}  # roots of checked full tiles, not yet a tile above
        self.edge: dict[int, list[bytes]] = {}  # each level's partial tile, checked

    def verify(self, root: bytes, progress: Progress) -> str:
        count = -(-self.size // _W)
        for i in range(count):
            width = min(_W, self.size - i * _W)
            self._add(0, i, self._level0(i, width))
            progress(i + 1, count)
        self._finish()
        got = self._root()
        if got != root:
            raise _Refused(
                f"tree: the {self.size} entries lead to the root {_b64text(got)}, "
                f"but the checkpoint's root is {_b64text(root)}"
            )
        return f"tree: {self.size} entries, every tile recomputed from them; the root is the checkpoint's"

    def _file(self, path: str) -> bytes:
        raw = self.read(path)
        if raw is None:
            raise _Refused(f"{path} is missing (a tree of size {self.size} needs it)")
        return raw

    def _hashes(self, level: int, index: int, width: int) -> list[bytes]:
        path = tiles.tile_path(level, index, width)
        raw = self._file(path)
        if len(raw) != width * merkle.HASH_SIZE:
            raise _Refused(
                f"{path}: expected {width} hashes ({width * merkle.HASH_SIZE} bytes), found {len(raw)} bytes"
            )
        return [raw[k : k + merkle.HASH_SIZE] for k in range(0, len(raw), merkle.HASH_SIZE)]

    def _level0(self, index: int, width: int) -> list[bytes]:
        path = tiles.tile_path("entries", index, width)
        try:
            entries = tiles.decode_bundle(self._file(path))
        except tiles.TileError as exc:
            raise _Refused(f"{path}: {exc}") from None
        first = index * _W
        if len(entries) != width:
            raise _Refused(
                f"{path}: holds {len(entries)} entries, but entries {first} to {first + width - 1} "
                f"({width}) belong in it"
            )
        leaves = [merkle.leaf_hash(e) for e in entries]
        tile = tiles.tile_path(0, index, width)
        for pos, (leaf, stored) in enumerate(zip(leaves, self._hashes(0, index, width), strict=True)):
            if leaf != stored:
                raise _Refused(
                    f"entry {first + pos} ({path}): its leaf hash is not the one in {tile} at position {pos}"
                )
        for pos, e in enumerate(entries):
            try:
                obj = _entry(e)
            except _Refused as exc:
                raise _Refused(f"entry {first + pos} ({path}): {exc}") from None
            if self.about is not None:
                self.about.offer(first + pos, obj)
        return leaves

    def _add(self, level: int, index: int, hashes: list[bytes]) -> None:
        """`hashes` are the checked tile `index` of `level`: a whole tile becomes one hash above."""
        if len(hashes) < _W:
            self.edge[level] = hashes
            return
        up = self.pending.setdefault(level + 1, [])
        up.append(merkle.root(hashes))
        if len(up) == _W:
            self.pending[level + 1] = []
            self._check(level + 1, index // _W, up)
            self._add(level + 1, index // _W, up)

    def _check(self, level: int, index: int, expected: list[bytes]) -> None:
        path = tiles.tile_path(level, index, len(expected))
        for pos, (got, want) in enumerate(
            zip(self._hashes(level, index, len(expected)), expected, strict=True)
        ):
            if got != want:
                below = tiles.tile_path(level - 1, index * _W + pos)
                raise _Refused(f"{path} at position {pos}: the hash is not the Merkle root of {below}")

    def _finish(self) -> None:
        for level, hashes in sorted(self.pending.items()):
            if hashes:
                self._check(level, (self.size >> (tiles.TILE_HEIGHT * level)) // _W, hashes)
                self.edge[level] = hashes

    def _root(self) -> bytes:
        """RFC 9162 2.1.1: the tree is its largest perfect subtrees, one per bit of the size,
        hashed together right to left. A subtree of 2^(8L+j) leaves is the root of 2^j
        hashes of level L, all in that level's partial tile."""
        if self.size == 0:
            return merkle.EMPTY_ROOT
        subtrees, start = [], 0
        for k in reversed(range(self.size.bit_length())):
            if self.size >> k & 1:
                level, height = divmod(k, tiles.TILE_HEIGHT)
                first = (start >> (tiles.TILE_HEIGHT * level)) % _W
                subtrees.append(merkle.root(self.edge[level][first : first + (1 << height)]))
                start += 1 << k
        r = subtrees.pop()
        for h in reversed(subtrees):
            r = merkle.node_hash(h, r)
        return r


_NAMING = ("call", "notice", "other_notice", "removal", "removes", "supersedes", "ref")


def named(entry: Mapping[str, Any]) -> set[str]:
    """The ids of the calls and notices an entry names: what it is about (`About`), and
    what a station indexes it under (`ledger_calls`)."""
    return {value for key in _NAMING if isinstance(value := entry.get(key), str)}


class About:
    """The entries of a log that are about one call or notice, offered in log order: those
    that name its id (`call`, `notice`, a conflict's `other_notice`, a removal's
    `removal` or `removes`, an amendment's `supersedes`, an envelope's `ref`), then the
    receipts for the envelopes those entries name. An entry is in the log before the
    receipt for its envelope, so one pass finds them all."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.entries: list[dict[str, Any]] = []
        self._envelopes: set[str] = set()

    def offer(self, index: int, entry: dict[str, Any]) -> None:
        envelope = entry.get("envelope")
        if self.subject in named(entry):
            if isinstance(envelope, str) and entry["type"] not in _ANSWERED:
                self._envelopes.add(envelope)
        elif not (entry["type"] in _ANSWERED and envelope in self._envelopes):
            return
        self.entries.append({"index": index, "entry": entry})


def _entry(raw: bytes) -> dict[str, Any]:
    """An entry is the RFC 8785 canonical JSON of an object with v == 1, a type and a time."""
    obj = _json(raw, "the entry")
    if not isinstance(obj, dict):
        raise _Refused(f"not a JSON object but {type(obj).__name__}")
    try:
        canon = canonical(obj)
    except OpenLineError:
        canon = b""
    if canon != raw:
        raise _Refused("not RFC 8785 canonical JSON")
    if type(obj.get("v")) is not int or obj["v"] != ENTRY_VERSION:
        raise _Refused(f"version v is {obj.get('v')!r}, expected {ENTRY_VERSION}")
    if not isinstance(obj.get("type"), str) or not isinstance(obj.get("at"), str):
        raise _Refused("it lacks its type or time (at)")
    return obj


# Call proofs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Proven:
    """An entry whose inclusion proof leads to the checkpoint's root."""

    index: int
    entry: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.entry["type"])


def verify_call_proof(
    data: bytes | str | Mapping[str, Any], *, trusted: Sequence[Card] | None = None
) -> Result:
    """Verify a call proof (`openline prove`), given as the file's bytes or its parsed JSON,
    and tell the call's story from what verified. Raises `NotEvidence` when it is not one."""
    result, doc, checked = _open_proof(data, "call", trusted)
    if checked is None:
        return result
    station, call, cards, peers, proven = checked
    envelopes = _about_call(result, call, proven)
    receipts = _receipts(result, doc["receipts"], station, cards, proven, envelopes)
    _whole(result, "call", proven, doc["receipts"])
    _disclosures(result, doc, proven)
    _reach(result, station)
    if any(f.check == "checkpoint" for f in result.failures):
        # Entries proven against a root nobody's signature vouches for prove nothing.
        result.notes.append("no story is told: the checkpoint's signatures did not verify")
        return result
    shown = {d.envelope: d for d in result.disclosed}
    result.story = _story(call, station, peers, proven, receipts, envelopes, shown)
    result.notes += _clocks(station, proven, receipts)
    result.notes.append(HALF)
    return result


# Envelopes that always leave a call.* (notice.*) entry naming them where they are sent and
# where they are received: the event they carry, or `call.ignored` (`notice.ignored`) when
# it crossed another. (A repeated ring may change nothing and leave none.)
_DECISIVE = {
    "call": frozenset(
        {"call.place", "call.pickup", "call.decline", "call.cancel", "call.close", "call.missed"}
    ),
    "notice": frozenset({"notice.send", "notice.ack", "notice.reject", "notice.withdraw"}),
}


def _whole(result: Result, about: str, proven: list[_Proven], receipts: list[Any]) -> None:
    """What a proof's own entries say it must also hold: a call.* (notice.*) entry for
    every decisive envelope an envelope entry names (what it did: a pick-up, an
    acknowledgement), and the peer's signed answers (`_answered`). A proof that keeps an
    envelope and drops the event it carried, or drops the receipts, would tell another
    story. (Entries left out together with everything that names them cannot be seen here:
    the whole log, `ledger export`, shows those.)"""
    events = {p.entry.get("envelope") for p in proven if p.type.startswith(f"{about}.")}
    off = [
        f"entry {p.index} ({p.type}): no {about} entry in the proof names its envelope "
        f"{p.entry.get('envelope')!r:.60} ({p.entry.get('kind')}): what it did is left out"
        for p in proven
        if p.type in ("envelope.sent", "envelope.received")
        and p.entry.get("kind") in _DECISIVE[about]
        and p.entry.get("envelope") not in events
    ]
    result.failures += [Failure(about, m) for m in off + _unanswered(proven, receipts)]


def _disclosures(result: Result, doc: dict[str, Any], proven: list[_Proven]) -> None:
    """Each disclosed body checked against the commitment of the proof's entry for its
    envelope; one that does not match, or that no entry commits to, is a failure. A proof
    that discloses (`disclosed`, even empty) may leave bodies out by design: each committed
    envelope it withholds is said, so that a reader does not take the rest for all."""
    if "disclosed" not in doc:
        return
    items: list[Any] = doc["disclosed"]
    listed = {item.get("envelope") for item in items if isinstance(item, dict)}
    withheld = {
        p.entry["envelope"]: p.entry.get("kind", "?")
        for p in sorted(proven, key=lambda p: p.index)
        if p.type in disclosure.COMMITTING
        and isinstance(p.entry.get("content"), str)
        and p.entry.get("envelope") not in listed
    }
    result.notes += [f"envelope {e} ({k}): content committed, not disclosed" for e, k in withheld.items()]
    entries = [(p.index, p.entry) for p in proven]
    seen: set[Any] = set()
    for i, item in enumerate(items):
        envelope = item.get("envelope") if isinstance(item, dict) else None
        if envelope is not None and envelope in seen:
            twice = f"disclosed[{i}]: envelope {envelope!r:.60} is disclosed twice"
            result.failures.append(Failure("disclosure", twice))
            continue
        seen.add(envelope)
        try:
            shown = disclosure.check(i, item, entries)
        except disclosure.DisclosureError as exc:
            result.failures.append(Failure("disclosure", str(exc)))
            continue
        result.disclosed.append(shown)
        result.passed.append(
            f"disclosed body of envelope {shown.envelope} ({shown.kind}): matches the content "
            f"commitment of entry {shown.index} ({shown.entry_type})"
        )


def _unanswered(proven: list[_Proven], receipts: list[Any]) -> list[str]:
    """A proof must carry the peer's signed receipt (or refusal) for every receipt.received
    (refusal.received) entry it holds: why each is not there."""
    carried = {(r.get("type"), r.get("envelope")) for r in receipts if isinstance(r, dict)}
    answered = {entry: kind for kind, (entry, _) in _ANSWERS.items()}
    return [
        f"entry {p.index} ({p.type}): the peer's signed {answered[p.type]} for envelope "
        f"{p.entry.get('envelope')!r:.60} is not in the proof"
        for p in proven
        if p.type in answered and (answered[p.type], p.entry.get("envelope")) not in carried
    ]


def verify_notice_proof(
    data: bytes | str | Mapping[str, Any], *, trusted: Sequence[Card] | None = None
) -> Result:
    """Verify a notice proof (`openline prove NOTICE`): the notice's entries, each in the
    cosigned checkpoint's tree, every one about the notice (`About`), the peer's signed
    receipts for its envelopes; `Result.about` lists the entries in log order."""
    result, doc, checked = _open_proof(data, "notice", trusted)
    if checked is None:
        return result
    station, notice, cards, _, proven = checked
    picked = About(notice)
    for p in proven:
        picked.offer(p.index, p.entry)
    chosen = {item["index"] for item in picked.entries}
    off = [
        f"entry {p.index} ({p.type}): it is not about notice {notice}"
        for p in proven
        if p.index not in chosen
    ]
    if not any(
        p.type in ("notice.sent", "notice.received") and p.entry.get("notice") == notice for p in proven
    ):
        off.append(
            f"no notice.sent or notice.received entry for notice {notice}: nothing shows it was announced"
        )
    result.failures += [Failure("notice", m) for m in off]
    if not off:
        result.passed.append(f"entries: every one is about notice {notice} or one of its envelopes")
    envelopes = {
        str(p.entry["envelope"]): str(p.entry.get("kind", ""))
        for p in proven
        if p.index in chosen and p.type not in _ANSWERED and isinstance(p.entry.get("envelope"), str)
    }
    receipts = _receipts(
        result, doc["receipts"], station, cards, proven, envelopes, _borrowed(proven, chosen)
    )
    _whole(result, "notice", proven, doc["receipts"])
    _disclosures(result, doc, proven)
    result.about = picked.entries
    _reach(result, station)
    result.standing = standing(notice, [p.entry for p in sorted(proven, key=lambda p: p.index)], receipts)
    if result.standing is not None and result.reach is not None:
        result.standing += f" (as of the checkpoint, {_as_of(result)})"
    result.notes += _clocks(station, proven, receipts)
    result.notes.append(HALF)
    return result


HALF = "what the peer did is proven only by what this station logged; the peer's own proof holds its half"


def _as_of(result: Result) -> str:
    """The checkpoint's time, as its cosigners signed it."""
    signed = [c for c in result.cosignatures if c.note == "checkpoint"]
    return ", ".join(f"cosigned by {c.by} at {c.at}" for c in signed) or "not cosigned"


def _reach(result: Result, station: str) -> None:
    """Say that a proof is the log up to its checkpoint, and no further: "Verified." of a
    proof made before the acknowledgement came must not read as "never acknowledged"."""
    if result.checkpoint is None:
        return
    result.reach = (
        f"{station}'s log up to its checkpoint (size {result.checkpoint.size}, {_as_of(result)}): "
        "anything logged after it is not in this proof"
    )


# What the standing of a notice is, by the entry that sets it; the answer and the end are
# told apart, so that "acknowledged, then removed" reads as both.
_ANSWER = {"notice.acknowledged", "notice.rejected", "notice.unanswered"}
_END = {"notice.withdrawn", "notice.removed", "notice.expired"}


def standing(
    notice: str, entries: Sequence[Mapping[str, Any]], receipts: Sequence[Mapping[str, Any]]
) -> str | None:
    """A notice's last standing in words, from the entries of its proof in log order and
    the peer's verified receipts: sent (or received), delivered, its answer, how it ended.
    None when no entry announces it."""
    opened = next(
        (
            e
            for e in entries
            if e.get("type") in ("notice.sent", "notice.received") and e.get("notice") == notice
        ),
        None,
    )
    if opened is None:
        return None
    parts = [
        f"sent at {opened.get('at')}"
        if opened["type"] == "notice.sent"
        else f"received from {opened.get('peer')} at {opened.get('at')}{_stored_late(opened, entries)}"
    ]
    delivered = next((r for r in receipts if r.get("envelope") == opened.get("envelope")), None)
    if delivered is not None and delivered.get("type") != "refusal":
        parts.append(f"delivered (stored by {delivered.get('from')} at {delivered.get('stored_at')})")
    answer, end = "not acknowledged or rejected", ""
    for e in entries:
        kind = e.get("type")
        if e.get("notice") == notice and kind in _ANSWER:
            answer = _answer(e)
        elif e.get("notice") == notice and kind == "notice.reinstated":
            answer, end = f"reinstated at {e.get('at')} ({e.get('undone')} undone)", ""
        elif e.get("notice") == notice and kind in _END:
            end = f"{str(kind).removeprefix('notice.')} at {e.get('at')}"
        elif e.get("supersedes") == notice and kind in ("notice.sent", "notice.received"):
            end = f"amended by {e.get('notice')} at {e.get('at')}"
    return "; ".join([", ".join(parts), answer] + ([end] if end else []))


def _stored_late(opened: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> str:
    """For a notice received: when this station stored it, if a minute or more after the
    time the peer stamped it (a line down or suspended), as the call story says it."""
    taken = next(
        (
            e.get("stored_at")
            for e in entries
            if e.get("type") == "envelope.received" and e.get("envelope") == opened.get("envelope")
        ),
        None,
    )
    if not isinstance(taken, str) or _when(taken) - _when(str(opened.get("at"))) < TAKEN_LATE_S * MICROS:
        return ""
    return f" (the peer's time; stored here at {taken})"


def _answer(e: Mapping[str, Any]) -> str:
    if e.get("type") == "notice.unanswered":
        return f"unanswered past its deadline {e.get('deadline_at')} (notice.unanswered)"
    by = str(e.get("actor", "?")).removeprefix("station:")
    return (
        f"acknowledged by {by} at {e.get('at')}"
        if e["type"] == "notice.acknowledged"
        else f"rejected at {e.get('at')}"
    )


# The fields by which an event of another notice names this one.
_NAMING_OTHER = ("supersedes", "removes", "removal")


def _borrowed(proven: list[_Proven], chosen: set[int]) -> frozenset[str]:
    """The envelopes of other notices that entries of a notice proof name because they
    name the notice (an amendment's, a removal's, a removal's acknowledgement), with no
    envelope.sent entry in the proof: those are in the other notice's proof."""
    sent = {p.entry.get("envelope") for p in proven if p.type == "envelope.sent"}
    return frozenset(
        str(p.entry["envelope"])
        for p in proven
        if p.index in chosen
        and p.type.startswith("notice.")
        and any(isinstance(p.entry.get(k), str) for k in _NAMING_OTHER)
        and isinstance(p.entry.get("envelope"), str)
        and p.entry["envelope"] not in sent
    )


# A receipt stamped this much before the envelope it answers was sent is told: under it,
# the two clocks may simply have been a little apart.
_CLOCKS_APART_US = 1_000_000


def _clocks(station: str, proven: list[_Proven], receipts: list[dict[str, Any]]) -> list[str]:
    """Each time in a proof is the clock of the station that stamped it. A peer's signed
    receipt stamped before we sent the envelope it answers proves the peer's clock behind
    ours by at least that much: said, so that a story whose steps seem out of order (a
    pick-up before the call was placed) is read as two clocks, not as tampering."""
    sent = {p.entry.get("envelope"): p.entry.get("at") for p in proven if p.type == "envelope.sent"}
    behind: dict[str, int] = {}
    for r in receipts:
        try:
            apart = parse_rfc3339(str(sent.get(r["envelope"]))) - parse_rfc3339(r["stored_at"])
        except ValueError:
            continue
        if apart > behind.get(r["from"], _CLOCKS_APART_US - 1):
            behind[r["from"]] = apart
    notes = [
        f"times are each station's own clock: a signed answer of {peer}'s is stamped "
        f"{apart / 1e6:.1f} s before {station} sent the envelope it answers, so {peer}'s clock "
        f"read at least {apart / 1e6:.1f} s behind {station}'s; times from the two stations "
        "are not in order with each other"
        for peer, apart in sorted(behind.items())
    ]
    return notes + _out_of_order(proven)


def _out_of_order(proven: list[_Proven]) -> list[str]:
    """The log is in the order the station recorded its entries. One stamped well before
    an entry logged ahead of it shows a clock set between them, or two stations' clocks
    apart (an entry of the peer's carries the peer's time), or an envelope of the peer's
    taken here long after the peer stamped it (`stored_at`: a line down or suspended):
    said once, for the widest."""
    latest: tuple[int, _Proven] | None = None  # the latest time stamped so far, and by whom
    widest: tuple[int, _Proven, _Proven] | None = None
    for p in sorted(proven, key=lambda p: p.index):
        try:
            at = parse_rfc3339(str(p.entry["at"]))
        except ValueError:
            continue
        if latest is not None:
            back = latest[0] - at
            if back >= _CLOCKS_APART_US and (widest is None or back > widest[0]):
                widest = (back, p, latest[1])
        if latest is None or at > latest[0]:
            latest = (at, p)
    if widest is None:
        return []
    back, entry, before = widest
    said = (
        f"times are not in log order: entry {entry.index} ({entry.type}) was logged after entry "
        f"{before.index} ({before.type}) yet is stamped {back / 1e6:.1f} s before it: "
    )
    stored = _stored_at(proven)
    taken = stored.get(entry.entry.get("envelope"))
    if isinstance(taken, str):  # the peer's stamp, and when it came: both readings stand
        return [
            said + f"its envelope, stamped by the peer, was stored here at {taken}: it was taken later "
            "than the peer stamped it (the line down or suspended), or the peer's clock was behind"
        ]
    if entry.entry.get("envelope") in stored:  # a release before stored_at: when it came is not said
        return [
            said + "its envelope is the peer's, stamped by the peer: it was taken here later than "
            "that (the line down or suspended), or a clock was set, or the two stations' clocks "
            "are apart (an entry of a release before 2026-11-29 does not say when it was stored)"
        ]
    return [said + "a clock was set between them, or they are two stations' clocks"]


def _stored_at(proven: list[_Proven]) -> dict[Any, Any]:
    """When this station stored each envelope of the peer's, by envelope id (None for an
    entry of a release before `stored_at`)."""
    return {
        p.entry.get("envelope"): p.entry.get("stored_at") for p in proven if p.type == "envelope.received"
    }


def verify_proof(data: bytes | str, *, trusted: Sequence[Card] | None = None) -> Result:
    """Verify a call proof or a notice proof, as its `format` says."""
    doc = _load_proof(data, None, "call or notice")
    if doc.get("format") == NOTICE_PROOF_FORMAT:
        return verify_notice_proof(doc, trusted=trusted)
    return verify_call_proof(doc, trusted=trusted)


_PROOF_FORMATS = {"call": PROOF_FORMAT, "notice": NOTICE_PROOF_FORMAT}


def _open_proof(
    data: bytes | str | Mapping[str, Any], about: str, trusted: Sequence[Card] | None
) -> tuple[Result, dict[str, Any], tuple[str, str, dict[str, Card], list[Card], list[_Proven]] | None]:
    """A call's or a notice's proof, read (`NotEvidence` when it is not one) and checked as
    far as its entries (`_checked_proof`)."""
    doc = _load_proof(data, _PROOF_FORMATS[about], about)
    result = Result(f"{about}-proof", doc["station"] if isinstance(doc.get("station"), str) else "?")
    return result, doc, _checked_proof(result, doc, about, trusted)


def _checked_proof(
    result: Result, doc: dict[str, Any], about: str, trusted: Sequence[Card] | None
) -> tuple[str, str, dict[str, Card], list[Card], list[_Proven]] | None:
    """A proof's shape, cards, checkpoint and entries; None when it cannot go further."""
    if not _passes(result, "proof", lambda: _check_proof(doc, about)):
        return None
    station, subject = doc["station"], doc[about]
    cards = _accept_cards(
        result,
        {name: partial(_card, data, name, f"card {name}") for name, data in doc["cards"].items()},
        trusted,
    )
    peers = [c for name, c in cards.items() if name != station]
    cp = _checkpoint(result, "checkpoint", "checkpoint", lambda: doc["checkpoint"], cards.get(station), peers)
    if cp is None:
        return None
    result.checkpoint = CheckpointSummary(cp.origin, cp.size, _b64text(cp.root))
    proven = _proven(result, doc["entries"], cp)
    _peer_cosigned(result, about, subject, proven)
    return station, subject, cards, peers, proven


_OPENING = {"call": ("call.placed",), "notice": ("notice.sent", "notice.received")}


def _peer_cosigned(result: Result, about: str, subject: str, proven: list[_Proven]) -> None:
    """The cosignature that counts is that of the peer the call or notice was with, as its
    opening entry names it: another peer's, with its card added to the proof, would vouch
    for a line that is not its own."""
    if any(f.check == "checkpoint" for f in result.failures):
        return  # the checkpoint failed already, for this or another reason
    peer = next(
        (
            p.entry["peer"]
            for p in proven
            if p.type in _OPENING[about]
            and p.entry.get(about) == subject
            and isinstance(p.entry.get("peer"), str)
        ),
        None,
    )
    if peer is not None and peer not in {c.by for c in result.cosignatures if c.note == "checkpoint"}:
        result.failures.append(
            Failure("checkpoint", f"checkpoint: not cosigned by {peer}, the peer of this {about}")
        )


def _load_proof(data: bytes | str | Mapping[str, Any], expected: str | None, what: str) -> dict[str, Any]:
    if isinstance(data, bytes | str):
        try:
            data = parse_json(data)
        except ValueError:
            raise NotEvidence(f"not JSON, so not a {what} proof") from None
    formats = tuple(_PROOF_FORMATS.values()) if expected is None else (expected,)
    if not isinstance(data, Mapping) or data.get("format") not in formats:
        got = data.get("format") if isinstance(data, Mapping) else None
        raise NotEvidence(f"format {got!r} is not {' or '.join(repr(f) for f in formats)}")
    return dict(data)


def _check_proof(doc: dict[str, Any], about: str) -> str:
    what = f"{about} proof"
    _fields(doc, _PROOF_FIELDS | {about}, what, frozenset({"disclosed"}))
    if not isinstance(doc[about], str) or not doc[about]:
        raise _Refused(f"{what}: {about} must be the {about}'s id, got {doc[about]!r:.60}")
    if not isinstance(doc["station"], str) or not NAME_RE.fullmatch(doc["station"]):
        raise _Refused(f"{what}: station {doc['station']!r:.60} is not a station name")
    if not isinstance(doc["cards"], dict) or doc["station"] not in doc["cards"]:
        raise _Refused(f"{what}: cards must be an object of cards by name, with {doc['station']!r}'s")
    for field_name in ("entries", "receipts", "disclosed"):
        if not isinstance(doc.get(field_name, []), list):
            raise _Refused(f"{what}: {field_name} must be a list")
    if not doc["entries"]:
        raise _Refused(f"{what}: it holds no entries")
    shown = f", disclosed bodies: {len(doc['disclosed'])}" if "disclosed" in doc else ""
    return (
        f"{what}: {about} {doc[about]} in {doc['station']}'s ledger, "
        f"entries: {len(doc['entries'])}, receipts: {len(doc['receipts'])}{shown}"
    )


def _proven(result: Result, items: list[Any], cp: note.Checkpoint) -> list[_Proven]:
    proven: list[_Proven] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        p = _attempt(result, "entry", partial(_prove, i, item, cp, seen))
        if p is not None:
            proven.append(p)
    if len(proven) == len(items):
        result.passed.append(f"entries: all {len(items)} are in the checkpoint's tree (inclusion proofs)")
    return proven


def _prove(i: int, item: Any, cp: note.Checkpoint, seen: set[int]) -> _Proven:
    _fields(item, frozenset({"index", "entry", "proof"}), f"entries[{i}]")
    index = item["index"]
    if type(index) is not int or index < 0:
        raise _Refused(f"entries[{i}]: index must be a whole number, got {index!r:.40}")
    where = f"entry {index} (entries[{i}])"
    if index in seen:
        raise _Refused(f"{where}: listed twice")
    seen.add(index)
    raw = _b64(item["entry"], f"{where}: entry")
    if not isinstance(item["proof"], list):
        raise _Refused(f"{where}: proof must be a list of hashes")
    path = [_b64(h, f"{where}: proof[{k}]", merkle.HASH_SIZE) for k, h in enumerate(item["proof"])]
    try:
        got = merkle.root_from_inclusion(index, cp.size, merkle.leaf_hash(raw), path)
    except merkle.ProofError as exc:
        raise _Refused(f"{where}: {exc}") from None
    if got != cp.root:
        raise _Refused(
            f"{where}: its inclusion proof leads to {_b64text(got)}, not to the checkpoint's root "
            f"{_b64text(cp.root)}"
        )
    try:
        return _Proven(index, _entry(raw))
    except _Refused as exc:
        raise _Refused(f"{where}: {exc}") from None


def _about_call(result: Result, call: str, proven: list[_Proven]) -> dict[str, str]:
    """The call's envelopes, with their kinds where an entry gives them: those its call.*
    entries name, and those whose envelope entries carry it as `ref`. Every other entry is a
    failure, so that a proof cannot pass off other events as the call's."""
    envelopes = {
        p.entry["envelope"]: ""
        for p in proven
        if isinstance(p.entry.get("envelope"), str)
        and (p.entry.get("call") if p.type.startswith("call.") else _ref(p)) == call
    }
    for p in proven:
        if p.type.startswith("envelope.") and p.entry.get("envelope") in envelopes:
            envelopes[p.entry["envelope"]] = str(p.entry.get("kind", ""))
    off = [f"entry {p.index} ({p.type}): {why}" for p in proven if (why := _off_topic(p, call, envelopes))]
    if not any(p.type == "call.placed" and p.entry.get("call") == call for p in proven):
        off.append(f"no call.placed entry for call {call}: nothing shows that it was placed")
    result.failures += [Failure("call", m) for m in off]
    if not off:
        result.passed.append(
            f"entries: every one is about call {call} or one of its {len(envelopes)} envelopes"
        )
    return envelopes


def _ref(p: _Proven) -> Any:
    """The call an envelope entry is about: envelopes of a call carry its id as `ref`."""
    return (
        p.entry.get("ref") if p.type in ("envelope.sent", "envelope.received", "envelope.refused") else None
    )


def _off_topic(p: _Proven, call: str, envelopes: dict[str, str]) -> str | None:
    if p.type.startswith("call."):
        return (
            None
            if p.entry.get("call") == call
            else f"it is about call {p.entry.get('call')!r:.60}, not {call}"
        )
    if p.type not in _ENVELOPE_TYPES:
        return "it is not about a call"
    if p.entry.get("envelope") not in envelopes:
        return f"envelope {p.entry.get('envelope')!r:.60} is not one of call {call}'s envelopes"
    return None


def _receipts(
    result: Result,
    items: list[Any],
    station: str,
    cards: dict[str, Card],
    proven: list[_Proven],
    envelopes: dict[str, str],
    borrowed: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    good: list[dict[str, Any]] = []
    for i, r in enumerate(items):
        step = partial(_receipt, i, r, station, cards, proven, envelopes, borrowed)
        ok = _attempt(result, "receipt", step)
        if ok is not None:
            good.append(ok)
            elsewhere = (
                " (its envelope's own entries are in the proof of the notice it carried)"
                if ok["envelope"] in borrowed
                else ""
            )
            result.passed.append(
                f"refusal of envelope {ok['envelope']}: signed by {ok['from']}, refused "
                f"({ok['error']['code']}) at {ok['stored_at']}, and in the ledger{elsewhere}"
                if ok["type"] == "refusal"
                else f"receipt for envelope {ok['envelope']}: signed by {ok['from']}, "
                f"stored at {ok['stored_at']}, and in the ledger{elsewhere}"
            )
    return good


def _receipt(
    i: int,
    r: Any,
    station: str,
    cards: dict[str, Card],
    proven: list[_Proven],
    envelopes: dict[str, str],
    borrowed: frozenset[str],
) -> dict[str, Any]:
    """A peer's receipt, or its refusal (`"type": "refusal"`): signed with its card's key,
    for one of the call's envelopes exactly as our ledger logged it, and itself logged (by
    digest) when it arrived. An envelope of another notice that names this one (`borrowed`:
    an amendment, a removal, its acknowledgement) has its envelope.sent entry in that
    notice's proof, not here: its receipt is checked against its receipt.received entry."""
    kind = "refusal" if isinstance(r, dict) and r.get("type") == "refusal" else "receipt"
    _fields(r, REFUSAL_FIELDS if kind == "refusal" else RECEIPT_FIELDS, f"receipts[{i}]")
    where = f"{kind} for envelope {r['envelope']!r:.60} (receipts[{i}])"
    signer = cards.get(r["from"]) if isinstance(r["from"], str) else None
    if signer is None or signer.name == station:
        raise _Refused(f"{where}: it is from {r['from']!r:.60}, not from a peer whose card verified")
    if r["to"] != station:
        raise _Refused(f"{where}: it is addressed to {r['to']!r:.60}, not to {station}")
    try:
        verify(
            signing_public_key(signer.signing_key),
            r["sig"],
            canonical({k: v for k, v in r.items() if k != "sig"}),
            what=f"{where}, by {signer.name}'s signing key",
        )
        quoted = digest(canonical(r))
        parse_rfc3339(r["stored_at"])
        if kind == "refusal":
            refusal_error(r, where)
    except OpenLineError as exc:
        raise _Refused(exc.detail) from None
    except (ValueError, TypeError):
        raise _Refused(f"{where}: stored_at is not an RFC 3339 time") from None
    if r["envelope"] not in envelopes:
        raise _Refused(f"{where}: the envelope is not one of those this proof is about")
    sent = next(
        (p for p in proven if p.type == "envelope.sent" and p.entry.get("envelope") == r["envelope"]), None
    )
    if sent is None and r["envelope"] not in borrowed:
        raise _Refused(f"{where}: the proof has no envelope.sent entry for it")
    if sent is not None and sent.entry.get("header") != r["digest"]:
        raise _Refused(
            f"{where}: it is for an envelope of digest {r['digest']!r:.60}, "
            f"not the one entry {sent.index} logged"
        )
    logged, field = _ANSWERS[kind]
    match = next((p for p in proven if p.type == logged and p.entry.get(field) == quoted), None)
    if match is None:
        raise _Refused(f"{where}: its digest {quoted} is in no {logged} entry of the proof")
    for key in ("envelope", "stored_at"):
        if match.entry.get(key) != r[key]:
            raise _Refused(
                f"{where}: entry {match.index} has {key} {match.entry.get(key)!r:.60}, "
                f"the {kind} {r[key]!r:.60}"
            )
    return dict(r)


# The story of a call -------------------------------------------------------------------

_ENDED = (*(o.value for o in calls.OUTCOMES), "closed")
_STAGES = ("ringing", "delivered", "stored")


def _story(
    call: str,
    station: str,
    peers: list[Card],
    proven: list[_Proven],
    receipts: list[dict[str, Any]],
    kinds: dict[str, str],
    shown: Mapping[str, disclosure.Disclosure],
) -> Story | None:
    """The call's events in time order, told from verified entries and receipts only, and
    what was said where the proof disclosed it (`shown`, by envelope)."""
    own = sorted(
        (p for p in proven if p.type.startswith("call.") and p.entry.get("call") == call),
        key=lambda p: p.index,
    )
    placed = next((p.entry for p in own if p.type == "call.placed"), None)
    if placed is None:
        return None
    direction = str(placed.get("direction", "?"))
    peer = str(placed.get("peer") or (peers[0].name if peers else "?"))
    caller, callee = (station, peer) if direction == "out" else (peer, station)
    events = []
    for r in receipts:  # first, so that at the same time the peer's storing comes before "delivered"
        kind = kinds.get(r["envelope"])
        what = "the call" if r["envelope"] == placed.get("envelope") else f"our {kind or 'unnamed'} envelope"
        if r["type"] == "refusal":
            why = disclosure.one_line(f"{r['error']['code']}: {r['error']['detail']}")  # the peer's words
            events.append(
                StoryEvent(
                    r["stored_at"], "refused", f"{r['from']} refused {what}, {why} (its signed refusal)"
                )
            )
        else:
            events.append(
                StoryEvent(r["stored_at"], "stored", f"{r['from']} stored {what} (its signed receipt)")
            )
    # Our refusals of the peer's envelopes; the peer's of ours are told by its signed
    # refusals above, not by our own call.refused entry.
    events += [
        StoryEvent(str(p.entry["at"]), "refused", f"{station} refused {peer}'s {p.entry.get('kind')} "
                   f"envelope, {p.entry.get('code')}")
        for p in proven if p.type == "envelope.refused"
    ]  # fmt: skip
    stored = _stored_at(proven)
    events += [_taken_late(_event(p.entry, caller, callee, shown), p.entry, stored) for p in own
               if p.type != "call.refused"]  # fmt: skip
    events.sort(key=lambda e: _when(e.at))
    return Story(call, station, peer, direction, _priority(placed), _outcome(events), tuple(events))


# An event from the peer is dated by the peer's own signed header. One taken here this much
# later (the line was down, or suspended: docs/operations.md) says when it was taken.
TAKEN_LATE_S = 60


def _taken_late(event: StoryEvent, entry: dict[str, Any], stored: Mapping[Any, Any]) -> StoryEvent:
    """`event`, saying when this station stored the envelope behind it (`stored_at` of its
    envelope.received entry, stations since 2026-11-29) if that was much later than the
    peer's time: what a suspended line took only once it was resumed reads so."""
    taken = stored.get(entry.get("envelope"))
    if not isinstance(taken, str) or _when(taken) - _when(event.at) < TAKEN_LATE_S * MICROS:
        return event
    return StoryEvent(event.at, event.event, f"{event.text}; stored here at {taken}")


def _priority(placed: dict[str, Any]) -> str:
    """docs/ledger.md has `priority` beside the other fields; the station records it in
    `detail`. Either is inside the hashed entry."""
    detail = placed.get("detail")
    return str(
        placed.get("priority") or (detail.get("priority") if isinstance(detail, dict) else None) or "?"
    )


def _outcome(events: list[StoryEvent]) -> str:
    """Whether anyone answered comes first: a call picked up and then closed was picked up.
    Then the callee's answer before the caller's cancel: when the two crossed on the line,
    the caller's station logged both, and the callee's decides (`core.calls.crossed`)."""
    happened = {e.event for e in events}
    return next((s for s in _ENDED + _STAGES if s in happened), "placed")


def _when(at: str) -> int:
    try:
        return parse_rfc3339(at)
    except ValueError:
        return 2**63  # an entry with a time we cannot read goes last, not nowhere


_UNSHOWN = " (its content is committed to, not shown)"
# What an envelope of a call says, by kind, as its disclosed body has it.
_SAID = {"call.place": "subject", "call.say": "text", "call.close": "summary", "call.decline": "reason"}


def _said(entry: dict[str, Any], shown: Mapping[str, disclosure.Disclosure]) -> str:
    """What the entry's envelope said, if its body is disclosed: ', "..." (disclosed)'."""
    d = shown.get(str(entry.get("envelope")))
    said = d.body.get(_SAID.get(d.kind, "")) if d is not None else None
    if not isinstance(said, str):
        return ""
    return f': "{disclosure.one_line(said)}" (disclosed, checked against the committed digest)'


def _event(
    entry: dict[str, Any], caller: str, callee: str, shown: Mapping[str, disclosure.Disclosure]
) -> StoryEvent:
    event = str(entry["type"]).removeprefix("call.")
    said = _said(entry, shown)
    actor = str(entry.get("actor", "?"))
    detail = entry.get("detail") if isinstance(entry.get("detail"), dict) else {}
    deadline = detail.get("deadline_at") if detail else None
    texts = {
        "placed": f"placed by {caller} ({actor}) to {callee}, priority {_priority(entry)}{said}",
        "delivered": f"delivered to {callee}",
        "ringing": f"ringing at {callee}" + (f", answer deadline {deadline}" if deadline else ""),
        "picked_up": f"picked up by {actor}",
        "missed": f"missed: the answer deadline {deadline or entry['at']} passed with nobody picking up",
        "declined": f"declined by {actor}{said}",
        "cancelled": f"cancelled by {actor}",
        "closed": f"closed by {actor}{said}",
        "message_sent": f"message sent by {actor}{said or _UNSHOWN}",
        "message_received": f"message received from {actor}{said or _UNSHOWN}",
    }
    return StoryEvent(str(entry["at"]), event, texts.get(event, f"{event.replace('_', ' ')} ({actor})"))
