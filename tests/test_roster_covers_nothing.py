"""A user disabled after being put on the roster covers nothing, but is not forgotten:
an override that took someone off duty for them keeps that person off (a gap, which
alarms, rather than the replaced officer quietly back on duty), and their shifts and
overrides stay listed, marked, in `openline roster` and on the console's roster page."""

from __future__ import annotations

from typing import Any

from openline.core.clock import FakeClock, parse_rfc3339
from openline.services import alerts, rosters
from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import cli, cli_json, cli_table
from tests.test_console import add_user, browser, log_in

# wo1 and cmdr both on a week's shift from here, so that they cover 06:00-07:00Z.
WEEK_FROM = "2026-11-26T00:00"
STAND_IN = ("--start", "2026-11-29T06:00:00Z", "--end", "2026-11-29T07:00:00Z")
AT = ("--at", "2026-11-29T06:30:00Z")
MARK = "(disabled: covers nothing)"


def _floor(node: Node, clock: FakeClock) -> None:
    """wo1 and cmdr on duty all week; the station set up the day before."""
    clock.set(parse_rfc3339("2026-11-25T00:00:00Z"))
    for name, role in (("wo1", Role.WATCH_OFFICER), ("cmdr", Role.COMMANDER)):
        add_user(node, name, role)
        shift = {"user": name, "start_local": WEEK_FROM, "tz": "UTC", "duration_s": 7 * 86_400}
        r = node.api.post("/api/v1/shifts", json=shift)
        assert r.status_code == 201, r.text


def _stand_in_then_disable(node: Node, monkeypatch: Any) -> None:
    """wo1 stands in for cmdr, off sick, from 06:00 to 07:00Z; then wo1 is disabled."""
    added = cli(node, monkeypatch, "override", "add", "wo1", "--replaces", "cmdr", *STAND_IN)
    assert added.exit_code == 0, added.output
    assert cli_json(node, monkeypatch, "roster", *AT)["on_duty"] == ["wo1"]
    disabled = cli(node, monkeypatch, "user", "disable", "wo1")
    assert disabled.exit_code == 0, disabled.output


def test_disabling_a_stand_in_leaves_a_gap_not_the_sick_officer_on_duty(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock
) -> None:
    _, b = nodes
    _floor(b, clock)
    _stand_in_then_disable(b, monkeypatch)
    roster = cli_json(b, monkeypatch, "roster", *AT)
    assert roster["on_duty"] == []  # cmdr stays off, as the supervisor decided
    assert [(g["from"]["utc"], g["until"]["utc"]) for g in roster["gaps"]] == [
        ("2026-11-29T06:30:00.000000Z", "2026-11-29T07:00:00.000000Z")
    ]
    assert roster["on_duty_after_handover"] == ["cmdr"]  # back at the override's end
    assert cli_json(b, monkeypatch, "roster", "--at", "2026-11-29T05:59:59Z")["on_duty"] == ["cmdr"]
    # The alarm every gap raises, for the override's window.
    clock.set(parse_rfc3339("2026-11-29T05:00:00Z"))
    assert rosters.check_roster_gaps(b.station) == 1
    (alert,) = alerts.open_of_kind(b.station, "roster_gap")
    assert alert["subject"] == "2026-11-29T06:00:00Z"
    assert alert["detail"]["until"] == "2026-11-29T07:00:00.000000Z"


def test_someone_else_covering_fills_the_stand_ins_window(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock
) -> None:
    _, b = nodes
    _floor(b, clock)
    add_user(b, "wo2", Role.WATCH_OFFICER)
    _stand_in_then_disable(b, monkeypatch)
    added = cli(b, monkeypatch, "override", "add", "wo2", *STAND_IN)
    assert added.exit_code == 0, added.output
    roster = cli_json(b, monkeypatch, "roster", *AT)
    assert roster["on_duty"] == ["wo2"]
    assert roster["gaps"] == []


def test_the_roster_lists_a_disabled_users_entries_marked(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock
) -> None:
    _, b = nodes
    _floor(b, clock)
    _stand_in_then_disable(b, monkeypatch)
    roster = cli_json(b, monkeypatch, "roster", *AT)
    assert [(x["user"], x["covers_nothing"]) for x in roster["shifts"]] == [
        ("wo1", "disabled"),
        ("cmdr", None),
    ]
    assert [(x["user"], x["covers_nothing"]) for x in roster["overrides"]] == [("wo1", "disabled")]
    for width in (80, 200):
        text = cli_table(b, monkeypatch, "roster", *AT, columns=width)
        assert text.count(f"wo1 {MARK}") == 2, text  # the shift and the override
        assert "cmdr (" not in text, text  # cmdr's shift, and as whom wo1 replaces, unmarked


def test_the_roster_page_shows_a_disabled_users_entries_marked(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock
) -> None:
    _, b = nodes
    _floor(b, clock)
    _stand_in_then_disable(b, monkeypatch)
    clock.set(parse_rfc3339("2026-11-29T00:00:00Z"))
    c = browser(b)
    log_in(c, "cmdr")
    page = c.get("/roster")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    warn = f'<span class="warn">{MARK}</span>'
    day = '<strong>wo1</strong> 00:00\u201300:00 <span class="quiet">(00:00Z\u201300:00Z)</span>'
    assert text.count(f"{day} {warn}") == 4  # each day the shift runs into, to 2026-12-03
    stand_in = '<strong>wo1</strong> 06:00\u201307:00 <span class="quiet">(06:00Z\u201307:00Z)</span>'
    assert f'{stand_in} <span class="warn">override for cmdr</span> {warn}' in text
    assert text.count(MARK) == 4 + 1  # cmdr's shift is not marked
    assert "Nobody on duty from 2026-11-29T06:00Z (06:00) until 2026-11-29T07:00Z (07:00)" in text


def test_the_board_says_who_takes_over_at_the_next_handover(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock
) -> None:
    """The board said only when the next handover is; `openline roster` says to whom."""
    _, b = nodes
    _floor(b, clock)
    _stand_in_then_disable(b, monkeypatch)
    clock.set(parse_rfc3339("2026-11-29T06:30:00Z"))  # nobody on duty until cmdr at 07:00
    c = browser(b)
    log_in(c, "cmdr")
    board = " ".join(c.get("/").text.split())
    assert (
        '<p class="quiet" data-next-handover>Handover <time data-time="2026-11-29T07:00:00.000000Z">'
        "2026-11-29 07:00:00Z</time> to cmdr</p>"
    ) in board


def test_the_same_override_twice_is_refused_and_changes_nothing(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock
) -> None:
    """A command run again stored a twin: removing "the" override left the other in force."""
    _, b = nodes
    _floor(b, clock)
    add_user(b, "wo2", Role.WATCH_OFFICER)
    first = cli(b, monkeypatch, "override", "add", "wo2", "--replaces", "cmdr", *STAND_IN)
    assert first.exit_code == 0, first.output
    before = cli_json(b, monkeypatch, "roster")["overrides"]
    again = cli(b, monkeypatch, "override", "add", "wo2", "--replaces", "cmdr", *STAND_IN)
    assert again.exit_code == 1
    assert f"override {before[0]['id']} is this one already (wo2 for cmdr); nothing changed" in again.output
    assert cli_json(b, monkeypatch, "roster")["overrides"] == before
    # Another window, or no one replaced, is another override.
    for other in (("--replaces", "wo1", *STAND_IN), STAND_IN):
        assert cli(b, monkeypatch, "override", "add", "wo2", *other).exit_code == 0
    assert len(cli_json(b, monkeypatch, "roster")["overrides"]) == 3
