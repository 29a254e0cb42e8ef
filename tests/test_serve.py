"""`openline serve` in process, up to the moment it hands the app to uvicorn."""

from __future__ import annotations

import gc
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from openline import serve
from openline.cli import main
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
