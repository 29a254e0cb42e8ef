"""The watch roster: who is on duty now, when the next handover is, and where the gaps are.

A shift is `duration` of elapsed time from `start`, repeated by an RFC 5545 (§3.3.10)
RRULE that dateutil expands in the shift's local wall time: a daily 06:00 Europe/Berlin
shift starts at 05:00Z in winter and 04:00Z in summer. A wall time is placed in its zone
with fold=0 (PEP 495), so a time inside a spring-forward gap moves forward by the gap
(02:30 becomes 03:30 summer time) and an ambiguous fall-back time is its first occurrence.
The shift's own `start` is the one exception: that first occurrence keeps its fold. The
start anchors the rule but, as in dateutil, is not an occurrence on a date the rule skips.

Intervals are half-open: on duty at the start, not at the end. During an override's
[start, end) its user is on duty and, if `replaces` names a user who would be on duty
from their shifts, that user is not; one person taking another's shift outright is one
override, a swap is two. An override without a user (its stand-in can no longer cover)
still takes `replaces` off duty. The on-duty set is what shifts put on duty, minus those
replaced, plus the overrides' users. All results are aware datetimes in UTC. An
occurrence that runs past the last instant a datetime holds (the end of year 9999 in UTC)
is cut there, so that no question about a time the station records overflows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr  # type: ignore[import-untyped]

MAX_SHIFT = timedelta(days=7)
MAX_OVERRIDE = timedelta(days=31)

# RFC 5545 §3.3.10 rule parts in the order parse_rrule writes them. BYHOUR, BYMINUTE
# and BYSECOND are left out on purpose: the time of day comes from the shift's start.
_PARTS = (
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYMONTH",
    "BYWEEKNO",
    "BYYEARDAY",
    "BYMONTHDAY",
    "BYDAY",
    "BYSETPOS",
    "WKST",
)
_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Largest magnitude each numeric list part allows (RFC 5545 §3.3.10); zero is never valid.
_RANGES = {"BYMONTH": 12, "BYWEEKNO": 53, "BYYEARDAY": 366, "BYMONTHDAY": 31, "BYSETPOS": 366}
_UNSIGNED = ("BYMONTH",)
_INT_RE = re.compile(r"[+-]?[0-9]{1,3}")
_BYDAY_RE = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL_RE = re.compile(r"[0-9]{8}(T[0-9]{6})?")
_COUNT_RE = re.compile(r"[0-9]{1,9}")
# Any UTC offset is less than a day, so a day either side of the window in UTC wall
# terms holds every local wall time whose instant falls inside it.
_SLACK = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_LAST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Shift:
    id: int
    user: str
    start: datetime  # aware, in the shift's own zoneinfo.ZoneInfo
    duration: timedelta  # elapsed time, > 0 and <= 7 days
    rrule: str | None = None  # an RRULE value without "RRULE:", e.g. "FREQ=DAILY"


@dataclass(frozen=True)
class Override:
    id: int
    # On duty during [start, end); None when the stand-in covers nothing (disabled since),
    # so that `replaces` stays off duty, as their supervisor decided, and a gap shows.
    user: str | None
    replaces: str | None  # whose duty they take; None adds a person
    start: datetime
    end: datetime


class RosterError(ValueError):
    """A shift, override, rule or instant the roster cannot work with."""


# RRULE text -------------------------------------------------------------------------


def parse_rrule(text: str) -> str:
    """Validate an RRULE value and return it normalised: upper case, parts in RFC order."""
    if not isinstance(text, str):
        raise RosterError(f"rrule: expected RRULE text such as 'FREQ=DAILY', got {text!r}")
    return _normalise(text)


@lru_cache(maxsize=1024)
def _normalise(text: str) -> str:
    body = text.strip().upper()
    body = body.removeprefix("RRULE:")
    if "DTSTART" in body:
        raise RosterError(f"rrule {text!r}: DTSTART is not allowed; the shift's start is the rule's start")
    if not body or any(c.isspace() or c == ":" for c in body):
        raise RosterError(f"rrule {text!r}: expected one RRULE value such as 'FREQ=WEEKLY;BYDAY=MO,TU'")
    parts: dict[str, str] = {}
    for pair in body.split(";"):
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise RosterError(f"rrule {text!r}: expected NAME=VALUE parts separated by ';', got {pair!r}")
        if name in parts:
            raise RosterError(f"rrule {text!r}: {name} given twice")
        _check_part(text, name, value)
        parts[name] = value
    if "FREQ" not in parts:
        raise RosterError(f"rrule {text!r}: FREQ is required, e.g. FREQ=DAILY")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RosterError(f"rrule {text!r}: give COUNT or UNTIL, not both (RFC 5545 §3.3.10)")
    normalised = ";".join(f"{name}={parts[name]}" for name in _PARTS if name in parts)
    try:
        rrulestr(_with_wkst(normalised), dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise RosterError(f"rrule {text!r} is not a valid RRULE: {exc}") from None
    return normalised


def _check_part(text: str, name: str, value: str) -> None:
    where = f"rrule {text!r}: {name}={value}"
    if name in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        raise RosterError(f"{where} is not allowed; a shift starts at the time of day of its start")
    if name not in _PARTS:
        raise RosterError(f"rrule {text!r}: unknown part {name!r}; expected one of {', '.join(_PARTS)}")
    if name == "FREQ" and value not in _FREQS:
        raise RosterError(f"{where} is refused: shifts recur at most daily ({', '.join(_FREQS)})")
    if name in ("INTERVAL", "COUNT") and (not _COUNT_RE.fullmatch(value) or int(value) < 1):
        raise RosterError(f"{where}: expected a whole number of at least 1")
    if name == "UNTIL" and not _UNTIL_RE.fullmatch(value):
        raise RosterError(
            f"{where}: expected a local date or date-time without a zone, such as UNTIL=20261231T235959;"
            " it is read in the shift's own time zone"
        )
    if name == "WKST" and value not in _DAYS:
        raise RosterError(f"{where}: expected one of {', '.join(_DAYS)}")
    if name == "BYDAY":
        for day in value.split(","):
            match = _BYDAY_RE.fullmatch(day)
            if match is None or (match[1] is not None and not 1 <= abs(int(match[1])) <= 53):
                raise RosterError(f"{where}: expected days such as MO,TU or 1MO,-1FR, got {day!r}")
    if name in _RANGES:
        high, low = _RANGES[name], 1 if name in _UNSIGNED else -_RANGES[name]
        for item in value.split(","):
            if not _INT_RE.fullmatch(item) or not low <= int(item) <= high or int(item) == 0:
                raise RosterError(f"{where}: expected numbers from {low} to {high}, not 0, got {item!r}")


def _with_wkst(normalised: str) -> str:
    # RFC 5545 weeks start on Monday unless WKST says otherwise; dateutil would follow
    # calendar.firstweekday(), which any code in the process may change.
    return normalised if "WKST=" in normalised else normalised + ";WKST=MO"


@dataclass(frozen=True)
class _Recurrence:
    rule: Any  # a dateutil rrule with its DTSTART at the shift's naive local start
    skip_days: int | None  # the rule repeats every this many days, if it can be skipped ahead
    empty: bool  # the pattern matches no date at all from the start


@lru_cache(maxsize=1024)
def _recurrence(normalised: str, dtstart: datetime) -> _Recurrence:
    rule = rrulestr(_with_wkst(normalised), dtstart=dtstart)
    fields = dict(part.split("=") for part in normalised.split(";"))
    skip_days = None
    if "COUNT" not in fields and fields["FREQ"] in ("DAILY", "WEEKLY"):
        skip_days = int(fields.get("INTERVAL", "1")) * (7 if fields["FREQ"] == "WEEKLY" else 1)
    # dateutil scans to year 9999 for a pattern that never matches (FREQ=YEARLY;BYMONTH=2;
    # BYMONTHDAY=30); find that once here instead of on every query.
    empty = next(iter(rule.replace(count=None, until=None)), None) is None
    return _Recurrence(rule, skip_days, empty)


# Validation -------------------------------------------------------------------------


def check_shift(shift: Shift) -> None:
    """Raise RosterError unless the shift can be put on a roster."""
    _check_user(f"shift {shift.id}: user", shift.user)
    start = shift.start
    if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
        raise RosterError(f"shift {shift.id}: start {start!r} must be an aware datetime with its time zone")
    if not isinstance(start.tzinfo, ZoneInfo):
        raise RosterError(
            f"shift {shift.id}: start {start.isoformat()} has time zone {start.tzinfo!r}; use a"
            " zoneinfo.ZoneInfo such as ZoneInfo('Europe/Berlin') so it follows local wall time"
        )
    if not isinstance(shift.duration, timedelta) or not timedelta(0) < shift.duration <= MAX_SHIFT:
        raise RosterError(
            f"shift {shift.id}: duration {shift.duration!r} must be more than 0 and at most 7 days"
        )
    if shift.rrule is not None:
        normalised = parse_rrule(shift.rrule)
        if _recurrence(normalised, start.replace(tzinfo=None)).empty:
            raise RosterError(
                f"shift {shift.id}: rrule {shift.rrule!r} matches no date from {start.isoformat()} on"
            )


def check_override(o: Override) -> None:
    """Raise RosterError unless the override can be put on a roster."""
    if o.user is not None:
        _check_user(f"override {o.id}: user", o.user)
    elif o.replaces is None:
        raise RosterError(f"override {o.id}: names neither a user on duty nor one it replaces")
    if o.replaces is not None:
        _check_user(f"override {o.id}: replaces", o.replaces)
        if o.replaces == o.user:
            raise RosterError(f"override {o.id}: user {o.user!r} cannot replace themselves")
    start = _utc(o.start, f"override {o.id}: start")
    end = _utc(o.end, f"override {o.id}: end")
    if end <= start:
        raise RosterError(
            f"override {o.id}: end {o.end.isoformat()} must be after start {o.start.isoformat()}"
        )
    if end - start > MAX_OVERRIDE:
        raise RosterError(f"override {o.id}: lasts {end - start}, more than the 31 days allowed")


def _check_user(what: str, name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise RosterError(f"{what} must be a non-empty user name, got {name!r}")


def _utc(at: object, what: str) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise RosterError(f"{what} {at!r} must be an aware datetime (naive times are ambiguous)")
    # Aware datetimes sharing a tzinfo compare and subtract by wall time; UTC does not.
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise RosterError(f"{what} {at.isoformat()} is outside the years 0001 to 9999 in UTC") from None


# Expansion ----------------------------------------------------------------------------


def occurrences(shift: Shift, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Every occurrence [s, e) of the shift that overlaps [start, end), in UTC, in order."""
    check_shift(shift)
    return _occurrences(shift, _utc(start, "start"), _utc(end, "end"))


def _occurrences(shift: Shift, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    if hi <= lo:
        return []
    if shift.rrule is None:
        s = _instant(shift.start)
        e = add_clamped(s, shift.duration)
        return [(s, e)] if s < hi and e > lo else []
    dtstart = shift.start.replace(tzinfo=None)
    rec = _recurrence(parse_rrule(shift.rrule), dtstart)
    rule = rec.rule
    # An occurrence overlapping [lo, hi) starts in (lo - duration, hi).
    wall_lo = add_clamped(add_clamped(lo, -shift.duration), -_SLACK).replace(tzinfo=None)
    wall_hi = add_clamped(hi, _SLACK).replace(tzinfo=None)
    if rec.skip_days is not None and wall_lo > dtstart:
        # rrule.between walks from DTSTART; a rule without COUNT that repeats every n days
        # yields the same dates from any DTSTART a whole number of periods later.
        periods = (wall_lo - dtstart).days // rec.skip_days
        if periods > 0:
            rule = rule.replace(dtstart=dtstart + timedelta(days=periods * rec.skip_days))
    zone = shift.start.tzinfo
    out: list[tuple[datetime, datetime]] = []
    for wall in rule.between(wall_lo, wall_hi, inc=True):
        # dateutil drops DTSTART's microseconds; the shift keeps them.
        wall = wall.replace(microsecond=dtstart.microsecond)
        fold = shift.start.fold if wall == dtstart else 0
        s = _instant(wall.replace(tzinfo=zone, fold=fold))
        e = add_clamped(s, shift.duration)
        if s < hi and e > lo:
            out.append((s, e))
    out.sort()
    return out


def add_clamped(at: datetime, delta: timedelta) -> datetime:
    """`at + delta`, or the last (first) instant a datetime holds when that is past it: a
    roster question near the end of year 9999 is answered up to there, not refused."""
    try:
        return at + delta
    except OverflowError:
        return (datetime.max if delta > timedelta(0) else datetime.min).replace(tzinfo=at.tzinfo)


def _instant(local: datetime) -> datetime:
    """An aware local time in UTC; one whose UTC date is in year 10000 (or 0) is clamped
    to the last (first) instant, where an occurrence starting then is empty."""
    try:
        return local.astimezone(UTC)
    except OverflowError:
        return _LAST if local.year > 1 else datetime.min.replace(tzinfo=UTC)


# The on-duty set ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """Everything that decides who is on duty inside one window, in UTC."""

    spans: list[tuple[str, datetime, datetime]]
    overrides: list[tuple[str | None, str | None, datetime, datetime]]

    def duty(self, at: datetime) -> frozenset[str]:
        on = {user for user, s, e in self.spans if s <= at < e}
        active = [(user, replaces) for user, replaces, s, e in self.overrides if s <= at < e]
        on.difference_update(replaces for _, replaces in active if replaces is not None)
        on.update(user for user, _ in active if user is not None)
        return frozenset(on)

    def boundaries(self) -> list[datetime]:
        points = {t for _, s, e in self.spans for t in (s, e)}
        points.update(t for _, _, s, e in self.overrides for t in (s, e))
        return sorted(points)


def _window(shifts: list[Shift], overrides: list[Override], lo: datetime, hi: datetime) -> _Window:
    for shift in shifts:
        check_shift(shift)
    for o in overrides:
        check_override(o)
    spans = [(shift.user, s, e) for shift in shifts for s, e in _occurrences(shift, lo, hi)]
    bounds = [(o, o.start.astimezone(UTC), o.end.astimezone(UTC)) for o in overrides]
    active = [(o.user, o.replaces, s, e) for o, s, e in bounds if s < hi and e > lo]
    return _Window(spans, active)


def on_duty(shifts: list[Shift], overrides: list[Override], at: datetime) -> list[str]:
    """The sorted names of everyone on duty at the instant `at`."""
    t = _utc(at, "at")
    return sorted(_window(shifts, overrides, t, add_clamped(t, _TICK)).duty(t))


def next_handover(
    shifts: list[Shift], overrides: list[Override], at: datetime, horizon: timedelta = timedelta(days=7)
) -> datetime | None:
    """The first instant in (at, at + horizon] where the on-duty set changes, or None."""
    t = _utc(at, "at")
    if not isinstance(horizon, timedelta) or horizon < timedelta(0):
        raise RosterError(f"horizon {horizon!r} must be a timedelta of at least 0")
    # An occurrence cut short at the last instant a datetime holds is not handed over there.
    limit = min(add_clamped(t, horizon), _LAST - _TICK)
    window = _window(shifts, overrides, t, add_clamped(limit, _TICK))
    before = window.duty(t)
    for point in window.boundaries():
        if t < point <= limit and window.duty(point) != before:
            return point
    return None


def gaps(
    shifts: list[Shift], overrides: list[Override], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The maximal intervals within [start, end) when nobody is on duty, in UTC, in order."""
    lo, hi = _utc(start, "start"), _utc(end, "end")
    if hi <= lo:
        return []
    window = _window(shifts, overrides, lo, hi)
    points = [lo, *(p for p in window.boundaries() if lo < p < hi), hi]
    holes: list[tuple[datetime, datetime]] = []
    for a, b in pairwise(points):
        if window.duty(a):
            continue
        if holes and holes[-1][1] == a:
            holes[-1] = (holes[-1][0], b)
        else:
            holes.append((a, b))
    return holes
