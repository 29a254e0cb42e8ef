"""The ledger worker lets entries gather under load instead of integrating on every commit."""

from __future__ import annotations

import pytest

from openline.services import ledger
from openline.services.ledger_worker import GATHER_SECONDS, LedgerWorker
from tests.inproc import Node, place_and_ring


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _pending(node: Node) -> int:
    with node.station.db.read() as conn:
        return ledger.pending(conn)


def test_ledger_worker_integrates_at_most_once_per_gather(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    monotonic = Monotonic()
    worker = LedgerWorker(a.station, a.transport, clock=monotonic)
    place_and_ring(a, b)
    assert _pending(a) > 0
    worker.step()
    assert _pending(a) == 0

    place_and_ring(a, b, subject="Second call")  # commits wake the worker at once
    waiting = _pending(a)
    assert waiting > 0
    monotonic.now += GATHER_SECONDS / 5
    assert worker.step() == pytest.approx(GATHER_SECONDS * 4 / 5)
    assert _pending(a) == waiting  # nothing integrated: the entries gather

    monotonic.now += GATHER_SECONDS
    worker.step()
    assert _pending(a) == 0
