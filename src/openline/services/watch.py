"""The watch floor's escalation engine: policies, escalation of ringing calls, the
pick-up lease. (Alerts, the roster and handovers have modules of their own.)

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

from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, func, insert, select, update

from openline.adapters.schema import alerts as alerts_table
from openline.adapters.schema import calls, envelopes, escalation_policies, lines, users
from openline.core import escalation as esc
from openline.core.calls import PRIORITIES, State
from openline.core.clock import MICROS, rfc3339
from openline.errors import InvalidInput, NotFound
from openline.services import accounts, alerts, events, paging
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.watch")
MAX_BATCH = 500  # due escalations fired per transaction
OVERDUE_S = 30  # an escalation this late is reported by the auditor loop
UNANSWERED = "unanswered_call"
UNANSWERED_GRACE_S = 60  # past the answer deadline, a call the peer has said nothing of


@dataclass
class Fired:
    """What one escalation step did, for the event log."""

    kind: str
    position: esc.Position
    targets: tuple[str, ...]
    recipients: list[str] = field(default_factory=list)
    webhooks: int = 0


# Policies ---------------------------------------------------------------------------


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
        "warnings": _warnings(station, policy),
    }


def set_policy(station: Station, actor: str, peer: str, data: Any) -> dict[str, Any]:
    """Replace a line's policy. Calls already ringing keep the copy they started with."""
    policy = esc.parse_policy(data)
    with station.tx() as tx:
        line = _line_of_peer(tx.conn, peer)
        _check_reachable(station, tx, policy)
        tx.conn.execute(escalation_policies.delete().where(escalation_policies.c.line_id == line.id))
        tx.conn.execute(
            insert(escalation_policies).values(
                line_id=line.id, policy=policy.dumps(), updated_at=tx.now, updated_by=actor
            )
        )
        accounts.record(tx.conn, tx.now, actor, "policy.set", peer)
    return show_policy(station, peer)


def _check_reachable(station: Station, tx: Tx, policy: esc.Policy) -> None:
    """Refuse a target that can never reach someone who may answer: a user who does not
    exist, is disabled or may not work calls (an auditor), a role that may not, and a step
    whose only target is the station's webhooks when it has none. Found at 3 a.m. it would
    only raise `escalation_unheard` for a call already ringing; `notify test` refuses the
    same. `webhook` beside other targets is taken without webhooks (the built-in policy
    names it), with a warning (`_warnings`). Who is on duty, and who holds a role, change
    with time and are not asked."""
    named = {t for step in (*policy.steps, policy.final) for t in step.targets}
    faults = []
    people = {t[5:] for t in named if t.startswith("user:")}
    found = {
        r.name: r
        for r in tx.conn.execute(
            select(users.c.name, users.c.role, users.c.disabled).where(users.c.name.in_(sorted(people)))
        )
    }
    for name in sorted(people):
        row = found.get(name)
        if row is None:
            faults.append(f"user:{name}: no such user")
        elif row.disabled:
            faults.append(f"user:{name}: the user is disabled")
        elif row.role not in accounts.CALL_ROLES:
            faults.append(f"user:{name}: a {row.role} may not answer calls")
    for target in sorted(t for t in named if t.startswith("role:")):
        if target[5:] not in accounts.CALL_ROLES:
            faults.append(f"{target}: that role may not answer calls")
    if not station.notify.webhook_urls:
        wheres = [f"policy.steps[{i}]" for i in range(len(policy.steps))] + ["policy.final"]
        for where, step in zip(wheres, (*policy.steps, policy.final), strict=True):
            if step.targets == ("webhook",):
                faults.append(f"{where}: webhook: the station has no webhook_urls")
    if faults:
        raise InvalidInput(f"the policy names targets that reach nobody who may answer: {'; '.join(faults)}")


def _warnings(station: Station, policy: esc.Policy) -> list[str]:
    """What a policy the station takes will not do: `webhook` notifies nobody on a station
    without webhook_urls (settings need a restart, so it may be set before them)."""
    named = {t for step in (*policy.steps, policy.final) for t in step.targets}
    if "webhook" in named and not station.notify.webhook_urls:
        return [
            "webhook: the station has no webhook_urls: that target notifies nobody until they"
            " are set (docs/operations.md, Notifications)"
        ]
    return []


def ringing_columns(conn: Connection, line_id: str, now: int) -> dict[str, Any]:
    """The escalation columns of a call that starts ringing now: its own copy of the
    policy, and the first step due at once."""
    return {
        "escalation": paging.policy_of_line(conn, line_id).dumps(),
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


SUSPENDED_LINE = "suspended"  # services.lines.SUSPENDED (lines imports this module)


def hold_escalation(tx: Tx, line_id: str, actor: str) -> int:
    """The line is suspended: its inbound calls stop paging, since nobody may act on them
    (a ringing one rings out at its deadline, and is missed without paging). Each call's
    event log says so (`paging_held`), or its silence would read as a fault. Returns how
    many calls were paging."""
    paging_now = (
        calls.c.line_id == line_id,
        calls.c.direction == "in",
        calls.c.next_escalation_at.is_not(None),
    )
    held = list(tx.conn.execute(select(calls.c.id).where(*paging_now)).scalars())
    tx.conn.execute(update(calls).where(*paging_now).values(next_escalation_at=None, lease_until=None))
    for call_id in held:
        events.record(tx, call_id, tx.now, "paging_held", actor, None, {"why": "line suspended"})
    return len(held)


def restart_escalation(tx: Tx, line_id: str, actor: str) -> None:
    """The line is resumed: a call still ringing pages again from the step it had reached,
    now; one picked up starts a new lease (`lease_columns`). Each says so in its event
    log (`paging_resumed`)."""
    held = (
        calls.c.line_id == line_id,
        calls.c.direction == "in",
        calls.c.escalation.is_not(None),
        calls.c.next_escalation_at.is_(None),
    )
    live = (State.RINGING.value, State.PICKED_UP.value)
    resumed = list(tx.conn.execute(select(calls.c.id).where(*held, calls.c.state.in_(live))).scalars())
    ringing = update(calls).where(*held, calls.c.state == State.RINGING.value)
    tx.conn.execute(ringing.values(next_escalation_at=tx.now))
    picked_up = update(calls).where(*held, calls.c.state == State.PICKED_UP.value)
    tx.conn.execute(picked_up.values(**lease_columns(tx.conn, line_id, tx.now)))
    for call_id in resumed:
        events.record(tx, call_id, tx.now, "paging_resumed", actor, None, {"why": "line resumed"})
    tx.new_deadline = True


def _suspended(conn: Connection, line_id: str) -> bool:
    state = conn.execute(select(lines.c.state).where(lines.c.id == line_id)).scalar_one()
    return bool(state == SUSPENDED_LINE)


# Escalation -------------------------------------------------------------------------


def _notify_call(
    station: Station,
    tx: Tx,
    call: Any,
    kind: str,
    title: str,
    text: str,
    recipients: list[Any],
    webhook: bool,
    pages: list[dict[str, Any]] | None = None,
) -> int:
    """Page about `call`; the pages go into `pages` if given (written once the round is
    folded), else are written now. Returns how many go to webhooks."""
    rows = paging.notify(
        station,
        tx,
        kind=kind,
        title=title,
        text=text,
        path=f"/calls/{call.id}",
        recipients=recipients,
        webhook=webhook,
        call_id=call.id,
        write=pages is None,
    )
    if pages is not None:
        pages.extend(rows)
    return paging.webhooks(rows)


def _title(call: Any, kind: str, now: int) -> str:
    ringing_for = max(0, (now - int(call.ringing_at or now)) // MICROS)
    what = {"call.missed": "was missed", "call.rering": "rings again: no action since pick-up"}.get(
        kind, f"ringing for {ringing_for} s"
    )
    return f"{call.priority.upper()} call from {call.peer} {what}"


def _fire(
    station: Station,
    tx: Tx,
    call: Any,
    kind: str,
    step: esc.Step,
    pos: esc.Position,
    due_at: int,
    pages: list[dict[str, Any]],
) -> Fired:
    recipients, webhook, on_duty = paging.resolve(tx, step.targets)
    title = _title(call, kind, tx.now)
    text = f"Call {call.id} on the line with {call.peer}; escalation {pos.describe()}."
    webhooks = _notify_call(station, tx, call, kind, title, text, recipients, webhook, pages)
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
    events.record(
        tx, call.id, tx.now, "escalated" if kind != "call.rering" else "rering", "system", None, detail
    )
    if not recipients and not webhooks:
        # Never silent: a step that reaches nobody is itself an alarm.
        alerts.raise_alert(
            tx,
            "escalation_unheard",
            call.id,
            {
                "call": call.id,
                "peer": call.peer,
                "priority": call.priority,
                "step": pos.describe(),
                "targets": list(step.targets),
            },
        )
    return fired


def next_escalation(station: Station) -> int | None:
    return paging.earliest(station, calls)


def escalate_due(station: Station) -> int:
    """Fire every escalation step that is due. Returns how many fired."""
    due_at = next_escalation(station)
    if due_at is None or due_at > station.clock.now():
        return 0  # the common case, answered by a read
    fired = 0
    pages: list[dict[str, Any]] = []
    with station.tx() as tx:
        # The most urgent first: a flood's first pages to each address go one by one.
        for call in sorted(paging.claim_due(tx, calls, MAX_BATCH), key=urgency):
            fired += _escalate(station, tx, call, pages)
        write_pages(station, tx, pages)
        updates = tx.memo.pop("escalation_updates", [])
        if updates:  # one statement for the batch
            tx.conn.execute(_ADVANCE, updates)
        if fired:
            tx.new_deadline = True
    return fired


def write_pages(station: Station, tx: Tx, pages: list[dict[str, Any]]) -> None:
    """Write a round's pages about calls, a flood folded (`paging.fold`)."""
    paging.write_rows(tx, paging.fold(station, tx, pages, "call"))


def urgency(call: Any) -> int:
    """Sorts calls (anything with a `priority`) the most urgent first."""
    return PRIORITIES.index(call.priority) if call.priority in PRIORITIES else len(PRIORITIES)


def _escalate(station: Station, tx: Tx, call: Any, pages: list[dict[str, Any]]) -> int:
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
    _fire(station, tx, call, kind, step, pos, due_at, pages)
    nxt, next_at = esc.after(policy, pos, due_at, tx.now)
    tx.memo.setdefault("escalation_updates", []).append(
        {"b_id": call.id, "b_step": nxt.step, "b_round": nxt.round, "b_next": next_at}
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


def on_missed(station: Station, tx: Tx, call: Any, pages: list[dict[str, Any]] | None = None) -> None:
    """A call rang out unanswered: tell the catch-all targets (the pages go into `pages`
    if given, to be folded with the round's others) and raise an alert."""
    if call.escalation is None or _suspended(tx.conn, call.line_id):
        return  # a suspended line's calls page nobody: nobody may act on them
    policy = esc.loads(call.escalation)
    recipients, webhook, _ = paging.resolve(tx, policy.final.targets)
    title = _title(call, "call.missed", tx.now)
    text = f"Call {call.id} on the line with {call.peer} rang until its deadline with nobody picking up."
    _notify_call(station, tx, call, "call.missed", title, text, recipients, webhook, pages)
    # The catch-all has just been told: the alert pages them again, a catch-all interval
    # from now, until somebody acknowledges it.
    alerts.raise_alert(
        tx,
        "missed_call",
        call.id,
        {"call": call.id, "peer": call.peer, "priority": call.priority},
        policy=policy,
        start=esc.Position(0, esc.FINAL),
        first_page_at=tx.now + policy.final.delay_s * MICROS,
    )


def on_unanswered(tx: Tx, call: Any) -> None:
    """A call we placed rang out at the peer with nobody picking up: our own watch floor
    must know, to try again or use the fallback procedure. The alert pages whom the
    line's policy names until somebody acknowledges it."""
    detail = {"call": call.id, "peer": call.peer, "priority": call.priority}
    alerts.raise_alert(tx, UNANSWERED, call.id, detail)


# When we stored the peer's `call.ringing` of a call, on our clock.
_HEARD_RINGING = (
    select(func.min(envelopes.c.stored_at))
    .where(
        envelopes.c.call_id == calls.c.id,
        envelopes.c.direction == "in",
        envelopes.c.kind == "call.ringing",
    )
    .scalar_subquery()
)


def audit_unanswered(station: Station) -> int:
    """The caller's own check: a call we placed that still rings at the peer more than
    `UNANSWERED_GRACE_S` after the line's answer deadline, with neither a pick-up nor the
    peer's signed `call.missed`, raises `unanswered_call` all the same. A peer whose
    station stopped keeping its deadlines must not leave our call ringing in silence.

    The deadline is the callee's, on its clock, which may be off ours by minutes or hours
    (`peer_clock`); so the check never reads the peer's time. It counts on our clock from
    when the peer's `call.ringing` reached us: the call cannot have started ringing
    later, so the deadline and the grace have passed whatever either clock says.
    Returns how many alerts it raised."""
    now = station.clock.now()
    overdue = _HEARD_RINGING + (lines.c.answer_deadline_s + UNANSWERED_GRACE_S) * MICROS < now
    alerted = select(alerts_table.c.id).where(
        alerts_table.c.kind == UNANSWERED, alerts_table.c.subject == calls.c.id
    )
    with station.db.read() as conn:
        found = conn.execute(
            select(calls.c.id, calls.c.peer, calls.c.priority, calls.c.ringing_at, _HEARD_RINGING)
            .join(lines, lines.c.id == calls.c.line_id)
            .where(
                lines.c.state != SUSPENDED_LINE,  # we stopped listening to the peer ourselves
                calls.c.state == State.RINGING.value,
                calls.c.direction == "out",
                overdue,
                ~alerted.exists(),
            )
        ).all()
    if not found:
        return 0  # the common case, answered by a read
    raised = 0
    with station.tx() as tx:
        for call_id, peer, priority, ringing_at, heard in found:
            detail = {
                "call": call_id,
                "peer": peer,
                "priority": priority,
                "ringing_since": rfc3339(ringing_at),  # the peer's clock, as the call records it
                "ringing_heard_at": rfc3339(heard),  # ours: what the check counts from
            }
            raised += alerts.raise_alert(tx, UNANSWERED, call_id, detail)
    return raised


def audit_escalations(station: Station, *, running_since: int | None = None) -> int:
    """The independent check: every ringing inbound call must have a next escalation step
    that is not overdue. Returns how many alerts it raised.

    `running_since`: when this process started looking. A step that fell due while the
    station was stopped is overdue when it starts again, and the timer loop fires it within
    a second: until the loop has had OVERDUE_S to do so, only a missing step is a stall
    (every restart during a ring paged `escalation_stalled` at the floor, falsely)."""
    now = station.clock.now()
    settled = running_since is None or now - running_since >= OVERDUE_S * MICROS
    with station.db.read() as conn:
        stalled = conn.execute(
            select(calls.c.id, calls.c.peer, calls.c.priority, calls.c.next_escalation_at)
            .join(lines, lines.c.id == calls.c.line_id)
            .where(
                lines.c.state != SUSPENDED_LINE,  # held on purpose (`hold_escalation`)
                calls.c.state == State.RINGING.value,
                calls.c.direction == "in",
                (calls.c.next_escalation_at.is_(None))
                | ((calls.c.next_escalation_at < now - OVERDUE_S * MICROS) & settled),
            )
        ).all()
    if not stalled:
        return 0
    raised = 0
    with station.tx() as tx:
        for call_id, peer, priority, next_at in stalled:
            detail = {
                "call": call_id,
                "peer": peer,
                "priority": priority,
                "next_escalation_at": rfc3339(next_at),
            }
            raised += alerts.raise_alert(tx, "escalation_stalled", call_id, detail)
    return raised
