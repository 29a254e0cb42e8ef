"""`openline serve` in process, up to the moment it hands the app to uvicorn; and as a
process, stopped by SIGTERM as it starts."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from alembic import command
from fastapi import FastAPI
from sqlalchemy import Engine, event
from structlog.testing import capture_logs
from typer.testing import CliRunner

from openline import serve
from openline.adapters.db import Database, sqlite_url
from openline.adapters.migrate import _config, current
from openline.adapters.transport import HttpTransport
from openline.cli import main
from openline.settings import load
from tests.harness import StationProcess, wait_for
from tests.ports import free_port


def test_serve_hands_uvicorn_a_frozen_heap_a_short_gil_switch_and_compiled_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    port = free_port()
    made = CliRunner().invoke(
        main.app, ["init", "--home", str(home), "--name", "stuttgart", "--url", f"http://127.0.0.1:{port}"]
    )
    assert made.exit_code == 0, made.output
    seen: dict[str, Any] = {}

    def fake_run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        # The port is taken before the app is built, and handed to uvicorn bound.
        seen["bound"] = [s.getsockname() for s in sockets]
        for s in sockets:
            s.close()
        seen["frozen"] = gc.get_freeze_count()
        seen["loop"], seen["http"] = server.config.loop, server.config.http
        app = server.config.app
        assert isinstance(app, FastAPI)
        seen["station"] = app.state.station.name
        app.state.station.db.dispose()

    intervals: list[float] = []
    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr(serve, "configure_logging", lambda level: None)
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    monkeypatch.setattr(sys, "setswitchinterval", intervals.append)
    gc.unfreeze()  # the test session froze its own heap (conftest)
    try:
        serve.run(home)
    finally:
        gc.freeze()
    assert seen["station"] == "stuttgart"
    assert seen["bound"] == [("127.0.0.1", port)]
    # The modules, the app and the station are out of the collector's sight: a full
    # collection of a station's heap paused every thread for about 75 ms before.
    assert seen["frozen"] > 50_000
    assert intervals == [serve.GIL_SWITCH_SECONDS]
    # uvicorn's compiled loop and parser, not its pure-Python fallbacks ("auto" falls back
    # silently when they are missing).
    assert (seen["loop"], seen["http"]) == ("uvloop", "httptools")


@pytest.mark.parametrize(
    "listen",
    ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:0", "127.0.0.1:70000", "h:\uff18\uff10", "h:" + "9" * 5000],
)
def test_a_bad_listen_address_is_a_clear_error(listen: str) -> None:
    # Fullwidth digits pass str.isdigit(); int() would read them as 80.
    with pytest.raises(serve.InvalidInput, match="--listen must be HOST:PORT"):
        serve.parse_listen(listen)


def _schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT name, coalesce(sql, '') FROM sqlite_master"))


def _init(home: Path) -> None:
    made = CliRunner().invoke(
        main.app,
        ["init", "--home", str(home), "--name", "stuttgart", "--url", f"http://127.0.0.1:{free_port()}"],
    )
    assert made.exit_code == 0, made.output


@contextmanager
def _own_signals() -> Iterator[None]:
    """`serve.run` handles SIGTERM and SIGINT in this process: as pytest did, after it."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    gc.unfreeze()  # the test session froze its own heap (conftest)
    try:
        yield
    finally:
        gc.freeze()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_sigterm_during_the_migration_at_start_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the app had started, SIGTERM killed `serve` where it stood (exit 143, nothing
    logged). Now it stops there: the migration under way rolls back, whole."""
    home = tmp_path / "home"
    _init(home)
    path = home / "openline.db"
    db = Database(sqlite_url(path))
    with db.write() as conn:  # a station made by the version before the last two migrations
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")
    db.dispose()
    before = _schema(path)
    signalled: list[str] = []

    def stop_midway(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("CREATE INDEX") and not signalled:  # the first step of 0015
            signalled.append(statement)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(serve, "configure_logging", lambda level: None)
    event.listen(Engine, "after_cursor_execute", stop_midway)
    try:
        with _own_signals(), capture_logs() as logged:
            serve.run(home)  # returns: the process exits 0
    finally:
        event.remove(Engine, "after_cursor_execute", stop_midway)
    assert signalled
    # The upgrade began (and said so); it never said it was done.
    assert [x["event"] for x in logged] == ["upgrading the database", "station stopped before it had started"]
    assert logged[-1]["signal"] == "SIGTERM"
    assert _schema(path) == before
    db = Database(sqlite_url(path))
    assert current(db) == "0014"
    db.dispose()


def test_a_stop_between_reading_the_settings_and_setting_up_logging_still_logs_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM after the settings were read and before their logging was set up: the one
    line `serve` then wrote was plain text in a log of JSON lines (a full run met it)."""
    home = tmp_path / "home"
    _init(home)
    configured: list[str] = []
    monkeypatch.setattr(serve, "configure_logging", configured.append)

    def parse_and_stop(listen: str) -> tuple[str, int]:  # runs between the two
        os.kill(os.getpid(), signal.SIGTERM)
        return "127.0.0.1", 0

    monkeypatch.setattr(serve, "parse_listen", parse_and_stop)
    with _own_signals(), capture_logs() as logged:
        serve.run(home, listen="127.0.0.1:0")
    assert configured == ["info"]  # the settings' level, before the line below
    assert [x["event"] for x in logged] == ["station stopped before it had started"]


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (Linux: SigCgt in /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1], 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


def test_sigterm_as_serve_starts_stops_it_cleanly(tmp_path: Path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to see when the process handles SIGTERM")
    station = StationProcess.create(tmp_path, "stuttgart")
    station.spawn()
    assert station.proc is not None
    # As soon as `serve` handles the signal (before that, Python's default ends it: its
    # interpreter and the command line are still loading).
    wait_for(lambda: _catches_sigterm(station.proc.pid), timeout=30, interval=0.005, what="SIGTERM handled")
    assert station.stop() == 0
    logged = [json.loads(x) for x in station.log_path.read_text().splitlines() if x.startswith("{")]
    said = [x["event"] for x in logged if x["logger"] == "openline.serve"]
    assert said in (["station stopped before it had started"], ["station stopped cleanly"]), said
    assert not [x for x in logged if x["level"] in ("error", "critical")]
    station.start()  # and it starts again
    assert station.stop() == 0


def test_a_last_checkpoint_that_fails_at_stop_is_said_and_the_rest_of_the_stop_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM on a full disk: "Application shutdown failed" with a traceback (the last
    checkpoint), the transport left open, then "station stopped cleanly" and status 0."""
    home = tmp_path / "home"
    _init(home)
    url = load(home).url

    def full(_db: Database) -> None:
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = 13  # type: ignore[attr-defined]  # SQLITE_FULL, as SQLite sets it
        raise exc

    closed: list[str] = []
    monkeypatch.setattr(Database, "checkpoint", full)
    monkeypatch.setattr(HttpTransport, "close", lambda transport: closed.append(transport.origin))
    monkeypatch.setattr(serve, "configure_logging", lambda level: None)

    def stop_when_serving() -> None:
        wait_for(lambda: _answers(url + "/healthz"), timeout=30, what="serving")
        os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_when_serving)
    with _own_signals(), capture_logs() as logged:
        stopper.start()
        serve.run(home)  # returns: the process exits 0
    stopper.join(30)
    said = [(x["log_level"], x["event"]) for x in logged if "station" in x["event"]]
    left = "the last WAL checkpoint (nothing is lost: the WAL keeps every commit)"
    assert said == [("warning", f"station stopped; left undone: {left}")]
    assert closed == ["stuttgart"]  # the rest of the stop ran


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
