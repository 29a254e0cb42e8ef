"""A peer that is down for an hour loses nothing; backoff is capped; contact resets it."""

from __future__ import annotations

import copy
from typing import Any

from openline.core import backoff
from openline.core.clock import MICROS, FakeClock, rfc3339
from openline.services import delivery, lines
from openline.services.delivery import Outcome
from openline.services.outbox import new_id
from tests.inproc import Node, picked_up, place_and_ring, show
from tests.test_inbox_refusals import pending_wire, post_signed, refused_code, resign


def test_peer_down_for_an_hour_then_back_gets_everything(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    assert a.transport is not None
    a.transport.down = True

    texts = [f"message {i:03d}" for i in range(120)]
    start = clock.now()
    sent = 0
    waits: list[float] = []
    # An hour of outage, messages trickling in; the deliverer keeps trying.
    while clock.now() - start < 3600 * MICROS:
        if sent < len(texts):
            r = a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": texts[sent]})
            assert r.status_code == 201
            sent += 1
        outcome = a.deliver()
        assert outcome in (Outcome.FAILED, Outcome.WAITING)
        line = a.line()
        if outcome is Outcome.FAILED:
            waits.append((line.retry_at - clock.now()) / MICROS)
        assert line.last_error
        assert "connection refused" in line.last_error
        clock.advance(5)
    assert sent == len(texts)
    assert waits
    assert max(waits) <= backoff.CAP_SECONDS
    assert len(waits) >= 3600 / backoff.CAP_SECONDS  # it never stopped trying
    assert a.api.get("/api/v1/lines").json()[0]["outbox_depth"] == len(texts)

    a.transport.down = False
    clock.advance(backoff.CAP_SECONDS)
    a.drain()
    shown = show(b, call_id)
    assert [m["text"] for m in shown["messages"]] == texts
    assert all(m["receipt"] for m in show(a, call_id)["messages"])
    lines = a.api.get("/api/v1/lines").json()
    assert lines[0]["outbox_depth"] == 0
    assert lines[0]["last_error"] is None


def test_contact_from_the_peer_retries_at_once(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    first = place_and_ring(a, b)
    assert a.transport is not None
    a.transport.down = True
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "second call"})
    second = r.json()["id"]
    for _ in range(8):  # back off well into the tens of seconds
        a.deliver(force=True)
    assert (a.line().retry_at - clock.now()) / MICROS > 10
    assert a.deliver() is Outcome.WAITING
    a.transport.down = False
    assert b.api.post(f"/api/v1/calls/{first}/pickup").status_code == 200
    b.drain()  # moscow reaches stuttgart: stuttgart drops its backoff at once
    assert a.line().retry_at is None
    assert a.deliver() is Outcome.SENT
    assert show(b, second)["state"] == "ringing"


def test_batches_hold_at_most_fifty_envelopes(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    for i in range(120):
        a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": f"m{i}"})
    assert a.transport is not None
    before = a.transport.attempts
    a.drain()
    assert a.transport.attempts - before == 3  # 50 + 50 + 20
    assert len(show(b, call_id)["messages"]) == 120


def test_a_station_that_comes_back_makes_its_peer_retry_at_once(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    assert a.transport is not None
    assert b.transport is not None
    a.transport.down = True  # moscow is down: stuttgart backs off
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "while you were away"})
    for _ in range(8):
        a.deliver(force=True)
    assert (a.line().retry_at - clock.now()) / MICROS > 10
    a.transport.down = False
    # moscow restarts; its deliverer announces itself before anything else.
    assert delivery.announce(b.station, b.transport, b.line_id())
    assert a.line().retry_at is None
    assert a.deliver() is Outcome.SENT
    assert show(b, r.json()["id"])["state"] == "ringing"


def test_a_batch_from_the_peer_makes_us_retry_at_once(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    """Not only the handshake: any batch the peer sends us proves it is up (the inbox drops
    our backoff in the transaction that stores the batch)."""
    a, b = nodes
    call_id = place_and_ring(a, b)
    assert a.transport is not None
    a.transport.down = True  # stuttgart cannot reach moscow: it backs off
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "while you were away"})
    for _ in range(8):
        a.deliver(force=True)
    assert (a.line().retry_at - clock.now()) / MICROS > 10
    assert a.line().retry_attempt == 8
    a.transport.down = False
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    b.drain()  # moscow's batch reaches stuttgart
    assert show(a, call_id)["state"] == "picked_up"
    assert a.line().retry_at is None
    assert a.line().retry_attempt == 0
    assert a.deliver() is Outcome.SENT
    assert show(b, r.json()["id"])["state"] == "ringing"


def test_a_batch_we_refuse_whole_does_not_make_us_retry_at_once(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """A peer whose every envelope we refuse is up but its line is broken (a station
    restored from an old backup reuses sequence numbers): dropping our backoff for it made
    two such stations answer each refusal with an immediate retry, twenty times a second,
    for ever."""
    a, b = nodes
    call_id = place_and_ring(a, b)
    assert a.transport is not None
    a.transport.down = True  # stuttgart backs off
    a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "while you were away"})
    for _ in range(8):
        a.deliver(force=True)
    backed_off = a.line()
    assert backed_off.retry_at is not None
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    (env,) = pending_wire(b)
    replay = copy.deepcopy(env)  # validly signed, but under a sequence number already used
    replay["header"]["id"] = new_id()
    replay["header"]["seq"] = 1
    replay["sig"] = resign(b, replay["header"])
    assert refused_code(post_signed(b, a, {"envelopes": [replay]})) == "replay"
    assert (a.line().retry_at, a.line().retry_attempt) == (backed_off.retry_at, backed_off.retry_attempt)
    assert a.deliver() is Outcome.WAITING
    # The same batch with the envelope it should hold is stored: the line works, retry now.
    assert post_signed(b, a, {"envelopes": [env]}).json()["results"][0]["status"] == "stored"
    assert a.line().retry_at is None


def test_announce_reports_an_unreachable_peer_and_changes_nothing(nodes: tuple[Node, Node]) -> None:
    _a, b = nodes
    assert b.transport is not None
    b.transport.down = True
    before = b.snapshot()
    assert not delivery.announce(b.station, b.transport, b.line_id())
    assert b.snapshot() == before


def test_the_outbox_is_what_waits_and_since_when(
    nodes: tuple[Node, Node], clock: FakeClock, backend: str
) -> None:
    """`lines` counts the envelopes not yet receipted and dates the oldest, whatever the
    line has carried before; on SQLite the listing reaches them through the outbox index
    alone, so that it costs what waits and not the line's whole history (the board, the
    call page and every metrics scrape list the lines)."""
    a, b = nodes
    call_id = picked_up(a, b)
    for i in range(3):  # history, delivered
        assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": f"early {i}"}).status_code == 201
    a.drain()
    assert a.transport is not None
    a.transport.down = True
    clock.advance(60)
    first_waiting = clock.now()
    for i in range(2):
        assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": f"late {i}"}).status_code == 201
        clock.advance(30)
    [line] = a.api.get("/api/v1/lines").json()
    assert (line["outbox_depth"], line["waiting_since"]) == (2, rfc3339(first_waiting))
    [line] = b.api.get("/api/v1/lines").json()  # what came in is not an outbox
    assert (line["outbox_depth"], line["waiting_since"]) == (0, None)
    if backend == "sqlite":
        with a.station.db.read() as conn:
            plan = " | ".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {_sql(conn, lines._LINES)}")
            )
        assert "SCAN envelopes" not in plan, plan
        assert "SEARCH envelopes USING COVERING INDEX ix_envelopes_outbox" in plan, plan


def _sql(conn: Any, statement: Any) -> str:
    return str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
