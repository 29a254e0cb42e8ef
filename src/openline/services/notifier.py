"""Sending notifications: one worker per channel, and one per webhook URL, so a slow or
failing channel (or webhook) never holds up the others.

The escalation engine writes notifications as rows (`status = pending`) in the
transaction that fires the step. A worker claims due rows of its channel (`FOR UPDATE
SKIP LOCKED` on PostgreSQL; a claim pushes `next_attempt_at` ahead, so a crash only
delays a retry), sends each outside any transaction, and records the outcome: sent, or
retried with capped backoff, or after `MAX_ATTEMPTS` failed with an alert. Every
attempt and outcome is written to the call's event log. Delivery is at least once; the
notification id is the receiver's idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import ColumnElement, select, update

from openline.adapters import db
from openline.adapters.notify import Channel, Notification, NotifyError
from openline.adapters.schema import notifications
from openline.core import backoff
from openline.core.clock import MICROS
from openline.services import alerts, events, paging
from openline.services.station import Station
from openline.services.timers import Loop

log = structlog.get_logger("openline.notifier")
MAX_ATTEMPTS = 8
CLAIM_SECONDS = 120  # a claimed row is retried after this if its worker died mid-send
BATCH = 50
POLL_SECONDS = 1.0
MAX_ROUNDS = 20  # batches in a row before the worker sleeps


@dataclass(frozen=True)
class Lane:
    """Which of a channel's notifications one worker sends: those to one address (`only`),
    or those to none of `others` (the addresses other workers of the channel have: a
    webhook URL taken out of the settings while its pages waited)."""

    only: str | None = None
    others: tuple[str, ...] = ()

    def where(self) -> list[ColumnElement[bool]]:
        if self.only is not None:
            return [notifications.c.address == self.only]
        return [notifications.c.address.not_in(self.others)] if self.others else []


EVERY = Lane()


def lanes(channel: Channel, webhook_urls: tuple[str, ...]) -> list[Lane]:
    """The workers a channel gets: a webhook one per URL, and one for the rest, so that a
    dead chat hook does not hold up the pager gateway's pages behind its timeouts."""
    if channel.name != "webhook" or not webhook_urls:
        return [EVERY]
    return [*(Lane(only=url) for url in webhook_urls), Lane(others=webhook_urls)]


@dataclass(frozen=True)
class Outcome:
    row: Any
    error: str | None


def _claim(station: Station, channel: str, lane: Lane = EVERY) -> list[Any]:
    with station.db.read() as conn:
        due = conn.execute(
            select(notifications.c.id)
            .where(
                notifications.c.channel == channel,
                notifications.c.status == "pending",
                notifications.c.next_attempt_at <= station.clock.now(),
                *lane.where(),
            )
            .limit(1)
        ).first()
    if due is None:
        return []  # the common case, answered by a read
    with station.tx() as tx:
        query = (
            select(notifications)
            .where(
                notifications.c.channel == channel,
                notifications.c.status == "pending",
                notifications.c.next_attempt_at <= tx.now,
                *lane.where(),
            )
            .order_by(notifications.c.next_attempt_at)
            .limit(BATCH)
        )
        rows = tx.conn.execute(db.for_update(tx.conn, query, skip_locked=True)).all()
        if rows:
            tx.conn.execute(
                update(notifications)
                .where(notifications.c.id.in_([r.id for r in rows]))
                .values(
                    next_attempt_at=tx.now + CLAIM_SECONDS * MICROS,
                    attempts=notifications.c.attempts + 1,
                )
            )
    return list(rows)


def _message(station: Station, row: Any) -> Notification:
    """What a channel sends of a notification row. The row's text ends with its link to
    the console, when the station has one (`paging.notify`): the link goes in its own
    field, which a webhook carries as `link` and an e-mail puts after the text."""
    text, link = row.text, None
    console = station.notify.console_url
    head, newline, last = row.text.rpartition("\n")
    if console and newline and last.startswith(console.rstrip("/")):
        text, link = head, last
    return Notification(
        id=row.id,
        kind=row.kind,
        station=station.name,
        title=row.title,
        text=text,
        link=link,
        at=row.created_at,
        call_id=row.call_id,
        alert_id=row.alert_id,
        recipient=row.recipient,
    )


def _record(station: Station, outcomes: list[Outcome]) -> None:
    with station.tx() as tx:
        for outcome in outcomes:
            row, attempt = outcome.row, int(outcome.row.attempts) + 1
            if outcome.error is None:
                values: dict[str, Any] = {"status": "sent", "sent_at": tx.now, "last_error": None}
                event = "notified"
            elif attempt >= MAX_ATTEMPTS:
                values = {"status": "failed", "next_attempt_at": None, "last_error": outcome.error[:1000]}
                event = "notification_failed"
                alerts.raise_alert(
                    tx,
                    "notification_failed",
                    row.id,
                    {
                        "channel": row.channel,
                        "recipient": row.recipient,
                        "address": paging.address_of(station, row.channel, row.address),
                        "call": row.call_id,
                        "alert": row.alert_id,
                    },
                )
            else:
                retry_at = tx.now + round(backoff.delay(attempt) * MICROS)
                values = {"next_attempt_at": retry_at, "last_error": outcome.error[:1000]}
                event = "notification_retry"
            tx.conn.execute(update(notifications).where(notifications.c.id == row.id).values(**values))
            if row.call_id is not None:
                detail = {"channel": row.channel, "recipient": row.recipient, "attempt": attempt}
                if outcome.error is not None:
                    detail["error"] = outcome.error[:300]
                events.record(tx, row.call_id, tx.now, event, "system", None, detail)


def dispatch_due(station: Station, channel: Channel, lane: Lane = EVERY) -> int:
    """Send this channel's due notifications (in this lane) once each. Returns how many
    were tried."""
    rows = _claim(station, channel.name, lane)
    outcomes: list[Outcome] = []
    for row in rows:
        try:
            channel.send(_message(station, row), row.address)
            outcomes.append(Outcome(row, None))
        except NotifyError as exc:
            log.info("notification not delivered", channel=channel.name, id=row.id, error=str(exc)[:300])
            outcomes.append(Outcome(row, str(exc)))
    if outcomes:
        _record(station, outcomes)
    return len(rows)


class Notifier(Loop):
    """One channel's worker thread (or one lane of it)."""

    def __init__(self, station: Station, channel: Channel, lane: Lane = EVERY, number: int = 0) -> None:
        self.name = f"notify-{channel.name}" + (f"-{number}" if number else "")
        self.channel = channel
        self.lane = lane
        super().__init__(station)

    def step(self) -> float:
        for _ in range(MAX_ROUNDS):
            if dispatch_due(self.station, self.channel, self.lane) < BATCH:
                break
        return POLL_SECONDS
