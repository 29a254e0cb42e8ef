"""Pipelined delivery: a batch the peer has answered is settled while the next one is sent.

Still one request in flight per line; the next batch starts after the one being settled;
settling never clears the id of a batch claimed after it; and a crash between the two
loses and repeats nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import structlog.testing
from sqlalchemy import func, select, update

from openline.adapters.schema import envelopes, lines
from openline.core.clock import MICROS, SystemClock
from openline.runtime import Workers
from openline.services import calls, delivery
from openline.services.delivery import Answer, Claimed, Outcome
from openline.services.lines import PENDING
from tests.harness import wait_for
from tests.inproc import Node, picked_up, send_unsettled, show


def _talking(a: Node, b: Node, count: int) -> tuple[str, list[str]]:
    """A picked-up call with `count` messages from a waiting in its outbox."""
    call_id = picked_up(a, b)
    a.drain()
    texts = [f"message {i:03d}" for i in range(count)]
    for text in texts:
        calls.say(a.station, "admin", call_id, text)
    return call_id, texts


def _undelivered(a: Node) -> int:
    with a.station.db.read() as conn:
        query = select(func.count()).where(envelopes.c.direction == "out", envelopes.c.delivered_at.is_(None))
        return int(conn.execute(query).scalar_one())


def _outage(a: Node, meanwhile: Callable[[], object] = lambda: None) -> None:
    """The peer goes down with a's batch in flight (it stays claimed, to be resent as it
    is), `meanwhile` runs, and the peer is back: no backoff left."""
    assert a.transport is not None
    a.transport.down = True
    assert delivery.deliver_once(a.station, a.transport, a.line_id(), force=True) is Outcome.FAILED
    assert a.line().batch_id is not None
    meanwhile()
    a.transport.down = False
    delivery.peer_contacted(a.station, "moscow")


def _recorded_claims(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What every claim the deliverer makes from now on returns, in order."""
    claims: list[object] = []
    real_claim = delivery._claim

    def recording_claim(*args: Any, **kwargs: Any) -> Any:
        step = real_claim(*args, **kwargs)
        claims.append(step)
        return step

    monkeypatch.setattr(delivery, "_claim", recording_claim)
    return claims


def test_the_next_batch_starts_after_the_one_being_settled(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id, texts = _talking(a, b, 120)
    first = send_unsettled(a)
    assert first.all_stored
    assert len(first.rows) == delivery.MAX_BATCH
    # The first batch is answered but not settled: its envelopes are still undelivered.
    second = send_unsettled(a, settling=first.settling)
    assert second.batch_id != first.batch_id
    assert [r.seq for r in second.rows] == [
        first.settling.last_seq + 1 + i for i in range(delivery.MAX_BATCH)
    ]
    assert a.line().batch_id == second.batch_id

    # Settling the first batch after the second was claimed leaves the second's id alone.
    assert delivery._settle(a.station, first) is Outcome.SENT
    assert a.line().batch_id == second.batch_id
    assert delivery._settle(a.station, second) is Outcome.SENT
    assert a.line().batch_id is None
    a.drain()
    assert _undelivered(a) == 0
    assert [m["text"] for m in show(b, call_id)["messages"]] == texts


def test_a_crash_before_the_previous_batch_is_settled_loses_and_repeats_nothing(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    call_id, texts = _talking(a, b, 120)
    first = send_unsettled(a)
    send_unsettled(a, settling=first.settling)
    # Crash: neither answer was settled. The restarted deliverer resends the batch in
    # flight, then the first batch's envelopes, which the peer answers as duplicates.
    assert _undelivered(a) == 120
    a.drain()
    assert _undelivered(a) == 0
    assert [m["text"] for m in show(b, call_id)["messages"]] == texts
    mine = show(a, call_id)["messages"]
    assert [m["text"] for m in mine] == texts
    assert all(m["receipt"] for m in mine)


def test_a_refused_batch_is_not_pipelined(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    _talking(a, b, 10)
    with b.station.tx() as tx:  # the peer answers, but refuses: its line is not active
        tx.conn.execute(lines.update().values(state=PENDING))
    step = send_unsettled(a)
    assert not step.all_stored
    assert delivery._settle(a.station, step) is Outcome.FAILED
    assert a.line().batch_id == step.batch_id  # kept, to retry the same batch
    assert "line_not_active" in (a.line().last_error or "")


@pytest.mark.parametrize("count", [237])
def test_the_deliverer_thread_pipelines_and_delivers_everything_once_in_order(
    nodes: tuple[Node, Node], count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    call_id, texts = _talking(a, b, count)
    # ("claim after", batch): the next batch claimed while `batch` is answered but unsettled;
    # ("settle", batch): its settling handed to another thread. Both on the deliverer thread.
    order: list[tuple[str, str]] = []
    full: list[str] = []  # the batches of MAX_BATCH envelopes: a backlog behind each
    real_claim = delivery._claim

    def spying_claim(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("settling") is not None:
            order.append(("claim after", kwargs["settling"].batch_id))
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(delivery, "_claim", spying_claim)
    assert a.transport is not None
    worker = delivery.Deliverer(a.station, a.transport)
    real_submit = worker._settlers.submit

    def spying_submit(fn: Any, station: Any, answer: Answer) -> Any:
        order.append(("settle", answer.batch_id))
        if len(answer.rows) == delivery.MAX_BATCH:
            full.append(answer.batch_id)
        return real_submit(fn, station, answer)

    monkeypatch.setattr(worker._settlers, "submit", spying_submit)
    worker.wake({a.line_id()})
    try:
        wait_for(lambda: _undelivered(a) == 0, timeout=60, what="the outbox to drain")
    finally:
        worker.stop()
    # Pipelined, and behind each full batch the next one claimed before the full one's
    # settling was handed over (the claim would otherwise wait behind its transaction).
    assert len(full) == count // delivery.MAX_BATCH
    assert [what for what, _ in order].count("settle") == -(-count // delivery.MAX_BATCH)
    assert all(order.index(("claim after", b)) < order.index(("settle", b)) for b in full)
    assert [m["text"] for m in show(b, call_id)["messages"]] == texts
    assert all(m["receipt"] for m in show(a, call_id)["messages"])
    assert a.line().batch_id is None
    assert a.line().last_error is None


def test_after_a_partial_batch_the_deliverer_sleeps_until_woken(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every enqueue wakes the deliverer, so behind a batch that took everything there was,
    claiming again could only come back empty: it is not tried (at a steady rate that
    empty claim was a write transaction per batch). A later message is still sent at once."""
    a, b = nodes
    call_id, texts = _talking(a, b, 3)
    claims = _recorded_claims(monkeypatch)
    assert a.transport is not None
    worker = delivery.Deliverer(a.station, a.transport)
    worker.wake({a.line_id()})
    try:
        wait_for(lambda: _undelivered(a) == 0, timeout=30, what="the three messages to be receipted")
        assert len(claims) == 1
        assert isinstance(claims[0], Claimed)
        assert len(claims[0].rows) == 3
        calls.say(a.station, "admin", call_id, "one more")
        worker.wake({a.line_id()})  # what the station does after every enqueue commits
        wait_for(lambda: _undelivered(a) == 0, timeout=30, what="the fourth message to be receipted")
    finally:
        worker.stop()
    assert [type(step) for step in claims] == [Claimed, Claimed]
    assert [m["text"] for m in show(b, call_id)["messages"]] == [*texts, "one more"]


def test_behind_a_batch_resent_after_an_outage_the_backlog_goes_at_once(
    nodes: tuple[Node, Node],
) -> None:
    """The batch in flight when the peer went down is resent as it was (one message); the
    messages enqueued during the outage wait behind it, so the deliverer goes on to them
    without waiting for a wake-up that came before it resent."""
    a, b = nodes
    call_id, texts = _talking(a, b, 1)
    later = [f"during the outage {i:02d}" for i in range(60)]

    def enqueue_later() -> None:
        for text in later:
            calls.say(a.station, "admin", call_id, text)

    _outage(a, enqueue_later)
    assert a.transport is not None
    worker = delivery.Deliverer(a.station, a.transport)
    worker.wake({a.line_id()})
    try:
        # Well within the idle poll (30 s): a deliverer that slept behind the resent batch
        # would not get there in time.
        wait_for(lambda: _undelivered(a) == 0, timeout=10, what="the backlog behind the resent batch")
    finally:
        worker.stop()
    assert [m["text"] for m in show(b, call_id)["messages"]] == [*texts, *later]


def test_a_resent_batch_whose_settling_failed_is_retried_on_its_backoff_not_the_idle_poll(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch resent after an outage reached the peer, but settling its answer failed
    (here: crashed). The failure was recorded with its backoff, yet the deliverer, finding
    nothing new to claim, slept the 30 s idle poll before trying again."""
    a, b = nodes
    call_id, texts = _talking(a, b, 1)
    _outage(a)
    assert a.transport is not None
    real_settle, settled = delivery._settle, []

    def settle_fails_once(station: Any, answer: Any) -> Any:
        settled.append(answer.batch_id)
        if len(settled) == 1:
            time.sleep(0.3)  # the deliverer has claimed again (nothing new) meanwhile
            raise RuntimeError("settling failed (test)")
        return real_settle(station, answer)

    monkeypatch.setattr(delivery, "_settle", settle_fails_once)
    # A backoff runs on the station's clock: here a real one, which moves by itself.
    monkeypatch.setattr(a.station, "clock", SystemClock())
    worker = delivery.Deliverer(a.station, a.transport)
    worker.wake({a.line_id()})
    try:
        wait_for(lambda: _undelivered(a) == 0, timeout=10, what="the batch, settled at its second try")
    finally:
        worker.stop()
    assert len(settled) == 2
    assert settled[0] == settled[1]  # the same batch, resent
    assert [m["text"] for m in show(b, call_id)["messages"]] == texts


def test_a_message_enqueued_behind_a_batch_claimed_ahead_goes_at_once(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a full batch the next one is claimed ahead. A message enqueued just after that
    claim is not in it, and its wake-up came before the deliverer went round again: it must
    not be lost, or the message would wait for the idle poll (30 s) behind the last partial
    batch."""
    a, b = nodes
    call_id, texts = _talking(a, b, delivery.MAX_BATCH + 20)
    assert a.transport is not None
    worker = delivery.Deliverer(a.station, a.transport)
    real_claim = delivery._claim
    claims: list[object] = []

    def claim_then_enqueue(*args: Any, **kwargs: Any) -> Any:
        step = real_claim(*args, **kwargs)
        claims.append(step)
        if len(claims) == 2:  # the batch claimed ahead, behind the full one
            calls.say(a.station, "admin", call_id, "just after the claim ahead")
            worker.wake({a.line_id()})  # what the station does after every enqueue commits
        return step

    monkeypatch.setattr(delivery, "_claim", claim_then_enqueue)
    worker.wake({a.line_id()})
    try:
        # Well within the idle poll: a lost wake-up would leave the last message there.
        wait_for(lambda: len(claims) >= 2 and _undelivered(a) == 0, timeout=10, what="every message")
    finally:
        worker.stop()
    assert [len(step.rows) for step in claims[:2] if isinstance(step, Claimed)] == [delivery.MAX_BATCH, 20]
    assert [m["text"] for m in show(b, call_id)["messages"]] == [*texts, "just after the claim ahead"]


def test_messages_queued_while_the_peer_is_down_leave_the_deliverer_asleep(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every message posted while the peer was down woke the line's deliverer, which read
    the line, found it still backing off and read it again to go back to sleep. Queued
    envelopes do not make a peer reachable: only what drops the backoff wakes it (here the
    peer contacting us), and then everything goes at once. Through the station's own
    workers, so the commit hook's routing of wake-ups is what is tested."""
    a, b = nodes
    call_id, texts = _talking(a, b, 1)
    assert a.transport is not None
    a.transport.down = True
    assert delivery.deliver_once(a.station, a.transport, a.line_id(), force=True) is Outcome.FAILED
    with a.station.db.write() as conn:  # an outage an hour old: the next retry is far off
        conn.execute(
            update(lines)
            .where(lines.c.id == a.line_id())
            .values(retry_attempt=12, retry_at=a.station.clock.now() + 60 * MICROS)
        )
    claims = _recorded_claims(monkeypatch)
    workers = Workers(a.station, a.transport)
    workers.start()
    try:
        wait_for(lambda: claims == [Outcome.WAITING], what="the deliverer to find the line backing off")
        # Into its sleep: it records the backoff just before it waits (a fixed 0.1 s here
        # was not always enough on a loaded machine).
        line_id = a.line_id()
        wait_for(lambda: line_id in workers.deliverer._backing_off, what="the deliverer asleep")
        later = [f"while the peer is down {i:02d}" for i in range(20)]
        for text in later:
            calls.say(a.station, "admin", call_id, text)
        time.sleep(0.5)
        assert claims == [Outcome.WAITING]  # not woken by any of the twenty
        a.transport.down = False
        delivery.peer_contacted(a.station, "moscow")
        # Well within the deliverer's sleep (30 s): the contact woke it.
        wait_for(lambda: _undelivered(a) == 0, timeout=10, what="everything, once the peer is back")
    finally:
        workers.stop()
    assert [m["text"] for m in show(b, call_id)["messages"]] == [*texts, *later]


def test_a_line_whose_deliverer_thread_ended_gets_a_new_one(nodes: tuple[Node, Node]) -> None:
    """Nothing but stop() should end a line's thread; a PostgreSQL restart once did (the
    read of when to retry, outside the step's guard, raised), and the line fell silent for
    good. Should one end anyway, the next wake-up starts another, and says so."""
    a, b = nodes
    call_id, texts = _talking(a, b, 1)
    assert a.transport is not None
    worker = delivery.Deliverer(a.station, a.transport)
    ended = threading.Thread(target=lambda: None)
    ended.start()
    ended.join()
    worker._threads[a.line_id()] = ended  # as a thread that died would be left
    worker._events[a.line_id()] = threading.Event()
    with structlog.testing.capture_logs() as logged:
        worker.wake({a.line_id()})
    try:
        wait_for(lambda: _undelivered(a) == 0, timeout=10, what="the message, by a new thread")
    finally:
        worker.stop()
    assert [m["text"] for m in show(b, call_id)["messages"]] == texts
    assert [e["event"] for e in logged if e["log_level"] == "error"] == [
        "deliverer thread had ended; starting it again"
    ]


def test_a_batch_two_processes_both_sent_is_settled_once(nodes: tuple[Node, Node]) -> None:
    """Two `serve` processes on one database: the second finds the first's batch in
    flight and sends it too (the peer answers it as a duplicate). Each settles its answer,
    and the receipts, the ledger and the call's events hold each delivery once."""
    from openline.runtime import build_station
    from openline.settings import load
    from tests.notice_docs import ledger_entries

    a, _ = nodes
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "Twice?", "priority": "flash"})
    call_id = r.json()["id"]
    other = build_station(load(a.home), clock=a.station.clock)
    try:
        assert a.transport is not None
        first = delivery._claim(a.station, a.transport, a.line_id())
        second = delivery._claim(other, a.transport, a.line_id())
        assert isinstance(first, Claimed)
        assert isinstance(second, Claimed)
        assert second.batch_id == first.batch_id
        answers = [delivery._post(a.transport, c, a.station.clock) for c in (first, second)]
        assert [x.results[0]["status"] for x in answers if isinstance(x, Answer)] == ["stored", "duplicate"]
        for station, answer in zip((a.station, other), answers, strict=True):
            assert delivery._finish(station, answer) is Outcome.SENT
    finally:
        other.db.dispose()
    assert [e["event"] for e in show(a, call_id)["events"]].count("delivered") == 1
    assert len(ledger_entries(a, "receipt.received")) == 1
