"""`openline serve`: take the listening port, migrate the database, then run the app under
uvicorn. The port comes first: a port another process holds is a clear error before
anything has started (no migration, no worker, no alert raised).

uvicorn handles SIGTERM and Ctrl-C: it stops accepting connections, lets requests in
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
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI

from openline.adapters.home import load_keys
from openline.adapters.migrate import open_station, upgrade
from openline.api.app import create_app
from openline.core.encoding import digits
from openline.errors import Code, InvalidInput, OpenLineError
from openline.runtime import build_station, channels_from
from openline.settings import Settings, load

GIL_SWITCH_SECONDS = 0.0005
EVENT_LOOP = "uvloop"
HTTP_PARSER = "httptools"
LISTEN_BACKLOG = 2048  # uvicorn's default


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
    keys = load_keys(settings.home)
    db = open_station(settings.effective_database_url, background_checkpoints=True)
    try:
        upgrade(db)
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
    settings = load(home)
    host, port = parse_listen(listen) if listen else settings.listen
    configure_logging(settings.log_level)
    sockets = bind(host, port)
    try:
        app = build(settings)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    freeze_heap()
    stopped_by: list[int] = []
    # uvicorn restores these after its graceful shutdown and re-raises the signal it caught;
    # ours notes it, so a requested stop ends the process with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopped_by.append(signum))
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
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
    server = uvicorn.Server(config)
    app.state.server = server  # live streams end when it starts shutting down
    server.run(sockets=sockets)
    structlog.get_logger("openline.serve").info(
        "station stopped cleanly",
        station=settings.name,
        signal=signal.Signals(stopped_by[0]).name if stopped_by else None,
    )
