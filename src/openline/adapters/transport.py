"""The peer transport: signed HTTP requests to another station (httpx).

Station-to-station endpoints live under /_openline/v1/. Every request is signed
(`openline.core.requestsig`); every failure to get a well-formed answer becomes
`PeerUnreachable` (retry later) or `PeerRefused` (the peer answered with a problem).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from openline.core.keys import StationKeys
from openline.core.requestsig import sign_request
from openline.errors import Code, OpenLineError, PeerUnreachable

HANDSHAKE_PATH = "/_openline/v1/handshake"
SEND_PATH = "/_openline/v1/send/{batch_id}"
ADD_CHECKPOINT_PATH = "/_openline/v1/ledger/add-checkpoint"
MAX_TEXT_ANSWER = 64 * 1024


class PeerRefused(OpenLineError):
    status = 502
    title = "Peer station refused"

    def __init__(self, detail: str, *, peer_code: str, http_status: int) -> None:
        super().__init__(detail, code=Code.PEER_REFUSED)
        self.peer_code = peer_code
        self.http_status = http_status


@dataclass(frozen=True)
class TextAnswer:
    """A peer's answer to a plain-text request (the C2SP witness protocol speaks text)."""

    status: int
    content_type: str
    text: str


class Transport(Protocol):
    def post(self, peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any: ...
    def post_text(self, peer: str, base_url: str, path: str, body: str) -> TextAnswer: ...
    def close(self) -> None: ...


@dataclass
class HttpTransport:
    """Signed JSON POSTs over HTTP(S) with one pooled client per station."""

    keys: StationKeys
    origin: str
    timeout: float = 10.0

    client: httpx.Client | None = None

    def __post_init__(self) -> None:
        if self.client is not None:
            self._client = self.client
            return
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=3.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            headers={"User-Agent": "openline"},
            trust_env=False,
        )

    def post(self, peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload, separators=(",", ":")).encode()
        auth = sign_request(self.keys, "POST", path, self.origin, peer, body)
        try:
            resp = self._client.post(
                base_url + path,
                content=body,
                headers={"Authorization": auth, "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise PeerUnreachable(f"{peer} at {base_url}: {type(exc).__name__}: {exc}") from None
        try:
            data = resp.json()
        except ValueError:
            raise PeerUnreachable(f"{peer} answered HTTP {resp.status_code} without JSON") from None
        if resp.status_code >= 400:
            code = data.get("code", "unknown") if isinstance(data, dict) else "unknown"
            detail = data.get("detail", "") if isinstance(data, dict) else ""
            raise PeerRefused(
                f"{peer} refused ({resp.status_code} {code}): {detail}",
                peer_code=str(code),
                http_status=resp.status_code,
            )
        return data

    def post_text(self, peer: str, base_url: str, path: str, body: str) -> TextAnswer:
        """A signed text POST; every HTTP status is an answer, only no answer raises."""
        data = body.encode()
        auth = sign_request(self.keys, "POST", path, self.origin, peer, data)
        try:
            resp = self._client.post(
                base_url + path,
                content=data,
                headers={"Authorization": auth, "Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            raise PeerUnreachable(f"{peer} at {base_url}: {type(exc).__name__}: {exc}") from None
        return TextAnswer(resp.status_code, resp.headers.get("content-type", ""), resp.text[:MAX_TEXT_ANSWER])

    def close(self) -> None:
        self._client.close()
