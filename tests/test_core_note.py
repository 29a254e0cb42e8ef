"""C2SP signed notes, checkpoints and cosignatures, pinned to the test vectors of Go's
golang.org/x/mod/sumdb/note (note_test.go)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from openline.core import merkle, note

# sumdb/note's test keys and message.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
    "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTG"
    "wnWLox33WWd1RvMc+QQ=\n"
)


def peter_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(PETER_SKEY.split("+", 4)[-1])  # the base64 may hold "+"
    assert raw[0] == note.ED25519
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def test_signing_gives_the_published_note() -> None:
    assert note.sign(TEXT, "PeterNeumann", peter_key()) == TEXT + "\n" + PETER_SIG


def test_the_verifier_key_round_trips_and_has_the_published_id() -> None:
    v = note.parse_verifier_key(PETER_VKEY)
    assert v.key_id == 0xC74F20A3
    assert v.text() == PETER_VKEY
    assert note.verifier("PeterNeumann", peter_key().public_key()).text() == PETER_VKEY


@pytest.mark.parametrize(
    "bad",
    [
        PETER_VKEY[:-1],
        PETER_VKEY.replace("c74f20a3", "c74f20a4"),
        PETER_VKEY.replace("c74f20a3", "C74F20A3"),
        PETER_VKEY.replace("PeterNeumann", "PeterNeuman"),
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length
        "PeterNeumann+c74f20a3",
        "",
    ],
)
def test_mangled_verifier_keys_are_refused(bad: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse_verifier_key(bad)


def test_opening_verifies_known_signers_and_leaves_the_others() -> None:
    n = note.parse(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert n.text == TEXT
    assert [s.name for s in n.signatures] == ["PeterNeumann", "EnochRoot"]
    assert note.verify(n, note.parse_verifier_key(PETER_VKEY)).key_id == 0xC74F20A3
    assert note.verify(n, note.parse_verifier_key(ENOCH_VKEY)).key_id == 0xAF0CFE78
    tampered = note.parse(TEXT.replace("answer", "Answer") + "\n" + PETER_SIG)
    with pytest.raises(note.NoteError, match="does not verify"):
        note.verify(tampered, note.parse_verifier_key(PETER_VKEY))
    with pytest.raises(note.NoteError, match="no signature by EnochRoot"):
        note.verify(note.parse(TEXT + "\n" + PETER_SIG), note.parse_verifier_key(ENOCH_VKEY))


@pytest.mark.parametrize(
    "message",
    [
        "",
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + "— \n",
        TEXT + "\n" + PETER_SIG[:-1],
        TEXT + "\n- PeterNeumann AAAA\n",
        # A newline flipped to \x0b joins two signature lines: non-ASCII in the base64,
        # which the base64 module refuses with ValueError, not binascii.Error.
        TEXT + "\n— PeterNeumann AAAAAAA=\x0b— EnochRoot AAAAAAA=\n",
        TEXT + "\n— PeterNeumann AAAA\u00e9AAA\n",
    ],
)
def test_malformed_notes_are_refused(message: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse(message)


def test_a_checkpoint_cosigned_by_the_peer() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(5)]
    checkpoint = note.Checkpoint("openline.example/stuttgart", 5, merkle.root(leaves))
    body = checkpoint.body()
    assert body.splitlines()[:2] == ["openline.example/stuttgart", "5"]
    assert note.parse_checkpoint(body) == checkpoint
    ours, peers = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signed = note.parse(note.sign(body, "stuttgart", ours))
    cosig = note.cosign(body, "moscow", peers, 1_795_680_000)
    both = signed.with_signature(cosig)
    reopened = note.parse(both.render())
    note.verify(reopened, note.verifier("stuttgart", ours.public_key()))
    cosigner = note.verifier("moscow", peers.public_key(), note.COSIGNATURE_V1)
    assert note.verify(reopened, cosigner).blob[:8] == (1_795_680_000).to_bytes(8, "big")
    # the cosigner's key ID is over algorithm 4 (C2SP tlog-cosignature)
    raw = peers.public_key().public_bytes_raw()
    assert cosig.key_id == int.from_bytes(hashlib.sha256(b"moscow\n\x04" + raw).digest()[:4], "big")
    forged = note.parse(both.render().replace("\n5\n", "\n6\n"))
    with pytest.raises(note.NoteError, match="does not verify"):
        note.verify(forged, cosigner)


def test_keeping_shows_only_the_signatures_asked_for() -> None:
    """A checkpoint cosigned by two peers, shown to one of them: our signature and its
    cosignature, which still verify; nothing of the other peer."""
    body = note.Checkpoint("openline.example/geneva", 5, merkle.root([merkle.leaf_hash(b"x")])).body()
    ours, north, south = (Ed25519PrivateKey.generate() for _ in range(3))
    full = (
        note.parse(note.sign(body, "geneva", ours))
        .with_signature(note.cosign(body, "north", north, 1_795_680_000))
        .with_signature(note.cosign(body, "south", south, 1_795_680_001))
    )
    signer = note.verifier("geneva", ours.public_key())
    for_north = note.verifier("north", north.public_key(), note.COSIGNATURE_V1)
    shown = note.parse(full.keeping([for_north, signer]).render())
    assert [s.name for s in shown.signatures] == ["geneva", "north"]  # in the note's order
    note.verify(shown, signer)
    note.verify(shown, for_north)
    assert "south" not in shown.render()
    # A key of the same name but another key ID is not kept.
    impostor = note.verifier("north", Ed25519PrivateKey.generate().public_key(), note.COSIGNATURE_V1)
    assert [s.name for s in full.keeping([signer, impostor]).signatures] == ["geneva"]
    with pytest.raises(note.NoteError, match="none of the signatures asked for"):
        full.keeping([impostor])


@pytest.mark.parametrize(
    "body",
    [
        "o\n01\nAAAA\n",
        "o\n5\nnot base64!\n",
        "o\n5\n" + "A" * 8 + "\n",
        "\n5\nAAAA\n",
        "o\n\u00b2\n" + "A" * 43 + "=\n",  # isdigit() but not int(): a ValueError before
        "o\n\u0665\n" + "A" * 43 + "=\n",  # an Arabic-Indic 5: another spelling of a signed size
        "o\n" + "9" * 5000 + "\n" + "A" * 43 + "=\n",  # more digits than int() reads
    ],
)
def test_bad_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(body)
