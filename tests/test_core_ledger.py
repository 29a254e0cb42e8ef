"""Ledger entries: canonical metadata, salted commitments, selective disclosure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openline.core import ledger, merkle

SALT = bytes(range(32))


def test_an_entry_is_canonical_json_with_a_commitment_not_the_content() -> None:
    c = ledger.commitment(b"Hold fire on route 4", SALT)
    raw = ledger.entry(
        "message.received", "2026-11-26T05:12:29.303124Z", {"call": "c1", "from": "moscow", "seq": 7}, c
    )
    assert raw == (
        b'{"at":"2026-11-26T05:12:29.303124Z","call":"c1","content":"' + c.encode() + b'",'
        b'"from":"moscow","seq":7,"type":"message.received","v":1}'
    )
    assert b"Hold fire" not in raw
    assert len(merkle.leaf_hash(raw)) == 32


def test_the_commitment_is_pinned() -> None:
    # SHA-256("openline commitment v1" 0x00 || bytes 00..1f || "hi") in base64url, computed
    # independently with: (printf 'openline commitment v1\0'; <the 32 bytes>; printf hi) | sha256sum
    assert ledger.commitment(b"hi", SALT) == "sha-256=jpt2W6Op-_u1Ln8HzcPnGLwv0qm0AuaENpTpSgMDqmY"


@given(st.binary(max_size=200), st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_a_reveal_matches_only_its_own_content_and_salt(content: bytes, salt: bytes, other: bytes) -> None:
    c = ledger.commitment(content, salt)
    assert ledger.reveals(c, content, salt)
    assert not ledger.reveals(c, content + b"!", salt)
    if other != salt:
        assert not ledger.reveals(c, content, other)
        assert ledger.commitment(content, other) != c  # the salt hides short messages


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_type": "Bad Type", "at": "t", "metadata": {}}, "event type"),
        ({"event_type": "message.sent", "at": "t", "metadata": {"text": "x"}}, "must not carry content"),
        ({"event_type": "call.placed", "at": "t", "metadata": {"subject": "x"}}, "must not carry content"),
        ({"event_type": "call.placed", "at": "t", "metadata": {"type": "x"}}, "entry's own fields"),
        ({"event_type": "call.placed", "at": "t", "metadata": {}, "content_commitment": "md5=x"}, "sha-256="),
    ],
)
def test_bad_entries_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ledger.EntryError, match=message):
        ledger.entry(**kwargs)  # type: ignore[arg-type]


def test_a_salt_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ledger.EntryError, match="32 bytes"):
        ledger.commitment(b"x", b"short")
    assert not ledger.reveals(ledger.commitment(b"x", SALT), b"x", b"short")
