"""The transparency report from synthetic entries: what counts where, the percentile
method on known data, months at their edges, and periods that are not months refused."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openline.core import report
from openline.core.clock import parse_rfc3339

NOV = report.parse_period("2026-11")


def placed(
    call: str, at: str, peer: str = "moscow", direction: str = "out", line: str = "L1"
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "call.placed",
        "at": at,
        "call": call,
        "line": line,
        "peer": peer,
        "direction": direction,
        "priority": "routine",
        "actor": "admin",
    }


def event(kind: str, call: str, at: str) -> dict[str, Any]:
    return {"v": 1, "type": f"call.{kind}", "at": at, "call": call, "actor": "system"}


def other(at: str = "2026-11-02T00:00:00.000000Z") -> dict[str, Any]:
    return {"v": 1, "type": "envelope.sent", "at": at, "envelope": "e", "line": "L1", "peer": "moscow"}


def checkpoint(size: int) -> report.Checkpoint:
    return report.Checkpoint(
        "openline/ledger/stuttgart/0011223344556677", size, bytes(32), "note", ("moscow",)
    )


def run(entries: list[dict[str, Any]], period: report.Period = NOV) -> dict[str, Any]:
    return report.compute(entries, period, checkpoint(len(entries))).to_json()


def t(day: int, seconds: float = 0) -> str:
    """A time in November 2026: `day` at midnight plus `seconds`."""
    whole, frac = divmod(round(seconds * 1_000_000), 1_000_000)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"2026-11-{day:02d}T{h:02d}:{m:02d}:{s:02d}.{frac:06d}Z"


def test_report_counts_picked_up_and_missed_calls_with_their_pickup_time() -> None:
    r = run(
        [
            placed("c1", t(3)),
            event("delivered", "c1", t(3, 0.2)),
            event("ringing", "c1", t(3, 0.3)),
            event("picked_up", "c1", t(3, 12.5)),
            event("closed", "c1", t(3, 60)),
            placed("c2", t(4), direction="in"),
            event("ringing", "c2", t(4, 1)),
            event("missed", "c2", t(4, 60)),
            other(),
        ]
    )
    assert r["format"] == "openline-transparency-report/v1"
    assert (r["period"], r["from"], r["until"]) == (
        "2026-11",
        "2026-11-01T00:00:00.000000Z",
        "2026-12-01T00:00:00.000000Z",
    )
    [line] = r["lines"]
    assert line["peer"] == "moscow"
    assert line["line"] == "L1"
    assert (line["calls_placed"], line["calls_received"]) == (1, 1)
    assert (line["picked_up"], line["missed"], line["declined"], line["cancelled"]) == (1, 1, 0, 0)
    assert line["unresolved"] == 0
    assert line["pickup_seconds"] == {"count": 1, "median": 12.2, "p90": 12.2}  # rang at 0.3, taken at 12.5
    assert line["by_direction"]["out"]["picked_up"] == 1
    assert line["by_direction"]["out"]["missed"] == 0
    assert line["by_direction"]["in"]["missed"] == 1
    assert line["by_direction"]["in"]["pickup_seconds"] == {"count": 0, "median": None, "p90": None}
    assert r["totals"]["calls_placed"] == 1
    assert r["totals"]["peer"] == ""


def test_report_counts_declined_cancelled_and_unresolved_calls() -> None:
    r = run(
        [
            placed("c1", t(5), direction="in"),
            event("declined", "c1", t(5, 3)),
            placed("c2", t(5, 10)),
            event("cancelled", "c2", t(5, 20)),
            placed("c3", t(5, 30)),
            event("ringing", "c3", t(5, 31)),
        ]
    )
    [line] = r["lines"]
    assert (line["declined"], line["cancelled"], line["unresolved"]) == (1, 1, 1)
    assert line["by_direction"]["in"]["declined"] == 1
    assert line["by_direction"]["out"]["unresolved"] == 1
    assert line["picked_up"] == 0
    assert line["pickup_seconds"]["median"] is None


def test_a_call_belongs_to_the_month_it_was_placed_in() -> None:
    entries = [
        placed("oct", "2026-10-31T23:59:59.999999Z"),
        event("picked_up", "oct", "2026-11-01T00:00:09.999999Z"),
        placed("nov", "2026-11-30T23:59:50.000000Z"),
        event("picked_up", "nov", "2026-12-01T00:00:10.000000Z"),
        placed("dec", "2026-12-01T00:00:00.000000Z"),
    ]
    nov = run(entries)
    assert nov["totals"]["calls_placed"] == 1
    assert nov["totals"]["pickup_seconds"] == {"count": 1, "median": 20.0, "p90": 20.0}
    oct_ = run(entries, report.parse_period("2026-10"))
    assert oct_["totals"]["calls_placed"] == 1
    assert oct_["totals"]["pickup_seconds"]["median"] == 10.0
    dec = run(entries, report.parse_period("2026-12"))
    assert dec["totals"]["calls_placed"] == 1
    assert dec["totals"]["picked_up"] == 0


def test_each_peer_has_its_own_row_and_the_totals_add_them_up() -> None:
    r = run(
        [
            placed("a1", t(1), peer="moscow", line="L1"),
            placed("b1", t(1, 5), peer="kyiv", line="L2", direction="in"),
            event("picked_up", "a1", t(1, 10)),
            event("picked_up", "b1", t(1, 35)),
            placed("b2", t(2), peer="kyiv", line="L2"),
            event("missed", "b2", t(2, 60)),
        ]
    )
    assert [(x["peer"], x["line"]) for x in r["lines"]] == [("kyiv", "L2"), ("moscow", "L1")]
    kyiv, moscow = r["lines"]
    assert (kyiv["calls_placed"], kyiv["calls_received"], kyiv["picked_up"], kyiv["missed"]) == (1, 1, 1, 1)
    assert kyiv["pickup_seconds"]["median"] == 30.0
    assert (moscow["calls_placed"], moscow["picked_up"]) == (1, 1)
    assert moscow["pickup_seconds"]["median"] == 10.0
    totals = r["totals"]
    assert (totals["calls_placed"], totals["calls_received"], totals["picked_up"], totals["missed"]) == (
        2,
        1,
        2,
        1,
    )
    assert totals["pickup_seconds"] == {"count": 2, "median": 20.0, "p90": 30.0}


def test_only_the_first_pickup_counts() -> None:
    r = run([placed("c", t(1)), event("picked_up", "c", t(1, 4)), event("picked_up", "c", t(1, 90))])
    assert r["totals"]["picked_up"] == 1
    assert r["totals"]["pickup_seconds"] == {"count": 1, "median": 4.0, "p90": 4.0}


def test_median_and_p90_on_known_data() -> None:
    # Ten pick-ups taking 1, 2, ..., 10 s: the median is 5.5 (the mean of the 5th and 6th),
    # p90 the 9th (ceil(0.9 * 10) = 9): 9 s.
    entries = []
    for i in range(1, 11):
        entries += [placed(f"c{i}", t(i)), event("picked_up", f"c{i}", t(i, i))]
    assert run(entries)["totals"]["pickup_seconds"] == {"count": 10, "median": 5.5, "p90": 9.0}
    # Eleven: median the 6th, p90 rank ceil(9.9) = 10.
    entries += [placed("c11", t(11)), event("picked_up", "c11", t(11, 11))]
    assert run(entries)["totals"]["pickup_seconds"] == {"count": 11, "median": 6.0, "p90": 10.0}


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(5, 15), (30, 20), (40, 20), (50, 35), (90, 50), (100, 50)],
)
def test_nearest_rank_matches_the_textbook_example(percent: int, expected: int) -> None:
    # The nearest-rank worked example: the values 15, 20, 35, 40, 50.
    assert report.nearest_rank([50, 15, 40, 20, 35], percent) == expected


@given(
    st.lists(st.integers(min_value=-(10**9), max_value=10**9), min_size=1, max_size=60), st.integers(1, 100)
)
def test_nearest_rank_is_the_smallest_value_with_enough_at_or_below_it(
    values: list[int], percent: int
) -> None:
    p = report.nearest_rank(values, percent)
    assert p in values
    n = len(values)
    assert sum(v <= p for v in values) >= math.ceil(percent * n / 100)
    assert sum(v < p for v in values) < math.ceil(percent * n / 100)


def test_a_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(report.ReportError, match="at least one"):
        report.nearest_rank([], 90)
    with pytest.raises(report.ReportError, match="1 to 100"):
        report.nearest_rank([1], 0)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-11", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ("2026-12", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("2026-02", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        ("2028-02", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"),
        ("9999-11", "9999-11-01T00:00:00Z", "9999-12-01T00:00:00Z"),  # the last its report can write
    ],
)
def test_a_period_is_a_calendar_month_in_utc(text: str, start: str, end: str | None) -> None:
    p = report.parse_period(text)
    assert p.name == text
    assert p.start == parse_rfc3339(start)
    if end is not None:
        assert p.end == parse_rfc3339(end)
    assert p.end - p.start in {d * 86_400_000_000 for d in (28, 29, 30, 31)}
    assert report.period_of(p.start) == text
    assert report.period_of(p.end - 1) == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-13",
        "2026-00",
        "0000-05",
        "2026-1",
        "26-11",
        "2026-11-01",
        "",
        " 2026-11",
        "2026/11",
        "\uff12\uff10\uff12\uff16-11",  # full-width digits
        "2026-11\n",
        "november",
        "9999-12",  # its end, 10000-01-01, is past any time a report can write
    ],
)
def test_a_period_that_is_not_a_month_is_refused(text: str) -> None:
    with pytest.raises(report.ReportError, match="month"):
        report.parse_period(text)


def test_a_period_that_is_not_text_is_refused() -> None:
    with pytest.raises(report.ReportError, match="YYYY-MM"):
        report.parse_period(202611)  # type: ignore[arg-type]


def test_link_tests_are_reported_as_not_recorded_rather_than_zero() -> None:
    r = run([placed("c", t(1))])
    assert set(r["not_recorded"]) == {"link_tests"}
    assert "not recorded by this version" in r["not_recorded"]["link_tests"]
    for row in (r["lines"][0], r["totals"]):
        assert row["link_tests_sent"] is None
        assert row["link_tests_answered"] is None
        assert row["notices_acknowledged"] == 0  # notices are recorded: none is a real 0


def test_link_tests_and_notices_in_the_log_are_counted_in_the_month_of_their_own_time() -> None:
    def entry(kind: str, at: str) -> dict[str, Any]:
        return {"v": 1, "type": kind, "at": at, "peer": "moscow", "line": "L1"}

    r = run(
        [
            placed("c", t(1)),
            entry("link.test_sent", t(1, 1)),
            entry("link.test_sent", t(1, 3601)),
            entry("link.test_answered", t(1, 2)),
            entry("link.test_sent", "2026-10-31T23:00:00.000000Z"),
        ]
    )
    assert r["not_recorded"] == {}
    [line] = r["lines"]
    assert (line["link_tests_sent"], line["link_tests_answered"]) == (2, 1)
    assert line["notices_acknowledged"] == 0
    assert r["totals"]["link_tests_sent"] == 2


def test_acknowledged_notices_are_counted_per_line_in_their_month() -> None:
    def ack(at: str) -> dict[str, Any]:
        return {
            "v": 1,
            "type": "notice.acknowledged",
            "at": at,
            "peer": "moscow",
            "line": "L1",
            "notice": "n",
        }

    r = run([placed("c", t(1)), ack(t(1, 5)), ack(t(1, 6)), ack("2026-10-31T23:00:00.000000Z")])
    [line] = r["lines"]
    assert line["notices_acknowledged"] == 2
    assert r["totals"]["notices_acknowledged"] == 2


def test_the_report_names_its_checkpoint() -> None:
    r = run([placed("c", t(1))])
    assert r["checkpoint"] == {
        "origin": "openline/ledger/stuttgart/0011223344556677",
        "size": 1,
        "root": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "cosigned_by": ["moscow"],
        "note": "note",
    }


def test_the_entries_must_be_exactly_those_of_the_checkpoint() -> None:
    with pytest.raises(report.ReportError, match="covers 3 entries, got 2"):
        report.compute([placed("c", t(1)), other()], NOV, checkpoint(3))


def test_entries_are_read_once_as_a_stream() -> None:
    consumed = []

    def stream() -> Iterator[dict[str, Any]]:
        for i in range(5000):
            consumed.append(i)
            yield placed(f"c{i}", t(1 + i % 28, i)) if i % 2 else other()

    r = report.compute(stream(), NOV, checkpoint(5000))
    assert len(consumed) == 5000
    assert r.totals.calls_placed == 2500


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"v": 1, "at": "2026-11-01T00:00:00Z"}, "no type"),
        ({**placed("c", t(1)), "at": "yesterday"}, "bad time"),
        ({k: v for k, v in placed("c", t(1)).items() if k != "peer"}, "without a peer"),
        ({**placed("c", t(1)), "direction": "sideways"}, "direction"),
    ],
)
def test_an_entry_the_report_cannot_read_is_refused(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(report.ReportError, match=message):
        run([entry])


def test_time_to_pick_up_is_counted_on_the_callees_clock() -> None:
    """A call received from a peer whose clock runs five minutes ahead: its `call.placed`
    carries the caller's time, 300 s after ours. Timed from it, the pick-up 4 s after the
    call rang here came out at -296 s in a published report."""
    r = run(
        [
            placed("c1", t(3, 300), direction="in"),  # the caller's clock
            event("ringing", "c1", t(3, 0.5)),  # ours, as every later time
            event("picked_up", "c1", t(3, 4.5)),
            placed("c2", t(5)),  # picked up, and no ringing in the log: timed from placed
            event("picked_up", "c2", t(5, 9)),
            placed("c3", t(6, 7200), direction="in"),  # our clock set back an hour while it rang
            event("ringing", "c3", t(6, 7201)),
            event("picked_up", "c3", t(6, 7211 - 3600)),
        ]
    )
    [line] = r["lines"]
    assert line["by_direction"]["in"]["pickup_seconds"] == {"count": 1, "median": 4.0, "p90": 4.0}
    assert line["by_direction"]["in"]["picked_up"] == 2  # c3 was picked up: it has no time, that is all
    assert line["by_direction"]["out"]["pickup_seconds"] == {"count": 1, "median": 9.0, "p90": 9.0}
