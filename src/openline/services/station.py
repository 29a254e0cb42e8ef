"""What every use case needs to know about its own station, passed explicitly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection

from openline.adapters.db import Database
from openline.core.card import Card
from openline.core.clock import Clock
from openline.core.keys import StationKeys


@dataclass
class Tx:
    """A write transaction plus what to do once it has committed."""

    conn: Connection
    now: int
    wake_lines: set[str] = field(default_factory=set)


@dataclass
class Station:
    name: str
    keys: StationKeys
    card: Card
    db: Database
    clock: Clock
    answer_deadline_s: int = 60
    on_commit: list[Callable[[set[str]], None]] = field(default_factory=list)

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """Run a use case in one write transaction; wake deliverers after it commits."""
        with self.db.write() as conn:
            tx = Tx(conn, self.clock.now())
            yield tx
        if tx.wake_lines:
            for hook in self.on_commit:
                hook(tx.wake_lines)
