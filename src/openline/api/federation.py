"""Station-to-station endpoints (/_openline/v1). Every request is signed by the origin
station (`openline.core.requestsig`) and checked against its pinned card before the
body is even parsed."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from openline.adapters.schema import peers
from openline.api.deps import StationDep
from openline.core.keys import signing_public_key
from openline.core.requestsig import parse_authorization, verify_request
from openline.errors import Code, EnvelopeRefused, Unauthorized
from openline.services import delivery, inbox, lines, witness
from openline.services.station import Station

router = APIRouter(prefix="/_openline/v1")
_BATCH_ID_RE = re.compile(r"^[0-9a-f-]{36}$")


async def _authenticated_body(request: Request, station: Station) -> tuple[str, Any]:
    origin, body = await _authenticated_bytes(request, station)
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise EnvelopeRefused(Code.MALFORMED, f"request body is not JSON: {exc}") from None
    return origin, payload


async def _authenticated_bytes(request: Request, station: Station) -> tuple[str, bytes]:
    limit: int = request.app.state.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise EnvelopeRefused(Code.OVERSIZE, f"request body: at most {limit} bytes, got {declared}")
    body = await request.body()
    if len(body) > limit:
        raise EnvelopeRefused(Code.OVERSIZE, f"request body: at most {limit} bytes, got {len(body)}")
    auth = parse_authorization(request.headers.get("authorization"))
    if auth.destination != station.name:
        raise Unauthorized(
            f"request addressed to {auth.destination!r}; this station is {station.name!r}",
            code=Code.WRONG_DESTINATION,
        )

    def pinned_key() -> str | None:
        with station.db.read() as conn:
            row = conn.execute(select(peers.c.signing_key).where(peers.c.name == auth.origin)).first()
        return None if row is None else str(row.signing_key)

    key = await run_in_threadpool(pinned_key)
    if key is None:
        raise Unauthorized(f"station {auth.origin!r} is not pinned here", code=Code.UNKNOWN_STATION)
    verify_request(auth, signing_public_key(key), request.method, request.url.path, body)
    return auth.origin, body


@router.post("/handshake")
async def handshake(request: Request, station: StationDep) -> dict[str, Any]:
    origin, payload = await _authenticated_body(request, station)
    answer = await run_in_threadpool(lines.answer_handshake, station, origin, payload)
    await run_in_threadpool(delivery.peer_contacted, station, origin)
    return answer


@router.post("/send/{batch_id}")
async def send(batch_id: str, request: Request, station: StationDep) -> Response:
    if not _BATCH_ID_RE.fullmatch(batch_id):
        raise EnvelopeRefused(Code.MALFORMED, "batch id must be a UUID")
    origin, payload = await _authenticated_body(request, station)

    def receive() -> bytes:
        result = inbox.receive_batch(station, origin, batch_id, payload)
        delivery.peer_contacted(station, origin)
        # Plain JSON of plain values: skip FastAPI's generic encoder on the event loop.
        return json.dumps(result, separators=(",", ":")).encode()

    return Response(await run_in_threadpool(receive), media_type="application/json")


@router.post("/ledger/add-checkpoint")
async def add_checkpoint(request: Request, station: StationDep) -> Response:
    """C2SP tlog-witness: cosign the peer's checkpoint if it extends what we cosigned."""
    origin, body = await _authenticated_bytes(request, station)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return Response("request body is not UTF-8\n", 400, media_type="text/plain")
    answer = await run_in_threadpool(witness.add_checkpoint, station, origin, text)
    return Response(answer.text, answer.status, media_type=answer.content_type)


@router.get("/card")
def card(station: StationDep) -> dict[str, Any]:
    return station.card.to_json()
