"""The ledger worker of `openline serve`: sequence new entries, sign a checkpoint within
a second or so of the log growing (at most one every `CHECKPOINT_EVERY_SECONDS` while it
keeps growing), and have each peer cosign it."""

from __future__ import annotations

import time
from collections.abc import Callable

from openline.adapters.transport import Transport
from openline.services import ledger, witness
from openline.services.station import Station
from openline.services.timers import Loop

MAX_SLEEP_SECONDS = 1.0
MAX_ROUNDS = 50  # integration batches in a row before the worker signs and pushes
# Under load every commit appends entries and wakes the worker; integrating at once would
# add a write transaction (and, on SQLite, an fsync holding the one write lock) per commit.
# Entries gather for this long instead, so there is at most one integrating transaction
# per gather under load, and an entry is still sequenced well within the second.
GATHER_SECONDS = 0.25
# While the log keeps growing, one checkpoint per this many seconds. A round (the proof of
# consistency with the last checkpoint and the signature, the peer checking and cosigning,
# storing its cosignature) holds the write lock of both stations for tens of milliseconds
# under load; once a second it showed as latency spikes at 100 messages/s (p99 in three
# alternating pairs: 105/83, 121/61, 95/84 ms, every second against every 3 s). The first
# growth after a quiet spell is still signed at once.
CHECKPOINT_EVERY_SECONDS = 3.0


class LedgerWorker(Loop):
    name = "ledger"

    def __init__(
        self,
        station: Station,
        transport: Transport,
        *,
        interval: float = CHECKPOINT_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(station)
        self.transport = transport
        self.interval = interval  # at most one checkpoint per interval under load
        self._monotonic = clock
        self._signed_at: float | None = None
        self._integrated_at: float | None = None

    def step(self) -> float:
        now = self._monotonic()
        if self._integrated_at is not None and now - self._integrated_at < GATHER_SECONDS:
            return GATHER_SECONDS - (now - self._integrated_at)  # woken by a commit: let entries gather
        self._integrated_at = now
        for _ in range(MAX_ROUNDS):
            if ledger.integrate(self.station) < ledger.BATCH:
                break
        wait = MAX_SLEEP_SECONDS
        if self._signed_at is not None and now - self._signed_at < self.interval:
            wait = self.interval - (now - self._signed_at)
        elif ledger.sign_checkpoint(self.station) is not None:
            self._signed_at = now
        for peer in witness.due_peers(self.station):
            witness.push(self.station, self.transport, peer)
        return wait
