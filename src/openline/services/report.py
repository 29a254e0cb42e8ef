"""The transparency report of this station, against its latest checkpoint.

The figures are computed by `openline.core.report` from the ledger's own entries up to
the latest checkpoint that the peer of every active line has cosigned (`_checkpoint`),
read in ranges as `openline.services.ledger.entries` hands them out. The report names
that checkpoint, so anyone holding an evidence bundle of it (`openline ledger export
--checkpoint SIZE`) can recompute every figure (docs/ledger.md, "Transparency report").

Around the figures, the station says what only it knows: as of when they are and whether
the month had ended by then, and how far a newer checkpoint reaches that not every
line's peer has cosigned yet. The report is for publishing, so its note keeps the
cosignatures of the peers of its own lines only, as a bundle for one peer does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from openline.adapters.schema import lines
from openline.core import report as core
from openline.core.clock import rfc3339
from openline.errors import Conflict, InvalidInput, OpenLineError
from openline.services import evidence, ledger
from openline.services.lines import ACTIVE
from openline.services.station import Station


class NoCheckpoint(Conflict):
    title = "No checkpoint yet"


def parse_period(text: str) -> core.Period:
    try:
        return core.parse_period(text)
    except core.ReportError as exc:
        raise InvalidInput(str(exc)) from None


def current_period(station: Station) -> str:
    """This month (UTC) on the station's clock."""
    return core.period_of(station.clock.now())


def _entries(conn: Connection, size: int) -> Iterator[dict[str, Any]]:
    for start in range(0, size, ledger.MAX_RANGE):
        for _, data in ledger.entries(conn, start, min(size, start + ledger.MAX_RANGE)):
            yield json.loads(data)


def _checkpoint(conn: Connection) -> ledger.SignedCheckpoint | None:
    """The latest checkpoint every active line's peer has cosigned, so that each line's
    figures rest on its own peer's cosignature; while a peer is silent, that is the last
    one it cosigned. Before there is one: the latest any peer has cosigned, then the
    latest this station signed (its `cosigned_by` says who vouches for it)."""
    active = conn.execute(
        select(lines.c.peer).where(lines.c.state == ACTIVE).order_by(lines.c.peer)
    ).scalars()
    return (
        ledger.cosigned_checkpoint(conn, list(active))
        or ledger.cosigned_checkpoint(conn)
        or ledger.latest_checkpoint(conn)
    )


def transparency_report(station: Station, period: str) -> dict[str, Any]:
    """The figures of `period` (YYYY-MM) and the checkpoint they were computed against."""
    month = parse_period(period)
    now = station.clock.now()
    if month.start > now:
        # All zeros would read as a month without calls: there is nothing to count yet.
        raise InvalidInput(
            f"{month.name} has not begun: it is {rfc3339(now)} on this station's clock, and a "
            "report covers a month that has begun (this month's figures are those so far)"
        )
    with station.db.read() as conn:
        signed = _checkpoint(conn)
        if signed is None and ledger.head(conn).size == 0 and ledger.pending(conn) == 0:
            # `ledger checkpoint` cannot help here: an empty log has nothing to sign.
            raise NoCheckpoint(
                "the ledger has no signed checkpoint, and the report is computed against one: the "
                "ledger is empty, nothing has been recorded yet; its first entry is the first line "
                "added (`openline line add`)"
            )
        if signed is None:
            raise NoCheckpoint(
                "the ledger has no signed checkpoint yet, and the report is computed against one: "
                "`openline serve` signs one within seconds of the first event on a line "
                "(`openline ledger checkpoint` asks for one now); try again then"
            )
        checkpoint = core.Checkpoint(station.card.origin, signed.size, signed.root)
        try:
            result = core.compute(_entries(conn, signed.size), month, checkpoint)
        except core.ReportError as exc:  # our own log, so a damaged database: say where
            raise OpenLineError(f"the ledger cannot be reported on: {exc}") from None
        # A report is published: it shows the cosignatures of its own lines' peers only.
        shown = evidence.shown_to(station, conn, signed, {x.peer for x in result.lines})
        checkpoint = dataclasses.replace(checkpoint, note=shown.note, cosigned_by=shown.cosigned_by)
        result = dataclasses.replace(result, checkpoint=checkpoint)
        latest = ledger.latest_checkpoint(conn)
        # With nothing logged since the checkpoint, it is the ledger as it stands now.
        whole = ledger.head(conn).size == signed.size and ledger.pending(conn) == 0
    as_of = now if whole else signed.signed_at
    return {
        "station": station.name,
        **result.to_json(),
        "computed_at": rfc3339(now),
        "as_of": rfc3339(as_of),
        "complete": as_of >= month.end,
        "held_back": _held_back(signed, latest),
    }


def _held_back(
    signed: ledger.SignedCheckpoint, latest: ledger.SignedCheckpoint | None
) -> dict[str, int] | None:
    """How far this station's latest checkpoint reaches past the report's, which it is
    held back at because not every line's peer has cosigned a newer one. Which peer is
    silent is left to `openline ledger status`: the report names no line it does not show."""
    if latest is None or latest.size <= signed.size:
        return None
    return {"size": latest.size, "entries": latest.size - signed.size}
