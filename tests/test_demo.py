"""`openline demo` as a user runs it: two stations come up, a call rings, Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

RINGING_RE = re.compile(r"Call ([0-9a-f-]{36}) from stuttgart is ringing at moscow")
NOTICES_RE = re.compile(
    r"Notice ([0-9a-f-]{36}): moscow protects a site.*notice ([0-9a-f-]{36}): stuttgart's"
)
STATION_RE = re.compile(r"^\s+(stuttgart|moscow)\s+(http://127\.0\.0\.1:\d+)\s+\(pid (\d+)\)\s+home (.+)$")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Demo:
    """A running `python -m openline demo`, its output read line by line with bounded waits."""

    workdir: Path
    proc: subprocess.Popen[str] = field(init=False)
    output: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "openline", "demo", "--workdir", str(self.workdir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=_env(),
        )
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def read_until(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """The first new line matching `pattern`; None at end of output or after `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            self.output.append(line)
            if match := pattern.search(line):
                return match
        return None

    def drain(self, timeout: float) -> None:
        """Read the rest of the output (the process has exited)."""
        self.read_until(re.compile(r"(?!)"), timeout)

    def stations(self) -> dict[str, tuple[str, int, Path]]:
        """name -> (url, pid, home), as the demo printed them."""
        found = (STATION_RE.match(line.rstrip("\n")) for line in self.output)
        return {m[1]: (m[2], int(m[3]), Path(m[4])) for m in found if m}

    def text(self) -> str:
        return "".join(self.output)

    def close(self) -> None:
        """Make sure nothing outlives the test, whatever happened in it."""
        pids = [pid for _, pid, _ in self.stations().values()]
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _cli_json(home: Path, *args: str) -> Any:
    """`openline ARGS --json` for the station at `home`, as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "openline", *args, "--json"],
        env=_env(OPENLINE_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _ring_and_stop(workdir: Path) -> tuple[str, Demo]:
    """Run the demo until the call rings at moscow, check it there, then Ctrl-C it."""
    demo = Demo(workdir)
    try:
        ringing = demo.read_until(RINGING_RE, START_TIMEOUT)
        assert ringing, f"the demo never said the call is ringing:\n{demo.text()}"
        call_id = ringing[1]
        stations = demo.stations()
        assert set(stations) == {"stuttgart", "moscow"}, demo.text()
        assert {name: home for name, (_, _, home) in stations.items()} == {
            "stuttgart": workdir / "stuttgart",
            "moscow": workdir / "moscow",
        }
        for name, (url, _, _) in stations.items():
            health = httpx.get(url + "/healthz", timeout=10, trust_env=False).json()
            assert health["station"] == name

        moscow = stations["moscow"][2]
        mine = [c for c in _cli_json(moscow, "calls", "--state", "ringing") if c["id"] == call_id]
        assert [(c["peer"], c["direction"], c["priority"], c["state"]) for c in mine] == [
            ("stuttgart", "in", "flash", "ringing")
        ]
        assert "checkpoint 4" in mine[0]["subject"]
        # And the notices: moscow's protected site, and stuttgart's exercise over it, which
        # moscow holds with the conflict and must acknowledge.
        said = demo.read_until(NOTICES_RE, START_TIMEOUT)
        assert said, f"the demo never named its notices:\n{demo.text()}"
        exercise = _cli_json(moscow, "notice", "show", said[2])
        assert (exercise["direction"], exercise["category"], exercise["state"]) == (
            "in",
            "exercise",
            "delivered",
        )
        assert [c["other_notice"] for c in exercise["conflicts"]] == [said[1]]
        assert "acknowledge" in exercise["actions"]

        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(STOP_TIMEOUT) == 0, demo.text()
        demo.drain(10)
        for name, (_, pid, _) in stations.items():
            assert f"{name} stopped (exit status 0)" in demo.text()
            assert not _alive(pid), f"{name} (pid {pid}) outlived the demo"
        return call_id, demo
    finally:
        demo.close()


def test_demo_rings_a_call_at_moscow_and_stops_both_stations_on_ctrl_c(tmp_path: Path) -> None:
    _, demo = _ring_and_stop(tmp_path)
    text = demo.text()
    assert text.count("one-time password") == 2
    commands = (
        "calls",
        "pickup",
        "say",
        "close",
        "show",
        "lines",
        "notices",
        "notice ack",
        "notices --at",
        "prove",
    )
    for command in commands:
        assert re.search(rf"OPENLINE_HOME=\S+ \S*openline {command}\b", text), command
    assert "/openapi.json" in text
    assert re.search(r"The map: http://127\.0\.0\.1:\d+/notices", text)
    assert (tmp_path / "stuttgart.log").read_text().count("station stopped cleanly") == 1


def test_demo_reuses_the_homes_of_an_earlier_run_in_the_same_workdir(tmp_path: Path) -> None:
    first, _ = _ring_and_stop(tmp_path)
    second, demo = _ring_and_stop(tmp_path)
    assert first != second
    assert "one-time password" not in demo.text()
