"""Disclosed content: envelope bodies a proof carries, checked against the ledger's
commitments to them (docs/ledger.md, "Disclosing content").

An envelope.sent or envelope.received entry holds no content, only

    content = "sha-256=" base64url(SHA-256("openline commitment v1" 0x00 || salt || body))

where `body` is the RFC 8785 canonical JSON of the envelope's body without its `salt`,
and the salt travels inside the sealed body. A proof made with `--disclose` carries the
opened bodies, salts included; whoever holds the proof recomputes each commitment
(`core.ledger.reveals`) and so knows the body is the one that was sealed, not one written
afterwards. What a checked body says is then told in plain lines.

Pure: the entries come in parsed, and already proven in the checkpoint's tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openline.core.encoding import b64d, canonical, visible
from openline.core.ledger import SALT_BYTES, commitment, reveals
from openline.errors import OpenLineError

FIELDS = frozenset({"envelope", "body"})
COMMITTING = ("envelope.sent", "envelope.received")
# A notice body's fields that name it rather than say anything: the entries name it too.
_NAMING = ("notice", "series", "version", "salt", "extents")


class DisclosureError(ValueError):
    """A disclosed body that no entry of the proof commits to."""


@dataclass(frozen=True)
class Disclosure:
    """A body checked against the commitment of entry `index`, and what it says."""

    envelope: str
    kind: str  # the envelope's kind, as the entry logged it: notice.send, call.say, ...
    index: int
    entry_type: str  # envelope.sent or envelope.received
    at: str
    body: dict[str, Any]
    lines: tuple[str, ...]


def check(i: int, item: Any, entries: Sequence[tuple[int, Mapping[str, Any]]]) -> Disclosure:
    """`item`, the proof's `disclosed[i]`, checked against the entry of `entries` (index,
    entry) that logged its envelope. Raises `DisclosureError` saying what does not match."""
    where = f"disclosed[{i}]"
    if not isinstance(item, dict) or set(item) != FIELDS:
        got = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise DisclosureError(f"{where}: expected an object of {sorted(FIELDS)}, got {got}")
    envelope, body = item["envelope"], item["body"]
    if not isinstance(envelope, str):
        raise DisclosureError(f"{where}: envelope must be an envelope's id, got {envelope!r:.60}")
    where = f"envelope {envelope} ({where})"
    if not isinstance(body, dict):
        raise DisclosureError(f"{where}: body must be the envelope's body (an object), got {body!r:.60}")
    logged = next(
        (
            (index, entry)
            for index, entry in entries
            if entry.get("type") in COMMITTING
            and entry.get("envelope") == envelope
            and isinstance(entry.get("content"), str)
        ),
        None,
    )
    if logged is None:
        raise DisclosureError(
            f"{where}: no envelope.sent or envelope.received entry of the proof commits to its content, "
            "so nothing vouches for the body disclosed"
        )
    index, entry = logged
    salt_text = body.get("salt")
    if not isinstance(salt_text, str):
        raise DisclosureError(f"{where}: the body has no salt, so its commitment cannot be recomputed")
    try:
        salt = b64d(salt_text, what="the body's salt")
        content = canonical({k: v for k, v in body.items() if k != "salt"})
    except OpenLineError as exc:
        raise DisclosureError(f"{where}: {exc.detail}") from None
    if not reveals(str(entry["content"]), content, salt):
        got = commitment(content, salt) if len(salt) == SALT_BYTES else f"a salt of {len(salt)} bytes"
        raise DisclosureError(
            f"{where}: the body disclosed is not the one entry {index} ({entry['type']}) committed to: "
            f"the entry holds {entry['content']}, the body gives {got}"
        )
    kind = str(entry.get("kind", ""))
    return Disclosure(envelope, kind, index, str(entry["type"]), str(entry["at"]), body, describe(kind, body))


def describe(kind: str, body: Mapping[str, Any]) -> tuple[str, ...]:
    """What a body says, one line a field; a notice's volumes one line each."""
    if kind != "notice.send":
        return tuple(f"{k}: {_text(v)}" for k, v in body.items() if k != "salt")
    lines = [f"{k}: {_text(v)}" for k, v in body.items() if k not in _NAMING and v is not None]
    extents = body.get("extents")
    for n, volume in enumerate(extents if isinstance(extents, list) else [], start=1):
        lines.append(f"volume {n}: {_volume(volume)}")
    return tuple(lines)


def _volume(v: Any) -> str:
    """An ASTM Volume4D (core.notices.volume4d) in words; a malformed one says what it lacks."""
    shape = _at(v, "volume")
    circle, polygon = _at(shape, "outline_circle"), _at(shape, "outline_polygon")
    if circle is not None:
        outline = (
            f"circle centred at {_number(_at(circle, 'center', 'lat'))}, "
            f"{_number(_at(circle, 'center', 'lng'))}, radius {_number(_at(circle, 'radius', 'value'))} m"
        )
    elif polygon is not None:
        vertices = _at(polygon, "vertices")
        vertices = vertices if isinstance(vertices, list) else []
        first = vertices[0] if vertices else None
        outline = (
            f"polygon of {len(vertices)} vertices, the first at "
            f"{_number(_at(first, 'lat'))}, {_number(_at(first, 'lng'))}"
        )
    else:
        outline = "no outline"
    band = (
        f"altitude {_number(_at(shape, 'altitude_lower', 'value'))} to "
        f"{_number(_at(shape, 'altitude_upper', 'value'))} m ({_at(shape, 'altitude_lower', 'reference')})"
    )
    start, end = _at(v, "time_start", "value"), _at(v, "time_end", "value")
    window = f"from {start} to {end}" if end is not None else f"from {start}, open-ended"
    return f"{outline}; {band}; {window}"


def _at(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _number(value: Any) -> str:
    """A coordinate or a length as written, 200 rather than 200.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, int | float) else "?"


def _text(value: Any) -> str:
    return one_line(value) if isinstance(value, str) else str(canonical(value), "utf-8")


def one_line(text: str) -> str:
    """Text a party wrote, as a verifier's output quotes it: on one line, its line breaks
    and tabs written `\\n` and `\\t` and its other control characters spelled out
    (`encoding.visible`), so that a message cannot print a line that passes for one of the
    story's own ("closed by officer1 …")."""
    return visible(text).replace("\n", "\\n").replace("\t", "\\t")
