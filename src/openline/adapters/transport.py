"""The peer transport: signed HTTP requests to another station (httpx).

Station-to-station endpoints live under /_openline/v1/. Every request is signed
(`openline.core.requestsig`); every failure to get a well-formed answer becomes
`PeerUnreachable` (retry later) or `PeerRefused` (the peer answered with a problem).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from openline.core.encoding import parse_json
from openline.core.keys import StationKeys
from openline.core.requestsig import sign_request
from openline.errors import Code, OpenLineError, PeerUnreachable

HANDSHAKE_PATH = "/_openline/v1/handshake"
SYNC_PATH = "/_openline/v1/sync"
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


# A peer may hold this many of our requests at once (the deliverer's batch, a checkpoint
# to cosign, a handshake, the probe of a new address): one that answers slowly, or not at
# all, must not take the connections and threads every other line needs.
MAX_IN_FLIGHT_PER_PEER = 4
# The most of an answer we read: a batch's results with their receipts are tens of KiB.
MAX_ANSWER = 4 * 1024 * 1024


@dataclass
class HttpTransport:
    """Signed JSON POSTs over HTTP(S) with one pooled client per station.

    An answer's body must be in within `timeout` of the request (plus one read's wait at
    most), however slowly the peer sends it, and is read up to `MAX_ANSWER`: httpx's own
    timeout starts again with every byte. (Its status line and headers are under httpx's
    timeout alone; `MAX_IN_FLIGHT_PER_PEER` bounds what a peer dripping those can hold.)"""

    keys: StationKeys
    origin: str
    timeout: float = 10.0

    client: httpx.Client | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        if self.client is not None:
            self._client = self.client
            return
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=3.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            headers={"User-Agent": "openline"},
            trust_env=False,
        )

    @contextmanager
    def _slot(self, peer: str, base_url: str) -> Iterator[None]:
        with self._lock:
            waiting = self._in_flight.get(peer, 0)
            if waiting >= MAX_IN_FLIGHT_PER_PEER:
                raise PeerUnreachable(
                    f"{peer} at {base_url}: {waiting} requests to it are still waiting for an answer"
                )
            self._in_flight[peer] = waiting + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[peer] -= 1

    def _exchange(
        self, peer: str, base_url: str, path: str, body: bytes, content_type: str, limit: int
    ) -> tuple[int, str, bytes]:
        """POST `body`, signed; the answer's status, content type and at most `limit` bytes."""
        auth = sign_request(self.keys, "POST", path, self.origin, peer, body)
        headers = {"Authorization": auth, "Content-Type": content_type}
        with self._slot(peer, base_url):
            deadline = time.monotonic() + self.timeout
            try:
                with self._client.stream("POST", base_url + path, content=body, headers=headers) as resp:
                    answer = bytearray()
                    for chunk in resp.iter_bytes():
                        answer += chunk
                        if len(answer) > limit:
                            raise PeerUnreachable(f"{peer} at {base_url}: its answer runs past {limit} bytes")
                        if time.monotonic() > deadline:
                            raise PeerUnreachable(
                                f"{peer} at {base_url}: its answer took more than {self.timeout:g} s"
                            )
                    return resp.status_code, resp.headers.get("content-type", ""), bytes(answer)
            except httpx.HTTPError as exc:
                raise PeerUnreachable(f"{peer} at {base_url}: {type(exc).__name__}: {exc}") from None

    def post(self, peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload, separators=(",", ":")).encode()
        status, _, answer = self._exchange(peer, base_url, path, body, "application/json", MAX_ANSWER)
        try:
            data = parse_json(answer)
        except ValueError:  # UnicodeDecodeError too
            raise PeerUnreachable(f"{peer} answered HTTP {status} without JSON") from None
        if status >= 400:
            code = data.get("code", "unknown") if isinstance(data, dict) else "unknown"
            detail = data.get("detail", "") if isinstance(data, dict) else ""
            raise PeerRefused(
                f"{peer} refused ({status} {code}): {detail}",
                peer_code=str(code),
                http_status=status,
            )
        return data

    def post_text(self, peer: str, base_url: str, path: str, body: str) -> TextAnswer:
        """A signed text POST; every HTTP status is an answer, only no answer raises."""
        status, content_type, answer = self._exchange(
            peer, base_url, path, body.encode(), "text/plain; charset=utf-8", MAX_ANSWER
        )
        return TextAnswer(status, content_type, answer[:MAX_TEXT_ANSWER].decode("utf-8", errors="replace"))

    def close(self) -> None:
        self._client.close()
