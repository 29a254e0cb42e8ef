"""Notices as the API, the CLI and the console show them: the read side of `notices`.

A notice's JSON carries its state as of now (an ended notice reads as `expired` before
the timer loop has recorded it), the actions this station would accept from its own side
(the console's buttons), its volumes as ASTM Volume4D, the conflicts recorded for it, and
for a draft the conflicts it would have. Without content (the auditor) its text and a
rejection's reason stay sealed. The console's map reads them with each polygon traced
along its geodesic edges besides (`map_json`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, Connection, and_, case, func, not_, or_, select

from openline.adapters.schema import envelopes, notice_conflicts, notice_volumes, notices
from openline.core import notices as nm
from openline.core.clock import rfc3339, time_param
from openline.core.notices import Event, Party, State
from openline.core.volumes import FEET, R_MIN, WGS84, Circle, FloatArray, Volume
from openline.errors import IllegalTransition, InvalidInput, OpenLineError, check_one_of
from openline.services import notice_conflicts as conflicts
from openline.services import notice_sites, outbox, pages
from openline.services.lines import require_known_peer
from openline.services.notice_rows import get, party_of
from openline.services.notices import KIND_OF, open_draft
from openline.services.station import Station

_TIMES = ("created_at", "starts_at", "ends_at", "deadline_at", "sent_at", "delivered_at",
          "acknowledged_at", "rejected_at", "withdrawn_at", "amended_at", "expired_at", "removed_at",
          "discarded_at")  # fmt: skip


def effective_state(row: Any, now: int) -> str:
    """An active notice whose last volume has ended reads as `expired` at once, before the
    timer loop has recorded it (`notice_expiry`)."""
    if row.state in {s.value for s in nm.ACTIVE} and row.ends_at is not None and row.ends_at < now:
        return State.EXPIRED.value
    return str(row.state)


def _line_margins(conn: Connection) -> dict[str, dict[str, Any]]:
    return {line: dataclasses.asdict(m) for line, m in conflicts.margins_by_line(conn).items()}


def _margins_shown(row: Any, lines_now: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The margins a notice's conflicts were decided under: those kept with its last
    check, or for a draft the line's now (its preview is found under them). None for a
    notice never checked (a removal), or checked before the margins were kept."""
    if row.state == State.DRAFT.value:
        return lines_now.get(str(row.line_id))
    return None if row.conflict_margins is None else dict(json.loads(row.conflict_margins))


def _rejection_reason(station: Station, conn: Connection, row: Any) -> Any:
    """The reason a rejected notice was given: in the sealed body of the `notice.reject`
    envelope, ours (our own copy) or the peer's."""
    env_row = conn.execute(
        select(envelopes)
        .where(
            envelopes.c.call_id == row.id,
            envelopes.c.kind == KIND_OF[Event.REJECT],
            envelopes.c.refused.is_(None),  # one refused for good rejected nothing
        )
        .order_by(envelopes.c.time)
        .limit(1)
    ).first()
    return None if env_row is None else outbox.open_body(station, env_row).get("reason")


# What each side may do to a notice of its own accord (the console's buttons).
_OWN_EVENTS = {
    Party.RECEIVER: (Event.ACK, Event.REJECT),
    Party.SENDER: (Event.WITHDRAW, Event.AMEND, Event.SEND, Event.EDIT, Event.DISCARD),
}


def _actions(conn: Connection, row: Any, state: str, now: int) -> list[str]:
    """What this station would accept from its own side now, by the checks the use cases
    make: the state machine, the sender's limits (`notice_sites.check_sender_change`), and
    `remove`, sending a removal notice for one of our sites (`notice_sites.target_for_send`).
    Who may act is the caller's question (`work_calls`)."""
    me = party_of(row)
    allowed = []
    for event in _OWN_EVENTS[me]:
        try:
            nm.apply(State(state), event, me)
            if event in (Event.WITHDRAW, Event.AMEND):
                notice_sites.check_sender_change(conn, row, event)
        except IllegalTransition:
            continue
        allowed.append(event.value)
    if me is Party.SENDER and row.category in nm.REMOVABLE and row.removes is None:
        try:
            notice_sites.target_for_send(conn, row.id, row.peer, now)
        except OpenLineError:
            pass
        else:
            allowed.append("remove")
    return allowed


def _text(station: Station, row: Any, envelope: Any) -> Any:
    """The notice's text, from its envelope (`envelope`, its row) or its draft."""
    if row.envelope_id is not None:
        assert envelope is not None, f"notice {row.id}: envelope {row.envelope_id} missing"
        return outbox.open_body(station, envelope).get("text")
    if row.draft_body is not None:
        return open_draft(station, row).get("text")
    return None


@dataclasses.dataclass(frozen=True)
class _Related:
    """What showing notices reads besides their rows, read for all of them at once: a
    page of notices costs a handful of queries, not a handful per notice."""

    volumes: dict[str, list[Any]]
    conflicts: dict[str, list[Any]]
    removals: dict[str, Any]  # a site's removal waiting for an answer
    envelopes: dict[str, Any]  # each notice's envelope (its sealed text), with content
    refused: dict[str, str]  # the peer's refusal of a notice's envelope, by envelope id
    states: dict[str, Any]  # the state and end times of every notice these conflict with
    successors: dict[str, str]  # an amended notice's next version, by its id


def _related(conn: Connection, rows: Sequence[Any], *, content: bool) -> _Related:
    ids = [row.id for row in rows]
    volumes: dict[str, list[Any]] = {i: [] for i in ids}
    for v in conn.execute(
        select(notice_volumes)
        .where(notice_volumes.c.notice_id.in_(ids))
        .order_by(notice_volumes.c.notice_id, notice_volumes.c.n)
    ):
        volumes[v.notice_id].append(v)
    conflicts: dict[str, list[Any]] = {i: [] for i in ids}
    for c in conn.execute(
        select(notice_conflicts)
        .where(or_(notice_conflicts.c.notice_a.in_(ids), notice_conflicts.c.notice_b.in_(ids)))
        .order_by(notice_conflicts.c.id)
    ):
        for side in {c.notice_a, c.notice_b} & conflicts.keys():
            conflicts[side].append(c)
    sites = [row.id for row in rows if row.category in nm.REMOVABLE and row.removes is None]
    removals = notice_sites.pending_removals(conn, sites) if sites else {}
    sealed = [row.envelope_id for row in rows if content and row.envelope_id is not None]
    found = conn.execute(select(envelopes).where(envelopes.c.id.in_(sealed))).all() if sealed else []
    states: dict[str, Any] = {row.id: row for row in rows}
    others = {side for cs in conflicts.values() for c in cs for side in (c.notice_a, c.notice_b)}
    if missing := sorted(others - states.keys()):
        ends = (notices.c[f"{name}_at"] for name in _LEFT_ACTIVE)
        query = select(notices.c.id, notices.c.state, notices.c.ends_at, *ends).where(
            notices.c.id.in_(missing)
        )
        states.update((r.id, r) for r in conn.execute(query))
    sent = [row.envelope_id for row in rows if row.direction == "out" and row.envelope_id is not None]
    refused = _refused_of(conn, sent) if sent else {}
    return _Related(
        volumes, conflicts, removals, {e.id: e for e in found}, refused, states, _successors(conn, rows)
    )


def _successors(conn: Connection, rows: Sequence[Any]) -> dict[str, str]:
    """The next version of each amended notice among `rows` (by their series' index), so
    that an investigator holding an old version is told which one replaced it."""
    series = sorted({row.series for row in rows if row.amended_at is not None})
    if not series:
        return {}
    query = select(notices.c.id, notices.c.supersedes).where(
        notices.c.series.in_(series), notices.c.supersedes.is_not(None)
    )
    return {r.supersedes: r.id for r in conn.execute(query)}


def _refused_of(conn: Connection, ids: list[str]) -> dict[str, str]:
    query = select(envelopes.c.id, envelopes.c.refused).where(
        envelopes.c.id.in_(ids), envelopes.c.refused.is_not(None)
    )
    return {r.id: r.refused for r in conn.execute(query)}


def notices_json(
    station: Station, conn: Connection, rows: Sequence[Any], *, content: bool
) -> list[dict[str, Any]]:
    """Many notices as the API shows them (`notice_json`), read together."""
    related, margins = _related(conn, rows, content=content), _line_margins(conn)
    return [
        notice_json(station, conn, row, content=content, margins=margins, related=related) for row in rows
    ]


def notice_json(
    station: Station,
    conn: Connection,
    row: Any,
    *,
    content: bool,
    margins: dict[str, Any] | None = None,
    related: _Related | None = None,
) -> dict[str, Any]:
    """A notice as the API shows it; without `content` (the auditor) its text and a
    rejection's reason stay sealed. `related`: read with others (`notices_json`)."""
    related = related or _related(conn, [row], content=content)
    volumes = related.volumes[row.id]
    margins = _line_margins(conn) if margins is None else margins
    now = station.clock.now()
    state = effective_state(row, now)
    pending = related.removals.get(row.id)
    out: dict[str, Any] = {
        "id": row.id,
        "series": row.series,
        "version": row.version,
        "supersedes": row.supersedes,
        "superseded_by": related.successors.get(row.id),
        "removes": row.removes,
        "removed_by": row.removed_by,
        "removal_pending": None if pending is None else pending.id,
        "peer": row.peer,
        "direction": row.direction,
        "category": row.category,
        "state": state,
        "actions": _actions(conn, row, state, now),
        "created_by": row.created_by,
        "acknowledged_by": row.acknowledged_by,
        "margins": _margins_shown(row, margins),
        "extents": [json.loads(v.volume4d) for v in volumes],
        "content_withheld": not content,
        "refused": related.refused.get(row.envelope_id),
    }
    for column in _TIMES:
        out[column] = rfc3339(getattr(row, column))
    if content:
        out["text"] = _text(station, row, related.envelopes.get(row.envelope_id))
        out["rejection_reason"] = None
        if row.rejected_at is not None:
            out["rejection_reason"] = _rejection_reason(station, conn, row)
    out["conflicts"] = [_conflict_json(row.id, c, related.states, now) for c in related.conflicts[row.id]]
    out["would_conflict"] = None
    if row.state == State.DRAFT.value and volumes:  # a preview: found now, recorded nowhere
        mine = tuple(conflicts.stored_volume(v) for v in volumes)
        preview = conflicts.find(conn, row.id, row.series, row.line_id, mine, now, category=row.category)
        out["would_conflict"] = conflicts.found_json(preview)
    return out


def _conflict_json(notice_id: str, c: Any, states: dict[str, Any], now: int) -> dict[str, Any]:
    """One recorded conflict as a notice shows it. It is `active` while both notices are
    (neither withdrawn, amended, rejected, removed nor over) and its overlap is still to
    come or going on; otherwise it is history, kept, and `ended` says why it first stopped
    holding, `ended_at` when (`_ended`)."""
    other = c.notice_b if c.notice_a == notice_id else c.notice_a
    ended = _ended(c, states, now)
    return {
        "volume": c.volume_a if c.notice_a == notice_id else c.volume_b,
        "other_notice": other,
        "other_volume": c.volume_b if c.notice_a == notice_id else c.volume_a,
        "from": rfc3339(c.time_start),
        "until": rfc3339(c.time_end),
        "altitude_m": [c.alt_lower_m, c.alt_upper_m],
        # Found under these, which the notice's own `margins` (its last check) may not be.
        "margins": None if c.margins is None else dict(json.loads(c.margins)),
        "active": ended is None,
        "ended": None if ended is None else ended[1],
        "ended_at": None if ended is None else rfc3339(ended[0]),
    }


# The states a notice leaves the active ones for, each recorded at `<state>_at`, in the
# order a tie between two of its times is read.
_LEFT_ACTIVE = ("rejected", "withdrawn", "amended", "expired", "removed")


def _left_active(row: Any, now: int) -> tuple[int | None, str] | None:
    """When a notice first left the active states, and for which: the earliest of its
    recorded times (a rejected notice may be amended since, an expired site removed), or
    the end of its last volume for one that reads expired before the timer has recorded it.
    None while it is active."""
    left = [(t, i) for i, name in enumerate(_LEFT_ACTIVE) if (t := getattr(row, f"{name}_at")) is not None]
    if left:
        t, i = min(left)
        return t, _LEFT_ACTIVE[i]
    if row.state not in _ACTIVE:
        return None, str(row.state)  # left with no time recorded
    if effective_state(row, now) == State.EXPIRED.value:
        return int(row.ends_at), State.EXPIRED.value
    return None


def _ended(c: Any, states: dict[str, Any], now: int) -> tuple[int | None, str] | None:
    """Why and when a conflict first stopped holding, or None while it holds: the first of
    its two notices to leave the active states, or the end of their overlap if that came
    first. It is read from the times both notices recorded, not from their states now: so
    it is the same from either notice and on either station, and names what the alert's
    `over` does (`notice_rows._end_alarms`). A notice that ends as the overlap does is
    named; of two that end together, the older (UUIDv7 ids sort by time)."""
    ends: list[tuple[int | None, int, str, str]] = []
    for side in (c.notice_a, c.notice_b):
        left = _left_active(states[side], now)
        if left is not None:
            ends.append((left[0], 0, side, f"notice {side} is {left[1]}"))
    if c.time_end is not None and c.time_end < now:
        ends.append((c.time_end, 1, "", "its overlap is over"))
    if not ends:
        return None
    t, _, _, why = min(ends, key=lambda end: (end[0] is None, end[0] or 0, *end[1:]))
    return t, why


AWAITING_ANSWER = sorted(s.value for s in nm.AWAITING)  # an inbound notice not yet answered
_ACTIVE = sorted(s.value for s in nm.ACTIVE)


def _in_state(state: str, now: int) -> ColumnElement[bool]:
    """Notices whose state reads `state` now (`effective_state`): an active notice whose
    last volume has ended reads as expired."""
    ended = and_(notices.c.ends_at.is_not(None), notices.c.ends_at < now)
    if state == State.EXPIRED.value:
        return or_(notices.c.state == state, and_(notices.c.state.in_(_ACTIVE), ended))
    if state in _ACTIVE:
        return and_(notices.c.state == state, not_(ended))
    return notices.c.state == state


@dataclasses.dataclass(frozen=True)
class NoticeFilter:
    """Which notices to list; every field optional. `state` is the state a notice reads
    now, as listed."""

    state: str | None = None
    peer: str | None = None
    direction: str | None = None
    category: str | None = None

    def check(self) -> None:
        if self.state is not None:
            check_one_of("state", self.state, [s.value for s in State])
        if self.direction is not None and self.direction not in ("in", "out"):
            raise InvalidInput(f"direction must be in or out, got {self.direction!r}")
        if self.category is not None:
            check_one_of("category", self.category, nm.CATEGORIES)

    def where(self, now: int) -> list[ColumnElement[bool]]:
        self.check()
        out = [] if self.state is None else [_in_state(self.state, now)]
        for column, value in ((notices.c.peer, self.peer), (notices.c.direction, self.direction),
                              (notices.c.category, self.category)):  # fmt: skip
            if value is not None:
                out.append(column == value)
        return out


def in_force(
    station: Station, *, content: bool, limit: int, besides: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], int]:
    """Notices announced and in force now (sent, delivered or acknowledged, not ended)
    that are not among `besides`, at most `limit`, protected sites and movements first,
    then the newest; and how many there are in all. A notice's age does not matter: a
    hospital notified a year ago is as protected as one notified today."""
    now = station.clock.now()
    where = (or_(*(_in_state(state, now) for state in _ACTIVE)), notices.c.id.not_in(list(besides)))
    with station.db.read() as conn:
        total = int(conn.execute(select(func.count()).select_from(notices).where(*where)).scalar_one())
        rows = conn.execute(
            select(notices)
            .where(*where)
            .order_by(
                case((notices.c.category.in_(sorted(nm.PROTECTED)), 0), else_=1),
                notices.c.created_at.desc(),
                notices.c.id.desc(),
            )
            .limit(limit)
        ).all()
        return notices_json(station, conn, rows, content=content), total


def count_notices(station: Station) -> int:
    """How many notices the station holds, drafts included."""
    with station.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(notices)).scalar_one())


def list_notices(
    station: Station,
    *,
    content: bool,
    limit: int = 100,
    where: NoticeFilter | None = None,
    before: str | None = None,
) -> list[dict[str, Any]]:
    """Notices newest first; with `before` (a notice's id), those listed after it."""
    with station.db.read() as conn:
        # Newest first; notices made in one transaction (one batch from a peer) tie on
        # created_at and are ordered by id (UUIDv7: time-ordered), as calls are.
        newest = select(notices).order_by(notices.c.created_at.desc(), notices.c.id.desc())
        if before is not None:
            order = (notices.c.created_at, notices.c.id)
            newest = newest.where(pages.after(conn, notices, before, order, "notice"))
        if where is not None:
            newest = newest.where(*where.where(station.clock.now()))
            require_known_peer(conn, where.peer)
        rows = conn.execute(newest.limit(limit)).all()
        return notices_json(station, conn, rows, content=content)


def awaiting_answer(station: Station, *, content: bool, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The notices from the peer that still wait for our acknowledgement (they read sent or
    delivered), the nearest deadline first, at most `limit` of them, and how many wait in
    all: what the watch board shows, however many notices came after them. A backlog of
    300 sites listed whole pushed the board's alerts and handovers 46 screens down."""
    now = station.clock.now()
    waiting = (notices.c.direction == "in", or_(*(_in_state(state, now) for state in AWAITING_ANSWER)))
    with station.db.read() as conn:
        rows = conn.execute(
            select(notices)
            .where(*waiting)
            .order_by(notices.c.deadline_at.is_(None), notices.c.deadline_at, notices.c.id)
            .limit(limit)
        ).all()
        total = len(rows)
        if total == limit:
            total = int(conn.execute(select(func.count()).select_from(notices).where(*waiting)).scalar_one())
        return notices_json(station, conn, rows, content=content), total


# A place an investigator asks about: a circle round a point, at one time or at any, at
# one altitude or at any.
MAX_RADIUS_M = 100_000.0
_ANY_ALTITUDE = (-1.0e5, 1.0e7)  # metres: below the deepest notice, above the highest


def place_of(
    at: str, radius_m: float = 1.0, when: int | None = None, altitude_m: float | None = None
) -> Volume:
    """The place `at` ("LAT,LNG", WGS84 degrees) names: a circle of `radius_m`, at the
    instant `when` (µs) or at any time, at `altitude_m` or at any altitude."""
    try:
        lat, lng = (float(part) for part in at.split(","))
    except ValueError:
        raise InvalidInput(f"at: expected LAT,LNG in degrees, got {at!r:.60}") from None
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lng) and -180 <= lng <= 180):
        raise InvalidInput(f"at: latitude must be in [-90, 90] and longitude in [-180, 180], got {at!r:.60}")
    if not (math.isfinite(radius_m) and 0 < radius_m <= MAX_RADIUS_M):
        raise InvalidInput(
            f"radius_m: expected more than 0 and at most {MAX_RADIUS_M:,.0f} m, got {radius_m}"
        )
    if altitude_m is not None and not math.isfinite(altitude_m):
        raise InvalidInput(f"altitude_m: expected a number of metres, got {altitude_m}")
    low, high = _ANY_ALTITUDE if altitude_m is None else (altitude_m, altitude_m)
    start, end = (0, None) if when is None else (when, when)
    return Volume(Circle(lat, lng, radius_m), low, high, start, end, name="the place")


def place_asked(
    at: str | None, radius_m: float | None = None, when: str | None = None, altitude_m: float | None = None
) -> Volume | None:
    """The place an investigator asks about (`notices --at`, `GET /notices?at=`, the
    console's place page), or None when none is asked: `place_of` with `when` as RFC 3339
    text and a 1 m circle unless `radius_m`. Narrowing without a place is refused."""
    if at is None:
        if radius_m is not None or when is not None or altitude_m is not None:
            raise InvalidInput("radius_m, when and altitude_m narrow a place: give it with at=LAT,LNG")
        return None
    return place_of(at, 1.0 if radius_m is None else radius_m, time_param(when, "when"), altitude_m)


# A notice's recorded states, in the order a tie between two of their times is read.
_STANDINGS = ("sent", "delivered", "acknowledged", "rejected", "amended", "withdrawn", "removed", "expired")


def standing_at(row: Any, when: int) -> dict[str, Any]:
    """What had become of a notice by the instant `when`: the last of its recorded
    states reached by then, since when and, if acknowledged, by whom (all None: not sent
    by then). The question an investigator asks of a strike: was the site notified, and
    acknowledged, before it?"""
    reached = [
        (t, i, name)
        for i, name in enumerate(_STANDINGS)
        if (t := getattr(row, f"{name}_at")) is not None and t <= when
    ]
    if not reached:
        return {"state": None, "since": None, "by": None}
    t, _, name = max(reached)
    return {"state": name, "since": rfc3339(t), "by": row.acknowledged_by if name == "acknowledged" else None}


def notices_at(
    station: Station, place: Volume, *, content: bool, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """Every notice sent or received here (not drafts), whatever its state now, with a
    volume that overlaps `place`: newest first, at most `limit`, each with `covers`, its
    volumes there and when and at what altitudes they overlap it; and, when `place` is one
    instant, `standing`, what had become of the notice by then (`standing_at`). Also how
    many notices covered the place in all."""
    instant = place.start if place.end == place.start else None
    with station.db.read() as conn:
        found = conflicts.covering(conn, place)
        by_notice: dict[str, list[conflicts.Found]] = {}
        for f in found:
            by_notice.setdefault(f.other, []).append(f)
        if not by_notice:
            return [], 0
        rows = conn.execute(
            select(notices)
            .where(notices.c.id.in_(list(by_notice)))
            .order_by(notices.c.created_at.desc(), notices.c.id.desc())
            .limit(limit)
        ).all()
        out = notices_json(station, conn, rows, content=content)
        for row, shown in zip(rows, out, strict=True):
            shown["covers"] = [
                {
                    "volume": f.other_volume,
                    "from": rfc3339(f.result.time[0]) if f.result.time else None,
                    "until": rfc3339(f.result.time[1]) if f.result.time else None,
                    "altitude_m": list(f.result.altitude) if f.result.altitude else None,
                }
                for f in sorted(by_notice[row.id], key=lambda f: f.other_volume)
            ]
            shown["standing"] = None if instant is None else standing_at(row, instant)
        return out, len(by_notice)


def show_notice(station: Station, notice_id: str, *, content: bool) -> dict[str, Any]:
    with station.db.read() as conn:
        return notice_json(station, conn, get(conn, notice_id), content=content)


# The console's map -----------------------------------------------------------------------

# Leaflet joins two points with a straight line in Web Mercator: a rhumb line, whose
# geodesic curvature is |sin(azimuth)| tan|lat| / R (none along a meridian). Between two
# points of a geodesic s apart it strays from the geodesic by about s^2 |sin az| tan|lat|
# / 8R; both factors are largest where the geodesic is nearest the pole, taken as the
# highest of its ends and middle. Each edge is drawn through points of its geodesic close
# enough that this stays under MAP_ERROR_M (tested against pyproj). 1 m on the ground
# is under a pixel at the map's greatest zoom (16: 2.4 m cos(lat) a pixel) to 60 degrees
# and 5 pixels at 85. Web Mercator ends at 85.05 degrees (Leaflet draws anything beyond on
# that line), so no more is asked beyond it: on an east-west edge, points every 2.1 km
# there, 7 km at 46 degrees.
MAP_ERROR_M = 1.0
# Beyond this an edge strays more, as the square of its length: a 1,000 km edge at 85
# degrees, 3.5 m; most notices' edges need far fewer (2 degrees east-west at 46: 23).
MAP_POINTS_PER_EDGE = 256
# Leaflet's L.circle is an ellipse in Web Mercator through the points r / 6,371 km of a
# sphere north, south, east and west of the centre: WGS84's radii of curvature differ from
# that sphere's by up to 0.56% (north-south at the equator), and a 100 km circle at 60
# degrees is drawn 364 m too wide east-west, 202 m too far north and 189 m south (pyproj,
# against Leaflet 1.9.4's Circle._project). Its error is 0.558% of the radius at worst, at
# any latitude to 85 degrees (tested): up to this radius, under 0.84 m, and those circles
# are drawn by Leaflet; larger ones are traced.
MAP_CIRCLE_TRACED_ABOVE_M = 150.0
# A circle is traced through points of it at equal azimuths; the straight line between two
# s apart strays from it by about s^2 (1/r + |sin az| tan|lat| / R) / 8 (its curvature, at
# most 1/r on WGS84, against the rhumb line's), so N = 2 pi r / s points keep it under
# MAP_ERROR_M, less the 8 mm that rounding to 7 decimal places may move a point: 28 for
# 151 m, 71 for 1 km, 224 for 10 km, 716 for 100 km at 60 degrees, 1,459 for the largest
# circle the default area limit takes (282 km) at 85 degrees. Beyond the cap a circle
# strays more, in proportion to its radius (a 1,000 km one, 2.6 m).
MAP_POINTS_PER_CIRCLE = 1_500
# What the circles of one page may take together (about 4 MB of JSON and 0.4 s): 1,500
# circles of 2 km, 500 of 10 km, 200 of 100 km. A page whose circles would need more has
# its error raised, the same for every circle, until they fit (and the radius up to which
# L.circle is as good with it): 1,500 circles of 10 km, 5 m; of 100 km, 52 m.
MAP_CIRCLE_POINTS_PER_PAGE = 150_000
_ROUNDED_M = 0.01  # [lat, lng] to 7 decimal places: each within 5.6 mm
_MERCATOR_MAX_LAT = 85.0511287798
_MIN_TAN = 1e-9  # on the equator or a meridian a rhumb line is the geodesic

Drawn = list[list[float]]  # [lat, lng] points, as Leaflet reads them


def map_json(shown: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Notices as the console's map reads them: as the API shows them (`notice_json`, not
    changed: its `extents` stay the ASTM volumes as sent), each with `drawn_outlines`, one
    entry per extent: the outline as the map draws it (`drawn_rings`, `drawn_circles`), or
    None where Leaflet draws it as it is (a polygon of short edges from its vertices, a
    small circle with L.circle); and `beyond_edge`, one entry per extent: None, or where
    the pin goes for a volume that lies mostly beyond the map's edge (`beyond_edge`)."""
    polygons: list[tuple[int, int, list[tuple[float, float]]]] = []
    circles: list[tuple[int, int, tuple[float, float, float]]] = []
    for i, notice in enumerate(shown):
        for j, e in enumerate(notice["extents"]):
            volume = e["volume"]
            if "outline_polygon" in volume:
                vertices = volume["outline_polygon"]["vertices"]
                polygons.append((i, j, [(v["lat"], v["lng"]) for v in vertices]))
            elif "outline_circle" in volume:
                c = volume["outline_circle"]
                radius = c["radius"]["value"] * (FEET if c["radius"]["units"] == "FT" else 1.0)
                circles.append((i, j, (c["center"]["lat"], c["center"]["lng"], radius)))
    out = [
        {
            **notice,
            "drawn_outlines": [None] * len(notice["extents"]),
            "beyond_edge": [None] * len(notice["extents"]),
        }
        for notice in shown
    ]
    for (i, j, _), ring in zip(polygons, drawn_rings([w[2] for w in polygons]), strict=True):
        out[i]["drawn_outlines"][j] = ring
    for (i, j, _), ring in zip(circles, drawn_circles([w[2] for w in circles]), strict=True):
        out[i]["drawn_outlines"][j] = ring
    for i, j, vertices in polygons:
        drawn = out[i]["drawn_outlines"][j] or [[lat, lng] for lat, lng in vertices]
        out[i]["beyond_edge"][j] = beyond_edge(drawn)
    for i, j, (lat, lng, _) in circles:
        drawn = out[i]["drawn_outlines"][j] or [[lat, lng]]  # one L.circle draws: 150 m at most
        out[i]["beyond_edge"][j] = beyond_edge(drawn, lng)
    return out


def beyond_edge(drawn: Drawn, pin_lng: float | None = None) -> dict[str, Any] | None:
    """Where the map pins an outline (`drawn`, as `_drawn` gives it) that lies mostly
    beyond its edge, or None. Web Mercator ends at 85.05 degrees and Leaflet draws anything
    beyond on that line: a ring round a pole at 88 degrees (as close as the default area
    limit lets one come) was a line along the map's top edge, with no area to see or hover.
    Mostly: the middle of its latitudes lies beyond; wholly: all of them. The pin goes on
    the edge at `pin_lng` (a circle's centre), the first vertex's longitude for a ring round
    a pole, or else the middle of its longitudes, unwrapped as the outline is."""
    lats = [lat for lat, _ in drawn]
    lngs = [lng for _, lng in drawn]
    middle = (min(lats) + max(lats)) / 2
    if abs(middle) <= _MERCATOR_MAX_LAT:
        return None
    north = middle > 0
    if pin_lng is None:
        round_a_pole = max(lngs) - min(lngs) > 359.0  # run on to the pole and back (`_drawn`)
        pin_lng = lngs[0] if round_a_pole else (min(lngs) + max(lngs)) / 2
    return {
        "side": "north" if north else "south",
        "wholly": (min(lats) if north else -max(lats)) > _MERCATOR_MAX_LAT,
        "pin": [_MERCATOR_MAX_LAT if north else -_MERCATOR_MAX_LAT, round(pin_lng, 7)],
    }


def drawn_rings(rings: Sequence[Sequence[tuple[float, float]]]) -> list[Drawn | None]:
    """Each ring of (lat, lng) vertices as the map draws it: [lat, lng] points along its
    geodesic edges (pyproj's), the first vertex first, longitudes unwrapped past +-180 so
    that consecutive points are joined the short way round; a ring round a pole runs on
    to the pole and back (Web Mercator has no pole: Leaflet draws it on the map's edge). None
    for a ring its vertices draw as they are: no edge split and no pole inside. All the
    rings in a few array calls: the notices page draws hundreds."""
    if not rings:
        return []
    counts = np.array([len(r) for r in rings])
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    vertices = np.array([v for r in rings for v in r], dtype=np.float64)
    lats, lngs = vertices[:, 0], vertices[:, 1]
    nxt = np.arange(len(lats)) + 1
    nxt[firsts + counts - 1] = firsts
    az, back_az, dist = WGS84.inv(lngs, lats, lngs[nxt], lats[nxt])
    _, mid_lats, mid_az = WGS84.fwd(lngs, lats, az, dist / 2)
    at = np.array([lats, lats[nxt], mid_lats])
    tan = np.tan(np.radians(np.minimum(np.abs(at), _MERCATOR_MAX_LAT)))
    turn = np.abs(np.sin(np.radians(np.array([az, back_az, mid_az])))) * tan
    spacing = np.sqrt(8 * R_MIN * MAP_ERROR_M / np.maximum(turn.max(axis=0), _MIN_TAN))
    pieces = np.clip(np.ceil(dist / spacing), 1, MAP_POINTS_PER_EDGE).astype(np.int64)

    # Each edge's start vertex, then its inner points at equal steps along the geodesic.
    edge = np.repeat(np.arange(len(lats)), pieces)
    step = np.arange(len(edge)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    inner = step > 0
    out_lats, out_lngs = lats[edge], lngs[edge]
    e = edge[inner]
    fwd_lngs, fwd_lats, _ = WGS84.fwd(lngs[e], lats[e], az[e], dist[e] * step[inner] / pieces[e])
    out_lats[inner], out_lngs[inner] = fwd_lats, fwd_lngs

    split = np.add.reduceat(pieces > 1, firsts) > 0
    return _drawn(out_lats, out_lngs, np.add.reduceat(pieces, firsts), split)


def drawn_circles(circles: Sequence[tuple[float, float, float]]) -> list[Drawn | None]:
    """Each circle, (lat, lng, radius in metres), as the map draws it: [lat, lng] points
    radius_m from the centre along the ellipsoid (pyproj's), from due north clockwise at
    equal azimuths, unwrapped and round a pole as `drawn_rings`; None for a circle
    L.circle draws as well. All of them in one array call, within
    MAP_CIRCLE_POINTS_PER_PAGE (`circle_error_m`)."""
    if not circles:
        return []
    lats, lngs, radii = np.array(circles, dtype=np.float64).reshape(-1, 3).T
    sizes = _circle_points(lats, radii, circle_error_m(circles))
    traced = sizes > 0
    owner = np.repeat(np.arange(len(lats)), sizes)
    step = np.arange(len(owner)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    out_lngs, out_lats, _ = WGS84.fwd(lngs[owner], lats[owner], 360.0 * step / sizes[owner], radii[owner])
    rings = iter(_drawn(out_lats, out_lngs, sizes[traced], np.ones(int(traced.sum()), dtype=bool)))
    return [next(rings) if t else None for t in traced]


def circle_error_m(circles: Sequence[tuple[float, float, float]]) -> float:
    """How far the map may draw these circles (`drawn_circles`) from the true ones, at most:
    MAP_ERROR_M, or more for as many as would need above MAP_CIRCLE_POINTS_PER_PAGE
    points, the least (within 5%) that fits."""
    lats, _, radii = np.array(circles, dtype=np.float64).reshape(-1, 3).T
    error = MAP_ERROR_M
    while _circle_points(lats, radii, error).sum() > MAP_CIRCLE_POINTS_PER_PAGE:
        error *= 1.05  # about 2.5% fewer points a step
    return error


def _circle_points(lats: FloatArray, radii: FloatArray, error_m: float) -> NDArray[np.int64]:
    """How many points trace each circle within error_m of it; 0 where L.circle does."""
    highest = np.minimum(np.abs(lats) + np.degrees(radii / R_MIN), _MERCATOR_MAX_LAT)
    curvature = 1 / radii + np.tan(np.radians(highest)) / R_MIN
    spacing = np.sqrt(8 * (error_m - _ROUNDED_M) / curvature)
    needed = np.ceil(2 * np.pi * radii / spacing)
    sizes: NDArray[np.int64] = np.minimum(needed, MAP_POINTS_PER_CIRCLE).astype(np.int64)
    sizes[radii <= MAP_CIRCLE_TRACED_ABOVE_M * error_m / MAP_ERROR_M] = 0
    return sizes


def _drawn(
    lats: FloatArray, lngs: FloatArray, sizes: NDArray[np.int64], keep: NDArray[np.bool_]
) -> list[Drawn | None]:
    """Rings of points, `sizes` long one after another, as Leaflet draws them: longitudes
    unwrapped within each ring, each step taken the short way round; a ring that winds
    round a pole run on to the pole and back. A ring neither `keep` nor round a pole: None."""
    if not len(sizes):
        return []
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    raw = np.diff(lngs)
    turns = np.concatenate([[0.0], np.cumsum((raw + 180.0) % 360.0 - 180.0 - raw)])
    lngs = lngs + turns - np.repeat(turns[starts], sizes)
    last = starts + sizes - 1
    closing = (lngs[starts] - lngs[last] + 180.0) % 360.0 - 180.0
    winding = lngs[last] + closing - lngs[starts]  # 0, or +-360 round a pole

    points = np.column_stack([lats, lngs]).round(7)
    out: list[Drawn | None] = []
    for r, ring in enumerate(np.split(points, starts[1:])):
        round_a_pole = abs(winding[r]) > 180.0
        if not (keep[r] or round_a_pole):
            out.append(None)
            continue
        drawn = ring.tolist()
        if round_a_pole:  # the pole the ring is nearer to: its inside is the smaller part
            pole = 90.0 if ring[:, 0].mean() >= 0 else -90.0
            lat, lng = drawn[0][0], round(drawn[0][1] + float(winding[r]), 7)
            drawn += [[lat, lng], [pole, lng], [pole, drawn[0][1]]]
        out.append(drawn)
    return out
