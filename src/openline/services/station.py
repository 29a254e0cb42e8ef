"""What every use case needs to know about its own station, passed explicitly."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Insert, Table, insert

from openline.adapters.db import Database, announce
from openline.core.card import Card
from openline.core.clock import Clock
from openline.core.keys import StationKeys


@dataclass
class Tx:
    """A write transaction plus what to do once it has committed."""

    conn: Connection
    now: int
    wake_lines: set[str] = field(default_factory=set)  # their deliverers look again now
    queued_lines: set[str] = field(default_factory=set)  # envelopes queued: wake unless backing off
    new_deadline: bool = False  # a deadline was set: the timer loop must look again
    touched: set[str] = field(default_factory=set)  # what the console shows changed: calls, alerts
    ledger_grew: bool = False  # entries were appended: the integrator has work
    # Rows read more than once in this transaction (a batch often holds many envelopes for
    # one call); whoever writes such a row drops it from here.
    memo: dict[Any, Any] = field(default_factory=dict)
    _later: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    _after: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, do: Callable[[], None]) -> None:
        """Call `do` once this transaction has committed, and never if it rolls back: for
        what says a change is done (a log line "alert raised"), which must not be said of
        one that was not stored (a full disk rolls most transactions back)."""
        self._after.append(do)

    def insert_later(self, table: Table, row: dict[str, Any]) -> None:
        """Insert `row` when the use case ends, still inside this transaction.

        For rows nothing reads back before the commit (envelopes received, event log
        entries): they go to the database in one executemany per table,
        in the order they were added, instead of one statement each.
        """
        self._later.append((table, row))

    def flush(self) -> None:
        """One executemany per table, tables in the order their first row was added (rows
        added later never refer to rows of a table first used after theirs)."""
        by_table: dict[Table, list[dict[str, Any]]] = {}
        for table, row in self._later:
            by_table.setdefault(table, []).append(row)
        for table, rows in by_table.items():
            self.conn.execute(_insert(table), rows)
        self._later.clear()


@functools.cache
def _insert(table: Table) -> Insert:
    """The table's INSERT, built once (building a statement costs more than running it)."""
    return insert(table)


@dataclass(frozen=True)
class NotifyConfig:
    """Where notifications can go besides the console (from the station's settings)."""

    webhook_urls: tuple[str, ...] = ()
    email: bool = False  # an SMTP server is configured
    console_url: str | None = None  # for links in notifications


@dataclass
class Station:
    name: str
    keys: StationKeys
    card: Card
    db: Database
    clock: Clock
    answer_deadline_s: int = 60
    line_down_after_s: int = 30  # services/line_health.py
    line_check_s: int = 300  # delivery.check_line
    clock_skew_alert_s: float = 5.0  # services/peer_clock.py
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    time_zone: str = "UTC"  # local time shown beside UTC
    on_commit: list[Callable[[Tx], None]] = field(default_factory=list)
    # services/moves.py: peer -> when a handshake at an address it named last failed.
    probe_failed_at: dict[str, int] = field(default_factory=dict)
    # services/lines.py: peer -> the nonces of its latest handshakes (oldest first).
    handshake_nonces: dict[str, dict[str, None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """Run a use case in one write transaction; once it has committed, do what it left
        for then (`Tx.after_commit`) and tell the background workers what it changed
        (`on_commit`)."""
        with self.db.write() as conn:
            tx = Tx(conn, self.clock.now())
            yield tx
            tx.flush()
            if tx.touched:  # other processes sharing the database hear of it at commit
                announce(conn, json.dumps(sorted(tx.touched)))
        for do in tx._after:
            do()
        if tx.wake_lines or tx.queued_lines or tx.new_deadline or tx.touched or tx.ledger_grew:
            for hook in self.on_commit:
                hook(tx)
