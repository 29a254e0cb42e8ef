"""The station's ASGI application: `create_app(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from openline import __version__
from openline.adapters import migrate
from openline.adapters.db import ChangeListener
from openline.adapters.notify import Channel
from openline.adapters.transport import Transport
from openline.api import federation, local, openapi, problems
from openline.api import ledger as ledger_api
from openline.api import notices as notices_api
from openline.api import report as report_api
from openline.api.metrics import LineCollector
from openline.console import pages as console_pages
from openline.console import routes as console
from openline.console.live import Hub
from openline.errors import DatabaseUnavailable, OpenLineError
from openline.runtime import Workers, default_transport
from openline.services.station import Station


def create_app(
    station: Station,
    *,
    transport: Transport | None = None,
    max_request_bytes: int = 8 * 1024 * 1024,
    workers: bool = True,
    channels: tuple[Channel, ...] = (),
) -> FastAPI:
    transport = transport or default_transport(station)
    background = Workers(station, transport, channels) if workers else None

    hub = Hub()
    listener = None
    if station.db.engine.dialect.name == "postgresql":
        hub.via_database = True
        listener = ChangeListener(station.db, hub.on_announcement, hub.resync)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if listener is not None:
            listener.start()
        if background is not None:
            background.start()
        try:
            yield
        finally:
            # Each is stopped whatever became of the one before (an error is raised once
            # all have been: uvicorn then reports the shutdown failed, and `serve` says so).
            with ExitStack() as stack:
                stack.callback(station.db.dispose)
                if listener is not None:
                    stack.callback(listener.stop)
                if background is not None:
                    stack.callback(background.stop)

    app = FastAPI(
        title=f"OpenLine station {station.name}",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,  # their UIs load from a CDN; we publish /openapi.json
    )
    app.state.station = station
    app.state.transport = transport
    app.state.max_request_bytes = max_request_bytes
    app.state.hub = hub
    station.on_commit.append(hub.on_commit)
    station.db.on_reachability.append(hub.on_reachability)
    problems.install(app, max_request_bytes, station.name)
    # Routes are matched in order, each tested in turn (about 3 µs each with this FastAPI):
    # the peer's batches first, then the local API, the console's many pages last.
    app.include_router(federation.router)
    app.include_router(local.router)
    app.include_router(ledger_api.router)
    app.include_router(report_api.router)
    app.include_router(notices_api.router)
    app.include_router(console.router)
    app.mount("/static", StaticFiles(directory=str(console.STATIC_DIR)), name="static")
    openapi.install(app)

    def _back_to(current: str, request: Request) -> str:
        """`?ended=1&next=…` for the page htmx says it is on (`HX-Current-URL`), if that is
        a page of this station's own; else `?ended=1`."""
        url = urlsplit(current)
        here = url.path + (f"?{url.query}" if url.query else "")
        own = url.netloc == request.url.netloc and url.path != "/"
        back = own and console_pages.page_after_login(here)
        return "?" + urlencode({"ended": "1", **({"next": here} if back else {})})

    @app.exception_handler(console.LoginRequired)
    async def _login_required(request: Request, exc: console.LoginRequired) -> Response:
        target = "/password" if exc.args == ("password",) else "/login"
        if request.headers.get("hx-request"):  # htmx follows this header, not a 303
            if target == "/login":  # a live region of a page whose session ended: back to it
                target += _back_to(request.headers.get("hx-current-url", ""), request)
            return Response(status_code=200, headers={"HX-Redirect": target})
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        back = asked != "/" and console_pages.page_after_login(asked)
        if target == "/login" and back and console_pages.wants_page(request):  # a page, not a region
            target += "?" + urlencode({"next": asked})  # back to that page once logged in
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(DatabaseUnavailable)
    async def _database_unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
        if console_pages.wants_page(request):  # an officer reloading the board gets a page
            return console_pages.unavailable(request, exc, problems.DATABASE_RETRY_AFTER_S)
        return await _refused(request, exc)

    @app.exception_handler(OpenLineError)
    async def _refused(request: Request, exc: OpenLineError) -> Response:
        """A browser that asked for a console page or posted a console form gets a page
        saying why; everyone else (the API, htmx, peers) the problem document."""
        if console_pages.wants_page(request) or console_pages.posted_form(request):
            return await run_in_threadpool(console_pages.refused, request, exc)  # reads the session
        return problems.error_response(request, exc)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        # `schema`: what this code migrates to. A newer CLI tells an older station by it.
        return {"status": "ok", "station": station.name, "version": __version__, "schema": migrate.head()}

    lines_registry = CollectorRegistry(auto_describe=True)
    lines_registry.register(LineCollector(station))

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        body = generate_latest(REGISTRY) + generate_latest(lines_registry)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    return app
