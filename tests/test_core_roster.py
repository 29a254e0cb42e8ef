"""The watch roster (openline.core.roster): shifts, overrides, handovers and gaps.

Recurrence follows local wall time and a shift lasts its elapsed duration, so daylight
saving moves shifts in UTC and can open or close an hour between two of them. The
properties compare the engine with a brute-force expansion from each shift's start.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from openline.core.roster import (
    Override,
    RosterError,
    Shift,
    check_override,
    check_shift,
    gaps,
    next_handover,
    occurrences,
    on_duty,
    parse_rrule,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=BERLIN)


def rota(first_day: datetime, hours: int = 8) -> list[Shift]:
    """Three daily watches from 06:00, 14:00 and 22:00 Berlin time on `first_day`."""
    return [
        Shift(i, user, first_day.replace(hour=hour, tzinfo=BERLIN), timedelta(hours=hours), "FREQ=DAILY")
        for i, (user, hour) in enumerate((("ana", 6), ("ben", 14), ("cai", 22)), start=1)
    ]


def starts(shift: Shift, start: datetime, end: datetime) -> list[datetime]:
    return [s for s, _ in occurrences(shift, start, end)]


# Three watches a day -------------------------------------------------------------------

ROTA = rota(datetime(2026, 1, 5))  # a Monday


def test_on_duty_three_watches_cover_the_day() -> None:
    assert on_duty(ROTA, [], berlin(2026, 1, 10, 7)) == ["ana"]
    assert on_duty(ROTA, [], berlin(2026, 1, 10, 14) - TICK) == ["ana"]
    assert on_duty(ROTA, [], berlin(2026, 1, 10, 14)) == ["ben"]
    assert on_duty(ROTA, [], berlin(2026, 1, 10, 23)) == ["cai"]
    assert on_duty(ROTA, [], berlin(2026, 1, 11, 3)) == ["cai"]
    assert on_duty(ROTA, [], berlin(2026, 1, 11, 6)) == ["ana"]
    assert on_duty(ROTA, [], utc(2026, 1, 11, 5)) == ["ana"]  # any aware instant will do


def test_on_duty_nobody_before_the_first_shift() -> None:
    assert on_duty(ROTA, [], berlin(2026, 1, 5, 5, 59)) == []
    assert on_duty([], [], berlin(2026, 1, 5, 12)) == []


def test_next_handover_is_the_next_change_in_utc() -> None:
    handover = next_handover(ROTA, [], berlin(2026, 1, 10, 7))
    assert handover == utc(2026, 1, 10, 13)
    assert handover is not None
    assert handover.tzinfo is UTC
    # Strictly after `at`: standing on a handover, the next one is eight hours on.
    assert next_handover(ROTA, [], berlin(2026, 1, 10, 14)) == utc(2026, 1, 10, 21)
    assert next_handover(ROTA, [], berlin(2026, 1, 10, 14) - TICK) == utc(2026, 1, 10, 13)


def test_next_handover_horizon_includes_its_end() -> None:
    at = berlin(2026, 1, 10, 7)
    assert next_handover(ROTA, [], at, horizon=timedelta(hours=7)) == utc(2026, 1, 10, 13)
    assert next_handover(ROTA, [], at, horizon=timedelta(hours=7) - TICK) is None


def test_next_handover_none_when_the_same_person_hands_over_to_themselves() -> None:
    always = [Shift(1, "ana", berlin(2026, 1, 5, 6), timedelta(hours=24), "FREQ=DAILY")]
    assert on_duty(always, [], berlin(2026, 1, 10, 6)) == ["ana"]
    assert next_handover(always, [], berlin(2026, 1, 10, 7)) is None
    assert next_handover([], [], berlin(2026, 1, 10, 7)) is None


def test_gaps_none_over_a_week_of_three_watches() -> None:
    assert gaps(ROTA, [], berlin(2026, 1, 6), berlin(2026, 1, 13)) == []


def test_gaps_before_the_rota_begins() -> None:
    # ana starts at 06:00 on the 5th; cai's first night starts at 22:00 that day.
    assert gaps(ROTA, [], berlin(2026, 1, 5), berlin(2026, 1, 6)) == [
        (utc(2026, 1, 4, 23), utc(2026, 1, 5, 5))
    ]


# Daylight saving -------------------------------------------------------------------------


def test_occurrences_follow_local_time_across_spring_forward() -> None:
    shift = Shift(1, "ana", berlin(2026, 3, 28, 6), 8 * HOUR, "FREQ=DAILY")
    assert occurrences(shift, utc(2026, 3, 28), utc(2026, 3, 31)) == [
        (utc(2026, 3, 28, 5), utc(2026, 3, 28, 13)),
        (utc(2026, 3, 29, 4), utc(2026, 3, 29, 12)),  # 06:00 CEST
        (utc(2026, 3, 30, 4), utc(2026, 3, 30, 12)),
    ]


def test_occurrences_follow_local_time_across_fall_back() -> None:
    shift = Shift(1, "ana", berlin(2026, 10, 24, 6), 8 * HOUR, "FREQ=DAILY")
    result = occurrences(shift, utc(2026, 10, 24), utc(2026, 10, 27))
    assert result == [
        (utc(2026, 10, 24, 4), utc(2026, 10, 24, 12)),
        (utc(2026, 10, 25, 5), utc(2026, 10, 25, 13)),  # 06:00 CET
        (utc(2026, 10, 26, 5), utc(2026, 10, 26, 13)),
    ]
    assert all(s.tzinfo is UTC and e.tzinfo is UTC for s, e in result)


def test_occurrences_duration_is_elapsed_time_over_a_clock_change() -> None:
    night = Shift(1, "cai", berlin(2026, 3, 28, 22), 8 * HOUR, "FREQ=DAILY")
    [(s, e)] = occurrences(night, utc(2026, 3, 28, 22), utc(2026, 3, 28, 23))
    assert (s, e) == (utc(2026, 3, 28, 21), utc(2026, 3, 29, 5))
    assert e.astimezone(BERLIN).hour == 7  # eight hours after 22:00 CET is 07:00 CEST

    night = Shift(1, "cai", berlin(2026, 10, 24, 22), 8 * HOUR, "FREQ=DAILY")
    [(s, e)] = occurrences(night, utc(2026, 10, 24, 22), utc(2026, 10, 24, 23))
    assert (s, e) == (utc(2026, 10, 24, 20), utc(2026, 10, 25, 4))
    assert e.astimezone(BERLIN).hour == 5  # eight hours after 22:00 CEST is 05:00 CET


def test_gaps_fall_back_night_leaves_an_hour_uncovered() -> None:
    shifts = rota(datetime(2026, 10, 20))
    assert gaps(shifts, [], berlin(2026, 10, 22), berlin(2026, 10, 29)) == [
        (utc(2026, 10, 25, 4), utc(2026, 10, 25, 5))
    ]
    assert next_handover(shifts, [], utc(2026, 10, 25, 3)) == utc(2026, 10, 25, 4)


def test_on_duty_spring_forward_night_overlaps_the_morning_watch() -> None:
    shifts = rota(datetime(2026, 3, 20))
    assert gaps(shifts, [], berlin(2026, 3, 26), berlin(2026, 4, 2)) == []
    assert on_duty(shifts, [], utc(2026, 3, 29, 4, 30)) == ["ana", "cai"]
    assert on_duty(shifts, [], utc(2026, 3, 29, 5)) == ["ana"]


def test_occurrences_nonexistent_local_time_moves_forward_by_the_gap() -> None:
    shift = Shift(1, "ana", berlin(2026, 3, 28, 2, 30), HOUR, "FREQ=DAILY")
    result = starts(shift, utc(2026, 3, 28), utc(2026, 3, 31))
    assert result == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    assert result[1].astimezone(BERLIN).time().isoformat() == "03:30:00"
    # A one-off shift at a time that does not exist moves the same way.
    once = Shift(2, "ana", berlin(2026, 3, 29, 2, 30), HOUR)
    assert occurrences(once, utc(2026, 3, 29), utc(2026, 3, 30)) == [
        (utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2, 30))
    ]


def test_occurrences_ambiguous_local_time_is_its_first_occurrence() -> None:
    shift = Shift(1, "ana", berlin(2026, 10, 24, 2, 30), HOUR, "FREQ=DAILY")
    result = starts(shift, utc(2026, 10, 24), utc(2026, 10, 27))
    assert result == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_occurrences_start_keeps_its_own_fold() -> None:
    second = Shift(1, "ana", berlin(2026, 10, 25, 2, 30).replace(fold=1), HOUR, "FREQ=DAILY")
    assert starts(second, utc(2026, 10, 24), utc(2026, 10, 27)) == [
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_occurrences_new_york() -> None:
    spring = Shift(1, "ana", datetime(2026, 3, 7, 6, tzinfo=NEW_YORK), 8 * HOUR, "FREQ=DAILY")
    assert starts(spring, utc(2026, 3, 7), utc(2026, 3, 10)) == [
        utc(2026, 3, 7, 11),
        utc(2026, 3, 8, 10),
        utc(2026, 3, 9, 10),
    ]
    fall = Shift(2, "ana", datetime(2026, 10, 31, 6, tzinfo=NEW_YORK), 8 * HOUR, "FREQ=DAILY")
    assert starts(fall, utc(2026, 10, 31), utc(2026, 11, 3)) == [
        utc(2026, 10, 31, 10),
        utc(2026, 11, 1, 11),
        utc(2026, 11, 2, 11),
    ]
    gap = Shift(3, "ana", datetime(2026, 3, 8, 2, 30, tzinfo=NEW_YORK), HOUR)
    assert starts(gap, utc(2026, 3, 8), utc(2026, 3, 9)) == [utc(2026, 3, 8, 7, 30)]  # 03:30 EDT
    twice = Shift(4, "ana", datetime(2026, 10, 31, 1, 30, tzinfo=NEW_YORK), HOUR, "FREQ=DAILY")
    assert starts(twice, utc(2026, 10, 31), utc(2026, 11, 3)) == [
        utc(2026, 10, 31, 5, 30),
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT, the first of the two
        utc(2026, 11, 2, 6, 30),
    ]


# Rules ---------------------------------------------------------------------------------


def test_occurrences_weekly_byday_count() -> None:
    shift = Shift(1, "ana", berlin(2026, 1, 5, 9), 2 * HOUR, "FREQ=WEEKLY;BYDAY=MO,TU;COUNT=10")
    days = [(1, 5), (1, 6), (1, 12), (1, 13), (1, 19), (1, 20), (1, 26), (1, 27), (2, 2), (2, 3)]
    assert starts(shift, utc(2025, 1, 1), utc(2027, 1, 1)) == [utc(2026, m, d, 8) for m, d in days]


def test_occurrences_until_is_inclusive_local_wall_time() -> None:
    def count(rule: str) -> int:
        return len(
            occurrences(Shift(1, "ana", berlin(2026, 1, 5, 9), HOUR, rule), utc(2026, 1, 1), utc(2026, 2, 1))
        )

    assert count("FREQ=DAILY;UNTIL=20260110T090000") == 6
    assert count("FREQ=DAILY;UNTIL=20260110T085959") == 5
    assert count("FREQ=DAILY;UNTIL=20260110") == 5


def test_occurrences_start_off_the_rule_is_not_an_occurrence() -> None:
    # RFC 5545 leaves a DTSTART the rule does not match undefined; dateutil skips it.
    wednesday = Shift(1, "ana", berlin(2026, 1, 7, 9), HOUR, "FREQ=WEEKLY;BYDAY=MO")
    assert starts(wednesday, utc(2026, 1, 1), utc(2026, 1, 20)) == [utc(2026, 1, 12, 8), utc(2026, 1, 19, 8)]


def test_occurrences_weeks_start_on_monday_unless_wkst_says_otherwise() -> None:
    # The RFC 5545 §3.3.10 WKST example, which dateutil would otherwise read with
    # calendar.firstweekday().
    start = datetime(1997, 8, 5, 9, tzinfo=NEW_YORK)
    default = Shift(1, "ana", start, HOUR, "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU")
    sunday = Shift(2, "ana", start, HOUR, "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU")
    first = calendar.firstweekday()
    calendar.setfirstweekday(calendar.SUNDAY)
    try:
        got_default = starts(default, utc(1997, 8, 1), utc(1997, 9, 30))
        got_sunday = starts(sunday, utc(1997, 8, 1), utc(1997, 9, 30))
    finally:
        calendar.setfirstweekday(first)
    assert [s.day for s in got_default] == [5, 10, 19, 24]
    assert [s.day for s in got_sunday] == [5, 17, 19, 31]


def test_occurrences_of_a_shift_started_five_years_ago() -> None:
    night = Shift(1, "cai", berlin(2021, 3, 1, 22), 8 * HOUR, "FREQ=DAILY")
    assert occurrences(night, utc(2026, 6, 10), utc(2026, 6, 11)) == [
        (utc(2026, 6, 9, 20), utc(2026, 6, 10, 4)),
        (utc(2026, 6, 10, 20), utc(2026, 6, 11, 4)),
    ]


def test_occurrences_window_is_half_open() -> None:
    shift = Shift(1, "ana", berlin(2026, 1, 5, 6), 8 * HOUR, "FREQ=DAILY")
    assert starts(shift, utc(2026, 1, 5, 13), utc(2026, 1, 6, 5)) == []
    assert starts(shift, utc(2026, 1, 5, 13) - TICK, utc(2026, 1, 6, 5) + TICK) == [
        utc(2026, 1, 5, 5),
        utc(2026, 1, 6, 5),
    ]
    assert starts(shift, utc(2026, 1, 6), utc(2026, 1, 5)) == []


def test_occurrences_keep_the_start_microseconds() -> None:
    # dateutil drops DTSTART's microseconds; the engine puts them back.
    daily = Shift(1, "ana", berlin(2026, 1, 5, 6, 0, 0, 250), HOUR, "FREQ=DAILY")
    assert starts(daily, utc(2026, 1, 5), utc(2026, 1, 7)) == [
        utc(2026, 1, 5, 5, 0, 0, 250),
        utc(2026, 1, 6, 5, 0, 0, 250),
    ]


def test_occurrences_one_off_shift() -> None:
    once = Shift(1, "ana", berlin(2026, 1, 5, 6, 0, 0, 250), 8 * HOUR)
    expected = (utc(2026, 1, 5, 5, 0, 0, 250), utc(2026, 1, 5, 13, 0, 0, 250))
    assert occurrences(once, utc(2026, 1, 1), utc(2026, 2, 1)) == [expected]
    assert occurrences(once, utc(2026, 1, 6), utc(2026, 2, 1)) == []


END = datetime.max.replace(tzinfo=UTC)


def test_occurrences_at_the_end_of_year_9999_end_there() -> None:
    # 22:00 New York is 03:00 the next day in UTC: the last one is past year 9999 there.
    night = Shift(1, "cai", datetime(2026, 1, 1, 22, tzinfo=NEW_YORK), 8 * HOUR, "FREQ=DAILY")
    assert occurrences(night, utc(9999, 12, 31), END) == [(utc(9999, 12, 31, 3), utc(9999, 12, 31, 11))]
    late = Shift(2, "ana", datetime(9999, 12, 31, 20, tzinfo=ZoneInfo("UTC")), 8 * HOUR)
    assert occurrences(late, utc(9999, 12, 31), END) == [(utc(9999, 12, 31, 20), END)]
    assert on_duty([night, late], [], utc(9999, 12, 31, 23, 30)) == ["ana"]
    assert next_handover([night, late], [], utc(9999, 12, 31, 23, 30)) is None
    assert gaps([night, late], [], utc(9999, 12, 31), END) == [
        (utc(9999, 12, 31), utc(9999, 12, 31, 3)),
        (utc(9999, 12, 31, 11), utc(9999, 12, 31, 20)),
    ]


def test_parse_rrule_normalises() -> None:
    assert parse_rrule(" rrule:freq=weekly;byday=mo,tu;count=10 ") == "FREQ=WEEKLY;COUNT=10;BYDAY=MO,TU"
    assert parse_rrule("BYMONTHDAY=1,-1;FREQ=MONTHLY") == "FREQ=MONTHLY;BYMONTHDAY=1,-1"
    assert parse_rrule("FREQ=DAILY;UNTIL=20261231T235959") == "FREQ=DAILY;UNTIL=20261231T235959"


# Overrides -------------------------------------------------------------------------------


def test_on_duty_swap_is_two_overrides() -> None:
    swap = [
        Override(1, "ben", "ana", berlin(2026, 1, 10, 6), berlin(2026, 1, 10, 14)),
        Override(2, "ana", "ben", berlin(2026, 1, 10, 14), berlin(2026, 1, 10, 22)),
    ]
    assert on_duty(ROTA, swap, berlin(2026, 1, 10, 6) - TICK) == ["cai"]
    assert on_duty(ROTA, swap, berlin(2026, 1, 10, 6)) == ["ben"]
    assert on_duty(ROTA, swap, berlin(2026, 1, 10, 14) - TICK) == ["ben"]
    assert on_duty(ROTA, swap, berlin(2026, 1, 10, 14)) == ["ana"]
    assert on_duty(ROTA, swap, berlin(2026, 1, 10, 22) - TICK) == ["ana"]
    assert on_duty(ROTA, swap, berlin(2026, 1, 10, 22)) == ["cai"]
    assert on_duty(ROTA, swap, berlin(2026, 1, 11, 7)) == ["ana"]
    assert next_handover(ROTA, swap, berlin(2026, 1, 10, 7)) == utc(2026, 1, 10, 13)
    assert gaps(ROTA, swap, berlin(2026, 1, 9), berlin(2026, 1, 12)) == []


def test_on_duty_one_override_takes_a_shift_outright() -> None:
    cover = [Override(1, "dee", "ana", berlin(2026, 1, 10, 6), berlin(2026, 1, 10, 14))]
    assert on_duty(ROTA, cover, berlin(2026, 1, 10, 9)) == ["dee"]
    assert next_handover(ROTA, cover, berlin(2026, 1, 10, 5)) == utc(2026, 1, 10, 5)


def test_on_duty_extra_person() -> None:
    extra = [Override(1, "dee", None, berlin(2026, 1, 10, 10), berlin(2026, 1, 10, 12))]
    assert on_duty(ROTA, extra, berlin(2026, 1, 10, 10) - TICK) == ["ana"]
    assert on_duty(ROTA, extra, berlin(2026, 1, 10, 10)) == ["ana", "dee"]
    assert on_duty(ROTA, extra, berlin(2026, 1, 10, 12)) == ["ana"]
    assert next_handover(ROTA, extra, berlin(2026, 1, 10, 7)) == utc(2026, 1, 10, 9)
    assert next_handover(ROTA, extra, berlin(2026, 1, 10, 10)) == utc(2026, 1, 10, 11)


def test_on_duty_override_replacing_someone_off_duty_still_adds() -> None:
    stray = [Override(1, "dee", "ben", berlin(2026, 1, 10, 7), berlin(2026, 1, 10, 8))]
    assert on_duty(ROTA, stray, berlin(2026, 1, 10, 7, 30)) == ["ana", "dee"]


def test_on_duty_override_users_win_over_replacement() -> None:
    # ben takes ana's watch while ana stands in for cai (who is off): ana is still on.
    both = [
        Override(1, "ben", "ana", berlin(2026, 1, 10, 6), berlin(2026, 1, 10, 14)),
        Override(2, "ana", "cai", berlin(2026, 1, 10, 6), berlin(2026, 1, 10, 14)),
    ]
    assert on_duty(ROTA, both, berlin(2026, 1, 10, 7)) == ["ana", "ben"]


def test_on_duty_override_without_a_user_still_takes_off_whom_it_replaces() -> None:
    # dee, standing in for ana, can no longer cover: ana stays off, and the hole shows.
    lost = [Override(1, None, "ana", berlin(2026, 1, 10, 7), berlin(2026, 1, 10, 8))]
    assert on_duty(ROTA, lost, berlin(2026, 1, 10, 7, 30)) == []
    assert on_duty(ROTA, lost, berlin(2026, 1, 10, 8)) == ["ana"]
    assert gaps(ROTA, lost, berlin(2026, 1, 10, 6), berlin(2026, 1, 10, 9)) == [
        (utc(2026, 1, 10, 6), utc(2026, 1, 10, 7))
    ]
    with pytest.raises(RosterError, match="override 1: names neither a user on duty nor one it replaces"):
        check_override(Override(1, None, None, berlin(2026, 1, 10, 7), berlin(2026, 1, 10, 8)))


# Gaps ----------------------------------------------------------------------------------


def test_gaps_finds_the_night_hole() -> None:
    days = rota(datetime(2026, 1, 5))[:2]
    assert gaps(days, [], berlin(2026, 1, 10), berlin(2026, 1, 12)) == [
        (utc(2026, 1, 9, 23), utc(2026, 1, 10, 5)),
        (utc(2026, 1, 10, 21), utc(2026, 1, 11, 5)),
        (utc(2026, 1, 11, 21), utc(2026, 1, 11, 23)),
    ]
    night = [Override(1, "dee", None, berlin(2026, 1, 10, 22), berlin(2026, 1, 11, 6))]
    assert gaps(days, night, berlin(2026, 1, 10, 12), berlin(2026, 1, 11, 12)) == []
    result = gaps(days, [], berlin(2026, 1, 10, 12), berlin(2026, 1, 11, 12))
    assert result == [(utc(2026, 1, 10, 21), utc(2026, 1, 11, 5))]
    assert all(a.tzinfo is UTC and b.tzinfo is UTC for a, b in result)


def test_gaps_overlapping_shifts() -> None:
    long = rota(datetime(2026, 1, 5), hours=10)
    assert gaps(long, [], berlin(2026, 1, 6), berlin(2026, 1, 13)) == []
    assert on_duty(long, [], berlin(2026, 1, 10, 15)) == ["ana", "ben"]


def test_gaps_empty_roster_and_empty_window() -> None:
    assert gaps([], [], berlin(2026, 1, 10), berlin(2026, 1, 11)) == [
        (utc(2026, 1, 9, 23), utc(2026, 1, 10, 23))
    ]
    assert gaps([], [], berlin(2026, 1, 10), berlin(2026, 1, 10)) == []


def test_gaps_none_when_a_stand_in_replaces_the_only_person() -> None:
    cover = [Override(1, "dee", "ana", berlin(2026, 1, 10, 9), berlin(2026, 1, 10, 10))]
    assert gaps(ROTA, cover, berlin(2026, 1, 10, 7), berlin(2026, 1, 10, 12)) == []


# Errors --------------------------------------------------------------------------------


def test_naive_instants_are_refused() -> None:
    naive = datetime(2026, 1, 10, 7)
    with pytest.raises(RosterError, match=r"at datetime\.datetime\(2026, 1, 10, 7, 0\) must be an aware"):
        on_duty(ROTA, [], naive)
    with pytest.raises(RosterError, match=r"^at .* must be an aware"):
        next_handover(ROTA, [], naive)
    with pytest.raises(RosterError, match=r"^end .* must be an aware"):
        gaps(ROTA, [], berlin(2026, 1, 10), naive)
    with pytest.raises(RosterError, match=r"^start .* must be an aware"):
        occurrences(ROTA[0], naive, berlin(2026, 1, 11))
    with pytest.raises(RosterError, match=r"^shift 7: start .* must be an aware"):
        check_shift(Shift(7, "ana", naive, HOUR))
    with pytest.raises(RosterError, match=r"^override 3: end .* must be an aware"):
        check_override(Override(3, "ana", None, berlin(2026, 1, 10), naive))


def test_check_shift_wants_a_zoneinfo() -> None:
    with pytest.raises(
        RosterError, match=r"shift 1: start 2026-01-10T06:00:00\+01:00 has time zone .*ZoneInfo"
    ):
        check_shift(Shift(1, "ana", datetime(2026, 1, 10, 6, tzinfo=timezone(HOUR)), HOUR))
    with pytest.raises(RosterError, match="ZoneInfo"):
        check_shift(Shift(1, "ana", utc(2026, 1, 10, 6), HOUR))
    check_shift(Shift(1, "ana", datetime(2026, 1, 10, 6, tzinfo=ZoneInfo("UTC")), HOUR))


@pytest.mark.parametrize("duration", [timedelta(0), -HOUR, timedelta(days=7) + TICK])
def test_check_shift_refuses_duration(duration: timedelta) -> None:
    with pytest.raises(RosterError, match=r"shift 1: duration .* must be more than 0 and at most 7 days"):
        check_shift(Shift(1, "ana", berlin(2026, 1, 10, 6), duration))


def test_check_shift_accepts_a_week() -> None:
    check_shift(Shift(1, "ana", berlin(2026, 1, 10, 6), timedelta(days=7), "FREQ=WEEKLY"))


@pytest.mark.parametrize("user", ["", "  "])
def test_check_shift_refuses_empty_user(user: str) -> None:
    with pytest.raises(RosterError, match="shift 1: user must be a non-empty user name"):
        check_shift(Shift(1, user, berlin(2026, 1, 10, 6), HOUR))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FREQ=DAILY;BYDAY=XX", r"rrule 'FREQ=DAILY;BYDAY=XX': BYDAY=XX: expected days such as MO,TU"),
        ("FREQ=FORTNIGHTLY", r"FREQ=FORTNIGHTLY is refused"),
        ("FREQ=HOURLY", r"rrule 'FREQ=HOURLY': FREQ=HOURLY is refused: shifts recur at most daily"),
        ("FREQ=MINUTELY;INTERVAL=30", r"FREQ=MINUTELY is refused"),
        ("FREQ=SECONDLY", r"FREQ=SECONDLY is refused"),
        ("FREQ=DAILY;BYHOUR=6,18", r"BYHOUR=6,18 is not allowed"),
        ("every day", r"rrule 'every day': expected one RRULE value"),
        ("", r"rrule '': expected one RRULE value"),
        ("FREQ", r"rrule 'FREQ': expected NAME=VALUE"),
        ("FREQ=DAILY;;", r"expected NAME=VALUE parts separated by ';', got ''"),
        ("INTERVAL=2", r"rrule 'INTERVAL=2': FREQ is required"),
        ("FREQ=DAILY;FREQ=WEEKLY", r"FREQ given twice"),
        ("FREQ=DAILY;COLOUR=RED", r"unknown part 'COLOUR'"),
        ("FREQ=DAILY;INTERVAL=0", r"INTERVAL=0: expected a whole number of at least 1"),
        ("FREQ=DAILY;COUNT=-1", r"COUNT=-1: expected a whole number of at least 1"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20260110", r"give COUNT or UNTIL, not both"),
        ("FREQ=DAILY;UNTIL=20260110T000000Z", r"UNTIL=20260110T000000Z: expected a local date or date-time"),
        ("FREQ=DAILY;UNTIL=tomorrow", r"UNTIL=TOMORROW: expected a local date"),
        ("DTSTART:20260101T060000\nRRULE:FREQ=DAILY", r"DTSTART is not allowed"),
        ("DTSTART;TZID=Europe/Berlin:20260101T060000", r"DTSTART is not allowed"),
        ("FREQ=DAILY\nEXDATE:20260102T060000", r"expected one RRULE value"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", r"BYMONTHDAY=32: expected numbers from -31 to 31, not 0, got '32'"),
        ("FREQ=YEARLY;BYMONTH=0", r"BYMONTH=0: expected numbers from 1 to 12"),
        ("FREQ=MONTHLY;BYDAY=54MO", r"BYDAY=54MO: expected days"),
        ("FREQ=MONTHLY;BYDAY=MO(+1)", r"expected days such as MO,TU"),
        ("FREQ=DAILY;WKST=XX", r"WKST=XX: expected one of MO"),
    ],
)
def test_parse_rrule_refuses(text: str, message: str) -> None:
    with pytest.raises(RosterError, match=message):
        parse_rrule(text)
    with pytest.raises(RosterError, match=message):
        check_shift(Shift(1, "ana", berlin(2026, 1, 10, 6), HOUR, text))


def test_check_shift_refuses_a_rule_that_never_matches() -> None:
    never = Shift(1, "ana", berlin(2026, 1, 10, 6), HOUR, "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")
    with pytest.raises(
        RosterError, match=r"shift 1: rrule '.*' matches no date from 2026-01-10T06:00:00\+01:00"
    ):
        check_shift(never)
    with pytest.raises(RosterError, match="matches no date"):
        on_duty([never], [], berlin(2026, 1, 10, 7))


def test_check_override_refuses() -> None:
    a, b = berlin(2026, 1, 10, 6), berlin(2026, 1, 10, 14)
    with pytest.raises(RosterError, match=r"override 1: end 2026-01-10T06:00:00\+01:00 must be after start"):
        check_override(Override(1, "ana", None, b, a))
    with pytest.raises(RosterError, match="must be after start"):
        check_override(Override(1, "ana", None, a, a))
    # By the wall clock 02:45 follows 02:30, but the first 02:45 comes before the second 02:30.
    with pytest.raises(RosterError, match="must be after start"):
        check_override(
            Override(1, "ana", None, berlin(2026, 10, 25, 2, 30).replace(fold=1), berlin(2026, 10, 25, 2, 45))
        )
    with pytest.raises(
        RosterError, match=r"override 1: lasts 31 days, 0:00:00.000001, more than the 31 days"
    ):
        check_override(Override(1, "ana", None, a, a + timedelta(days=31) + TICK))
    check_override(Override(1, "ana", None, a, a + timedelta(days=31)))
    with pytest.raises(RosterError, match="override 1: user 'ana' cannot replace themselves"):
        check_override(Override(1, "ana", "ana", a, b))
    with pytest.raises(RosterError, match="override 1: user must be a non-empty user name, got ''"):
        check_override(Override(1, "", "ana", a, b))
    with pytest.raises(RosterError, match="override 1: replaces must be a non-empty user name"):
        check_override(Override(1, "ana", "", a, b))
    with pytest.raises(RosterError, match="override 1"):
        on_duty(ROTA, [Override(1, "ana", "ana", a, b)], a)


def test_next_handover_refuses_negative_horizon() -> None:
    with pytest.raises(RosterError, match="horizon"):
        next_handover(ROTA, [], berlin(2026, 1, 10, 7), horizon=-HOUR)


def test_roster_error_is_a_value_error() -> None:
    assert issubclass(RosterError, ValueError)


# Properties: the engine against brute force ------------------------------------------------

USERS = ("ana", "ben", "cai", "dee")
ZONES = (BERLIN, NEW_YORK, ZoneInfo("UTC"), ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kolkata"))
RULES = (
    None,
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU",
    "FREQ=WEEKLY;BYDAY=SA;COUNT=3",
    "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=MONTHLY;BYMONTHDAY=1,15",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=DAILY;UNTIL=20260401T120000",
)
HALF_HOUR = timedelta(minutes=30)
# Clock changes in 2026: New York, Berlin, Lord Howe (half an hour) in spring and autumn.
CHANGES = tuple(utc(2026, m, d) for m, d in ((3, 8), (3, 29), (4, 5), (10, 4), (10, 25), (11, 1)))


@st.composite
def shifts(draw: st.DrawFn, years_back: int = 1) -> Shift:
    # Everything sits on a half-hour grid so that random instants land on boundaries.
    wall = datetime(2026, 1, 1) + HALF_HOUR * draw(st.integers(-48 * 366 * years_back, 48 * 330))
    start = wall.replace(tzinfo=draw(st.sampled_from(ZONES)), fold=draw(st.integers(0, 1)))
    duration = HALF_HOUR * draw(st.one_of(st.integers(1, 48), st.integers(1, 48 * 7)))
    return Shift(
        draw(st.integers(1, 99)), draw(st.sampled_from(USERS)), start, duration, draw(st.sampled_from(RULES))
    )


def instants() -> st.SearchStrategy[datetime]:
    anywhere = st.integers(0, 48 * 365).map(lambda n: utc(2026, 1, 1) + HALF_HOUR * n)
    near_change = st.tuples(st.sampled_from(CHANGES), st.integers(-48 * 3, 48 * 3)).map(
        lambda p: p[0] + HALF_HOUR * p[1]
    )
    return st.one_of(anywhere, near_change)


@st.composite
def overrides_near(draw: st.DrawFn, at: datetime) -> Override:
    user = draw(st.sampled_from(USERS))
    replaces = draw(st.one_of(st.none(), st.sampled_from([u for u in USERS if u != user])))
    start = at + HALF_HOUR * draw(st.integers(-96, 96))
    return Override(
        draw(st.integers(1, 99)), user, replaces, start, start + HALF_HOUR * draw(st.integers(1, 96))
    )


def brute_occurrences(shift: Shift, until: datetime) -> list[tuple[datetime, datetime]]:
    """Every occurrence starting before `until`, expanded one by one from the shift's start."""
    first = shift.start.replace(tzinfo=None)
    walls = [first]
    if shift.rrule is not None:
        walls = []
        for wall in rrulestr(shift.rrule, dtstart=first):
            if wall > until.replace(tzinfo=None) + timedelta(days=1):
                break
            walls.append(wall)
    out = []
    for wall in walls:
        fold = shift.start.fold if wall == first else 0
        s = wall.replace(tzinfo=shift.start.tzinfo, fold=fold).astimezone(UTC)
        if s < until:
            out.append((s, s + shift.duration))
    return sorted(out)


def brute_on_duty(
    expanded: list[tuple[str, list[tuple[datetime, datetime]]]], overrides: list[Override], at: datetime
) -> list[str]:
    on = {user for user, spans in expanded if any(s <= at < e for s, e in spans)}
    active = [o for o in overrides if o.start <= at < o.end]
    return sorted((on - {o.replaces for o in active}) | {o.user for o in active})


@given(roster=st.lists(shifts(), max_size=6), data=st.data())
def test_on_duty_matches_brute_force_and_holds_until_next_handover(
    roster: list[Shift], data: st.DataObject
) -> None:
    at = data.draw(instants())
    overrides = data.draw(st.lists(overrides_near(at), max_size=3))
    horizon = timedelta(days=3)
    expanded = [(s.user, brute_occurrences(s, at + horizon + HOUR)) for s in roster]
    expected = brute_on_duty(expanded, overrides, at)
    assert on_duty(roster, overrides, at) == expected

    handover = next_handover(roster, overrides, at, horizon)
    end = at + horizon if handover is None else handover
    assert at < end <= at + horizon
    for sample in (at + (end - at) / 4, at + (end - at) / 2, at + (end - at) * 3 / 4, end - TICK):
        assert brute_on_duty(expanded, overrides, sample) == expected
        assert on_duty(roster, overrides, sample) == expected
    if handover is not None:
        assert handover.tzinfo is UTC
        assert brute_on_duty(expanded, overrides, handover) != expected
        assert on_duty(roster, overrides, handover) != expected


@given(roster=st.lists(shifts(), max_size=5), data=st.data())
def test_gaps_are_exactly_where_nobody_is_on_duty(roster: list[Shift], data: st.DataObject) -> None:
    start = data.draw(instants())
    end = start + HALF_HOUR * data.draw(st.integers(1, 48 * 2))
    overrides = data.draw(st.lists(overrides_near(start), max_size=3))
    expanded = [(s.user, brute_occurrences(s, end + HOUR)) for s in roster]
    holes = gaps(roster, overrides, start, end)
    for (_, b), (a, _) in pairwise(holes):
        assert b < a  # ordered and maximal: never touching
    for a, b in holes:
        assert start <= a < b <= end
        assert a.tzinfo is UTC
        assert b.tzinfo is UTC
        assert brute_on_duty(expanded, overrides, a) == []
        assert brute_on_duty(expanded, overrides, b - TICK) == []
        if a > start:
            assert brute_on_duty(expanded, overrides, a - TICK) != []
        if b < end:
            assert brute_on_duty(expanded, overrides, b) != []
    for sample in data.draw(st.lists(st.integers(0, 95), max_size=8)):
        at = start + (end - start) * sample / 96
        assert (brute_on_duty(expanded, overrides, at) == []) == any(a <= at < b for a, b in holes)


@given(shift=shifts(years_back=6), at=instants(), days=st.integers(1, 10))
def test_occurrences_match_expansion_from_the_start(shift: Shift, at: datetime, days: int) -> None:
    end = at + timedelta(days=days)
    expected = [(s, e) for s, e in brute_occurrences(shift, end) if e > at]
    assert occurrences(shift, at, end) == expected


@given(text=st.sampled_from([r for r in RULES if r is not None]))
def test_parse_rrule_is_idempotent(text: str) -> None:
    assert parse_rrule(parse_rrule(text)) == parse_rrule(text)
    assert parse_rrule(text.lower()) == parse_rrule(text)
