"""kill -9 in the middle of a burst: every message arrives exactly once, in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import StationProcess, connect, start_all, stop_all, wait_for

pytestmark = pytest.mark.e2e
BURST = 1000


@pytest.fixture
def talking(
    tmp_path: Path, database_url: str | None, second_database_url: str | None
) -> Iterator[tuple[StationProcess, StationProcess, str]]:
    """Two stations with a picked-up call between them."""
    a = StationProcess.create(tmp_path, "stuttgart", database_url)
    b = StationProcess.create(tmp_path, "moscow", second_database_url)
    try:
        start_all(a, b)
        connect(a, b)
        call_id = a.cli_json("call", "moscow", "--subject", "burst")["id"]
        wait_for(lambda: b.call_state(call_id) == "ringing", what="ringing")
        b.cli("pickup", call_id)
        wait_for(lambda: a.call_state(call_id) == "picked_up", what="picked up")
        yield a, b, call_id
    finally:
        stop_all(a, b)


def _messages(s: StationProcess, call_id: str) -> list[dict[str, object]]:
    with s.api() as api:
        r = api.get(f"/calls/{call_id}")
        r.raise_for_status()
        return list(r.json()["messages"])


def _assert_exactly_once_in_order(
    a: StationProcess, b: StationProcess, call_id: str, expected: list[str]
) -> None:
    def arrived() -> bool:
        return len(_messages(b, call_id)) >= len(expected)

    wait_for(arrived, timeout=120, interval=0.5, what=f"{len(expected)} messages at moscow")
    received = _messages(b, call_id)
    assert [m["text"] for m in received] == expected
    assert len({m["id"] for m in received}) == len(expected)
    assert [m["seq"] for m in received] == sorted(m["seq"] for m in received)
    wait_for(
        lambda: all(m["receipt"] for m in _messages(a, call_id)),
        timeout=60,
        interval=0.5,
        what="every receipt back at stuttgart",
    )
    sent = _messages(a, call_id)
    assert [m["id"] for m in sent] == [m["id"] for m in received]


def test_receiver_killed_mid_burst(talking: tuple[StationProcess, StationProcess, str]) -> None:
    a, b, call_id = talking
    texts = [f"m{i:04d}" for i in range(BURST)]
    with a.api() as api:
        for i, text in enumerate(texts):
            assert api.post(f"/calls/{call_id}/messages", json={"text": text}).status_code == 201
            if i == BURST // 3:
                b.kill()
            if i == 2 * BURST // 3:
                b.start()
    _assert_exactly_once_in_order(a, b, call_id, texts)


def test_sender_killed_mid_burst(talking: tuple[StationProcess, StationProcess, str]) -> None:
    a, b, call_id = talking
    acked: list[str] = []

    def burst(start: int) -> None:
        with a.api() as api:
            for i in range(start, BURST):
                try:
                    r = api.post(f"/calls/{call_id}/messages", json={"text": f"m{i:04d}"})
                except httpx.HTTPError:
                    return  # the station died under us; this one may or may not be committed
                assert r.status_code == 201
                acked.append(f"m{i:04d}")

    poster = threading.Thread(target=burst, args=(0,))
    poster.start()
    wait_for(lambda: len(acked) >= BURST // 2, timeout=120, what="half the burst acknowledged")
    a.kill()  # in the middle of requests and of a delivery batch
    poster.join(30)
    assert not poster.is_alive()
    a.start()
    # Everything stuttgart committed before the crash, plus the rest of the burst.
    committed = [str(m["text"]) for m in _messages(a, call_id)]
    assert committed[: len(acked)] == acked
    assert len(committed) - len(acked) <= 1  # at most the one request in flight at the kill
    burst(len(committed))
    expected = [f"m{i:04d}" for i in range(BURST)]
    _assert_exactly_once_in_order(a, b, call_id, expected)
