"""Removing a protected site, as the UN No-Strike List does it: by its own notice.

A removal notice is a notice document `{"category": "protected_site", "text": ...,
"removes": "<id>"}` with no volumes, naming one of our active protected-site notices. It
is sent, delivered, acknowledged or rejected like any notice, with its own deadline. The
site stays protected (active, checked for conflicts) until the other side acknowledges
the removal; then both stations mark the site `removed` (`removed_by` names the removal
notice) with a `notice.removed` ledger entry. A rejected removal changes nothing.

The checks here only read; the use cases in `openline.services.notices` write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from openline.adapters.schema import notices
from openline.core import notices as nm
from openline.core.notices import Event, Party, State
from openline.errors import Code, Conflict, EnvelopeRefused, IllegalTransition, InvalidInput, NotFound
from openline.services.notice_rows import get, log, transition
from openline.services.station import Tx

_PENDING = sorted(s.value for s in nm.AWAITING)  # a removal not yet answered


def pending_removal(conn: Connection, site_id: str) -> Any:
    """The removal notice of this site still waiting for an answer, if any."""
    return pending_removals(conn, [site_id]).get(site_id)


def pending_removals(conn: Connection, site_ids: Sequence[str]) -> dict[str, Any]:
    """The removal notice still waiting for an answer of each of these sites that has one
    (there is at most one: `target_for_send`)."""
    rows = conn.execute(
        select(notices.c.id, notices.c.state, notices.c.removes).where(
            notices.c.removes.in_(list(site_ids)), notices.c.state.in_(_PENDING)
        )
    )
    return {row.removes: row for row in rows}


def target_for_send(conn: Connection, site_id: str, peer: str, now: int) -> Any:
    """The site a removal notice of ours to `peer` may remove: one of our protected-site
    notices to `peer`, active, with no other removal pending. Raises saying why not."""
    row = conn.execute(select(notices).where(notices.c.id == site_id)).first()
    if row is None:
        raise NotFound(f"removes: no notice with id {site_id!r}")
    if row.direction != "out" or row.peer != peer:
        raise InvalidInput(
            f"removes: notice {site_id} is not one of ours to {peer}: "
            "only the station that notified a site removes it"
        )
    if row.category not in nm.REMOVABLE or row.removes is not None:
        what = "a removal notice" if row.removes is not None else f"a {row.category} notice"
        raise InvalidInput(f"removes: notice {site_id} is {what}, not a protected site")
    ended = row.ends_at is not None and row.ends_at < now
    if row.state not in {s.value for s in nm.ACTIVE} or ended:
        state = State.EXPIRED.value if ended else row.state
        raise Conflict(f"removes: notice {site_id} is {state}; only an active protected site is removed")
    pending = pending_removal(conn, site_id)
    if pending is not None:
        raise Conflict(
            f"removes: the site {site_id} is already being removed by notice {pending.id} ({pending.state})"
        )
    return row


def target_inbound(conn: Connection, line_id: str, site_id: str) -> None:
    """Refuse (`malformed`, nothing stored) a peer's removal notice whose target is not one
    of its own protected sites on this line, or is removed or being removed already.

    Whether the site is still active is not asked: a removal may cross our rejection of
    the site, and is then stored and answered like any notice (it removes nothing)."""
    row = conn.execute(select(notices).where(notices.c.id == site_id, notices.c.line_id == line_id)).first()
    if row is None:
        raise EnvelopeRefused(
            Code.MALFORMED, f"notice removes {site_id!r:.80}, which is no notice on this line"
        )
    if row.direction != "in":
        raise EnvelopeRefused(
            Code.MALFORMED, f"notice removes {site_id}, which is not a notice the peer sent us"
        )
    if row.category not in nm.REMOVABLE or row.removes is not None:
        raise EnvelopeRefused(Code.MALFORMED, f"notice removes {site_id}, which is not a protected site")
    if row.state == State.REMOVED.value or pending_removal(conn, site_id) is not None:
        raise EnvelopeRefused(
            Code.MALFORMED, f"notice removes {site_id}, which is removed or being removed already"
        )


def check_sender_change(conn: Connection, row: Any, event: Event) -> None:
    """Refuse a withdrawal or amendment the sender may not make (`core.notices`), and any
    change to a site whose removal is pending: the peer's answer decides it first."""
    try:
        nm.check_sender_change(event, State(row.state), row.category, removal=row.removes is not None)
    except IllegalTransition as exc:
        raise IllegalTransition(f"notice {row.id}: {exc.detail}") from None
    if row.category in nm.REMOVABLE and row.removes is None:
        pending = pending_removal(conn, row.id)
        if pending is not None:
            raise IllegalTransition(
                f"notice {row.id}: its removal (notice {pending.id}) is waiting for the peer's answer"
            )


def on_acknowledged(tx: Tx, removal: Any, actor: str, envelope_id: str | None, at: int | None = None) -> None:
    """A removal notice was acknowledged (by us, or by the peer at `at`, its signed time):
    the site is removed as of the acknowledgement, on both stations alike. A site that is
    no longer active (rejected while its removal crossed) stays as it is."""
    site = get(tx.conn, str(removal.removes), for_update=True)
    try:
        transition(tx, site, Event.REMOVE, Party.RECEIVER, at, values={"removed_by": removal.id})
    except IllegalTransition:
        return
    log(tx, "notice.removed", site.id, site.line_id, site.peer, actor, envelope_id, at, removal=removal.id)
