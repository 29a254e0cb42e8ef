"""Listing the lines as the history grows: what the watch board, a call's page, `openline
lines` and every metrics scrape pay.

A station made by `openline init` (SQLite) is given one line with `--envelopes`
delivered envelopes in both directions (its history) and `--waiting` outbound ones not
yet receipted (its outbox), written straight into the table. Figure: `lines.list_lines`,
the mean of 20 calls. Baseline, same run: the form it had before (the outbox counted by a
grouped scan of every envelope), and a bare `SELECT` of the lines.

Prints figures, asserts nothing. Run from the repository root:
`.venv/bin/python bench/lines_listing.py [--envelopes N] [--waiting N]`.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from openline.adapters.db import Database
from openline.adapters.schema import envelopes, lines, peers
from openline.services import lines as line_service

# The listing's outbox as it was until 2026-11-28: grouped over every envelope.
_DEPTH = (
    select(envelopes.c.line_id, func.count().label("n"), func.min(envelopes.c.time).label("oldest"))
    .where(envelopes.c.direction == "out", envelopes.c.delivered_at.is_(None))
    .group_by(envelopes.c.line_id)
    .subquery()
)
BEFORE = (
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envelopes", type=int, default=1_000_000)
    parser.add_argument("--waiting", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "station"
        subprocess.run(
            [sys.executable, "-m", "openline", "init", "--home", str(home), "--name", "bench",
             "--url", "http://127.0.0.1:9"],
            check=True, capture_output=True,
        )  # fmt: skip
        conn = sqlite3.connect(home / "openline.db")
        conn.execute(
            "INSERT INTO peers (name, card, signing_key, encryption_key, fingerprint, url, pinned_at) "
            "VALUES ('moscow', '{}', 'k', 'k', 'F', 'http://127.0.0.1:9', 0)"
        )
        conn.execute(
            "INSERT INTO lines (id, peer, state, answer_deadline_s, created_at, next_out_seq, next_in_seq, "
            "retry_attempt) VALUES ('l1', 'moscow', 'active', 60, 0, 1, 1, 0)"
        )
        total = args.envelopes + args.waiting
        wire = "x" * 600  # about an envelope's size
        conn.executemany(
            "INSERT INTO envelopes (id, line_id, direction, seq, kind, time, wire, stored_at, delivered_at) "
            "VALUES (?, 'l1', ?, ?, 'call.message', ?, ?, ?, ?)",
            (
                (str(uuid.uuid4()), "out" if i % 2 or i >= args.envelopes else "in", i + 1, i, wire, i,
                 None if i >= args.envelopes else i)
                for i in range(total)
            ),
        )  # fmt: skip
        conn.commit()
        conn.close()
        db = Database(f"sqlite:///{home / 'openline.db'}")
        try:
            station: Any = types.SimpleNamespace(db=db)
            [line] = line_service.list_lines(station)
            assert line["outbox_depth"] == args.waiting

            def before() -> None:
                with db.read() as c:
                    c.execute(BEFORE).all()

            def bare() -> None:
                with db.read() as c:
                    c.execute(select(lines)).all()

            now_ms = mean_ms(lambda: line_service.list_lines(station))
            before_ms, bare_ms = mean_ms(before), mean_ms(bare)
        finally:
            db.dispose()
    print(f"one line: {args.envelopes:,} envelopes delivered, {args.waiting:,} waiting")
    print(
        f"list_lines: {now_ms:.2f} ms | baseline, same run: the grouped scan it replaced {before_ms:.2f} ms"
        f" ({before_ms / now_ms:.0f}x), a bare SELECT of the lines {bare_ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
