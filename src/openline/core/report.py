"""The transparency report: metadata-only figures per line and month, from the ledger.

The figures are a deterministic function of the log's entries up to one checkpoint and a
calendar month (UTC), so anyone holding an evidence bundle can recompute them and compare
(docs/ledger.md, "Transparency report"). They are counted as follows.

- A call belongs to the month of its `call.placed` entry's `at`, and to the line and peer
  that entry names. `direction` `out` is a call placed, `in` a call received.
- A call is *picked up*, *missed*, *declined* or *cancelled* when the log holds a
  `call.picked_up`, `call.missed`, `call.declined` or `call.cancelled` entry for it (at
  any time up to the checkpoint); *unresolved* when it holds none of them yet. A call
  counts once: when the log holds more than one of them, the first in that order (the
  caller's station logs its cancel, then the callee's answer that crossed it on the line;
  both stations then count the callee's).
- Time to pick-up is from the first `call.ringing` `at` to the first `call.picked_up`
  `at`, in seconds: how long the call rang before someone took it. Both times are the
  callee's clock, on either station (the caller's log holds the times in the callee's
  signed headers), so skew between the stations does not show in it, and both stations
  count the same time for a call. (Until OpenLine 0.1 it ran from `call.placed`, whose
  time is the caller's clock: with a peer's clock minutes off, a call received showed a
  negative time.) A call picked up with no `call.ringing` in the log is timed from its
  `call.placed`. A pick-up stamped before the ring (the callee's clock set back while the
  call rang) has no time to pick-up: it is left out of `count`, the median and the 90th
  percentile, not counted as a negative time.
- The median is `statistics.median` (the mean of the two middle values when there is an
  even number). The 90th percentile is by the nearest-rank method: the value at rank
  ceil(0.9 * n) of the n times in ascending order, so it is always a time some call
  actually took. With no pick-ups both are None.
- Link tests (`link.test_sent`, `link.test_answered`) and acknowledged notices
  (`notice.acknowledged`) belong to the month of their own `at` and the peer they name.
  This version of OpenLine records neither; unless the log holds entries of such a type,
  the figure is None and the report says why, rather than claiming zero.

Pure and streaming: `Tally` takes entries one at a time and keeps state only for the
calls placed in the period, never the entries themselves.
"""

from __future__ import annotations

import base64
import calendar
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from openline.core import calls
from openline.core.clock import MICROS, parse_rfc3339, rfc3339

FORMAT = "openline-transparency-report/v1"
P90 = 90
OUTCOMES = tuple(o.value for o in calls.OUTCOMES)  # each call counts once, the first that it has
DIRECTIONS = ("out", "in")
LINK_TEST_SENT = "link.test_sent"
LINK_TEST_ANSWERED = "link.test_answered"
NOTICE_ACKNOWLEDGED = "notice.acknowledged"
# Optional figures this version of OpenLine records itself. When one is built, name it
# here, so that a month without any shows 0 instead of "not recorded".
RECORDED: frozenset[str] = frozenset({"notices_acknowledged"})
NOT_RECORDED = {
    "link_tests": "not recorded by this version of OpenLine: link tests are not built yet",
}
_FAMILY = {
    LINK_TEST_SENT: "link_tests",
    LINK_TEST_ANSWERED: "link_tests",
    NOTICE_ACKNOWLEDGED: "notices_acknowledged",
}
_PERIOD_RE = re.compile(r"([0-9]{4})-([0-9]{2})")  # not \d: that matches any script's digits


class ReportError(ValueError):
    """A period that is not a month, or an entry the report cannot read."""


# The period -------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A calendar month in UTC: [start, end) in epoch microseconds."""

    name: str
    start: int
    end: int

    def __contains__(self, at: int) -> bool:
        return self.start <= at < self.end


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = 86_400 * MICROS


def parse_period(text: str) -> Period:
    """`YYYY-MM`, a real month (2026-11); anything else is refused."""
    m = _PERIOD_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ReportError(f"period must be a month written YYYY-MM, such as 2026-11, got {text!r:.40}")
    year, month = int(m[1]), int(m[2])
    if year < 1 or not 1 <= month <= 12:
        raise ReportError(f"period {text!r} is not a month: the month must be 01 to 12, the year not 0000")
    if (year, month) == (9999, 12):  # its end, 10000-01-01, is past any RFC 3339 time
        raise ReportError(f"period {text!r}: the last month a report can cover is 9999-11")
    start = (datetime(year, month, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
    return Period(text, start, start + calendar.monthrange(year, month)[1] * _DAY)


def period_of(micros: int) -> str:
    """The `YYYY-MM` month (UTC) that a time falls in."""
    return (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m")


# Statistics -------------------------------------------------------------------------


def nearest_rank(values: Sequence[float], percent: int) -> float:
    """The nearest-rank percentile: the value at rank ceil(percent/100 * n), 1-based, of the
    values in ascending order."""
    if not values:
        raise ReportError("no values: a percentile needs at least one")
    if not 0 < percent <= 100:
        raise ReportError(f"percentile must be 1 to 100, got {percent}")
    ordered = sorted(values)
    return ordered[math.ceil(percent * len(ordered) / 100) - 1]


@dataclass(frozen=True)
class PickupTimes:
    count: int
    median: float | None  # seconds
    p90: float | None

    @classmethod
    def of(cls, micros: Sequence[int]) -> PickupTimes:
        if not micros:
            return cls(0, None, None)
        return cls(
            len(micros),
            _seconds(statistics.median(micros)),
            _seconds(nearest_rank(micros, P90)),
        )

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "median": self.median, "p90": self.p90}


def _seconds(micros: float) -> float:
    return round(micros / MICROS, 6)


# The figures ------------------------------------------------------------------------


@dataclass
class _Direction:
    calls: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    unresolved: int = 0
    pickup_micros: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DirectionFigures:
    calls: int
    picked_up: int
    missed: int
    declined: int
    cancelled: int
    unresolved: int
    pickup: PickupTimes

    @classmethod
    def of(cls, d: _Direction) -> DirectionFigures:
        o = d.outcomes
        pickup = PickupTimes.of(d.pickup_micros)
        return cls(d.calls, o["picked_up"], o["missed"], o["declined"], o["cancelled"], d.unresolved, pickup)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "picked_up": self.picked_up,
            "missed": self.missed,
            "declined": self.declined,
            "cancelled": self.cancelled,
            "unresolved": self.unresolved,
            "pickup_seconds": self.pickup.to_json(),
        }


@dataclass(frozen=True)
class LineFigures:
    """One line's figures for the period; `line` is empty in the totals."""

    peer: str
    line: str
    calls_placed: int
    calls_received: int
    picked_up: int
    missed: int
    declined: int
    cancelled: int
    unresolved: int
    pickup: PickupTimes
    by_direction: dict[str, DirectionFigures]
    link_tests_sent: int | None
    link_tests_answered: int | None
    notices_acknowledged: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "line": self.line,
            "calls_placed": self.calls_placed,
            "calls_received": self.calls_received,
            "picked_up": self.picked_up,
            "missed": self.missed,
            "declined": self.declined,
            "cancelled": self.cancelled,
            "unresolved": self.unresolved,
            "pickup_seconds": self.pickup.to_json(),
            "by_direction": {k: v.to_json() for k, v in self.by_direction.items()},
            "link_tests_sent": self.link_tests_sent,
            "link_tests_answered": self.link_tests_answered,
            "notices_acknowledged": self.notices_acknowledged,
        }


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint the figures were computed against: the entries [0, size)."""

    origin: str
    size: int
    root: bytes
    note: str = ""  # the signed note, with the peers' cosignatures
    cosigned_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),  # as in the note (C2SP)
            "cosigned_by": list(self.cosigned_by),
            "note": self.note,
        }


@dataclass(frozen=True)
class Report:
    period: Period
    checkpoint: Checkpoint
    lines: list[LineFigures]
    totals: LineFigures
    not_recorded: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "period": self.period.name,
            "from": rfc3339(self.period.start),
            "until": rfc3339(self.period.end),
            "checkpoint": self.checkpoint.to_json(),
            "lines": [x.to_json() for x in self.lines],
            "totals": self.totals.to_json(),
            "not_recorded": dict(self.not_recorded),
        }


# Counting ---------------------------------------------------------------------------

_Key = tuple[str, str]  # (peer, line)


@dataclass(slots=True)
class _Call:
    key: _Key
    direction: str
    placed_at: int
    ringing_at: int | None = None
    picked_up_at: int | None = None
    outcomes: tuple[str, ...] = ()  # the empty tuple is shared: most calls cost nothing here


def _text(entry: Mapping[str, Any], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise ReportError(f"{entry.get('type')} entry without a {name} (call {entry.get('call')!r:.40})")
    return value


def _at(entry: Mapping[str, Any]) -> int:
    try:
        return parse_rfc3339(entry["at"])
    except (KeyError, ValueError):
        raise ReportError(
            f"{entry.get('type')} entry with a bad time {entry.get('at')!r:.40} "
            f"(call {entry.get('call')!r:.40})"
        ) from None


class Tally:
    """The figures of one period, fed the log's entries in order, one at a time."""

    def __init__(self, period: Period) -> None:
        self.period = period
        self._calls: dict[str, _Call] = {}
        self._keys: dict[_Key, _Key] = {}  # one (peer, line) tuple per line, shared by its calls
        self._counts: dict[_Key, dict[str, int]] = {}  # link tests and notices, per line
        self._seen: set[str] = set(RECORDED)
        self.entries = 0

    def add(self, entry: Mapping[str, Any]) -> None:
        self.entries += 1
        kind = entry.get("type")
        if not isinstance(kind, str):
            raise ReportError(f"entry {self.entries - 1} has no type")
        if kind == "call.placed":
            self._placed(entry)
        elif kind.startswith("call."):
            call = self._calls.get(str(entry.get("call")))
            if call is None:  # placed in another month
                return
            outcome = kind.removeprefix("call.")
            if outcome == "ringing" and call.ringing_at is None:
                call.ringing_at = _at(entry)
            if outcome in OUTCOMES:
                if outcome == "picked_up" and call.picked_up_at is None:
                    call.picked_up_at = _at(entry)
                if outcome not in call.outcomes:
                    call.outcomes += (outcome,)
        elif kind in _FAMILY:
            self._seen.add(_FAMILY[kind])
            peer = entry.get("peer")
            if isinstance(peer, str) and peer and _at(entry) in self.period:
                line = entry.get("line")
                key = (peer, line if isinstance(line, str) else "")
                counts = self._counts.setdefault(key, {})
                counts[kind] = counts.get(kind, 0) + 1

    def _placed(self, entry: Mapping[str, Any]) -> None:
        call_id = _text(entry, "call")
        at = _at(entry)
        if at not in self.period or call_id in self._calls:
            return
        direction = _text(entry, "direction")
        if direction not in DIRECTIONS:
            raise ReportError(f"call.placed entry with direction {direction!r:.20} (call {call_id!r:.40})")
        key = (_text(entry, "peer"), _text(entry, "line"))
        self._calls[call_id] = _Call(self._keys.setdefault(key, key), direction, at)

    def report(self, checkpoint: Checkpoint) -> Report:
        per_line: dict[_Key, dict[str, _Direction]] = {}
        for call in self._calls.values():
            d = per_line.setdefault(call.key, {x: _Direction() for x in DIRECTIONS})[call.direction]
            d.calls += 1
            ended = next((o for o in OUTCOMES if o in call.outcomes), None)
            if ended is None:
                d.unresolved += 1
            else:
                d.outcomes[ended] += 1
            if call.picked_up_at is not None:
                rang = call.placed_at if call.ringing_at is None else call.ringing_at
                if call.picked_up_at >= rang:  # else a clock was set back while it rang
                    d.pickup_micros.append(call.picked_up_at - rang)
        for key in self._counts:
            per_line.setdefault(key, {x: _Direction() for x in DIRECTIONS})
        lines = [
            self._figures(peer, line, dirs, self._counts.get((peer, line), {}))
            for (peer, line), dirs in sorted(per_line.items())
        ]
        every = {x: _Direction() for x in DIRECTIONS}
        for dirs in per_line.values():
            for x, d in dirs.items():
                e = every[x]
                e.calls += d.calls
                e.unresolved += d.unresolved
                e.pickup_micros += d.pickup_micros
                for outcome, n in d.outcomes.items():
                    e.outcomes[outcome] += n
        counts: dict[str, int] = {}
        for c in self._counts.values():
            for kind, n in c.items():
                counts[kind] = counts.get(kind, 0) + n
        totals = self._figures("", "", every, counts)
        missing = {k: v for k, v in NOT_RECORDED.items() if k not in self._seen}
        return Report(self.period, checkpoint, lines, totals, missing)

    def _figures(
        self, peer: str, line: str, dirs: dict[str, _Direction], counts: dict[str, int]
    ) -> LineFigures:
        by = {x: DirectionFigures.of(d) for x, d in dirs.items()}
        both = [t for d in dirs.values() for t in d.pickup_micros]

        def optional(family: str, kind: str) -> int | None:
            return counts.get(kind, 0) if family in self._seen else None

        return LineFigures(
            peer=peer,
            line=line,
            calls_placed=by["out"].calls,
            calls_received=by["in"].calls,
            picked_up=sum(d.picked_up for d in by.values()),
            missed=sum(d.missed for d in by.values()),
            declined=sum(d.declined for d in by.values()),
            cancelled=sum(d.cancelled for d in by.values()),
            unresolved=sum(d.unresolved for d in by.values()),
            pickup=PickupTimes.of(both),
            by_direction=by,
            link_tests_sent=optional("link_tests", LINK_TEST_SENT),
            link_tests_answered=optional("link_tests", LINK_TEST_ANSWERED),
            notices_acknowledged=optional("notices_acknowledged", NOTICE_ACKNOWLEDGED),
        )


def compute(entries: Iterable[Mapping[str, Any]], period: Period, checkpoint: Checkpoint) -> Report:
    """The report of `period` from the entries [0, checkpoint.size) of the log, in order."""
    tally = Tally(period)
    for entry in entries:
        tally.add(entry)
    if tally.entries != checkpoint.size:
        raise ReportError(f"the checkpoint covers {checkpoint.size} entries, got {tally.entries}")
    return tally.report(checkpoint)
