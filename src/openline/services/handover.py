"""Handover: the outgoing officer's note with a snapshot of everything still open, for
the incoming officer to acknowledge; one left unacknowledged too long raises an alert."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select, update

from openline.adapters.schema import alerts as alerts_table
from openline.adapters.schema import calls, handovers
from openline.core.calls import State
from openline.core.clock import MICROS, rfc3339
from openline.core.encoding import blank, control_character
from openline.errors import Conflict, InvalidInput, NotFound
from openline.services import accounts, alerts, pages
from openline.services.station import Station

MAX_NOTE = 4000


HANDOVER_ACK_S = 30 * 60  # a handover nobody acknowledged for this long raises an alert


def open_items(conn: Connection) -> dict[str, Any]:
    """What a watch must not forget: calls ringing or picked up (and not closed), calls
    missed whose alert nobody acknowledged, and every other open alert, with its detail (a
    conflict's subject is only its row number; the detail names both notices)."""
    live = conn.execute(
        select(calls.c.id, calls.c.peer, calls.c.direction, calls.c.priority, calls.c.state)
        .where(calls.c.state.in_([State.RINGING.value, State.PICKED_UP.value]))
        .order_by(calls.c.placed_at)
    ).all()
    open_alerts = conn.execute(
        select(alerts_table.c.id, alerts_table.c.kind, alerts_table.c.subject, alerts_table.c.detail)
        .where(alerts_table.c.acknowledged_at.is_(None))
        .order_by(alerts_table.c.id)
    ).all()
    missed = {a.subject for a in open_alerts if a.kind == "missed_call"}
    missed_calls = conn.execute(
        select(calls.c.id, calls.c.peer, calls.c.direction, calls.c.priority, calls.c.state).where(
            calls.c.id.in_(missed)
        )
    ).all()
    return {
        "calls": [dict(r._mapping) for r in [*live, *missed_calls]],
        "alerts": [
            {"id": a.id, "kind": a.kind, "subject": a.subject, "detail": json.loads(a.detail)}
            for a in open_alerts
        ],
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
    if not isinstance(note, str) or blank(note):
        raise InvalidInput("note: say what the next watch must know")
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"note: at most {MAX_NOTE} characters, got {len(note)}")
    if (control := control_character(note)) is not None:
        raise InvalidInput(f"note: must not contain control characters, got {control}")
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
    station: Station, *, content: bool, pending_only: bool = False, limit: int = 20, before: int | None = None
) -> list[dict[str, Any]]:
    """Handovers newest first; with `before` (a handover's id), those older than it."""
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be 1 to 1000, got {limit}")
    query = select(handovers).order_by(handovers.c.id.desc()).limit(limit)
    if pending_only:
        query = query.where(handovers.c.acknowledged_at.is_(None))
    with station.db.read() as conn:
        if before is not None:
            query = query.where(pages.after(conn, handovers, before, (handovers.c.id,), "handover"))
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
            alerts.raise_alert(
                tx,
                "handover_unacknowledged",
                str(h.id),
                {"from": h.from_user, "written_at": rfc3339(h.created_at)},
            )
            for h in late
        )
