"""Notices between stations: send, acknowledge, reject, withdraw, amend; and conflicts.

Every local action is one transaction: the notice row and its volumes, the outgoing
envelope (its sealed body carries the text and the volumes as ASTM Volume4D JSON) and
the ledger entry commit together. An inbound notice envelope is applied inside the
inbox's transaction. The volumes are kept in clear (the conflict check and the map need
them); the free text and a rejection's reason stay in the sealed bodies.

Every new or amended notice, ours or the peer's, is checked against every active notice
(`openline.core.conflicts`, the exact test) on the station that stores it. Both stations
hold both sides' notices, so a conflict raises an alert on both watch floors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from openline.adapters import db
from openline.adapters.schema import envelopes, notice_conflicts, notice_volumes, notices
from openline.core import conflicts as engine
from openline.core import formats
from openline.core import notices as nm
from openline.core.clock import MICROS, parse_rfc3339, rfc3339
from openline.core.envelope import Envelope
from openline.core.notices import Event, Party, State
from openline.core.volumes import Volume, nvector_boxes
from openline.errors import Code, EnvelopeRefused, IllegalTransition, InvalidInput, NotFound
from openline.services import alerts, ledger, outbox
from openline.services.lines import lock_line, require_active
from openline.services.station import Station, Tx

MAX_BODY = 48 * 1024  # the sealed body of an envelope holds at most 64 KiB
_BOX_PAD = 1e-9  # boxes compared as stored floats: pad for rounding, as the index does
RECEIVE_HORIZON_S = 31 * 86_400  # the sender checked its 30 days; allow for clocks that differ
KIND_OF = {Event.ACK: "notice.ack", Event.REJECT: "notice.reject", Event.WITHDRAW: "notice.withdraw"}
EVENT_OF = {kind: event for event, kind in KIND_OF.items()}
_TIME_COLUMN = {
    State.DELIVERED: "delivered_at",
    State.ACKNOWLEDGED: "acknowledged_at",
    State.REJECTED: "rejected_at",
    State.WITHDRAWN: "withdrawn_at",
    State.AMENDED: "amended_at",
}


@dataclass(frozen=True)
class Found:
    """A conflict found for one volume of a new notice."""

    volume: int
    other: str
    other_volume: int
    result: engine.PairResult


# Reading a notice document ----------------------------------------------------------------


def parse_document(document: Any, now: int, name: str = "notice") -> formats.ParsedNotice:
    """A notice file's JSON, checked as the offline check checks it; refused with a clear
    error naming the volume and vertex, before anything is stored."""
    try:
        parsed = formats.parse_notice(name, document, now=now)
    except ValueError as exc:  # FormatError and VolumeError
        raise InvalidInput(str(exc)) from None
    if parsed.category not in nm.CATEGORIES:
        raise InvalidInput(f"{name}: category must be one of {', '.join(nm.CATEGORIES)}")
    if len(parsed.text) > nm.MAX_TEXT:
        raise InvalidInput(f"{name}: text must be at most {nm.MAX_TEXT} characters, got {len(parsed.text)}")
    if not 1 <= len(parsed.volumes) <= nm.MAX_VOLUMES:
        raise InvalidInput(f"{name}: a notice has 1 to {nm.MAX_VOLUMES} volumes, got {len(parsed.volumes)}")
    return parsed


def _volume_rows(notice_id: str, volumes: tuple[Volume, ...]) -> list[dict[str, Any]]:
    mins, maxs = nvector_boxes([v.outline for v in volumes])
    return [
        {
            **{f"n{axis}_min": float(mins[i][k]) for k, axis in enumerate("xyz")},
            **{f"n{axis}_max": float(maxs[i][k]) for k, axis in enumerate("xyz")},
            "notice_id": notice_id,
            "n": n,
            "volume4d": json.dumps(nm.volume4d(v), separators=(",", ":")),
            "alt_lower_m": v.alt_lower_m,
            "alt_upper_m": v.alt_upper_m,
            "start_at": v.start,
            "end_at": v.end,
        }
        for i, (n, v) in enumerate(enumerate(volumes, start=1))
    ]


def _span(volumes: tuple[Volume, ...]) -> tuple[int, int | None]:
    ends = [v.end for v in volumes]
    return min(v.start for v in volumes), None if None in ends else max(e for e in ends if e is not None)


# Conflicts ------------------------------------------------------------------------------


def _stored_volume(row: Any) -> Volume:
    parsed = formats.parse_notice(
        f"notice {row.notice_id} volume {row.n}",
        {"category": "exercise", "text": "", "extents": [json.loads(row.volume4d)]},
        now=0,  # stored volumes were checked when they came in: no horizon now
        horizon_s=2**40,
    )
    v = parsed.volumes[0]
    return Volume(
        v.outline, v.alt_lower_m, v.alt_upper_m, v.start, v.end, f"notice {row.notice_id} volume {row.n}"
    )


def _candidates(conn: Connection, notice_id: str, series: str, v: Volume, now: int) -> list[Any]:
    """Volumes of other active notices whose time window, altitude band (closed
    intervals) and n-vector box overlap this volume's: the database narrows, the exact
    test decides. The boxes are conservative, so no conflict is missed."""
    lo, hi = (b[0] for b in nvector_boxes([v.outline]))
    c = notice_volumes.c
    near = [
        cond
        for k, axis in enumerate("xyz")
        for cond in (
            c[f"n{axis}_max"] >= float(lo[k]) - _BOX_PAD,
            c[f"n{axis}_min"] <= float(hi[k]) + _BOX_PAD,
        )
    ]
    query = (
        select(notice_volumes, notices.c.series)
        .join(notices, notices.c.id == notice_volumes.c.notice_id)
        .where(
            notices.c.state.in_([s.value for s in nm.ACTIVE]),
            notices.c.series != series,
            notices.c.id != notice_id,
            or_(notices.c.ends_at.is_(None), notices.c.ends_at >= now),
            notice_volumes.c.alt_lower_m <= v.alt_upper_m,
            notice_volumes.c.alt_upper_m >= v.alt_lower_m,
            or_(notice_volumes.c.end_at.is_(None), notice_volumes.c.end_at >= v.start),
            *near,
        )
    )
    if v.end is not None:
        query = query.where(notice_volumes.c.start_at <= v.end)
    return list(conn.execute(query).all())


def check_conflicts(tx: Tx, notice_id: str, series: str, volumes: tuple[Volume, ...]) -> list[Found]:
    """Check a new notice against every active notice; record and alarm each conflict."""
    found: list[Found] = []
    for n, v in enumerate(volumes, start=1):
        for row in _candidates(tx.conn, notice_id, series, v, tx.now):
            result = engine.check(v, _stored_volume(row))
            if result.conflict:
                found.append(Found(n, str(row.notice_id), int(row.n), result))
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


# Local use cases ------------------------------------------------------------------------


def send(station: Station, actor: str, peer: str, document: Any, *, amends: str | None = None) -> str:
    """Send a notice to `peer` (or a new version of one of ours). Returns its id."""
    now = station.clock.now()
    parsed = parse_document(document, now)
    notice_id = outbox.new_id()
    with station.tx() as tx:
        line = require_active(tx.conn, peer)
        lock_line(tx.conn, line.id)
        series, version = notice_id, 1
        if amends is not None:
            old = _get(tx.conn, amends, for_update=True)
            if old.direction != "out" or old.peer != peer:
                raise InvalidInput(f"notice {amends} is not one of ours to {peer}: only the sender amends")
            _transition(tx, old, Event.AMEND, Party.SENDER)
            series, version = str(old.series), int(old.version) + 1
        body = {
            "notice": notice_id,
            "series": series,
            "version": version,
            "supersedes": amends,
            "category": parsed.category,
            "text": parsed.text,
            "extents": [nm.volume4d(v) for v in parsed.volumes],
        }
        if len(json.dumps(body)) > MAX_BODY:
            raise InvalidInput(f"the notice is too large to send ({len(json.dumps(body))} bytes): split it")
        env = outbox.enqueue(station, tx, line.id, "notice.send", notice_id, body)
        deadline = tx.now + int(line.notice_deadline_s) * MICROS  # by when the peer should acknowledge
        _store(
            tx,
            notice_id,
            series,
            version,
            amends,
            line,
            peer,
            "out",
            str(parsed.category),
            env.id,
            actor,
            deadline_at=deadline,
        )
        tx.conn.execute(insert(notice_volumes), _volume_rows(notice_id, parsed.volumes))
        starts, ends = _span(parsed.volumes)
        tx.conn.execute(
            update(notices).where(notices.c.id == notice_id).values(starts_at=starts, ends_at=ends)
        )
        _log(
            tx,
            "notice.sent",
            notice_id,
            line.id,
            peer,
            actor,
            env.id,
            version=version,
            volumes=len(parsed.volumes),
        )
        check_conflicts(tx, notice_id, series, parsed.volumes)
    return notice_id


def _store(
    tx: Tx,
    notice_id: str,
    series: str,
    version: int,
    supersedes: str | None,
    line: Any,
    peer: str,
    direction: str,
    category: str,
    envelope_id: str,
    actor: str,
    *,
    state: State = State.SENT,
    deadline_at: int | None = None,
) -> None:
    tx.conn.execute(
        insert(notices).values(
            id=notice_id,
            series=series,
            version=version,
            supersedes=supersedes,
            line_id=line.id,
            peer=peer,
            direction=direction,
            category=category,
            state=state.value,
            envelope_id=envelope_id,
            created_by=actor,
            created_at=tx.now,
            starts_at=0,
            ends_at=None,
            deadline_at=deadline_at,
            delivered_at=tx.now if state is State.DELIVERED else None,
            updated_at=tx.now,
        )
    )
    tx.touched.add("notices")


def _log(
    tx: Tx,
    event_type: str,
    notice_id: str,
    line: str,
    peer: str,
    actor: str,
    envelope_id: str | None,
    **facts: Any,
) -> None:
    """The ledger entry of a notice event: metadata only (the text is in the sealed body,
    committed to by the envelope's own entry)."""
    metadata: dict[str, Any] = {"notice": notice_id, "line": line, "peer": peer, "actor": actor, **facts}
    if envelope_id is not None:
        metadata["envelope"] = envelope_id
    ledger.append(tx, event_type, tx.now, metadata)


def _get(conn: Connection, notice_id: str, *, for_update: bool = False) -> Any:
    query = select(notices).where(notices.c.id == notice_id)
    row = conn.execute(db.for_update(conn, query) if for_update else query).first()
    if row is None:
        raise NotFound(f"no notice with id {notice_id!r}")
    return row


def _transition(
    tx: Tx, row: Any, event: Event, by: Party, at: int | None = None, values: dict[str, Any] | None = None
) -> State:
    try:
        new = nm.apply(State(row.state), event, by)
    except IllegalTransition as exc:
        raise IllegalTransition(f"notice {row.id}: {exc.detail}") from None
    column = _TIME_COLUMN.get(new)
    changes: dict[str, Any] = {"state": new.value, "updated_at": tx.now, **(values or {})}
    if column is not None:
        changes[column] = tx.now if at is None else at
    tx.conn.execute(update(notices).where(notices.c.id == row.id).values(**changes))
    tx.touched.add("notices")
    return new


def _local(station: Station, actor: str, notice_id: str, event: Event, body: dict[str, Any]) -> None:
    with station.tx() as tx:
        lock_line(tx.conn, lambda: str(_get(tx.conn, notice_id).line_id))  # read only where needed
        row = _get(tx.conn, notice_id, for_update=True)
        me = Party.SENDER if row.direction == "out" else Party.RECEIVER
        extra = {"acknowledged_by": f"{station.name}:{actor}"} if event is Event.ACK else {}
        _transition(tx, row, event, me, values=extra)
        env = outbox.enqueue(station, tx, row.line_id, KIND_OF[event], notice_id, body)
        _log(tx, f"notice.{_PAST[event]}", notice_id, row.line_id, row.peer, actor, env.id)


_PAST = {Event.ACK: "acknowledged", Event.REJECT: "rejected", Event.WITHDRAW: "withdrawn"}


def acknowledge(station: Station, actor: str, notice_id: str) -> None:
    _local(station, actor, notice_id, Event.ACK, {"by": actor})


def reject(station: Station, actor: str, notice_id: str, reason: Any) -> None:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > nm.MAX_TEXT:
        raise InvalidInput(f"a rejection needs a reason: non-empty text of at most {nm.MAX_TEXT} characters")
    _local(station, actor, notice_id, Event.REJECT, {"by": actor, "reason": reason})


def withdraw(station: Station, actor: str, notice_id: str) -> None:
    _local(station, actor, notice_id, Event.WITHDRAW, {"by": actor})


# Inbound ------------------------------------------------------------------------------


def validate_body(kind: str, body: dict[str, Any], now: int) -> None:
    """Refuse a notice envelope whose body does not fit its kind, before anything is stored."""
    if kind == "notice.send":
        for field, types in (("notice", str), ("series", str), ("version", int)):
            if not isinstance(body.get(field), types):
                raise EnvelopeRefused(Code.MALFORMED, f"notice body: {field} missing or of the wrong type")
        try:
            formats.parse_notice("notice", _document(body), now=now, horizon_s=RECEIVE_HORIZON_S)
        except ValueError as exc:
            raise EnvelopeRefused(Code.MALFORMED, f"notice body: {exc}") from None
    elif kind == "notice.reject":
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > nm.MAX_TEXT:
            raise EnvelopeRefused(Code.MALFORMED, "notice body: a rejection needs a reason")


def _document(body: dict[str, Any]) -> dict[str, Any]:
    return {"category": body.get("category"), "text": body.get("text"), "extents": body.get("extents")}


def apply_inbound(station: Station, tx: Tx, line: Any, env: Envelope, body: dict[str, Any]) -> None:
    """Apply a verified, stored inbound notice envelope."""
    actor = f"station:{env.sender}"
    notice_id = env.header["ref"]
    if env.kind == "notice.send":
        if body["notice"] != notice_id:
            raise EnvelopeRefused(Code.MALFORMED, "notice body names another notice than its envelope")
        if tx.conn.execute(select(notices.c.id).where(notices.c.id == notice_id)).first() is not None:
            raise EnvelopeRefused(Code.REPLAY, f"notice {notice_id} exists already")
        parsed = formats.parse_notice("notice", _document(body), now=tx.now, horizon_s=RECEIVE_HORIZON_S)
        supersedes = body.get("supersedes")
        if supersedes is not None:
            old = tx.conn.execute(
                select(notices).where(
                    notices.c.id == supersedes, notices.c.direction == "in", notices.c.line_id == line.id
                )
            ).first()
            if old is None:
                raise EnvelopeRefused(Code.MALFORMED, f"notice amends {supersedes!r}, which it never sent us")
            _transition(tx, old, Event.AMEND, Party.SENDER)
        deadline = tx.now + int(line.notice_deadline_s) * MICROS
        _store(
            tx,
            notice_id,
            str(body["series"]),
            int(body["version"]),
            supersedes,
            line,
            env.sender,
            "in",
            str(parsed.category),
            env.id,
            actor,
            state=State.DELIVERED,
            deadline_at=deadline,
        )
        tx.conn.execute(insert(notice_volumes), _volume_rows(notice_id, parsed.volumes))
        starts, ends = _span(parsed.volumes)
        tx.conn.execute(
            update(notices).where(notices.c.id == notice_id).values(starts_at=starts, ends_at=ends)
        )
        _log(
            tx,
            "notice.received",
            notice_id,
            line.id,
            env.sender,
            actor,
            env.id,
            version=int(body["version"]),
            volumes=len(parsed.volumes),
        )
        check_conflicts(tx, notice_id, str(body["series"]), parsed.volumes)
        return
    row = tx.conn.execute(
        select(notices).where(notices.c.id == notice_id, notices.c.line_id == line.id)
    ).first()
    if row is None:
        raise EnvelopeRefused(Code.MALFORMED, f"{env.kind} refers to no notice {notice_id!r} on this line")
    event = EVENT_OF[env.kind]
    them = Party.RECEIVER if row.direction == "out" else Party.SENDER
    at = parse_rfc3339(env.header["time"])
    extra = {"acknowledged_by": f"{env.sender}:{body.get('by', '')}"[:128]} if event is Event.ACK else {}
    try:
        _transition(tx, row, event, them, at, values=extra)
    except IllegalTransition as exc:
        # A signed statement that crossed one of ours (a withdrawal and an acknowledgement):
        # keep it, receipt it, and record that it changed nothing.
        _log(
            tx,
            "notice.ignored",
            notice_id,
            line.id,
            env.sender,
            actor,
            env.id,
            kind=env.kind,
            why=exc.detail[:200],
        )
        return
    _log(tx, f"notice.{_PAST[event]}", notice_id, line.id, env.sender, actor, env.id)


def on_delivered(tx: Tx, env_row: Any, receipt: dict[str, Any]) -> None:
    """Our notice has a valid receipt: it is delivered (unless already acknowledged)."""
    if env_row.kind != "notice.send":
        return
    row = tx.conn.execute(select(notices).where(notices.c.id == env_row.call_id)).first()
    if row is not None and row.state == State.SENT.value:
        _transition(tx, row, Event.DELIVER, Party.SENDER, parse_rfc3339(receipt["stored_at"]))


# Deadlines ------------------------------------------------------------------------------


def audit_deadlines(station: Station) -> int:
    """Raise a `notice_unacknowledged` alert for every notice still unanswered (neither
    acknowledged nor rejected) past its deadline: on the receiving side someone must
    answer it, on the sending side someone must chase it. Returns how many are overdue."""
    now = station.clock.now()
    with station.db.read() as conn:  # the common case, answered without the write lock
        overdue = conn.execute(
            select(notices.c.id, notices.c.peer, notices.c.direction, notices.c.deadline_at).where(
                notices.c.state.in_([State.SENT.value, State.DELIVERED.value]),
                notices.c.deadline_at <= now,
                or_(notices.c.ends_at.is_(None), notices.c.ends_at >= now),
            )
        ).all()
    if overdue:
        with station.tx() as tx:
            for row in overdue:
                side = "we must answer it" if row.direction == "in" else "the peer has not answered it"
                detail = {
                    "notice": row.id,
                    "peer": row.peer,
                    "deadline_at": rfc3339(row.deadline_at),
                    "why": side,
                }
                alerts.raise_alert(tx, "notice_unacknowledged", f"notice {row.id}", detail)
    return len(overdue)


# Queries --------------------------------------------------------------------------------


def effective_state(row: Any, now: int) -> str:
    """An active notice whose last volume has ended reads as `expired`."""
    if row.state in {s.value for s in nm.ACTIVE} and row.ends_at is not None and row.ends_at < now:
        return State.EXPIRED.value
    return str(row.state)


def notice_json(station: Station, conn: Connection, row: Any, *, content: bool) -> dict[str, Any]:
    """A notice as the API shows it; without `content` (the auditor) its text stays sealed."""
    volumes = conn.execute(
        select(notice_volumes).where(notice_volumes.c.notice_id == row.id).order_by(notice_volumes.c.n)
    ).all()
    out: dict[str, Any] = {
        "id": row.id,
        "series": row.series,
        "version": row.version,
        "supersedes": row.supersedes,
        "peer": row.peer,
        "direction": row.direction,
        "category": row.category,
        "state": effective_state(row, station.clock.now()),
        "created_by": row.created_by,
        "acknowledged_by": row.acknowledged_by,
        "extents": [json.loads(v.volume4d) for v in volumes],
        "content_withheld": not content,
    }
    for column in ("created_at", "starts_at", "ends_at", "deadline_at", "delivered_at", "acknowledged_at",
                   "rejected_at", "withdrawn_at", "amended_at"):  # fmt: skip
        out[column] = rfc3339(getattr(row, column))
    if content:
        env_row = conn.execute(select(envelopes).where(envelopes.c.id == row.envelope_id)).one()
        out["text"] = outbox.open_body(station, env_row).get("text")
    found = conn.execute(
        select(notice_conflicts).where(
            or_(notice_conflicts.c.notice_a == row.id, notice_conflicts.c.notice_b == row.id)
        )
    ).all()
    out["conflicts"] = [
        {
            "volume": c.volume_a if c.notice_a == row.id else c.volume_b,
            "other_notice": c.notice_b if c.notice_a == row.id else c.notice_a,
            "other_volume": c.volume_b if c.notice_a == row.id else c.volume_a,
            "from": rfc3339(c.time_start),
            "until": rfc3339(c.time_end),
            "altitude_m": [c.alt_lower_m, c.alt_upper_m],
        }
        for c in found
    ]
    return out


def list_notices(station: Station, *, content: bool, limit: int = 100) -> list[dict[str, Any]]:
    with station.db.read() as conn:
        rows = conn.execute(select(notices).order_by(notices.c.created_at.desc()).limit(limit)).all()
        return [notice_json(station, conn, r, content=content) for r in rows]


def show_notice(station: Station, notice_id: str, *, content: bool) -> dict[str, Any]:
    with station.db.read() as conn:
        return notice_json(station, conn, _get(conn, notice_id), content=content)
