"""Console benchmark: 200 browsers watching the board; how soon each hears of a new call.

Two real `openline serve` processes on 127.0.0.1 (SQLite). 200 clients hold the
console's live-update stream (`/events`, Server-Sent Events) open at moscow, logged in
as one watch officer. stuttgart places calls to moscow, one at a time; for each call we
take the time from the POST at stuttgart until each client has received the `change`
event that moscow announces when the call starts ringing there. So the figure includes
delivery between the stations (signed, sealed, stored, receipted) and the fan-out.

Baseline, same run: the same measurement with a single client (fan-out to one), so the
difference is what 200 listeners cost.

Target (issue): p99 <= 500 ms from an inbound call to the event on every client.
Prints figures, asserts nothing. Run: `.venv/bin/python bench/console.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from tests.harness import OPENLINE, StationProcess, connect  # noqa: E402

PASSWORD = "a long passphrase here"  # noqa: S105 - a throwaway benchmark user
TARGET_P99_MS = 500.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def listen(client: httpx.AsyncClient, ready: asyncio.Event, inbox: asyncio.Queue[float]) -> None:
    async with client.stream("GET", "/events") as response:
        response.raise_for_status()
        ready.set()
        async for line in response.aiter_lines():
            if line.startswith("event: change"):
                inbox.put_nowait(time.monotonic())


async def measure(b: StationProcess, a: StationProcess, cookie: str, clients: int, calls: int) -> list[float]:
    """Milliseconds from each call's POST at `a` to its first event at each client."""
    limits = httpx.Limits(max_connections=clients + 10)
    async with httpx.AsyncClient(
        base_url=b.url,
        cookies={"openline_session": cookie},
        timeout=httpx.Timeout(30, read=None),
        limits=limits,
    ) as client:
        readies = [asyncio.Event() for _ in range(clients)]
        inboxes: list[asyncio.Queue[float]] = [asyncio.Queue() for _ in range(clients)]
        tasks = [asyncio.create_task(listen(client, r, q)) for r, q in zip(readies, inboxes, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        await asyncio.sleep(0.5)
        latencies: list[float] = []
        async with httpx.AsyncClient(
            base_url=a.url + "/api/v1", headers={"Authorization": f"Bearer {api_token(a)}"}, timeout=30
        ) as api:
            for i in range(calls):
                for q in inboxes:  # forget events from the previous call's later steps
                    while not q.empty():
                        q.get_nowait()
                started = time.monotonic()
                r = await api.post(
                    "/calls", json={"peer": b.name, "subject": f"bench {i}", "priority": "flash"}
                )
                r.raise_for_status()
                for q in inboxes:
                    at = await asyncio.wait_for(q.get(), 30)
                    latencies.append((at - started) * 1000)
                await asyncio.sleep(0.3)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def api_token(s: StationProcess) -> str:
    return (s.home / "api-token").read_text().strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    clients, calls = max(1, min(args.clients, 1000)), max(1, min(args.calls, 200))
    root = Path(tempfile.mkdtemp(prefix="openline-bench-console-"))
    a, b = StationProcess.create(root, "stuttgart"), StationProcess.create(root, "moscow")
    try:
        a.start()
        b.start()
        connect(a, b)
        subprocess.run(
            [*OPENLINE, "user", "add", "boris", "--role", "watch_officer", "--password-stdin"],
            env=b.env(),
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        login = httpx.post(b.url + "/login", data={"username": "boris", "password": PASSWORD}, timeout=30)
        cookie = login.cookies.get("openline_session")
        if login.status_code != 303 or not cookie:
            raise RuntimeError(f"login failed: HTTP {login.status_code}")
        print(f"{clients} clients on moscow's event stream; {calls} calls from stuttgart ...", flush=True)
        many = asyncio.run(measure(b, a, cookie, clients, calls))
        print("baseline: one client ...", flush=True)
        one = asyncio.run(measure(b, a, cookie, 1, calls))
    finally:
        for s in (a, b):
            if s.proc is not None:
                s.stop()
        shutil.rmtree(root, ignore_errors=True)
    p99 = percentile(many, 99)
    print()
    print(
        f"call placed -> event on every one of {clients} clients: p50 {percentile(many, 50):.0f} ms, "
        f"p99 {p99:.0f} ms, max {max(many):.0f} ms ({len(many)} deliveries)"
        f"  target p99 <= {TARGET_P99_MS:.0f} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'}"
    )
    print(f"baseline, one client: p50 {percentile(one, 50):.0f} ms, p99 {percentile(one, 99):.0f} ms")
    print("* includes station-to-station delivery of the call (signed, sealed, stored, receipted)")


if __name__ == "__main__":
    main()
