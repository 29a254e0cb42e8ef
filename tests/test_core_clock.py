"""Time (openline.core.clock): the fake clock and RFC 3339 rendering and parsing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openline.core.clock import MICROS, FakeClock, SystemClock, parse_rfc3339, rfc3339

_2026 = 1_767_225_600 * MICROS


def test_fake_clock_starts_at_2026_and_moves_only_when_told() -> None:
    clock = FakeClock()
    assert clock.now() == _2026
    assert clock.now() == _2026
    assert clock.advance(1.5) == _2026 + 1_500_000
    assert clock.advance(0.000001) == _2026 + 1_500_001
    clock.set(42)
    assert clock.now() == 42


def test_fake_clock_advance_is_thread_safe() -> None:
    clock = FakeClock(start=0)
    threads = [
        threading.Thread(target=lambda: [clock.advance(0.000001) for _ in range(1000)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == 8000


def test_system_clock_is_microseconds_since_epoch() -> None:
    now = SystemClock().now()
    assert _2026 - 366 * 86_400 * MICROS < now < _2026 + 100 * 366 * 86_400 * MICROS


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "1970-01-01T00:00:00.000000Z"),
        (_2026, "2026-01-01T00:00:00.000000Z"),
        (_2026 + 1, "2026-01-01T00:00:00.000001Z"),
        (_2026 + 999_999, "2026-01-01T00:00:00.999999Z"),
        (_2026 - 1, "2025-12-31T23:59:59.999999Z"),
    ],
)
def test_rfc3339_renders_utc_with_microseconds(micros: int, text: str) -> None:
    assert rfc3339(micros) == text
    assert parse_rfc3339(text) == micros


def test_rfc3339_none_is_none() -> None:
    assert rfc3339(None) is None


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("2026-01-01T00:00:00Z", _2026),
        ("2026-01-01T01:00:00+01:00", _2026),
        ("2025-12-31T19:00:00.25-05:00", _2026 + 250_000),
        ("2026-01-01T00:00:00.123456+00:00", _2026 + 123_456),
    ],
)
def test_parse_rfc3339_offsets(text: str, micros: int) -> None:
    assert parse_rfc3339(text) == micros


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-01-01",
        "2026-01-01T00:00:00",
        "noon",
        "2026-02-30T00:00:00Z",
        "\u0662\u0660\u0662\u0666-01-01T00:00:00Z",  # Arabic-Indic digits: \\d alone matched them
        "2026-01-01T00:00:00.\u0665Z",
    ],
)
def test_parse_rfc3339_refuses(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message comes from datetime or from us
        parse_rfc3339(text)


@pytest.mark.parametrize("value", [None, 0, b"2026-01-01T00:00:00Z"])
def test_parse_rfc3339_refuses_non_text(value: object) -> None:
    with pytest.raises(ValueError, match="expected an RFC 3339 time"):
        parse_rfc3339(value)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=4_102_444_800 * MICROS))  # 1970 .. 2100
def test_rfc3339_round_trip(micros: int) -> None:
    assert parse_rfc3339(rfc3339(micros) or "") == micros


@given(st.integers(min_value=0, max_value=4_102_444_800 * MICROS))
def test_rfc3339_is_strftime_of_the_utc_time(micros: int) -> None:
    """What the signed headers and receipts have always carried, to the microsecond."""
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    assert rfc3339(micros) == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Regression (fixed; src/openline/core/clock.py, parse_rfc3339: `int(dt.timestamp()) * MICROS +
# dt.microsecond`): int() truncates toward zero, so any time before 1970 with a fraction of
# a second comes out one second late ("1969-12-31T23:59:59.5Z" gives +500000 instead of
# -500000), and parse_rfc3339(rfc3339(-1)) == 999999. Peers are not meant to send such
# times, but a hostile one can, and the value is then wrong rather than refused. Fix:
# compute exactly, e.g. `(dt - EPOCH) // timedelta(microseconds=1)` with
# EPOCH = datetime(1970, 1, 1, tzinfo=UTC), which also avoids float rounding.
@pytest.mark.parametrize(
    ("text", "micros"),
    [("1969-12-31T23:59:59.5Z", -500_000), ("1969-12-31T23:59:59.999999Z", -1)],
)
def test_parse_rfc3339_before_epoch(text: str, micros: int) -> None:
    assert parse_rfc3339(text) == micros


@pytest.mark.parametrize(
    "text",
    ["9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00.000001+00:01"],
)
def test_parse_rfc3339_refuses_a_time_outside_the_years_it_can_write(text: str) -> None:
    """Each offset moves it past 9999 or before 0001 in UTC, where `rfc3339` cannot write
    it: a peer's envelope or receipt with such a time was a server error, not a refusal."""
    with pytest.raises(ValueError, match="outside the years 0001 to 9999"):
        parse_rfc3339(text)


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z"])
def test_parse_rfc3339_takes_the_first_and_last_times_it_can_write(text: str) -> None:
    assert rfc3339(parse_rfc3339(text)) == text.replace("00Z", "00.000000Z")
