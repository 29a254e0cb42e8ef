"""Deterministic station keys for tests that pin exact bytes (never for a real station)."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from openline.core.keys import StationKeys


def fixed_keys(n: int) -> StationKeys:
    """Key set number `n`: seeds are the byte runs 64n+1… (signing) and 64n+33… (sealing);
    the ledger and cosigning seeds are SHA-256 of "ledger n" and "cosign n"."""
    start = 64 * n + 1
    return StationKeys(
        Ed25519PrivateKey.from_private_bytes(bytes(range(start, start + 32))),
        X25519PrivateKey.from_private_bytes(bytes(range(start + 32, start + 64))),
        Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ledger %d" % n).digest()),
        Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"cosign %d" % n).digest()),
    )


ALICE, BOB, MALLORY = fixed_keys(0), fixed_keys(1), fixed_keys(2)
