"""Background loops of `openline serve` that act on time.

Answer deadlines (`calls.deadline_at`), escalation steps (`calls.next_escalation_at`) and
the ends of active notices (`notices.ends_at`, recorded as `expired`) live in the
database, so a restart loses none; the timer loop only decides when to look next. The
auditor is a separate thread on purpose: if the timer loop stalls, the auditor still
notices ringing calls whose next escalation step is overdue and notices left unanswered
past their deadline; it also raises `line_down` for lines that stopped delivering
(`line_health`), and checks the roster for gaps in the next 24 hours.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import structlog

from openline.adapters.db import Outage
from openline.core.clock import MICROS, StepWatch
from openline.services import (
    alert_paging,
    calls,
    handover,
    line_health,
    notice_expiry,
    notices,
    own_clock,
    rosters,
    watch,
)
from openline.services.station import Station

MAX_SLEEP_SECONDS = 1.0
AUDIT_EVERY_SECONDS = 5.0
ROSTER_EVERY_SECONDS = 60.0
MAX_ROUNDS = 100  # escalation batches fired in a row before the loop looks at the clock again
log = structlog.get_logger("openline.timers")


class Loop:
    """A thread that runs `step` until stopped, sleeping what `step` returns (or until woken)."""

    name = "loop"

    def __init__(self, station: Station) -> None:
        self.station = station
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._sleeps_until = math.inf  # monotonic end of the current sleep; inf while stepping

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def wake_within(self, seconds: float) -> None:
        """See that `step` runs within `seconds`: wake the loop only if it would sleep longer.
        A wake-up that changes nothing still costs two thread switches and the GIL."""
        if self._sleeps_until > time.monotonic() + seconds:
            self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        outage = Outage(f"{self.name} loop")
        while not self._stop.is_set():
            self._wake.clear()
            self._sleeps_until = math.inf  # a wake-up while stepping makes it step again
            try:
                wait = self.step()
                outage.ended()
            except Exception as exc:
                if not outage.absorbs(exc):
                    log.exception(f"{self.name} step crashed")
                wait = MAX_SLEEP_SECONDS
            self._sleeps_until = time.monotonic() + wait
            self._wake.wait(wait)

    def step(self) -> float:
        raise NotImplementedError


class TimerLoop(Loop):
    name = "timers"

    def __init__(self, station: Station, steps: StepWatch | None = None) -> None:
        super().__init__(station)
        self._steps = steps  # None: the station's clock is not the system's (tests)

    def step(self) -> float:
        # Before anything is found due: a clock set ahead must not miss every ringing call.
        stepped = self._steps.step() if self._steps is not None else 0
        if stepped:
            own_clock.stepped(self.station, stepped)
        calls.expire_due(self.station)
        notice_expiry.expire_due(self.station)
        for _ in range(MAX_ROUNDS):
            if watch.escalate_due(self.station) < watch.MAX_BATCH:
                break
        due = [
            t
            for t in (
                calls.next_deadline(self.station),
                watch.next_escalation(self.station),
                notice_expiry.next_expiry(self.station),
            )
            if t
        ]
        wait = MAX_SLEEP_SECONDS
        if due:
            wait = min(wait, max(0.0, (min(due) - self.station.clock.now()) / MICROS))
        return wait


class Auditor(Loop):
    name = "auditor"

    def __init__(self, station: Station, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(station)
        self._monotonic = clock
        self._roster_checked: float | None = None
        self._since: int | None = None  # when this loop first looked (station clock)

    def step(self) -> float:
        if self._since is None:
            self._since = self.station.clock.now()
        watch.audit_escalations(self.station, running_since=self._since)
        watch.audit_unanswered(self.station)
        handover.audit_handovers(self.station)
        notices.audit_deadlines(self.station)
        line_health.audit_lines(self.station)
        now = self._monotonic()
        if self._roster_checked is None or now - self._roster_checked >= ROSTER_EVERY_SECONDS:
            rosters.check_roster_gaps(self.station)
            self._roster_checked = now
        # Last, so that an alert the checks above raised pages in this same round.
        for _ in range(MAX_ROUNDS):
            if alert_paging.page_due(self.station) < alert_paging.MAX_BATCH:
                break
        return AUDIT_EVERY_SECONDS
