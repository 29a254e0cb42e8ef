"""Conflicts between stored notices, with the lines' separation margins.

Every new or amended notice, ours or the peer's, is checked against every volume of
every other active notice on the station that stores it (`openline.core.conflicts`, the
exact test). Both stations hold both sides' notices, so a conflict raises an alert on
both watch floors.

Each line carries separation margins, agreed in its handshake. A pair of notices on
lines L1 and L2 is held to the componentwise maximum of both lines' margins: the stricter
agreement wins in each dimension, and the answer does not depend on which notice came
first. The database narrows the candidates by time window, altitude band and a
conservative n-vector box, each widened by the largest margin of any line, so that no
conflict is missed; the exact test decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, or_, select

from openline.adapters.schema import lines, notice_conflicts, notice_volumes, notices
from openline.core import conflicts as engine
from openline.core import formats
from openline.core import notices as nm
from openline.core.clock import rfc3339
from openline.core.volumes import R_MIN, Volume, nvector_boxes
from openline.services import alerts, ledger
from openline.services.station import Tx

_BOX_PAD = 1e-9  # boxes compared as stored floats: pad for rounding, as the index does
_ALT_PAD_M = 1e-6  # `a <= b + m` and the engine's `a - b <= m` may differ in the last bit
_MICROS_PER_MINUTE = 60_000_000


@dataclass(frozen=True)
class Found:
    """A conflict found for one volume of a new notice."""

    volume: int
    other: str
    other_volume: int
    result: engine.PairResult


def margins_of(row: Any) -> engine.Margins:
    """A line's separation margins, from its row."""
    return engine.Margins(
        float(row.margin_horizontal_m), float(row.margin_vertical_m), int(row.margin_minutes)
    )


def widest(*margins: engine.Margins) -> engine.Margins:
    """The componentwise maximum: what a pair of notices on two lines is held to."""
    return engine.Margins(
        max((m.horizontal_m for m in margins), default=0.0),
        max((m.vertical_m for m in margins), default=0.0),
        max((m.minutes for m in margins), default=0),
    )


def _line_margins(conn: Connection) -> dict[str, engine.Margins]:
    return {str(r.id): margins_of(r) for r in conn.execute(select(lines)).all()}


def stored_volume(row: Any) -> Volume:
    """A stored volume (a `notice_volumes` row) as the engine takes it: validated when it
    came in, so read back without validating it again."""
    return formats.read_volume4d(json.loads(row.volume4d), f"notice {row.notice_id} volume {row.n}")


def _candidates(
    conn: Connection, notice_id: str, series: str, v: Volume, now: int, reach: engine.Margins
) -> list[Any]:
    """Volumes of other active notices whose time window, altitude band (closed
    intervals) and n-vector box come within `reach` of this volume's: the database
    narrows, the exact test decides. The boxes are conservative, so no conflict is missed."""
    lo, hi = (b[0] for b in nvector_boxes([v.outline]))
    # A point within h metres of another has a normal within h / R_MIN of it (chord <= angle).
    grow = reach.horizontal_m / R_MIN * (1 + 1e-9) + _BOX_PAD
    c = notice_volumes.c
    near = [
        cond
        for k, axis in enumerate("xyz")
        for cond in (c[f"n{axis}_max"] >= float(lo[k]) - grow, c[f"n{axis}_min"] <= float(hi[k]) + grow)
    ]
    vertical = reach.vertical_m + _ALT_PAD_M
    minutes = reach.minutes * _MICROS_PER_MINUTE
    query = (
        select(notice_volumes, notices.c.series, notices.c.line_id)
        .join(notices, notices.c.id == notice_volumes.c.notice_id)
        .where(
            notices.c.state.in_([s.value for s in nm.ACTIVE]),
            notices.c.series != series,
            notices.c.id != notice_id,
            or_(notices.c.ends_at.is_(None), notices.c.ends_at >= now),
            c.alt_lower_m <= v.alt_upper_m + vertical,
            c.alt_upper_m >= v.alt_lower_m - vertical,
            or_(c.end_at.is_(None), c.end_at >= v.start - minutes),
            *near,
        )
    )
    if v.end is not None:
        query = query.where(c.start_at <= v.end + minutes)
    return list(conn.execute(query).all())


def find(
    conn: Connection, notice_id: str, series: str, line_id: str, volumes: tuple[Volume, ...], now: int
) -> list[Found]:
    """The conflicts a notice on line `line_id` has (or, for a draft, would have) with
    every active notice; nothing is recorded."""
    by_line = _line_margins(conn)
    reach = widest(*by_line.values())
    ours = by_line.get(line_id, engine.Margins())
    found: list[Found] = []
    for n, v in enumerate(volumes, start=1):
        for row in _candidates(conn, notice_id, series, v, now, reach):
            margins = widest(ours, by_line.get(str(row.line_id), engine.Margins()))
            result = engine.conflict(v, stored_volume(row), margins)
            if result is not None:
                found.append(Found(n, str(row.notice_id), int(row.n), result))
    return found


def found_json(found: list[Found]) -> list[dict[str, Any]]:
    """Conflicts as the notice JSON shows them (a draft's preview)."""
    return [
        {
            "volume": f.volume,
            "other_notice": f.other,
            "other_volume": f.other_volume,
            "from": rfc3339(f.result.time[0]) if f.result.time else None,
            "until": rfc3339(f.result.time[1]) if f.result.time else None,
            "altitude_m": list(f.result.altitude) if f.result.altitude else None,
        }
        for f in found
    ]


def check(tx: Tx, notice_id: str, series: str, line_id: str, volumes: tuple[Volume, ...]) -> list[Found]:
    """Check a new notice against every active notice; record and alarm each conflict."""
    found = find(tx.conn, notice_id, series, line_id, volumes, tx.now)
    for f in found:
        assert f.result.time is not None
        assert f.result.altitude is not None
        inserted = tx.conn.execute(
            insert(notice_conflicts).values(
                notice_a=notice_id,
                volume_a=f.volume,
                notice_b=f.other,
                volume_b=f.other_volume,
                time_start=f.result.time[0],
                time_end=f.result.time[1],
                alt_lower_m=f.result.altitude[0],
                alt_upper_m=f.result.altitude[1],
                detected_at=tx.now,
            )
        ).inserted_primary_key
        assert inserted is not None
        conflict_id = inserted[0]
        detail = {
            "notice": notice_id,
            "volume": f.volume,
            "other_notice": f.other,
            "other_volume": f.other_volume,
            "from": rfc3339(f.result.time[0]),
            "until": rfc3339(f.result.time[1]),
            "altitude_m": [f.result.altitude[0], f.result.altitude[1]],
        }
        alerts.raise_alert(tx, "notice_conflict", f"conflict {conflict_id}", detail)
        ledger.append(tx, "notice.conflict", tx.now, {k: v for k, v in detail.items() if k != "altitude_m"})
    if found:
        tx.touched.add("notices")
    return found
