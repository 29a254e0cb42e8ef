"""The timer loop: answer deadlines live in the database (`calls.deadline_at`), so a
restart loses none; this loop only decides when to look next."""

from __future__ import annotations

import threading

import structlog

from openline.core.clock import MICROS
from openline.services import calls
from openline.services.station import Station

MAX_SLEEP_SECONDS = 1.0
log = structlog.get_logger("openline.timers")


class TimerLoop:
    def __init__(self, station: Station) -> None:
        self.station = station
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                calls.expire_due(self.station)
                nxt = calls.next_deadline(self.station)
            except Exception:
                log.exception("timer step crashed")
                nxt = None
            wait = MAX_SLEEP_SECONDS
            if nxt is not None:
                wait = min(wait, max(0.0, (nxt - self.station.clock.now()) / MICROS))
            self._wake.wait(wait)
