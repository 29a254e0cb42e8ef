"""The peer station's clock against ours, and a `clock_skew` alert when it is off.

Every time on a line is a station's own clock: when a call was placed (the caller's),
when it was picked up and missed (the callee's), a notice's deadline and when it was
acknowledged, every ledger entry. A station whose clock drifts (no time server on an
isolated network, a virtual machine restored from a snapshot) makes the record of both
stations disagree, and a call's deadline or a notice's window mean something else on each
side. The watch floor must know before an investigator finds it.

Nothing new is sent for it. What the stations already exchange says it, with no
assumption about the network:

* **receipts**: the peer stamps each receipt (`stored_at`) after our batch left and
  before its answer came back, so its clock minus ours lies between `stored_at - answered`
  and `stored_at - sent` (`core.clock.round_trip`);
* **line checks**: the handshake's answer carries the peer's time, signed apart from the
  answer so that a station that does not send it is still understood;
* **inbound envelopes**: a header's time was stamped before the envelope reached us, so a
  time ahead of ours proves the peer's clock ahead at least by that much (a lower bound
  only: an envelope may have waited in the peer's outbox).

The bounds of the last round trip are kept on the line (`openline lines`, `/metrics`).
A peer proved off by more than `clock_skew_alert_s` (5 s by default) raises `clock_skew`,
once per episode; a later round trip that proves it within the limit ends the episode,
and the alert stays until acknowledged.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select, update

from openline.adapters.schema import lines
from openline.core.clock import MICROS, Offset, rfc3339
from openline.services import alerts
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.clock")
KIND = "clock_skew"


def limit_of(station: Station) -> int:
    """The offset past which a peer's clock raises `clock_skew`, in µs."""
    return round(station.clock_skew_alert_s * MICROS)


def observe(
    station: Station, tx: Tx, line: Any, offset: Offset, source: str, *, write: bool = True
) -> dict[str, Any]:
    """Record what `offset` proves of the clock of `line`'s peer (`source`: what proved
    it), and raise `clock_skew` when it starts being off by more than the limit. `line`
    is the line's row as read in this transaction or just before it. Returns the line's
    columns to update, written unless `write` is false (the caller writes them with its
    own update of the line)."""
    limit = limit_of(station)
    off = offset.beyond(limit)
    values: dict[str, Any] = {}
    if offset.high is not None:  # a round trip: the bounds shown in `lines`
        values.update(peer_clock_low=offset.low, peer_clock_high=offset.high, peer_clock_at=tx.now)
    since = line.peer_clock_off_since
    if off and since is None:  # read again: `line` may have been read before the last batch
        since = tx.conn.execute(select(lines.c.peer_clock_off_since).where(lines.c.id == line.id)).scalar()
    if off and since is None:
        values["peer_clock_off_since"] = tx.now
        ahead = "ahead of" if off > 0 else "behind"
        detail = {
            "peer": line.peer,
            "offset_s": round(off / MICROS, 3),  # at least this much, signed: theirs minus ours
            "limit_s": station.clock_skew_alert_s,
            "source": source,
            "says": f"{line.peer}'s clock is at least {abs(off) / MICROS:.1f} s {ahead} ours",
        }
        alerts.raise_alert(tx, KIND, f"{line.peer} since {rfc3339(tx.now)}", detail)
    elif since is not None and offset.within(limit):
        values["peer_clock_off_since"] = None
        log.info("peer clock within the limit again", peer=line.peer, low_us=offset.low, high_us=offset.high)
    if values and write:
        tx.conn.execute(update(lines).where(lines.c.id == line.id).values(**values))
    return values


def peer_clock_json(row: Any) -> dict[str, Any] | None:
    """A line's last measure of the peer's clock: the offset's middle and half-width (ms,
    theirs minus ours), when it was measured, and since when it has been off (or null)."""
    if row.peer_clock_at is None:
        return None
    low, high = int(row.peer_clock_low), int(row.peer_clock_high)
    return {
        "offset_ms": round((low + high) / 2 / 1000, 1),
        "within_ms": round((high - low) / 2 / 1000, 1),
        "measured_at": rfc3339(row.peer_clock_at),
        "off_since": rfc3339(row.peer_clock_off_since),
    }
