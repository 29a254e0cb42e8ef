"""Station keys (openline.core.keys) and station cards (openline.core.card).

Ed25519 is pinned to RFC 8032 §7.1 and X25519 to RFC 7748 §6.1, loaded through
pyca/cryptography's raw-key constructors, so a change in how keys are encoded on cards
cannot slip by.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from openline.core import note
from openline.core.card import (
    CARD_VERSION,
    KEM_X25519,
    Card,
    fingerprint,
    make_card,
    parse_card,
    validate_name,
    validate_url,
)
from openline.core.encoding import b64e, canonical
from openline.core.keys import (
    StationKeys,
    encryption_public_key,
    load_encryption_pem,
    load_signing_pem,
    private_pem,
    signing_public_key,
    verify,
)
from openline.errors import Code, EnvelopeRefused

# RFC 8032 §7.1 TEST 1 and TEST 2.
_T1_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
_T1_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
_T1_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
_T2_SECRET = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
_T2_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
_T2_MESSAGE = bytes.fromhex("72")
_T2_SIG = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)
# RFC 7748 §6.1: Alice's X25519 key pair.
_X_SECRET = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
_X_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")

_RFC_KEYS = StationKeys(
    Ed25519PrivateKey.from_private_bytes(_T1_SECRET), X25519PrivateKey.from_private_bytes(_X_SECRET)
)
_OTHER_KEYS = StationKeys(
    Ed25519PrivateKey.from_private_bytes(_T2_SECRET), X25519PrivateKey.from_private_bytes(bytes(range(32)))
)
_FINGERPRINT_RE = re.compile(r"^[0-9A-F]{4}( [0-9A-F]{4}){7}$")


# Keys ---------------------------------------------------------------------------------


def test_keys_rfc8032_test1_public_key() -> None:
    assert _RFC_KEYS.signing_public == b64e(_T1_PUBLIC)
    assert _RFC_KEYS.signing_public == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"


def test_keys_rfc8032_test1_signature_of_empty_message() -> None:
    assert _RFC_KEYS.sign(b"") == b64e(_T1_SIG)
    verify(signing_public_key(b64e(_T1_PUBLIC)), b64e(_T1_SIG), b"", what="rfc 8032 test 1")


def test_keys_rfc8032_test2_one_byte_message() -> None:
    keys = StationKeys(Ed25519PrivateKey.from_private_bytes(_T2_SECRET), X25519PrivateKey.generate())
    assert keys.signing_public == b64e(_T2_PUBLIC)
    assert keys.sign(_T2_MESSAGE) == b64e(_T2_SIG)
    verify(signing_public_key(b64e(_T2_PUBLIC)), b64e(_T2_SIG), _T2_MESSAGE, what="rfc 8032 test 2")


def test_keys_rfc7748_x25519_public_key() -> None:
    assert _RFC_KEYS.encryption_public == b64e(_X_PUBLIC)
    assert encryption_public_key(b64e(_X_PUBLIC)).public_bytes_raw() == _X_PUBLIC


def test_verify_refuses_rfc8032_signature_on_another_message() -> None:
    with pytest.raises(EnvelopeRefused, match=r"^rfc 8032 test 1: signature does not verify$") as info:
        verify(signing_public_key(b64e(_T1_PUBLIC)), b64e(_T1_SIG), b"\x00", what="rfc 8032 test 1")
    assert info.value.code is Code.BAD_SIGNATURE


def test_verify_refuses_signature_under_another_key() -> None:
    with pytest.raises(EnvelopeRefused) as info:
        verify(signing_public_key(b64e(_T2_PUBLIC)), b64e(_T1_SIG), b"", what="x")
    assert info.value.code is Code.BAD_SIGNATURE


@given(st.binary(max_size=64), st.integers(0, 63), st.integers(1, 255))
def test_verify_detects_any_flipped_signature_byte(message: bytes, index: int, flip: int) -> None:
    sig = bytearray(_RFC_KEYS.signing.sign(message))
    sig[index] ^= flip
    with pytest.raises(EnvelopeRefused) as info:
        verify(_RFC_KEYS.signing.public_key(), b64e(bytes(sig)), message, what="m")
    assert info.value.code is Code.BAD_SIGNATURE


@pytest.mark.parametrize("sig", ["", "@@@@", b64e(_T1_SIG[:63])])
def test_verify_refuses_malformed_signature_text(sig: str) -> None:
    with pytest.raises(EnvelopeRefused) as info:
        verify(signing_public_key(b64e(_T1_PUBLIC)), sig, b"", what="card")
    assert info.value.code in (Code.MALFORMED, Code.BAD_SIGNATURE)
    assert info.value.detail.startswith("card")


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_signing_public_key_refuses_wrong_length(size: int) -> None:
    with pytest.raises(EnvelopeRefused, match=f"peer key: expected 32 bytes, got {size}") as info:
        signing_public_key(b64e(bytes(size)), what="peer key")
    assert info.value.code is Code.MALFORMED


@pytest.mark.parametrize("size", [0, 31, 33, 56])
def test_encryption_public_key_refuses_wrong_length(size: int) -> None:
    with pytest.raises(EnvelopeRefused, match=f"encryption key: expected 32 bytes, got {size}") as info:
        encryption_public_key(b64e(bytes(size)))
    assert info.value.code is Code.MALFORMED


def test_keys_pem_round_trip() -> None:
    signing = load_signing_pem(private_pem(_RFC_KEYS.signing))
    encryption = load_encryption_pem(private_pem(_RFC_KEYS.encryption))
    assert signing.private_bytes_raw() == _T1_SECRET
    assert encryption.private_bytes_raw() == _X_SECRET
    assert private_pem(_RFC_KEYS.signing).startswith(b"-----BEGIN PRIVATE KEY-----")


def test_keys_pem_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected an Ed25519 private key, got .*X25519"):
        load_signing_pem(private_pem(_RFC_KEYS.encryption))
    with pytest.raises(ValueError, match=r"expected an X25519 private key, got .*Ed25519"):
        load_encryption_pem(private_pem(_RFC_KEYS.signing))


def test_keys_generate_makes_fresh_keys() -> None:
    a, b = StationKeys.generate(), StationKeys.generate()
    assert a.signing_public != b.signing_public
    assert a.encryption_public != b.encryption_public
    verify(signing_public_key(a.signing_public), a.sign(b"x"), b"x", what="x")


# Fingerprints -------------------------------------------------------------------------


def test_fingerprint_pinned_value() -> None:
    """People read it aloud: it must never change for the same keys."""
    assert fingerprint(b64e(_T1_PUBLIC), b64e(_X_PUBLIC)) == "E4DD 2050 99C7 989F EE5D DE47 4CA4 8D5D"


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_fingerprint_format_and_binding(signing: bytes, encryption: bytes) -> None:
    s, e = b64e(signing), b64e(encryption)
    fp = fingerprint(s, e)
    assert _FINGERPRINT_RE.fullmatch(fp)
    assert fingerprint(s, e) == fp
    if signing != encryption:
        assert fingerprint(e, s) != fp


def test_fingerprint_commits_to_both_keys() -> None:
    base = fingerprint(_RFC_KEYS.signing_public, _RFC_KEYS.encryption_public)
    assert fingerprint(_OTHER_KEYS.signing_public, _RFC_KEYS.encryption_public) != base
    assert fingerprint(_RFC_KEYS.signing_public, _OTHER_KEYS.encryption_public) != base


# Cards --------------------------------------------------------------------------------


def _card(keys: StationKeys = _RFC_KEYS) -> Card:
    return make_card(keys, "stuttgart", ["https://stuttgart.example:8443", "http://10.0.0.1"], ["en", "de"])


def _resigned(data: dict[str, Any], keys: StationKeys = _RFC_KEYS) -> dict[str, Any]:
    """`data` with its fingerprint recomputed and re-signed by `keys`, as any station could make it."""
    unsigned = {k: v for k, v in data.items() if k != "signature"}
    unsigned["fingerprint"] = fingerprint(unsigned["signing_key"], unsigned["encryption_key"])
    return {**unsigned, "signature": keys.sign(canonical(unsigned))}


def test_card_make_fields() -> None:
    card = _card()
    assert card.name == "stuttgart"
    assert card.urls == ("https://stuttgart.example:8443", "http://10.0.0.1")
    assert card.url == "https://stuttgart.example:8443"
    assert card.signing_key == b64e(_T1_PUBLIC)
    assert card.encryption_key == b64e(_X_PUBLIC)
    assert card.kem == KEM_X25519
    assert card.fingerprint == "E4DD 2050 99C7 989F EE5D DE47 4CA4 8D5D"
    data = card.to_json()
    assert set(data) == {
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
    assert card.ledger_verifier().name == card.origin == "openline/ledger/stuttgart/e4dd205099c7989f"
    assert card.cosigner_verifier().name == "openline/witness/stuttgart/e4dd205099c7989f"
    assert data["v"] == CARD_VERSION
    verify(signing_public_key(card.signing_key), data["signature"], canonical(card.unsigned()), what="card")


def test_card_with_a_misnamed_ledger_key_is_refused() -> None:
    keys = _RFC_KEYS
    data = _card().to_json()
    # A valid verifier key, validly signed into the card, but named for another origin.
    data["ledger_key"] = note.verifier("someone/else", keys.ledger.public_key()).text()
    with pytest.raises(EnvelopeRefused, match="ledger_key must be named"):
        parse_card(_resigned(data, keys))
    data = _card().to_json()
    data["cosigner_key"] = "not a key"
    with pytest.raises(EnvelopeRefused, match="cosigner_key"):
        parse_card(_resigned(data, keys))


def test_card_round_trip_through_json_text() -> None:
    card = _card()
    assert parse_card(json.loads(json.dumps(card.to_json()))) == card


def test_card_make_strips_trailing_slash_before_signing() -> None:
    card = make_card(_RFC_KEYS, "moscow", ["https://moscow.example/"], [])
    assert card.urls == ("https://moscow.example",)
    assert parse_card(card.to_json()) == card


@given(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True),
    st.lists(st.sampled_from(["en", "ru", "de", "uk", "ar", "zh-Hant"]), max_size=4),
)
def test_card_round_trip_any_valid_name(name: str, languages: list[str]) -> None:
    card = make_card(_OTHER_KEYS, name, ["https://a.example"], languages)
    assert parse_card(card.to_json()) == card


@pytest.mark.parametrize(
    "name", ["", "Stuttgart", "-lead", "a" * 64, "with space", "ümlaut", "a_b", "a.b", None, 7]
)
def test_validate_name_refuses(name: Any) -> None:
    with pytest.raises(
        EnvelopeRefused, match="station name must be 1-63 lowercase ASCII letters a-z"
    ) as info:
        validate_name(name)
    assert info.value.code is Code.BAD_CARD


@pytest.mark.parametrize("name", ["a", "0", "a" * 63, "eucom-hq-2"])
def test_validate_name_accepts(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "url", ["ftp://host", "https://", "host:8080", "/relative", "", "https:///path", None, 42]
)
def test_validate_url_refuses(url: Any) -> None:
    with pytest.raises(EnvelopeRefused, match=r"station URL must be http\(s\)://host\[:port\]") as info:
        validate_url(url)
    assert info.value.code is Code.BAD_CARD


@pytest.mark.parametrize("url", ["http://host:99999", "http://host:port", "https://host:-1"])
def test_validate_url_refuses_bad_port(url: str) -> None:
    with pytest.raises(EnvelopeRefused, match="bad port") as info:
        validate_url(url)
    assert info.value.code is Code.BAD_CARD


@pytest.mark.parametrize(
    ("url", "clean"),
    [("https://a.example/", "https://a.example"), ("http://[::1]:8080", "http://[::1]:8080")],
)
def test_validate_url_accepts(url: str, clean: str) -> None:
    assert validate_url(url) == clean


def test_make_card_refuses_bad_name_and_url() -> None:
    with pytest.raises(EnvelopeRefused, match="station name"):
        make_card(_RFC_KEYS, "Bad Name", ["https://a.example"], [])
    with pytest.raises(EnvelopeRefused, match="station URL"):
        make_card(_RFC_KEYS, "good", ["gopher://a.example"], [])


@pytest.mark.parametrize("value", [[], "card", None, 1, ["v", "name"]], ids=repr)
def test_parse_card_refuses_non_object(value: Any) -> None:
    with pytest.raises(
        EnvelopeRefused, match=f"card: expected a JSON object, got {type(value).__name__}"
    ) as info:
        parse_card(value)
    assert info.value.code is Code.BAD_CARD


@pytest.mark.parametrize(
    "field",
    ["v", "name", "urls", "signing_key", "encryption_key", "kem", "languages", "fingerprint", "signature"],
)
def test_parse_card_refuses_missing_field(field: str) -> None:
    data = _card().to_json()
    del data[field]
    with pytest.raises(
        EnvelopeRefused, match=re.escape(f"missing fields ['{field}'], unknown fields []")
    ) as info:
        parse_card(data)
    assert info.value.code is Code.BAD_CARD


def test_parse_card_refuses_extra_field_even_when_signed() -> None:
    data = _resigned({**_card().to_json(), "relay": "https://evil.example"})
    with pytest.raises(
        EnvelopeRefused, match=re.escape("missing fields [], unknown fields ['relay']")
    ) as info:
        parse_card(data)
    assert info.value.code is Code.BAD_CARD


def _refused(data: Any, pattern: str) -> EnvelopeRefused:
    with pytest.raises(EnvelopeRefused, match=pattern) as info:
        parse_card(data)
    assert info.value.code is Code.BAD_CARD
    return info.value


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("name", "moscow", "signature does not verify"),
        ("urls", ["https://evil.example"], "signature does not verify"),
        ("urls", ["https://stuttgart.example:8443"], "signature does not verify"),
        ("languages", ["en"], "signature does not verify"),
        ("signature", b64e(bytes(64)), "signature does not verify"),
        ("signature", 42, "signature does not verify"),
        ("signature", "AAAAA", "not base64url"),
        ("fingerprint", "0000 0000 0000 0000 0000 0000 0000 0000", "fingerprint does not match its keys"),
        ("fingerprint", None, "fingerprint does not match its keys"),
        ("v", 2, "expected version 1, got 2"),
        ("v", "1", "expected version 1, got '1'"),
        ("kem", "ML-KEM-768+X25519", "unsupported KEM 'ML-KEM-768\\+X25519'"),
        ("urls", [], "urls must be a list of 1 to 8 URLs"),
        ("urls", "https://a.example", "urls must be a list of 1 to 8 URLs"),
        ("urls", ["https://a.example"] * 9, "urls must be a list of 1 to 8 URLs"),
        ("urls", ["ftp://a.example"], "station URL must be"),
        ("urls", [7], "station URL must be"),
        ("urls", ["https://a.example:70000"], "bad port"),
        ("languages", "en", "languages must be a list of language tags"),
        ("languages", [""], "languages must be a list of language tags"),
        ("languages", ["x" * 36], "languages must be a list of language tags"),
        ("languages", [1], "languages must be a list of language tags"),
        ("name", "Moscow", "station name must be"),
        ("name", None, "station name must be"),
        ("signing_key", b64e(bytes(31)), "card signing key: expected 32 bytes, got 31"),
        ("signing_key", b64e(bytes(33)), "card signing key: expected 32 bytes, got 33"),
        ("signing_key", 12, "card signing key: expected base64url text, got int"),
        ("encryption_key", b64e(bytes(16)), "card encryption key: expected 32 bytes, got 16"),
        ("encryption_key", "AAAAA", "card encryption key: not base64url"),
    ],
)
def test_parse_card_refuses_tampered_field(field: str, value: Any, pattern: str) -> None:
    data = {**_card().to_json(), field: value}
    _refused(data, pattern)


def test_parse_card_tampered_signature_names_the_station() -> None:
    data = {**_card().to_json(), "name": "moscow"}
    err = _refused(data, "signature does not verify")
    assert "'moscow'" in err.detail


def test_parse_card_refuses_swapped_signing_key_with_matching_fingerprint() -> None:
    """An attacker's key under a victim's card, fingerprint recomputed: the signature fails."""
    data = _card().to_json()
    data["signing_key"] = _OTHER_KEYS.signing_public
    data["fingerprint"] = fingerprint(data["signing_key"], data["encryption_key"])
    _refused(data, "signature does not verify")


def test_parse_card_refuses_swapped_encryption_key() -> None:
    data = {**_card().to_json(), "encryption_key": _OTHER_KEYS.encryption_public}
    _refused(data, "fingerprint does not match its keys")
    data["fingerprint"] = fingerprint(data["signing_key"], data["encryption_key"])
    _refused(data, "signature does not verify")


def test_parse_card_refuses_card_signed_by_another_key() -> None:
    data = _resigned(_card().to_json(), _OTHER_KEYS)
    _refused(data, "signature does not verify")


def test_parse_card_fingerprint_error_says_expected_and_got() -> None:
    card = _card()
    err = _refused({**card.to_json(), "fingerprint": "WRONG"}, "fingerprint")
    assert repr(card.fingerprint) in err.detail
    assert "'WRONG'" in err.detail


@given(
    st.sampled_from(["name", "urls", "languages", "signing_key", "encryption_key", "fingerprint"]), st.data()
)
def test_parse_card_any_changed_character_is_refused(field: str, data: st.DataObject) -> None:
    card = _card().to_json()
    value = card[field]
    if isinstance(value, list):
        i = data.draw(st.integers(0, len(value) - 1))
        text = value[i]
    else:
        text = value
    j = data.draw(st.integers(0, len(text) - 1))
    # '[' and ']' can make urlsplit raise: that is test_parse_card_refuses_unparseable_url.
    c = data.draw(st.characters(codec="ascii", exclude_characters="[]").filter(lambda ch: ch != text[j]))
    changed = text[:j] + c + text[j + 1 :]
    if isinstance(value, list):
        card[field] = [*value[:i], changed, *value[i + 1 :]]
    else:
        card[field] = changed
    with pytest.raises(EnvelopeRefused) as info:
        parse_card(card)
    assert info.value.code is Code.BAD_CARD


# Regression (fixed; src/openline/core/card.py, validate_url): `urlsplit` raises ValueError for some
# strings (an unclosed IPv6 bracket, a netloc that changes under NFKC), and it is called
# outside the try, so parse_card raises a bare ValueError instead of bad_card. Fix: wrap
# `urlsplit(url)` in the same try/except ValueError as `parts.port`.
@pytest.mark.parametrize("url", ["http://[::1", "http://ex\uff03ample.com"])
def test_parse_card_refuses_unparseable_url(url: str) -> None:
    with pytest.raises(EnvelopeRefused) as info:
        parse_card({**_card().to_json(), "urls": [url]})
    assert info.value.code is Code.BAD_CARD


# Regression (fixed; src/openline/core/card.py, parse_card): the signature is checked over the URLs
# as received, but the returned Card holds them after `validate_url` strips a trailing '/'.
# A peer card signed over "https://moscow.example/" is accepted and pinned, but
# `card.to_json()` (what services/lines.py stores in peers.card) no longer matches its
# signature, so `peer_card()` re-parsing it fails with bad_card for ever after. Fix: refuse
# a URL that `validate_url` would change, or keep the URLs exactly as signed.
def test_parse_card_accepted_card_survives_to_json() -> None:
    data = _resigned({**_card().to_json(), "urls": ["https://moscow.example/"], "name": "moscow"})
    try:
        card: Card | EnvelopeRefused = parse_card(data)
    except EnvelopeRefused as exc:
        card = exc
    if isinstance(card, EnvelopeRefused):
        assert card.code is Code.BAD_CARD  # refusing it outright is a fix too
    else:
        assert parse_card(json.loads(json.dumps(card.to_json()))) == card


# Regression (fixed; src/openline/core/card.py, parse_card / core/keys.py): small-order public keys
# are accepted. With the Ed25519 identity point (01 00..00) as signing key, the "signature"
# R=identity, S=0 verifies for *every* message (OpenSSL's Ed25519 verify has no small-order
# check), so anybody can forge that station's envelopes and receipts and the station can
# deny its own. An all-zero X25519 key is accepted too, and sealing to it
# later fails inside make_envelope with a bare ValueError ("Error computing shared key").
# Fix: refuse the eight small-order Ed25519 encodings (libsodium's blocklist) and X25519
# keys for which a key exchange fails, with bad_card.
_ED25519_IDENTITY = bytes([1]) + bytes(31)


def test_parse_card_refuses_small_order_signing_key() -> None:
    unsigned = {k: v for k, v in _card().to_json().items() if k != "signature"}
    unsigned["signing_key"] = b64e(_ED25519_IDENTITY)
    unsigned["fingerprint"] = fingerprint(unsigned["signing_key"], unsigned["encryption_key"])
    forged = {**unsigned, "signature": b64e(_ED25519_IDENTITY + bytes(32))}
    # The universal signature verifies whatever the message is:
    Ed25519PublicKey.from_public_bytes(_ED25519_IDENTITY).verify(_ED25519_IDENTITY + bytes(32), b"any")
    with pytest.raises(EnvelopeRefused) as info:
        parse_card(forged)
    assert info.value.code is Code.BAD_CARD


def test_parse_card_refuses_low_order_encryption_key() -> None:
    data = _resigned({**_card().to_json(), "encryption_key": b64e(bytes(32))})
    with pytest.raises(EnvelopeRefused) as info:
        parse_card(data)
    assert info.value.code is Code.BAD_CARD
