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

When a line adopts new margins (`line_terms`), its active notices, ours and the peer's,
are checked again under them (`recheck_line`), each as if it had just come in: a
conflict newly found is recorded and alarmed as a new notice's is, and one found earlier
stays recorded. The peer does the same when it adopts them, so both stations hold the
conflicts the new margins find. Each conflict keeps the margins it was found under, for
a notice's own are those of its last check, which may have narrowed since.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)

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
    """A conflict found for one volume of a new notice, and the margins the pair was held
    to (none for `covering`, which asks for overlap only)."""

    volume: int
    other: str
    other_volume: int
    result: engine.PairResult
    margins: engine.Margins


def margins_of(line: Any) -> engine.Margins:
    """A line's separation margins, from its row."""
    return engine.Margins(
        float(line.margin_horizontal_m), float(line.margin_vertical_m), int(line.margin_minutes)
    )


def margins_by_line(conn: Connection) -> dict[str, engine.Margins]:
    """Every line's separation margins, by line id."""
    return {str(r.id): margins_of(r) for r in conn.execute(select(lines)).all()}


def widest(*margins: engine.Margins) -> engine.Margins:
    """The componentwise maximum: what a pair of notices on two lines is held to."""
    return engine.Margins(
        max((m.horizontal_m for m in margins), default=0.0),
        max((m.vertical_m for m in margins), default=0.0),
        max((m.minutes for m in margins), default=0),
    )


def stored_volume(row: Any) -> Volume:
    """A stored volume (a `notice_volumes` row) as the engine takes it: validated when it
    came in, so read back without validating it again."""
    return formats.read_volume4d(json.loads(row.volume4d), f"notice {row.notice_id} volume {row.n}")


# The spatial index of each backend (migration 0009): on SQLite an R*Tree virtual table
# of five-dimensional boxes naming each volume by (notice_id, n); on PostgreSQL a GiST
# expression index that these same expressions use.
_boxes = Table(
    "notice_boxes",
    MetaData(),
    *(Column(f"{d}_{end}", Float) for d in ("x", "y", "z", "alt", "t") for end in ("min", "max")),
    Column("notice_id", String),
    Column("n", Integer),
)
_OPEN_END = 9 * 10**18  # as the R*Tree stores an open end; an int8 for PostgreSQL
_CLOSED: Any = literal_column("'[]'")


def _pg_box(x1: Any, y1: Any, x2: Any, y2: Any) -> Any:
    return func.box(func.point(x1, y1), func.point(x2, y2))


def _candidates(
    conn: Connection, notice_id: str, series: str, v: Volume, now: int, reach: engine.Margins
) -> list[Any]:
    """Volumes of other active notices whose time window, altitude band (closed
    intervals) and n-vector box come within `reach` of this volume's: the database
    narrows through its spatial index, the exact test decides. The boxes are
    conservative, so no conflict is missed."""
    query = candidate_query(conn.dialect.name)
    return list(conn.execute(query, candidate_params(notice_id, series, v, now, reach)).all())


def candidate_params(
    notice_id: str, series: str, v: Volume, now: int, reach: engine.Margins
) -> dict[str, Any]:
    """The parameters of `candidate_query` for one volume: its box, band and window, each
    widened by `reach`."""
    lo, hi = (b[0] for b in nvector_boxes([v.outline]))
    # A point within h metres of another has a normal within h / R_MIN of it (chord <= angle).
    grow = reach.horizontal_m / R_MIN * (1 + 1e-9) + _BOX_PAD
    vertical = reach.vertical_m + _ALT_PAD_M
    minutes = reach.minutes * _MICROS_PER_MINUTE
    return {
        **{f"{axis}0": float(lo[k]) - grow for k, axis in enumerate("xyz")},
        **{f"{axis}1": float(hi[k]) + grow for k, axis in enumerate("xyz")},
        "alt0": v.alt_lower_m - vertical,
        "alt1": v.alt_upper_m + vertical,
        "t0": v.start - minutes,
        "t1": _OPEN_END if v.end is None else v.end + minutes,
        "notice_id": notice_id,
        "series": series,
        "now": now,
        "active": [s.value for s in nm.ACTIVE],
    }


def candidate_plan(conn: Connection, v: Volume) -> list[str]:
    """How the database would find the candidates for `v` (EXPLAIN): to show that it uses
    its spatial index (the benchmark prints it; a test checks it)."""
    params = candidate_params("", "", v, 0, engine.Margins())
    sql = (
        candidate_query(conn.dialect.name)
        .params(**params)
        .compile(conn, compile_kwargs={"literal_binds": True})
    )
    explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
    return [str(row[-1]) for row in conn.exec_driver_sql(explain + str(sql))]


def _param(name: str, type_: Any) -> Any:
    return bindparam(name, type_=type_)


@cache
def candidate_query(dialect: str) -> Any:
    """The SELECT `_candidates` runs, with `candidate_params`: built once per dialect,
    since building it costs more than running it."""
    x0, x1, y0, y1, z0, z1, alt0, alt1 = (
        _param(name, Float) for name in ("x0", "x1", "y0", "y1", "z0", "z1", "alt0", "alt1")
    )
    t0, t1 = _param("t0", BigInteger), _param("t1", BigInteger)
    c = notice_volumes.c
    exact = [  # the stored doubles, after the index's (possibly rounded-out) boxes
        c.alt_lower_m <= alt1,
        c.alt_upper_m >= alt0,
        or_(c.end_at.is_(None), c.end_at >= t0),
        c.start_at <= t1,
        c.nx_max >= x0,
        c.nx_min <= x1,
        c.ny_max >= y0,
        c.ny_min <= y1,
        c.nz_max >= z0,
        c.nz_min <= z1,
    ]
    query = select(notice_volumes, notices.c.series, notices.c.line_id, notices.c.category)
    if dialect == "sqlite":
        b = _boxes.c
        query = query.select_from(
            _boxes.join(notice_volumes, and_(c.notice_id == b.notice_id, c.n == b.n)).join(
                notices, notices.c.id == c.notice_id
            )
        ).where(
            b.x_max >= x0,
            b.x_min <= x1,
            b.y_max >= y0,
            b.y_min <= y1,
            b.z_max >= z0,
            b.z_min <= z1,
            b.alt_max >= alt0,
            b.alt_min <= alt1,
            b.t_max >= t0,
            b.t_min <= t1,
        )
    else:
        query = query.join(notices, notices.c.id == c.notice_id).where(
            _pg_box(c.nx_min, c.ny_min, c.nx_max, c.ny_max).op("&&")(_pg_box(x0, y0, x1, y1)),
            _pg_box(c.nz_min, c.alt_lower_m, c.nz_max, c.alt_upper_m).op("&&")(_pg_box(z0, alt0, z1, alt1)),
            func.int8range(c.start_at, c.end_at, _CLOSED).op("&&")(func.int8range(t0, t1, _CLOSED)),
        )
    return query.where(
        notices.c.state.in_(bindparam("active", expanding=True)),
        notices.c.series != _param("series", String),
        notices.c.id != _param("notice_id", String),
        or_(notices.c.ends_at.is_(None), notices.c.ends_at >= _param("now", BigInteger)),
        *exact,
    )


def find(
    conn: Connection,
    notice_id: str,
    series: str,
    line_id: str,
    volumes: tuple[Volume, ...],
    now: int,
    *,
    category: str,
) -> list[Found]:
    """The conflicts a notice of `category` on line `line_id` has (or, for a draft, would
    have) with every active notice; nothing is recorded.

    A conflict is an activity against another, or an activity against a protected site
    or movement: two protected notices never conflict (`nm.may_conflict`), as `openline
    conflicts` has it."""
    by_line = margins_by_line(conn)
    reach = widest(*by_line.values())
    ours = by_line.get(line_id, engine.Margins())
    found: list[Found] = []
    for n, v in enumerate(volumes, start=1):
        rows = _candidates(conn, notice_id, series, v, now, reach)
        rows = [row for row in rows if nm.may_conflict(category, row.category)]
        if not rows:
            continue
        # The exact test decides, each pair held to the wider margins of its two lines.
        each = [widest(ours, by_line.get(str(row.line_id), engine.Margins())) for row in rows]
        results = engine.confirm(v, [stored_volume(row) for row in rows], each)
        for row, result, margins in zip(rows, results, each, strict=True):
            if result is not None:
                found.append(Found(n, str(row.notice_id), int(row.n), result, margins))
    return found


# Every notice announced, either way, whatever became of it since: what an investigator
# asks about a place ("was this site notified, and acknowledged before the strike?").
ANNOUNCED = tuple(s.value for s in nm.State if s not in (nm.State.DRAFT, nm.State.DISCARDED))


def covering(conn: Connection, place: Volume) -> list[Found]:
    """The volumes of every notice this station ever sent or received (not drafts) that
    overlap `place`, exactly and with no margins, found through the same spatial index
    and exact test as conflicts; `volume` is 1, `other` the notice."""
    params = {**candidate_params("", "", place, 0, engine.Margins()), "active": list(ANNOUNCED)}
    rows = conn.execute(candidate_query(conn.dialect.name), params).all()
    if not rows:
        return []
    results = engine.confirm(place, [stored_volume(row) for row in rows])
    return [
        Found(1, str(row.notice_id), int(row.n), result, engine.Margins())
        for row, result in zip(rows, results, strict=True)
        if result is not None
    ]


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
            "margins": dataclasses.asdict(f.margins),
        }
        for f in found
    ]


def _peers_of(tx: Tx, line_id: str, others: list[str]) -> dict[str, str]:
    """The peer of the line `line_id`, and of each notice in `others`, by id."""
    peer_of_line = tx.conn.execute(select(lines.c.peer).where(lines.c.id == line_id)).scalar_one()
    rows = tx.conn.execute(select(notices.c.id, notices.c.peer).where(notices.c.id.in_(others)))
    return {line_id: peer_of_line, **{str(row.id): row.peer for row in rows}}


def _recorded(conn: Connection, notice_id: str) -> set[tuple[int, str, int]]:
    """The conflicts recorded for a notice, whichever side it was on, as `Found` names
    them from its side: (its volume, the other notice, the other's volume)."""
    c = notice_conflicts.c
    rows = conn.execute(select(notice_conflicts).where(or_(c.notice_a == notice_id, c.notice_b == notice_id)))
    return {
        (r.volume_a, r.notice_b, r.volume_b)
        if r.notice_a == notice_id
        else (r.volume_b, r.notice_a, r.volume_a)
        for r in rows
    }


def margins_json(margins: engine.Margins) -> str:
    """Margins as a notice or a conflict keeps them."""
    return json.dumps(dataclasses.asdict(margins), separators=(",", ":"))


def _keep_margins(tx: Tx, notice_id: str, line_id: str) -> None:
    """Keep with the notice the margins its line holds as it is checked: what its
    conflicts, or their absence, were decided under (the notice shows them)."""
    line = tx.conn.execute(select(lines).where(lines.c.id == line_id)).one()
    kept = margins_json(margins_of(line))
    tx.conn.execute(update(notices).where(notices.c.id == notice_id).values(conflict_margins=kept))


def check(
    tx: Tx, notice_id: str, series: str, line_id: str, volumes: tuple[Volume, ...], *, category: str
) -> list[Found]:
    """Check a notice against every active notice; record and alarm each conflict not
    recorded already (a new notice has none; `recheck_line` checks notices again)."""
    found = find(tx.conn, notice_id, series, line_id, volumes, tx.now, category=category)
    if found:
        recorded = _recorded(tx.conn, notice_id)
        found = [f for f in found if (f.volume, f.other, f.other_volume) not in recorded]
    _keep_margins(tx, notice_id, line_id)
    peers = _peers_of(tx, line_id, [f.other for f in found]) if found else {}
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
                margins=margins_json(f.margins),
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
        # Whose line each notice is on: the alert pages by the new notice's line's policy,
        # and with several lines the officer must see which parties the conflict is between.
        alerts.raise_alert(
            tx,
            "notice_conflict",
            f"conflict {conflict_id}",
            {**detail, "peer": peers[line_id], "other_peer": peers[f.other]},
        )
        # The entry names the margins the pair was found under, as the row does: margins
        # narrowed later do not unmake it. Older entries lack them; a verifier reads no
        # field of a conflict entry but the ids it names, so old proofs verify as before.
        logged = {k: v for k, v in detail.items() if k != "altitude_m"}
        ledger.append(
            tx,
            "notice.conflict",
            tx.now,
            {**logged, "margins": dataclasses.asdict(f.margins)},
            call_id=notice_id,
            also_id=f.other,
        )
    if found:
        tx.touched.add("notices")
    return found


def recheck_line(tx: Tx, line_id: str) -> list[Found]:
    """Check every active notice on the line again, ours and the peer's, under the margins
    it holds now (it has just adopted new ones), as `check` does a new notice: what it
    newly finds is recorded and alarmed, what was found before stays. The newest notice
    is checked first, so a pair is recorded from its newer notice, as the peer records
    it when that notice reaches it only after the change."""
    active = [s.value for s in nm.ACTIVE]
    rows = tx.conn.execute(
        select(notices.c.id, notices.c.series, notices.c.category)
        .where(
            notices.c.line_id == line_id,
            notices.c.state.in_(active),
            or_(notices.c.ends_at.is_(None), notices.c.ends_at >= tx.now),
        )
        .order_by(notices.c.id.desc())
    ).all()
    found: list[Found] = []
    for row in rows:
        query = (
            select(notice_volumes).where(notice_volumes.c.notice_id == row.id).order_by(notice_volumes.c.n)
        )
        volumes = tuple(stored_volume(v) for v in tx.conn.execute(query))
        if volumes:  # a removal has none: nothing to check
            found += check(tx, row.id, row.series, line_id, volumes, category=row.category)
    return found
