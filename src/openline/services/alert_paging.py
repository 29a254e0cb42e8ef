"""Paging for open alerts: an alert nobody has acknowledged escalates the way a ringing
call does, until somebody acknowledges it.

A line that is down at 3 a.m., a timer loop that stalled, an escalation that reached
nobody: each is an alert on the console, and a console nobody is looking at tells nobody.
So a new alert pages along an escalation policy: that of the line to the peer its detail
names (whom to wake for that line), else the built-in one (the officers on duty, then
the senior watch officer, then the commander, once more; then everyone on duty, the
senior, the commander, the administrators and the webhooks, every 5 minutes). The policy
is copied onto the alert when it first pages, as a call copies its line's policy when it
starts ringing.

Steps are fired by the auditor loop, which runs every few seconds apart from the timer
loop (whose stalling is itself one of the alerts). Due alerts are claimed with
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several `serve` processes share the work.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import structlog
from sqlalchemy import bindparam, update

from openline.adapters.schema import alerts
from openline.core import escalation as esc
from openline.core.clock import rfc3339
from openline.services import paging
from openline.services.alerts import urgency
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.alerts")
MAX_BATCH = 100  # due alert steps fired per transaction
_TEXT_DETAIL_MAX = 600  # characters of the alert's detail quoted in a page


def page_due(station: Station) -> int:
    """Fire every alert paging step that is due. Returns how many fired."""
    due_at = paging.earliest(station, alerts)
    if due_at is None or due_at > station.clock.now():
        return 0  # the common case, answered by a read
    pages: list[dict[str, Any]] = []
    with station.tx() as tx:
        # The most urgent first: a flood's first pages to each address go one by one.
        due = sorted(paging.claim_due(tx, alerts, MAX_BATCH), key=lambda row: urgency(row.kind))
        updates = [_page(station, tx, row, pages) for row in due]
        if updates:  # one statement for the batch
            paging.write_rows(tx, paging.fold(station, tx, pages, "alert"))
            tx.conn.execute(_ADVANCE, updates)
            tx.touched.add("alerts")
    return len(updates)


def _page(station: Station, tx: Tx, row: Any, pages: list[dict[str, Any]]) -> dict[str, Any]:
    """Fire `row`'s due step: its pages go into `pages` (written once the round is
    folded); returns the row's update."""
    if row.escalation is None:
        policy = paging.policy_of_peer(tx.conn, json.loads(row.detail).get("peer"))
    else:
        policy = esc.loads(row.escalation)
    pos = esc.Position(int(row.escalation_round), int(row.escalation_step))
    step = esc.step_at(policy, pos)
    due_at = int(row.next_escalation_at)
    recipients, webhook, on_duty = paging.resolve(tx, step.targets)
    rows = paging.notify(
        station,
        tx,
        kind=f"alert.{row.kind}",
        title=_title(row),
        text=_text(row, pos),
        path="/",  # the board lists open alerts, each with its Acknowledge button
        recipients=recipients,
        webhook=webhook,
        alert_id=row.id,
        write=False,
    )
    pages.extend(rows)
    webhooks = paging.webhooks(rows)
    late_ms = max(0, (tx.now - due_at) // 1000)
    who = [r.name for r in recipients]
    # Said once the round has committed: a round that rolls back paged nobody.
    if who or webhooks:
        tx.after_commit(functools.partial(
            log.info,
            "alert paged",
            alert=row.id,
            kind=row.kind,
            step=pos.describe(),
            recipients=who,
            webhooks=webhooks,
            late_ms=late_ms,
        ))  # fmt: skip
    else:
        # Shown on the board all the same; the schedule goes on to the next step.
        tx.after_commit(functools.partial(
            log.warning,
            "alert page reached nobody",
            alert=row.id,
            kind=row.kind,
            step=pos.describe(),
            targets=list(step.targets),
            on_duty=on_duty,
        ))  # fmt: skip
    nxt, next_at = esc.after(policy, pos, due_at, tx.now)
    return {
        "b_id": row.id,
        "b_policy": policy.dumps(),
        "b_step": nxt.step,
        "b_round": nxt.round,
        "b_next": next_at,
    }


def _title(row: Any) -> str:
    """`LINE DOWN: moscow since 2026-11-27T03:12:40.000000Z`: the kind, then the subject."""
    return f"{row.kind.replace('_', ' ').upper()}: {row.subject}"


def _text(row: Any, pos: esc.Position) -> str:
    detail = row.detail if len(row.detail) <= _TEXT_DETAIL_MAX else row.detail[:_TEXT_DETAIL_MAX] + "…"
    return (
        f"Alert {row.id} ({row.kind}) raised at {rfc3339(row.raised_at)}, not acknowledged; "
        f"paging {pos.describe()}. Acknowledge it on the console's board or with "
        f"`openline alert ack {row.id}`.\nDetail: {detail}"
    )


_ADVANCE = (
    update(alerts)
    .where(alerts.c.id == bindparam("b_id"), alerts.c.acknowledged_at.is_(None))
    .values(
        escalation=bindparam("b_policy"),
        escalation_step=bindparam("b_step"),
        escalation_round=bindparam("b_round"),
        next_escalation_at=bindparam("b_next"),
    )
)
