"""One stored notice: reading its row, moving it through the state machine
(`openline.core.notices`), and its ledger entries. What every notice use case shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, or_, select, update

from openline.adapters import db
from openline.adapters.schema import notice_conflicts, notices
from openline.core import notices as nm
from openline.core.evidence import named
from openline.core.notices import Event, Party, State
from openline.errors import IllegalTransition, NotFound
from openline.services import alerts, ledger, outbox
from openline.services.station import Tx

# The column that records when a notice entered each state.
TIME_COLUMN = {
    State.SENT: "sent_at",
    State.DELIVERED: "delivered_at",
    State.ACKNOWLEDGED: "acknowledged_at",
    State.REJECTED: "rejected_at",
    State.WITHDRAWN: "withdrawn_at",
    State.AMENDED: "amended_at",
    State.EXPIRED: "expired_at",
    State.DISCARDED: "discarded_at",
    State.REMOVED: "removed_at",
}


def party_of(row: Any) -> Party:
    """Which side of the notice this station is: the sender of our own, the receiver of
    the peer's."""
    return Party.SENDER if row.direction == "out" else Party.RECEIVER


def get(conn: Connection, notice_id: str, *, for_update: bool = False) -> Any:
    query = select(notices).where(notices.c.id == notice_id)
    row = conn.execute(db.for_update(conn, query) if for_update else query).first()
    if row is None:
        raise NotFound(f"no notice with id {notice_id!r}{outbox.refused_on_arrival(conn, notice_id)}")
    return row


def transition(
    tx: Tx, row: Any, event: Event, by: Party, at: int | None = None, values: dict[str, Any] | None = None
) -> State:
    """Apply `event` to the stored notice `row`, recording when (`at`, or now)."""
    try:
        new = nm.apply(State(row.state), event, by)
    except IllegalTransition as exc:
        raise IllegalTransition(f"notice {row.id}: {exc.detail}") from None
    column = TIME_COLUMN.get(new)
    changes: dict[str, Any] = {"state": new.value, "updated_at": tx.now, **(values or {})}
    if column is not None:
        changes[column] = tx.now if at is None else at
    tx.conn.execute(update(notices).where(notices.c.id == row.id).values(**changes))
    tx.touched.add("notices")
    _end_alarms(tx, row.id, State(row.state), new)
    return new


def _end_alarms(tx: Tx, notice_id: str, before: State, after: State) -> None:
    """Alarms about a notice whose cause has gone stop paging (`alerts.condition_over`):
    `notice_unacknowledged` once it is answered or over, `notice_conflict` once it is no
    longer active (withdrawn, amended, rejected, removed, expired)."""
    if before in nm.AWAITING and after not in nm.AWAITING:
        why = f"the notice is {after.value}"
        alerts.condition_over(tx, "notice_unacknowledged", [f"notice {notice_id}"], why)
    if before in nm.ACTIVE and after not in nm.ACTIVE:
        ids = tx.conn.execute(
            select(notice_conflicts.c.id).where(
                or_(notice_conflicts.c.notice_a == notice_id, notice_conflicts.c.notice_b == notice_id)
            )
        ).scalars()
        why = f"notice {notice_id} is {after.value}"
        alerts.condition_over(tx, "notice_conflict", [f"conflict {i}" for i in ids], why)


def log(
    tx: Tx,
    event_type: str,
    notice_id: str,
    line: str,
    peer: str,
    actor: str,
    envelope_id: str | None,
    at: int | None = None,
    **facts: Any,
) -> None:
    """The ledger entry of a notice event, at `at` (an event caused by a peer's envelope:
    the time in its signed header, as both stations record it) or now: metadata only (the
    text is in the sealed body, committed to by the envelope's own entry)."""
    metadata: dict[str, Any] = {"notice": notice_id, "line": line, "peer": peer, "actor": actor, **facts}
    if envelope_id is not None:
        metadata["envelope"] = envelope_id
    # Indexed under every notice it names (`prove`): a removal's entries under its site too.
    others = sorted(named(metadata) - {notice_id})
    when = tx.now if at is None else at
    ledger.append(tx, event_type, when, metadata, call_id=notice_id, also_id=others[0] if others else None)
