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
and the alert stays until acknowledged. Within an episode the alert follows the measure
(`_follow`): the watch floor is never told "ahead" of a peer now behind, and a peer whose
clock moves the other way, or further than the officer acknowledged, pages again.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from sqlalchemy import select, update

from openline.adapters.schema import alerts as alerts_table
from openline.adapters.schema import lines
from openline.core.clock import MICROS, Offset, rfc3339
from openline.services import alerts
from openline.services.station import Station, Tx

log = structlog.get_logger("openline.clock")
KIND = "clock_skew"
_SHOWN = MICROS // 10  # an alert says the offset to a tenth of a second


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
        alerts.raise_alert(tx, KIND, subject(line.peer, tx.now), _detail(station, line.peer, off, source))
    elif off:
        _follow(station, tx, line.peer, int(since), offset, off, source)
    elif since is not None and offset.within(limit):
        values["peer_clock_off_since"] = None
        log.info("peer clock within the limit again", peer=line.peer, low_us=offset.low, high_us=offset.high)
    if values and write:
        tx.conn.execute(update(lines).where(lines.c.id == line.id).values(**values))
    return values


def subject(peer: str, since: int) -> str:
    """The subject of the `clock_skew` alert of the episode that began at `since`."""
    return f"{peer} since {rfc3339(since)}"


def _detail(station: Station, peer: str, off: int, source: str) -> dict[str, Any]:
    ahead = "ahead of" if off > 0 else "behind"
    return {
        "peer": peer,
        "offset_s": round(off / MICROS, 3),  # at least this much, signed: theirs minus ours
        "limit_s": station.clock_skew_alert_s,
        "source": source,
        "says": f"{peer}'s clock is at least {abs(off) / MICROS:.1f} s {ahead} ours",
    }


def _follow(station: Station, tx: Tx, peer: str, since: int, offset: Offset, off: int, source: str) -> None:
    """A measure within an episode (`off`: the peer's clock is proved off by at least
    this much, signed). The open alert keeps saying what is proved: rewritten when the
    peer's clock is proved off the other way, or by a limit more than it says, or proved
    nearer ours than it says. An acknowledged one keeps what the officer acknowledged,
    unless the peer's clock is proved off the other way or by a limit more: then that
    condition is over and a new one is back, and the alert is raised again, open and
    paging as if new (`alerts.raise_alert`)."""
    name = subject(peer, since)
    row = tx.conn.execute(
        select(alerts_table.c.id, alerts_table.c.acknowledged_at, alerts_table.c.detail).where(
            alerts_table.c.kind == KIND, alerts_table.c.subject == name
        )
    ).first()
    if row is None:
        return
    said = round(json.loads(row.detail)["offset_s"] * MICROS)
    moved = (off > 0) != (said > 0) or abs(off) - abs(said) > limit_of(station)
    detail = _detail(station, peer, off, source)
    if row.acknowledged_at is not None:
        if moved:
            alerts.condition_over(tx, KIND, [name], detail["says"])
            alerts.raise_alert(tx, KIND, name, detail)
    elif moved or _nearer(offset, said):
        tx.conn.execute(
            update(alerts_table)
            .where(alerts_table.c.id == row.id)
            .values(detail=json.dumps(detail, sort_keys=True))
        )
        tx.touched.add("alerts")
        log.info(
            "clock_skew alert follows the peer's clock", peer=peer, subject=name, offset_s=detail["offset_s"]
        )


def _nearer(offset: Offset, said: int) -> bool:
    """Whether `offset` proves the peer's clock nearer ours than `said` (signed µs), by
    more than the tenth of a second an alert shows. A constant offset never does: every
    measure's bounds hold it."""
    if said > 0:
        return offset.high is not None and offset.high < said - _SHOWN
    return offset.low > said + _SHOWN


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
