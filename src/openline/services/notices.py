"""Notices between stations: drafts, send, acknowledge, reject, withdraw, amend.

Every local action is one transaction: the notice row and its volumes, the outgoing
envelope (its sealed body carries the text and the volumes as ASTM Volume4D JSON) and
the ledger entry commit together. An inbound notice envelope is applied inside the
inbox's transaction. The volumes are kept in clear (the conflict check and the map need
them); the free text and a rejection's reason stay in the sealed bodies.

A draft is a checked notice kept on our station only, its body sealed to our own key: no
envelope, no ledger entry, no conflict recorded (its JSON previews the conflicts it
would have). Sending it takes the one path every new notice takes (`_dispatch`);
editing it in place (checked as saving it was) and discarding it are local too.

Conflicts: `notice_conflicts`; removing a protected site: `notice_sites`; expiry:
`notice_expiry`; notices as they are shown: `notice_view`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from openline.adapters.schema import envelopes, notice_volumes, notices
from openline.core import formats
from openline.core import notices as nm
from openline.core.clock import MICROS, parse_rfc3339, rfc3339
from openline.core.encoding import control_character
from openline.core.envelope import UUID_RE, Envelope, open_sealed, seal
from openline.core.notices import Event, Party, State
from openline.core.volumes import Volume, nvector_boxes
from openline.errors import Code, EnvelopeRefused, IllegalTransition, InvalidInput
from openline.services import accounts, alerts, idempotency, notice_sites, outbox
from openline.services import notice_conflicts as conflicts
from openline.services.lines import line_for_peer, lock_line, require_active, require_line_open
from openline.services.notice_rows import TIME_COLUMN, get, log, party_of, transition
from openline.services.station import Station, Tx

MAX_BODY = 48 * 1024  # the sealed body of an envelope holds at most 64 KiB
# A document's JSON is about the size of the body it becomes (a route's corridor makes it
# larger): one this many times MAX_BODY could never be sent, and is refused before its
# geometry is checked, which takes seconds for a ring of 10^5 vertices.
MAX_DOCUMENT = 4 * MAX_BODY
RECEIVE_HORIZON_S = 31 * 86_400  # the sender checked its 30 days; allow for clocks that differ
MAX_VERSION = 2**31 - 1  # a notice's version, as its column holds it
KIND_OF = {Event.ACK: "notice.ack", Event.REJECT: "notice.reject", Event.WITHDRAW: "notice.withdraw"}
EVENT_OF = {kind: event for event, kind in KIND_OF.items()}
_PAST = {Event.ACK: "acknowledged", Event.REJECT: "rejected", Event.WITHDRAW: "withdrawn"}


@dataclass(frozen=True)
class Document:
    """A checked notice document: an activity in volumes, or (with `removes`, and no
    volumes) the removal of one of our protected sites."""

    category: str
    text: str
    volumes: tuple[Volume, ...]
    removes: str | None = None

    def wire(self) -> dict[str, Any]:
        """The document as bodies carry it: volumes as ASTM Volume4D."""
        out = {
            "category": self.category,
            "text": self.text,
            "extents": [nm.volume4d(v) for v in self.volumes],
        }
        return out if self.removes is None else {**out, "removes": self.removes}


# Reading a notice document ----------------------------------------------------------------


def parse_document(document: Any, now: int, name: str = "notice") -> Document:
    """A notice file's JSON, checked as the offline check checks it (or, with `removes`,
    as a removal notice); refused with a clear error naming the volume and vertex, before
    anything is stored. One far too large to send is refused before it is read."""
    size = len(json.dumps(document))
    if size > MAX_DOCUMENT:
        raise _too_large(size)
    if isinstance(document, dict) and document.get("removes") is not None:
        try:
            text, removes = nm.parse_removal(name, document)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        return Document(str(document["category"]), text, (), removes)
    try:
        parsed = formats.parse_notice(name, document, now=now)
    except ValueError as exc:  # FormatError and VolumeError
        raise InvalidInput(str(exc)) from None
    if len(parsed.text) > nm.MAX_TEXT:
        raise InvalidInput(f"{name}: text must be at most {nm.MAX_TEXT} characters, got {len(parsed.text)}")
    if (control := control_character(parsed.text)) is not None:
        raise InvalidInput(f"{name}: text must not contain control characters, got {control}")
    if not 1 <= len(parsed.volumes) <= nm.MAX_VOLUMES:
        raise InvalidInput(f"{name}: a notice has 1 to {nm.MAX_VOLUMES} volumes, got {len(parsed.volumes)}")
    ends = [v.end for v in parsed.volumes]
    if None not in ends and max(e for e in ends if e is not None) < now:
        last = max(e for e in ends if e is not None)
        raise InvalidInput(
            f"{name}: every volume has ended (the last at {rfc3339(last)}, before now, {rfc3339(now)}): "
            "a notice announces what is still to come"
        )
    return Document(str(parsed.category), parsed.text, parsed.volumes)


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


def _span(volumes: tuple[Volume, ...], now: int) -> tuple[int, int | None]:
    """First start and last end (None: open-ended). A removal, with no volumes, starts now."""
    if not volumes:
        return now, None
    ends = [v.end for v in volumes]
    return min(v.start for v in volumes), None if None in ends else max(e for e in ends if e is not None)


def _body(notice_id: str, series: str, version: int, amends: str | None, doc: Document) -> dict[str, Any]:
    body = {"notice": notice_id, "series": series, "version": version, "supersedes": amends, **doc.wire()}
    size = len(json.dumps(body))
    if size > MAX_BODY:
        raise _too_large(size)
    return body


def _too_large(size: int) -> InvalidInput:
    return InvalidInput(
        f"the notice is too large to send ({size:,} bytes as JSON; one notice travels in at most "
        f"{MAX_BODY:,}): split it"
    )


# Storing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """What a new notice row holds beyond its document."""

    notice_id: str
    series: str
    version: int
    supersedes: str | None
    line_id: str
    peer: str
    direction: str
    actor: str
    state: State
    envelope_id: str | None = None
    deadline_at: int | None = None
    draft_body: bytes | None = None
    sent_at: int | None = None  # an inbound notice's: when the peer sent it (its envelope's time)


def _store(tx: Tx, r: _Row, doc: Document) -> None:
    sent_at = tx.now if r.state is State.SENT else r.sent_at
    starts, ends = _span(doc.volumes, tx.now if sent_at is None else sent_at)
    tx.conn.execute(
        insert(notices).values(
            id=r.notice_id,
            series=r.series,
            version=r.version,
            supersedes=r.supersedes,
            line_id=r.line_id,
            peer=r.peer,
            direction=r.direction,
            category=doc.category,
            state=r.state.value,
            envelope_id=r.envelope_id,
            draft_body=r.draft_body,
            removes=doc.removes,
            created_by=r.actor,
            created_at=tx.now,
            starts_at=starts,
            ends_at=ends,
            deadline_at=r.deadline_at,
            sent_at=sent_at,
            delivered_at=tx.now if r.state is State.DELIVERED else None,
            updated_at=tx.now,
        )
    )
    if doc.volumes:
        tx.conn.execute(insert(notice_volumes), _volume_rows(r.notice_id, doc.volumes))
        if ends is not None and r.state is not State.DRAFT:
            tx.new_deadline = True  # the timer loop records its expiry
    tx.touched.add("notices")


def _draft_header(station: Station, row_line: str, notice_id: str) -> dict[str, Any]:
    # Sealed to our own key as an envelope's own copy is, bound to the notice's id.
    return {"line": row_line, "from": station.name, "id": notice_id}


def _seal_draft(station: Station, line_id: str, notice_id: str, doc: Document) -> bytes:
    header = _draft_header(station, line_id, notice_id)
    return seal(doc.wire(), station.keys.encryption.public_key(), header, to_self=True)


def open_draft(station: Station, row: Any) -> dict[str, Any]:
    header = _draft_header(station, row.line_id, row.id)
    return open_sealed(row.draft_body, station.keys.encryption, header, to_self=True)


# Local use cases ------------------------------------------------------------------------


def _amendable(conn: Connection, amends: str, peer: str, doc: Document, *, for_update: bool = False) -> Any:
    """The notice of ours that `doc` may amend; raises saying why not."""
    old = get(conn, amends, for_update=for_update)
    if old.direction != "out" or old.peer != peer:
        raise InvalidInput(f"notice {amends} is not one of ours to {peer}: only the sender amends")
    notice_sites.check_sender_change(conn, old, Event.AMEND)
    try:
        nm.check_amendment(str(old.category), doc.category)
    except IllegalTransition as exc:
        raise IllegalTransition(f"notice {old.id}: {exc.detail}") from None
    try:
        nm.apply(State(old.state), Event.AMEND, Party.SENDER)
    except IllegalTransition as exc:
        raise IllegalTransition(f"notice {old.id}: {exc.detail}") from None
    return old


def send(
    station: Station,
    actor: str,
    peer: str,
    document: Any,
    *,
    amends: str | None = None,
    draft: bool = False,
    once: idempotency.Once | None = None,
) -> str:
    """Send a notice to `peer` (or a new version of one of ours); with `draft`, keep it
    here as a draft instead. Returns its id. `once`, a client's Idempotency-Key, is kept
    with it."""
    doc = parse_document(document, station.clock.now())
    _amends_no_removal(doc, amends)
    notice_id = outbox.new_id()
    with station.tx() as tx:
        if draft:
            _save_draft(station, tx, actor, peer, notice_id, doc, amends)
        else:
            _dispatch(station, tx, actor, peer, notice_id, doc, amends)
        idempotency.keep(tx, once, notice_id)
    return notice_id


def _amends_no_removal(doc: Document, amends: str | None) -> None:
    if doc.removes is not None and amends is not None:
        raise InvalidInput("a removal notice amends nothing: send it without amends")


def _check_draft(
    tx: Tx, peer: str, notice_id: str, doc: Document, amends: str | None
) -> tuple[Any, str, int]:
    """Everything sending checks that does not need an active line: the line, the notice
    a new version amends, the site a removal removes, the body's size (a removal that
    amends is refused before: `_amends_no_removal`). Returns the line, the series and the
    version."""
    line = line_for_peer(tx.conn, peer)
    series, version = notice_id, 1
    if amends is not None:
        old = _amendable(tx.conn, amends, peer, doc)
        series, version = str(old.series), int(old.version) + 1
    if doc.removes is not None:
        notice_sites.target_for_send(tx.conn, doc.removes, peer, tx.now)
    _body(notice_id, series, version, amends, doc)  # refuses now what could never be sent
    return line, series, version


def _save_draft(
    station: Station, tx: Tx, actor: str, peer: str, notice_id: str, doc: Document, amends: str | None
) -> None:
    """Keep a checked notice as a draft: everything sending checks, nothing sent or logged."""
    line, series, version = _check_draft(tx, peer, notice_id, doc, amends)
    sealed = _seal_draft(station, line.id, notice_id, doc)
    row = _Row(
        notice_id, series, version, amends, line.id, peer, "out", actor, State.DRAFT, draft_body=sealed
    )
    _store(tx, row, doc)


def edit_draft(station: Station, actor: str, notice_id: str, document: Any, *, send: bool = False) -> None:
    """Replace one of our drafts' document in place (its id, peer and the notice it amends
    stay), checked as saving a draft checks it; with `send`, send it in the same
    transaction, so a refused send leaves the draft as it was."""
    doc = parse_document(document, station.clock.now())
    with station.db.read() as conn:
        draft = get(conn, notice_id)
    _amends_no_removal(doc, draft.supersedes)  # what a draft amends never changes
    line_id = str(draft.line_id)
    with station.tx() as tx:
        lock_line(tx.conn, line_id)
        row = get(tx.conn, notice_id, for_update=True)
        starts, ends = _span(doc.volumes, tx.now)
        values = {
            "category": doc.category,
            "removes": doc.removes,
            "starts_at": starts,
            "ends_at": ends,
            "draft_body": _seal_draft(station, line_id, notice_id, doc),
        }
        # Only our draft may be edited (it stays a draft); any refusal below rolls it back.
        transition(tx, row, Event.EDIT, party_of(row), values=values)
        _check_draft(tx, str(row.peer), notice_id, doc, row.supersedes)
        tx.conn.execute(delete(notice_volumes).where(notice_volumes.c.notice_id == notice_id))
        if doc.volumes:
            tx.conn.execute(insert(notice_volumes), _volume_rows(notice_id, doc.volumes))
        if send:
            row = get(tx.conn, notice_id, for_update=True)
            _dispatch(station, tx, actor, str(row.peer), notice_id, doc, row.supersedes, row)


def _dispatch(
    station: Station,
    tx: Tx,
    actor: str,
    peer: str,
    notice_id: str,
    doc: Document,
    amends: str | None,
    draft: Any = None,
) -> None:
    """Send a checked notice, new or a `draft` of ours: the envelope, its deadline, the
    ledger entry, and the conflict check with its alerts, in one transaction."""
    line = require_active(tx.conn, peer)
    lock_line(tx.conn, line.id)
    _within_peer_horizon(line, doc, tx.now)
    series, version = notice_id, 1
    if amends is not None:
        old = _amendable(tx.conn, amends, peer, doc, for_update=True)
        transition(tx, old, Event.AMEND, Party.SENDER)
        series, version = str(old.series), int(old.version) + 1
    if doc.removes is not None:
        notice_sites.target_for_send(tx.conn, doc.removes, peer, tx.now)
    body = _body(notice_id, series, version, amends, doc)
    env = outbox.enqueue(station, tx, line.id, "notice.send", notice_id, body)
    deadline = tx.now + int(line.notice_deadline_s) * MICROS  # by when the peer should acknowledge
    if draft is None:
        row = _Row(
            notice_id, series, version, amends, line.id, peer, "out", actor, State.SENT, env.id, deadline
        )
        _store(tx, row, doc)
    else:
        sent = {"envelope_id": env.id, "series": series, "version": version, "deadline_at": deadline}
        if not doc.volumes:
            sent["starts_at"] = tx.now  # a removal starts when it is sent
        transition(tx, draft, Event.SEND, Party.SENDER, values={**sent, "draft_body": None})
        if draft.ends_at is not None:
            tx.new_deadline = True  # the timer loop records its expiry
    log(tx, "notice.sent", notice_id, line.id, peer, actor, env.id, **_facts(version, doc, amends))
    if doc.volumes:
        conflicts.check(tx, notice_id, series, line.id, doc.volumes, category=doc.category)


def _within_peer_horizon(line: Any, doc: Document, now: int) -> None:
    """A peer whose clock is proved behind ours (`peer_clock`) by more than the day the
    receiving side allows would refuse for good a notice that starts near the end of our
    horizon: beyond its own. Said now, while the officer can still change the notice."""
    behind = line.peer_clock_high  # its clock minus ours is at most this (µs)
    if behind is None or behind >= 0 or not doc.volumes:
        return
    theirs = now + int(behind) + RECEIVE_HORIZON_S * MICROS  # the latest start it could take
    late = [n for n, v in enumerate(doc.volumes, start=1) if v.start > theirs]
    if late:
        raise InvalidInput(
            f"volume {late[0]}: it starts after {rfc3339(theirs)}, beyond the planning horizon of "
            f"{line.peer}'s clock, which is at least {-int(behind) / MICROS / 3600:.1f} h behind ours "
            f"(alert clock_skew): {line.peer} would refuse it for good; start it earlier, or have "
            "the clock that is wrong set right"
        )


def _facts(version: int, doc: Document, supersedes: str | None) -> dict[str, Any]:
    """What a notice's `notice.sent` or `notice.received` entry says beyond its id: its
    version, how many volumes, the site a removal removes, the notice an amendment
    supersedes (so that the old version's proof shows what ended it)."""
    facts: dict[str, Any] = {"version": version, "volumes": len(doc.volumes)}
    if doc.removes is not None:
        facts["removes"] = doc.removes
    if supersedes is not None:
        facts["supersedes"] = supersedes
    return facts


def send_draft(station: Station, actor: str, notice_id: str) -> None:
    """Send one of our drafts, checked again as it is sent."""
    with station.db.read() as conn:
        row = get(conn, notice_id)
        _is_draft(row)
        document = open_draft(station, row)
    doc = parse_document(document, station.clock.now())
    with station.tx() as tx:
        lock_line(tx.conn, str(row.line_id))
        row = get(tx.conn, notice_id, for_update=True)
        _is_draft(row)  # another officer may have sent or discarded it meanwhile
        _dispatch(station, tx, actor, str(row.peer), notice_id, doc, row.supersedes, row)


def _is_draft(row: Any) -> None:
    if row.state != State.DRAFT.value:
        raise IllegalTransition(f"notice {row.id} is {row.state}, not a draft: only a draft is sent this way")


def discard(station: Station, actor: str, notice_id: str) -> None:
    """Discard one of our drafts. Local: it never left the station, so nothing is sent or
    logged."""
    with station.tx() as tx:
        row = get(tx.conn, notice_id, for_update=True)
        me = party_of(row)
        transition(tx, row, Event.DISCARD, me)


def _local(station: Station, actor: str, notice_id: str, event: Event, body: dict[str, Any]) -> None:
    with station.tx() as tx:
        lock_line(tx.conn, lambda: str(get(tx.conn, notice_id).line_id))  # read only where needed
        row = get(tx.conn, notice_id, for_update=True)
        me = party_of(row)
        if me is Party.SENDER:
            notice_sites.check_sender_change(tx.conn, row, event)
        extra = {"acknowledged_by": f"{station.name}:{actor}"} if event is Event.ACK else {}
        transition(tx, row, event, me, values=extra)
        if event is Event.WITHDRAW and outbox.refused_for_good(tx.conn, row.envelope_id):
            # The peer refused the notice for good: it has no notice to withdraw.
            log(tx, f"notice.{_PAST[event]}", notice_id, row.line_id, row.peer, actor, None)
            return
        require_line_open(tx.conn, row.line_id)
        env = outbox.enqueue(station, tx, row.line_id, KIND_OF[event], notice_id, body)
        log(tx, f"notice.{_PAST[event]}", notice_id, row.line_id, row.peer, actor, env.id)
        if event is Event.ACK and row.removes is not None:
            notice_sites.on_acknowledged(tx, row, actor, env.id)


def acknowledge(station: Station, actor: str, notice_id: str) -> None:
    _local(station, actor, notice_id, Event.ACK, {"by": actor})


def reject(station: Station, actor: str, notice_id: str, reason: Any) -> None:
    if (fault := _reason_fault(reason)) is not None:
        raise InvalidInput(fault)
    _local(station, actor, notice_id, Event.REJECT, {"by": actor, "reason": reason})


def _reason_fault(reason: Any) -> str | None:
    """What is wrong with a rejection's reason, ours or the peer's, or None."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > nm.MAX_TEXT:
        return f"a rejection needs a reason: non-empty text of at most {nm.MAX_TEXT} characters"
    if (control := control_character(reason)) is not None:
        return f"a rejection's reason must not contain control characters, got {control}"
    return None


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
            if body.get("removes") is not None:
                nm.parse_removal("notice body", body)
                if body.get("supersedes") is not None:
                    raise ValueError("notice body: a removal notice amends nothing")
            else:
                formats.parse_notice("notice", _document(body), now=now, horizon_s=RECEIVE_HORIZON_S)
        except ValueError as exc:
            raise EnvelopeRefused(Code.MALFORMED, f"notice body: {exc}") from None
        _check_series(body)
        text = body.get("text")
        if isinstance(text, str) and (control := control_character(text)) is not None:
            raise EnvelopeRefused(Code.MALFORMED, f"notice body: control character in the text, {control}")
    else:  # an answer or a withdrawal, by the peer's officer
        accounts.peer_user(body, kind)
        if kind == "notice.reject" and (fault := _reason_fault(body.get("reason"))) is not None:
            raise EnvelopeRefused(Code.MALFORMED, f"notice body: {fault}")


def _check_series(body: dict[str, Any]) -> None:
    """A notice's place in its series, as our own station writes it (`_body`): ids are
    UUIDs; a first version is version 1 of the series it starts, amending nothing; a later
    version amends one (whose series and number `apply_inbound` checks)."""
    supersedes, version = body.get("supersedes"), body["version"]
    for field in ("notice", "series", "supersedes"):
        value = body.get(field)
        if not (value is None and field == "supersedes") and not (
            isinstance(value, str) and UUID_RE.fullmatch(value)
        ):
            got = f"{value!r:.80}"
            raise EnvelopeRefused(Code.MALFORMED, f"notice body: {field} is not a notice id, got {got}")
    if isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        raise EnvelopeRefused(
            Code.MALFORMED, f"notice body: version must be 1 to {MAX_VERSION}, got {version!r:.40}"
        )
    if supersedes is None and (version != 1 or body["series"] != body["notice"]):
        raise EnvelopeRefused(
            Code.MALFORMED, "notice body: a notice that amends nothing is version 1 of its own series"
        )
    if supersedes is not None and version == 1:
        raise EnvelopeRefused(Code.MALFORMED, "notice body: an amendment is version 2 or later")


def _document(body: dict[str, Any]) -> dict[str, Any]:
    return {"category": body.get("category"), "text": body.get("text"), "extents": body.get("extents")}


def _inbound_document(tx: Tx, line: Any, body: dict[str, Any]) -> Document:
    removes = body.get("removes")
    if removes is not None:
        notice_sites.target_inbound(tx.conn, line.id, str(removes))
        return Document(str(body["category"]), str(body["text"]), (), str(removes))
    parsed = formats.parse_notice("notice", _document(body), now=tx.now, horizon_s=RECEIVE_HORIZON_S)
    return Document(str(parsed.category), parsed.text, parsed.volumes)


def apply_inbound(station: Station, tx: Tx, line: Any, env: Envelope, body: dict[str, Any]) -> None:
    """Apply a verified, stored inbound notice envelope."""
    actor = f"station:{env.sender}"
    notice_id = env.header["ref"]
    if env.kind == "notice.send":
        if body["notice"] != notice_id:
            raise EnvelopeRefused(Code.MALFORMED, "notice body names another notice than its envelope")
        if tx.conn.execute(select(notices.c.id).where(notices.c.id == notice_id)).first() is not None:
            raise EnvelopeRefused(Code.REPLAY, f"notice {notice_id} exists already")
        doc = _inbound_document(tx, line, body)
        sent_at = parse_rfc3339(env.header["time"])  # both stations date it by its sending
        supersedes = body.get("supersedes")
        if supersedes is not None:
            old = tx.conn.execute(
                select(notices).where(
                    notices.c.id == supersedes, notices.c.direction == "in", notices.c.line_id == line.id
                )
            ).first()
            if old is None:
                raise EnvelopeRefused(Code.MALFORMED, f"notice amends {supersedes!r}, which it never sent us")
            if (str(body["series"]), int(body["version"])) != (str(old.series), int(old.version) + 1):
                raise EnvelopeRefused(
                    Code.MALFORMED,
                    f"notice body: an amendment of version {old.version} of series {old.series} is version "
                    f"{int(old.version) + 1} of that series, not {body['version']} of {body['series']}",
                )
            try:
                nm.check_amendment(str(old.category), doc.category)
            except IllegalTransition as exc:
                raise EnvelopeRefused(Code.MALFORMED, f"notice body: {exc.detail}") from None
            if old.state == State.EXPIRED.value and sent_at <= (old.ends_at or sent_at):
                # Amended before its end, and expired here before the amendment arrived (the
                # line was down): the sender's station has it amended, and so do we.
                tx.conn.execute(
                    update(notices)
                    .where(notices.c.id == old.id)
                    .values(state=State.AMENDED.value, amended_at=sent_at, updated_at=tx.now)
                )
                tx.touched.add("notices")
            else:
                transition(tx, old, Event.AMEND, Party.SENDER, sent_at)
        deadline = tx.now + int(line.notice_deadline_s) * MICROS
        series, version = str(body["series"]), int(body["version"])
        new = _Row(notice_id, series, version, supersedes, line.id, env.sender, "in", actor, State.DELIVERED,
                   env.id, deadline, sent_at=sent_at)  # fmt: skip
        _store(tx, new, doc)
        facts = _facts(version, doc, supersedes)
        log(tx, "notice.received", notice_id, line.id, env.sender, actor, env.id, sent_at, **facts)
        if doc.volumes:
            conflicts.check(tx, notice_id, series, line.id, doc.volumes, category=doc.category)
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
        # The sender's own limits (`notice_sites.check_sender_change`) are not asked here: a
        # withdrawal may have been legal when it was sent and crossed our acknowledgement.
        transition(tx, row, event, them, at, values=extra)
    except IllegalTransition as exc:
        # A signed statement that crossed one of ours (a withdrawal and an acknowledgement):
        # keep it, receipt it, and record that it changed nothing.
        log(tx, "notice.ignored", notice_id, line.id, env.sender, actor, env.id, at,
            kind=env.kind, why=exc.detail[:200])  # fmt: skip
        return
    log(tx, f"notice.{_PAST[event]}", notice_id, line.id, env.sender, actor, env.id, at)
    if event is Event.ACK and row.removes is not None:
        notice_sites.on_acknowledged(tx, row, actor, env.id, at)


def on_delivered(tx: Tx, env_row: Any, receipt: dict[str, Any]) -> None:
    """Our notice has a valid receipt: it is delivered. Its state says so unless it moved
    on first (acknowledged, or amended, withdrawn or expired before the receipt came
    back); its delivery time is recorded whatever it became, as the peer records it."""
    if env_row.kind != "notice.send":
        return
    row = tx.conn.execute(select(notices).where(notices.c.id == env_row.call_id)).first()
    if row is None or row.delivered_at is not None:
        return
    stored_at = parse_rfc3339(receipt["stored_at"])
    if row.state == State.SENT.value:
        transition(tx, row, Event.DELIVER, Party.SENDER, stored_at)
    else:
        tx.conn.execute(update(notices).where(notices.c.id == row.id).values(delivered_at=stored_at))
        tx.touched.add("notices")


def on_refused(tx: Tx, env_row: Any, refusal: dict[str, Any]) -> None:
    """The peer refused our notice envelope for good (its signed `refusal`): logged about
    the notice. A notice whose sending was refused stays sent, never delivered, and
    withdrawing it tells the peer nothing (`_local`). What the refused envelope did here
    to a notice the peer holds is undone, so that the two stations agree on it: the
    version a refused amendment replaced is in force again, and so is a notice whose
    withdrawal was refused; a notice whose acknowledgement or rejection was refused waits
    for its answer again (`_reinstate`)."""
    if not env_row.kind.startswith("notice.") or env_row.call_id is None:
        return
    row = tx.conn.execute(select(notices).where(notices.c.id == env_row.call_id)).first()
    if row is None:
        return
    tx.touched.add("notices")
    at, by = parse_rfc3339(refusal["stored_at"]), f"station:{refusal['from']}"
    log(tx, "notice.refused", row.id, row.line_id, row.peer, by, env_row.id, at,
        kind=env_row.kind, code=refusal["error"]["code"])  # fmt: skip
    if env_row.kind == "notice.send":  # the peer never had it: none of its answer to wait for
        why = f"{refusal['from']} refused it ({refusal['error']['code']})"
        alerts.condition_over(tx, "notice_unacknowledged", [f"notice {row.id}"], why)
    if env_row.kind == "notice.send" and row.supersedes is not None:
        old = tx.conn.execute(select(notices).where(notices.c.id == row.supersedes)).first()
        if old is not None:
            _reinstate(tx, old, State.AMENDED, env_row.id, by, at)
    elif env_row.kind in EVENT_OF:
        made = {Event.WITHDRAW: State.WITHDRAWN, Event.ACK: State.ACKNOWLEDGED, Event.REJECT: State.REJECTED}
        _reinstate(tx, row, made[EVENT_OF[env_row.kind]], env_row.id, by, at)


def _reinstate(tx: Tx, row: Any, made: State, envelope_id: str, by: str, at: int) -> None:
    """Undo the state a refused envelope of ours made (`made`), if the notice is still in
    it and the change touched nothing else: not a protected site's removal, whose
    acknowledgement removed the site here."""
    if row.state != made.value or row.removes is not None:
        return
    undone: dict[str, Any] = {TIME_COLUMN[made]: None}
    if made is State.ACKNOWLEDGED:
        undone["acknowledged_by"] = None
    if row.direction == "in":
        back = State.DELIVERED
    else:
        back = next(
            (s for s in (State.ACKNOWLEDGED, State.REJECTED, State.DELIVERED) if s is not made
             and getattr(row, TIME_COLUMN[s]) is not None),
            State.SENT,
        )  # fmt: skip
    tx.conn.execute(
        update(notices).where(notices.c.id == row.id).values(state=back.value, updated_at=tx.now, **undone)
    )
    log(tx, "notice.reinstated", row.id, row.line_id, row.peer, by, envelope_id, at,
        undone=made.value, state=back.value)  # fmt: skip


# Deadlines ------------------------------------------------------------------------------


_REFUSED_SENDING = (
    select(envelopes.c.id)
    .where(envelopes.c.id == notices.c.envelope_id, envelopes.c.refused.is_not(None))
    .exists()
)


def audit_deadlines(station: Station) -> int:
    """Raise a `notice_unacknowledged` alert for every notice still unanswered (neither
    acknowledged nor rejected) past its deadline: on the receiving side someone must
    answer it, on the sending side someone must chase it. Returns how many are overdue."""
    now = station.clock.now()
    with station.db.read() as conn:  # the common case, answered without the write lock
        overdue = _overdue(conn, now)
    if overdue:
        with station.tx() as tx:
            # Asked again under the lines' locks, which an answer takes too: one that came
            # in since the read had already ended the alert, and raising it then began it
            # again (paging, and a notice.unanswered after the acknowledgement).
            for line_id in sorted({row.line_id for row in overdue}):
                lock_line(tx.conn, line_id)
            for row in _overdue(tx.conn, now, [row.id for row in overdue]):
                side = "we must answer it" if row.direction == "in" else "the peer has not answered it"
                detail = {
                    "notice": row.id,
                    "peer": row.peer,
                    "deadline_at": rfc3339(row.deadline_at),
                    "why": side,
                }
                if alerts.raise_alert(tx, "notice_unacknowledged", f"notice {row.id}", detail):
                    # Provable, as a call's miss is: the deadline passed with no answer.
                    waiting = "us" if row.direction == "in" else "peer"
                    due = rfc3339(row.deadline_at)
                    log(tx, "notice.unanswered", row.id, row.line_id, row.peer, "system", None,
                        deadline_at=due, waiting_for=waiting)  # fmt: skip
    return len(overdue)


def _overdue(conn: Connection, now: int, ids: list[str] | None = None) -> list[Any]:
    """The notices unanswered past their deadline (of `ids`, if given)."""
    query = select(
        notices.c.id, notices.c.line_id, notices.c.peer, notices.c.direction, notices.c.deadline_at
    ).where(
        notices.c.state.in_(sorted(s.value for s in nm.AWAITING)),
        notices.c.deadline_at <= now,
        or_(notices.c.ends_at.is_(None), notices.c.ends_at >= now),
        ~_REFUSED_SENDING,  # the peer never had it: nobody there can answer it
    )
    if ids is not None:
        query = query.where(notices.c.id.in_(ids))
    return list(conn.execute(query).all())
