"""Real stations for end-to-end tests: `openline serve` processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openline.adapters.home import read_token
from openline.services.setup import init_home
from tests.ports import free_port
from tests.zygote import ZYGOTE, ForkedProcess

OPENLINE = [sys.executable, "-m", "openline"]


@dataclass
class StationProcess:
    home: Path
    name: str
    port: int
    database_url: str | None = None
    log_path: Path = field(init=False)
    proc: ForkedProcess | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. OPENLINE_WEBHOOK_URLS
    listen: str | None = None  # serve on this HOST:PORT instead of the URL's (a second process)

    def __post_init__(self) -> None:
        self.log_path = self.home.parent / f"{self.name}.log"

    @classmethod
    def create(cls, root: Path, name: str, database_url: str | None = None) -> StationProcess:
        port = free_port()
        home = root / name
        init_home(home, name, f"http://127.0.0.1:{port}", database_url=database_url)
        return cls(home, name, port, database_url)

    @property
    def url(self) -> str:
        return f"http://{self.listen}" if self.listen else f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
        env["OPENLINE_HOME"] = str(self.home)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start `openline serve` without waiting for it (see `start_all`)."""
        with open(self.log_path, "ab") as log:
            listen = ["--listen", self.listen] if self.listen else []
            self.proc = ZYGOTE.spawn(["serve", *listen], self.env(), stdout=log, stderr=log)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /healthz answers; one client for every try (each new one loads the CA bundle,
        CPU the starting server needs)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
                try:
                    if client.get(self.url + "/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as an operator or systemd would; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = ZYGOTE.run(args, self.env(), timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(
                f"openline {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def get_json(self, path: str) -> Any:
        """What the API answers to GET /api/v1`path` (None for 404), which a listing command
        (`openline calls --json`, `alerts`, `lines`, `show`, `notice show`) prints: for
        polls, which through the CLI would start a process (half a second of CPU) every
        50 ms."""
        with self.api() as api:
            r = api.get(path)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def call_state(self, call_id: str) -> str | None:
        """The call's state here (None while the station has no such call)."""
        call = self.get_json(f"/calls/{call_id}")
        return None if call is None else str(call["state"])

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1",
            timeout=30,
            headers={"Authorization": f"Bearer {read_token(self.home)}"},
        )


def start_all(*stations: StationProcess, timeout: float = 30.0) -> None:
    """Start several stations at once (each one's start-up is a second of mostly one CPU),
    then wait until every one answers."""
    for s in stations:
        s.spawn()
    for s in stations:
        s.wait_ready(timeout)


def stop_all(*stations: StationProcess, timeout: float = 30.0) -> None:
    """SIGTERM every station that is running, then wait for each: their graceful
    shutdowns overlap instead of queueing."""
    procs = [(s, s.proc) for s in stations if s.proc is not None]
    for _, proc in procs:
        proc.send_signal(signal.SIGTERM)
    for s, proc in procs:
        proc.wait(timeout)
        s.proc = None


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: last={last!r}")


def connect(a: StationProcess, b: StationProcess, *, cli: bool = False) -> None:
    """Exchange cards and wait until the line is active on both sides: with `cli`, through
    `openline card` and `openline line add` as an operator does (tests/test_e2e_call.py);
    else through the API those commands call, with the cards each station publishes (six
    CLI processes cost about three seconds of CPU at the start of every end-to-end test).
    Either way each station's file `NAME.card` beside its home holds its card."""
    a_card = a.home.parent / f"{a.name}.card"
    b_card = b.home.parent / f"{b.name}.card"
    if cli:
        with ThreadPoolExecutor(2) as pool:  # two CLI processes at once
            cards = pool.map(lambda s: s.cli("card").stdout, (a, b))
            a_card.write_text(next(cards))
            b_card.write_text(next(cards))
        a.cli("line", "add", str(b_card))
        b.cli("line", "add", str(a_card))
    else:
        for s, file in ((a, a_card), (b, b_card)):
            file.write_text(json.dumps(httpx.get(s.url + "/_openline/v1/card", timeout=30).json(), indent=2))
        for s, file in ((a, b_card), (b, a_card)):
            with s.api() as api:
                r = api.post("/lines", json={"card": json.loads(file.read_text())})
                assert r.status_code == 201, r.text
    for s, peer in ((a, b.name), (b, a.name)):
        wait_for(
            lambda s=s, peer=peer: any(
                x["peer"] == peer and x["state"] == "active" for x in s.get_json("/lines")
            ),
            what=f"{s.name} active",
        )


def add_user(station: StationProcess, name: str, role: str, password: str) -> None:
    """What `openline user add NAME --role ROLE --password-stdin` asks of the station, as an
    administrator would (tests/test_e2e_users.py runs the command itself)."""
    with station.api() as api:
        r = api.post("/users", json={"name": name, "role": role, "password": password})
        assert r.status_code == 201, r.text


@contextmanager
def running_pair(
    root: Path,
    *,
    officers: Mapping[str, str] | None = None,
    password: str = "",
    stuttgart_env: Mapping[str, str] | None = None,
    moscow_env: Mapping[str, str] | None = None,
    database_urls: tuple[str | None, str | None] = (None, None),
) -> Iterator[tuple[StationProcess, StationProcess]]:
    """stuttgart and moscow as two real `openline serve` processes with the line between
    them active (on the databases of `database_urls`, SQLite in their homes by default),
    each with its watch officer from `officers` (station name -> user name, all with
    `password`); both stopped afterwards, whatever happened."""
    a = StationProcess.create(root, "stuttgart", database_urls[0])
    b = StationProcess.create(root, "moscow", database_urls[1])
    a.extra_env = dict(stuttgart_env or {})
    b.extra_env = dict(moscow_env or {})
    try:
        start_all(a, b)
        connect(a, b)
        for s in (a, b):
            if officers and s.name in officers:
                add_user(s, officers[s.name], "watch_officer", password)
        yield a, b
    finally:
        stop_all(a, b)


def picked_up_call(a: StationProcess, b: StationProcess, subject: str = "Convoy at checkpoint 4") -> str:
    """A call from a to b, ringing at b, then picked up there and seen so at a: its id."""
    call_id = str(a.cli_json("call", b.name, "--subject", subject)["id"])
    wait_for(lambda: b.call_state(call_id) == "ringing", what=f"ringing at {b.name}")
    b.cli("pickup", call_id)
    wait_for(lambda: a.call_state(call_id) == "picked_up", what=f"picked up at {a.name}")
    return call_id
