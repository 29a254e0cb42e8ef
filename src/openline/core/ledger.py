"""Ledger entries: what each event puts into the station's Merkle log.

An entry is the RFC 8785 canonical JSON of the event's metadata. Content (a subject, a
message, a summary) never goes in; a salted commitment to it does:

    commitment = "sha-256=" base64url(SHA-256("openline commitment v1" 0x00 salt content))

with a fresh 32-byte salt kept beside the sealed content. Later a party can reveal one
message and its salt, and anyone holding the entry can check that they match (selective
disclosure); without the salt, nobody can find a short message by trying candidates.

Pure: the caller supplies the salt (from a CSPRNG) and the time.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from openline.core.encoding import b64e, canonical, sha256

VERSION = 1
SALT_BYTES = 32
_DOMAIN = b"openline commitment v1\x00"
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_FORBIDDEN = {"text", "subject", "summary", "reason", "body", "content_text"}  # content, never metadata


class EntryError(ValueError):
    """An entry that cannot go into the ledger as given."""


def commitment(content: bytes, salt: bytes) -> str:
    if len(salt) != SALT_BYTES:
        raise EntryError(f"salt must be {SALT_BYTES} bytes, got {len(salt)}")
    return "sha-256=" + b64e(sha256(_DOMAIN + salt + content))


def reveals(commitment_text: str, content: bytes, salt: bytes) -> bool:
    """Whether `content` with `salt` is what `commitment_text` committed to."""
    try:
        return hmac.compare_digest(commitment(content, salt), commitment_text)
    except EntryError:
        return False


def entry(event_type: str, at: str, metadata: dict[str, Any], content_commitment: str | None = None) -> bytes:
    """The canonical bytes of one ledger entry (what the log hashes as a leaf)."""
    if not _TYPE_RE.fullmatch(event_type):
        raise EntryError(f"event type {event_type!r}: lowercase letters, digits, '_' and '.'")
    leaked = _FORBIDDEN & set(metadata)
    if leaked:
        raise EntryError(
            f"metadata must not carry content ({', '.join(sorted(leaked))}): commit to it instead"
        )
    reserved = {"v", "type", "at", "content"} & set(metadata)
    if reserved:
        raise EntryError(f"metadata must not use the entry's own fields: {', '.join(sorted(reserved))}")
    if content_commitment is not None and not content_commitment.startswith("sha-256="):
        raise EntryError("content commitment must be a sha-256= commitment")
    value: dict[str, Any] = {"v": VERSION, "type": event_type, "at": at, **metadata}
    if content_commitment is not None:
        value["content"] = content_commitment
    return canonical(value)
