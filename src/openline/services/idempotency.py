"""Requests made safe to send again: the `Idempotency-Key` header (IETF draft
draft-ietf-httpapi-idempotency-key-header; docs/api.md).

A client that sends a request that makes something (a call, a message, a notice) and gets
no answer cannot tell whether it was made. With a key, it sends the same request again:
the first one's `made` id, kept in the same transaction as what it made, is the answer,
and nothing is made twice. A key is the user's own, kept for a day: the same key with
another request is refused (422), and a retry that arrives while the first is still being
made is told so (409) and tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from openline.adapters.schema import idempotency_keys
from openline.core.encoding import canonical, sha256
from openline.errors import Conflict, InvalidInput
from openline.services.station import Station, Tx

HEADER = "Idempotency-Key"
KEPT_US = 24 * 3600 * 1_000_000  # how long a key answers for what it made
MAX_KEY = 255
# What a key may hold: printable ASCII but the double quote and the backslash, which
# the header's quoted form (an RFC 9651 String) would have to escape.
_KEY_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


_FIND = select(idempotency_keys.c.fingerprint, idempotency_keys.c.made, idempotency_keys.c.created_at).where(
    idempotency_keys.c.user_id == bindparam("u"), idempotency_keys.c.key == bindparam("k")
)


@dataclass(frozen=True)
class Once:
    """One request's key: whose, which, and the fingerprint of what was asked."""

    user_id: int
    key: str
    fingerprint: str


def parse_key(value: str) -> str:
    """The key in a header value: an RFC 9651 String (`"8e03978e-..."`), as the draft
    has it, or the same characters unquoted, as many clients send it."""
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_KEY or not set(key) <= _KEY_CHARS:
        raise InvalidInput(
            f"{HEADER}: expected 1-{MAX_KEY} printable ASCII characters (no double quote or "
            f"backslash), quoted or not, got {value[:80]!r}"
        )
    return key


def once(user_id: int, header: str | None, method: str, path: str, body: Any) -> Once | None:
    """The request's `Once`, or None when it carries no key."""
    if header is None:
        return None
    key = parse_key(header)
    asked = canonical({"method": method, "path": path, "body": body})
    return Once(user_id, key, sha256(asked).hex())


def made_before(station: Station, request: Once | None) -> str | None:
    """What this key made within the last day, or None. The same key with another request
    is refused: the client reused a key, and doing either request could be wrong."""
    if request is None:
        return None
    with station.db.read() as conn:
        row = conn.execute(_FIND, {"u": request.user_id, "k": request.key}).first()
    if row is None or row.created_at <= station.clock.now() - KEPT_US:
        return None
    if row.fingerprint != request.fingerprint:
        raise InvalidInput(
            f"{HEADER} {request.key!r} was sent with another request within the last day: "
            "a key names one request; use a new key for a new one"
        )
    return str(row.made)


def keep(tx: Tx, request: Once | None, made: str) -> None:
    """Record, in the transaction that made it, what the request made. A request with the
    same key that made its thing meanwhile (another connection's retry) rolls this one
    back: the client asks again and is answered with that."""
    if request is None:
        return
    tx.conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at <= tx.now - KEPT_US))
    taken = tx.conn.execute(_FIND, {"u": request.user_id, "k": request.key}).first() is not None
    if not taken:
        try:
            tx.conn.execute(
                insert(idempotency_keys).values(
                    user_id=request.user_id,
                    key=request.key,
                    fingerprint=request.fingerprint,
                    made=made,
                    created_at=tx.now,
                )
            )
        except IntegrityError:  # PostgreSQL: the other transaction committed while we waited
            taken = True
    if taken:
        raise Conflict(
            f"a request with {HEADER} {request.key!r} was being made at the same time; nothing "
            "was done twice: send it again for its answer"
        )


def run(station: Station, request: Once | None, make: Callable[[Once | None], str]) -> tuple[str, bool]:
    """`make(request)` once per key: (what it made, whether that was made before)."""
    before = made_before(station, request)
    if before is not None:
        return before, True
    return make(request), False
