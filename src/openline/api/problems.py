"""One place that turns errors into RFC 9457 problem documents."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openline.api.head import AnswerHead
from openline.core.encoding import control_character, digits, undecodable
from openline.core.requestsig import SCHEME as STATION_SCHEME
from openline.errors import Code, DatabaseUnavailable, OpenLineError, RequestTooLarge, TooManyAttempts

PROBLEM_TYPE = "https://openline.invalid/problems/"
# What the framework itself refuses before a route runs (no such path, a method the path
# does not take, a body it cannot parse), in our codes; anything else is invalid input.
_HTTP_CODES = {
    404: (Code.NOT_FOUND, "Not found"),
    405: (Code.METHOD_NOT_ALLOWED, "Method not allowed"),
}
# A client told the database is out of reach tries again after this long; the station's
# own workers retry every second or so.
DATABASE_RETRY_AFTER_S = 5
STATION_PATHS = "/_openline/"
API_PATHS = "/api/"
# On every answer, errors included: how the CLI tells its station from another server that
# answers at the station's URL with JSON of its own (docs/api.md). Its value is the name.
STATION_HEADER = "OpenLine-Station"
# Request bodies the local API reads: JSON (RFC 8259), or a JSON-based type (`+json`).
_JSON_TYPES = ("application/json",)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
log = structlog.get_logger("openline.api")


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {
            "type": PROBLEM_TYPE + code,
            "title": title,
            "status": status,
            "code": code,
            "detail": detail,
            **extra,
        },
        status_code=status,
        media_type="application/problem+json",
    )


def error_response(request: Request, exc: OpenLineError) -> JSONResponse:
    """The problem document of one of our errors (what the exception handler answers)."""
    if exc.status >= 500:
        log.warning("request failed", path=request.url.path, code=exc.code.value)
    else:
        _log_if_station_request(request.url.path, request.client, exc.code.value, exc.detail)
    extra = {"reason": exc.reason} if isinstance(exc, DatabaseUnavailable) else {}
    response = problem(exc.status, exc.code.value, exc.title, exc.detail, **extra)
    if exc.status == 401:  # how to authenticate (RFC 9110 §11.6.1)
        scheme = STATION_SCHEME if request.url.path.startswith(STATION_PATHS) else 'Bearer realm="openline"'
        response.headers["WWW-Authenticate"] = scheme
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, DatabaseUnavailable):
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def _log_if_station_request(path: str, client: Any, code: str, detail: str) -> None:
    """A peer's request refused whole (its signature, its size, its shape) is logged, as
    the inbox logs each envelope it refuses. Details name fields, never content."""
    if path.startswith(STATION_PATHS):
        host = client[0] if isinstance(client, tuple) else getattr(client, "host", None)
        log.warning("station request refused", path=path, code=code, detail=detail[:300], client=host)


def _allowed_methods(routes: list[BaseRoute], scope: Scope, named: str) -> str:
    """Every method some route takes on the request's path (RFC 9110 §10.2.1), with
    those the refusal `named`. Each method of a path is its own route, and the router
    answers a 405 with the methods of the first one whose path matched. A mount matches
    every method and names its own (the static files' GET, HEAD)."""
    methods = {m.strip() for m in named.split(",") if m.strip()}
    for method in _METHODS - methods:
        probe = {**scope, "method": method}
        if any(not isinstance(r, Mount) and r.matches(probe)[0] is Match.FULL for r in routes):
            methods.add(method)
    if "GET" in methods:
        methods.add("HEAD")  # answered wherever GET is (`head.AnswerHead`)
    return ", ".join(sorted(methods))


class RefuseControlCharacters:
    """A path or query string with a control character in it (NUL, ESC, ...) is refused
    before any route runs: no id, name or filter of ours has one, and PostgreSQL refuses
    NUL in text, so a lookup of such an id was a server error there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = unquote(scope.get("query_string", b"").decode("latin-1"), errors="replace")
            where = control_character(scope["path"]) or control_character(query)
            if where is not None:
                detail = f"the path or query contains a control character ({where})"
                await problem(400, Code.INVALID_INPUT.value, "Invalid input", detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequireJsonBody:
    """A request body sent to the local API in another media type than JSON, or with no
    Content-Type, is refused (415), naming it: FastAPI reads a body it does not take for
    JSON as raw bytes, and the client was told only that the body "should be a valid
    dictionary"."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PATHS):
            headers = Headers(scope=scope)
            declared = headers.get("content-type")
            has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
            if has_body and (declared is None or not _is_json(declared)):
                got = "no Content-Type" if declared is None else repr(declared[:80])
                detail = f"request body: expected application/json, got {got}"
                response = problem(415, Code.UNSUPPORTED_MEDIA_TYPE.value, "Unsupported media type", detail)
                response.headers["Accept"] = "application/json"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class NoStore:
    """The local API's answers are kept by no browser or proxy (`Cache-Control:
    no-store`, as every console page says): they carry subjects, messages and notice
    texts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PATHS):
            await self.app(scope, receive, send)
            return

        async def not_stored(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, not_stored)


class NameStation:
    """Every answer names the station (`OpenLine-Station: <name>`), on every path: what
    `/healthz` says anyway, and the CLI refuses an answer without it as another server's."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[STATION_HEADER] = self.name
            await send(message)

        await self.app(scope, receive, named)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in _JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class LimitRequestBody:
    """No request body is read past the station's limit (`max_request_bytes`), on any
    path: one that declares more is refused before it is read, and one sent in chunks,
    which declares no length, is cut off where it passes the limit. Starlette reads a body
    whole before anyone can look at its size, and the station-to-station endpoints read
    theirs before the request is authenticated."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and digits(declared) and int(declared) > self.limit:
            detail = f"request body: at most {self.limit} bytes, got {declared}"
            _log_if_station_request(scope["path"], scope.get("client"), Code.OVERSIZE.value, detail)
            await problem(400, Code.OVERSIZE.value, "Request too large", detail)(scope, receive, send)
            return
        read = 0

        async def limited() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.limit:
                    raise RequestTooLarge(f"request body: more than {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


def _unreadable_body(request: Request, cause: BaseException) -> JSONResponse:
    """A body FastAPI failed to read or parse: one larger than the limit, sent in chunks
    (`LimitRequestBody` stops reading it), is `oversize`, as one that declares its length
    is; anything else (not UTF-8, nested too deeply) is invalid input, as malformed JSON is."""
    if isinstance(cause, OpenLineError):
        return error_response(request, cause)
    if isinstance(cause, UnicodeDecodeError):
        why = undecodable(cause)
    elif isinstance(cause, RecursionError):
        why = "JSON nested too deeply"
    else:
        why = f"not valid JSON ({type(cause).__name__})"
    errors = [{"loc": ["body"], "msg": why}]
    return problem(422, Code.INVALID_INPUT.value, "Invalid input", f"request body: {why}", errors=errors)


def install(app: FastAPI, max_request_bytes: int, station: str) -> None:
    app.add_middleware(RequireJsonBody)
    app.add_middleware(AnswerHead)
    app.add_middleware(NoStore)
    app.add_middleware(LimitRequestBody, limit=max_request_bytes)
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(NameStation, name=station)  # outermost: on the others' refusals too

    @app.exception_handler(OpenLineError)
    async def _openline_error(request: Request, exc: OpenLineError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem(422, Code.INVALID_INPUT.value, "Invalid input", detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not read the body: why, in our terms.
            return _unreadable_body(request, exc.__cause__)
        code, title = _HTTP_CODES.get(exc.status_code, (Code.INVALID_INPUT, "Invalid input"))
        response = problem(exc.status_code, code.value, title, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and "Allow" in headers:
            headers["Allow"] = _allowed_methods(request.app.router.routes, request.scope, headers["Allow"])
        response.headers.update(headers)
        return response

    @app.exception_handler(ClientDisconnect)
    async def _went_away(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # Ordinary on a network (a peer's request timed out, a client was stopped), and
        # anyone who can reach the port can cause it, before any authentication: not an
        # error, and no traceback to bury the real ones in.
        log.info("client went away before its request was read", path=request.url.path)
        return problem(400, Code.MALFORMED.value, "Request not read", "the client closed the connection")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", path=request.url.path)
        response = problem(
            500, Code.INTERNAL.value, "Internal error", "the station hit an unexpected error; see its log"
        )
        # Starlette answers with this handler outside every middleware, `NameStation` too.
        response.headers[STATION_HEADER] = station
        return response
