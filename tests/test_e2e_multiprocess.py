"""Two `openline serve` processes sharing one PostgreSQL database, as one station: a
browser connected to either hears of a call that arrived at the other (LISTEN/NOTIFY),
and each escalation step fires exactly once although both run the timer loop."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import StationProcess, connect, start_all, stop_all, wait_for
from tests.pg import PostgresServer
from tests.ports import free_port
from tests.zygote import ZYGOTE

pytestmark = pytest.mark.e2e
PASSWORD = "a long passphrase here"
POLICY = {
    "steps": [{"targets": ["on_duty"], "delay_s": 1}, {"targets": ["role:watch_officer"], "delay_s": 1}],
    "repeat": 1,
    "final": {"targets": ["role:administrator"], "delay_s": 3600},
}


@pytest.fixture
def shared(
    tmp_path: Path, pg_server: PostgresServer
) -> Iterator[tuple[StationProcess, StationProcess, StationProcess]]:
    name = "t_" + uuid.uuid4().hex[:16]
    url = pg_server.create_database(name)
    a = StationProcess.create(tmp_path, "stuttgart")
    b = StationProcess.create(tmp_path, "moscow", database_url=url)
    b2 = StationProcess(b.home, "moscow-2", b.port, url, listen=f"127.0.0.1:{free_port()}")
    try:
        start_all(a, b, b2)
        connect(a, b)
        yield a, b, b2
    finally:
        stop_all(a, b, b2)
        pg_server.drop_database(name)


class Listener:
    """A console client on one process's live stream, recording every event."""

    def __init__(self, base: str, cookie: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._client = httpx.Client(base_url=base, cookies={"openline_session": cookie}, timeout=30)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", "/events") as response:
                self.ready.set()
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
        except httpx.HTTPError:
            pass

    def close(self) -> None:
        self._client.close()


def test_two_processes_share_one_station(
    shared: tuple[StationProcess, StationProcess, StationProcess],
) -> None:
    a, b, b2 = shared
    r = ZYGOTE.run(
        ["user", "add", "boris", "--role", "watch_officer", "--password-stdin"],
        b.env(),
        input=PASSWORD + "\n",
    )
    assert r.returncode == 0, r.stderr
    (b.home.parent / "policy.json").write_text(json.dumps(POLICY))
    b.cli("policy", "set", "stuttgart", str(b.home.parent / "policy.json"))
    login = httpx.post(b2.url + "/login", data={"username": "boris", "password": PASSWORD}, timeout=30)
    assert login.status_code == 303
    listener = Listener(b2.url, login.cookies["openline_session"])
    try:
        assert listener.ready.wait(10)
        wait_for(lambda: listener.events, timeout=10, what="the connect event")  # {"changed": ["connected"]}
        seen = len(listener.events)
        # The call arrives at the first process (the URL in moscow's card) ...
        call_id = a.cli_json("call", "moscow", "--subject", "Two processes")["id"]
        # ... and the browser on the second process hears of it.
        wait_for(
            lambda: any("calls" in e["changed"] for e in listener.events[seen:]),
            timeout=10,
            what="a call event",
        )
        # Both processes run the timer loop; each step fires once, in order.
        wait_for(
            lambda: (
                len([e for e in b.get_json(f"/calls/{call_id}")["events"] if e["event"] == "escalated"]) >= 5
            ),
            timeout=30,
            what="five escalation steps",
        )
        steps = [
            e["detail"]["step"] for e in b.cli_json("show", call_id)["events"] if e["event"] == "escalated"
        ]
        assert steps[:5] == [
            "round 1, step 1",
            "round 1, step 2",
            "round 2, step 1",
            "round 2, step 2",
            "final",
        ]
        assert len(steps) == len(set(steps[:4])) + steps.count("final")
    finally:
        listener.close()
