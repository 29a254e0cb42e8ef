"""Signed station-to-station requests (openline.core.requestsig), after Matrix's X-Matrix.

A signature must verify for exactly the method, URI, origin, destination and body it was
made for, and every malformed Authorization header is a 401.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openline.core.encoding import b64d, canonical, digest
from openline.core.requestsig import SCHEME, RequestAuth, parse_authorization, sign_request, verify_request
from openline.errors import Code, Unauthorized
from tests.fixed_keys import ALICE, MALLORY

METHOD, URI, ORIGIN, DEST = "POST", "/openline/v1/inbox/0190f1e2", "stuttgart", "moscow"
BODY = b'{"envelopes":[]}'
HEADER = sign_request(ALICE, METHOD, URI, ORIGIN, DEST, BODY)
ALICE_PUB = ALICE.signing.public_key()


def _unauthorized(fn: Any, *args: Any) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        fn(*args)
    assert info.value.status == 401
    return info.value


def test_sign_request_header_format() -> None:
    assert re.fullmatch(r'OpenLine origin="stuttgart",destination="moscow",sig="[A-Za-z0-9_-]{86}"', HEADER)


def test_sign_request_signs_the_canonical_request_object() -> None:
    sig = parse_authorization(HEADER).sig
    signed = canonical(
        {"method": "POST", "uri": URI, "origin": ORIGIN, "destination": DEST, "content": digest(BODY)}
    )
    ALICE_PUB.verify(b64d(sig), signed)


def test_verify_request_round_trip() -> None:
    auth = parse_authorization(HEADER)
    assert auth == RequestAuth(ORIGIN, DEST, auth.sig)
    verify_request(auth, ALICE_PUB, METHOD, URI, BODY)


@given(st.sampled_from(["GET", "POST", "PUT"]), st.text(min_size=1, max_size=40), st.binary(max_size=200))
def test_verify_request_round_trip_any_request(method: str, uri: str, body: bytes) -> None:
    header = sign_request(ALICE, method, uri, ORIGIN, DEST, body)
    verify_request(parse_authorization(header), ALICE_PUB, method, uri, body)


def test_verify_request_method_case_does_not_matter() -> None:
    """HTTP methods are case-sensitive tokens, but both sides upper-case before signing."""
    verify_request(
        parse_authorization(sign_request(ALICE, "post", URI, ORIGIN, DEST, BODY)),
        ALICE_PUB,
        "POST",
        URI,
        BODY,
    )
    verify_request(parse_authorization(HEADER), ALICE_PUB, "post", URI, BODY)


@pytest.mark.parametrize(
    ("method", "uri", "body"),
    [
        ("PUT", URI, BODY),
        ("GET", URI, BODY),
        (METHOD, URI + "/", BODY),
        (METHOD, URI + "?x=1", BODY),
        (METHOD, "/openline/v1/inbox/0190f1e3", BODY),
        (METHOD, URI.upper(), BODY),
        (METHOD, URI, BODY + b" "),
        (METHOD, URI, b""),
        (METHOD, URI, b'{"envelopes":[{}]}'),
    ],
)
def test_verify_request_refuses_any_other_request(method: str, uri: str, body: bytes) -> None:
    err = _unauthorized(verify_request, parse_authorization(HEADER), ALICE_PUB, method, uri, body)
    assert err.code is Code.BAD_SIGNATURE
    assert err.detail == "request from 'stuttgart': signature does not verify"


@pytest.mark.parametrize(
    ("origin", "destination"), [("kyiv", DEST), (ORIGIN, "kyiv"), (DEST, ORIGIN), ("", DEST), (ORIGIN, "")]
)
def test_verify_request_refuses_other_origin_or_destination(origin: str, destination: str) -> None:
    sig = parse_authorization(HEADER).sig
    err = _unauthorized(verify_request, RequestAuth(origin, destination, sig), ALICE_PUB, METHOD, URI, BODY)
    assert err.code is Code.BAD_SIGNATURE


@given(st.binary(max_size=100).filter(lambda b: b != BODY))
def test_verify_request_refuses_any_other_body(body: bytes) -> None:
    _unauthorized(verify_request, parse_authorization(HEADER), ALICE_PUB, METHOD, URI, body)


def test_verify_request_refuses_another_stations_key() -> None:
    forged = sign_request(MALLORY, METHOD, URI, ORIGIN, DEST, BODY)
    err = _unauthorized(verify_request, parse_authorization(forged), ALICE_PUB, METHOD, URI, BODY)
    assert err.code is Code.BAD_SIGNATURE


@pytest.mark.parametrize("sig", ["", "AAAAA", "A" * 86])
def test_verify_request_refuses_malformed_sig(sig: str) -> None:
    err = _unauthorized(verify_request, RequestAuth(ORIGIN, DEST, sig), ALICE_PUB, METHOD, URI, BODY)
    assert err.code is Code.BAD_SIGNATURE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "OpenLine",
        "Bearer abc",
        "Basic dXNlcjpwYXNz",
        "openline " + HEADER[len(SCHEME) + 1 :],
        "OPENLINE " + HEADER[len(SCHEME) + 1 :],
        "X-Matrix " + HEADER[len(SCHEME) + 1 :],
        " " + HEADER,
    ],
    ids=[
        "none",
        "empty",
        "bare-scheme",
        "bearer",
        "basic",
        "lowercase",
        "uppercase",
        "x-matrix",
        "leading-space",
    ],
)
def test_parse_authorization_refuses_other_schemes(header: str | None) -> None:
    err = _unauthorized(parse_authorization, header)
    assert err.code is Code.UNAUTHORIZED
    assert "expected an 'OpenLine' Authorization header" in err.detail


@pytest.mark.parametrize("missing", ["origin", "destination", "sig"])
def test_parse_authorization_names_the_missing_parameter(missing: str) -> None:
    params = {"origin": ORIGIN, "destination": DEST, "sig": parse_authorization(HEADER).sig}
    del params[missing]
    header = SCHEME + " " + ",".join(f'{k}="{v}"' for k, v in params.items())
    err = _unauthorized(parse_authorization, header)
    assert err.code is Code.UNAUTHORIZED
    assert err.detail == f"station request: Authorization lacks {missing}"


@pytest.mark.parametrize(
    "header",
    [
        "OpenLine origin=stuttgart,destination=moscow,sig=abc",  # unquoted
        'OpenLine Origin="stuttgart",Destination="moscow",Sig="abc"',  # parameter names are lowercase
        "OpenLine ",
        "OpenLine garbage",
    ],
)
def test_parse_authorization_refuses_malformed_parameters(header: str) -> None:
    err = _unauthorized(parse_authorization, header)
    assert err.code is Code.UNAUTHORIZED
    assert "Authorization lacks" in err.detail


def test_parse_authorization_ignores_unknown_parameters_and_order() -> None:
    sig = parse_authorization(HEADER).sig
    header = f'OpenLine sig="{sig}",key="ed25519:1",destination="moscow",origin="stuttgart"'
    auth = parse_authorization(header)
    assert auth == RequestAuth(ORIGIN, DEST, sig)
    verify_request(auth, ALICE_PUB, METHOD, URI, BODY)
