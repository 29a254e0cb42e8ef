"""`openline serve`: take the listening port, migrate the database, then run the app under
uvicorn. The port comes first: a port another process holds is a clear error before
anything has started (no migration, no worker, no alert raised).

SIGTERM and Ctrl-C stop it cleanly from its first moment. Before the app has started,
`run` stops where it stands: what it was doing rolls back (the migration is one
transaction) or, done, stays done, and it logs that it stopped before it had started.
From then on uvicorn handles them: it stops accepting connections, lets requests in
flight finish, then runs the app's shutdown, which stops the deliverers and the timer
loop after their current step. Every step is one transaction, so nothing is left half
done whatever the moment of the signal.
"""

from __future__ import annotations

import errno
import gc
import logging
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

from openline.core.encoding import digits
from openline.errors import Code, InvalidInput, OpenLineError
from openline.settings import Settings, load

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

GIL_SWITCH_SECONDS = 0.0005
EVENT_LOOP = "uvloop"
HTTP_PARSER = "httptools"
LISTEN_BACKLOG = 2048  # uvicorn's default
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
log = structlog.get_logger("openline.serve")


class _Stopping(BaseException):
    """SIGTERM or Ctrl-C before the app has started, raised where `run` stands, as Ctrl-C
    raises KeyboardInterrupt (and, like it, not an `Exception` anything may catch)."""


def configure_logging(level: str) -> None:
    """One JSON object per line on stderr, from structlog and from the standard library
    loggers of uvicorn, Alembic and httpx alike."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-request lines from the HTTP client and migration chatter are noise at INFO.
    for name in ("httpx", "httpcore", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not digits(port) or not 0 < int(port) < 65536:
        raise InvalidInput(f"--listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind(host: str, port: int) -> list[socket.socket]:
    """The station's listening sockets, bound and listening: one per address
    the host names, as asyncio's own server binds "localhost" to both 127.0.0.1 and ::1."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OpenLineError(
            f"cannot listen on {host}:{port}: {exc.strerror}", code=Code.CANNOT_LISTEN
        ) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # ::1 beside 127.0.0.1, not over it
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            # Listening from here on, before the app has started: a peer that connects
            # meanwhile waits in the backlog instead of being refused. A station that
            # moved is checked by a handshake to its new address while it announces
            # itself at start (services/moves.py), which must not race uvicorn.
            sock.listen(LISTEN_BACKLOG)
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            detail = "another process is listening there; stop it, or serve elsewhere with --listen HOST:PORT"
        else:
            detail = str(exc.strerror or exc)
        raise OpenLineError(f"cannot listen on {host}:{port}: {detail}", code=Code.CANNOT_LISTEN) from None
    return sockets


def build(settings: Settings) -> FastAPI:
    """The station's app over its migrated database, as `run` serves it. Only `openline
    init` makes a station: a database that holds none is refused, never made one here. The
    keys are read first: a key file refused (damaged, others may read it) leaves the
    database untouched."""
    # Imported here: loading them takes a second or more, which `run` spends handling
    # SIGTERM already.
    from openline.adapters.home import load_keys
    from openline.adapters.migrate import current, head, open_station, upgrade
    from openline.api.app import create_app
    from openline.runtime import build_station, channels_from

    keys = load_keys(settings.home)
    db = open_station(settings.effective_database_url, background_checkpoints=True)
    try:
        # An upgrade says what it does: a migration over a year of history takes a while
        # (docs/operations.md), and the operator must see that it is under way and when done.
        was, latest = current(db), head()
        if was != latest:
            log.info("upgrading the database", station=settings.name, schema_from=was, schema_to=latest)
        started = time.monotonic()
        upgrade(db)
        if was != latest:
            log.info("database upgraded", station=settings.name, schema_from=was, schema_to=latest,
                     seconds=round(time.monotonic() - started, 1))  # fmt: skip
        station = build_station(settings, db=db, keys=keys)
    except BaseException:
        db.dispose()
        raise
    return create_app(station, max_request_bytes=settings.max_request_bytes, channels=channels_from(settings))


def freeze_heap() -> None:
    """Put everything made so far (the modules, the app, the station: it lives as long as
    the process) out of the cyclic collector's sight, so a full collection no longer walks
    it. Unfrozen, each full collection of a station paused every thread for about 75 ms
    (bench/delivery.py measures it)."""
    gc.collect()
    gc.freeze()


def run(home: Path, listen: str | None = None) -> None:
    # A thread waiting for the GIL gets it after at most this long, not Python's 5 ms: the
    # request handlers, the deliverer and the settling of receipts take turns sooner. In
    # bench/delivery.py on a busy machine, p99 at 100 messages/s went from about 134 ms to
    # about 70 ms, the drain rate unchanged.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    stopped_by: list[int] = []
    server: uvicorn.Server | None = None

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopped_by.append(signum)
        if server is not None:
            # uvicorn may not have taken the signals yet: then it stops as soon as it has
            # started. After its graceful shutdown it hands back here the one it caught.
            server.should_exit = True
        elif len(stopped_by) == 1:  # a second one while stopping changes nothing
            raise _Stopping

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        settings: Settings | None = None
        sockets: list[socket.socket] = []
        app: FastAPI | None = None
        try:
            settings = load(home)
            host, port = parse_listen(listen) if listen else settings.listen
            configure_logging(settings.log_level)
            sockets = bind(host, port)
            app = build(settings)
            freeze_heap()
            server = _server(app, settings, host, port)
        except _Stopping:
            _stopped_before_start(settings, sockets, app, stopped_by)
            return
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        server.run(sockets=sockets)
        _stopped(server, app, settings, stopped_by)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _server(app: FastAPI, settings: Settings, host: str, port: int) -> uvicorn.Server:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # uvicorn's compiled event loop and HTTP parser, not asyncio's and h11's: in
        # bench/delivery.py, latency at 100 messages/s was lower in four of five alternating
        # pairs and the drain about 7% faster in two.
        loop=EVENT_LOOP,
        http=HTTP_PARSER,
        log_level=settings.log_level,
        # X-Forwarded-For only from the proxies the settings name (uvicorn would believe
        # it from 127.0.0.1 by default: any local process could choose its address).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
    server = uvicorn.Server(config)
    app.state.server = server  # live streams end when it starts shutting down
    return server


def _signal_name(stopped_by: list[int]) -> str | None:
    return signal.Signals(stopped_by[0]).name if stopped_by else None


def _stopped_before_start(
    settings: Settings | None, sockets: list[socket.socket], app: FastAPI | None, stopped_by: list[int]
) -> None:
    for sock in sockets:
        sock.close()
    if app is not None:  # built, never started: its workers never ran
        app.state.station.db.dispose()
    # Stopped while reading the settings, or before their logging was set up: the line is
    # JSON all the same (a full test run met SIGTERM between the two).
    configure_logging(settings.log_level if settings else "info")
    log.info(
        "station stopped before it had started",
        station=settings.name if settings else None,
        signal=_signal_name(stopped_by),
    )


def _stopped(server: uvicorn.Server, app: FastAPI, settings: Settings, stopped_by: list[int]) -> None:
    """Say how the station stopped: cleanly, cleanly but with something left for the next
    start (a last WAL checkpoint), or with a shutdown that failed (status 1)."""
    said: dict[str, Any] = {"station": settings.name, "signal": _signal_name(stopped_by)}
    lifespan = getattr(server, "lifespan", None)  # uvicorn's: did the app's shutdown raise?
    if lifespan is not None and (lifespan.shutdown_failed or lifespan.error_occurred):
        log.error(
            "station stopped, but its shutdown failed (see the error above): what was under way "
            "may not have been finished; look before relying on it",
            **said,
        )
        raise SystemExit(1)
    unfinished = app.state.station.db.unfinished
    if unfinished:  # each says why nothing is lost
        log.warning(f"station stopped; left undone: {'; '.join(unfinished)}", **said)
    else:
        log.info("station stopped cleanly", **said)
