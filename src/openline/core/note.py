"""C2SP signed notes (the format of Go's `golang.org/x/mod/sumdb/note`), and the two
things the ledger signs with them: tlog checkpoints and tlog cosignatures.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
`— <name> <base64(key ID || signature)>`. A key ID is the first 4 bytes of
SHA-256(name || 0x0A || algorithm byte || public key). Ed25519 note signatures use
algorithm 0x01 and sign the text; cosignatures (C2SP tlog-cosignature, `cosignature/v1`)
use algorithm 0x04 and sign `cosignature/v1\\ntime <T>\\n` followed by the checkpoint
body, carrying T (8 bytes, big-endian) before the signature. Verifier keys print as
`<name>+<hex key ID>+<base64(algorithm byte || public key)>`.

Pure formatting and parsing; the signatures are pyca/cryptography's Ed25519. Pinned to
the sumdb/note test vectors.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from openline.core.encoding import digits

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
_DASH = "\u2014 "  # an em dash and a space begin each signature line


class NoteError(ValueError):
    """A malformed note, key or signature line."""


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: int
    blob: bytes  # the signature bytes after the key ID (a cosignature's begin with its time)

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(struct.pack('>I', self.key_id) + self.blob).decode()}\n"


@dataclass(frozen=True)
class Verifier:
    name: str
    algorithm: int
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.algorithm, _raw(self.public_key))

    def text(self) -> str:
        """The verifier key in the `<name>+<hex key ID>+<base64>` form."""
        raw = bytes([self.algorithm]) + _raw(self.public_key)
        return f"{self.name}+{self.key_id:08x}+{base64.b64encode(raw).decode()}"


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, algorithm: int, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([algorithm]) + public_key).digest()
    return int(struct.unpack(">I", digest[:4])[0])


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError(f"key name {name!r}: must be non-empty, printable, without spaces or '+'")


def verifier(name: str, public_key: Ed25519PublicKey, algorithm: int = ED25519) -> Verifier:
    _check_name(name)
    return Verifier(name, algorithm, public_key)


def parse_verifier_key(text: str) -> Verifier:
    """A verifier from its `<name>+<hex key ID>+<base64>` form, checked in every part."""
    name, sep1, rest = text.partition("+")
    hex_id, sep2, b64 = rest.partition("+")
    if not (sep1 and sep2) or len(hex_id) != 8:
        raise NoteError(f"verifier key {text!r}: expected <name>+<8 hex digits>+<base64 key>")
    _check_name(name)
    try:
        wanted = int(hex_id, 16)
        raw = base64.b64decode(b64, validate=True)  # binascii.Error is a ValueError
    except ValueError:
        raise NoteError(f"verifier key {text!r}: bad key ID or base64") from None
    if hex_id != hex_id.lower() or base64.b64encode(raw).decode() != b64:
        raise NoteError(f"verifier key {text!r}: not in canonical form")
    if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError(f"verifier key {text!r}: expected an Ed25519 key (algorithm 1 or 4)")
    if key_id(name, raw[0], raw[1:]) != wanted:
        raise NoteError(f"verifier key {text!r}: the key ID does not match the key")
    return Verifier(name, raw[0], Ed25519PublicKey.from_public_bytes(raw[1:]))


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or len(text.splitlines()) < 1:
        raise NoteError("note text must be non-empty lines, each ending in a newline, none blank")
    if any(not line.isprintable() for line in text.splitlines()):
        raise NoteError("note text must be printable")


def sign(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """A note with one Ed25519 signature (algorithm 0x01) over `text`."""
    _check_text(text)
    _check_name(name)
    sig = Signature(name, key_id(name, ED25519, _raw(key.public_key())), key.sign(text.encode()))
    return text + "\n" + sig.line()


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def with_signature(self, sig: Signature) -> Note:
        others = tuple(s for s in self.signatures if (s.name, s.key_id) != (sig.name, sig.key_id))
        return Note(self.text, (*others, sig))

    def keeping(self, keys: Iterable[Verifier]) -> Note:
        """The note with the signatures of `keys` only, in the order they are on it: what a
        party is shown, without the names and key IDs of the note's other signers."""
        wanted = {(k.name, k.key_id) for k in keys}
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) in wanted)
        if not kept:
            raise NoteError("none of the signatures asked for is on the note")
        return Note(self.text, kept)

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def parse(message: str) -> Note:
    """Split a note into its text and signature lines (nothing verified yet)."""
    text, sep, block = message.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise NoteError("malformed note: expected text, a blank line, then signature lines")
    text += "\n"
    _check_text(text)
    sigs = []
    for line in block[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line[:60]!r}")
        name, space, b64 = line[len(_DASH) :].partition(" ")
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:  # binascii.Error, or characters outside ASCII
            raise NoteError(f"signature line of {name}: bad base64") from None
        if not space or len(raw) < 5:
            raise NoteError(f"signature line of {name}: too short")
        sigs.append(Signature(name, int(struct.unpack(">I", raw[:4])[0]), raw[4:]))
    if not sigs:
        raise NoteError("a note needs at least one signature")
    return Note(text, tuple(sigs))


def verify(note: Note, v: Verifier) -> Signature:
    """The signature of `v` on the note, verified (note signature or cosignature)."""
    found = [s for s in note.signatures if s.name == v.name and s.key_id == v.key_id]
    if not found:
        raise NoteError(f"no signature by {v.name} ({v.key_id:08x})")
    sig = found[0]
    if v.algorithm == ED25519:
        message, signature = note.text.encode(), sig.blob
    else:
        if len(sig.blob) != 8 + 64:
            raise NoteError(f"cosignature by {v.name}: expected a time and a 64-byte signature")
        (timestamp,) = struct.unpack(">Q", sig.blob[:8])
        message, signature = cosigned_message(note.text, timestamp), sig.blob[8:]
    try:
        v.public_key.verify(signature, message)
    except InvalidSignature:
        raise NoteError(f"the signature by {v.name} does not verify") from None
    return sig


# Checkpoints and cosignatures -------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """C2SP tlog-checkpoint: the origin, the tree size and the root hash."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("checkpoint: expected origin, size and root hash lines")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin or not digits(size) or (size != "0" and size.startswith("0")):
        raise NoteError("checkpoint: bad origin or size")
    try:
        raw = base64.b64decode(root, validate=True)
    except ValueError:  # binascii.Error, or characters outside ASCII
        raise NoteError("checkpoint: root hash is not base64") from None
    if len(raw) != 32:
        raise NoteError(f"checkpoint: root hash must be 32 bytes, got {len(raw)}")
    return Checkpoint(origin, int(size), raw)


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign(checkpoint_text: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> Signature:
    """A C2SP tlog-cosignature (`cosignature/v1`) on a checkpoint, at `timestamp` (seconds)."""
    _check_name(name)
    parse_checkpoint(checkpoint_text)
    if not 0 <= timestamp < 2**63:
        raise NoteError(f"cosignature time out of range: {timestamp}")
    blob = struct.pack(">Q", timestamp) + key.sign(cosigned_message(checkpoint_text, timestamp))
    return Signature(name, key_id(name, COSIGNATURE_V1, _raw(key.public_key())), blob)
