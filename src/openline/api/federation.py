"""Station-to-station endpoints (/_openline/v1). Every request is signed by the origin
station (`openline.core.requestsig`) and checked against its pinned card before the
body is even parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from openline.api.deps import StationDep, TransportDep
from openline.core.encoding import parse_json
from openline.core.envelope import UUID_RE
from openline.core.keys import signing_public_key
from openline.core.requestsig import parse_authorization, verify_request
from openline.errors import Code, EnvelopeRefused, Unauthorized
from openline.services import delivery, inbox, lines, moves, resync, witness
from openline.services.station import Station

router = APIRouter(prefix="/_openline/v1")


@dataclass(frozen=True)
class _Signed:
    """A station request as received: what its signature must cover."""

    authorization: str | None
    method: str
    path: str
    body: bytes


async def _read(request: Request) -> _Signed:
    """The request's body: no more of it than the station's limit is read, before the
    request is authenticated (`problems.LimitRequestBody`, `oversize`)."""
    body = await request.body()
    return _Signed(request.headers.get("authorization"), request.method, request.url.path, body)


def _origin(station: Station, signed: _Signed) -> tuple[str, str]:
    """The station that signed the request, checked against its pinned card, and that
    card's signing key; once its signature is good, a station whose line we suspended is
    refused (blocking: a database read, so it runs on the same worker thread as the rest
    of the request)."""
    auth = parse_authorization(signed.authorization)
    if auth.destination != station.name:
        raise Unauthorized(
            f"request addressed to {auth.destination!r}; this station is {station.name!r}",
            code=Code.WRONG_DESTINATION,
        )
    with station.db.read() as conn:
        pinned = lines.pinned_key_and_state(conn, auth.origin)
    if pinned is None:
        raise Unauthorized(f"station {auth.origin!r} is not pinned here", code=Code.UNKNOWN_STATION)
    key, state = pinned
    verify_request(auth, signing_public_key(key), signed.method, signed.path, signed.body)
    lines.refuse_if_suspended(state, auth.origin)
    return auth.origin, key


def _json(body: bytes) -> Any:
    try:
        return parse_json(body)
    except ValueError as exc:
        raise EnvelopeRefused(Code.MALFORMED, f"request body is not JSON: {exc}") from None


# Each endpoint hands the whole request to one worker thread: authenticating it needs a
# database read, and every hop between the event loop and a worker thread is a wait for
# the GIL on a busy station.


@router.post("/handshake")
async def handshake(request: Request, station: StationDep, transport: TransportDep) -> dict[str, Any]:
    signed = await _read(request)

    def answer() -> dict[str, Any]:
        origin, _ = _origin(station, signed)
        payload = _json(signed.body)
        result = lines.answer_handshake(station, origin, payload)
        delivery.peer_contacted(station, origin)
        # A station that moved: its new address is confirmed by a handshake of ours there
        # before it is pinned, so this answer waits for that one (services/moves.py).
        return {**result, "card": moves.follow(station, transport, origin, payload["card"])}

    return await run_in_threadpool(answer)


@router.post("/sync")
async def sync(request: Request, station: StationDep) -> dict[str, Any]:
    """The peer's sequence numbers for our line, for each side to mend what a restore
    broke (services/resync.py); answered with ours, signed."""
    signed = await _read(request)

    def answer() -> dict[str, Any]:
        origin, _ = _origin(station, signed)
        return resync.answer_sync(station, origin, _json(signed.body))

    return await run_in_threadpool(answer)


@router.post("/send/{batch_id}")
async def send(batch_id: str, request: Request, station: StationDep) -> Response:
    if not UUID_RE.fullmatch(batch_id):
        raise EnvelopeRefused(Code.MALFORMED, "batch id must be a UUID")
    signed = await _read(request)

    def receive() -> bytes:
        origin, key = _origin(station, signed)
        # The inbox also drops our backoff towards the peer, in its own transaction.
        result = inbox.receive_batch(station, origin, batch_id, _json(signed.body), pinned=key)
        # Plain JSON of plain values: skip FastAPI's generic encoder on the event loop.
        return json.dumps(result, separators=(",", ":")).encode()

    return Response(await run_in_threadpool(receive), media_type="application/json")


@router.post("/ledger/add-checkpoint")
async def add_checkpoint(request: Request, station: StationDep) -> Response:
    """C2SP tlog-witness: cosign the peer's checkpoint if it extends what we cosigned."""
    signed = await _read(request)

    def cosign() -> Response:
        origin, _ = _origin(station, signed)
        try:
            text = signed.body.decode()
        except UnicodeDecodeError:
            return Response("request body is not UTF-8\n", 400, media_type="text/plain")
        answer = witness.add_checkpoint(station, origin, text)
        return Response(answer.text, answer.status, media_type=answer.content_type)

    return await run_in_threadpool(cosign)


@router.get("/card")
def card(station: StationDep) -> dict[str, Any]:
    return station.card.to_json()
