"""The watch floor: escalation of ringing calls, the pick-up lease, alerts, rosters.

Timers live in the database. An inbound call that starts ringing gets a copy of its
line's escalation policy and `next_escalation_at = now`; `escalate_due` fires every due
step in one transaction per batch (claimed with `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several `serve` processes share the work and a restart loses no step):
it writes the notifications to send and an `escalated` entry in the call's event log,
and schedules the next step. A step fires late rather than never; the catch-all repeats
for as long as the call rings. A pick-up is a lease: if the officer who picked up does
nothing for the line's re-ring timeout, the call rings again (`rering`).

`audit_escalations` is the independent check: every ringing call must have a next step
that is not overdue, or an alert is raised.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from sqlalchemy import Connection, Table, bindparam, func, insert, select, update

from openline.adapters import db
from openline.adapters.schema import (
    alerts,
    call_events,
    calls,
    escalation_policies,
    handovers,
    lines,
    notifications,
    roster_overrides,
    shifts,
    users,
)
from openline.core import escalation as esc
from openline.core import roster
from openline.core.calls import State
from openline.core.clock import MICROS, parse_rfc3339, rfc3339
from openline.errors import Conflict, InvalidInput, NotFound
from openline.services import accounts, outbox
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.watch")
MAX_BATCH = 500  # due escalations fired per transaction
OVERDUE_S = 30  # an escalation this late is reported by the auditor loop
GAP_HORIZON = timedelta(hours=24)


@dataclass
class Fired:
    """What one escalation step did, for the event log."""

    kind: str
    position: esc.Position
    targets: tuple[str, ...]
    recipients: list[str] = field(default_factory=list)
    webhooks: int = 0


# Policies ---------------------------------------------------------------------------


def policy_of_line(conn: Connection, line_id: str) -> esc.Policy:
    row = conn.execute(
        select(escalation_policies.c.policy).where(escalation_policies.c.line_id == line_id)
    ).first()
    return esc.DEFAULT_POLICY if row is None else esc.loads(row.policy)


def _line_of_peer(conn: Connection, peer: str) -> Any:
    row = conn.execute(select(lines).where(lines.c.peer == peer)).first()
    if row is None:
        raise NotFound(f"no line to {peer!r}; add its card with `openline line add`")
    return row


def show_policy(station: Station, peer: str) -> dict[str, Any]:
    with station.db.read() as conn:
        line = _line_of_peer(conn, peer)
        row = conn.execute(
            select(escalation_policies).where(escalation_policies.c.line_id == line.id)
        ).first()
    policy = esc.DEFAULT_POLICY if row is None else esc.loads(row.policy)
    return {
        "peer": peer,
        "policy": policy.to_json(),
        "default": row is None,
        "updated_at": None if row is None else rfc3339(row.updated_at),
        "updated_by": None if row is None else row.updated_by,
        "rering_timeout_s": line.rering_timeout_s,
    }


def set_policy(station: Station, actor: str, peer: str, data: Any) -> dict[str, Any]:
    """Replace a line's policy. Calls already ringing keep the copy they started with."""
    policy = esc.parse_policy(data)
    with station.tx() as tx:
        line = _line_of_peer(tx.conn, peer)
        tx.conn.execute(escalation_policies.delete().where(escalation_policies.c.line_id == line.id))
        tx.conn.execute(
            insert(escalation_policies).values(
                line_id=line.id, policy=policy.dumps(), updated_at=tx.now, updated_by=actor
            )
        )
        accounts.record(tx.conn, tx.now, actor, "policy.set", peer)
    return show_policy(station, peer)


def ringing_columns(conn: Connection, line_id: str, now: int) -> dict[str, Any]:
    """The escalation columns of a call that starts ringing now: its own copy of the
    policy, and the first step due at once."""
    return {
        "escalation": policy_of_line(conn, line_id).dumps(),
        "escalation_step": esc.START.step,
        "escalation_round": esc.START.round,
        "next_escalation_at": now,
        "lease_until": None,
    }


def lease_columns(conn: Connection, line_id: str, now: int) -> dict[str, Any]:
    """The columns of a call our officer has just picked up or acted on: the lease runs
    for the line's re-ring timeout, then the call rings again from the first step."""
    timeout = conn.execute(select(lines.c.rering_timeout_s).where(lines.c.id == line_id)).scalar_one()
    until = now + int(timeout) * MICROS
    return {
        "lease_until": until,
        "next_escalation_at": until,
        "escalation_step": esc.START.step,
        "escalation_round": esc.START.round,
    }


# Alerts -----------------------------------------------------------------------------


def raise_alert(tx: Tx, kind: str, subject: str, detail: dict[str, Any]) -> bool:
    """Raise an alert unless one of this kind about this subject exists. Returns whether
    it is new. Alerts carry metadata only."""
    exists = tx.conn.execute(
        select(alerts.c.id).where(alerts.c.kind == kind, alerts.c.subject == subject)
    ).first()
    if exists:
        return False
    tx.conn.execute(
        insert(alerts).values(
            kind=kind, subject=subject, detail=json.dumps(detail, sort_keys=True), raised_at=tx.now
        )
    )
    tx.touched.add("alerts")
    log.warning("alert raised", kind=kind, subject=subject, **detail)
    return True


def alert_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "subject": row.subject,
        "detail": json.loads(row.detail),
        "raised_at": rfc3339(row.raised_at),
        "acknowledged_at": rfc3339(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
    }


def list_alerts(station: Station, *, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be 1 to 1000, got {limit}")
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if open_only:
        query = query.where(alerts.c.acknowledged_at.is_(None))
    with station.db.read() as conn:
        return [alert_json(r) for r in conn.execute(query)]


def acknowledge_alert(station: Station, actor: str, alert_id: int) -> dict[str, Any]:
    with station.tx() as tx:
        row = tx.conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        if row.acknowledged_at is not None:
            raise Conflict(
                f"alert {alert_id} was acknowledged already, by {row.acknowledged_by} "
                f"at {rfc3339(row.acknowledged_at)}"
            )
        tx.conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(acknowledged_at=tx.now, acknowledged_by=actor)
        )
        accounts.record(tx.conn, tx.now, actor, "alert.acknowledge", f"{alert_id} {row.kind}")
        tx.touched.add("alerts")
        row = tx.conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
    return alert_json(row)


# Rosters ----------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None


def load_roster(conn: Connection) -> tuple[list[roster.Shift], list[roster.Override]]:
    """Shifts and overrides of enabled users (a disabled user is on nobody's roster)."""
    names = {
        r.id: r.name
        for r in conn.execute(select(users.c.id, users.c.name).where(users.c.disabled.is_(False)))
    }
    out_shifts = [
        roster.Shift(
            r.id,
            names[r.user_id],
            datetime.fromisoformat(r.start_local).replace(tzinfo=ZoneInfo(r.tz)),
            timedelta(seconds=r.duration_s),
            r.rrule,
        )
        for r in conn.execute(select(shifts).order_by(shifts.c.id))
        if r.user_id in names
    ]
    out_overrides = [
        roster.Override(
            r.id,
            names[r.user_id],
            names.get(r.replaces_user_id) if r.replaces_user_id is not None else None,
            _utc(r.start_at),
            _utc(r.end_at),
        )
        for r in conn.execute(select(roster_overrides).order_by(roster_overrides.c.id))
        if r.user_id in names
    ]
    return out_shifts, out_overrides


def _utc(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / MICROS, UTC)


def _micros(at: datetime) -> int:
    return round(at.timestamp() * MICROS)


# Escalation -------------------------------------------------------------------------


def _resolve(tx: Tx, targets: tuple[str, ...]) -> tuple[list[Any], bool, list[str]]:
    """Users to notify (rows with name, email, role), whether the station's webhooks are
    included, and who is on duty. The users and the roster are read once per transaction
    (`Tx.memo`): a batch of due steps shares them."""
    if "users" not in tx.memo:
        query = select(users.c.name, users.c.email, users.c.role).where(users.c.disabled.is_(False))
        tx.memo["users"] = tx.conn.execute(query.order_by(users.c.name)).all()
    on_duty: list[str] = []
    if "on_duty" in targets:
        if "on_duty" not in tx.memo:
            shift_list, override_list = load_roster(tx.conn)
            tx.memo["on_duty"] = roster.on_duty(shift_list, override_list, _utc(tx.now))
        on_duty = tx.memo["on_duty"]
    wanted = {t[5:] for t in targets if t.startswith("user:")} | set(on_duty)
    roles = {t[5:] for t in targets if t.startswith("role:")}
    rows = [r for r in tx.memo["users"] if r.name in wanted or r.role in roles]
    return rows, "webhook" in targets, on_duty


def _notify(
    station: Station,
    tx: Tx,
    call: Any,
    kind: str,
    title: str,
    text: str,
    recipients: list[Any],
    webhook: bool,
) -> int:
    config = station.notify
    link = f"{config.console_url.rstrip('/')}/calls/{call.id}" if config.console_url else None
    body = text + (f"\n{link}" if link else "")
    rows: list[dict[str, Any]] = []

    def add(recipient: str, channel: str, address: str) -> None:
        console = channel == "console"  # shown by the console itself: nothing to send
        rows.append(
            {
                "id": outbox.new_id(),
                "call_id": call.id,
                "kind": kind,
                "recipient": recipient,
                "channel": channel,
                "address": address,
                "title": title,
                "text": body,
                "created_at": tx.now,
                "status": "sent" if console else "pending",
                "attempts": 0,
                "next_attempt_at": None if console else tx.now,
                "sent_at": tx.now if console else None,
            }
        )

    for user in recipients:
        add(user.name, "console", user.name)
        if config.email and user.email:
            add(user.name, "email", user.email)
    if webhook:
        for url in config.webhook_urls:
            add("station", "webhook", url)
    for row in rows:
        tx.insert_later(notifications, row)
    return sum(1 for r in rows if r["channel"] == "webhook")


def _title(call: Any, kind: str, now: int) -> str:
    ringing_for = max(0, (now - int(call.ringing_at or now)) // MICROS)
    what = {"call.missed": "was missed", "call.rering": "rings again: no action since pick-up"}.get(
        kind, f"ringing for {ringing_for} s"
    )
    return f"{call.priority.upper()} call from {call.peer} {what}"


def _fire(
    station: Station, tx: Tx, call: Any, kind: str, step: esc.Step, pos: esc.Position, due_at: int
) -> Fired:
    recipients, webhook, on_duty = _resolve(tx, step.targets)
    title = _title(call, kind, tx.now)
    text = f"Call {call.id} on the line with {call.peer}; escalation {pos.describe()}."
    webhooks = _notify(station, tx, call, kind, title, text, recipients, webhook)
    fired = Fired(kind, pos, step.targets, [r.name for r in recipients], webhooks)
    detail = {
        "step": pos.describe(),
        "targets": list(step.targets),
        "recipients": fired.recipients,
        "webhooks": webhooks,
        "due_at": rfc3339(due_at),
        "late_ms": max(0, (tx.now - due_at) // 1000),
    }
    if "on_duty" in step.targets:
        detail["on_duty"] = on_duty
    tx.touched.add("calls")
    tx.insert_later(
        call_events,
        {
            "call_id": call.id,
            "at": tx.now,
            "event": "escalated" if kind != "call.rering" else "rering",
            "actor": "system",
            "envelope_id": None,
            "detail": json.dumps(detail, sort_keys=True),
        },
    )
    if not recipients and not webhooks:
        # Never silent: a step that reaches nobody is itself an alarm.
        raise_alert(
            tx,
            "escalation_unheard",
            call.id,
            {"call": call.id, "step": pos.describe(), "targets": list(step.targets)},
        )
    return fired


def next_escalation(station: Station) -> int | None:
    with station.db.read() as conn:
        return conn.execute(select(func.min(calls.c.next_escalation_at))).scalar_one()  # type: ignore[no-any-return]


def escalate_due(station: Station) -> int:
    """Fire every escalation step that is due. Returns how many fired."""
    due_at = next_escalation(station)
    if due_at is None or due_at > station.clock.now():
        return 0  # the common case, answered by a read
    fired = 0
    with station.tx() as tx:
        query = (
            select(calls)
            .where(calls.c.next_escalation_at <= tx.now)
            .order_by(calls.c.next_escalation_at)
            .limit(MAX_BATCH)
        )
        for call in tx.conn.execute(db.for_update(tx.conn, query, skip_locked=True)).all():
            fired += _escalate(station, tx, call)
        updates = tx.memo.pop("escalation_updates", [])
        if updates:  # one statement for the batch
            tx.conn.execute(_ADVANCE, updates)
        if fired:
            tx.new_deadline = True
    return fired


def _escalate(station: Station, tx: Tx, call: Any) -> int:
    state = State(call.state)
    if call.escalation is None or state not in (State.RINGING, State.PICKED_UP):
        tx.conn.execute(
            update(calls).where(calls.c.id == call.id).values(next_escalation_at=None, lease_until=None)
        )
        return 0
    policy = esc.loads(call.escalation)
    due_at = int(call.next_escalation_at)
    kind = "call.ringing" if state is State.RINGING else "call.rering"
    pos = esc.Position(int(call.escalation_round), int(call.escalation_step))
    if state is State.PICKED_UP and call.lease_until is not None:
        pos = esc.START  # the lease ran out: ring again from the first step
    step = esc.step_at(policy, pos)
    _fire(station, tx, call, kind, step, pos, due_at)
    nxt = esc.advance(policy, pos)
    # Steps keep their schedule even when fired late (a restart in the middle loses none
    # and fires them in order); the catch-all repeats from now, so an outage does not
    # turn into a burst of identical pages.
    base = tx.now if pos.step == esc.FINAL else due_at
    tx.memo.setdefault("escalation_updates", []).append(
        {
            "b_id": call.id,
            "b_step": nxt.step,
            "b_round": nxt.round,
            "b_next": max(base + step.delay_s * MICROS, due_at + 1),
        }
    )
    return 1


_ADVANCE = (
    update(calls)
    .where(calls.c.id == bindparam("b_id"))
    .values(
        escalation_step=bindparam("b_step"),
        escalation_round=bindparam("b_round"),
        next_escalation_at=bindparam("b_next"),
        lease_until=None,
    )
)


def on_missed(station: Station, tx: Tx, call: Any) -> None:
    """A call rang out unanswered: tell the catch-all targets and raise an alert."""
    if call.escalation is None:
        return
    policy = esc.loads(call.escalation)
    recipients, webhook, _ = _resolve(tx, policy.final.targets)
    title = _title(call, "call.missed", tx.now)
    text = f"Call {call.id} on the line with {call.peer} rang until its deadline with nobody picking up."
    _notify(station, tx, call, "call.missed", title, text, recipients, webhook)
    raise_alert(tx, "missed_call", call.id, {"call": call.id, "peer": call.peer, "priority": call.priority})


def audit_escalations(station: Station) -> int:
    """The independent check: every ringing inbound call must have a next escalation step
    that is not overdue. Returns how many alerts it raised."""
    now = station.clock.now()
    with station.db.read() as conn:
        stalled = conn.execute(
            select(calls.c.id, calls.c.next_escalation_at).where(
                calls.c.state == State.RINGING.value,
                calls.c.direction == "in",
                (calls.c.next_escalation_at.is_(None))
                | (calls.c.next_escalation_at < now - OVERDUE_S * MICROS),
            )
        ).all()
    if not stalled:
        return 0
    raised = 0
    with station.tx() as tx:
        for call_id, next_at in stalled:
            detail = {"call": call_id, "next_escalation_at": rfc3339(next_at)}
            raised += raise_alert(tx, "escalation_stalled", call_id, detail)
    return raised


def check_roster_gaps(station: Station) -> int:
    """Raise an alert for each gap in the roster within the next 24 hours."""
    now = _utc(station.clock.now())
    # Looking back from midnight a week ago finds where a gap that is going on now
    # began, so its alert has the same subject on every check (a gap longer than that
    # is reported again once a day).
    since = (now - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    with station.db.read() as conn:
        shift_list, override_list = load_roster(conn)
    holes = [h for h in roster.gaps(shift_list, override_list, since, now + GAP_HORIZON) if h[1] > now]
    if not holes:
        return 0
    raised = 0
    with station.tx() as tx:
        for start, end in holes:
            subject = start.strftime("%Y-%m-%dT%H:%M:%SZ")
            detail = {"from": rfc3339(_micros(start)), "until": rfc3339(_micros(end))}
            raised += raise_alert(tx, "roster_gap", subject, detail)
    return raised


# Roster management ------------------------------------------------------------------


def _invalid(exc: roster.RosterError) -> InvalidInput:
    """A roster error about a shift or override not stored yet (so numbered 0)."""
    return InvalidInput(re.sub(r"^(shift|override) 0: ", "", str(exc)))


def _user_id(conn: Connection, name: str) -> int:
    row = conn.execute(select(users.c.id, users.c.disabled).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    if row.disabled:
        raise Conflict(f"user {name!r} is disabled; enable them first")
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


def shift_json(row: Any, user: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "user": user,
        "start_local": row.start_local,
        "tz": row.tz,
        "duration_s": row.duration_s,
        "rrule": row.rrule,
    }


def add_shift(
    station: Station, actor: str, user: str, start_local: Any, tz: Any, duration_s: Any, rrule: Any = None
) -> dict[str, Any]:
    start = _parse_local(start_local, "start")
    if not isinstance(tz, str):
        raise InvalidInput("tz: expected an IANA time zone name such as Europe/Berlin")
    zone = _zone(tz)
    if isinstance(duration_s, bool) or not isinstance(duration_s, int):
        raise InvalidInput(f"duration: expected whole seconds, got {duration_s!r}")
    if rrule is not None and not isinstance(rrule, str):
        raise InvalidInput("rrule: expected RRULE text such as FREQ=DAILY")
    shift = roster.Shift(0, user, start.replace(tzinfo=zone), timedelta(seconds=duration_s), rrule)
    try:
        roster.check_shift(shift)
        normalised = roster.parse_rrule(rrule) if rrule else None
    except roster.RosterError as exc:
        raise _invalid(exc) from None
    with station.tx() as tx:
        user_id = _user_id(tx.conn, user)
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
    try:
        start_at, end_at = parse_rfc3339(start), parse_rfc3339(end)
    except (ValueError, TypeError):
        raise InvalidInput("start and end: expected RFC 3339 times such as 2026-11-27T06:00:00Z") from None
    override = roster.Override(0, user, replaces, _utc(start_at), _utc(end_at))
    try:
        roster.check_override(override)
    except roster.RosterError as exc:
        raise _invalid(exc) from None
    with station.tx() as tx:
        user_id = _user_id(tx.conn, user)
        replaces_id = _user_id(tx.conn, replaces) if replaces else None
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


def remove_override(station: Station, actor: str, override_id: int) -> None:
    _remove(station, actor, roster_overrides, override_id, "override")


def roster_view(station: Station, at: int | None = None) -> dict[str, Any]:
    """Who is on duty at `at` (default now), the next handover, the gaps in the next 24
    hours, and every shift and override; times in UTC and in the station's time zone."""
    time_zone = station.time_zone
    zone = _zone(time_zone)
    when = _utc(station.clock.now() if at is None else at)
    with station.db.read() as conn:
        shift_list, override_list = load_roster(conn)
        rows = conn.execute(select(shifts).order_by(shifts.c.id)).all()
        names = {r.id: r.name for r in conn.execute(select(users.c.id, users.c.name))}
    handover = roster.next_handover(shift_list, override_list, when)

    def both(t: datetime | None) -> dict[str, str] | None:
        if t is None:
            return None
        return {
            "utc": t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "local": t.astimezone(zone).isoformat(timespec="seconds"),
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
            for a, b in roster.gaps(shift_list, override_list, when, when + GAP_HORIZON)
        ],
        "shifts": [shift_json(r, names[r.user_id]) for r in rows],
        "overrides": [
            {
                "id": o.id,
                "user": o.user,
                "replaces": o.replaces,
                "start": both(o.start),
                "end": both(o.end),
            }
            for o in override_list
        ],
    }


# Handover ---------------------------------------------------------------------------

MAX_NOTE = 4000
HANDOVER_ACK_S = 30 * 60  # a handover nobody acknowledged for this long raises an alert


def open_items(conn: Connection) -> dict[str, Any]:
    """What a watch must not forget: calls ringing or picked up (and not closed), calls
    missed whose alert nobody acknowledged, and every other open alert."""
    live = conn.execute(
        select(calls.c.id, calls.c.peer, calls.c.direction, calls.c.priority, calls.c.state)
        .where(calls.c.state.in_([State.RINGING.value, State.PICKED_UP.value]))
        .order_by(calls.c.placed_at)
    ).all()
    open_alerts = conn.execute(
        select(alerts.c.id, alerts.c.kind, alerts.c.subject)
        .where(alerts.c.acknowledged_at.is_(None))
        .order_by(alerts.c.id)
    ).all()
    missed = {a.subject for a in open_alerts if a.kind == "missed_call"}
    missed_calls = conn.execute(
        select(calls.c.id, calls.c.peer, calls.c.direction, calls.c.priority, calls.c.state).where(
            calls.c.id.in_(missed)
        )
    ).all()
    return {
        "calls": [dict(r._mapping) for r in [*live, *missed_calls]],
        "alerts": [dict(r._mapping) for r in open_alerts],
    }


def handover_json(row: Any, content: bool) -> dict[str, Any]:
    return {
        "id": row.id,
        "from": row.from_user,
        "note": row.note if content else None,
        "open_items": json.loads(row.open_items),
        "created_at": rfc3339(row.created_at),
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": rfc3339(row.acknowledged_at),
    }


def hand_over(station: Station, actor: str, note: Any) -> dict[str, Any]:
    """The outgoing officer writes the handover: a note, and a snapshot of everything
    still open, which the incoming officer must acknowledge."""
    if not isinstance(note, str) or not note.strip():
        raise InvalidInput("note: say what the next watch must know")
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"note: at most {MAX_NOTE} characters, got {len(note)}")
    with station.tx() as tx:
        items = open_items(tx.conn)
        result = tx.conn.execute(
            insert(handovers).values(
                from_user=actor, note=note, open_items=json.dumps(items, sort_keys=True), created_at=tx.now
            )
        )
        handover_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        accounts.record(tx.conn, tx.now, actor, "handover.give", str(handover_id))
        tx.touched.add("handovers")
        row = tx.conn.execute(select(handovers).where(handovers.c.id == handover_id)).one()
    return handover_json(row, True)


def acknowledge_handover(station: Station, actor: str, handover_id: int) -> dict[str, Any]:
    with station.tx() as tx:
        row = tx.conn.execute(select(handovers).where(handovers.c.id == handover_id)).first()
        if row is None:
            raise NotFound(f"no handover {handover_id}")
        if row.acknowledged_at is not None:
            raise Conflict(f"handover {handover_id} was acknowledged already, by {row.acknowledged_by}")
        if row.from_user == actor:
            raise Conflict("the incoming officer acknowledges a handover, not the one who wrote it")
        tx.conn.execute(
            update(handovers)
            .where(handovers.c.id == handover_id)
            .values(acknowledged_by=actor, acknowledged_at=tx.now)
        )
        accounts.record(tx.conn, tx.now, actor, "handover.acknowledge", str(handover_id))
        tx.touched.add("handovers")
        row = tx.conn.execute(select(handovers).where(handovers.c.id == handover_id)).one()
    return handover_json(row, True)


def list_handovers(
    station: Station, *, content: bool, pending_only: bool = False, limit: int = 20
) -> list[dict[str, Any]]:
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be 1 to 1000, got {limit}")
    query = select(handovers).order_by(handovers.c.id.desc()).limit(limit)
    if pending_only:
        query = query.where(handovers.c.acknowledged_at.is_(None))
    with station.db.read() as conn:
        return [handover_json(r, content) for r in conn.execute(query)]


def audit_handovers(station: Station) -> int:
    """Raise an alert for each handover nobody acknowledged within HANDOVER_ACK_S."""
    cutoff = station.clock.now() - HANDOVER_ACK_S * MICROS
    with station.db.read() as conn:
        late = conn.execute(
            select(handovers.c.id, handovers.c.from_user, handovers.c.created_at).where(
                handovers.c.acknowledged_at.is_(None), handovers.c.created_at <= cutoff
            )
        ).all()
    if not late:
        return 0
    with station.tx() as tx:
        return sum(
            raise_alert(
                tx,
                "handover_unacknowledged",
                str(h.id),
                {"from": h.from_user, "written_at": rfc3339(h.created_at)},
            )
            for h in late
        )


def roster_week(station: Station, days: int = 7) -> dict[str, Any]:
    """The roster as a calendar: each day of the next `days` in the station's time zone,
    with the shifts and overrides that touch it; gaps; who is on duty now."""
    zone = _zone(station.time_zone)
    now = _utc(station.clock.now())
    first = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    end = first + timedelta(days=days)
    with station.db.read() as conn:
        shift_list, override_list = load_roster(conn)

    def both(t: datetime) -> dict[str, str]:
        return {
            "utc": t.astimezone(UTC).isoformat(timespec="minutes").replace("+00:00", "Z"),
            "local": t.astimezone(zone).strftime("%H:%M"),
        }

    entries: list[tuple[datetime, datetime, dict[str, Any]]] = []
    for shift in shift_list:
        for start, stop in roster.occurrences(shift, first, end):
            entries.append((start, stop, {"user": shift.user, "kind": "shift", "shift": shift.id}))
    for o in override_list:
        if o.start < end and o.end > first:
            entries.append((o.start, o.end, {"user": o.user, "kind": "override", "replaces": o.replaces}))
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
