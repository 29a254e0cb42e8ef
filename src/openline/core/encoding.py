"""Byte encodings shared by cards, envelopes, receipts and request signatures.

Canonical JSON is RFC 8785 (JCS) through the `rfc8785` package; we never canonicalise
by hand. Binary values travel as unpadded base64url (RFC 4648 §5).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from typing import Any

import rfc8785

from openline.errors import Code, EnvelopeRefused, InvalidInput

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")
_MAX_DIGITS = 18  # 10^18 - 1 < 2^63
# C0 and C1 control characters and DEL, except tab, line feed and carriage return.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# And carriage return, which rewrites a line; and the bidirectional embeddings, overrides
# and isolates, which show text in another order than it is stored ("Trojan Source").
_SHOWN_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical bytes of a JSON value."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EnvelopeRefused(Code.MALFORMED, f"value cannot be canonicalised: {exc}") from exc
    except RecursionError:  # rfc8785 recurses once per level of nesting
        raise EnvelopeRefused(Code.MALFORMED, "value cannot be canonicalised: nested too deeply") from None


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str, *, what: str = "value") -> bytes:
    """Decode unpadded base64url, refusing any other spelling of the same bytes.

    Exactly one text per byte string: no padding, no '+' or '/', no stray characters,
    no non-zero trailing bits. Otherwise an unsigned field (a body, a signature) could be
    re-spelled without breaking a signature while changing every digest quoted over it.
    """
    if not isinstance(text, str):
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: expected base64url text, got {type(text).__name__}")
    if not _B64URL_RE.fullmatch(text):
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: not base64url (unpadded, alphabet A-Z a-z 0-9 - _)")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: not base64url ({exc})") from exc
    if b64e(raw) != text:
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: not the canonical base64url spelling")
    return raw


def parse_json(text: str | bytes, **options: Any) -> Any:
    """json.loads for input from outside, strict where Python's is lenient, each fault a
    ValueError like any other malformed JSON:

    - a key twice in one object (RFC 8259 leaves its meaning open, and Python keeps the
      last: a peer's envelope or a file could mean one thing to one reader and another to
      the next);
    - NaN, Infinity and -Infinity, which are not JSON;
    - nesting too deep for the decoder: the C decoder raises RecursionError, which no
      `except ValueError` catches (a bundle or a peer's request of "[[[[..." was a crash).
    """
    try:
        return json.loads(
            text, **{"object_pairs_hook": _one_of_each, "parse_constant": _not_a_number, **options}
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _one_of_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r:.40} appears twice in one object")
            seen.add(key)
    return obj


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def control_character(text: str) -> str | None:
    """The first control character in `text` other than tab, line feed and carriage return,
    spelled so it can be shown (\\x1b, at position 4), or None. Text people write is read on
    watch floors and in terminals, where an ESC sequence can clear the screen or rewrite a
    line; and PostgreSQL refuses NUL in text."""
    found = _CONTROL_RE.search(text)
    if found is None:
        return None
    return f"\\x{ord(found.group()):02x} at position {found.start() + 1}"


# Characters that show as nothing, beyond white space and the format characters (Cf: zero
# width spaces and joiners, the byte order mark, bidirectional marks): the Braille pattern
# blank and the Hangul fillers, which fonts draw empty.
_BLANK = frozenset("\u2800\u115f\u1160\u3164\uffa0")


def blank(text: str) -> bool:
    """Whether `text` shows nothing to read: only white space, format characters,
    combining marks with nothing to combine with, and characters drawn empty."""
    return all(c.isspace() or c in _BLANK or unicodedata.category(c) in ("Cf", "Mn", "Me") for c in text)


def text_field(value: Any, field: str, limit: int, *, optional: bool = False) -> str | None:
    """`value` as the text of `field`: a string with something besides white space, at
    most `limit` characters and no control characters (`control_character`); None when
    `optional` and absent. Raises InvalidInput naming the field."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be non-empty text")
    if len(value) > limit:
        raise InvalidInput(f"{field} must be at most {limit} characters, got {len(value)}")
    control = control_character(value)
    if control is not None:
        raise InvalidInput(f"{field} must not contain control characters, got {control}")
    return value


def said(value: Any, field: str, limit: int, *, optional: bool = False) -> str | None:
    """`text_field` written by one of our own people: it must also show something to
    read. A subject of a zero-width space would ring as an empty one (a peer's text is
    taken as sent)."""
    text = text_field(value, field, limit, optional=optional)
    if text is not None and blank(text):
        raise InvalidInput(f"{field} must have something to read, not only invisible characters")
    return text


def visible(text: str) -> str:
    """`text` with each control character but tab and line feed spelled out as \\x.. (a
    bidirectional control as \\u....), for showing text that came from outside on a
    terminal, where a carriage return or an ESC sequence would rewrite what is shown."""
    return _SHOWN_RE.sub(_spelled, text)


def _spelled(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def undecodable(exc: UnicodeDecodeError) -> str:
    """Why bytes are not UTF-8 text, naming the first byte that is not: the same words for
    a file, a request body and a command's argument."""
    return f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})"


def digits(text: str) -> bool:
    """Whether `text` is 1 to 18 ASCII digits: a whole number that fits a 64-bit column,
    which int() reads. str.isdigit() also passes '²' (which int() refuses) and '١٢' (which
    int() reads as 12), and int() refuses more than 4,300 digits."""
    return 0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def digest(data: bytes) -> str:
    """The `sha-256=<base64url>` digest string used in headers and receipts."""
    return "sha-256=" + b64e(sha256(data))
