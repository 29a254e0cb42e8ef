"""The station's own database goes away and comes back under two running stations (a
PostgreSQL server restarted by an operator or an upgrade): requests meanwhile get a clear
503, every background worker logs the outage once and resumes, and nothing queued is lost.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import StationProcess, connect, start_all, stop_all, wait_for
from tests.pg import PostgresServer

pytestmark = pytest.mark.e2e


def _log_events(station: StationProcess) -> list[str]:
    events = []
    for line in station.log_path.read_text().splitlines():
        try:
            events.append(str(json.loads(line).get("event", "")))
        except ValueError:
            continue  # a traceback's lines
    return events


def _state(station: StationProcess, call_id: str) -> str | None:
    """The call's state there, or None while the station has not heard of it."""
    return station.call_state(call_id)


def test_a_database_outage_loses_nothing_and_the_workers_resume(
    tmp_path: Path, own_pg_server: PostgresServer
) -> None:
    a = StationProcess.create(tmp_path, "stuttgart", own_pg_server.fresh_database()[1])
    b = StationProcess.create(tmp_path, "moscow", own_pg_server.fresh_database()[1])
    try:
        start_all(a, b)
        connect(a, b)
        line_id = a.cli_json("lines")[0]["id"]
        # The peer is down, so the call waits in stuttgart's outbox and its deliverer
        # retries with backoff: it steps during the outage below.
        b.stop()
        queued = a.cli_json("call", "moscow", "--subject", "Queued before the outage")["id"]
        own_pg_server.pause()

        refused = a.cli("call", "moscow", "--subject", "Placed during the outage", check=False)
        assert refused.returncode == 1
        unavailable = "error (database_unavailable): the station cannot reach its database ("
        assert refused.stderr.startswith(unavailable)
        assert "try again shortly" in refused.stderr
        with a.api() as api:
            r = api.get("/calls")
        assert r.status_code == 503
        assert r.json()["code"] == "database_unavailable"
        assert r.json()["reason"]  # the driver's words: "connection failed: ..." or the like
        assert r.headers["retry-after"] == "5"
        scraped = httpx.get(a.url + "/metrics", timeout=30)  # monitoring sees it, and the rest
        assert scraped.status_code == 200
        assert re.search(r"^openline_database_up 0\.0$", scraped.text, re.MULTILINE)
        assert "process_cpu_seconds_total" in scraped.text
        time.sleep(4)  # the timers loop steps every second, the deliverer on its backoff

        own_pg_server.resume()
        b.start()
        wait_for(lambda: _state(b, queued) == "ringing", timeout=30, what="queued call rings")
        after = a.cli_json("call", "moscow", "--subject", "Placed after the outage")["id"]
        wait_for(lambda: _state(b, after) == "ringing", timeout=30, what="new call rings")
        assert [c["subject"] for c in a.cli_json("calls") if c["id"] not in (queued, after)] == []
    finally:
        stop_all(a, b)
    events = _log_events(a)
    for worker in ("the timers loop", f"the deliverer of line {line_id}"):
        down = [e for e in events if e.startswith(f"database unavailable; {worker} retries until it is back")]
        back = [e for e in events if e.startswith(f"database reachable again; {worker} resumed after")]
        assert (len(down), len(back)) == (1, 1), (worker, down, back)
    assert not [e for e in events if "crashed" in e]
