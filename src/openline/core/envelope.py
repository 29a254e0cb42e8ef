"""Envelopes and receipts: the units on the wire.

An envelope is a signed header plus a sealed body:

    {"header": {...}, "body": "<base64url HPKE ciphertext>", "sig": "<base64url Ed25519>"}

* The body is sealed with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256),
  HKDF-SHA256, ChaCha20-Poly1305) to the receiver's X25519 key, with `info` binding the
  protocol version, line, sender, receiver and envelope id, so a body cannot be moved to
  another envelope.
* HPKE base mode does not authenticate the sender, so the header carries the SHA-256
  digest of the sealed body and the Ed25519 signature (RFC 8032) covers the RFC 8785
  canonical JSON of the header.

A receipt is the receiver's signed statement that it stored an envelope, and when; a
refusal, that it took the envelope's turn but will not apply its content, and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from openline import PROTOCOL
from openline.core.clock import parse_rfc3339
from openline.core.encoding import b64d, b64e, canonical, digest, parse_json
from openline.core.keys import StationKeys, verify
from openline.errors import Code, EnvelopeRefused

MAX_BODY_BYTES = 64 * 1024
"""Largest sealed body accepted (base64url-decoded)."""

KINDS = frozenset(
    {
        "call.place",
        "call.ringing",
        "call.pickup",
        "call.say",
        "call.close",
        "call.decline",
        "call.cancel",
        "call.missed",
        "notice.send",
        "notice.ack",
        "notice.reject",
        "notice.withdraw",
    }
)
HEADER_FIELDS = frozenset({"v", "id", "line", "from", "to", "seq", "time", "kind", "ref", "body"})
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LINE_RE = re.compile(r"^[0-9a-f]{32}$")
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
_SELF_LABEL = "self"


@dataclass(frozen=True)
class Envelope:
    header: dict[str, Any]
    body: str
    sig: str

    @property
    def id(self) -> str:
        return str(self.header["id"])

    @property
    def seq(self) -> int:
        return int(self.header["seq"])

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def sender(self) -> str:
        return str(self.header["from"])

    def to_json(self) -> dict[str, Any]:
        return {"header": self.header, "body": self.body, "sig": self.sig}

    @cached_property
    def signed_bytes(self) -> bytes:
        """The RFC 8785 canonical header: what the signature covers."""
        return canonical(self.header)

    def digest(self) -> str:
        """Digest of the whole signed envelope, as quoted in its receipt: the canonical
        header, the body text and the signature text, separated by NUL bytes. All three
        are ASCII (base64url is checked strictly), so the join is unambiguous."""
        return digest(b"\x00".join((self.signed_bytes, self.body.encode(), self.sig.encode())))


def _info(header: dict[str, Any], recipient: str) -> bytes:
    return canonical(
        {
            "v": PROTOCOL,
            "line": header["line"],
            "from": header["from"],
            "to": recipient,
            "id": header["id"],
        }
    )


def seal(
    body: dict[str, Any] | bytes,
    recipient: X25519PublicKey,
    header: dict[str, Any],
    *,
    to_self: bool = False,
) -> bytes:
    """Seal a body (a JSON object, or its canonical bytes when already made) to `recipient`."""
    recipient_name = _SELF_LABEL if to_self else header["to"]
    plain = body if isinstance(body, bytes) else canonical(body)
    return _SUITE.encrypt(plain, recipient, info=_info(header, recipient_name))


def open_sealed(
    sealed: bytes, key: X25519PrivateKey, header: dict[str, Any], *, to_self: bool = False
) -> dict[str, Any]:
    recipient_name = _SELF_LABEL if to_self else header["to"]
    try:
        plain = _SUITE.decrypt(sealed, key, info=_info(header, recipient_name))
    except Exception as exc:  # InvalidTag and friends: all mean "not for us or altered"
        raise EnvelopeRefused(Code.BAD_SIGNATURE, "envelope body does not open") from exc
    try:
        value = parse_json(plain)
    except ValueError as exc:
        raise EnvelopeRefused(Code.MALFORMED, "envelope body: not JSON") from exc
    if not isinstance(value, dict):
        raise EnvelopeRefused(Code.MALFORMED, "envelope body: expected a JSON object")
    return value


def make_envelope(
    keys: StationKeys,
    *,
    recipient: X25519PublicKey,
    envelope_id: str,
    line: str,
    sender: str,
    receiver: str,
    seq: int,
    time: str,
    kind: str,
    ref: str | None,
    body: dict[str, Any],
) -> tuple[Envelope, bytes]:
    """Seal and sign an envelope. Returns it and a copy of the body sealed to ourselves."""
    header: dict[str, Any] = {
        "v": PROTOCOL,
        "id": envelope_id,
        "line": line,
        "from": sender,
        "to": receiver,
        "seq": seq,
        "time": time,
        "kind": kind,
        "ref": ref,
    }
    plain = canonical(body)  # one canonical form for both copies
    sealed = seal(plain, recipient, header)
    self_copy = seal(plain, keys.encryption.public_key(), header, to_self=True)
    header["body"] = digest(sealed)
    signed = canonical(header)
    env = Envelope(header, b64e(sealed), keys.sign(signed))
    env.__dict__["signed_bytes"] = signed  # what `signed_bytes` would compute again
    return env, self_copy


def parse_envelope(data: Any) -> Envelope:
    """Check an envelope's shape. Signatures are checked by `verify_envelope`."""
    if not isinstance(data, dict) or set(data) != {"header", "body", "sig"}:
        raise EnvelopeRefused(Code.MALFORMED, "envelope: expected an object with header, body, sig")
    header, body, sig = data["header"], data["body"], data["sig"]
    if not isinstance(header, dict) or set(header) != HEADER_FIELDS:
        got = sorted(header) if isinstance(header, dict) else type(header).__name__
        raise EnvelopeRefused(
            Code.MALFORMED, f"envelope header: expected fields {sorted(HEADER_FIELDS)}, got {got}"
        )
    if not isinstance(body, str) or not isinstance(sig, str):
        raise EnvelopeRefused(Code.MALFORMED, "envelope: body and sig must be base64url strings")
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise EnvelopeRefused(
            Code.OVERSIZE, f"envelope body: at most {MAX_BODY_BYTES} bytes, got about {len(body) * 3 // 4}"
        )
    _check_header(header)
    return Envelope(header, body, sig)


def _check_header(h: dict[str, Any]) -> None:
    def bad(field: str, expected: str) -> EnvelopeRefused:
        return EnvelopeRefused(
            Code.MALFORMED, f"envelope header {field}: expected {expected}, got {h.get(field)!r:.80}"
        )

    if h["v"] != PROTOCOL:
        raise bad("v", repr(PROTOCOL))
    if not isinstance(h["id"], str) or not UUID_RE.fullmatch(h["id"]):
        raise bad("id", "a lowercase UUID")
    if not isinstance(h["line"], str) or not _LINE_RE.fullmatch(h["line"]):
        raise bad("line", "32 hex digits")
    for field in ("from", "to"):
        if not isinstance(h[field], str) or not 0 < len(h[field]) <= 63:
            raise bad(field, "a station name")
    if type(h["seq"]) is not int or not 1 <= h["seq"] < 2**53:  # RFC 8785: exact in IEEE 754
        raise bad("seq", "a positive integer")
    if not isinstance(h["kind"], str) or h["kind"] not in KINDS:
        raise bad("kind", f"one of {sorted(KINDS)}")
    if h["ref"] is not None and (not isinstance(h["ref"], str) or not UUID_RE.fullmatch(h["ref"])):
        raise bad("ref", "null or a lowercase UUID")
    if not isinstance(h["body"], str) or not h["body"].startswith("sha-256="):
        raise bad("body", "a sha-256= digest")
    try:
        parse_rfc3339(h["time"])
    except (ValueError, TypeError):
        raise bad("time", "an RFC 3339 time") from None


def verify_envelope(env: Envelope, sender_key: Ed25519PublicKey) -> bytes:
    """Check the header signature and the body digest. Returns the sealed body bytes."""
    verify(sender_key, env.sig, env.signed_bytes, what=f"envelope {env.id}")
    sealed = b64d(env.body, what="envelope body")
    if len(sealed) > MAX_BODY_BYTES:
        raise EnvelopeRefused(
            Code.OVERSIZE, f"envelope body: at most {MAX_BODY_BYTES} bytes, got {len(sealed)}"
        )
    if digest(sealed) != env.header["body"]:
        raise EnvelopeRefused(
            Code.BAD_SIGNATURE, f"envelope {env.id}: body digest does not match the signed header"
        )
    return sealed


# Receipts and refusals ------------------------------------------------------------------

RECEIPT_FIELDS = frozenset(
    {"v", "type", "envelope", "digest", "line", "from", "to", "seq", "stored_at", "sig"}
)
REFUSAL_FIELDS = RECEIPT_FIELDS | {"error"}
"""A refusal is a receipt with `"type": "refusal"` and the `error` that refused the
envelope's content: the receiver's signed word that it took the envelope's sequence number
and will never apply it."""
MAX_REFUSAL_DETAIL = 300


def _statement(env: Envelope, kind: str, stored_at: str) -> dict[str, Any]:
    return {
        "v": PROTOCOL,
        "type": kind,
        "envelope": env.id,
        "digest": env.digest(),
        "line": env.header["line"],
        "from": env.header["to"],
        "to": env.header["from"],
        "seq": env.seq,
        "stored_at": stored_at,
    }


def make_receipt(keys: StationKeys, env: Envelope, stored_at: str) -> dict[str, Any]:
    body = _statement(env, "receipt", stored_at)
    return {**body, "sig": keys.sign(canonical(body))}


def make_refusal(
    keys: StationKeys, env: Envelope, stored_at: str, refused: EnvelopeRefused
) -> dict[str, Any]:
    """The signed refusal of an envelope whose header verified and whose turn it was, but
    whose content this station will not apply (`refused`)."""
    error = {"code": refused.code.value, "detail": refused.detail[:MAX_REFUSAL_DETAIL]}
    body = {**_statement(env, "refusal", stored_at), "error": error}
    return {**body, "sig": keys.sign(canonical(body))}


def verify_receipt(receipt: Any, env: Envelope, receiver_key: Ed25519PublicKey) -> None:
    """Check that `receipt` is the receiver's signed receipt for exactly `env`."""
    _verify_statement(receipt, env, receiver_key, "receipt", RECEIPT_FIELDS)


def verify_refusal(refusal: Any, env: Envelope, receiver_key: Ed25519PublicKey) -> dict[str, str]:
    """Check that `refusal` is the receiver's signed refusal of exactly `env`; returns its
    error (`code`, `detail`)."""
    _verify_statement(refusal, env, receiver_key, "refusal", REFUSAL_FIELDS)
    return refusal_error(refusal, f"refusal of {env.id}")


def refusal_error(refusal: dict[str, Any], where: str) -> dict[str, str]:
    """A refusal's error, checked for shape: a known wire code and a detail of text."""
    error = refusal["error"]
    if (
        not isinstance(error, dict)
        or set(error) != {"code", "detail"}
        or error["code"] not in Code._value2member_map_
        or not isinstance(error["detail"], str)
        or len(error["detail"]) > MAX_REFUSAL_DETAIL
    ):
        raise EnvelopeRefused(Code.MALFORMED, f"{where}: error is not a known code and a short detail")
    return {"code": error["code"], "detail": error["detail"]}


def _verify_statement(
    statement: Any, env: Envelope, receiver_key: Ed25519PublicKey, kind: str, fields: frozenset[str]
) -> None:
    what = f"{kind} for {env.id}"
    if not isinstance(statement, dict) or set(statement) != fields:
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: unexpected shape")
    expected = _statement(env, kind, "")
    del expected["stored_at"]
    for field, want in expected.items():
        # The same type as well: 7.0 (or true for 1) equals the seq in Python and in its
        # canonical form, so the signature holds, but it is not what the receiver wrote.
        if type(statement[field]) is not type(want) or statement[field] != want:
            raise EnvelopeRefused(
                Code.BAD_SIGNATURE,
                f"{what}: {field} expected {want!r}, got {statement[field]!r:.80}",
            )
    try:
        parse_rfc3339(statement["stored_at"])
    except (ValueError, TypeError):
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: bad stored_at") from None
    verify(
        receiver_key,
        statement["sig"],
        canonical({k: v for k, v in statement.items() if k != "sig"}),
        what=what,
    )
