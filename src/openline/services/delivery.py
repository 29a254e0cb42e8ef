"""The outbox deliverer: per line, one batch of at most 50 envelopes in flight.

A batch keeps its id until every envelope in it has a valid receipt; retries resend the
same id (the receiver is idempotent by envelope id, like Matrix transactions). Failures
back off exponentially with jitter, capped (`openline.core.backoff`), and a peer that
contacts us resets the backoff at once. A pending line retries its handshake the same way.

`deliver_once` is the whole algorithm for one step and is driven directly by tests with
an injected clock; `Deliverer` runs it in one thread per line inside `openline serve`.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import bindparam, select, update

from openline import metrics
from openline.adapters.db import Outage, for_update
from openline.adapters.schema import envelopes, lines, peers
from openline.adapters.transport import SEND_PATH, PeerRefused, Transport
from openline.core import backoff
from openline.core.clock import MICROS, Clock, parse_rfc3339, round_trip
from openline.core.encoding import visible
from openline.core.envelope import Envelope, verify_receipt, verify_refusal
from openline.core.keys import signing_public_key
from openline.errors import Code, DatabaseUnavailable, EnvelopeRefused, OpenLineError
from openline.services import alerts, calls, ledger, notices, outbox, parallel, peer_clock, resync
from openline.services.lines import (
    ACTIVE,
    PENDING,
    drop_backoff,
    handshake_error,
    initiate_handshake,
    lock_line,
)
from openline.services.station import Station, Tx

MAX_BATCH = 50
IDLE_POLL_SECONDS = 30.0
log = structlog.get_logger("openline.delivery")


class Outcome(StrEnum):
    IDLE = "idle"  # nothing to send
    SENT = "sent"  # a batch went out and was fully receipted
    WAITING = "waiting"  # backing off until retry_at
    FAILED = "failed"  # this attempt failed; retry_at is set


def _fail(station: Station, line_id: str, error: str) -> Outcome:
    with station.tx() as tx:
        line = tx.conn.execute(select(lines.c.retry_attempt).where(lines.c.id == line_id)).one()
        attempt = int(line.retry_attempt) + 1
        retry_at = tx.now + round(backoff.delay(attempt) * MICROS)
        tx.conn.execute(
            update(lines)
            .where(lines.c.id == line_id)
            .values(retry_attempt=attempt, retry_at=retry_at, last_error=error[:1000])
        )
    metrics.DELIVERY_FAILURES.inc()
    log.info("delivery failed", line=line_id, attempt=attempt, error=error[:200])
    return Outcome.FAILED


# Statements built once: the deliverer runs them for every batch, and building a
# SQLAlchemy statement costs several times more than executing it.
_LINE = (
    select(lines, peers.c.url, peers.c.signing_key)
    .join(peers, peers.c.name == lines.c.peer)
    .where(lines.c.id == bindparam("b_line"))
)
_BATCH_OF_LINE = select(lines.c.batch_id).where(lines.c.id == bindparam("b_line"))
_PENDING = select(envelopes).where(*outbox.waiting(bindparam("b_line"))).order_by(envelopes.c.seq)
_PENDING_IN_BATCH = _PENDING.where(envelopes.c.batch_id == bindparam("b_batch"))
_PENDING_FIRST = _PENDING.limit(MAX_BATCH)
_PENDING_AFTER = _PENDING.where(envelopes.c.seq > bindparam("b_after")).limit(MAX_BATCH)
_CLAIM = (
    update(envelopes)
    .where(envelopes.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(batch_id=bindparam("b_batch"))
)
_SET_BATCH = update(lines).where(lines.c.id == bindparam("b_line")).values(batch_id=bindparam("b_batch"))
_END_BATCH = (
    update(lines)
    .where(lines.c.id == bindparam("b_line"), lines.c.batch_id == bindparam("b_batch"))
    .values(batch_id=None)
)
_CHECK = select(lines.c.peer, lines.c.state, lines.c.last_contact_at).where(lines.c.id == bindparam("b_line"))
_CONTACTED = update(lines).where(lines.c.id == bindparam("b_line")).values(last_contact_at=bindparam("b_at"))
_DELIVERED_TO = _CONTACTED.values(retry_attempt=0, retry_at=None, last_error=None)
# The same with what the batch's receipts proved of the peer's clock (peer_clock).
_MEASURED = {"peer_clock_low", "peer_clock_high", "peer_clock_at"}
_DELIVERED_MEASURED = _DELIVERED_TO.values(
    peer_clock_low=bindparam("b_low"), peer_clock_high=bindparam("b_high"), peer_clock_at=bindparam("b_at")
)
_STILL_WAITING = select(envelopes.c.id).where(
    envelopes.c.id.in_(bindparam("b_ids", expanding=True)), envelopes.c.delivered_at.is_(None)
)
_MARK_SETTLED = (
    update(envelopes).where(envelopes.c.id == bindparam("b_id")).values(delivered_at=bindparam("b_at"))
)
_MARK_DELIVERED = (
    update(envelopes)
    .where(envelopes.c.id == bindparam("b_id"))
    .values(delivered_at=bindparam("b_at"), receipt=bindparam("b_receipt"))
)


@dataclass(frozen=True)
class Settling:
    """A batch that the peer has answered and whose settling may still be running."""

    batch_id: str
    last_seq: int  # its newest envelope: the next batch starts after it


def _claim_batch(
    station: Station, line_id: str, settling: Settling | None
) -> tuple[str | None, list[Any], bool]:
    """The line's batch in flight (resent: True), or a new one of the oldest undelivered
    envelopes (False), which takes every one of them up to `MAX_BATCH`.

    While an answered batch is still being settled (`settling`), its envelopes are not yet
    marked delivered; the new batch starts after them.
    """
    with station.tx() as tx:
        batch_id = tx.conn.execute(for_update(tx.conn, _BATCH_OF_LINE), {"b_line": line_id}).one().batch_id
        if batch_id is not None and (settling is None or batch_id != settling.batch_id):
            rows = tx.conn.execute(_PENDING_IN_BATCH, {"b_line": line_id, "b_batch": batch_id}).all()
            if rows:
                return batch_id, list(rows), True
        if settling is None:
            rows = tx.conn.execute(_PENDING_FIRST, {"b_line": line_id}).all()
        else:
            rows = tx.conn.execute(_PENDING_AFTER, {"b_line": line_id, "b_after": settling.last_seq}).all()
        if not rows:
            if batch_id is not None and settling is None:  # an idle step writes nothing, so
                tx.conn.execute(_SET_BATCH, {"b_line": line_id, "b_batch": None})  # no fsync
            return None, [], False
        batch_id = outbox.new_id()
        tx.conn.execute(_SET_BATCH, {"b_line": line_id, "b_batch": batch_id})
        tx.conn.execute(_CLAIM, {"b_ids": [r.id for r in rows], "b_batch": batch_id})
        return batch_id, list(rows), False


@dataclass
class Answer:
    """A batch the peer answered, with a result per envelope, not yet settled."""

    line: Any
    batch_id: str
    rows: list[Any]
    sent: list[Envelope]
    results: list[dict[str, Any]]
    started: float
    sent_at: int  # our clock when the request left and when the answer came (peer_clock)
    answered_at: int

    @property
    def all_stored(self) -> bool:
        """Every envelope stored (or already stored) by the peer, or refused for good, by
        its word: the batch can be settled while the next one is sent. Its receipts and
        refusals are checked when settled."""
        return all(_final(r) for r in self.results)

    @property
    def settling(self) -> Settling:
        return Settling(self.batch_id, max(int(r.seq) for r in self.rows))


@dataclass(frozen=True)
class Unreached:
    line_id: str
    error: str


@dataclass(frozen=True)
class Claimed:
    """A batch claimed for its line and not yet sent."""

    line: Any
    batch_id: str
    rows: list[Any]
    resent: bool = False  # the batch already in flight, not a claim of what is pending


def _claim(
    station: Station,
    transport: Transport,
    line_id: str,
    *,
    force: bool = False,
    settling: Settling | None = None,
) -> Outcome | Claimed | Unreached:
    """Claim the next batch. Writes nothing but the claim, so it can run while the
    previous batch is being settled."""
    with station.db.read() as conn:
        line = conn.execute(_LINE, {"b_line": line_id}).one()
    if not force and line.retry_at is not None and station.clock.now() < line.retry_at:
        return Outcome.WAITING
    if line.state == PENDING:
        try:
            initiate_handshake(station, transport, line.peer)
        except OpenLineError as exc:
            return Unreached(line_id, handshake_error(exc))
        return Outcome.SENT
    if line.state != ACTIVE:
        return Outcome.IDLE
    batch_id, rows, resent = _claim_batch(station, line_id, settling)
    if batch_id is None:
        return Outcome.IDLE
    return Claimed(line, batch_id, rows, resent)


def _post(transport: Transport, claimed: Claimed, clock: Clock) -> Answer | Unreached:
    """Send a claimed batch and wait for the peer's answer. Writes nothing."""
    line, rows = claimed.line, claimed.rows
    wire = [json.loads(r.wire) for r in rows]
    started, sent_at = time.perf_counter(), clock.now()
    try:
        answer = transport.post(
            line.peer, line.url, SEND_PATH.format(batch_id=claimed.batch_id), {"envelopes": wire}
        )
        answered_at = clock.now()
        results = _results(answer, len(rows))
    except OpenLineError as exc:
        return Unreached(line.id, str(exc))
    sent = [Envelope(w["header"], w["body"], w["sig"]) for w in wire]
    return Answer(line, claimed.batch_id, rows, sent, results, started, sent_at, answered_at)


def _finish(station: Station, step: Outcome | Answer | Unreached) -> Outcome:
    if isinstance(step, Unreached):
        return _fail(station, step.line_id, step.error)
    if isinstance(step, Answer):
        return _settle(station, step)
    return step


def deliver_once(station: Station, transport: Transport, line_id: str, *, force: bool = False) -> Outcome:
    """One whole step: claim, send, settle (or back off). Tests drive this directly."""
    step = _claim(station, transport, line_id, force=force)
    return _finish(station, _post(transport, step, station.clock) if isinstance(step, Claimed) else step)


def _results(answer: Any, count: int) -> list[dict[str, Any]]:
    if (
        not isinstance(answer, dict)
        or not isinstance(answer.get("results"), list)
        or len(answer["results"]) != count
        or not all(isinstance(r, dict) for r in answer["results"])
    ):
        raise OpenLineError(f"peer answered the batch without {count} results")
    return list(answer["results"])


def _final(result: dict[str, Any]) -> bool:
    """The peer has taken the envelope's sequence number: stored it, or refused it for good
    with a signed refusal (`inbox._refuse`). Any other refusal leaves it waiting."""
    return result.get("status") in ("stored", "duplicate") or (
        result.get("status") == "refused" and "refusal" in result
    )


def _settle(station: Station, answer: Answer) -> Outcome:
    line, rows = answer.line, answer.rows
    peer_key = signing_public_key(line.signing_key)
    problems: list[str] = []
    receipted: list[tuple[Any, dict[str, Any]]] = []
    refusals: list[tuple[Any, dict[str, Any]]] = []  # refused for good, by a signed refusal
    stamped: list[int] = []  # when the peer stored what it stored now, by its clock

    # Receipts and refusals are checked before the transaction (the write lock is not held
    # for the crypto), on every core.
    def check(pair: tuple[Envelope, dict[str, Any]]) -> dict[str, str] | None:
        env, result = pair
        if result.get("status") in ("stored", "duplicate"):
            verify_receipt(result.get("receipt"), env, peer_key)
        elif _final(result):
            return verify_refusal(result["refusal"], env, peer_key)
        return None

    checks = parallel.map_in_order(check, list(zip(answer.sent, answer.results, strict=True)))
    for row, result, outcome in zip(rows, answer.results, checks, strict=True):
        if isinstance(outcome, EnvelopeRefused):
            problems.append(f"seq {row.seq}: bad {'receipt' if 'receipt' in result else 'refusal'}: "
                            f"{outcome.detail}")  # fmt: skip
            continue
        if isinstance(outcome, Exception):
            raise outcome
        if result.get("status") in ("stored", "duplicate"):
            receipted.append((row, result["receipt"]))
            if result["status"] == "stored":  # a duplicate's receipt is from an earlier try
                stamped.append(parse_rfc3339(result["receipt"]["stored_at"]))
        elif outcome is not None:
            refusals.append((row, result["refusal"]))
        else:
            error = result.get("error")
            if not isinstance(error, dict):
                error = {}
            text = f"{error.get('code', 'unknown')}: {error.get('detail', '')}"[:1000]
            problems.append(f"seq {row.seq} refused: {text}")
    with station.tx() as tx:
        lock_line(tx.conn, line.id)
        # Another `serve` process on the database may have sent the same batch and settled
        # it first: what it settled is logged once, by it.
        verified = sorted(row.id for row, _ in receipted + refusals)
        waiting = set(tx.conn.execute(_STILL_WAITING, {"b_ids": verified}).scalars()) if verified else set()
        # Sent again after the peer lost them (services/resync.py): each keeps the answer
        # the peer gave first, the one our ledger logged, and is only settled.
        again = [row for row, _ in receipted + refusals if row.id in waiting and row.receipt is not None]
        receipted = [(row, r) for row, r in receipted if row.id in waiting and row.receipt is None]
        refusals = [(row, r) for row, r in refusals if row.id in waiting and row.receipt is None]
        if again:
            tx.conn.execute(_MARK_SETTLED, [{"b_id": row.id, "b_at": tx.now} for row in again])
        if receipted:
            tx.conn.execute(
                _MARK_DELIVERED,
                [
                    {"b_id": row.id, "b_at": tx.now, "b_receipt": json.dumps(receipt, separators=(",", ":"))}
                    for row, receipt in receipted
                ],
            )
        for row, receipt in receipted:
            ledger.append(
                tx,
                "receipt.received",
                parse_rfc3339(receipt["stored_at"]),
                {
                    "envelope": row.id,
                    "line": line.id,
                    "peer": line.peer,
                    "receipt": ledger.digest(receipt),
                    "stored_at": receipt["stored_at"],
                },
                call_id=row.call_id if row.kind.startswith(ledger.INDEXED) else None,
            )
            calls.on_delivered(tx, row, receipt)
            notices.on_delivered(tx, row, receipt)
        if any(row.call_id for row, _ in receipted):
            tx.touched.add("calls")  # receipts show on the console
        for row, refusal in refusals:
            _refused_for_good(tx, line, row, refusal)
        clock: dict[str, Any] = {}  # the peer's clock, from one stamp: it stamps a batch at once
        if stamped:
            offset = round_trip(max(stamped), answer.sent_at, answer.answered_at)
            clock = peer_clock.observe(station, tx, line, offset, "receipts", write=False)
        if problems:
            tx.conn.execute(_CONTACTED, {"b_line": line.id, "b_at": tx.now})
        else:
            # The next batch may have been claimed already (pipelining): only our own
            # batch id is cleared.
            tx.conn.execute(_END_BATCH, {"b_line": line.id, "b_batch": answer.batch_id})
            if set(clock) == _MEASURED:  # the usual case: one statement for the line
                tx.conn.execute(
                    _DELIVERED_MEASURED,
                    {"b_line": line.id, "b_at": tx.now, "b_low": clock["peer_clock_low"],
                     "b_high": clock["peer_clock_high"]},
                )  # fmt: skip
                clock = {}
            else:
                tx.conn.execute(_DELIVERED_TO, {"b_line": line.id, "b_at": tx.now})
        if clock:
            tx.conn.execute(update(lines).where(lines.c.id == line.id).values(**clock))
    metrics.ENVELOPES_DELIVERED.inc(len(receipted))
    metrics.BATCH_SECONDS.observe(time.perf_counter() - answer.started)
    if problems:
        return _fail(station, line.id, "; ".join(problems))
    return Outcome.SENT


def _refused_for_good(tx: Tx, line: Any, row: Any, refusal: dict[str, Any]) -> None:
    """The peer took the envelope's turn but will not apply it: it leaves the outbox with
    the peer's signed refusal, logged, told to the call or notice it was about, and
    raised as an `envelope_refused` alert for our watch floor."""
    error = refusal["error"]
    text = visible(f"{error['code']}: {error['detail']}")  # the peer's words: NUL and ESC spelled out
    tx.conn.execute(
        update(envelopes)
        .where(envelopes.c.id == row.id)
        .values(delivered_at=tx.now, receipt=json.dumps(refusal, separators=(",", ":")), refused=text)
    )
    ledger.append(
        tx,
        "refusal.received",
        parse_rfc3339(refusal["stored_at"]),
        {
            "envelope": row.id,
            "line": line.id,
            "peer": line.peer,
            "refusal": ledger.digest(refusal),
            "stored_at": refusal["stored_at"],
            "code": error["code"],
        },
        call_id=row.call_id if row.kind.startswith(ledger.INDEXED) else None,
    )
    calls.on_refused(tx, row, refusal)
    notices.on_refused(tx, row, refusal)
    alerts.raise_alert(
        tx,
        alerts.ENVELOPE_REFUSED,
        row.id,
        {
            "peer": line.peer,
            "direction": "out",
            "envelope_kind": row.kind,
            "ref": row.call_id,
            "code": error["code"],
        },
    )
    log.warning(
        "envelope refused by the peer for good",
        peer=line.peer,
        envelope=row.id,
        seq=row.seq,
        kind=row.kind,
        code=error["code"],
        detail=error["detail"][:200],
    )


def peer_contacted(station: Station, peer: str) -> str | None:
    """The peer reached us, so it is up: drop any backoff and retry at once."""
    with station.db.read() as conn:
        line = conn.execute(select(lines.c.id, lines.c.retry_at).where(lines.c.peer == peer)).first()
    if line is None or line.retry_at is None:
        # No backoff to drop: the deliverer is idle with an empty outbox or already sending,
        # and every enqueue wakes it. Checking first spares each handshake a write.
        return None if line is None else str(line.id)
    with station.tx() as tx:
        line = tx.conn.execute(select(lines.c.id, lines.c.retry_at).where(lines.c.peer == peer)).first()
        if line is None:
            return None
        if line.retry_at is not None:
            drop_backoff(tx, line.id)
        tx.wake_lines.add(line.id)
    return str(line.id)


def announce(station: Station, transport: Transport, line_id: str, *, quiet: bool = False) -> bool:
    """Tell the peer of an active line that we are (back) up, by a signed handshake.

    A peer that backed off while we were down would otherwise wait up to the backoff
    cap before retrying; the handshake counts as contact and makes it retry at once. It
    carries our card too, so a peer learns our new address if we moved (services/moves.py).
    Returns whether that is done: the peer answered and holds our card (or the line is not
    active: its handshake, when it comes, carries our card). `quiet`: a retry, not logged.
    """
    with station.db.read() as conn:
        line = conn.execute(
            select(lines.c.peer, lines.c.state, lines.c.proposed_terms).where(lines.c.id == line_id)
        ).one()
    if line.state != ACTIVE:
        return True
    try:
        try:
            # With new terms we proposed, if any: the peer may have proposed them meanwhile.
            kept = initiate_handshake(station, transport, line.peer)
        except PeerRefused as exc:
            if exc.peer_code != Code.CONFLICT.value or line.proposed_terms is None:
                raise
            # not yet: the terms we hold
            kept = initiate_handshake(station, transport, line.peer, propose=False)
        # Then the two compare sequence numbers: a station restored from a backup is
        # behind what its peer holds, and the line would stop for good.
        resync.sync(station, transport, line.peer)
    except OpenLineError as exc:
        if not quiet:
            log.info("peer not reached at start; retrying", line=line_id, error=str(exc)[:200])
        return False
    return kept is None


def check_line(
    station: Station, transport: Transport, line_id: str, *, heard_at: int | None = None
) -> tuple[Outcome, float | None]:
    """The line's own test, like the hourly test of a teletype hotline: an active line we
    have not heard from for `station.line_check_s` gets a handshake. A failure is a
    delivery failure (`last_error`, backoff), which the auditor turns into `line_down`
    (services/line_health.py): a dead line is found before a call needs it.

    Returns the outcome and, when idle, the seconds until the next check is due (at most
    `IDLE_POLL_SECONDS`); after a failure, None (the backoff decides). `heard_at`: when
    the caller last had an answer from the peer; a check not due by it reads nothing
    (at a steady rate the line goes idle after every batch)."""
    now = station.clock.now()
    if heard_at is not None and heard_at + station.line_check_s * MICROS > now:
        return Outcome.IDLE, _until(heard_at + station.line_check_s * MICROS, now)
    with station.db.read() as conn:
        line = conn.execute(_CHECK, {"b_line": line_id}).one()
    if line.state != ACTIVE or line.last_contact_at is None:
        return Outcome.IDLE, IDLE_POLL_SECONDS
    due = int(line.last_contact_at) + station.line_check_s * MICROS
    if due > now:
        return Outcome.IDLE, _until(due, now)
    try:
        initiate_handshake(station, transport, line.peer, propose=False)
    except OpenLineError as exc:
        return _fail(station, line_id, f"line check: {handshake_error(exc)}"), None
    return Outcome.IDLE, min(IDLE_POLL_SECONDS, float(station.line_check_s))


def _until(due: int, now: int) -> float:
    return max(0.01, min(IDLE_POLL_SECONDS, (due - now) / MICROS))


@dataclass
class _Announcing:
    """A line's `announce`, retried by its thread, backing off, until it is done once.

    Retried when the thread wakes for its own work (a wake-up, a delivery retry, or the
    idle poll, at least every `IDLE_POLL_SECONDS`) and the backoff allows: a thread asleep
    through an outage is not woken for it."""

    station: Station
    transport: Transport
    line_id: str
    done: bool = False
    attempts: int = 0
    due: float = 0.0  # monotonic seconds

    def attempt(self, outage: Outage) -> None:
        if self.done or time.monotonic() < self.due:
            return
        try:
            self.done = announce(self.station, self.transport, self.line_id, quiet=self.attempts > 0)
        except Exception as exc:  # the line delivers all the same
            if not outage.absorbs(exc):
                log.exception("announcing ourselves to the peer crashed", line=self.line_id)
        if not self.done:
            self.attempts += 1
            self.due = time.monotonic() + backoff.delay(self.attempts)


@dataclass
class Deliverer:
    """One thread per line running `deliver_once` whenever there is work."""

    station: Station
    transport: Transport
    _events: dict[str, threading.Event] = field(default_factory=dict)
    _threads: dict[str, threading.Thread] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Lines whose thread sleeps out a backoff, and until when (monotonic seconds).
    _backing_off: dict[str, float] = field(default_factory=dict)
    _settlers: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="settle")
    )

    def start(self) -> None:
        with self.station.db.read() as conn:
            ids = [r.id for r in conn.execute(select(lines.c.id)).all()]
        self.wake(set(ids))

    def wake(self, line_ids: set[str], *, queued: bool = False) -> None:
        """Have each line's thread look at its line now.

        `queued`: only because envelopes were queued. A line sleeping out a backoff is left
        asleep then: new envelopes do not make an unreachable peer reachable, and waking
        it cost two reads for every message posted while the peer was down. Whatever drops
        a backoff (the peer contacting us, a handshake) wakes it without `queued`."""
        with self._lock:
            if self._stop.is_set():
                return
            now = time.monotonic()
            for line_id in line_ids:
                if queued and self._backing_off.get(line_id, 0.0) > now:
                    continue
                if line_id in self._threads and not self._threads[line_id].is_alive():
                    # Nothing should end a line's thread but stop(); if something did, the
                    # line would fall silent for good, so say so and start another.
                    log.error("deliverer thread had ended; starting it again", line=line_id)
                    del self._threads[line_id]
                if line_id in self._threads:
                    self._events[line_id].set()
                    continue
                # A new thread looks at its line first thing, and clears its event before
                # it does: set it here, after the thread had started, and that first look
                # could be followed at once by a second one for nothing.
                self._events[line_id] = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(line_id,), name=f"deliver-{line_id[:8]}", daemon=True
                )
                self._threads[line_id] = thread
                thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        with self._lock:
            self._stop.set()
            for ev in self._events.values():
                ev.set()
        for thread in list(self._threads.values()):
            thread.join(timeout)
        self._settlers.shutdown(wait=True)

    def _run(self, line_id: str) -> None:
        event = self._events[line_id]
        outage = Outage(f"deliverer of line {line_id}")
        # Announcing ourselves is retried until the peer holds our card: if we moved, a peer
        # that was down when we started knows only our old address, and whatever it has
        # for us waits until it learns the new one from us.
        announcing = _Announcing(self.station, self.transport, line_id)
        # Pipelining: once the peer has answered a batch and stored every envelope, it is
        # settled on another thread while the next one is claimed and sent. Still one
        # request in flight per line; the previous settling always ends before this thread
        # writes anything else for the line. Behind a full batch (a backlog), the next one
        # is claimed before the settling starts: the claim is a short write that would
        # otherwise wait behind the settling transaction's commit.
        settling: tuple[Future[Outcome], Settling] | None = None
        ahead: Claimed | None = None
        heard_at: int | None = None  # the peer's last answer to a batch (station clock)
        while not self._stop.is_set():
            announcing.attempt(outage)
            # Cleared before a claim reads the outbox, so that a wake-up for anything it
            # misses is still set afterwards. A batch claimed ahead read it before this
            # point: a wake-up since then stays set, and sends what came after it.
            if ahead is None:
                event.clear()
            try:
                claimed = ahead or _claim(
                    self.station, self.transport, line_id, settling=settling and settling[1]
                )
                ahead = None
                step = (
                    _post(self.transport, claimed, self.station.clock)
                    if isinstance(claimed, Claimed)
                    else claimed
                )
                if isinstance(step, Answer):
                    heard_at = self.station.clock.now()
                previous = self._join(settling, line_id)
                settling = None
                if isinstance(step, Answer) and step.all_stored and previous is not Outcome.FAILED:
                    # Only a full batch means a backlog. Claiming at once after a partial
                    # one would send smaller batches, and more write transactions, at a
                    # steady rate (p50 at 100/s from 17 to 35 ms when it did).
                    following = (
                        _claim(self.station, self.transport, line_id, settling=step.settling)
                        if len(step.rows) == MAX_BATCH
                        else None
                    )
                    settling = (self._settlers.submit(_settle, self.station, step), step.settling)
                    # Anything but a claimed batch is looked at again once the event is
                    # cleared, so that no wake-up between the two is lost.
                    ahead = following if isinstance(following, Claimed) else None
                    took_all = following is Outcome.IDLE or (
                        following is None and isinstance(claimed, Claimed) and not claimed.resent
                    )
                    if ahead is not None or not took_all or event.is_set():
                        continue
                    # The last claim took everything pending (a fresh claim of fewer than
                    # MAX_BATCH, or an empty one behind a full batch; not a batch resent
                    # after an outage, with a backlog behind it), and nothing was enqueued
                    # since (every enqueue sets the event): claiming again would find
                    # nothing. At a steady rate that empty claim was a write transaction
                    # per batch, taking the write lock from the API. Settle, then sleep
                    # until woken, as when idle.
                    settled = self._join(settling, line_id)
                    settling = None
                    outcome = Outcome.FAILED if settled is Outcome.FAILED else Outcome.IDLE
                else:
                    outcome = _finish(self.station, step)
                    if previous is Outcome.FAILED and outcome is Outcome.IDLE:
                        # Nothing new to claim, but the batch before failed to settle: it
                        # is resent on its recorded backoff, not after the idle poll.
                        outcome = Outcome.FAILED
                idle_wait: float | None = None
                if outcome is Outcome.IDLE:  # nothing to send: is the line still there?
                    outcome, idle_wait = check_line(self.station, self.transport, line_id, heard_at=heard_at)
                outage.ended()
            except Exception as exc:  # never let the line go silent: log, back off, go on
                if not outage.absorbs(exc):
                    log.exception("deliverer step crashed", line=line_id)
                    self._record_crash(line_id, "sending", exc)
                self._join(settling, line_id)
                settling, ahead, outcome, idle_wait = None, None, Outcome.FAILED, None
            if outcome is Outcome.SENT:
                continue
            try:
                wait = idle_wait if idle_wait is not None else self._wait_seconds(line_id, outcome)
            except Exception as exc:
                if not outage.absorbs(exc):
                    log.exception("reading when to retry crashed", line=line_id)
                wait = backoff.BASE_SECONDS
            if outcome in (Outcome.WAITING, Outcome.FAILED):
                self._backing_off[line_id] = time.monotonic() + wait
            event.wait(wait)
            self._backing_off.pop(line_id, None)
        self._join(settling, line_id)

    def _join(self, settling: tuple[Future[Outcome], Settling] | None, line_id: str) -> Outcome | None:
        if settling is None:
            return None
        try:
            return settling[0].result()
        except DatabaseUnavailable as exc:  # the batch is resent, and the peer keeps it once
            log.warning("settling a batch failed: database unavailable", line=line_id, reason=exc.reason)
            return Outcome.FAILED
        except Exception as exc:
            log.exception("settling a batch crashed", line=line_id)
            self._record_crash(line_id, "settling the peer's answer", exc)
            return Outcome.FAILED

    def _record_crash(self, line_id: str, doing: str, exc: Exception) -> None:
        """A step that failed in an unexpected way is a failed delivery like any other: the
        line backs off and says why (`openline lines`), rather than retrying at the base
        delay with nothing recorded."""
        try:
            _fail(self.station, line_id, f"internal error while {doing}: {type(exc).__name__}; see the log")
        except Exception:  # the database itself may be what failed; the log has it
            log.warning("could not record the failure", line=line_id)

    def _wait_seconds(self, line_id: str, outcome: Outcome) -> float:
        if outcome is Outcome.IDLE:
            return IDLE_POLL_SECONDS
        with self.station.db.read() as conn:
            retry_at = conn.execute(select(lines.c.retry_at).where(lines.c.id == line_id)).one()[0]
        if retry_at is None:
            return backoff.BASE_SECONDS
        return max(0.0, min(IDLE_POLL_SECONDS, (int(retry_at) - self.station.clock.now()) / MICROS))
