"""Paging: whom an escalation step reaches, and the notifications that reach them.

Shared by the two things that escalate until somebody acts: a ringing call
(`services.watch`) and an open alert (`services.alerts`). Both follow an escalation
policy (`core.escalation`): a line's own, or the built-in one. Notifications are written
as rows in the caller's transaction; the notifier's workers send them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func, select

from openline.adapters import db
from openline.adapters.schema import escalation_policies, lines, notifications, users
from openline.core import escalation as esc
from openline.core import roster
from openline.services import outbox, rosters
from openline.services.station import Station, Tx


def earliest(station: Station, table: Table) -> int | None:
    """When the first step of `table`'s rows (calls or alerts) is due, if any is: read
    first, so that the common case, nothing due, takes no write lock."""
    with station.db.read() as conn:
        due: int | None = conn.execute(select(func.min(table.c.next_escalation_at))).scalar_one()
    return due


def claim_due(tx: Tx, table: Table, limit: int) -> list[Any]:
    """The rows of `table` whose step is due, oldest first, at most `limit`, locked for
    this transaction. Several `serve` processes may share the work: on PostgreSQL each
    skips the rows another holds; on SQLite the write transaction holds them all."""
    query = (
        select(table)
        .where(table.c.next_escalation_at <= tx.now)
        .order_by(table.c.next_escalation_at)
        .limit(limit)
    )
    return list(tx.conn.execute(db.for_update(tx.conn, query, skip_locked=True)).all())


def policy_of_line(conn: Connection, line_id: str) -> esc.Policy:
    row = conn.execute(
        select(escalation_policies.c.policy).where(escalation_policies.c.line_id == line_id)
    ).first()
    return esc.DEFAULT_POLICY if row is None else esc.loads(row.policy)


def policy_of_peer(conn: Connection, peer: Any) -> esc.Policy:
    """The escalation policy of the line to `peer`; the built-in one when there is no
    such line (or `peer` is not a name at all)."""
    if not isinstance(peer, str):
        return esc.DEFAULT_POLICY
    line_id = conn.execute(select(lines.c.id).where(lines.c.peer == peer)).scalar()
    return esc.DEFAULT_POLICY if line_id is None else policy_of_line(conn, line_id)


def resolve(tx: Tx, targets: tuple[str, ...]) -> tuple[list[Any], bool, list[str]]:
    """Users to notify (rows with name, email, role), whether the station's webhooks are
    included, and who is on duty. The users and the roster are read once per transaction
    (`Tx.memo`): a batch of due steps shares them."""
    if "users" not in tx.memo:
        query = select(users.c.name, users.c.email, users.c.role).where(users.c.disabled.is_(False))
        tx.memo["users"] = tx.conn.execute(query.order_by(users.c.name)).all()
    on_duty: list[str] = []
    if "on_duty" in targets:
        if "on_duty" not in tx.memo:
            shift_list, override_list = rosters.load_roster(tx.conn)
            tx.memo["on_duty"] = roster.on_duty(shift_list, override_list, rosters.utc(tx.now))
        on_duty = tx.memo["on_duty"]
    wanted = {t[5:] for t in targets if t.startswith("user:")} | set(on_duty)
    roles = {t[5:] for t in targets if t.startswith("role:")}
    rows = [r for r in tx.memo["users"] if r.name in wanted or r.role in roles]
    return rows, "webhook" in targets, on_duty


def notify(
    station: Station,
    tx: Tx,
    *,
    kind: str,
    title: str,
    text: str,
    path: str,
    recipients: list[Any],
    webhook: bool,
    call_id: str | None = None,
    alert_id: int | None = None,
) -> int:
    """Write the notifications of one step: each recipient on the console and, where the
    station has an SMTP server and the user an address, by e-mail; the station's webhooks
    if `webhook`. `path` is the console page the text links to. Returns how many webhook
    notifications were written."""
    config = station.notify
    link = f"{config.console_url.rstrip('/')}{path}" if config.console_url else None
    body = text + (f"\n{link}" if link else "")
    rows: list[dict[str, Any]] = []

    def add(recipient: str, channel: str, address: str) -> None:
        console = channel == "console"  # shown by the console itself: nothing to send
        rows.append(
            {
                "id": outbox.new_id(),
                "call_id": call_id,
                "alert_id": alert_id,
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
