"""A proof's times are each station's own clock. When the peer's signed answers are
stamped before we sent what they answer, `verify` says by how much the peer's clock was
behind ours, so that a story whose steps seem out of order (a pick-up before the call
was placed) reads as two clocks, not as tampering. With clocks together it says nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from openline.adapters.schema import lines
from openline.core.clock import FakeClock, rfc3339
from openline.core.evidence import verify_proof
from tests.inproc import Node, picked_up, place_and_ring, settle_ledgers
from tests.notice_docs import send, soon, square

BEHIND_S = 300
HOUR_US = 3_600_000_000


@pytest.mark.parametrize("behind", [0, BEHIND_S])
def test_verify_says_when_the_peers_clock_was_behind(
    nodes: tuple[Node, Node], clock: FakeClock, behind: int
) -> None:
    a, b = nodes
    b.station.clock = FakeClock(clock.now() - behind * 1_000_000)  # moscow's clock, behind
    call_id = picked_up(a, b)
    notice = send(a, "moscow", soon(a, 48.78, 9.18))
    a.drain()
    b.drain()
    a.drain()
    settle_ledgers(a, b)
    for path in (f"/api/v1/ledger/calls/{call_id}/proof", f"/api/v1/ledger/notices/{notice['id']}/proof"):
        result = verify_proof(json.dumps(a.api.get(path).json()))
        assert result.ok, [str(f) for f in result.failures]
        said = [n for n in result.notes if n.startswith("times are each station's own clock")]
        if behind:
            assert said == [
                "times are each station's own clock: a signed answer of moscow's is stamped 300.0 s "
                "before stuttgart sent the envelope it answers, so moscow's clock read at least 300.0 s "
                "behind stuttgart's; times from the two stations are not in order with each other"
            ]
        else:
            assert said == []


@pytest.mark.parametrize(("behind_h", "refused"), [(48, True), (1, False)])
def test_a_notice_beyond_a_peer_clocks_horizon_is_refused_before_it_is_sent(
    nodes: tuple[Node, Node], behind_h: int, refused: bool
) -> None:
    """The peer refuses for good a start beyond 31 days on its own clock. Its clock proved
    two days behind ours, a start 29.5 days ahead on ours is beyond its horizon: said to
    the officer sending it, not found out from the peer's refusal."""
    a, _ = nodes
    with a.station.tx() as tx:
        low, high = -behind_h * HOUR_US - 10**6, -behind_h * HOUR_US
        tx.conn.execute(update(lines).values(peer_clock_low=low, peer_clock_high=high))
    now = a.station.clock.now()
    start, end = now + int(29.5 * 24) * HOUR_US, now + int(29.6 * 24) * HOUR_US
    doc = square(48.7, 9.1, rfc3339(start) or "", rfc3339(end) or "")
    before = a.snapshot()
    r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": doc})
    if refused:
        assert r.status_code == 422, r.text
        said = "beyond the planning horizon of moscow's clock, which is at least 48.0 h behind ours"
        assert said in r.json()["detail"]
        assert a.snapshot() == before
    else:
        assert r.status_code == 201, r.text


def test_verify_says_when_entries_are_stamped_out_of_log_order(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """moscow's clock was set back an hour while the call rang there: its pick-up is
    stamped an hour before its ring, though logged after it. No receipt shows that (they
    were stamped before the clock was set); the log's own order does."""
    a, b = nodes
    call_id = place_and_ring(a, b)
    a.drain()  # the ring reaches stuttgart
    b.station.clock = FakeClock(clock.now() - 3600 * 1_000_000 + 10 * 1_000_000)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    b.drain()
    settle_ledgers(a, b)
    result = verify_proof(json.dumps(a.api.get(f"/api/v1/ledger/calls/{call_id}/proof").json()))
    assert result.ok, [str(f) for f in result.failures]
    (note,) = [n for n in result.notes if n.startswith("times are not in log order")]
    assert "(call.picked_up) was logged after entry" in note
    assert "yet is stamped 3590.0 s before it" in note
