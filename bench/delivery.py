"""Delivery benchmark: envelopes per second between two stations on loopback, and latency.

Two real `openline serve` processes (SQLite, synchronous=FULL) on 127.0.0.1 with an
active line and a picked-up call. Every message is one envelope: signed and sealed (to
the peer and to ourselves), committed to the outbox with its state change, sent in a
batch of <= 50, verified, opened, stored and receipted by the peer in one transaction,
and settled when the sender has verified the receipt and recorded it.

Baselines, measured in the same run (the ratios hold on a noisy machine):

* crypto ceiling: the core crypto each envelope needs, without I/O, in one thread. Stages:
  enqueue (seal twice, sign), receive (verify, open, sign the receipt), settle (verify
  the receipt). Reported on one core; with the two stations' halves on a core each; and
  for the drain, where one batch is in flight per line and the sender settles each
  answered batch while the peer receives the next, so the receiving side bounds it.
* bare HTTP: uvicorn + httpx with an empty ASGI handler, the same client threads as the
  load, plus sequential round-trip latency.

Station figures:

* latency at a steady rate: messages POSTed on a fixed schedule. Latency runs from each
  message's scheduled send time (so a slow POST cannot hide queueing) to the sender's
  `delivered_at`, when it recorded the peer's verified receipt (read from its database:
  the API shows receipts, not when the sender got them; the stamp is taken as the
  settling transaction starts, one commit before it is visible).
* CPU per message at that rate: user + system CPU of the sender, the receiver and the
  load client (all threads, from /proc), over the latency phase until the outbox is
  empty, divided by the messages. Steadier than p99 on a noisy machine, and what p99
  follows: a station whose threads keep one core busy queues every message behind them.
* end to end: N messages POSTed through the API as fast as the client threads go, both
  stations up; from the first POST until the sender's outbox is empty.
* API ingest and deliverer drain: N messages POSTed while the peer is stopped (each POST
  commits a signed, sealed envelope), then the peer is started and the backlog drained.
  The drain rate is counted between the first and last batch timestamps (the receiver's
  receipt `stored_at`, the sender's `delivered_at`), so the peer's start-up is excluded.
  CPU per envelope in the drain: each station's user + system CPU from the moment the
  peer answers until the outbox is empty, divided by the backlog; the crypto stages
  measured alone are its floor. Steadier than the rate, which swings with the machine.

Targets (issue): >= 2,000 envelopes/s sustained; p99 <= 50 ms at 100 envelopes/s. The
benchmark prints figures and asserts nothing: timing belongs here, not in tests.

Run from the repository root: `.venv/bin/python bench/delivery.py` (`make bench`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the benchmark reuses the end-to-end test harness

import httpx  # noqa: E402
from tests.harness import StationProcess, connect, wait_for  # noqa: E402
from tests.ports import free_port  # noqa: E402

from openline.core.clock import parse_rfc3339, rfc3339  # noqa: E402
from openline.core.envelope import (  # noqa: E402
    make_envelope,
    make_receipt,
    open_sealed,
    verify_envelope,
    verify_receipt,
)
from openline.core.keys import StationKeys  # noqa: E402

TEXT = "Convoy of 12 trucks moving north on route 4 at 14:00Z, clear of grid 38T LN 1234 5678."
TARGET_RATE = 2000.0
TARGET_P99_MS = 50.0


# Figures -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rate(x: float) -> str:
    return f"{x:,.0f}/s"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def spread(values: list[float]) -> str:
    return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}"


def met(ok: bool, target: str) -> str:
    return f"{target} ({'met' if ok else 'MISSED'})"


@dataclass
class Report:
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, value: str, baseline: str = "", ratio: str = "", target: str = "") -> None:
        self.rows.append((figure, value, baseline, ratio, target))
        print(f"  {figure}: {value}", flush=True)

    def print(self) -> None:
        head = ("figure", "value", "baseline", "ratio", "target")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(len(head))]
        print()
        for r in [head, tuple("-" * w for w in widths), *self.rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        for note in self.notes:
            print(f"* {note}")


# Crypto ceiling ----------------------------------------------------------------------


@dataclass
class CryptoCost:
    """Seconds per envelope of each stage's core crypto."""

    enqueue: float
    receive: float
    settle: float
    samples: int

    @property
    def one_core(self) -> float:
        return 1 / (self.enqueue + self.receive + self.settle)

    @property
    def two_stations(self) -> float:
        return 1 / max(self.enqueue + self.settle, self.receive)

    @property
    def drain(self) -> float:
        """One batch in flight, settled while the next is received: the receiver bounds it."""
        return 1 / max(self.receive, self.settle)


def crypto_cost(seconds: float, max_envelopes: int = 20_000) -> CryptoCost:
    sender, receiver = StationKeys.generate(), StationKeys.generate()
    sender_pub, receiver_pub = sender.signing.public_key(), receiver.signing.public_key()
    recipient = receiver.encryption.public_key()
    stamp = rfc3339(time.time_ns() // 1000) or ""
    totals = [0.0, 0.0, 0.0]
    n = 0
    deadline = time.perf_counter() + seconds
    while n < max_envelopes and time.perf_counter() < deadline:
        n += 1
        t0 = time.perf_counter()
        env, _self_copy = make_envelope(
            sender,
            recipient=recipient,
            envelope_id=f"01900000-0000-7000-8000-{n:012d}",
            line="0" * 32,
            sender="stuttgart",
            receiver="moscow",
            seq=n,
            time=stamp,
            kind="call.say",
            ref=None,
            body={"text": TEXT, "lang": "en"},
        )
        t1 = time.perf_counter()
        sealed = verify_envelope(env, sender_pub)
        open_sealed(sealed, receiver.encryption, env.header)
        receipt = make_receipt(receiver, env, stamp)
        t2 = time.perf_counter()
        verify_receipt(receipt, env, receiver_pub)
        t3 = time.perf_counter()
        totals[0] += t1 - t0
        totals[1] += t2 - t1
        totals[2] += t3 - t2
    return CryptoCost(totals[0] / n, totals[1] / n, totals[2] / n, n)


# Bare HTTP ---------------------------------------------------------------------------


async def _empty_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI app can do for a POST: read the body, answer `{}`."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


def serve_empty(port: int) -> None:
    import uvicorn

    from openline import serve

    # The event loop and HTTP parser `openline serve` runs uvicorn with.
    uvicorn.run(
        _empty_app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop=serve.EVENT_LOOP,
        http=serve.HTTP_PARSER,
    )


def gc_pause(home: str) -> None:
    """Print the pause of a full cyclic collection over a station's heap as `openline
    serve` builds it, before and after serve freezes that heap (median of three each), in
    a process of its own so that only the station's objects are counted."""
    import gc

    from openline import serve
    from openline.settings import load

    app = serve.build(load(Path(home)))

    def full() -> float:
        started = time.perf_counter()
        gc.collect()
        return time.perf_counter() - started

    tracked = len(gc.get_objects())
    before = sorted(full() for _ in range(3))[1]
    serve.freeze_heap()
    after = sorted(full() for _ in range(3))[1]
    print(json.dumps({"before": before, "after": after, "objects": tracked}))
    app.state.station.db.dispose()


def gc_pauses(home: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--gc-pause", str(home)], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"measuring the collector's pause failed: {out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_load(
    make_client: Callable[[], httpx.Client],
    request: Callable[[httpx.Client, int], Any],
    count: int,
    threads: int,
    timeout: float,
) -> tuple[int, float, list[float]]:
    """`count` requests from `threads` client threads: (done, seconds, each request's seconds)."""
    counter = itertools.count()
    lock = threading.Lock()
    durations: list[float] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + timeout

    def worker() -> None:
        mine: list[float] = []
        try:
            with make_client() as client:
                while time.monotonic() < deadline:
                    with lock:
                        i = next(counter)
                    if i >= count:
                        break
                    t0 = time.perf_counter()
                    request(client, i)
                    mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # re-raised by the caller
            errors.append(exc)
        with lock:
            durations.extend(mine)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout + 30)
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"load failed: {errors[0]!r}") from errors[0]
    return len(durations), elapsed, durations


@dataclass
class BareHttp:
    rate: float  # round trips per second, several client threads
    sequential: list[float]  # back to back, seconds each
    paced: list[float]  # one every PACED_GAP seconds, as a steady rate leaves both sides idle


PACED_GAP = 0.01  # the gap between messages at 100/s
PACED_COUNT = 300


def bare_http(count: int, threads: int) -> BareHttp:
    """Round trips per second with `threads` clients; sequential round-trip times back to
    back, and with a pause before each. On a virtual machine whose idle vCPUs halt, the
    paced figure shows what waking them costs: every hand-off between threads or
    processes in a station's message path can pay it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-empty", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    body = {"text": TEXT, "lang": "en"}

    def make_client() -> httpx.Client:
        return httpx.Client(timeout=10, trust_env=False)

    def request(client: httpx.Client, _i: int) -> None:
        client.post(url, json=body).raise_for_status()

    try:
        wait_for(lambda: _answers(url), timeout=15, what="the empty HTTP server")
        run_load(make_client, request, 200, threads, timeout=30)  # warm up
        done, elapsed, _ = run_load(make_client, request, count, threads, timeout=60)
        _, _, sequential = run_load(make_client, request, min(2000, count), 1, timeout=30)
        paced: list[float] = []
        with make_client() as client:
            for _ in range(PACED_COUNT):  # bounded: 300 requests, about 3 s
                time.sleep(PACED_GAP)
                start = time.perf_counter()
                request(client, 0)
                paced.append(time.perf_counter() - start)
        return BareHttp(done / elapsed, sequential, paced)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _answers(url: str) -> bool:
    try:
        httpx.post(url, content=b"{}", timeout=1, trust_env=False)
        return True
    except httpx.HTTPError:
        return False


# Two stations ------------------------------------------------------------------------


@dataclass
class Pair:
    a: StationProcess  # sends the messages
    b: StationProcess  # receives them
    call_id: str = ""

    def client(self) -> httpx.Client:
        return self.a.api()

    def say(self, client: httpx.Client, i: int) -> str:
        resp = client.post(f"/calls/{self.call_id}/messages", json={"text": f"{TEXT} #{i}"})
        if resp.status_code != 201:
            raise RuntimeError(f"POST message: HTTP {resp.status_code}: {resp.text[:300]}")
        return str(resp.json()["id"])

    def outbox_depth(self) -> int:
        with self.client() as c:
            return sum(int(x["outbox_depth"]) for x in c.get("/lines").raise_for_status().json())

    def wait_drained(self, timeout: float, interval: float = 0.1) -> float:
        """Poll until the sender's outbox is empty; the monotonic time it was seen empty."""
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while time.monotonic() < deadline:
                if all(int(x["outbox_depth"]) == 0 for x in c.get("/lines").raise_for_status().json()):
                    return time.monotonic()
                time.sleep(interval)
        raise RuntimeError(f"the outbox did not drain within {timeout:.0f} s")

    def stamps(self, ids: list[str]) -> dict[str, tuple[float, float]]:
        """Envelope id -> (receiver's receipt stored_at, sender's delivered_at), epoch seconds."""
        db = sqlite3.connect(self.a.home / "openline.db", timeout=30)
        try:
            out: dict[str, tuple[float, float]] = {}
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                rows = db.execute(
                    "SELECT id, delivered_at, receipt FROM envelopes "  # noqa: S608 (placeholders only)
                    f"WHERE id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                for env_id, delivered_at, receipt in rows:
                    if delivered_at is None or receipt is None:
                        raise RuntimeError(f"envelope {env_id} has no receipt")
                    stored_at = parse_rfc3339(json.loads(receipt)["stored_at"])
                    out[env_id] = (stored_at / 1e6, delivered_at / 1e6)
        finally:
            db.close()
        if len(out) != len(ids):
            raise RuntimeError(f"{len(ids) - len(out)} envelopes missing from the sender's outbox")
        return out

    def start(self) -> None:
        self.a.start()
        self.b.start()
        connect(self.a, self.b)
        with self.a.api() as ca, self.b.api() as cb:
            placed = ca.post(
                "/calls", json={"peer": self.b.name, "subject": "Benchmark", "priority": "routine"}
            )
            self.call_id = str(placed.raise_for_status().json()["id"])

            def state(client: httpx.Client) -> str | None:
                resp = client.get(f"/calls/{self.call_id}")
                return str(resp.json()["state"]) if resp.status_code == 200 else None

            wait_for(lambda: state(cb) == "ringing", what="the call ringing at the peer")
            cb.post(f"/calls/{self.call_id}/pickup").raise_for_status()
            wait_for(lambda: state(ca) == "picked_up", what="the pick-up seen by the caller")
        self.wait_drained(30)

    def stop(self) -> None:
        for s in (self.a, self.b):
            if s.proc is not None:
                try:
                    s.stop(30)
                except subprocess.TimeoutExpired:
                    s.kill()


def paced(pair: Pair, per_second: float, seconds: float, threads: int) -> list[tuple[str, float, float]]:
    """POST on a fixed schedule: (id, scheduled epoch seconds, POST seconds) per message."""
    count = round(per_second * seconds)
    lead = 0.2
    t0_wall, t0 = time.time() + lead, time.perf_counter() + lead
    out: list[tuple[str, float, float]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            with pair.client() as client:
                for i in range(k, count, threads):
                    pause = t0 + i / per_second - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    start = time.perf_counter()
                    env_id = pair.say(client, i)
                    with lock:
                        out.append((env_id, t0_wall + i / per_second, time.perf_counter() - start))
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 60)
    if errors:
        raise RuntimeError(f"paced load failed: {errors[0]!r}") from errors[0]
    return out


def batch_rate(stamps: list[float], *, stamped_at_start: bool) -> float:
    """Envelopes per second between the first and the last batch timestamp.

    Every envelope of a batch carries its batch's stamp. A stamp taken as a batch starts
    (the receiver's stored_at) leaves the last batch outside the interval; one taken as
    it ends (the sender's delivered_at) leaves the first batch outside."""
    groups = Counter(stamps)
    first, last = min(groups), max(groups)
    if first == last:
        raise RuntimeError("every envelope went in one batch: run with more --envelopes")
    outside = groups[last] if stamped_at_start else groups[first]
    return (len(stamps) - outside) / (last - first)


# The run -----------------------------------------------------------------------------


def measure(
    pair: Pair,
    args: argparse.Namespace,
    report: Report,
    http_rate: float,
    http_seq: list[float],
    crypto: CryptoCost,
) -> None:
    if args.phase in ("all", "latency"):
        latency(pair, args, report, http_seq)
    if args.phase in ("all", "end-to-end"):
        end_to_end(pair, args, report, http_rate, crypto)
    if args.phase in ("all", "drain"):
        drain(pair, args, report, http_rate, crypto)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds a process has used (this one when pid is None), all threads."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency(pair: Pair, args: argparse.Namespace, report: Report, http_seq: list[float]) -> None:
    print(f"latency: {args.rate:.0f} messages/s for {args.seconds:.0f} s ...", flush=True)
    assert pair.a.proc is not None
    assert pair.b.proc is not None
    pids = {"sender": pair.a.proc.pid, "receiver": pair.b.proc.pid, "load client": None}
    before = {who: cpu_seconds(pid) for who, pid in pids.items()}
    sent = paced(pair, args.rate, args.seconds, threads=4)
    pair.wait_drained(60)
    # Counted until the outbox is empty: the sender's settling of the last batches belongs
    # to the messages (the idle polling of wait_drained adds a little to every figure).
    used = {who: (cpu_seconds(pid) - before[who]) / len(sent) for who, pid in pids.items()}
    marks = pair.stamps([s[0] for s in sent])
    settled = [marks[i][1] - at for i, at, _ in sent]
    stored = [marks[i][0] - at for i, at, _ in sent]
    p99 = percentile(settled, 99)
    at = f"at {args.rate:.0f}/s"
    report.add(
        f"latency {at}: POST -> receipt recorded, p50",
        ms(percentile(settled, 50)),
        f"bare HTTP {ms(percentile(http_seq, 50))}",
        f"{percentile(settled, 50) / percentile(http_seq, 50):.0f}x",
    )
    report.add(
        f"latency {at}: POST -> receipt recorded, p99",
        ms(p99),
        f"bare HTTP {ms(percentile(http_seq, 99))}",
        f"{p99 / percentile(http_seq, 99):.0f}x",
        met(p99 * 1e3 <= TARGET_P99_MS, f"<= {TARGET_P99_MS:.0f} ms"),
    )
    report.add(f"latency {at}: POST -> stored at peer, p50 / p99", spread(stored))
    report.add(
        f"latency {at}: the POST itself, p50 / p99",
        spread([d for _, _, d in sent]),
        f"{len(sent)} messages in {args.seconds:.0f} s",
    )
    report.add(
        f"CPU per message {at}: sender / receiver / load client",
        " / ".join(ms(used[who]) for who in pids),
        "user + system, all threads",
    )


def end_to_end(
    pair: Pair, args: argparse.Namespace, report: Report, http_rate: float, crypto: CryptoCost
) -> None:
    n, threads = args.envelopes, args.threads
    print(f"end to end: {n} messages through the API, both stations up ...", flush=True)
    start = time.monotonic()
    done, _, _ = run_load(pair.client, pair.say, n, threads, timeout=120)
    e2e = done / (pair.wait_drained(120) - start)
    report.add(
        f"end to end: POST -> receipted, {threads} client threads",
        rate(e2e),
        f"bare HTTP {rate(http_rate)}",
        f"{e2e / http_rate:.2f}",
        met(e2e >= TARGET_RATE, f">= {TARGET_RATE:,.0f}/s"),
    )
    report.add(
        "  the same, against the crypto ceiling",
        "",
        f"crypto, one core {rate(crypto.one_core)}",
        f"{e2e / crypto.one_core:.2f}",
    )


def drain(pair: Pair, args: argparse.Namespace, report: Report, http_rate: float, crypto: CryptoCost) -> None:
    n, threads = args.envelopes, args.threads
    print(f"backlog: {n} messages with the peer stopped, then the drain ...", flush=True)
    pair.b.stop()
    ids: list[str] = []
    done, elapsed, _ = run_load(pair.client, lambda c, i: ids.append(pair.say(c, i)), n, threads, 120)
    depth = pair.outbox_depth()
    pair.b.start()
    assert pair.a.proc is not None
    assert pair.b.proc is not None
    pids = {"sender": pair.a.proc.pid, "receiver": pair.b.proc.pid}
    before = {who: cpu_seconds(pid) for who, pid in pids.items()}  # the peer is up: start-up excluded
    with pair.b.api() as cb:  # the peer contacting us drops our backoff at once
        cb.post(f"/calls/{pair.call_id}/messages", json={"text": "Back on the line."}).raise_for_status()
    pair.wait_drained(180)
    used = {who: (cpu_seconds(pid) - before[who]) / depth for who, pid in pids.items()}
    marks = pair.stamps(ids)
    drain_stored = batch_rate([m[0] for m in marks.values()], stamped_at_start=True)
    drain_settled = batch_rate([m[1] for m in marks.values()], stamped_at_start=False)
    report.add(
        f"API ingest: POST -> enqueued, peer down, {threads} threads",
        rate(done / elapsed),
        f"bare HTTP {rate(http_rate)}",
        f"{done / elapsed / http_rate:.2f}",
    )
    report.add(
        f"deliverer drain of {depth}: stored at peer",
        rate(drain_stored),
        f"crypto, drain {rate(crypto.drain)}",
        f"{drain_stored / crypto.drain:.2f}",
        met(drain_stored >= TARGET_RATE, f">= {TARGET_RATE:,.0f}/s"),
    )
    report.add(
        f"deliverer drain of {depth}: receipted at sender",
        rate(drain_settled),
        f"crypto, drain {rate(crypto.drain)}",
        f"{drain_settled / crypto.drain:.2f}",
    )
    report.add(
        "CPU per envelope in the drain: sender / receiver",
        " / ".join(f"{used[who] * 1e6:.0f} µs" for who in pids),
        f"crypto: settle {crypto.settle * 1e6:.0f} µs, receive {crypto.receive * 1e6:.0f} µs",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envelopes", type=int, default=6000, help="messages per throughput phase")
    parser.add_argument("--threads", type=int, default=4, help="client threads for the throughput phases")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second, latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument(
        "--phase",
        choices=("all", "latency", "end-to-end", "drain"),
        default="all",
        help="run one station phase only (the baselines always run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the station homes and logs")
    parser.add_argument("--serve-empty", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--gc-pause", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_empty:
        serve_empty(args.serve_empty)
        return
    if args.gc_pause:
        gc_pause(args.gc_pause)
        return
    args.envelopes = max(200, min(args.envelopes, 50_000))
    args.threads = max(1, min(args.threads, 32))
    args.seconds = max(1.0, min(args.seconds, 60.0))
    report = Report()
    started = time.monotonic()

    print("crypto ceiling ...", flush=True)
    crypto = crypto_cost(3.0)
    stages = (
        f"enqueue {crypto.enqueue * 1e6:.0f} µs, receive {crypto.receive * 1e6:.0f} µs, "
        f"settle {crypto.settle * 1e6:.0f} µs"
    )
    report.add("crypto ceiling, one core", rate(crypto.one_core), stages)
    report.add(
        "crypto ceiling, two stations on a core each", rate(crypto.two_stations), "enqueue + settle ‖ receive"
    )
    report.add("crypto ceiling, drain", rate(crypto.drain), "receive ‖ settle, one batch in flight")

    print("bare HTTP ...", flush=True)
    bare = bare_http(min(args.envelopes, 10_000), args.threads)
    http_rate, http_seq = bare.rate, bare.sequential
    report.add(
        f"bare HTTP round trips, {args.threads} client threads",
        rate(http_rate),
        "uvicorn + httpx, empty ASGI app",
    )
    report.add("bare HTTP round trip, sequential, p50 / p99", spread(http_seq))
    report.add(
        f"bare HTTP round trip, one every {PACED_GAP * 1e3:.0f} ms, p50 / p99",
        spread(bare.paced),
        "waking idle vCPUs",
        f"{percentile(bare.paced, 50) / percentile(http_seq, 50):.1f}x",
    )

    root = Path(tempfile.mkdtemp(prefix="openline-bench-"))
    pair = Pair(StationProcess.create(root, "stuttgart"), StationProcess.create(root, "moscow"))
    try:
        print("the collector's pause ...", flush=True)
        pauses = gc_pauses(pair.a.home)
        report.add(
            f"full collection over a station's heap ({pauses['objects']:,.0f} objects), frozen as serve does",
            ms(pauses["after"]),
            f"not frozen: {ms(pauses['before'])}",
        )
        print("two stations ...", flush=True)
        pair.start()
        measure(pair, args, report, http_rate, http_seq, crypto)
    except BaseException:
        for s in (pair.a, pair.b):
            if s.log_path.exists():
                print(f"--- {s.name} log, last lines ---\n{s.log_path.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        pair.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    report.notes += [
        "SQLite with synchronous=FULL: every commit is fsynced",
        "latency runs from each message's scheduled send time; 'receipt recorded' is the sender's "
        "delivered_at, 'stored at peer' the receipt's stored_at",
        "end to end is bounded by the API's per-request cost; the drain shows the deliverer and inbox alone",
        f"two stations and this client share {len(os.sched_getaffinity(0))} cores; "
        f"the run took {time.monotonic() - started:.0f} s",
    ]
    report.print()


if __name__ == "__main__":
    main()
