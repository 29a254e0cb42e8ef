"""The offline verifier: real bundles and call proofs verify, and every kind of tampering is
refused with a message that names what is wrong and where."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from openline.core import ledger, merkle, note, tiles
from openline.core.card import Card
from openline.core.encoding import canonical
from openline.core.evidence import NotEvidence, Result, verify_bundle, verify_call_proof
from openline.core.keys import StationKeys
from tests.evidence_builders import (
    EXPORTED_AT,
    Bundle,
    CallLog,
    Station,
    at,
    bundle,
    call_log,
    checkpoint_note,
    station,
    synthetic_entries,
)

STUTTGART, MOSCOW, STRANGER = station("stuttgart"), station("moscow"), station("stranger")
IMPOSTOR = station("moscow")  # another station calling itself moscow
ENTRIES = synthetic_entries(700)
PEER_ENTRIES = synthetic_entries(20, "stuttgart")


def fresh(checkpoint: str | None = None) -> Bundle:
    return bundle(ENTRIES, STUTTGART, [MOSCOW], peer_entries={"moscow": PEER_ENTRIES}, checkpoint=checkpoint)


@cache
def _base_files() -> tuple[tuple[str, bytes], ...]:
    return tuple(fresh().files.items())


def base() -> Bundle:
    """The 700-entry bundle, copied so that a test may tamper with it."""
    return Bundle(dict(_base_files()), STUTTGART, [MOSCOW], ENTRIES)


def first_failure(r: Result) -> str:
    assert not r.ok, r.passed
    assert r.first_failure is not None
    return r.first_failure.message


def refusal(b: Bundle, trusted: list[Card] | None = None) -> str:
    return first_failure(verify_bundle(b.read, trusted=trusted))


def rewrite_entries(b: Bundle, index: int, change: Callable[[list[bytes]], list[bytes]]) -> None:
    """Apply `change` (list of entries -> list of entries) to one entry bundle, re-encoded."""
    name = next(p for p in b.files if p.startswith(f"tile/entries/{tiles.encode_index(index)}"))
    b.files[name] = tiles.encode_bundle(change(tiles.decode_bundle(b.files[name])))


def flip(data: bytes, at: int, mask: int = 0x01) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]


# Bundles that verify ---------------------------------------------------------------------


def test_bundle_round_trip_verifies_and_reports_cards_and_cosignatures() -> None:
    steps: list[tuple[int, int]] = []
    r = verify_bundle(base().read, progress=lambda done, total: steps.append((done, total)))
    assert r.ok, r.failures
    assert (r.kind, r.station) == ("bundle", "stuttgart")
    assert {(c.name, c.fingerprint, c.trusted) for c in r.cards} == {
        ("stuttgart", STUTTGART.card.fingerprint, None),
        ("moscow", MOSCOW.card.fingerprint, None),
    }
    assert r.checkpoint is not None
    assert (r.checkpoint.origin, r.checkpoint.size) == (STUTTGART.card.origin, 700)
    assert [(c.note, c.by) for c in r.cosignatures] == [
        ("checkpoint", "moscow"),
        ("peer-checkpoints/moscow", "stuttgart"),
    ]
    assert r.cosignatures[0].at == "2026-11-18T11:21:40.000000Z"
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert any(p.startswith("tree: 700 entries") for p in r.passed)
    assert any("exported at" in n and "nothing signs it" in n for n in r.notes)
    assert json.loads(json.dumps(r.to_json()))["ok"] is True


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 511, 512, 513, 1000, 65536 + 257])
def test_bundles_of_every_shape_verify(size: int) -> None:
    # 65793 entries need full tiles at level 1, a partial one at level 1, and one at level 2.
    entries = synthetic_entries(size)
    r = verify_bundle(bundle(entries, STUTTGART, [MOSCOW]).read)
    assert r.ok, r.failures


def test_the_verifier_reads_exactly_the_documented_files() -> None:
    b = base()
    asked: list[str] = []

    def read(path: str) -> bytes | None:
        asked.append(path)
        return b.read(path)

    assert verify_bundle(read).ok
    expected = {tiles.tile_path(level, i, w) for level, i, w in tiles.tiles_for_size(700)}
    expected |= {"tile/entries/000", "tile/entries/001", "tile/entries/002.p/188"}
    expected |= {
        "bundle.json",
        "checkpoint",
        "cards/stuttgart.json",
        "cards/moscow.json",
        "peer-checkpoints/moscow",
    }
    assert sorted(asked) == sorted(expected) == sorted(b.files)


def test_trusted_cards_that_match_verify() -> None:
    r = verify_bundle(base().read, trusted=[STUTTGART.card, MOSCOW.card, STRANGER.card])
    assert r.ok, r.failures
    assert all(c.trusted for c in r.cards)


# Entries and tiles ----------------------------------------------------------------------


def test_a_removed_entry_is_refused() -> None:
    b = base()
    rewrite_entries(b, 1, lambda es: es[:44] + es[45:])
    assert refusal(b) == "tile/entries/001: holds 255 entries, but entries 256 to 511 (256) belong in it"


def test_two_reordered_entries_are_refused() -> None:
    b = base()
    rewrite_entries(b, 0, lambda es: [*es[:10], es[11], es[10], *es[12:]])
    assert (
        refusal(b) == "entry 10 (tile/entries/000): its leaf hash is not the one in tile/0/000 at position 10"
    )


def test_one_altered_byte_of_an_entry_is_refused() -> None:
    b = base()
    rewrite_entries(b, 2, lambda es: [*es[:88], es[88].replace(b'"seq":601', b'"seq":602'), *es[89:]])
    assert refusal(b) == (
        "entry 600 (tile/entries/002.p/188): its leaf hash is not the one in tile/0/002.p/188 at position 88"
    )


def test_an_altered_leaf_tile_is_refused() -> None:
    b = base()
    b.files["tile/0/001"] = flip(b.files["tile/0/001"], 32 * 5 + 3)
    assert (
        refusal(b) == "entry 261 (tile/entries/001): its leaf hash is not the one in tile/0/001 at position 5"
    )


def test_an_altered_upper_tile_is_refused() -> None:
    b = base()
    b.files["tile/1/000.p/2"] = flip(b.files["tile/1/000.p/2"], 40)
    assert refusal(b) == "tile/1/000.p/2 at position 1: the hash is not the Merkle root of tile/0/001"


@pytest.mark.parametrize(
    "path", ["tile/0/001", "tile/1/000.p/2", "tile/0/002.p/188", "tile/entries/002.p/188"]
)
def test_a_missing_tile_is_refused(path: str) -> None:
    b = base()
    del b.files[path]
    assert refusal(b) == f"{path} is missing (a tree of size 700 needs it)"


def test_a_tile_of_the_wrong_width_is_refused() -> None:
    b = base()
    b.files["tile/0/002.p/188"] = b.files["tile/0/002.p/188"][:-1]
    assert refusal(b) == "tile/0/002.p/188: expected 188 hashes (6016 bytes), found 6015 bytes"


def test_a_tile_under_another_width_counts_as_missing() -> None:
    b = base()
    b.files["tile/0/002.p/187"] = b.files.pop("tile/0/002.p/188")[:-32]
    assert refusal(b) == "tile/0/002.p/188 is missing (a tree of size 700 needs it)"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (b'{"v":1, "type":"x","at":"t"}', "not RFC 8785 canonical JSON"),
        (b'{"at":"t","type":"x","v":1,"v":1}', "the entry: not JSON"),  # a key twice
        (b'{"at":"t","type":"x","v":2}', "version v is 2, expected 1"),
        (b'{"at":"t","type":"x","v":true}', "version v is True, expected 1"),
        (b'{"at":"t","v":1}', "it lacks its type or time (at)"),
        (b"[1]", "not a JSON object but list"),
        (b"\xff", "the entry: not JSON"),
    ],
)
def test_an_entry_that_is_not_a_canonical_v1_object_is_refused_even_if_hashed(
    entry: bytes, message: str
) -> None:
    entries = list(ENTRIES[:300])
    entries[260] = entry  # the station hashed it: tiles and checkpoint agree, the entry does not
    r = verify_bundle(bundle(entries, STUTTGART, [MOSCOW]).read)
    assert first_failure(r) == f"entry 260 (tile/entries/001.p/44): {message}"


def test_a_bundle_with_a_torn_entry_bundle_is_refused() -> None:
    b = base()
    b.files["tile/entries/000"] = b.files["tile/entries/000"][:-3]
    assert refusal(b) == "tile/entries/000: entry bundle: entry 255 runs past the end"


# Checkpoints -----------------------------------------------------------------------------


def _root() -> bytes:
    return merkle.root([merkle.leaf_hash(e) for e in ENTRIES])


def test_a_checkpoint_whose_root_was_changed_is_refused() -> None:
    b = base()
    text = b.files["checkpoint"].decode()
    other = base64.b64encode(bytes(32)).decode()
    b.files["checkpoint"] = text.replace(base64.b64encode(_root()).decode(), other).encode()
    r = verify_bundle(b.read)
    assert first_failure(r) == (
        f"checkpoint: the signature by stuttgart ({STUTTGART.card.origin}) does not verify"
    )
    assert any(f.message.startswith("bundle.json: root is") for f in r.failures)
    assert any(f.message.startswith("tree: the 700 entries lead to the root") for f in r.failures)


def test_a_signed_checkpoint_of_another_tree_is_refused() -> None:
    b = fresh(checkpoint=checkpoint_note(STUTTGART, 700, bytes(32), [MOSCOW]))
    r = verify_bundle(b.read)
    assert [f.check for f in r.failures] == ["bundle", "tree"]
    assert r.failures[1].message == (
        f"tree: the 700 entries lead to the root {base64.b64encode(_root()).decode()}, "
        f"but the checkpoint's root is {base64.b64encode(bytes(32)).decode()}"
    )


def test_a_checkpoint_signed_with_another_key_is_refused() -> None:
    forged = checkpoint_note(STUTTGART, 700, _root(), [MOSCOW], ledger_key=Ed25519PrivateKey.generate())
    assert refusal(fresh(checkpoint=forged)) == (
        f"checkpoint: no signature by stuttgart's checkpoint key {STUTTGART.card.origin}"
    )


def _with_blob(text: str, name: str, change: Callable[[bytes], bytes]) -> str:
    n = note.parse(text)
    sigs = tuple(dataclasses.replace(s, blob=change(s.blob)) if s.name == name else s for s in n.signatures)
    return note.Note(n.text, sigs).render()


def test_a_checkpoint_with_a_bad_signature_is_refused() -> None:
    good = checkpoint_note(STUTTGART, 700, _root(), [MOSCOW])
    bad = _with_blob(good, STUTTGART.card.origin, lambda blob: flip(blob, 7))
    assert refusal(fresh(checkpoint=bad)) == (
        f"checkpoint: the signature by stuttgart ({STUTTGART.card.origin}) does not verify"
    )


@pytest.mark.parametrize("cosigners", [[], [STRANGER], [STUTTGART]], ids=["none", "stranger", "itself"])
def test_a_checkpoint_no_peer_cosigned_is_refused(cosigners: list[Station]) -> None:
    cp = checkpoint_note(STUTTGART, 700, _root(), cosigners)
    assert refusal(fresh(checkpoint=cp)) == (
        "checkpoint: not cosigned by moscow, so it proves nothing to a third party"
    )


def test_a_cosignature_with_a_changed_time_is_refused() -> None:
    good = checkpoint_note(STUTTGART, 700, _root(), [MOSCOW])
    name = MOSCOW.card.cosigner_verifier().name
    bad = _with_blob(good, name, lambda blob: flip(blob, 7))
    assert refusal(fresh(checkpoint=bad)) == f"checkpoint: the cosignature by moscow ({name}) does not verify"


def test_a_signature_line_in_non_canonical_base64_is_refused() -> None:
    text = base().files["checkpoint"].decode()
    sig_line = next(
        line for line in text.splitlines() if STUTTGART.card.origin in line and line.startswith("\u2014")
    )
    b64 = sig_line.rsplit(" ", 1)[1]  # 4 + 64 bytes: the last character before "=" has 2 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    respelled = b64[:-2] + alphabet[alphabet.index(b64[-2]) ^ 1] + "="
    assert base64.b64decode(respelled) == base64.b64decode(b64)
    b = base()
    b.files["checkpoint"] = text.replace(b64, respelled).encode()
    assert refusal(b) == "checkpoint: a signature line is not in canonical form"


def test_a_missing_checkpoint_is_refused_and_the_tree_still_checked() -> None:
    b = base()
    del b.files["checkpoint"]
    r = verify_bundle(b.read)
    assert first_failure(r) == "checkpoint is missing"
    assert any(p.startswith("tree: 700 entries") for p in r.passed)


def test_a_peer_checkpoint_not_cosigned_by_this_station_is_refused() -> None:
    b = base()
    their_root = merkle.root([merkle.leaf_hash(e) for e in PEER_ENTRIES])
    b.files["peer-checkpoints/moscow"] = checkpoint_note(MOSCOW, 20, their_root, [STRANGER]).encode()
    assert (
        refusal(b)
        == "peer-checkpoints/moscow: not cosigned by stuttgart, so it proves nothing to a third party"
    )


def test_a_peer_checkpoint_signed_by_another_station_is_refused() -> None:
    b = base()
    b.files["peer-checkpoints/moscow"] = checkpoint_note(STRANGER, 20, bytes(32), [STUTTGART]).encode()
    assert refusal(b) == (
        f"peer-checkpoints/moscow: origin is {STRANGER.card.origin!r}, "
        f"but moscow's card says {MOSCOW.card.origin!r}"
    )


# Cards and trust -------------------------------------------------------------------------


def test_a_trusted_card_with_other_keys_is_refused_naming_the_card() -> None:
    r = verify_bundle(base().read, trusted=[STUTTGART.card, IMPOSTOR.card])
    assert [f.check for f in r.failures] == ["trust"]
    assert first_failure(r) == (
        "card moscow: does not match the trusted card of that name: its signing_key, encryption_key, "
        f"ledger_key, cosigner_key differ (fingerprint here {MOSCOW.card.fingerprint}, "
        f"trusted {IMPOSTOR.card.fingerprint})"
    )
    assert {c.name: c.trusted for c in r.cards} == {"stuttgart": True, "moscow": False}


def test_a_trusted_card_with_the_same_fingerprint_but_another_ledger_key_is_refused() -> None:
    # The fingerprint covers the signing and sealing keys only; the checkpoint keys must match too.
    keys = StationKeys(
        MOSCOW.keys.signing, MOSCOW.keys.encryption, Ed25519PrivateKey.generate(), MOSCOW.keys.cosign
    )
    twin = station("moscow", keys)
    assert twin.card.fingerprint == MOSCOW.card.fingerprint
    r = verify_bundle(base().read, trusted=[STUTTGART.card, twin.card])
    assert first_failure(r) == (
        "card moscow: does not match the trusted card of that name: its ledger_key differ "
        "(the same fingerprint, which does not cover the checkpoint keys)"
    )


def test_a_card_without_a_trusted_card_of_its_name_is_refused() -> None:
    assert refusal(base(), trusted=[STUTTGART.card]) == (
        "card moscow: no trusted card given for moscow: with --trust, every card must be vouched for by one"
    )
    # Not vouched for, yet not a forgery either: unknown, not false.
    r = verify_bundle(base().read, trusted=[STUTTGART.card])
    assert {c.name: c.trusted for c in r.cards} == {"stuttgart": True, "moscow": None}


def test_a_tampered_card_is_refused() -> None:
    b = base()
    b.files["cards/moscow.json"] = b.files["cards/moscow.json"].replace(
        b"moscow.example.org", b"moscow.example.net"
    )
    r = verify_bundle(b.read)
    assert first_failure(r) == "cards/moscow.json: card for 'moscow': card: signature does not verify"
    assert (
        "checkpoint: not cosigned by a peer (no peer card is given), so it proves nothing to a third party"
        in [f.message for f in r.failures]
    )


def test_a_card_filed_under_another_name_is_refused() -> None:
    b = base()
    b.files["cards/moscow.json"] = b.files["cards/stuttgart.json"]
    assert refusal(b) == "cards/moscow.json: the card is 'stuttgart''s, but it is listed as 'moscow'"


# The manifest ----------------------------------------------------------------------------


def _manifest(b: Bundle, **changes: object) -> Bundle:
    m = json.loads(b.files["bundle.json"])
    m.update(changes)
    b.files["bundle.json"] = canonical(m)
    return b


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 699}, "bundle.json: size is 699, but the checkpoint's is 700"),
        (
            {"origin": "openline/ledger/x/0"},
            "bundle.json: origin is 'openline/ledger/x/0', but the checkpoint's is",
        ),
        (
            {"cards": {"stuttgart": "cards/stuttgart.json", "moscow": "../../etc/moscow.json"}},
            "'moscow' must be at",
        ),
        ({"peer_checkpoints": {"stuttgart": "peer-checkpoints/stuttgart"}}, "not a peer with a card here"),
        ({"exported_at": "yesterday"}, "bundle.json: exported_at 'yesterday' is not an RFC 3339 time"),
        ({"size": -1}, "bundle.json: size must be a whole number"),
        ({"root": "AAAA"}, "bundle.json root: expected 32 bytes, got 3"),
        ({"extra": 1}, "unknown fields ['extra']"),
    ],
)
def test_a_manifest_that_disagrees_or_is_malformed_is_refused(changes: dict[str, Any], message: str) -> None:
    assert message in refusal(_manifest(base(), **changes))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no bundle.json"),
        ({"bundle.json": b"{"}, "bundle.json is not JSON"),
        ({"bundle.json": b'{"format": "something-else/v1"}'}, "format 'something-else/v1' is not"),
        ({"bundle.json": b"[]"}, "format None is not"),
    ],
)
def test_something_that_is_not_a_bundle_is_not_evidence(files: dict[str, bytes], message: str) -> None:
    with pytest.raises(NotEvidence, match=message):
        verify_bundle(files.get)


def test_every_failure_is_reported_not_only_the_first() -> None:
    b = base()
    b.files["cards/stuttgart.json"] = b"{}"
    b.files["tile/0/001"] = flip(b.files["tile/0/001"], 0)
    b.files["peer-checkpoints/moscow"] = b"not a note"
    r = verify_bundle(b.read)
    assert [f.check for f in r.failures] == ["card", "checkpoint", "tree", "peer-checkpoint"]


# Any single byte flip anywhere -----------------------------------------------------------


@cache
def _flip_target(size: int) -> tuple[tuple[str, bytes], ...]:
    b = bundle(synthetic_entries(size), STUTTGART, [MOSCOW], peer_entries={"moscow": PEER_ENTRIES[:5]})
    return tuple(sorted(b.files.items()))


@settings(max_examples=80)
@given(
    size=st.one_of(st.sampled_from([1, 255, 256, 257, 512, 513]), st.integers(1, 2000)),
    data=st.data(),
)
def test_any_single_byte_flip_in_any_file_is_refused(size: int, data: st.DataObject) -> None:
    files = dict(_flip_target(size))
    name = data.draw(st.sampled_from(sorted(files)), label="file")
    raw = files[name]
    pos = data.draw(st.integers(0, len(raw) - 1), label="position")
    if name == "bundle.json":  # exported_at is the exporter's unsigned claim, reported as such
        start = raw.index(EXPORTED_AT.encode())
        assume(not start <= pos < start + len(EXPORTED_AT))
    files[name] = flip(raw, pos, data.draw(st.integers(1, 255), label="mask"))
    try:
        r = verify_bundle(files.get)
    except NotEvidence:
        return
    assert not r.ok


# Call proofs -----------------------------------------------------------------------------


@cache
def _log(outcome: str) -> CallLog:
    return call_log(outcome, STUTTGART, MOSCOW)


def proof(outcome: str = "picked_up") -> dict[str, Any]:
    return copy.deepcopy(_log(outcome).proof())  # to tamper with


def proof_refusal(doc: dict[str, Any], trusted: list[Card] | None = None) -> str:
    return first_failure(verify_call_proof(doc, trusted=trusted))


def test_a_picked_up_call_proof_verifies_and_tells_its_story() -> None:
    r = verify_call_proof(json.dumps(proof()).encode(), trusted=[STUTTGART.card, MOSCOW.card])
    assert r.ok, r.failures
    assert r.kind == "call-proof"
    story = r.story
    assert story is not None
    assert (story.call, story.peer, story.direction, story.priority, story.outcome) == (
        _log("picked_up").call,
        "moscow",
        "out",
        "flash",
        "picked_up",
    )
    assert [(e.at, e.event, e.text) for e in story.events] == [
        (at(0), "placed", "placed by stuttgart (stuttgart:alice) to moscow, priority flash"),
        (at(0.4), "stored", "moscow stored the call (its signed receipt)"),
        (at(0.4), "delivered", "delivered to moscow"),
        (at(0.5), "ringing", f"ringing at moscow, answer deadline {at(60.5)}"),
        (at(12), "picked_up", "picked up by moscow:ivan"),
        (at(300), "closed", "closed by stuttgart:alice"),
        (at(300.3), "stored", "moscow stored our call.close envelope (its signed receipt)"),
    ]
    assert [c.by for c in r.cosignatures] == ["moscow"]


def test_a_missed_call_proof_verifies_and_says_the_deadline_passed() -> None:
    r = verify_call_proof(proof("missed"))
    assert r.ok, r.failures
    assert r.story is not None
    assert r.story.outcome == "missed"
    assert r.story.events[-1].text == f"missed: the answer deadline {at(60.5)} passed with nobody picking up"
    assert "picked_up" not in {e.event for e in r.story.events}


def _entry_item(doc: dict[str, Any], entry_type: str) -> dict[str, Any]:
    items = doc["entries"]
    assert isinstance(items, list)
    return next(i for i in items if json.loads(base64.b64decode(i["entry"]))["type"] == entry_type)


def test_a_changed_entry_in_a_call_proof_is_refused() -> None:
    doc = proof()
    item = _entry_item(doc, "call.picked_up")
    entry = base64.b64decode(item["entry"]).replace(b"moscow:ivan", b"moscow:petr")
    item["entry"] = base64.b64encode(entry).decode()
    message = proof_refusal(doc)
    assert message.startswith(f"entry {item['index']} (entries[")
    assert "its inclusion proof leads to" in message
    assert "not to the checkpoint's root" in message


def test_a_wrong_proof_hash_is_refused() -> None:
    doc = proof()
    item = _entry_item(doc, "call.placed")
    item["proof"][0] = base64.b64encode(bytes(32)).decode()
    assert "its inclusion proof leads to" in proof_refusal(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda item: item.update(proof=item["proof"][:-1]), "the proof is shorter than a tree of size"),
        (lambda item: item.update(index=10_000), "leaf index 10000 is not in a tree of size"),
        (lambda item: item.update(proof=["AAAA"]), "proof[0]: expected 32 bytes, got 3"),
        (lambda item: item.update(entry="not base64!"), "entry: not base64"),
        (lambda item: item.update(entry="AAAA\u2014AAA"), "entry: not base64"),  # non-ASCII
        (lambda item: item.pop("proof"), "missing fields ['proof']"),
    ],
)
def test_a_malformed_proof_item_is_refused(change: Callable[[dict[str, Any]], object], message: str) -> None:
    doc = proof()
    change(_entry_item(doc, "call.ringing"))
    assert message in proof_refusal(doc)


def test_a_receipt_signed_by_the_wrong_key_is_refused() -> None:
    # The ledger quotes the receipt faithfully; only its signature is not moscow's.
    log = CallLog(STUTTGART, MOSCOW, "c-1")
    place = log.envelope(STUTTGART, MOSCOW, "call.place", 0)
    meta = {"call": log.call, "direction": "out", "peer": "moscow", "envelope": place.id, "actor": "x"}
    log.add(ledger.entry("call.placed", at(0), meta))
    log.receipt(place, 0.4, signer=STRANGER.keys)
    r = verify_call_proof(log.proof())
    assert first_failure(r) == (
        f"receipt for envelope {place.id!r} (receipts[0]), by moscow's signing key: signature does not verify"
    )
    assert r.story is not None
    assert "stored" not in {e.event for e in r.story.events}


def test_a_receipt_that_is_not_in_the_ledger_is_refused() -> None:
    doc = proof()
    receipt = doc["receipts"][0]
    body = {k: v for k, v in receipt.items() if k != "sig"}
    body["stored_at"] = at(5)
    doc["receipts"] = [{**body, "sig": MOSCOW.keys.sign(canonical(body))}]
    message = proof_refusal(doc)
    assert "is in no receipt.received entry of the proof" in message
    assert message.startswith(f"receipt for envelope {receipt['envelope']!r}")


def test_a_receipt_from_this_station_itself_is_refused() -> None:
    doc = proof()
    receipt = doc["receipts"][0]
    body = {k: v for k, v in receipt.items() if k != "sig"}
    body["from"] = "stuttgart"
    doc["receipts"] = [{**body, "sig": STUTTGART.keys.sign(canonical(body))}]
    assert "it is from 'stuttgart', not from a peer whose card verified" in proof_refusal(doc)


def _log_with(extra: bytes, outcome: str = "picked_up") -> dict[str, Any]:
    log = call_log(outcome, STUTTGART, MOSCOW, filler=3)
    log.add(extra)
    return log.proof()


def test_an_entry_about_another_call_is_refused() -> None:
    doc = _log_with(ledger.entry("call.picked_up", at(1), {"call": "another", "actor": "moscow:ivan"}))
    message = proof_refusal(doc)
    assert message.endswith("(call.picked_up): it is about call 'another', not " + str(doc["call"]))


def test_an_entry_about_another_envelope_is_refused() -> None:
    doc = _log_with(synthetic_entries(1)[0])
    assert (
        "(envelope.sent): envelope '00000000-0000-0000-0000-000000000001' is not one of call"
        in proof_refusal(doc)
    )


def test_an_entry_about_something_else_is_refused() -> None:
    doc = _log_with(ledger.entry("line.active", at(1), {"line": "x", "peer": "moscow"}))
    assert proof_refusal(doc).endswith("(line.active): it is not about a call")


def test_a_proof_without_the_placing_entry_is_refused() -> None:
    doc = proof()
    doc["entries"] = [i for i in doc["entries"] if i is not _entry_item(doc, "call.placed")]
    assert f"no call.placed entry for call {doc['call']}: nothing shows that it was placed" in [
        f.message for f in verify_call_proof(doc).failures
    ]


def _failures(doc: dict[str, Any]) -> list[str]:
    return [f.message for f in verify_call_proof(doc).failures]


def test_a_proof_that_drops_the_pick_up_but_keeps_its_envelope_is_refused() -> None:
    """Without the check the story read `closed`, never picked up, and verified."""
    doc = proof()
    dropped = _entry_item(doc, "call.picked_up")
    doc["entries"] = [i for i in doc["entries"] if i is not dropped]
    [message] = _failures(doc)
    assert message.endswith("(call.pickup): what it did is left out")
    assert "(envelope.received): no call entry in the proof names its envelope" in message


def test_a_proof_without_its_receipts_is_refused() -> None:
    doc = proof()
    doc["receipts"] = []
    failures = _failures(doc)
    assert len(failures) == 2  # the call's receipt and the close's
    assert all(m.endswith("is not in the proof") and "(receipt.received)" in m for m in failures)


def test_a_receipt_whose_envelope_entry_was_dropped_is_refused() -> None:
    """The receipt's digest was compared with the envelope.sent entry only when there was one."""
    doc = proof()
    close = next(
        i
        for i in doc["entries"]
        if (e := json.loads(base64.b64decode(i["entry"])))["type"] == "envelope.sent"
        and e["kind"] == "call.close"
    )
    doc["entries"] = [i for i in doc["entries"] if i is not close]
    assert any(m.endswith("the proof has no envelope.sent entry for it") for m in _failures(doc))


def test_no_story_is_told_from_a_checkpoint_whose_signature_fails() -> None:
    doc = proof()
    lines = doc["checkpoint"].split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()  # another root, the signatures unchanged
    doc["checkpoint"] = "\n".join(lines)
    r = verify_call_proof(doc)
    assert not r.ok
    assert r.story is None
    assert "no story is told: the checkpoint's signatures did not verify" in r.notes


def test_a_call_proof_entry_listed_twice_is_refused() -> None:
    doc = proof()
    doc["entries"] = [*doc["entries"], _entry_item(doc, "call.ringing")]
    assert proof_refusal(doc).endswith("listed twice")


def test_a_call_proof_checkpoint_without_the_peers_cosignature_is_refused() -> None:
    doc = _log("picked_up").proof(cosigners=[])
    assert proof_refusal(doc) == "checkpoint: not cosigned by moscow, so it proves nothing to a third party"


def test_a_call_proof_with_a_card_that_is_not_trusted_is_refused() -> None:
    assert proof_refusal(proof(), trusted=[STUTTGART.card, IMPOSTOR.card]).startswith(
        "card moscow: does not match the trusted card of that name"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"format": "openline-evidence-bundle/v1"}', "is not 'openline-call-proof/v1'"),
        ("[]", "format None"),
    ],
)
def test_something_that_is_not_a_call_proof_is_not_evidence(data: bytes | str, message: str) -> None:
    with pytest.raises(NotEvidence, match=message):
        verify_call_proof(data)


def test_a_call_proof_with_unknown_fields_is_refused() -> None:
    doc = proof()
    doc["extra"] = True
    assert proof_refusal(doc) == "call proof: missing fields [], unknown fields ['extra']"


def test_a_call_proof_hash_in_another_base64_spelling_is_refused() -> None:
    # A 32-byte hash leaves 2 spare bits in its last base64 character: one value, one spelling.
    doc = proof()
    item = _entry_item(doc, "call.ringing")
    b64 = item["proof"][0]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    respelled = b64[:-2] + alphabet[alphabet.index(b64[-2]) ^ 1] + "="
    assert base64.b64decode(respelled) == base64.b64decode(b64)
    item["proof"][0] = respelled
    assert proof_refusal(doc).endswith("proof[0]: not the canonical base64 spelling")


def test_a_receipt_for_another_version_of_the_envelope_is_refused() -> None:
    doc = proof()
    body = {k: v for k, v in doc["receipts"][0].items() if k != "sig"}
    body["digest"] = "sha-256=" + "B" * 43
    doc["receipts"][0] = {**body, "sig": MOSCOW.keys.sign(canonical(body))}
    assert "it is for an envelope of digest 'sha-256=BBBB" in proof_refusal(doc)


def test_an_envelope_of_the_call_that_changed_nothing_belongs_in_its_proof() -> None:
    # A repeated ring is accepted and changes nothing: no call.* entry names its envelope,
    # but the envelope entry carries the call as its ref.
    log = call_log("picked_up", STUTTGART, MOSCOW, filler=3)
    log.envelope(MOSCOW, STUTTGART, "call.ringing", 1)
    r = verify_call_proof(log.proof())
    assert r.ok, r.failures


def test_the_story_reads_the_priority_where_the_station_records_it() -> None:
    log = CallLog(STUTTGART, MOSCOW, "c-2")
    place = log.envelope(STUTTGART, MOSCOW, "call.place", 0)
    meta = {"call": log.call, "direction": "out", "peer": "moscow", "envelope": place.id, "actor": "admin"}
    log.add(ledger.entry("call.placed", at(0), {**meta, "detail": {"priority": "immediate"}}))
    r = verify_call_proof(log.proof())
    assert r.ok, r.failures
    assert r.story is not None
    assert (r.story.priority, r.story.outcome) == ("immediate", "placed")
