"""Lines that stopped delivering: a `line_down` alert when something we sent has waited
longer than the station's `line_down_after_s` for the peer's receipt, or when an idle
line's own check (`delivery.check_line`, a handshake after `line_check_s` of silence)
has failed for as long.

A call placed while the peer's station is unreachable (down, cut off, moved, refusing our
envelopes) would otherwise stay `placed` with nobody told: it neither rings there nor is
missed. The watch floor must know within seconds that its call has not got through, and
use the fallback procedure. The check runs in the auditor loop (`timers.Auditor`, every
few seconds), not in the deliverer, so that a deliverer stuck in a request, or gone, is
noticed too. Nothing is written unless an alert is new: one per stall, named by the peer
and the time the oldest waiting envelope was queued (or, for a silent line, the last
contact).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select

from openline.adapters.schema import alerts, calls, envelopes, lines, notices
from openline.core.clock import MICROS, rfc3339
from openline.services import alerts as alerting
from openline.services import outbox
from openline.services.lines import ACTIVE, SUSPENDED
from openline.services.station import Station

KIND = "line_down"
MAX_NAMED = 10  # the waiting calls (and notices) an alert names, oldest first
# What an alert names of what waits: the calls with their priority, the notices with their
# category (an envelope's `call_id` holds either's id).
_NAMED = (
    ("call", calls.c.id, calls.c.priority, calls.c.placed_at),
    ("notice", notices.c.id, notices.c.category, notices.c.created_at),
)

# Built once: the auditor runs these every few seconds.
_PENDING = outbox.waiting(bindparam("b_line"))  # a line's envelopes without a receipt yet
_OLDEST = select(envelopes.c.time).where(*_PENDING).order_by(envelopes.c.seq).limit(1)
_COUNT = select(func.count()).where(*_PENDING)
_REFS = select(envelopes.c.call_id).where(*_PENDING)  # a call's or a notice's id
_LINES = select(
    lines.c.id,
    lines.c.peer,
    lines.c.state,
    lines.c.retry_attempt,
    lines.c.last_error,
    lines.c.last_contact_at,
)
_RAISED = select(alerts.c.id).where(alerts.c.kind == KIND, alerts.c.subject == bindparam("b_subject"))


def subject(peer: str, since: int, *, silent: bool = False) -> str:
    return f"{peer} {'silent ' if silent else ''}since {rfc3339(since)}"


def audit_lines(station: Station) -> int:
    """Raise `line_down` for each line whose oldest undelivered envelope has waited past
    `station.line_down_after_s`, or, with nothing waiting, whose check has failed and
    that has been silent for `line_check_s` and `line_down_after_s` more. Returns how
    many alerts were raised now."""
    now = station.clock.now()
    cutoff = now - station.line_down_after_s * MICROS
    silence = cutoff - station.line_check_s * MICROS
    stalled: list[tuple[Any, str, int]] = []
    with station.db.read() as conn:
        for line in conn.execute(_LINES):
            if line.state == SUSPENDED:  # stopped on purpose: what waits is not stalled
                continue
            since = conn.execute(_OLDEST, {"b_line": line.id}).scalar()
            if since is not None:
                if since > cutoff:
                    continue
                name = subject(line.peer, since)
            elif line.state == ACTIVE and line.retry_attempt and (line.last_contact_at or 0) <= silence:
                since = line.last_contact_at or 0
                name = subject(line.peer, since, silent=True)
            else:
                continue
            if conn.execute(_RAISED, {"b_subject": name}).first() is None:
                stalled.append((line, name, int(since)))
    if not stalled:
        return 0
    raised = 0
    with station.tx() as tx:
        for line, name, since in stalled:
            bound = {"b_line": line.id}
            named = {
                f"{what}s": [
                    {what: row[0], about.name: row[1]}
                    for row in tx.conn.execute(
                        select(ident, about).where(ident.in_(_REFS)).order_by(order).limit(MAX_NAMED), bound
                    )
                ]
                for what, ident, about, order in _NAMED
            }
            count = tx.conn.execute(_COUNT, bound).scalar_one()
            detail = {
                "peer": line.peer,
                "waiting": int(count),
                "line": line.id,
                "since": rfc3339(since),
                "last_contact_at": rfc3339(line.last_contact_at),
                "last_error": (line.last_error or "")[:300],
                **named,
            }
            raised += alerting.raise_alert(tx, KIND, name, detail)
    return raised
