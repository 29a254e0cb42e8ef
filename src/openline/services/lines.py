"""Lines: pinning a peer's card, the signed handshake, and the line's terms.

A line is created when we pin a peer's card (state `pending`) and becomes `active` once
a signed handshake has succeeded in either direction, which needs both sides to have
pinned each other. The line id is derived from both signing keys, so both stations
name the line identically without negotiating.

The handshake carries the line's terms, which both stations must hold alike. New terms
are proposed on each side (`line_terms.propose`) and adopted by both in the handshake
that finds them proposed alike: until then the line keeps its terms.

It carries the sender's card too. A pinned card may be replaced by one with the same keys
(a station that moved): by hand (`update_card`), or after a handshake once the new
address has answered one of ours (services/moves.py).

An administrator who stops trusting the peer (its key may be stolen) suspends the line
(`suspend`): from that commit nothing signed by the peer is taken, not a batch, a
handshake, a sync or a checkpoint, and nothing is sent to it; what our side does on the
line is refused, and what the timers do waits in the outbox. `resume` undoes it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, func, insert, select, update

from openline.adapters.db import for_update
from openline.adapters.schema import envelopes, ledger_peers, lines, peers
from openline.adapters.transport import HANDSHAKE_PATH, PeerRefused, Transport
from openline.core.card import Card, parse_card
from openline.core.clock import parse_rfc3339, rfc3339, round_trip
from openline.core.encoding import canonical, said, sha256
from openline.core.keys import signing_public_key, verify
from openline.errors import (
    Code,
    Conflict,
    EnvelopeRefused,
    Forbidden,
    InvalidInput,
    NotFound,
    OpenLineError,
    PeerUnreachable,
)
from openline.services import accounts, alerts, ledger, notice_conflicts, outbox, peer_clock, watch
from openline.services.notice_conflicts import margins_of
from openline.services.station import Station, Tx

PENDING = "pending"
ACTIVE = "active"
SUSPENDED = "suspended"
MAX_SUSPEND_REASON = 1000
_LINE_BREAK = re.compile("[\t\n\r\x85\u2028\u2029]")
log = structlog.get_logger("openline.lines")
# A handshake answer's `card`: we hold the card the peer sent (else why we keep another).
CARD_PINNED = "pinned"
NOTICE_DEADLINE_S = 3600  # a notice from the peer must be answered within this long, by default
# The bounds of the line terms (the API checks them too, and the handshake compares them).
NOTICE_DEADLINE_RANGE = (60, 7 * 86_400)
ANSWER_DEADLINE_RANGE = (5, 86_400)
MAX_MARGIN_HORIZONTAL_M = 100_000.0
MAX_MARGIN_VERTICAL_M = 10_000.0
MAX_MARGIN_MINUTES = 1440

# Built once: every request and batch from a peer looks its key up.
_PINNED_KEY = select(peers.c.signing_key).where(peers.c.name == bindparam("b_peer"))
_PINNED = (
    select(peers.c.signing_key, lines.c.state)
    .join(lines, lines.c.peer == peers.c.name)
    .where(peers.c.name == bindparam("b_peer"))
)


def pinned_signing_key(conn: Connection, peer: str) -> str | None:
    """The signing key of `peer`'s pinned card, or None if no card of that name is pinned."""
    row = conn.execute(_PINNED_KEY, {"b_peer": peer}).first()
    return None if row is None else str(row.signing_key)


def pinned_key_and_state(conn: Connection, peer: str) -> tuple[str, str] | None:
    """The signing key of `peer`'s pinned card and the state of its line, or None."""
    row = conn.execute(_PINNED, {"b_peer": peer}).first()
    return None if row is None else (str(row.signing_key), str(row.state))


def refuse_if_suspended(state: str, peer: str) -> None:
    """A request or batch from a peer whose line we suspended: refused whole, nothing
    taken (the peer keeps it all and retries, as for a station that is down)."""
    if state == SUSPENDED:
        raise Forbidden(
            f"this station has suspended its line with {peer!r}: nothing from {peer!r} is "
            "taken until its administrator resumes the line",
            code=Code.LINE_SUSPENDED,
        )


@dataclass(frozen=True)
class Terms:
    """What a line's two stations must agree on, beyond the answer deadline: how long a
    notice may wait for its answer, and the separation margins between two activities."""

    notice_deadline_s: int = NOTICE_DEADLINE_S
    margin_horizontal_m: float = 0.0
    margin_vertical_m: float = 0.0
    margin_minutes: int = 0

    def check(self) -> None:
        low, high = NOTICE_DEADLINE_RANGE
        if not low <= self.notice_deadline_s <= high:
            raise InvalidInput(
                f"notice deadline must be {low} to {high} seconds, got {self.notice_deadline_s}"
            )
        for name, value, top in (
            ("horizontal", self.margin_horizontal_m, MAX_MARGIN_HORIZONTAL_M),
            ("vertical", self.margin_vertical_m, MAX_MARGIN_VERTICAL_M),
            ("minutes", self.margin_minutes, MAX_MARGIN_MINUTES),
        ):
            if not (math.isfinite(value) and 0 <= value <= top):
                raise InvalidInput(f"margin {name} must be 0 to {top:g}, got {value}")


def check_answer_deadline(seconds: int) -> None:
    low, high = ANSWER_DEADLINE_RANGE
    if not low <= seconds <= high:
        raise InvalidInput(f"answer deadline must be {low} to {high} seconds, got {seconds}")


def line_id_for(a_signing_key: str, b_signing_key: str) -> str:
    first, second = sorted([a_signing_key, b_signing_key])
    return sha256(f"openline line v1\x00{first}\x00{second}".encode()).hex()[:32]


def add_line(
    station: Station,
    card_json: Any,
    *,
    answer_deadline_s: int | None = None,
    terms: Terms | None = None,
    actor: str = "system",
) -> str:
    """Verify and pin a peer's card, creating a pending line. Returns the peer name."""
    card = parse_card(card_json)
    if card.name == station.name or card.signing_key == station.keys.signing_public:
        raise InvalidInput("that is this station's own card; add the peer station's card")
    deadline = answer_deadline_s or station.answer_deadline_s
    check_answer_deadline(deadline)
    terms = terms or Terms()
    terms.check()
    with station.tx() as tx:
        existing = tx.conn.execute(select(peers).where(peers.c.name == card.name)).first()
        if existing is not None:
            pinned = json.loads(existing.card)
            _require_same_identity(existing, pinned, card)
            if card.to_json() != pinned:
                raise Conflict(
                    f"station {card.name!r} is pinned already with these keys; this card gives it "
                    f"another address ({', '.join(card.urls)}; pinned: {existing.url}) or other "
                    "languages: take it with `openline line update CARD_FILE`; nothing changed"
                )
            raise Conflict(f"station {card.name!r} is pinned already (same keys); nothing changed")
        tx.conn.execute(
            insert(peers).values(
                name=card.name,
                card=json.dumps(card.to_json()),
                signing_key=card.signing_key,
                encryption_key=card.encryption_key,
                fingerprint=card.fingerprint,
                url=card.url,
                pinned_at=tx.now,
            )
        )
        line_id = line_id_for(station.keys.signing_public, card.signing_key)
        tx.conn.execute(
            insert(lines).values(
                id=line_id,
                peer=card.name,
                state=PENDING,
                answer_deadline_s=deadline,
                notice_deadline_s=terms.notice_deadline_s,
                margin_horizontal_m=float(terms.margin_horizontal_m),
                margin_vertical_m=float(terms.margin_vertical_m),
                margin_minutes=terms.margin_minutes,
                created_at=tx.now,
                next_out_seq=1,
                next_in_seq=1,
                retry_attempt=0,
            )
        )
        accounts.record(tx.conn, tx.now, actor, "line.add", f"{card.name} ({card.fingerprint})")
        tx.conn.execute(insert(ledger_peers).values(peer=card.name))  # what each side witnessed
        ledger.append(
            tx,
            "line.pinned",
            tx.now,
            {"line": line_id, "peer": card.name, "fingerprint": card.fingerprint, "actor": actor},
        )
        tx.wake_lines.add(line_id)
    return card.name


# What a station's card may change while its keys stay pinned: where it is reached and the
# languages it speaks. Anything else that differs is another identity (`key_changed`).
_REPLACEABLE = {"urls", "languages", "signature"}


def update_card(station: Station, peer: str, card_json: Any, *, actor: str) -> None:
    """Replace `peer`'s pinned card with its new one, signed by the same keys: a station
    that moved to another address. Its line is retried there at once."""
    named = card_json.get("name") if isinstance(card_json, dict) else None
    if named != peer:
        raise InvalidInput(f"that is not a card of {peer!r}: it names {named!r:.70}")
    card = parse_card(card_json)
    with station.tx() as tx:
        pinned = tx.conn.execute(select(peers).where(peers.c.name == card.name)).first()
        if pinned is None:
            raise NotFound(f"no pinned station named {card.name!r}; add its card with `openline line add`")
        old = json.loads(pinned.card)
        _require_same_identity(pinned, old, card)
        if card.to_json() == old:
            raise Conflict(f"station {card.name!r} is pinned with this very card; nothing changed")
        repin(tx, card, old, actor=actor, via="card")


def _require_same_identity(pinned: Any, old: dict[str, Any], card: Card) -> None:
    new = card.to_json()
    if any(new[k] != old.get(k) for k in new.keys() - _REPLACEABLE):
        raise EnvelopeRefused(
            Code.KEY_CHANGED,
            f"station {card.name!r} is pinned with fingerprint {pinned.fingerprint}; this card "
            f"has {card.fingerprint} or other keys. Refusing a new key for a pinned name: "
            "verify the change with the peer out of band.",
        )


def repin(tx: Tx, card: Card, old: dict[str, Any], *, actor: str, via: str) -> None:
    """Pin `card` in place of `old` (the same keys, checked by the caller), in the audit
    trail and the ledger, and retry the line at its new address now."""
    tx.conn.execute(
        update(peers).where(peers.c.name == card.name).values(card=json.dumps(card.to_json()), url=card.url)
    )
    line = line_for_peer(tx.conn, card.name)
    moved = f"{card.name}: {', '.join(old['urls'])} -> {', '.join(card.urls)}"
    accounts.record(tx.conn, tx.now, actor, "line.card", moved)
    facts = {"line": line.id, "peer": card.name, "fingerprint": card.fingerprint, "actor": actor}
    ledger.append(
        tx, "line.card", tx.now, {**facts, "urls": list(card.urls), "previous": old["urls"], "via": via}
    )
    drop_backoff(tx, line.id)


def peer_card(conn: Connection, name: str) -> Card:
    row = conn.execute(select(peers.c.card).where(peers.c.name == name)).first()
    if row is None:
        raise NotFound(f"no pinned station named {name!r}; add its card with `openline line add`")
    return parse_card(json.loads(row.card))


def line_for_peer(conn: Connection, peer: str) -> Any:
    row = conn.execute(select(lines).where(lines.c.peer == peer)).first()
    if row is None:
        raise NotFound(f"no line to a station named {peer!r}; add its card with `openline line add`")
    return row


def require_known_peer(conn: Connection, peer: str | None) -> None:
    """A listing filtered by a peer we have no line to could only be empty: most likely a
    mistyped name, which must not read as "nothing waiting from them". Refused, naming
    the peers there are."""
    if peer is not None and conn.execute(select(lines.c.id).where(lines.c.peer == peer)).first() is None:
        known = sorted(conn.execute(select(lines.c.peer)).scalars())
        to = ", ".join(known) or "nobody yet"
        raise NotFound(f"no line to a station named {peer!r}; the lines are to: {to}")


def require_active(conn: Connection, peer: str) -> Any:
    line = line_for_peer(conn, peer)
    require_not_suspended(line)
    if line.state != ACTIVE:
        raise Conflict(
            f"the line to {peer!r} is {line.state}: it becomes active once {peer!r} "
            "has pinned our card too and the handshake succeeds",
            code=Code.LINE_NOT_ACTIVE,
        )
    return line


def require_not_suspended(line: Any) -> None:
    """What our side would send on a line our administrator suspended is refused, rather
    than left waiting unseen in the outbox (`suspend`)."""
    if line.state == SUSPENDED:
        raise Conflict(
            f"the line with {line.peer!r} is suspended (since {rfc3339(line.suspended_at)}, by "
            f"{line.suspended_by}): nothing is sent on it until an administrator resumes it "
            f"(`openline line resume {line.peer}`)",
            code=Code.LINE_SUSPENDED,
        )


def require_line_open(conn: Connection, line_id: str) -> None:
    """`require_not_suspended`, for the line of a call or a notice."""
    require_not_suspended(conn.execute(_SUSPENSION, {"b_line": line_id}).one())


_SUSPENSION = select(lines.c.peer, lines.c.state, lines.c.suspended_at, lines.c.suspended_by).where(
    lines.c.id == bindparam("b_line")
)


def suspend(station: Station, peer: str, reason: Any, *, actor: str) -> None:
    """Stop trusting `peer` at once: its requests are refused from this commit on
    (`refuse_if_suspended`, and the inbox checks again under the line lock), our
    deliverer sends it nothing, and our people cannot act on the line. What is in the
    outbox stays there, and its calls stop paging (`watch.hold_escalation`); in the audit
    trail (with `reason`) and the ledger."""
    reason = said(reason, "reason", MAX_SUSPEND_REASON)
    if (broken := _LINE_BREAK.search(str(reason))) is not None:
        # Shown on one line (the board, `openline lines`, the audit trail): a line break
        # or a tab there would let a reason show what it is not.
        what = "a tab" if broken.group() == "\t" else "a line break"
        raise InvalidInput(
            f"reason must be one line of text, without tabs or line breaks; got {what} "
            f"at position {broken.start() + 1}"
        )
    with station.tx() as tx:
        line = line_for_peer(tx.conn, peer)
        lock_line(tx.conn, line.id)
        line = line_for_peer(tx.conn, peer)
        if line.state == SUSPENDED:
            raise Conflict(
                f"the line with {peer!r} is suspended already (since {rfc3339(line.suspended_at)}, "
                f"by {line.suspended_by}); nothing changed"
            )
        tx.conn.execute(
            update(lines)
            .where(lines.c.id == line.id)
            .values(state=SUSPENDED, suspended_at=tx.now, suspended_by=actor, suspend_reason=reason)
        )
        held = watch.hold_escalation(tx, line.id, actor)
        accounts.record(tx.conn, tx.now, actor, "line.suspend", f"{peer}: {reason}")
        fingerprint = tx.conn.execute(select(peers.c.fingerprint).where(peers.c.name == peer)).scalar_one()
        facts = {"line": line.id, "peer": peer, "fingerprint": fingerprint, "actor": actor}
        ledger.append(tx, "line.suspended", tx.now, {**facts, "was": line.state})
    log.warning("line suspended", peer=peer, actor=actor, calls_no_longer_paging=held)


def resume(station: Station, peer: str, *, actor: str) -> None:
    """Trust `peer` again: the line is what it was before it was suspended (`active`, or
    `pending` if no handshake had opened it yet), and its deliverer starts at once."""
    with station.tx() as tx:
        line = line_for_peer(tx.conn, peer)
        lock_line(tx.conn, line.id)
        line = line_for_peer(tx.conn, peer)
        if line.state != SUSPENDED:
            raise Conflict(f"the line with {peer!r} is not suspended (it is {line.state}); nothing changed")
        state = PENDING if line.activated_at is None else ACTIVE
        tx.conn.execute(
            update(lines)
            .where(lines.c.id == line.id)
            .values(state=state, suspended_at=None, suspended_by=None, suspend_reason=None)
        )
        watch.restart_escalation(tx, line.id, actor)
        accounts.record(tx.conn, tx.now, actor, "line.resume", peer)
        ledger.append(
            tx, "line.resumed", tx.now, {"line": line.id, "peer": peer, "actor": actor, "state": state}
        )
        drop_backoff(tx, line.id)
    log.warning("line resumed", peer=peer, actor=actor)


_DROP_BACKOFF = update(lines).where(lines.c.id == bindparam("b_line")).values(retry_at=None, retry_attempt=0)


def drop_backoff(tx: Tx, line_id: str) -> None:
    """The peer has reached us, so it is up: our next delivery attempt need not wait, and
    the line's deliverer wakes once this transaction commits (RFC 1123 5.3.1.1)."""
    tx.conn.execute(_DROP_BACKOFF, {"b_line": line_id})
    tx.wake_lines.add(line_id)


def lock_line(conn: Connection, line_id: str | Callable[[], str]) -> None:
    """Take the line's row lock first, before any call or envelope row.

    Every write transaction that touches a line's rows does this, so on PostgreSQL they
    all lock in one order and cannot deadlock. On SQLite BEGIN IMMEDIATE has already
    locked the whole database.
    """
    if conn.dialect.name == "postgresql":
        line = line_id() if callable(line_id) else line_id  # looked up only when needed
        conn.execute(for_update(conn, select(lines.c.id).where(lines.c.id == line)))


def margins_json(line: Any) -> dict[str, Any]:
    """A line's separation margins as JSON: `horizontal_m`, `vertical_m`, `minutes`."""
    return dataclasses.asdict(margins_of(line))


def terms_of(line: Any) -> dict[str, Any]:
    """A line's terms as the handshake carries them."""
    return {
        "answer_deadline_s": int(line.answer_deadline_s),
        "notice_deadline_s": int(line.notice_deadline_s),
        "margins": margins_json(line),
    }


def proposal_of(line: Any) -> dict[str, Any] | None:
    """The terms our administrator proposed for the line and the peer has not yet agreed
    to (`line_terms.propose`), or None."""
    return None if line.proposed_terms is None else dict(json.loads(line.proposed_terms))


def _adopt(tx: Tx, line: Any, terms: dict[str, Any], role: str) -> None:
    """Both stations agreed on new terms in a handshake (`role`: we "initiated" or
    "answered" it): they apply from now, here, and the proposal is done. New margins
    check the line's active notices again: the peer does so too when it adopts them,
    so that both find the same conflicts under them."""
    margins = terms["margins"]
    tx.conn.execute(
        update(lines)
        .where(lines.c.id == line.id)
        .values(
            answer_deadline_s=int(terms["answer_deadline_s"]),
            notice_deadline_s=int(terms["notice_deadline_s"]),
            margin_horizontal_m=float(margins["horizontal_m"]),
            margin_vertical_m=float(margins["vertical_m"]),
            margin_minutes=int(margins["minutes"]),
            proposed_terms=None,
            proposed_at=None,
        )
    )
    facts = {"line": line.id, "peer": line.peer, "terms": terms, "previous": terms_of(line), "role": role}
    ledger.append(tx, "line.terms", tx.now, facts)
    if margins != margins_json(line):
        notice_conflicts.recheck_line(tx, line.id)


def _handshake_statement(
    line_id: str, nonce: str, sender: str, receiver: str, terms: dict[str, Any]
) -> bytes:
    return canonical(
        {"type": "handshake", "line": line_id, "nonce": nonce, "from": sender, "to": receiver, "terms": terms}
    )


def initiate_handshake(
    station: Station, transport: Transport, peer: str, *, propose: bool = True, url: str | None = None
) -> str | None:
    """Ask the peer to confirm the line, with the terms our administrator proposed if there
    are any (unless not `propose`), else its terms. Marks it active on success, adopting
    the proposed terms if those were confirmed; raises otherwise. `url`: ask the peer
    there instead of at its pinned address (`moves.follow`).

    Returns None, or why the peer keeps a card of ours other than the one we sent (we
    moved, and it could not confirm our new address yet)."""
    with station.db.read() as conn:
        line = line_for_peer(conn, peer)
        card = peer_card(conn, peer)
    require_not_suspended(line)
    nonce = secrets.token_urlsafe(16)
    proposed = proposal_of(line) if propose else None
    terms = proposed or terms_of(line)
    sent_at = station.clock.now()
    answer = transport.post(
        peer,
        url or card.url,
        HANDSHAKE_PATH,
        {"line": line.id, "nonce": nonce, "terms": terms, "card": station.card.to_json()},
    )
    answered_at = station.clock.now()
    if not isinstance(answer, dict) or not isinstance(answer.get("sig"), str):
        raise PeerUnreachable(f"{peer} answered the handshake without a signature")
    verify(
        signing_public_key(card.signing_key),
        answer["sig"],
        _handshake_statement(line.id, nonce, peer, station.name, terms),
        what=f"handshake answer from {peer!r}",
    )
    kept = answer.get("card")
    if isinstance(kept, str) and kept != CARD_PINNED:  # it still sends to our old address
        log.warning("the peer keeps our previous card", peer=peer, why=kept[:300])
    else:
        kept = None
    with station.tx() as tx:
        if proposed is not None:  # the peer signed our proposal: it has adopted it
            now = tx.conn.execute(select(lines).where(lines.c.id == line.id)).one()
            if terms_of(now) != terms:  # not adopted here meanwhile, answering the peer's
                _adopt(tx, now, terms, "initiated")
            if proposal_of(now) not in (None, terms):  # proposed anew meanwhile: kept
                tx.conn.execute(
                    update(lines)
                    .where(lines.c.id == line.id)
                    .values(proposed_terms=now.proposed_terms, proposed_at=now.proposed_at)
                )
        _mark_active(tx, line, "initiated")
        stamped = _peer_time(answer.get("clock"), card, line.id, nonce, peer, station.name)
        if stamped is not None:
            peer_clock.observe(station, tx, line, round_trip(stamped, sent_at, answered_at), "line check")
    return kept


def _clock_statement(line_id: str, nonce: str, sender: str, receiver: str, at: str) -> bytes:
    return canonical(
        {"type": "clock", "line": line_id, "nonce": nonce, "from": sender, "to": receiver, "at": at}
    )


def _peer_time(clock: Any, card: Card, line_id: str, nonce: str, peer: str, us: str) -> int | None:
    """The time a handshake's answer says the peer stamped, signed apart from the answer
    (a station that does not send it still answers), or None."""
    if clock is None:
        return None
    try:
        if (
            not isinstance(clock, dict)
            or not isinstance(clock.get("at"), str)
            or not isinstance(clock.get("sig"), str)
        ):
            raise EnvelopeRefused(Code.MALFORMED, "expected {at, sig}")
        statement = _clock_statement(line_id, nonce, peer, us, clock["at"])
        verify(signing_public_key(card.signing_key), clock["sig"], statement, what="its clock")
        return parse_rfc3339(clock["at"])
    except (EnvelopeRefused, ValueError) as exc:
        log.warning("the peer's handshake answer has a bad clock", peer=peer, why=str(exc)[:200])
        return None


def answer_handshake(station: Station, origin: str, payload: Any) -> dict[str, Any]:
    """The peer proved its key (signed request) and names our line: confirm it."""
    if not isinstance(payload, dict) or set(payload) != {"line", "nonce", "terms", "card"}:
        raise EnvelopeRefused(Code.MALFORMED, "handshake: expected line, nonce, terms, card")
    card = parse_card(payload["card"])
    nonce = payload["nonce"]
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= 64:
        raise EnvelopeRefused(Code.MALFORMED, "handshake: nonce must be 8 to 64 characters")
    _check_terms(payload["terms"])
    check_nonce(station, origin, nonce)
    differ: dict[str, Any] = {}  # the terms the peer holds, when they are not ours
    try:
        return _answer_handshake(station, origin, payload, card, nonce, differ)
    except Conflict:
        if differ:  # someone on the watch floor must know (once per set of terms)
            _terms_differ_alert(station, origin, differ)
        raise


_TERMS = frozenset({"answer_deadline_s", "notice_deadline_s", "margins"})
_MARGINS = frozenset({"horizontal_m", "vertical_m", "minutes"})
_MOST = 10**9  # seconds, metres or minutes: far beyond any term a line agrees on


def _check_terms(terms: Any) -> None:
    """The terms a peer's handshake carries have the shape `terms_of` gives them, before
    they are compared, shown in an alert or logged (a peer sent 1 MB of them)."""

    def number(value: Any, kinds: tuple[type, ...]) -> bool:
        return type(value) in kinds and math.isfinite(value) and 0 <= value <= _MOST

    margins = terms.get("margins") if isinstance(terms, dict) else None
    if not (
        isinstance(terms, dict)
        and set(terms) == _TERMS
        and all(number(terms[k], (int,)) for k in ("answer_deadline_s", "notice_deadline_s"))
        and isinstance(margins, dict)
        and set(margins) == _MARGINS
        and number(margins["horizontal_m"], (int, float))
        and number(margins["vertical_m"], (int, float))
        and number(margins["minutes"], (int,))
    ):
        raise EnvelopeRefused(
            Code.MALFORMED,
            "handshake: terms must be {answer_deadline_s, notice_deadline_s: whole seconds, "
            "margins: {horizontal_m, vertical_m: metres, minutes: whole minutes}}",
        )


# The nonces of the handshakes each peer made lately, in this process: a handshake request
# recorded on the way and sent again (its signature has no time in it) is refused.
_NONCES_KEPT = 1024


def check_nonce(station: Station, peer: str, nonce: str) -> None:
    """Refuse a nonce this peer sent us already (a handshake's or a sync's), as `replay`."""
    with station.lock:
        seen = station.handshake_nonces.setdefault(peer, {})
        if nonce in seen:
            raise EnvelopeRefused(Code.REPLAY, "this nonce was used already")
        seen[nonce] = None
        if len(seen) > _NONCES_KEPT:
            del seen[next(iter(seen))]  # the oldest


def _terms_differ_alert(station: Station, peer: str, differ: dict[str, Any]) -> None:
    """One open alert per peer at a time: each set of terms raises its own, but not while
    the watch floor has not yet acknowledged the last (a peer can send any number)."""
    key = sha256(canonical(differ["theirs"])).hex()[:12]
    with station.tx() as tx:
        if alerts.open_about(tx.conn, "line_terms_differ", f"{peer} "):
            return
        alerts.raise_alert(tx, "line_terms_differ", f"{peer} {key}", {"peer": peer, **differ})


def _answer_handshake(
    station: Station, origin: str, payload: dict[str, Any], card: Card, nonce: str, differ: dict[str, Any]
) -> dict[str, Any]:
    with station.tx() as tx:
        line = line_for_peer(tx.conn, origin)
        pinned = tx.conn.execute(select(peers).where(peers.c.name == origin)).one()
        refuse_if_suspended(line.state, origin)  # suspended since the request was authenticated
        if card.name != origin:
            raise EnvelopeRefused(Code.KEY_CHANGED, f"handshake: {origin!r} sent the card of {card.name!r}")
        _require_same_identity(pinned, json.loads(pinned.card), card)  # its address may differ
        if payload["line"] != line.id:
            raise EnvelopeRefused(
                Code.WRONG_DESTINATION, f"handshake: expected line {line.id}, got {payload['line']!r:.40}"
            )
        terms, proposed = terms_of(line), proposal_of(line)
        if payload["terms"] != terms:
            if proposed is None or payload["terms"] != proposed:
                differ.update(theirs=payload["terms"], ours=terms, proposed=proposed)
                ours = f"ours {terms}" + (f" (proposed: {proposed})" if proposed else "")
                raise Conflict(
                    f"handshake: line terms differ: {ours}, theirs {payload['terms']!r:.200}; agree on "
                    "them out of band (new terms for an open line: `openline line terms` on both sides)"
                )
            _adopt(tx, line, proposed, "answered")  # the peer proposes what we proposed
            terms = proposed
        _mark_active(tx, line, "answered")
    at = rfc3339(station.clock.now()) or ""  # for the peer to measure our clock (peer_clock)
    return {
        "line": line.id,
        "state": ACTIVE,
        "sig": station.keys.sign(_handshake_statement(line.id, nonce, station.name, origin, terms)),
        "clock": {
            "at": at,
            "sig": station.keys.sign(_clock_statement(line.id, nonce, station.name, origin, at)),
        },
    }


def _mark_active(tx: Tx, line: Any, role: str) -> None:
    """A handshake succeeded (`role`: we "initiated" it or "answered" it)."""
    line_id = line.id
    opened = tx.conn.execute(
        update(lines)
        .where(lines.c.id == line_id, lines.c.state == PENDING)
        .values(state=ACTIVE, activated_at=tx.now)
    ).rowcount
    facts = {"line": line_id, "peer": line.peer}
    ledger.append(tx, "line.handshake", tx.now, {**facts, "role": role})
    if opened:
        ledger.append(tx, "line.active", tx.now, facts)
    tx.conn.execute(
        update(lines)
        .where(lines.c.id == line_id)
        .values(last_contact_at=tx.now, retry_attempt=0, retry_at=None, last_error=None)
    )
    tx.wake_lines.add(line_id)


def try_handshake(station: Station, transport: Transport, peer: str) -> str | None:
    """`initiate_handshake` now, for an administrator who just added or resumed the line:
    None if the peer answered, else why not (`handshake_error`; the deliverer keeps
    trying)."""
    try:
        initiate_handshake(station, transport, peer)
    except OpenLineError as exc:
        return handshake_error(exc)
    return None


def handshake_error(exc: Exception) -> str:
    if isinstance(exc, PeerRefused) and exc.peer_code == Code.UNKNOWN_STATION:
        return "waiting for the peer to pin our card"
    return str(exc)


# Each line's outbox, counted and dated through the outbox index: the board, the call page
# and every metrics scrape list the lines, and a line carries millions of envelopes a year.
_WAITING = outbox.waiting(lines.c.id)
_LINES = (
    select(
        lines,
        peers.c.fingerprint,
        peers.c.url,
        select(func.count()).where(*_WAITING).scalar_subquery().label("n"),
        # The head of the queue: the oldest envelope waiting (sequence order is time order).
        select(envelopes.c.time)
        .where(*_WAITING)
        .order_by(envelopes.c.seq)
        .limit(1)
        .scalar_subquery()
        .label("oldest"),
    )
    .join(peers, peers.c.name == lines.c.peer)
    .order_by(lines.c.peer)
)


def list_lines(station: Station) -> list[dict[str, Any]]:
    with station.db.read() as conn:
        rows = conn.execute(_LINES).all()
    return [
        {
            "id": r.id,
            "peer": r.peer,
            "state": r.state,
            "peer_url": r.url,
            "peer_fingerprint": r.fingerprint,
            "answer_deadline_s": r.answer_deadline_s,
            "notice_deadline_s": r.notice_deadline_s,
            "margins": margins_json(r),
            "proposed_terms": proposal_of(r),
            "proposed_at": rfc3339(r.proposed_at),
            "created_at": rfc3339(r.created_at),
            "activated_at": rfc3339(r.activated_at),
            "last_contact_at": rfc3339(r.last_contact_at),
            "outbox_depth": int(r.n or 0),
            "waiting_since": rfc3339(r.oldest),  # the oldest envelope not yet receipted
            "next_retry_at": rfc3339(r.retry_at),
            "last_error": r.last_error,
            "peer_clock": peer_clock.peer_clock_json(r),
            "suspended": None
            if r.state != SUSPENDED
            else {"at": rfc3339(r.suspended_at), "by": r.suspended_by, "reason": r.suspend_reason},
        }
        for r in rows
    ]
