"""A proof's times are each station's own clock. When the peer's signed answers are
stamped before we sent what they answer, `verify` says by how much the peer's clock was
behind ours, so that a story whose steps seem out of order (a pick-up before the call
was placed) reads as two clocks, not as tampering. With clocks together it says nothing."""

from __future__ import annotations

import json

import pytest

from openline.core.clock import FakeClock
from openline.core.evidence import verify_proof
from tests.inproc import Node, picked_up, settle_ledgers
from tests.notice_docs import send, soon

BEHIND_S = 300


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
