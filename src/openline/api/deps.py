"""Dependencies shared by routes: the station and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from pydantic import BaseModel

from openline.adapters.transport import Transport
from openline.errors import Unauthorized
from openline.services import accounts, idempotency
from openline.services.accounts import Principal
from openline.services.station import Station

# Dependencies without I/O are `async def`: FastAPI runs a plain `def` dependency on a
# worker thread, and every hand-off between threads costs more than these bodies do.


async def get_station(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def get_principal(request: Request, station: Annotated[Station, Depends(get_station)]) -> Principal:
    return principal_of(request, station)


def principal_of(request: Request, station: Station) -> Principal:
    """The request's principal, from its bearer token (blocking: a database read).

    FastAPI runs `get_principal` on a worker thread of its own, and then the endpoint on
    another. An endpoint called at a rate calls this on the thread that runs its use case
    instead: one hand-off fewer. Its body is then validated before the token is checked,
    so a malformed body without a token is answered 422, not 401 (the schema is public)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send the station's API token as 'Authorization: Bearer <token>'")
    with station.db.read() as conn:
        return accounts.authenticate(conn, token.strip())


def once_of(request: Request, who: Principal, body: BaseModel) -> idempotency.Once | None:
    """The request's Idempotency-Key with the fingerprint of what it asks, or None."""
    header = request.headers.get(idempotency.HEADER)
    asked = body.model_dump(mode="json")
    return idempotency.once(who.user_id, header, request.method, request.url.path, asked)


def said_before(response: Response, again: bool) -> None:
    """Mark the answer to a request its key had made before (as Stripe's API does)."""
    if again:
        response.headers["Idempotent-Replayed"] = "true"


async def get_transport(request: Request) -> Transport:
    transport: Transport = request.app.state.transport
    return transport


StationDep = Annotated[Station, Depends(get_station)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
TransportDep = Annotated[Transport, Depends(get_transport)]
