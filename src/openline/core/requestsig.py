"""Signed requests between stations, after Matrix's X-Matrix authorization header.

The sender signs the RFC 8785 canonical JSON of {method, uri, origin, destination,
content digest} with its station key and sends

    Authorization: OpenLine origin="stuttgart",destination="moscow",sig="<base64url>"

The receiver looks up the origin's pinned key, rebuilds the same object from the request
it actually received, and refuses the request (401) if anything differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from openline.core.encoding import canonical, digest
from openline.core.keys import StationKeys, verify
from openline.errors import Code, EnvelopeRefused, Unauthorized

SCHEME = "OpenLine"
_PARAM_RE = re.compile(r'([a-z]+)="([^"]*)"')


@dataclass(frozen=True)
class RequestAuth:
    origin: str
    destination: str
    sig: str


def _signed(method: str, uri: str, origin: str, destination: str, body: bytes) -> bytes:
    return canonical(
        {
            "method": method.upper(),
            "uri": uri,
            "origin": origin,
            "destination": destination,
            "content": digest(body),
        }
    )


def sign_request(keys: StationKeys, method: str, uri: str, origin: str, destination: str, body: bytes) -> str:
    sig = keys.sign(_signed(method, uri, origin, destination, body))
    return f'{SCHEME} origin="{origin}",destination="{destination}",sig="{sig}"'


def parse_authorization(header: str | None) -> RequestAuth:
    if not header or not header.startswith(SCHEME + " "):
        raise Unauthorized(f"station request: expected an '{SCHEME}' Authorization header")
    params = dict(_PARAM_RE.findall(header[len(SCHEME) + 1 :]))
    try:
        return RequestAuth(params["origin"], params["destination"], params["sig"])
    except KeyError as exc:
        raise Unauthorized(f"station request: Authorization lacks {exc.args[0]}") from None


def verify_request(auth: RequestAuth, key: Ed25519PublicKey, method: str, uri: str, body: bytes) -> None:
    try:
        verify(
            key,
            auth.sig,
            _signed(method, uri, auth.origin, auth.destination, body),
            what=f"request from {auth.origin!r}",
        )
    except EnvelopeRefused as exc:
        raise Unauthorized(exc.detail, code=Code.BAD_SIGNATURE) from None
