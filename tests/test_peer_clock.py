"""The peer's clock against ours: what receipts, line checks and envelope times prove of
it (bounds, no assumption about the network), shown on each line, and a `clock_skew`
alert on both watch floors, once per episode, when a station's clock is off by more than
the station allows. Two stations in process, each on its own clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import update

from openline.adapters.schema import lines
from openline.core.clock import (
    MICROS,
    FakeClock,
    Offset,
    parse_rfc3339,
    rfc3339,
    round_trip,
    stamped_before,
)
from openline.core.keys import StationKeys
from openline.services import lines as lines_service
from openline.services.accounts import Role
from tests.inproc import Node, link, make_node, place_and_ring
from tests.notice_docs import cli_table
from tests.test_console import add_user, browser, log_in

SECOND = MICROS


class SkewedClock(FakeClock):
    """Another station's clock: the shared fake clock plus an offset the test sets."""

    def __init__(self, base: FakeClock, offset_s: float = 0.0) -> None:
        super().__init__()
        self.base, self.offset_s = base, offset_s

    def now(self) -> int:
        return self.base.now() + round(self.offset_s * MICROS)

    def advance(self, seconds: float) -> int:
        return self.base.advance(seconds) + round(self.offset_s * MICROS)


@pytest.fixture
def skewed(
    tmp_path: Path, clock: FakeClock, database_url: str | None, second_database_url: str | None
) -> Iterator[tuple[Node, Node, SkewedClock]]:
    """stuttgart on the shared clock; moscow on its own, 120 s ahead; the line active."""
    theirs = SkewedClock(clock, 120.0)
    a = make_node(tmp_path, "stuttgart", clock, database_url)
    b = make_node(tmp_path, "moscow", theirs, second_database_url)
    link(a, b)
    try:
        yield a, b, theirs
    finally:
        for n in (a, b):
            n.station.db.dispose()


def skews(node: Node) -> list[dict[str, Any]]:
    return [x for x in node.api.get("/api/v1/alerts").json() if x["kind"] == "clock_skew"]


def peer_clock(node: Node) -> dict[str, Any]:
    (line,) = node.api.get("/api/v1/lines").json()
    return dict(line["peer_clock"])


def test_what_an_exchange_proves_of_another_clock() -> None:
    # Stamped 5 s after we sent, answered 1 s later by our clock: theirs is 4 to 5 s ahead.
    trip = round_trip(stamped=105 * SECOND, sent=100 * SECOND, answered=101 * SECOND)
    assert trip == Offset(4 * SECOND, 5 * SECOND)
    assert trip.beyond(3 * SECOND) == 4 * SECOND  # proved off by at least 4 s
    assert trip.beyond(4 * SECOND) == 0  # 4 s is not beyond a 4 s limit
    assert not trip.within(4 * SECOND)
    assert trip.within(5 * SECOND)
    behind = round_trip(stamped=90 * SECOND, sent=100 * SECOND, answered=101 * SECOND)
    assert behind.beyond(5 * SECOND) == -10 * SECOND
    # A slow round trip widens the bounds instead of shifting them: nothing is proved.
    slow = round_trip(stamped=110 * SECOND, sent=100 * SECOND, answered=120 * SECOND)
    assert slow == Offset(-10 * SECOND, 10 * SECOND)
    assert slow.beyond(5 * SECOND) == 0
    assert not slow.within(5 * SECOND)
    # An envelope stamped before it reached us: a lower bound only.
    early = stamped_before(stamped=95 * SECOND, received=100 * SECOND)
    assert early == Offset(-5 * SECOND, None)
    assert early.beyond(1 * SECOND) == 0
    assert not early.within(10 * SECOND)
    assert stamped_before(stamped=130 * SECOND, received=100 * SECOND).beyond(5 * SECOND) == 30 * SECOND


def test_a_peer_clock_off_by_two_minutes_raises_clock_skew_on_both_floors(
    skewed: tuple[Node, Node, SkewedClock], clock: FakeClock
) -> None:
    a, b, theirs = skewed
    # moscow's handshake, which opened the line, measured stuttgart 120 s behind.
    (at_moscow,) = skews(b)
    assert at_moscow["detail"] == {
        "peer": "stuttgart",
        "offset_s": -120.0,
        "limit_s": 5.0,
        "source": "line check",
        "says": "stuttgart's clock is at least 120.0 s behind ours",
    }
    assert at_moscow["paging"] is not None  # it pages, along the line's policy
    assert peer_clock(b)["offset_ms"] == -120_000.0
    assert peer_clock(b)["within_ms"] == 0.0  # the in-process round trip takes no fake time
    assert peer_clock(b)["off_since"] == rfc3339(theirs.now())

    # stuttgart learns it from moscow's receipts of its first batch.
    call_id = place_and_ring(a, b)
    (at_stuttgart,) = skews(a)
    assert at_stuttgart["detail"]["offset_s"] == 120.0
    assert at_stuttgart["detail"]["source"] == "receipts"
    assert at_stuttgart["detail"]["says"] == "moscow's clock is at least 120.0 s ahead of ours"
    assert peer_clock(a) == {
        "offset_ms": 120_000.0,
        "within_ms": 0.0,
        "measured_at": rfc3339(clock.now()),
        "off_since": rfc3339(clock.now()),
    }
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    b.drain()
    a.drain()
    # More traffic in the same episode raises nothing new.
    for n in range(3):
        assert b.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": f"m{n}"}).status_code == 201
        b.drain()
        a.drain()
    assert len(skews(a)) == 1
    assert len(skews(b)) == 1

    # moscow's time server is back: the next exchanges prove both clocks agree, the
    # episode ends on both sides, and the alerts stay until acknowledged.
    theirs.offset_s = 0.0
    clock.advance(10)
    assert b.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "again"}).status_code == 201
    b.drain()
    a.drain()
    assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "ok"}).status_code == 201
    a.drain()
    b.drain()
    for node in (a, b):
        assert peer_clock(node)["offset_ms"] == 0.0
        assert peer_clock(node)["off_since"] is None
        assert [x["acknowledged_at"] for x in skews(node)] == [None]

    # It drifts again, 30 s behind this time: a new episode, a new alert.
    theirs.offset_s = -30.0
    clock.advance(10)
    assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "drift"}).status_code == 201
    a.drain()
    b.drain()
    offsets = [x["detail"]["offset_s"] for x in skews(a)]
    assert sorted(offsets) == [-30.0, 120.0]


def test_a_peer_within_the_limit_is_shown_and_raises_nothing(
    tmp_path: Path, clock: FakeClock, database_url: str | None, second_database_url: str | None
) -> None:
    a = make_node(tmp_path, "stuttgart", clock, database_url)
    b = make_node(tmp_path, "moscow", SkewedClock(clock, -2.5), second_database_url)
    try:
        link(a, b)
        place_and_ring(a, b)
        assert peer_clock(a)["offset_ms"] == -2_500.0
        assert skews(a) == []
        assert skews(b) == []
        a.station.clock_skew_alert_s = 1.0  # a station that allows less
        place_and_ring(a, b)
        assert [x["detail"]["offset_s"] for x in skews(a)] == [-2.5]
    finally:
        for n in (a, b):
            n.station.db.dispose()


def test_an_envelope_stamped_ahead_of_its_arrival_proves_the_sender_ahead(
    skewed: tuple[Node, Node, SkewedClock], clock: FakeClock
) -> None:
    """moscow, 120 s ahead, calls stuttgart: the envelope's time, ahead of its arrival,
    proves it before stuttgart has sent anything back."""
    a, b, _ = skewed
    clock.advance(60)
    with a.station.tx() as tx:  # as if the handshake had not measured it
        tx.conn.execute(update(lines).values(peer_clock_off_since=None))
    b.api.post("/api/v1/calls", json={"peer": "stuttgart", "subject": "Test call"})
    b.drain()  # stuttgart receives it; it has sent nothing since
    new = [x["detail"] for x in skews(a) if x["raised_at"] == rfc3339(clock.now())]
    assert new == [
        {
            "peer": "moscow",
            "offset_s": 120.0,
            "limit_s": 5.0,
            "source": "envelope times",
            "says": "moscow's clock is at least 120.0 s ahead of ours",
        }
    ]


def test_a_bad_clock_in_a_handshake_answer_is_ignored() -> None:
    keys = StationKeys.generate()
    card: Any = SimpleNamespace(signing_key=keys.signing_public)
    at = "2026-01-01T00:00:00Z"
    good = {
        "at": at,
        "sig": keys.sign(lines_service._clock_statement("L1", "nonce-123", "moscow", "stuttgart", at)),
    }

    def peer_time(clock: Any, line: str = "L1", nonce: str = "nonce-123") -> int | None:
        return lines_service._peer_time(clock, card, line, nonce, "moscow", "stuttgart")

    assert peer_time(good) == parse_rfc3339(at)
    assert peer_time(None) is None  # a station that does not send it
    for bad in (
        {**good, "at": "2026-01-01T00:00:01Z"},  # the time changed on the way
        {**good, "sig": keys.sign(b"something else")},
        {"at": 5, "sig": good["sig"]},
        {
            "at": "noon",
            "sig": keys.sign(
                lines_service._clock_statement("L1", "nonce-123", "moscow", "stuttgart", "noon")
            ),
        },
        "noon",
    ):
        assert peer_time(bad) is None, bad
    # Another line's or another handshake's clock is not this one's.
    assert peer_time(good, line="L2") is None
    assert peer_time(good, nonce="nonce-456") is None


def test_the_skew_shows_in_lines_metrics_the_cli_and_on_the_board(
    skewed: tuple[Node, Node, SkewedClock], monkeypatch: Any
) -> None:
    a, b, _ = skewed  # moscow's handshake measured stuttgart 120 s behind
    assert 'openline_peer_clock_offset_seconds{peer="stuttgart"} -120.0' in b.api.get("/metrics").text
    assert "openline_peer_clock_offset_seconds{" not in a.api.get("/metrics").text  # not measured yet
    add_user(b, "boris", Role.WATCH_OFFICER)
    c = browser(b)
    log_in(c, "boris")
    board = c.get("/")
    assert "data-peer-clock-off" in board.text
    assert "its clock is off ours by -120.0 s" in board.text
    add_user(b, "chief", Role.ADMINISTRATOR)
    chief = browser(b)
    log_in(chief, "chief")
    admin = chief.get("/admin")
    assert admin.status_code == 200, admin.text
    assert 'data-line-clock="stuttgart"' in admin.text
    assert "minus ours: -120000.0 ms ± 0.0 ms" in " ".join(admin.text.split())
    table = cli_table(b, monkeypatch, "lines")  # 80 columns: a block of `column value` per line
    assert "peer clock -120.0 s ±0 ms, OFF since" in " ".join(table.split())
    assert "peer clock not measured yet" in " ".join(cli_table(a, monkeypatch, "lines").split())
