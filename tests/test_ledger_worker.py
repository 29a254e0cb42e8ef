"""The ledger worker lets entries gather under load instead of integrating on every commit,
a commit wakes it only when it would otherwise sleep past the gather, and a growing log is
signed at once, then at most once per checkpoint interval."""

from __future__ import annotations

import math
import time

import pytest

from openline.services import ledger
from openline.services.ledger_worker import CHECKPOINT_EVERY_SECONDS, GATHER_SECONDS, LedgerWorker
from openline.services.station import Station
from openline.services.timers import Loop
from tests.harness import wait_for
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


def _signed_size(node: Node) -> int:
    with node.station.db.read() as conn:
        checkpoint = ledger.latest_checkpoint(conn)
    return 0 if checkpoint is None else checkpoint.size


def test_a_growing_log_is_signed_at_once_then_once_per_interval(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    monotonic = Monotonic()
    worker = LedgerWorker(a.station, a.transport, clock=monotonic)
    place_and_ring(a, b)
    worker.step()
    first = _signed_size(a)
    assert first > 0  # the first growth is signed at once

    place_and_ring(a, b, subject="Second call")
    monotonic.now += 1.0  # past the gather, within the interval
    wait = worker.step()
    assert _pending(a) == 0  # sequenced ...
    assert _signed_size(a) == first  # ... and not signed yet
    assert wait == pytest.approx(CHECKPOINT_EVERY_SECONDS - 1.0)  # until the interval ends

    monotonic.now += wait
    worker.step()
    assert _signed_size(a) > first


class Stepping(Loop):
    """A loop that counts its steps and sleeps what it is told to."""

    def __init__(self, station: Station, sleeps: list[float]) -> None:
        super().__init__(station)
        self.sleeps = sleeps
        self.steps = 0

    def step(self) -> float:
        self.steps += 1
        return self.sleeps.pop(0) if self.sleeps else 60.0

    def asleep_after(self, steps: int) -> bool:
        return self.steps == steps and self._sleeps_until != math.inf


def test_a_commit_wakes_the_worker_only_if_it_would_sleep_past_the_gather(
    nodes: tuple[Node, Node],
) -> None:
    """Every commit that appends entries asks for the worker within GATHER_SECONDS. Waking it
    when it is already due that soon changed nothing and cost two thread switches and the
    GIL, on every commit under load."""
    a, _ = nodes
    loop = Stepping(a.station, [60.0, 5.0])
    loop.start()
    try:
        wait_for(lambda: loop.asleep_after(1), what="the first step")  # asleep for a minute
        loop.wake_within(GATHER_SECONDS)
        wait_for(lambda: loop.asleep_after(2), what="the step a commit asked for")  # now for 5 s
        loop.wake_within(10.0)  # due sooner than that anyway: left asleep
        time.sleep(0.3)
        assert loop.steps == 2
        loop.wake_within(1.0)
        wait_for(lambda: loop.asleep_after(3), what="the step asked for within a second")
        loop.wake()  # a plain wake-up always steps
        wait_for(lambda: loop.asleep_after(4), what="the step woken at once")
    finally:
        loop.stop()
