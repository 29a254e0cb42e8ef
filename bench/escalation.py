"""Escalation benchmark: 10,000 calls ringing at once, every one with a step due.

One station (SQLite, synchronous=FULL) with its real timer loop on the system clock.
10,000 inbound calls are ringing, each with the default policy copied onto it and its
next escalation step due at the same instant a few seconds ahead; an officer is on duty.
The timer loop fires every step: it resolves the recipients from the roster, writes the
console notifications and the `escalated` event-log entry, and schedules the next step.
Lateness is what the engine records for each step (`late_ms`: when it fired minus when
it was due), so it includes the time a step waited behind the others.

Baseline, same run: inserting the same number of event-log rows with plain SQLAlchemy
Core executemany in one transaction (the storage floor for writing one row per step).

Target (issue): lateness p99 <= 1 s. Prints figures, asserts nothing.
Run from the repository root: `.venv/bin/python bench/escalation.py` (`make bench`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select, update  # noqa: E402

from openline.adapters.schema import call_events, calls, lines, shifts  # noqa: E402
from openline.core import escalation as esc  # noqa: E402
from openline.core.clock import MICROS, SystemClock  # noqa: E402
from openline.runtime import build_station  # noqa: E402
from openline.services import accounts, outbox  # noqa: E402
from openline.services.setup import init_home  # noqa: E402
from openline.services.timers import TimerLoop  # noqa: E402
from openline.settings import load  # noqa: E402

TARGET_P99_S = 1.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    n = max(100, min(args.calls, 100_000))
    root = Path(tempfile.mkdtemp(prefix="openline-bench-esc-"))
    init_home(root / "moscow", "moscow", "http://127.0.0.1:9")
    station = build_station(load(root / "moscow"), clock=SystemClock())
    now = station.clock.now()
    with station.tx() as tx:
        duty = accounts.create_user(
            tx.conn, now, "duty", accounts.Role.WATCH_OFFICER, "a long passphrase here"
        )
        tx.conn.execute(
            insert(shifts).values(
                user_id=duty,
                start_local=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // MICROS - 3600)),
                tz="UTC",
                duration_s=12 * 3600,
                rrule=None,
                created_at=now,
            )
        )
        from openline.adapters.schema import peers

        tx.conn.execute(
            insert(peers).values(
                name="stuttgart",
                card="{}",
                signing_key="k",
                encryption_key="k",
                fingerprint="f",
                url="http://127.0.0.1:9",
                pinned_at=now,
            )
        )
        tx.conn.execute(
            insert(lines).values(
                id="0" * 32,
                peer="stuttgart",
                state="active",
                answer_deadline_s=3600,
                created_at=now,
                next_out_seq=1,
                next_in_seq=1,
                retry_attempt=0,
            )
        )
    due = now + 3 * MICROS
    policy = esc.DEFAULT_POLICY.dumps()
    rows = [
        {
            "id": outbox.new_id(),
            "line_id": "0" * 32,
            "peer": "stuttgart",
            "direction": "in",
            "priority": "flash",
            "state": "ringing",
            "place_envelope_id": outbox.new_id(),
            "placed_at": now,
            "delivered_at": now,
            "ringing_at": now,
            "deadline_at": now + 3600 * MICROS,
            "updated_at": now,
            "escalation": policy,
            "escalation_step": 0,
            "escalation_round": 0,
            "next_escalation_at": due,
        }
        for _ in range(n)
    ]
    with station.tx() as tx:
        tx.conn.execute(insert(calls), rows)

    # Baseline: the storage floor for one event-log row per step, in one transaction.
    baseline_rows = [
        {
            "call_id": r["id"],
            "at": now,
            "event": "baseline",
            "actor": "bench",
            "envelope_id": None,
            "detail": json.dumps({"step": "round 1, step 1", "recipients": ["duty"]}),
        }
        for r in rows
    ]
    t0 = time.perf_counter()
    with station.tx() as tx:
        tx.conn.execute(insert(call_events), baseline_rows)
    floor = time.perf_counter() - t0
    with station.tx() as tx:
        tx.conn.execute(call_events.delete().where(call_events.c.event == "baseline"))

    loop = TimerLoop(station)
    print(f"{n} calls ringing, every first step due at the same instant; timer loop running ...", flush=True)
    loop.start()
    t0 = time.monotonic()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with station.db.read() as conn:
                left = conn.execute(
                    select(calls.c.id).where(calls.c.next_escalation_at <= due).limit(1)
                ).first()
            if left is None and time.monotonic() - t0 > 3.5:
                break
            time.sleep(0.1)
    finally:
        loop.stop()
    with station.db.read() as conn:
        late = [
            json.loads(d)["late_ms"] / 1000
            for (d,) in conn.execute(select(call_events.c.detail).where(call_events.c.event == "escalated"))
        ]
        notified = conn.execute(select(calls.c.id).where(calls.c.escalation_step == 1)).all()
    with station.tx() as tx:  # leave nothing ringing behind
        tx.conn.execute(update(calls).values(state="closed", next_escalation_at=None))
    station.db.dispose()

    fired_in = max(late) if late else float("nan")
    rate = len(late) / fired_in if late and fired_in > 0 else float("nan")
    print()
    print(f"steps fired: {len(late)} of {n} (calls moved to step 2: {len(notified)})")
    p99 = percentile(late, 99)
    verdict = "met" if p99 <= TARGET_P99_S else "MISSED"
    print(
        f"lateness p50 {percentile(late, 50):.3f} s, p99 {p99:.3f} s, max {fired_in:.3f} s"
        f"  (target p99 <= {TARGET_P99_S:.0f} s: {verdict})"
    )
    print(
        f"engine: {rate:,.0f} steps/s; baseline: {n / floor:,.0f} event-log rows/s, one transaction"
        f" ({rate / (n / floor):.2f} of it)"
    )
    print("* SQLite with synchronous=FULL; each step also writes a console notification and updates its call")


if __name__ == "__main__":
    main()
