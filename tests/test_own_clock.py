"""This station's clock set while it runs (a VM restored from a snapshot, NTP stepping a
clock that was far off): every pending timer keeps the time it had left, so a call that
rings is neither missed a few seconds in nor left ringing an hour past its deadline, and
a `clock_stepped` alert tells the floor (docs/watch.md, "This station's clock")."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from openline.adapters.schema import calls, ledger_peers
from openline.core.clock import MICROS, FakeClock, StepWatch
from openline.services.timers import TimerLoop
from tests.inproc import Node, place_and_ring

HOUR = 3600


class Clocks:
    """A system's wall clock and its boot-time clock, moved by the test."""

    def __init__(self) -> None:
        self.wall = 1_767_225_600 * 10**9
        self.boot = 5 * 10**9

    def run(self, seconds: float) -> None:
        self.wall += round(seconds * 1e9)
        self.boot += round(seconds * 1e9)

    def set(self, seconds: float) -> None:
        self.wall += round(seconds * 1e9)

    def watch(self) -> StepWatch:
        return StepWatch(lambda: self.wall, lambda: self.boot)


def test_a_clock_that_runs_slews_or_sleeps_is_not_set() -> None:
    clocks = Clocks()
    watch = clocks.watch()
    assert watch.step() == 0  # the first look only takes the measure
    for _ in range(100):  # NTP slewing at its fastest, 0.5 ms a second, for 100 s
        clocks.run(1)
        clocks.wall += 500_000
        assert watch.step() == 0
    clocks.run(8 * HOUR)  # a suspended laptop: both clocks ran on
    assert watch.step() == 0
    clocks.set(1.9)
    assert watch.step() == 0  # under the 2 s that count


@pytest.mark.parametrize("seconds", [2 * HOUR, -HOUR, 2.5])
def test_a_clock_set_is_told_once_by_how_much(seconds: float) -> None:
    clocks = Clocks()
    watch = clocks.watch()
    watch.step()
    clocks.run(1)
    clocks.set(seconds)
    assert watch.step() == round(seconds * MICROS)
    clocks.run(1)
    assert watch.step() == 0


def _state(node: Node, call_id: str) -> Any:
    with node.station.db.read() as conn:
        return conn.execute(select(calls.c.state, calls.c.deadline_at).where(calls.c.id == call_id)).one()


def _alerts(node: Node) -> list[dict[str, Any]]:
    return [a for a in node.api.get("/api/v1/alerts").json() if a["kind"] == "clock_stepped"]


@pytest.mark.parametrize("seconds", [2 * HOUR, -HOUR])
def test_a_ringing_call_keeps_the_time_it_had_left_when_the_clock_is_set(
    nodes: tuple[Node, Node], clock: FakeClock, seconds: int
) -> None:
    a, b = nodes
    clocks = Clocks()
    loop = TimerLoop(b.station, clocks.watch())
    loop.step()
    call_id = place_and_ring(a, b)
    rang = _state(b, call_id)
    assert rang.state == "ringing"
    clock.advance(20)
    clocks.run(20)
    loop.step()
    clock.advance(seconds)  # the station's clock is the system's: both are set
    clocks.set(seconds)
    loop.step()
    moved = _state(b, call_id)
    assert moved.state == "ringing"  # not missed 20 s into its minute
    assert moved.deadline_at == rang.deadline_at + seconds * MICROS
    (alert,) = _alerts(b)
    assert alert["detail"]["step_s"] == seconds
    assert alert["detail"]["ringing_calls"] == 1
    assert alert["paging"] is not None  # someone is told
    clock.advance(39)
    clocks.run(39)
    loop.step()
    assert _state(b, call_id).state == "ringing"
    clock.advance(2)  # 61 s of ringing in all: missed, on time
    clocks.run(2)
    loop.step()
    assert _state(b, call_id).state == "missed"


def test_what_is_recorded_does_not_move(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    """A missed call's deadline is history, and the caller holds it too."""
    a, b = nodes
    call_id = place_and_ring(a, b)
    clock.advance(61)
    b.expire()
    missed = _state(b, call_id)
    assert missed.state == "missed"
    clocks = Clocks()
    loop = TimerLoop(b.station, clocks.watch())
    loop.step()
    clock.advance(HOUR)
    clocks.set(HOUR)
    loop.step()
    assert _state(b, call_id) == missed
    (alert,) = _alerts(b)
    assert alert["detail"]["ringing_calls"] == 0


def test_without_the_system_clock_nothing_is_watched(nodes: tuple[Node, Node]) -> None:
    """Tests drive stations on a fake clock: the real one being set means nothing to them."""
    from openline.runtime import Workers

    _, b = nodes
    workers = Workers(b.station, b.transport)  # type: ignore[arg-type]
    assert workers.timers._steps is None


def test_the_ledgers_retry_towards_a_peer_moves_with_the_clock(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """A peer that did not cosign is asked again at `next_attempt_at`: set an hour back, the
    clock left it an hour away, and the checkpoints went uncosigned for that hour."""
    _, b = nodes
    due = clock.now() + 60 * MICROS
    with b.station.tx() as tx:
        tx.conn.execute(update(ledger_peers).values(next_attempt_at=due))
    clocks = Clocks()
    loop = TimerLoop(b.station, clocks.watch())
    loop.step()
    clock.advance(-HOUR)
    clocks.set(-HOUR)
    loop.step()
    with b.station.db.read() as conn:
        moved = conn.execute(select(ledger_peers.c.next_attempt_at)).scalar_one()
    assert moved == due - HOUR * MICROS
