"""Paging: whom an escalation step reaches, and the notifications that reach them.

Shared by the two things that escalate until somebody acts: a ringing call
(`services.watch`) and an open alert (`services.alert_paging`). Both follow an escalation
policy (`core.escalation`): a line's own, or the built-in one. Notifications are written
as rows in the caller's transaction; the notifier's workers send them. Also here: the
listing of what was sent, and a test page an administrator sends by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, select

from openline.adapters import db
from openline.adapters.notify import shown_address
from openline.adapters.schema import alerts, calls, escalation_policies, lines, notifications, users
from openline.core import escalation as esc
from openline.core import roster
from openline.core.clock import rfc3339
from openline.errors import InvalidInput, NotFound, check_one_of
from openline.services import accounts, outbox, pages, rosters
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
    write: bool = True,
) -> list[dict[str, Any]]:
    """The notifications of one step: each recipient on the console and, where the
    station has an SMTP server and the user an address, by e-mail; the station's webhooks
    if `webhook`. `path` is the console page the text links to. Returns the rows, written
    unless `write` is false (the caller then passes them to `write_rows`)."""
    config = station.notify
    rows: list[dict[str, Any]] = []

    def add(recipient: str, channel: str, address: str) -> None:
        rows.append(
            _row(station, tx, kind, recipient, channel, address, title, text, path, call_id, alert_id)
        )

    for user in recipients:
        add(user.name, "console", user.name)
        if config.email and user.email:
            add(user.name, "email", user.email)
    if webhook:
        for url in config.webhook_urls:
            add("station", "webhook", url)
    if write:
        write_rows(tx, rows)
    return rows


def write_rows(tx: Tx, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        tx.insert_later(notifications, row)


def _row(
    station: Station,
    tx: Tx,
    kind: str,
    recipient: str,
    channel: str,
    address: str,
    title: str,
    text: str,
    path: str,
    call_id: str | None,
    alert_id: int | None,
) -> dict[str, Any]:
    console_url = station.notify.console_url
    link = f"{console_url.rstrip('/')}{path}" if console_url else None
    console = channel == "console"  # shown by the console itself: nothing to send
    return {
        "id": outbox.new_id(),
        "call_id": call_id,
        "alert_id": alert_id,
        "kind": kind,
        "recipient": recipient,
        "channel": channel,
        "address": address,
        "title": title,
        "text": text + (f"\n{link}" if link else ""),
        "created_at": tx.now,
        "status": "sent" if console else "pending",
        "attempts": 0,
        "next_attempt_at": None if console else tx.now,
        "sent_at": tx.now if console else None,
    }


FOLD_AFTER = 3  # pages one person or webhook gets one by one in a round; the rest in one
_FOLDED_LISTED = 20  # titles a folded page lists
# What a folded page says of what it lists: its noun, and how to answer them.
_FOLDS = {
    "alert": ("ALERTS", "alerts", "Acknowledge them on the console's board or with `openline alert ack ID`."),
    "call": ("CALLS", "calls", "Answer them on the console's board or with `openline pickup ID`."),
}
FOLDED = "folded"  # the status of a page sent as part of a folded one


def fold(station: Station, tx: Tx, rows: list[dict[str, Any]], about: str) -> list[dict[str, Any]]:
    """Pages of one round about alerts or calls (`about`), with a flood folded: past
    `FOLD_AFTER` e-mails (or webhook posts) to one address, the rest go as one page,
    `alert.more` or `call.more`, that lists them. Forty notice conflicts raised at once,
    or forty calls a hostile peer places at once, must not be forty e-mails to the
    officer on duty, and again to the senior a minute later. The pages folded in are kept,
    `folded` and never sent, so that each call's and alert's own record still says whom
    it paged; console rows (nothing sent) are all kept as they are. Put the rows in the
    order they matter: the first `FOLD_AFTER` go one by one."""
    upper, noun, answer = _FOLDS[about]
    kept: list[dict[str, Any]] = []
    over: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    counts: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row["recipient"], row["channel"], row["address"])
        counts[key] = counts.get(key, 0) + 1
        if row["channel"] != "console" and counts[key] > FOLD_AFTER:
            row = {**row, "status": FOLDED, "next_attempt_at": None}
            over.setdefault(key, []).append(row)
        kept.append(row)
    for (recipient, channel, address), folded in over.items():
        listed = [f"{r['title']} ({about} {r[f'{about}_id']})" for r in folded[:_FOLDED_LISTED]]
        if len(folded) > _FOLDED_LISTED:
            listed.append(f"and {len(folded) - _FOLDED_LISTED} more")
        head = f"{len(folded)} more {noun} page you, besides the {FOLD_AFTER} sent one by one:"
        text = "\n".join([head, *listed, answer])
        title = f"{len(folded)} MORE {upper} at {station.name}"
        kept.append(
            _row(station, tx, f"{about}.more", recipient, channel, address, title, text, "/", None, None)
        )
    return kept


def webhooks(rows: list[dict[str, Any]]) -> int:
    """How many of the notifications `notify` wrote go to webhooks."""
    return sum(1 for r in rows if r["channel"] == "webhook")


# What was sent, and a test page ------------------------------------------------------

STATUSES = ("pending", "sent", "failed", FOLDED)
CHANNELS = ("console", "email", "webhook")


@dataclass(frozen=True)
class NotificationFilter:
    """Which notifications to list; every field optional."""

    call: str | None = None
    alert: int | None = None
    status: str | None = None
    channel: str | None = None
    limit: int = 100
    before: str | None = None  # a notification's id: those listed after it

    def check(self) -> None:
        if self.status is not None:
            check_one_of("status", self.status, STATUSES)
        if self.channel is not None:
            check_one_of("channel", self.channel, CHANNELS)
        if not 1 <= self.limit <= 1000:
            raise InvalidInput(f"limit must be 1 to 1000, got {self.limit}")


def address_of(station: Station, channel: str, address: str) -> str:
    """A notification's address as listings and alerts show it: a webhook's origin only (its
    path may hold a token), with which of the station's `webhook_urls` it is, so that an
    operator with two hooks on one host can tell which one fails."""
    shown = shown_address(channel, address)
    urls = station.notify.webhook_urls
    if channel == "webhook" and address in urls:
        shown += f" (webhook_urls #{urls.index(address) + 1})"
    return shown


def notification_json(station: Station, row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "channel": row.channel,
        "recipient": row.recipient,
        "address": address_of(station, row.channel, row.address),
        "title": row.title,
        "call": row.call_id,
        "alert": row.alert_id,
        "created_at": rfc3339(row.created_at),
        "status": row.status,
        "attempts": row.attempts,
        "sent_at": rfc3339(row.sent_at),
        "next_attempt_at": rfc3339(row.next_attempt_at) if row.status == "pending" else None,
        "last_error": row.last_error,
    }


def list_notifications(station: Station, f: NotificationFilter) -> list[dict[str, Any]]:
    """Notifications newest first: who was told what, on which channel, and whether it
    went (metadata only; a webhook's address shows its host, not a token in its path)."""
    f.check()
    query = select(notifications).order_by(notifications.c.created_at.desc(), notifications.c.id.desc())
    for column, value in (
        (notifications.c.call_id, f.call),
        (notifications.c.alert_id, f.alert),
        (notifications.c.status, f.status),
        (notifications.c.channel, f.channel),
    ):
        if value is not None:
            query = query.where(column == value)
    with station.db.read() as conn:
        _require_subject(conn, f)
        if f.before is not None:
            order = (notifications.c.created_at, notifications.c.id)
            query = query.where(pages.after(conn, notifications, f.before, order, "notification"))
        return [notification_json(station, r) for r in conn.execute(query.limit(f.limit))]


def _require_subject(conn: Connection, f: NotificationFilter) -> None:
    """The call or alert the listing is filtered on exists, or `not_found`: an id mistyped
    must not read as "nobody was paged about it" (as `calls --peer` refuses an unknown peer)."""
    if f.call is not None and conn.execute(select(calls.c.id).where(calls.c.id == f.call)).first() is None:
        raise NotFound(f"no call with id {f.call!r}")
    if (
        f.alert is not None
        and conn.execute(select(alerts.c.id).where(alerts.c.id == f.alert)).first() is None
    ):
        raise NotFound(f"no alert {f.alert}")


def send_test(station: Station, actor: str, targets: Any) -> list[dict[str, Any]]:
    """A test page to `targets` (as an escalation step names them), sent the way a real
    page is: to see that e-mail and webhooks reach people before a 3 a.m. call needs
    them. Refused, with nothing written, if the targets reach nobody."""
    wanted = esc.parse_targets(targets, "targets")
    with station.tx() as tx:
        recipients, webhook, on_duty = resolve(tx, wanted)
        if not recipients and not (webhook and station.notify.webhook_urls):
            why = ["no enabled user matches"]
            if "on_duty" in wanted and not on_duty:
                why.append("nobody is on duty")
            if webhook:
                why.append("the station has no webhook_urls")
            raise InvalidInput(f"targets {', '.join(wanted)} reach nobody: {'; '.join(why)}")
        rows = notify(
            station,
            tx,
            kind="test",
            title=f"Test page from {station.name}",
            text=f"A test page sent by {actor} to {', '.join(wanted)}; nothing needs doing.",
            path="/",
            recipients=recipients,
            webhook=webhook,
        )
        accounts.record(tx.conn, tx.now, actor, "notification.test", ", ".join(wanted)[:200])
    with station.db.read() as conn:
        written = conn.execute(
            select(notifications)
            .where(notifications.c.id.in_([r["id"] for r in rows]))
            .order_by(notifications.c.recipient, notifications.c.channel)
        ).all()
    return [notification_json(station, r) for r in written]
