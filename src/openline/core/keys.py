"""A station's key pair set: Ed25519 for signatures (RFC 8032), X25519 for sealing.

Keys are generated and used through pyca/cryptography only. Private keys are stored as
unencrypted PKCS#8 PEM in files of mode 0600 in the station home.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from openline.core.encoding import b64d, b64e
from openline.errors import Code, EnvelopeRefused

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


@dataclass(frozen=True)
class StationKeys:
    """Each key has one use: `signing` signs envelopes, receipts, requests and the card;
    `encryption` opens sealed bodies; `ledger` signs the ledger's checkpoints; `cosign`
    only cosigns the peer's checkpoints (C2SP tlog-cosignature asks for a key of its own)."""

    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey
    ledger: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    cosign: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @classmethod
    def generate(cls) -> StationKeys:
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @property
    def signing_public(self) -> str:
        return b64e(self.signing.public_key().public_bytes(*_RAW))

    @property
    def encryption_public(self) -> str:
        return b64e(self.encryption.public_key().public_bytes(*_RAW))

    def sign(self, data: bytes) -> str:
        return b64e(self.signing.sign(data))


def private_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_signing_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"expected an Ed25519 private key, got {type(key).__name__}")
    return key


def load_encryption_pem(data: bytes) -> X25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"expected an X25519 private key, got {type(key).__name__}")
    return key


# The y-coordinates of the Ed25519 points of small order (and their non-canonical
# spellings), as in libsodium's ge25519_has_small_order. With such a public key one
# signature verifies for every message, so a station could disown its own envelopes.
_SMALL_ORDER_Y = frozenset(
    bytes.fromhex(h)
    for h in (
        "00" * 32,
        "01" + "00" * 31,
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ec" + "ff" * 30 + "7f",
        "ed" + "ff" * 30 + "7f",
        "ee" + "ff" * 30 + "7f",
    )
)


def signing_public_key(text: str, *, what: str = "signing key") -> Ed25519PublicKey:
    raw = b64d(text, what=what)
    if len(raw) != 32:
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: expected 32 bytes, got {len(raw)}")
    if raw[:31] + bytes([raw[31] & 0x7F]) in _SMALL_ORDER_Y:
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: a point of small order is not a usable key")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: not a valid Ed25519 key ({exc})") from None


def encryption_public_key(text: str, *, what: str = "encryption key") -> X25519PublicKey:
    raw = b64d(text, what=what)
    if len(raw) != 32:
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: expected 32 bytes, got {len(raw)}")
    key = X25519PublicKey.from_public_bytes(raw)
    try:
        # A low-order point yields an all-zero shared secret, which the library refuses.
        X25519PrivateKey.generate().exchange(key)
    except ValueError:
        raise EnvelopeRefused(Code.MALFORMED, f"{what}: a point of small order is not a usable key") from None
    return key


def verify(public: Ed25519PublicKey, signature: str, data: bytes, *, what: str) -> None:
    """Verify an Ed25519 signature or raise `bad_signature` naming what failed."""
    sig = b64d(signature, what=f"{what} signature")
    try:
        public.verify(sig, data)
    except InvalidSignature:
        raise EnvelopeRefused(Code.BAD_SIGNATURE, f"{what}: signature does not verify") from None
