"""Expiry: an active notice whose last volume has ended becomes `expired`.

Each station's timer loop records it on its own (nothing crosses the line: both hold the
same volumes and the same clock rule), with a `notice.expired` ledger entry. An expired
notice is no longer checked for conflicts. The state is recorded at the notice's end, so
both stations record the same time however late their timers ran.
"""

from __future__ import annotations

from sqlalchemy import select

from openline.adapters import db
from openline.adapters.schema import notices
from openline.core import notices as nm
from openline.core.notices import Event
from openline.services.lines import lock_line
from openline.services.notice_rows import log, party_of, transition
from openline.services.station import Station

_ACTIVE = [s.value for s in nm.ACTIVE]


def next_expiry(station: Station) -> int | None:
    """When the next active notice expires: just after its last volume ends."""
    with station.db.read() as conn:
        row = conn.execute(
            select(notices.c.ends_at)
            .where(notices.c.state.in_(_ACTIVE), notices.c.ends_at.is_not(None))
            .order_by(notices.c.ends_at)
            .limit(1)
        ).first()
    return None if row is None else int(row.ends_at) + 1


def expire_due(station: Station) -> int:
    """Record `expired` for every active notice whose last volume has ended. Returns how many."""
    due_at = next_expiry(station)
    if due_at is None or due_at > station.clock.now():
        return 0  # the common case, answered by a read: no write lock
    expired = 0
    with station.tx() as tx:
        due = tx.conn.execute(
            select(notices.c.id, notices.c.line_id).where(
                notices.c.state.in_(_ACTIVE), notices.c.ends_at < tx.now
            )
        ).all()
        for notice_id, line_id in due:
            lock_line(tx.conn, line_id)
            # Several `serve` processes may share one database: each notice expires once.
            query = select(notices).where(notices.c.id == notice_id, notices.c.state.in_(_ACTIVE))
            row = tx.conn.execute(db.for_update(tx.conn, query, skip_locked=True)).first()
            if row is None:
                continue
            me = party_of(row)
            transition(tx, row, Event.EXPIRE, me, at=int(row.ends_at))
            log(tx, "notice.expired", row.id, row.line_id, row.peer, "system", None, int(row.ends_at))
            expired += 1
    return expired
