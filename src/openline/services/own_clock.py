"""This station's own clock, set while it runs (`core.clock.StepWatch` tells).

Every timer the station keeps is a time on its wall clock: when a ringing call turns
missed, when the next escalation step pages, when a picked-up call's lease runs out,
when an alert pages again, when the deliverer retries a peer, when the ledger asks a
peer again to cosign, when a console session ends. A clock set two hours ahead would
miss every ringing call at once, a few seconds into its ring, and page everyone; one set
an hour back would leave a call ringing for an hour past its deadline, and a line
waiting an hour to retry.

So when the clock is set, every pending timer moves with it: each keeps the time it
had left. And a `clock_stepped` alert tells the watch floor, since the times the station
stamps jump too (the event log, envelopes, the ledger) and the operator should find out
why the clock was that far off. What is already recorded (a deadline a peer was told, a
notice's answer deadline, which both stations hold) is not changed.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import ColumnElement, Table, and_, bindparam, select, update

from openline.adapters.schema import alerts, calls, ledger_peers, lines, notifications, sessions
from openline.core.calls import State
from openline.core.clock import MICROS, rfc3339
from openline.services import alerts as alert_service
from openline.services.station import Station, Tx

KIND = "clock_stepped"
log = structlog.get_logger("openline.clock")

# (table, column, which rows): the timers that are still to come, and only those.
_TIMERS: tuple[tuple[Table, str, ColumnElement[bool] | None], ...] = (
    (calls, "deadline_at", calls.c.state == State.RINGING.value),
    (calls, "next_escalation_at", None),
    (calls, "lease_until", None),
    (alerts, "next_escalation_at", None),
    (lines, "retry_at", None),
    (ledger_peers, "next_attempt_at", None),  # asking the peer to cosign our checkpoint
    (notifications, "next_attempt_at", None),
    (sessions, "expires_at", None),
)


def _moves() -> list[tuple[str, Any]]:
    out = []
    for table, name, only in _TIMERS:
        column = table.c[name]
        where = column.is_not(None) if only is None else and_(column.is_not(None), only)
        moved = update(table).where(where).values({name: column + bindparam("b_step")})
        out.append((f"{table.name}.{name}", moved))
    return out


_MOVES = _moves()


def stepped(station: Station, step: int) -> dict[str, int]:
    """The clock was set `step` µs (signed): move every pending timer by as much, and
    raise the alert. Returns how many timers of each kind moved."""
    with station.tx() as tx:
        moved = move_timers(tx, step)
        detail = {
            "step_s": round(step / MICROS, 3),
            "was": rfc3339(tx.now - step),
            "now": rfc3339(tx.now),
            "timers_moved": sum(moved.values()),
            "ringing_calls": moved["calls.deadline_at"],
        }
        alert_service.raise_alert(tx, KIND, f"clock set at {rfc3339(tx.now)}", detail)
        tx.new_deadline = True  # the timer loop looks at its schedule again
        tx.wake_lines.update(str(i) for i in tx.conn.execute(select(lines.c.id)).scalars())
    log.warning("this station's clock was set", step_s=detail["step_s"], timers_moved=detail["timers_moved"])
    return moved


def move_timers(tx: Tx, step: int) -> dict[str, int]:
    return {name: tx.conn.execute(statement, {"b_step": step}).rowcount for name, statement in _MOVES}
