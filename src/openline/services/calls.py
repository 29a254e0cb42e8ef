"""Calls: place, ring, pick up, talk, close; and the same events arriving from the peer.

Every local action is one transaction: the call row, its event log entry and the
outgoing envelope commit together. Every inbound envelope is applied inside the inbox's
transaction, so the stored envelope, our receipt and the state change commit together.
State times come from the signed header of the envelope that caused the change, so both
stations show the same times.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, case, func, insert, or_, select, update

from openline.adapters import db
from openline.adapters.schema import call_events, calls, envelopes, lines
from openline.core import calls as sm
from openline.core.calls import Event, Party, State
from openline.core.clock import parse_rfc3339, rfc3339
from openline.core.encoding import said, text_field
from openline.core.envelope import Envelope
from openline.errors import Code, EnvelopeRefused, IllegalTransition, InvalidInput, NotFound, check_one_of
from openline.services import alerts, events, idempotency, outbox, watch
from openline.services.accounts import peer_user
from openline.services.lines import lock_line, require_active, require_known_peer, require_line_open
from openline.services.station import Station, Tx

MAX_SUBJECT = 500
MAX_TEXT = 8000
# A message's language: a BCP 47 tag's shape (en, uk, pt-BR, sr-Latn-RS), 35 characters at most.
_LANG_RE = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}", re.ASCII)
MAX_SUMMARY = 4000

# Which envelope kind carries which event, and back.
KIND_OF = {
    Event.RING: "call.ringing",
    Event.PICKUP: "call.pickup",
    Event.SAY: "call.say",
    Event.CLOSE: "call.close",
    Event.MISS: "call.missed",
    Event.DECLINE: "call.decline",
    Event.CANCEL: "call.cancel",
}
EVENT_OF = {kind: event for event, kind in KIND_OF.items()}
# How each event is named in a call's event log.
LOGGED_AS = {
    Event.RING: "ringing",
    Event.PICKUP: "picked_up",
    Event.CLOSE: "closed",
    Event.MISS: "missed",
    Event.DECLINE: "declined",
    Event.CANCEL: "cancelled",
}
_TIME_COLUMN = {
    State.DELIVERED: "delivered_at",
    State.RINGING: "ringing_at",
    State.PICKED_UP: "picked_up_at",
    State.CLOSED: "closed_at",
    State.MISSED: "missed_at",
    State.DECLINED: "declined_at",
    State.CANCELLED: "cancelled_at",
}


def _is_language_tag(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 35 and _LANG_RE.fullmatch(value) is not None


def _priority(value: Any) -> str:
    check_one_of("priority", value, sm.PRIORITIES)
    return str(value)


def _party(direction: str) -> Party:
    """Our own party in a call: we are the caller of outbound calls."""
    return Party.CALLER if direction == "out" else Party.CALLEE


def _other(party: Party) -> Party:
    return Party.CALLEE if party is Party.CALLER else Party.CALLER


def _get(
    conn: Connection, call_id: str, *, for_update: bool = False, query: Select[Any] | None = None
) -> Any:
    """The call's row (from `query`, by default the calls table), or `not_found`."""
    # By default the statement built once (`_CALL`): building one costs more than running it.
    by_id = _CALL if query is None else query.where(calls.c.id == bindparam("b_call"))
    row = conn.execute(db.for_update(conn, by_id) if for_update else by_id, {"b_call": call_id}).first()
    if row is None:
        raise NotFound(f"no call with id {call_id!r}{outbox.refused_on_arrival(conn, call_id)}")
    return row


_CALL = select(calls).where(calls.c.id == bindparam("b_call"))
# Its SET clause is whichever columns the parameters name besides b_id.
_UPDATE_CALL = update(calls).where(calls.c.id == bindparam("b_id"))


def _call_in_tx(tx: Tx, call_id: str) -> Any:
    """The call's row or None, read once per transaction (see `Tx.memo`)."""
    key = ("call", call_id)
    if key not in tx.memo:
        tx.memo[key] = tx.conn.execute(_CALL, {"b_call": call_id}).first()
    return tx.memo[key]


def _update_call(tx: Tx, call_id: str, **values: Any) -> None:
    tx.conn.execute(_UPDATE_CALL, {"b_id": call_id, **values})
    tx.memo.pop(("call", call_id), None)


def _transition(tx: Tx, call: Any, event: Event, by: Party, at: int) -> State:
    current = State(call.state)
    new = sm.apply(current, event, by)
    if new is not current:
        values: dict[str, Any] = {"state": new.value, "updated_at": tx.now}
        values[_TIME_COLUMN[new]] = at
        if new is not State.RINGING:
            values["deadline_at"] = None
        if new not in (State.RINGING, State.PICKED_UP):  # nothing left to escalate
            values.update(next_escalation_at=None, lease_until=None)
        _update_call(tx, call.id, **values)
    return new


# Local use cases ---------------------------------------------------------------------


def place(
    station: Station,
    actor: str,
    peer: str,
    subject: Any,
    priority: Any = "routine",
    *,
    once: idempotency.Once | None = None,
) -> str:
    """Place a call; `once`, a client's Idempotency-Key, is kept with it."""
    subject = said(subject, "subject", MAX_SUBJECT)
    prio = _priority(priority)
    with station.tx() as tx:
        line = require_active(tx.conn, peer)
        call_id = outbox.new_id()
        env = outbox.enqueue(
            station, tx, line.id, "call.place", call_id, {"subject": subject, "priority": prio}
        )
        tx.conn.execute(
            insert(calls).values(
                id=call_id,
                line_id=line.id,
                peer=peer,
                direction="out",
                priority=prio,
                state=State.PLACED.value,
                place_envelope_id=env.id,
                placed_at=tx.now,
                updated_at=tx.now,
            )
        )
        events.record(
            tx,
            call_id,
            tx.now,
            "placed",
            actor,
            env.id,
            {"priority": prio},
            facts={"line": line.id, "peer": peer, "direction": "out", "priority": prio},
        )
        idempotency.keep(tx, once, call_id)
    return call_id


def _local(
    station: Station,
    actor: str,
    call_id: str,
    event: Event,
    body: dict[str, Any],
    *,
    once: idempotency.Once | None = None,
    **values: Any,
) -> str:
    with station.tx() as tx:
        lock_line(tx.conn, lambda: str(_get(tx.conn, call_id).line_id))
        call = _get(tx.conn, call_id, for_update=True)
        me = _party(call.direction)
        call = _expire_if_due(station, tx, call)
        new = _transition(tx, call, event, me, tx.now)
        if call.direction == "in" and new is State.PICKED_UP and event in (Event.PICKUP, Event.SAY):
            # Our officer is on the call: the lease starts (or starts again).
            values = {**values, **watch.lease_columns(tx.conn, call.line_id, tx.now)}
            tx.new_deadline = True
        if values:
            _update_call(tx, call.id, **values)
        if event is Event.CANCEL and outbox.refused_for_good(tx.conn, call.place_envelope_id):
            # The peer refused the call for good: it has no call to cancel.
            events.record(tx, call.id, tx.now, LOGGED_AS[event], actor)
            return ""
        require_line_open(tx.conn, call.line_id)
        env = outbox.enqueue(station, tx, call.line_id, KIND_OF[event], call.id, body)
        events.record(tx, call.id, tx.now, LOGGED_AS.get(event, "message_sent"), actor, env.id)
        idempotency.keep(tx, once, env.id)
    return env.id


def pickup(station: Station, actor: str, call_id: str) -> None:
    _local(station, actor, call_id, Event.PICKUP, {"by": actor}, picked_up_by=f"{station.name}:{actor}")


def say(
    station: Station,
    actor: str,
    call_id: str,
    text: Any,
    lang: str = "en",
    *,
    once: idempotency.Once | None = None,
) -> str:
    """Send a message on a call; returns its id. `once`: see `place`."""
    if not _is_language_tag(lang):
        raise InvalidInput(f"lang must be a language tag such as en or pt-BR, got {lang!r:.40}")
    body = {"text": said(text, "text", MAX_TEXT), "lang": lang}
    return _local(station, actor, call_id, Event.SAY, body, once=once)


def close(station: Station, actor: str, call_id: str, summary: Any = None) -> None:
    _local(
        station,
        actor,
        call_id,
        Event.CLOSE,
        {"summary": said(summary, "summary", MAX_SUMMARY, optional=True)},
    )


def decline(station: Station, actor: str, call_id: str, reason: Any = None) -> None:
    _local(
        station,
        actor,
        call_id,
        Event.DECLINE,
        {"reason": said(reason, "reason", MAX_SUMMARY, optional=True)},
    )


def cancel(station: Station, actor: str, call_id: str) -> None:
    _local(station, actor, call_id, Event.CANCEL, {})


# Deadlines ---------------------------------------------------------------------------


def _expire_if_due(station: Station, tx: Tx, call: Any) -> Any:
    """A ringing call whose deadline has passed is missed, whoever looks at it first."""
    if call.state == State.RINGING and call.deadline_at is not None and call.deadline_at <= tx.now:
        _miss(station, tx, call)
        return _get(tx.conn, call.id)
    return call


def _miss(station: Station, tx: Tx, call: Any, pages: list[dict[str, Any]] | None = None) -> None:
    """`call` rang out: missed, the catch-all paged (into `pages` if given, to be folded),
    and the peer told."""
    _transition(tx, call, Event.MISS, Party.CALLEE, call.deadline_at)
    watch.on_missed(station, tx, call, pages)
    env = outbox.enqueue(
        station,
        tx,
        call.line_id,
        "call.missed",
        call.id,
        {"deadline_at": rfc3339(call.deadline_at)},
        time=call.deadline_at,
    )
    events.record(
        tx,
        call.id,
        call.deadline_at,
        "missed",
        "system",
        env.id,
        {"deadline_at": rfc3339(call.deadline_at)},
    )


def expire_due(station: Station) -> int:
    """Turn every ringing inbound call past its deadline into `missed`. Returns how many."""
    due_at = next_deadline(station)
    if due_at is None or due_at > station.clock.now():
        return 0  # the common case, answered by a read: no write lock, no fsync
    missed = 0
    pages: list[dict[str, Any]] = []
    with station.tx() as tx:
        due = tx.conn.execute(
            select(calls.c.id, calls.c.line_id, calls.c.priority).where(
                calls.c.state == State.RINGING.value, calls.c.direction == "in", calls.c.deadline_at <= tx.now
            )
        ).all()
        # The most urgent first: a flood's first pages to each address go one by one.
        for call_id, line_id, _ in sorted(due, key=watch.urgency):
            lock_line(tx.conn, line_id)
            # Several `serve` processes may share one database: each call is missed once.
            query = select(calls).where(calls.c.id == call_id, calls.c.state == State.RINGING.value)
            call = tx.conn.execute(db.for_update(tx.conn, query, skip_locked=True)).first()
            if call is not None:
                _miss(station, tx, call, pages)
                missed += 1
        watch.write_pages(station, tx, pages)
    return missed


def next_deadline(station: Station) -> int | None:
    with station.db.read() as conn:
        row = conn.execute(
            select(calls.c.deadline_at)
            .where(
                calls.c.state == State.RINGING.value,
                calls.c.direction == "in",
                calls.c.deadline_at.is_not(None),
            )
            .order_by(calls.c.deadline_at)
            .limit(1)
        ).first()
    return None if row is None else int(row.deadline_at)


# Inbound ----------------------------------------------------------------------------


def _body_field(body: dict[str, Any], field: str, limit: int, *, optional: bool = False) -> None:
    try:
        text_field(body.get(field), field, limit, optional=optional)
    except InvalidInput as exc:
        raise EnvelopeRefused(Code.MALFORMED, f"envelope body: {exc.detail}") from None


# Each kind's body fields (besides the ledger's `salt`): those it must have, and those it
# may have. Anything else is refused: a peer's body is stored and shown, so an unknown
# field would be kept unchecked.
_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "call.place": (frozenset({"subject", "priority"}), frozenset()),
    "call.ringing": (frozenset(), frozenset()),
    "call.pickup": (frozenset({"by"}), frozenset()),
    "call.say": (frozenset({"text"}), frozenset({"lang"})),
    "call.close": (frozenset(), frozenset({"summary"})),
    "call.decline": (frozenset(), frozenset({"reason"})),
    "call.cancel": (frozenset(), frozenset()),
    "call.missed": (frozenset({"deadline_at"}), frozenset()),
}


def validate_body(kind: str, body: dict[str, Any]) -> None:
    """Refuse a body whose fields do not fit its kind, before anything is stored."""
    required, optional = _FIELDS[kind]
    fields = set(body) - {"salt"}
    if not required <= fields <= required | optional:
        extra, missing = sorted(fields - required - optional), sorted(required - fields)
        raise EnvelopeRefused(
            Code.MALFORMED,
            f"envelope body of {kind}: " + (f"unknown fields {extra}" if extra else f"missing {missing}"),
        )
    if kind == "call.pickup":
        peer_user(body, kind)
    elif kind == "call.missed":
        try:
            parse_rfc3339(body["deadline_at"])
        except (ValueError, TypeError):
            raise EnvelopeRefused(Code.MALFORMED, "envelope body: deadline_at is not a time") from None
    if kind == "call.place":
        _body_field(body, "subject", MAX_SUBJECT)
        if body.get("priority") not in sm.PRIORITIES:
            raise EnvelopeRefused(Code.MALFORMED, "envelope body: bad priority")
    elif kind == "call.say":
        _body_field(body, "text", MAX_TEXT)
        if not _is_language_tag(body.get("lang", "en")):
            raise EnvelopeRefused(Code.MALFORMED, "envelope body: lang is not a language tag")
    elif kind == "call.close":
        _body_field(body, "summary", MAX_SUMMARY, optional=True)
    elif kind == "call.decline":
        _body_field(body, "reason", MAX_SUMMARY, optional=True)


def apply_inbound(station: Station, tx: Tx, line: Any, env: Envelope, body: dict[str, Any]) -> None:
    """Apply a verified, stored inbound envelope to the call it concerns."""
    at = parse_rfc3339(env.header["time"])
    actor = f"station:{env.sender}"
    call_id = env.header["ref"]
    if env.kind == "call.place":
        if _call_in_tx(tx, call_id) is not None:
            raise EnvelopeRefused(Code.REPLAY, f"call {call_id} exists already")
        deadline = tx.now + int(line.answer_deadline_s) * 1_000_000
        tx.conn.execute(
            insert(calls).values(
                id=call_id,
                line_id=line.id,
                peer=env.sender,
                direction="in",
                priority=body["priority"],
                state=State.RINGING.value,
                place_envelope_id=env.id,
                placed_at=at,
                delivered_at=tx.now,
                ringing_at=tx.now,
                deadline_at=deadline,
                updated_at=tx.now,
                **watch.ringing_columns(tx.conn, line.id, tx.now),
            )
        )
        tx.memo.pop(("call", call_id), None)
        events.record(
            tx,
            call_id,
            at,
            "placed",
            actor,
            env.id,
            {"priority": body["priority"]},
            facts={"line": line.id, "peer": env.sender, "direction": "in", "priority": body["priority"]},
        )
        events.record(tx, call_id, tx.now, "delivered", "system", env.id)
        ring = outbox.enqueue(station, tx, line.id, "call.ringing", call_id, {})
        events.record(tx, call_id, tx.now, "ringing", "system", ring.id, {"deadline_at": rfc3339(deadline)})
        tx.new_deadline = True
        return
    row = _call_in_tx(tx, call_id)
    if row is None or row.line_id != line.id:
        raise EnvelopeRefused(Code.MALFORMED, f"{env.kind} refers to no call {call_id!r} on this line")
    event = EVENT_OF[env.kind]
    by = _other(_party(row.direction))
    detail = None
    try:
        new = _transition(tx, row, event, by, at)
    except IllegalTransition as exc:
        # A signed statement from the peer that crossed one of ours (cancel vs pick-up,
        # close vs close). The callee's station decides (`core.calls.crossed`): here we
        # either take its answer, or keep the statement, receipt it, and record that it
        # changed nothing.
        adopted = sm.crossed(State(row.state), event, by)
        if adopted is None:
            events.record(
                tx, call_id, tx.now, "ignored", actor, env.id, {"kind": env.kind, "reason": exc.detail}
            )
            if sm.contradicts(State(row.state), event, by):
                detail = {"call": call_id, "peer": env.sender, "priority": row.priority, "ours": row.state,
                          "theirs": env.kind}  # fmt: skip
                alerts.raise_alert(tx, "call_states_differ", call_id, detail)
            return
        new = _adopt(tx, row, adopted, at)
        detail = {"crossed": row.state}
    if event is Event.RING and new.value == row.state and row.ringing_at is None:
        # It rang there before our cancel arrived: the same time on both stations.
        _update_call(tx, call_id, ringing_at=at)
    if event is Event.PICKUP:
        _update_call(tx, call_id, picked_up_by=f"{env.sender}:{body.get('by', '')}"[:64])
    events.record(tx, call_id, at, LOGGED_AS.get(event, "message_received"), actor, env.id, detail)
    if event is Event.MISS:
        watch.on_unanswered(tx, row)


def _adopt(tx: Tx, call: Any, state: State, at: int) -> State:
    """The callee's answer replaces our own crossing statement: its state and its time,
    and no time left for the state we leave (the callee's station never had it)."""
    values: dict[str, Any] = {"state": state.value, "updated_at": tx.now, _TIME_COLUMN[state]: at}
    if state.value != call.state:
        values[_TIME_COLUMN[State(call.state)]] = None
    _update_call(tx, call.id, **values)
    return state


def on_delivered(tx: Tx, env_row: Any, receipt: dict[str, Any]) -> None:
    """Our envelope has a valid receipt: a placed call is now delivered."""
    if env_row.kind != "call.place" or env_row.call_id is None:
        return
    stored_at = parse_rfc3339(receipt["stored_at"])
    call = _call_in_tx(tx, env_row.call_id)
    if call is None:
        return
    new = _transition(tx, call, Event.DELIVER, Party.CALLER, stored_at)
    if new is State.DELIVERED or call.delivered_at is None:
        _update_call(tx, call.id, delivered_at=stored_at)
    events.record(tx, call.id, stored_at, "delivered", f"station:{receipt['from']}", env_row.id)


def on_refused(tx: Tx, env_row: Any, refusal: dict[str, Any]) -> None:
    """The peer refused our envelope for good (its signed `refusal`): the call's event log
    says so. Its state stays: a call whose placing was refused stays placed, never
    delivered, and cancelling it tells the peer nothing (`_local`)."""
    if not env_row.kind.startswith("call.") or env_row.call_id is None:
        return
    if _call_in_tx(tx, env_row.call_id) is None:
        return
    events.record(
        tx,
        env_row.call_id,
        parse_rfc3339(refusal["stored_at"]),
        "refused",
        f"station:{refusal['from']}",
        env_row.id,
        {"kind": env_row.kind, "code": refusal["error"]["code"]},
    )


# Queries ----------------------------------------------------------------------------

TIME_FIELDS = (
    "placed_at",
    "delivered_at",
    "ringing_at",
    "picked_up_at",
    "closed_at",
    "missed_at",
    "declined_at",
    "cancelled_at",
    "deadline_at",
)


def _with_place_envelope() -> Any:
    """Calls joined with the envelope that placed them, whose sealed body holds the subject,
    and the peer's refusal of it, if it refused it for good."""
    return select(calls, envelopes.c.wire, envelopes.c.self_body, envelopes.c.refused).join(
        envelopes, envelopes.c.id == calls.c.place_envelope_id
    )


def _call_json(station: Station, row: Any, content: bool) -> dict[str, Any]:
    """A call as the API shows it. `row` comes from `_with_place_envelope()`. Without
    `content` (the auditor's view) no sealed body is opened: what was said stays out."""
    place_body = outbox.open_body(station, row) if content else {}
    out: dict[str, Any] = {
        "id": row.id,
        "peer": row.peer,
        "direction": row.direction,
        "subject": place_body.get("subject"),
        "priority": row.priority,
        "state": row.state,
        "picked_up_by": row.picked_up_by,
        "rings_again": row.state == State.PICKED_UP.value
        and row.lease_until is None
        and row.next_escalation_at is not None,
        "content_withheld": not content,
        "next_escalation_at": rfc3339(row.next_escalation_at),
        "refused": row.refused,
    }
    out.update({field: rfc3339(getattr(row, field)) for field in TIME_FIELDS})
    return out


@dataclass(frozen=True)
class CallFilter:
    """Which calls to list; every field optional. Times are µs since the epoch."""

    state: str | None = None
    peer: str | None = None
    direction: str | None = None
    priority: str | None = None
    since: int | None = None  # placed at or after
    until: int | None = None  # placed before

    def check(self) -> None:
        if self.state is not None:
            check_one_of("state", self.state, [s.value for s in State])
        if self.direction is not None and self.direction not in ("in", "out"):
            raise InvalidInput(f"direction must be in or out, got {self.direction!r}")
        if self.priority is not None:
            _priority(self.priority)
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InvalidInput("until must be after since")

    def where(self) -> list[Any]:
        """The conditions, checked first."""
        self.check()
        out: list[Any] = [
            column == value
            for column, value in (
                (calls.c.state, self.state),
                (calls.c.peer, self.peer),
                (calls.c.direction, self.direction),
                (calls.c.priority, self.priority),
            )
            if value is not None
        ]
        if self.since is not None:
            out.append(calls.c.placed_at >= self.since)
        if self.until is not None:
            out.append(calls.c.placed_at < self.until)
        return out


def list_calls(
    station: Station,
    *,
    limit: int = 100,
    state: str | None = None,
    content: bool = True,
    where: CallFilter | None = None,
) -> list[dict[str, Any]]:
    if not 1 <= limit <= 100_000:
        raise InvalidInput(f"limit must be 1 to 100000, got {limit}")
    f = where or CallFilter(state=state)
    query = _with_place_envelope().where(*f.where())
    query = query.order_by(calls.c.placed_at.desc(), calls.c.id.desc()).limit(limit)
    with station.db.read() as conn:
        require_known_peer(conn, f.peer)
        return [_call_json(station, row, content) for row in conn.execute(query).all()]


def count_calls(station: Station, where: CallFilter) -> int:
    """How many calls `where` selects, however many `list_calls` shows."""
    with station.db.read() as conn:
        require_known_peer(conn, where.peer)
        return int(conn.execute(select(func.count()).select_from(calls).where(*where.where())).scalar_one())


# A call of the peer's our officer picked up and then left silent past the line's re-ring
# timeout rings again (`watch`): the lease is gone and the escalation steps run. It is
# ringing for the watch floor: counted, listed, sounded, until someone acts on it.
RINGS_AGAIN = and_(
    calls.c.state == State.PICKED_UP.value,
    calls.c.lease_until.is_(None),
    calls.c.next_escalation_at.is_not(None),
)
_RINGING_HERE = [
    calls.c.direction == "in",
    calls.c.state.in_([State.RINGING.value, State.PICKED_UP.value]),  # ix_calls_deadline's prefix
    or_(calls.c.state == State.RINGING.value, RINGS_AGAIN),
]
# Flash before immediate before priority before routine.
_PRIORITY_RANK = case(
    {p: i for i, p in enumerate(sm.PRIORITIES)}, value=calls.c.priority, else_=len(sm.PRIORITIES)
)
_RINGING = (
    _with_place_envelope().where(*_RINGING_HERE).order_by(_PRIORITY_RANK, calls.c.ringing_at, calls.c.id)
)
_RINGING_COUNT = select(func.count()).select_from(calls).where(*_RINGING_HERE)


def ringing(station: Station, *, limit: int, content: bool = True) -> tuple[list[dict[str, Any]], int]:
    """The calls ringing here now, the most urgent first (by priority, then the longest
    ringing), at most `limit` of them; and how many ring in all. What the watch board
    shows, however many other calls there have been since."""
    with station.db.read() as conn:
        rows = conn.execute(_RINGING.limit(limit)).all()
        total = int(conn.execute(_RINGING_COUNT).scalar_one())
    return [_call_json(station, row, content) for row in rows], total


def ringing_count(station: Station) -> int:
    """How many calls ring here now: what every console page counts in its header and
    title, and sounds the alarm for."""
    with station.db.read() as conn:
        return int(conn.execute(_RINGING_COUNT).scalar_one())


def _answer_deadline(
    station: Station, call: Any, envs: Sequence[Any], logged: Sequence[Any], content: bool, line_s: int
) -> tuple[int, str]:
    """The answer deadline a call rang under (seconds), and where that is known from. The
    callee's station decides it as the call starts ringing there, under the terms it
    holds then, and the line's terms may have changed since: `ringing` (it rang here; its
    ringing event names it), `missed` (the callee's missed statement names it), or
    `line` (not known here, or not opened for the auditor: the line's deadline now)."""
    if call.direction == "in":
        for e in logged:
            if e.event == "ringing" and e.detail and "deadline_at" in json.loads(e.detail):
                return round((parse_rfc3339(json.loads(e.detail)["deadline_at"]) - e.at) / 1e6), "ringing"
    elif content and call.ringing_at is not None:
        for env in envs:
            if env.kind == "call.missed" and env.direction == "in" and env.refused is None:
                deadline_at = parse_rfc3339(outbox.open_body(station, env)["deadline_at"])
                return round((deadline_at - call.ringing_at) / 1e6), "missed"
    return line_s, "line"


def show_call(
    station: Station, call_id: str, *, content: bool = True, newest: int | None = None
) -> dict[str, Any]:
    """The call, its messages in order with their receipts, and its event log. `newest`:
    only the newest that many messages and events (each message body is opened, about
    0.1 ms, and a console page re-renders on every change), with how many earlier ones
    were left out in `earlier_messages` and `earlier_events`."""
    with station.db.read() as conn:
        call = _get(conn, call_id, query=_with_place_envelope())
        out = _call_json(station, call, content)
        rows = conn.execute(select(envelopes).where(envelopes.c.call_id == call_id)).all()
        events = conn.execute(
            select(call_events).where(call_events.c.call_id == call_id).order_by(call_events.c.id)
        ).all()
        # The close and the decline that count are those the event log applied last: a
        # crossing one from the peer is kept but `ignored`, or replaced ours (`crossed`).
        applied = {e.event: e.envelope_id for e in events if e.event in ("closed", "declined")}
        messages, summary, reason = [], None, None
        said = sorted(
            ((json.loads(row.wire)["header"], row) for row in rows if row.kind == "call.say"),
            key=lambda pair: (parse_rfc3339(pair[0]["time"]), pair[0]["from"], pair[1].seq),
        )
        shown = said if newest is None else said[max(len(said) - newest, 0) :]
        for header, row in shown:
            # A message we refused for good is not in our thread: its place is shown,
            # not its text (it may not even open). One the peer refused shows ours.
            unread = row.refused is not None and row.direction == "in"
            body = outbox.open_body(station, row) if content and not unread else {"text": None}
            receipt = json.loads(row.receipt) if row.receipt else None
            messages.append(
                {
                    "id": row.id,
                    "from": header["from"],
                    "seq": row.seq,
                    "time": header["time"],
                    "text": body["text"],
                    "lang": body.get("lang"),
                    "receipt": receipt,
                    "received_at": receipt["stored_at"] if receipt and row.refused is None else None,
                    "refused": row.refused,
                }
            )
        for row in rows:
            if content and call.state == State.CLOSED and row.id == applied.get("closed"):
                summary = outbox.open_body(station, row).get("summary")
            elif content and call.state == State.DECLINED and row.id == applied.get("declined"):
                reason = outbox.open_body(station, row).get("reason")
        line = conn.execute(select(lines.c.answer_deadline_s).where(lines.c.id == call.line_id)).one()
    out["summary"] = summary
    out["decline_reason"] = reason
    out["answer_deadline_s"], out["answer_deadline_from"] = _answer_deadline(
        station, call, rows, events, content, int(line.answer_deadline_s)
    )
    out["messages"] = messages
    logged = events if newest is None else events[max(len(events) - newest, 0) :]
    out["events"] = [
        {
            "at": rfc3339(e.at),
            "event": e.event,
            "actor": e.actor,
            "envelope_id": e.envelope_id,
            "detail": json.loads(e.detail) if e.detail else None,
        }
        for e in logged
    ]
    if newest is not None:
        out["earlier_messages"] = len(said) - len(shown)
        out["earlier_events"] = len(events) - len(logged)
    return out
