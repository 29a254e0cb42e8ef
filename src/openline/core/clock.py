"""Time: an injectable clock, RFC 3339 rendering, and what a round trip proves of another
station's clock.

Times inside the station are integer microseconds since the Unix epoch (UTC), which
SQLite and PostgreSQL store and compare identically. On the wire and in output they are
RFC 3339 strings in UTC with microseconds.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from openline.errors import InvalidInput

MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)  # UTC by construction; only rfc3339 uses it
# RFC 3339 §5.6 date-time, with at most microsecond precision.
_RFC3339_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
# RFC 3339 allows any number of digits after the seconds; the station keeps microseconds.
_FINER_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}\.(\d{7,})([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


class Clock(Protocol):
    def now(self) -> int:
        """Microseconds since the epoch, UTC."""
        ...


@dataclass(frozen=True)
class Offset:
    """What exchanges with another station prove of its clock against ours: its reading
    minus ours at the same instant lies in [low, high] (µs); `high` is None when only a
    lower bound is known (a time it stamped before we received it). Nothing is assumed of
    the network: a slow round trip widens the bounds instead of shifting them."""

    low: int
    high: int | None

    def beyond(self, limit: int) -> int:
        """How far the other clock is proved to be off ours beyond `limit` µs either way:
        the bound nearest zero, signed; 0 when it is not proved off."""
        if self.low > limit:
            return self.low
        if self.high is not None and self.high < -limit:
            return self.high
        return 0

    def within(self, limit: int) -> bool:
        """Whether the other clock is proved to be within `limit` µs of ours."""
        return self.high is not None and -limit <= self.low and self.high <= limit


def round_trip(stamped: int, sent: int, answered: int) -> Offset:
    """A time the other station stamped on its clock after we sent (`sent`, our clock)
    and before its answer reached us (`answered`)."""
    return Offset(stamped - answered, stamped - sent)


def stamped_before(stamped: int, received: int) -> Offset:
    """A time the other station stamped before what carries it reached us (`received`)."""
    return Offset(stamped - received, None)


class SystemClock:
    def now(self) -> int:
        return time.time_ns() // 1000


def _steady_ns() -> int:
    """A clock that runs on through a suspend and is never set: CLOCK_BOOTTIME on Linux."""
    return time.clock_gettime_ns(getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC))


class StepWatch:
    """Tells when the wall clock was set (stepped) rather than run: by NTP correcting a
    clock that was far off, an operator, a virtual machine restored from a snapshot. Each
    look compares how far the wall clock moved with how far a clock nobody sets moved;
    a difference of `threshold` µs or more is a step. A slewing clock (NTP's gentle
    correction, at most 0.5 ms a second) and a suspended machine (whose wall clock and
    boot time both run on) are not steps."""

    def __init__(
        self,
        wall: Callable[[], int] = time.time_ns,
        steady: Callable[[], int] = _steady_ns,
        threshold: int = 2 * MICROS,
    ) -> None:
        self._wall = wall
        self._steady = steady
        self._threshold = threshold
        self._offset: int | None = None

    def step(self) -> int:
        """How far (µs, signed) the wall clock was set since the last look; 0 if it was not."""
        offset = (self._wall() - self._steady()) // 1000
        last, self._offset = self._offset, offset
        if last is None or abs(offset - last) < self._threshold:
            return 0
        return offset - last


class FakeClock:
    """A clock that moves only when told: tests drive deadlines and backoff with it."""

    def __init__(self, start: int = 1_767_225_600 * MICROS) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> int:
        with self._lock:
            self._now += round(seconds * MICROS)
            return self._now

    def set(self, micros: int) -> None:
        with self._lock:
            self._now = micros


# The times `rfc3339` can write: years 0001 to 9999 in UTC.
_FIRST = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_LAST = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def rfc3339(micros: int | None) -> str | None:
    if micros is None:
        return None
    # Exact integer arithmetic and the C isoformat: about 1.6 µs against 2.9 µs for
    # fromtimestamp and strftime, and a received envelope formats about ten times.
    return (_EPOCH_NAIVE + timedelta(microseconds=micros)).isoformat(timespec="microseconds") + "Z"


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 time with an explicit offset into epoch microseconds."""
    if not isinstance(text, str) or not _RFC3339_RE.fullmatch(text):
        finer = _FINER_RE.fullmatch(text) if isinstance(text, str) else None
        if finer is not None:
            raise ValueError(
                f"{text!r:.80} has {len(finer[1])} digits after the seconds: at most 6 (microseconds)"
            )
        raise ValueError(f"expected an RFC 3339 time such as 2026-11-26T05:02:35.123456Z, got {text!r:.80}")
    dt = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    micros = (dt - _EPOCH) // timedelta(microseconds=1)
    if not _FIRST <= micros <= _LAST:  # 0001-01-01T00:00:00+23:59 is in year 0 in UTC
        raise ValueError(f"{text!r:.80} is outside the years 0001 to 9999 in UTC")
    return micros


def time_param(value: str | None, what: str) -> int | None:
    """A parameter's RFC 3339 time in µs (None when not given); `what` names the
    parameter in the error."""
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except (ValueError, TypeError):
        raise InvalidInput(f"{what}: expected an RFC 3339 time, got {value!r:.80}") from None
