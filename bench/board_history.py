"""The watch board after a year: what one render costs as the station's history grows.

Two in-process stations (SQLite, the real console app, a watch officer logged in on
moscow) with one call ringing at moscow and one notice waiting for its answer. Then a
year of a busy line is written straight into moscow's tables: `--calls` closed calls
(each with its own place envelope, a copy of the real one so that its subject opens),
twice as many message envelopes, `--calls` acknowledged alerts, notifications and
acknowledged notices. Figures: `GET /` (the board page, with everything it reads: lines
and outboxes, ringing calls, recent calls, open alerts, notices waiting, the roster) and
`lines.list_lines`, the mean of 20 renders each.

Baselines, same run: the same page before the history was written (what it should still
cost), and after it with migration 0015's indexes dropped and the outbox counted as it
was before 2026-11-28 (a grouped scan of every envelope): what a year of history cost
the board before.

Prints figures, asserts nothing. Run from the repository root:
`.venv/bin/python bench/board_history.py [--calls N]`.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the in-process stations of the tests

from sqlalchemy import func, select  # noqa: E402
from tests.inproc import linked_pair  # noqa: E402
from tests.test_board_floods import officer_with_a_call_and_a_notice  # noqa: E402

from openline.adapters.schema import envelopes, lines, peers  # noqa: E402
from openline.core.clock import FakeClock  # noqa: E402
from openline.services import lines as line_service  # noqa: E402

INDEXES = (
    "ix_calls_placed",
    "ix_notices_created",
    "ix_notifications_created",
    "ix_alerts_open",
    "ix_handovers_pending",
)
YEAR_US = 365 * 86_400 * 1_000_000

# The outbox as `list_lines` counted it until 2026-11-28: grouped over every envelope.
_DEPTH = (
    select(envelopes.c.line_id, func.count().label("n"), func.min(envelopes.c.time).label("oldest"))
    .where(envelopes.c.direction == "out", envelopes.c.delivered_at.is_(None))
    .group_by(envelopes.c.line_id)
    .subquery()
)
_LINES_BEFORE = (
    select(lines, peers.c.fingerprint, peers.c.url, _DEPTH.c.n, _DEPTH.c.oldest)
    .join(peers, peers.c.name == lines.c.peer)
    .outerjoin(_DEPTH, _DEPTH.c.line_id == lines.c.id)
    .order_by(lines.c.peer)
)


def mean_ms(fn: Callable[[], Any], rounds: int = 20) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - started) / rounds * 1000


def history(db: Path, calls: int, start: int) -> None:
    """A year of a busy line, written straight into the tables."""
    conn = sqlite3.connect(db)
    line_id, peer = conn.execute("SELECT id, peer FROM lines").fetchone()
    wire, self_body, kind = conn.execute(  # the call that rings here: the peer's
        "SELECT wire, self_body, kind FROM envelopes WHERE kind = 'call.place' AND direction = 'in'"
    ).fetchone()
    step = YEAR_US // (calls * 3)

    def ids() -> Iterator[str]:
        while True:
            yield str(uuid.uuid4())

    new = ids()
    call_ids = [next(new) for _ in range(calls)]
    place_ids = [next(new) for _ in range(calls)]
    rows = []
    for i in range(calls * 3):  # a call's place envelope and two messages, in turn
        at = start - YEAR_US + i * step
        env_id, env_kind = (place_ids[i // 3], kind) if i % 3 == 0 else (next(new), "call.say")
        direction = "in" if i % 3 == 0 else ("out" if i % 2 else "in")  # calls are the peer's, as the copy
        rows.append((env_id, line_id, direction, 1_000_000 + i, env_kind, call_ids[i // 3], at,
                     wire, self_body, at, at))  # fmt: skip
    conn.executemany(
        "INSERT INTO envelopes (id, line_id, direction, seq, kind, call_id, time, wire, self_body, "
        "stored_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(
        "INSERT INTO calls (id, line_id, peer, direction, priority, state, place_envelope_id, placed_at, "
        "closed_at, updated_at) VALUES (?, ?, ?, ?, 'routine', 'closed', ?, ?, ?, ?)",
        (
            (call_ids[i], line_id, peer, "in", place_ids[i], start - YEAR_US + i * 3 * step,
             start - YEAR_US + i * 3 * step + 60_000_000, start - YEAR_US + i * 3 * step)
            for i in range(calls)
        ),
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO alerts (kind, subject, detail, raised_at, acknowledged_at, acknowledged_by) "
        "VALUES ('missed_call', ?, '{}', ?, ?, 'duty')",
        (
            (call_ids[i], start - YEAR_US + i * 3 * step, start - YEAR_US + i * 3 * step + 1)
            for i in range(calls)
        ),
    )
    conn.executemany(
        "INSERT INTO notifications (id, call_id, kind, recipient, channel, address, title, text, "
        "created_at, status, attempts) "
        "VALUES (?, ?, 'ringing', 'duty', 'console', 'duty', 'Call', 'A call', ?, 'sent', 1)",
        ((next(new), call_ids[i], start - YEAR_US + i * 3 * step) for i in range(calls)),
    )
    conn.executemany(
        "INSERT INTO notices (id, series, version, line_id, peer, direction, category, state, created_by, "
        "created_at, starts_at, updated_at) VALUES (?, ?, 1, ?, ?, 'in', 'air_operation', 'acknowledged', "
        "'station', ?, ?, ?)",
        ((n, n, line_id, peer, at, at, at) for n, at in ((next(new), start - YEAR_US + i * 3 * step)
                                                         for i in range(calls))),
    )  # fmt: skip
    conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = linked_pair(Path(tmp), clock)
        console = officer_with_a_call_and_a_notice(a, b)

        def board() -> None:
            page = console.get("/")
            assert page.status_code == 200, page.text[-3000:]
            assert "Convoy at checkpoint 4" in page.text

        def listing() -> None:
            line_service.list_lines(b.station)

        fresh = mean_ms(board), mean_ms(listing)
        history(b.home / "openline.db", args.calls, clock.now())
        year = mean_ms(board), mean_ms(listing)
        with b.station.db.write() as conn:
            for name in INDEXES:
                conn.exec_driver_sql(f"DROP INDEX {name}")
        real = line_service._LINES
        line_service._LINES = _LINES_BEFORE  # type: ignore[assignment]
        try:
            before = mean_ms(board), mean_ms(listing)
        finally:
            line_service._LINES = real
    print(
        f"moscow after a year: {args.calls:,} calls, {args.calls * 3:,} envelopes, {args.calls:,} alerts, "
        f"notifications and notices"
    )
    for what, i in (("the board page (GET /)", 0), ("lines.list_lines", 1)):
        print(
            f"{what}: {year[i]:.1f} ms | baselines, same run: the same page on the day it was set up "
            f"{fresh[i]:.1f} ms ({year[i] / fresh[i]:.1f}x); with the history, without migration 0015's "
            f"indexes and with the outbox counted as before {before[i]:.1f} ms ({before[i] / year[i]:.1f}x)"
        )


if __name__ == "__main__":
    main()
