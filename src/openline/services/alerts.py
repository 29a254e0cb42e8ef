"""Alerts: conditions someone on the watch floor must look at (a missed call, an
escalation that reached nobody or stalled, a notification that gave up, a roster gap,
an unacknowledged handover, a peer holding other line terms, a line whose envelopes wait
too long for the peer's receipts, an envelope refused for good by either station). One
per kind and subject; open until acknowledged. Alerts carry metadata only.

An open alert pages people until somebody acknowledges it, as a ringing call does
(`services.alert_paging` fires the steps). `notification_failed` does not page: it is
about the channels that paging would use, and a channel that is down would otherwise
feed it for ever."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, case, func, insert, select, update

from openline.adapters.schema import alerts, calls
from openline.core import escalation as esc
from openline.core.calls import PRIORITIES
from openline.core.clock import rfc3339
from openline.errors import Conflict, InvalidInput, NotFound
from openline.services import accounts, pages
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.alerts")
UNPAGED = frozenset({"notification_failed"})
ENVELOPE_REFUSED = "envelope_refused"  # a peer refused our envelope for good, or we its
# Which alerts of one round page one by one first, before a flood is folded (paging.fold):
# a line that does not get calls through, and calls nobody answered, before the rest.
URGENCY = (
    "line_down",
    "unanswered_call",
    "missed_call",
    "call_states_differ",
    "escalation_unheard",
    "escalation_stalled",
    "ledger_fork",
    "ledger_inconsistent",
    "peer_moved",  # a station seen moving may be two copies of it, or a thief with its key
    "clock_skew",
    "clock_stepped",
    "notice_unacknowledged",
    "notice_conflict",
    "envelope_refused",
    "handover_unacknowledged",
    "roster_gap",
    "line_terms_differ",
)


def urgency(kind: str) -> int:
    """Sorts alert kinds the most urgent first (`URGENCY`; any other kind last)."""
    return URGENCY.index(kind) if kind in URGENCY else len(URGENCY)


def raise_alert(
    tx: Tx,
    kind: str,
    subject: str,
    detail: dict[str, Any],
    *,
    policy: esc.Policy | None = None,
    start: esc.Position = esc.START,
    first_page_at: int | None = None,
) -> bool:
    """Raise an alert unless one of this kind about this subject exists. Returns whether
    it is new. Alerts carry metadata only.

    A new alert pages from `start` at `first_page_at` (at once by default) along
    `policy`; without one, it follows the escalation policy of the line to the peer its
    detail names, or the built-in one, copied when it first pages.

    One that exists is raised again only if its condition was over (`condition_over`),
    acknowledged or not: the condition is back (a roster gap that was filled and reopened),
    and it is open and pages as if new. (While it was over and open it paged nobody and
    said the gap was filled: taking the fix away left the gap silent.)

    The log says it was raised once the transaction has committed, not before: most
    transactions roll back on a full disk."""
    exists = tx.conn.execute(
        select(alerts.c.id, alerts.c.acknowledged_at, alerts.c.detail).where(
            alerts.c.kind == kind, alerts.c.subject == subject
        )
    ).first()
    if exists and "over" not in json.loads(exists.detail):
        return False
    paged = kind not in UNPAGED
    values = {
        "detail": json.dumps(detail, sort_keys=True),
        "raised_at": tx.now,
        "escalation": policy.dumps() if paged and policy is not None else None,
        "escalation_step": start.step if paged else None,
        "escalation_round": start.round if paged else None,
        "next_escalation_at": (tx.now if first_page_at is None else first_page_at) if paged else None,
    }
    if exists:
        again = {"acknowledged_at": None, "acknowledged_by": None}
        tx.conn.execute(update(alerts).where(alerts.c.id == exists.id).values(**values, **again))
    else:
        tx.conn.execute(insert(alerts).values(kind=kind, subject=subject, **values))
    tx.touched.add("alerts")
    said = "alert raised again" if exists else "alert raised"
    tx.after_commit(functools.partial(log.warning, said, kind=kind, subject=subject, **detail))
    return True


def alert_json(row: Any) -> dict[str, Any]:
    paging = None
    if row.next_escalation_at is not None:
        position = esc.Position(int(row.escalation_round), int(row.escalation_step))
        paging = {"step": position.describe(), "next_at": rfc3339(row.next_escalation_at)}
    return {
        "id": row.id,
        "kind": row.kind,
        "subject": row.subject,
        "detail": json.loads(row.detail),
        "raised_at": rfc3339(row.raised_at),
        "acknowledged_at": rfc3339(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
        "paging": paging,
    }


_OPEN = alerts.c.acknowledged_at.is_(None)


def list_alerts(
    station: Station, *, open_only: bool = False, limit: int = 100, before: int | None = None
) -> list[dict[str, Any]]:
    """Alerts newest first; with `before` (an alert's id), those older than it."""
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be 1 to 1000, got {limit}")
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if open_only:
        query = query.where(_OPEN)
    with station.db.read() as conn:
        if before is not None:
            query = query.where(pages.after(conn, alerts, before, (alerts.c.id,), "alert"))
        return [alert_json(r) for r in conn.execute(query)]


# Kinds whose subject is a call's id. The board ranks them by that call's priority and
# names it, read from the call (the detail of older alerts, and of every
# call_states_differ, does not say its priority).
ABOUT_CALLS = (
    "missed_call",
    "unanswered_call",
    "call_states_differ",
    "escalation_unheard",
    "escalation_stalled",
)

_MOST_URGENT = (
    select(
        alerts, calls.c.priority.label("call_priority"), calls.c.peer.label("call_peer"), calls.c.direction
    )
    # One primary-key look-up per open alert: the board renders on every live change.
    .outerjoin(calls, (alerts.c.kind.in_(ABOUT_CALLS)) & (calls.c.id == alerts.c.subject))
    .where(_OPEN)
    .order_by(
        case({k: i for i, k in enumerate(URGENCY)}, value=alerts.c.kind, else_=len(URGENCY)),
        # Of one kind, a flash call's alert before a routine one's, however many routine
        # calls were missed since; an alert about no call last.
        case({p: i for i, p in enumerate(PRIORITIES)}, value=calls.c.priority, else_=len(PRIORITIES)),
        alerts.c.id.desc(),
    )
)


def most_urgent_open(station: Station, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` open alerts, the most urgent kinds first (`URGENCY`), of one kind the
    most urgent calls first (flash to routine), then the newest: what the watch board
    lists, so that a flood of lesser alerts cannot push a line that is down, or a missed
    flash call, off it. An alert about a call says that call's priority, its peer and
    whether we placed it (`call`)."""
    with station.db.read() as conn:
        return [_with_call(r) for r in conn.execute(_MOST_URGENT.limit(limit))]


def _with_call(row: Any) -> dict[str, Any]:
    about = None
    if row.call_priority is not None:
        about = {"priority": row.call_priority, "peer": row.call_peer, "direction": row.direction}
    return {**alert_json(row), "call": about}


def open_of_kind(station: Station, kind: str) -> list[dict[str, Any]]:
    """Every open alert of one kind."""
    with station.db.read() as conn:
        return [alert_json(r) for r in conn.execute(select(alerts).where(_OPEN, alerts.c.kind == kind))]


def open_about(conn: Connection, kind: str, subject_prefix: str) -> bool:
    """Whether an alert of `kind` whose subject starts with `subject_prefix` is open."""
    query = select(alerts.c.id).where(
        _OPEN, alerts.c.kind == kind, alerts.c.subject.startswith(subject_prefix, autoescape=True)
    )
    return conn.execute(query.limit(1)).first() is not None


def condition_over(tx: Tx, kind: str, subjects: Sequence[str], why: str) -> int:
    """What these alerts are about has ended (the notice was answered after its deadline;
    a conflicting notice was withdrawn; a roster gap was filled): they page nobody any
    more, and their detail says when and why (`over`). An open one stays open until
    somebody acknowledges it, as every alert does: that it happened is still for the watch
    to see. The same condition coming back raises it again (`raise_alert`). Returns how
    many."""
    if not subjects:
        return 0
    rows = tx.conn.execute(
        select(alerts.c.id, alerts.c.detail).where(
            alerts.c.kind == kind, alerts.c.subject.in_(list(subjects))
        )
    ).all()
    ended = 0
    for row in rows:
        detail = json.loads(row.detail)
        if "over" in detail:
            continue
        detail["over"] = {"at": rfc3339(tx.now), "why": why}
        tx.conn.execute(
            update(alerts)
            .where(alerts.c.id == row.id)
            .values(detail=json.dumps(detail, sort_keys=True), next_escalation_at=None)
        )
        ended += 1
    if ended:
        tx.touched.add("alerts")
    return ended


def open_counts(station: Station) -> dict[str, int]:
    """How many alerts of each kind nobody has acknowledged yet."""
    query = select(alerts.c.kind, func.count()).where(_OPEN).group_by(alerts.c.kind).order_by(alerts.c.kind)
    with station.db.read() as conn:
        return {kind: int(n) for kind, n in conn.execute(query)}


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
            .values(acknowledged_at=tx.now, acknowledged_by=actor, next_escalation_at=None)
        )
        accounts.record(tx.conn, tx.now, actor, "alert.acknowledge", f"{alert_id} {row.kind}")
        tx.touched.add("alerts")
        row = tx.conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
    return alert_json(row)
