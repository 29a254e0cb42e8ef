"""Dependencies shared by routes: the station and the authenticated principal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Response
from pydantic import BaseModel

from openline.adapters.transport import Transport
from openline.errors import InvalidInput, Unauthorized
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


async def known_query_only(request: Request) -> None:
    """A query parameter the endpoint does not take is refused, naming those it does: a
    mistyped filter (`?stat=closed`) would otherwise answer with everything, as if no
    filter had been given. Request bodies refuse unknown fields alike (`Strict`)."""
    if not request.query_params:
        return
    known = _query_names(request.scope["route"])
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) if known else "no query parameters"
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}: {request.url.path} takes {takes}")
    # Each takes one value: given twice, the last one would win without a word.
    again = sorted(k for k in set(request.query_params) if len(request.query_params.getlist(k)) > 1)
    if again:
        raise InvalidInput(f"query parameter {again[0]!r} given more than once: it takes one value")


def _query_names(route: Any) -> frozenset[str]:
    """Every query parameter a route takes, its dependencies' included (found once, and
    kept on the route: routes compare by value, so they are not keys)."""
    names: frozenset[str] | None = getattr(route, "_openline_query_names", None)
    if names is None:
        found: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            found.update(str(p.alias) for p in dependant.query_params)
            pending.extend(dependant.dependencies)
        names = frozenset(found)
        route._openline_query_names = names
    return names


# The next page of a listing, newest first: the id of the last row of the page before.
BEFORE = "Only those listed after this one (the id of the last one you have): the next page."
Before = Annotated[int | None, Query(ge=1, le=2**31 - 1, description=BEFORE)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Makes the request safe to send again (docs/api.md): a key of your choosing, "
        "1-255 printable ASCII characters, quoted or not; the same key with the same request within "
        "a day answers with what the first made (header `Idempotent-Replayed: true`).",
    ),
]


def made_once(
    station: Station,
    who: Principal,
    http: tuple[Request, Response],
    body: BaseModel,
    key: str | None,
    make: Callable[[idempotency.Once | None], str],
) -> str:
    """`make(once)`, unless the request's Idempotency-Key (`key`) made it before: then
    what that made, the answer marked `Idempotent-Replayed` (as Stripe's API marks it)."""
    request, response = http
    once = None
    if key is not None:
        try:
            asked = body.model_dump(mode="json")
        except ValueError:  # pydantic's serialiser stops at a depth the parser took
            raise InvalidInput("request body: JSON nested too deeply") from None
        once = idempotency.once(who.user_id, key, request.method, request.url.path, asked)
    made, again = idempotency.run(station, once, make)
    if again:
        response.headers["Idempotent-Replayed"] = "true"
    return made


async def get_transport(request: Request) -> Transport:
    transport: Transport = request.app.state.transport
    return transport


StationDep = Annotated[Station, Depends(get_station)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
TransportDep = Annotated[Transport, Depends(get_transport)]
