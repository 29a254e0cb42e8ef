"""Station cards: the self-signed public description of a station.

A card is exchanged out of band, like a phone number with a safety number. Its
signature is Ed25519 over the RFC 8785 canonical JSON of every field but `signature`.
The fingerprint commits to both public keys; people compare it by voice or on paper.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from openline.core import note
from openline.core.encoding import canonical, sha256
from openline.core.keys import StationKeys, encryption_public_key, signing_public_key, verify
from openline.errors import Code, EnvelopeRefused

CARD_VERSION = 1
KEM_X25519 = "X25519"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_FIELDS = {
    "v",
    "name",
    "urls",
    "signing_key",
    "encryption_key",
    "kem",
    "languages",
    "ledger_key",
    "cosigner_key",
    "fingerprint",
    "signature",
}


def fingerprint(signing_key: str, encryption_key: str) -> str:
    """32 hex digits in groups of four: SHA-256 over both public keys, truncated."""
    h = (
        sha256(b"openline card fingerprint v1\x00" + signing_key.encode() + b"\x00" + encryption_key.encode())
        .hex()[:32]
        .upper()
    )
    return " ".join(h[i : i + 4] for i in range(0, 32, 4))


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise EnvelopeRefused(
            Code.BAD_CARD,
            "station name must be 1-63 lowercase ASCII letters a-z, digits 0-9 or '-', starting with a "
            f"letter or digit, got {name!r}",
        )
    return name


def validate_url(url: str) -> str:
    """A station URL, without a trailing '/'."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError as exc:
        raise EnvelopeRefused(Code.BAD_CARD, f"station URL cannot be parsed: {url!r:.200} ({exc})") from None
    try:
        if parts is not None:
            parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise EnvelopeRefused(Code.BAD_CARD, f"station URL has a bad port: {url!r:.200} ({exc})") from None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        # The station's endpoints are at the root of its address: a path would send every
        # request to the wrong place, and a user:password would be shown to every peer.
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise EnvelopeRefused(Code.BAD_CARD, f"station URL must be http(s)://host[:port], got {url!r:.200}")
    return url.rstrip("/")


def validate_languages(langs: Any) -> list[str]:
    """The languages a card names: a list of language tags (1 to 35 characters each)."""
    if not isinstance(langs, list) or not all(isinstance(x, str) and 0 < len(x) <= 35 for x in langs):
        raise EnvelopeRefused(Code.BAD_CARD, "card: languages must be a list of language tags")
    return langs


def ledger_origin(name: str, fingerprint_text: str) -> str:
    """The origin line of a station's ledger checkpoints (and the name of its checkpoint
    key): unique per station, since it carries the key fingerprint."""
    return f"openline/ledger/{name}/{fingerprint_text.replace(' ', '').lower()[:16]}"


def cosigner_name(name: str, fingerprint_text: str) -> str:
    """The name on a station's cosignatures of its peers' checkpoints."""
    return f"openline/witness/{name}/{fingerprint_text.replace(' ', '').lower()[:16]}"


@dataclass(frozen=True)
class Card:
    name: str
    urls: tuple[str, ...]
    signing_key: str
    encryption_key: str
    languages: tuple[str, ...]
    signature: str
    kem: str = KEM_X25519
    # Verifier keys in the `<name>+<hex key ID>+<base64>` form (C2SP signed-note): the one
    # that signs this station's checkpoints, and the one that cosigns its peers'.
    ledger_key: str = ""
    cosigner_key: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.signing_key, self.encryption_key)

    @property
    def url(self) -> str:
        return self.urls[0]

    def unsigned(self) -> dict[str, Any]:
        return {
            "v": CARD_VERSION,
            "name": self.name,
            "urls": list(self.urls),
            "signing_key": self.signing_key,
            "encryption_key": self.encryption_key,
            "kem": self.kem,
            "languages": list(self.languages),
            "ledger_key": self.ledger_key,
            "cosigner_key": self.cosigner_key,
            "fingerprint": self.fingerprint,
        }

    @property
    def origin(self) -> str:
        return ledger_origin(self.name, self.fingerprint)

    def ledger_verifier(self) -> note.Verifier:
        return note.parse_verifier_key(self.ledger_key)

    def cosigner_verifier(self) -> note.Verifier:
        return note.parse_verifier_key(self.cosigner_key)

    def to_json(self) -> dict[str, Any]:
        return {**self.unsigned(), "signature": self.signature}


def make_card(keys: StationKeys, name: str, urls: list[str], languages: list[str]) -> Card:
    validate_name(name)
    clean_urls = tuple(validate_url(u) for u in urls)
    fp = fingerprint(keys.signing_public, keys.encryption_public)
    draft = Card(
        name,
        clean_urls,
        keys.signing_public,
        keys.encryption_public,
        tuple(languages),
        signature="",
        ledger_key=note.verifier(ledger_origin(name, fp), keys.ledger.public_key()).text(),
        cosigner_key=note.verifier(
            cosigner_name(name, fp), keys.cosign.public_key(), note.COSIGNATURE_V1
        ).text(),
    )
    return dataclasses.replace(draft, signature=keys.sign(canonical(draft.unsigned())))


def _exact_url(url: Any) -> str:
    """A card's URL must already be in the form we keep, or the signature would not
    survive storing the card and reading it back."""
    clean = validate_url(url)
    if clean != url:
        raise EnvelopeRefused(Code.BAD_CARD, f"card: URL {url!r:.200} must not end with '/'")
    return clean


def parse_card(data: Any) -> Card:
    """Check a card's shape and self-signature; return it or raise `bad_card`."""
    if not isinstance(data, dict):
        raise EnvelopeRefused(Code.BAD_CARD, f"card: expected a JSON object, got {type(data).__name__}")
    missing = sorted(_FIELDS - data.keys())
    extra = sorted(data.keys() - _FIELDS)
    if missing or extra:
        raise EnvelopeRefused(Code.BAD_CARD, f"card: missing fields {missing}, unknown fields {extra}")
    if type(data["v"]) is not int or data["v"] != CARD_VERSION:
        raise EnvelopeRefused(Code.BAD_CARD, f"card: expected version {CARD_VERSION}, got {data['v']!r}")
    if data["kem"] != KEM_X25519:
        raise EnvelopeRefused(Code.BAD_CARD, f"card: unsupported KEM {data['kem']!r}")
    urls, langs = data["urls"], data["languages"]
    if not isinstance(urls, list) or not urls or len(urls) > 8:
        raise EnvelopeRefused(Code.BAD_CARD, "card: urls must be a list of 1 to 8 URLs")
    validate_languages(langs)
    try:
        signing = signing_public_key(data["signing_key"], what="card signing key")
        encryption_public_key(data["encryption_key"], what="card encryption key")
    except EnvelopeRefused as exc:
        raise EnvelopeRefused(Code.BAD_CARD, f"card: {exc.detail}") from exc
    card = Card(
        validate_name(data["name"]),
        tuple(_exact_url(u) for u in urls),
        data["signing_key"],
        data["encryption_key"],
        tuple(langs),
        signature=data["signature"] if isinstance(data["signature"], str) else "",
        ledger_key=data["ledger_key"] if isinstance(data["ledger_key"], str) else "",
        cosigner_key=data["cosigner_key"] if isinstance(data["cosigner_key"], str) else "",
    )
    if data["fingerprint"] != card.fingerprint:
        raise EnvelopeRefused(
            Code.BAD_CARD,
            f"card: fingerprint does not match its keys: expected {card.fingerprint!r}, "
            f"got {data['fingerprint']!r}",
        )
    try:
        verify(
            signing,
            card.signature,
            canonical({k: v for k, v in data.items() if k != "signature"}),
            what="card",
        )
    except EnvelopeRefused as exc:
        raise EnvelopeRefused(Code.BAD_CARD, f"card for {card.name!r}: {exc.detail}") from exc
    _check_ledger_keys(card)
    return card


def _check_ledger_keys(card: Card) -> None:
    """The card's checkpoint key must be named for its origin and its cosigning key for
    its witness name, with the right algorithms, or its evidence could not be checked."""
    want = (
        ("ledger_key", card.ledger_key, card.origin, note.ED25519),
        ("cosigner_key", card.cosigner_key, cosigner_name(card.name, card.fingerprint), note.COSIGNATURE_V1),
    )
    for field, text, name, algorithm in want:
        try:
            v = note.parse_verifier_key(text)
        except note.NoteError as exc:
            raise EnvelopeRefused(Code.BAD_CARD, f"card: {field}: {exc}") from None
        if v.name != name or v.algorithm != algorithm:
            raise EnvelopeRefused(
                Code.BAD_CARD, f"card: {field} must be named {name!r} with algorithm {algorithm}"
            )
