"""The duty roster: shifts (RRULE recurrence in local wall time, `core.roster`) and
overrides, who is on duty, the next handover, gaps in the next 24 hours, and the week as
a calendar. Every change is recorded in the audit trail."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Table, func, insert, select

from openline.adapters.schema import alerts as alerts_table
from openline.adapters.schema import roster_overrides, shifts, users
from openline.core import roster
from openline.core.clock import parse_rfc3339, rfc3339
from openline.errors import Conflict, InvalidInput, NotFound
from openline.services import accounts, alerts
from openline.services.station import Station

GAP_HORIZON = timedelta(hours=24)
# Who counts as on duty: someone who can pick up. An auditor on the roster would fill a
# gap and be paged for calls they may not answer.
ON_DUTY_ROLES = accounts.CALL_ROLES
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None


def load_roster(conn: Connection) -> tuple[list[roster.Shift], list[roster.Override]]:
    """The shifts and overrides that decide who is on duty. A user disabled, or given a
    role that does not work calls, since they were put on the roster covers nothing; their
    rows stay listed (`roster_view`) for someone to remove. An override of theirs that
    replaces someone still keeps that person off duty: the supervisor took them off, and
    losing the stand-in must leave a gap that alarms, not put them back unnoticed."""
    return _covering(*_read_roster(conn))


def _covering(
    shift_list: list[roster.Shift], override_list: list[roster.Override], idle: dict[str, str]
) -> tuple[list[roster.Shift], list[roster.Override]]:
    """The shifts and overrides as they decide who is on duty: without the users in `idle`,
    except that an override whose stand-in is idle still takes off whom it replaces."""
    overrides = []
    for o in override_list:
        user = None if o.user in idle else o.user
        replaces = None if o.replaces in idle else o.replaces
        if user is not None or replaces is not None:
            overrides.append(roster.Override(o.id, user, replaces, o.start, o.end))
    return [s for s in shift_list if s.user not in idle], overrides


def _read_roster(
    conn: Connection,
) -> tuple[list[roster.Shift], list[roster.Override], dict[str, str]]:
    """Every shift and override as stored, and why each user who covers nothing does not
    (`covers_nothing`), by name."""
    people = conn.execute(select(users.c.id, users.c.name, users.c.disabled, users.c.role)).all()
    names = {r.id: r.name for r in people}
    idle = {r.name: why for r in people if (why := covers_nothing(r.disabled, r.role)) is not None}
    out_shifts = [
        roster.Shift(
            r.id,
            names[r.user_id],
            datetime.fromisoformat(r.start_local).replace(tzinfo=ZoneInfo(r.tz)),
            timedelta(seconds=r.duration_s),
            r.rrule,
        )
        for r in conn.execute(select(shifts).order_by(shifts.c.id))
    ]
    out_overrides = [
        roster.Override(
            r.id,
            names[r.user_id],
            names[r.replaces_user_id] if r.replaces_user_id is not None else None,
            utc(r.start_at),
            utc(r.end_at),
        )
        for r in conn.execute(select(roster_overrides).order_by(roster_overrides.c.id))
    ]
    return out_shifts, out_overrides, idle


def covers_nothing(disabled: bool, role: str) -> str | None:
    """Why a user's shifts and overrides put nobody on duty ("disabled", or a role that
    does not work calls, such as "auditor"), or None when they do."""
    if disabled:
        return "disabled"
    return None if role in ON_DUTY_ROLES else role


def utc(micros: int) -> datetime:
    # Integer arithmetic: a float of seconds rounds 9999-12-31T23:59:59.999999Z into year 10000.
    return _EPOCH + timedelta(microseconds=micros)


def micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def check_roster_gaps(station: Station) -> int:
    """Raise an alert for each gap in the roster within the next 24 hours."""
    now = utc(station.clock.now())
    # Looking back from midnight a week ago finds where a gap that is going on now
    # began, so its alert has the same subject on every check (a gap longer than that
    # is reported again once a day); not before the station was set up (its first user),
    # so that a new station's first gap is not dated days before it existed.
    since = (now - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    with station.db.read() as conn:
        born = conn.execute(select(func.min(users.c.created_at))).scalar_one()
        if born is not None:
            since = max(since, utc(int(born)).replace(microsecond=0))
        shift_list, override_list = load_roster(conn)
        known = conn.execute(
            select(alerts_table.c.subject, alerts_table.c.detail).where(
                alerts_table.c.kind == "roster_gap", alerts_table.c.subject >= _subject(since)
            )
        ).all()
    holes = [h for h in roster.gaps(shift_list, override_list, since, now + GAP_HORIZON) if h[1] > now]
    current = {_subject(start): (start, end) for start, end in holes}
    # A gap alarmed before that is gone (filled, or over): its alert stops paging, and is
    # raised again if the gap opens again after someone acknowledged it.
    gone = sorted(r.subject for r in known if r.subject not in current and "over" not in json.loads(r.detail))
    if not current and not gone:
        return 0
    raised = 0
    with station.tx() as tx:
        alerts.condition_over(tx, "roster_gap", gone, "the gap is filled or over")
        for subject, (start, end) in current.items():
            detail = {"from": rfc3339(micros(start)), "until": rfc3339(micros(end))}
            raised += alerts.raise_alert(tx, "roster_gap", subject, detail)
    return raised


def _subject(at: datetime) -> str:
    """A roster gap alert's subject: where the gap begins."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _invalid(exc: roster.RosterError) -> InvalidInput:
    """A roster error about a shift or override not stored yet (so numbered 0)."""
    return InvalidInput(re.sub(r"^(shift|override) 0: ", "", str(exc)))


def _user_id(conn: Connection, name: str, *, on_duty: bool = False) -> int:
    """The id of an enabled user; with `on_duty`, one whose role may be put on duty."""
    row = conn.execute(select(users.c.id, users.c.disabled, users.c.role).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    if row.disabled:
        raise Conflict(f"user {name!r} is disabled; enable them first")
    if on_duty and row.role not in ON_DUTY_ROLES:
        raise InvalidInput(
            f"user {name!r} is {row.role}, who cannot work calls, so cannot be on duty;"
            f" the roster takes {', '.join(ON_DUTY_ROLES)}"
        )
    return int(row.id)


def _parse_local(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput(f"{what}: expected a local date and time like 2026-11-27T06:00")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{what}: expected a local date and time like 2026-11-27T06:00, got {value!r}"
        ) from None
    if at.tzinfo is not None:
        raise InvalidInput(f"{what}: give the wall time without an offset; the zone is --tz")
    return at.replace(microsecond=0)


def shift_json(row: Any, user: str, idle: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "user": user,
        "start_local": row.start_local,
        "tz": row.tz,
        "duration_s": row.duration_s,
        "rrule": row.rrule,
        "covers_nothing": idle,
    }


def add_shift(
    station: Station, actor: str, user: str, start_local: Any, tz: Any, duration_s: Any, rrule: Any = None
) -> dict[str, Any]:
    start = _parse_local(start_local, "start")
    if not isinstance(tz, str):
        raise InvalidInput("tz: expected an IANA time zone name such as Europe/Berlin")
    tz_info = zone(tz)
    if isinstance(duration_s, bool) or not isinstance(duration_s, int):
        raise InvalidInput(f"duration: expected whole seconds, got {duration_s!r}")
    if rrule is not None and not isinstance(rrule, str):
        raise InvalidInput("rrule: expected RRULE text such as FREQ=DAILY")
    shift = roster.Shift(0, user, start.replace(tzinfo=tz_info), timedelta(seconds=duration_s), rrule)
    try:
        roster.check_shift(shift)
        normalised = roster.parse_rrule(rrule) if rrule else None
    except roster.RosterError as exc:
        raise _invalid(exc) from None
    _check_recordable(shift)
    with station.tx() as tx:
        user_id = _user_id(tx.conn, user, on_duty=True)
        result = tx.conn.execute(
            insert(shifts).values(
                user_id=user_id,
                start_local=start.isoformat(timespec="seconds"),
                tz=tz,
                duration_s=duration_s,
                rrule=normalised,
                created_at=tx.now,
            )
        )
        shift_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        accounts.record(tx.conn, tx.now, actor, "shift.add", f"{shift_id} {user}")
        row = tx.conn.execute(select(shifts).where(shifts.c.id == shift_id)).one()
    return shift_json(row, user)


def _check_recordable(shift: roster.Shift) -> None:
    """The station records times in the years 0001 to 9999 in UTC (`core.clock`): a
    shift's first occurrence must fit in them."""
    try:
        shift.start.astimezone(UTC) + shift.duration
    except OverflowError:
        where = f"{shift.start.replace(tzinfo=None).isoformat()} {shift.start.tzinfo}"
        beyond = (
            "ends after 9999-12-31T23:59:59Z"
            if shift.start.year > 1
            else "starts before 0001-01-01T00:00:00Z"
        )
        raise InvalidInput(
            f"start: a shift from {where} {beyond}; the station records times in the years 0001 to 9999 UTC"
        ) from None


def _remove(station: Station, actor: str, table: Table, row_id: int, what: str) -> None:
    """Delete one roster row by id, or `not_found`; recorded in the audit trail."""
    with station.tx() as tx:
        if tx.conn.execute(table.delete().where(table.c.id == row_id)).rowcount != 1:
            raise NotFound(f"no {what} {row_id}")
        accounts.record(tx.conn, tx.now, actor, f"{what}.remove", str(row_id))


def remove_shift(station: Station, actor: str, shift_id: int) -> None:
    _remove(station, actor, shifts, shift_id, "shift")


def add_override(
    station: Station, actor: str, user: str, start: Any, end: Any, replaces: str | None = None
) -> dict[str, Any]:
    start_at, end_at = _instant(start, "start"), _instant(end, "end")
    override = roster.Override(0, user, replaces, utc(start_at), utc(end_at))
    try:
        roster.check_override(override)
    except roster.RosterError as exc:
        raise _invalid(exc) from None
    with station.tx() as tx:
        user_id = _user_id(tx.conn, user, on_duty=True)
        replaces_id = _user_id(tx.conn, replaces) if replaces else None
        # The same override twice is a slip (a command run again): removing "the" override
        # later would leave its twin in force.
        twin = tx.conn.execute(
            select(roster_overrides.c.id).where(
                roster_overrides.c.user_id == user_id,
                roster_overrides.c.replaces_user_id.is_(None)
                if replaces_id is None
                else roster_overrides.c.replaces_user_id == replaces_id,
                roster_overrides.c.start_at == start_at,
                roster_overrides.c.end_at == end_at,
            )
        ).first()
        if twin is not None:
            raise Conflict(
                f"override {twin.id} is this one already ({user} for {replaces or '-'}); nothing changed"
            )
        result = tx.conn.execute(
            insert(roster_overrides).values(
                user_id=user_id,
                replaces_user_id=replaces_id,
                start_at=start_at,
                end_at=end_at,
                created_at=tx.now,
            )
        )
        override_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        accounts.record(tx.conn, tx.now, actor, "override.add", f"{override_id} {user} for {replaces or '-'}")
    return {
        "id": override_id,
        "user": user,
        "replaces": replaces,
        "start": rfc3339(start_at),
        "end": rfc3339(end_at),
    }


def _instant(value: Any, what: str) -> int:
    try:
        return parse_rfc3339(value)
    except (ValueError, TypeError):
        raise InvalidInput(
            f"{what}: expected an RFC 3339 time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z,"
            f" such as 2026-11-27T06:00:00Z, got {value!r:.80}"
        ) from None


def remove_override(station: Station, actor: str, override_id: int) -> None:
    _remove(station, actor, roster_overrides, override_id, "override")


def roster_view(station: Station, at: int | None = None) -> dict[str, Any]:
    """Who is on duty at `at` (default now), the next handover, the gaps in the next 24
    hours, and every shift and override; times in UTC and in the station's time zone."""
    time_zone = station.time_zone
    local = zone(time_zone)
    when = utc(station.clock.now() if at is None else at)
    with station.db.read() as conn:
        all_shifts, all_overrides, idle = _read_roster(conn)
        rows = conn.execute(select(shifts).order_by(shifts.c.id)).all()  # as stored, for shift_json
    shift_list, override_list = _covering(all_shifts, all_overrides, idle)
    handover = roster.next_handover(shift_list, override_list, when)

    def both(t: datetime | None) -> dict[str, str] | None:
        if t is None:
            return None
        try:
            shown = t.astimezone(local)
        except OverflowError:  # its local date is in year 10000 (or 0): say it in UTC
            shown = t
        return {
            "utc": t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "local": shown.isoformat(timespec="seconds"),
        }

    return {
        "at": both(when),
        "time_zone": time_zone,
        "on_duty": roster.on_duty(shift_list, override_list, when),
        "next_handover": both(handover),
        "on_duty_after_handover": (
            roster.on_duty(shift_list, override_list, handover) if handover is not None else None
        ),
        "gaps": [
            {"from": both(a), "until": both(b)}
            for a, b in roster.gaps(shift_list, override_list, when, roster.add_clamped(when, GAP_HORIZON))
        ],
        "shifts": [
            shift_json(r, shift.user, idle.get(shift.user)) for r, shift in zip(rows, all_shifts, strict=True)
        ],
        "overrides": [
            {
                "id": o.id,
                "user": o.user,
                "replaces": o.replaces,
                "start": both(o.start),
                "end": both(o.end),
                "covers_nothing": idle.get(str(o.user)),
            }
            for o in all_overrides
        ],
    }


def roster_week(station: Station, days: int = 7) -> dict[str, Any]:
    """The roster as a calendar: each day of the next `days` in the station's time zone,
    with the shifts and overrides that touch it; gaps; who is on duty now."""
    local = zone(station.time_zone)
    now = utc(station.clock.now())
    first = now.astimezone(local).replace(hour=0, minute=0, second=0, microsecond=0)
    end = first + timedelta(days=days)
    with station.db.read() as conn:
        all_shifts, all_overrides, idle = _read_roster(conn)
    # Who is on duty counts only those who cover; the calendar lists everyone's entries,
    # marked where they cover nothing, so that a supervisor sees what to remove.
    shift_list, override_list = _covering(all_shifts, all_overrides, idle)

    def both(t: datetime) -> dict[str, str]:
        return {
            "utc": t.astimezone(UTC).isoformat(timespec="minutes").replace("+00:00", "Z"),
            "local": t.astimezone(local).strftime("%H:%M"),
        }

    entries: list[tuple[datetime, datetime, dict[str, Any]]] = []
    for shift in all_shifts:
        why = idle.get(shift.user)
        for start, stop in roster.occurrences(shift, first, end):
            entries.append(
                (start, stop, {"user": shift.user, "kind": "shift", "shift": shift.id, "covers_nothing": why})
            )
    for o in all_overrides:
        if o.user is not None and o.start < end and o.end > first:
            why = idle.get(o.user)
            info = {"user": o.user, "kind": "override", "replaces": o.replaces, "covers_nothing": why}
            entries.append((o.start, o.end, info))
    calendar = []
    for i in range(days):
        day_start = first + timedelta(days=i)
        day_end = day_start + timedelta(days=1)
        items = [
            {**info, "start": both(max(s, day_start)), "end": both(min(e, day_end))}
            for s, e, info in sorted(entries, key=lambda x: (x[0], x[2]["user"]))
            if s < day_end and e > day_start
        ]
        calendar.append(
            {"date": day_start.date().isoformat(), "weekday": day_start.strftime("%A"), "entries": items}
        )
    return {
        "time_zone": station.time_zone,
        "on_duty": roster.on_duty(shift_list, override_list, now),
        "days": calendar,
        "gaps": [
            {"from": both(a), "until": both(b)} for a, b in roster.gaps(shift_list, override_list, now, end)
        ],
    }
