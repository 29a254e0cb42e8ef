"""The readable output of the real CLI, in process. Listings: every id whole (it is what
`pickup`, `show` and `notice ack` take) and no value cut to an ellipsis, in an 80-column
terminal as in a wide one; times in UTC to the second. --json keeps the microseconds."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from openline.cli import render
from openline.cli.render import listing, when
from openline.core.clock import FakeClock
from tests.inproc import Node, picked_up, place_and_ring
from tests.notice_docs import cli, cli_json, cli_table, send, soon

# A table's time: "2026-11-27 16:06:14Z", never the RFC 3339 form with microseconds.
SHORT_TIME = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ")
LONG_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _assert_shown(short_time: str, text: str) -> None:
    """The time to the second is in the table (a narrow column may wrap it at its space)
    and no time is shown with microseconds."""
    assert SHORT_TIME.fullmatch(short_time), short_time
    day, clock = short_time.split(" ")
    assert day in text, text
    assert clock in text, text
    assert not LONG_TIME.search(text), text


def test_calls_listing_keeps_whole_ids_and_shows_times_to_the_second(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b, subject="Convoy of 12 trucks at checkpoint 4, 14:00Z", priority="flash")
    placed = when(cli_json(b, monkeypatch, "calls")[0]["placed_at"])
    narrow = cli_table(b, monkeypatch, "calls")
    assert all(len(line) <= 80 for line in narrow.splitlines()), narrow
    assert f"id {call_id}" in narrow  # too narrow for the table: one block per call
    assert "subject Convoy of 12 trucks at checkpoint 4, 14:00Z" in narrow
    assert f"placed {placed}" in narrow
    assert "…" not in narrow
    wide = cli_table(b, monkeypatch, "calls", columns=200)
    assert f"│ {call_id} │ stuttgart │ in  │ flash    │ ringing │ Convoy of 12 trucks" in wide
    _assert_shown(placed, wide)


def test_notices_listing_keeps_whole_ids_and_shows_times_to_the_second(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock
) -> None:
    a, b = nodes
    sent = send(a, "moscow", soon(a, 48.0, 9.0, text="Convoy"))
    a.drain()
    starts = when(cli_json(b, monkeypatch, "notices")[0]["starts_at"])
    for width in (80, 200):
        text = cli_table(b, monkeypatch, "notices", columns=width)
        assert all(len(line) <= width for line in text.splitlines()), text
        assert sent["id"] in text
        assert "…" not in text
        _assert_shown(starts, text)
    shown = cli(b, monkeypatch, "notice", "show", sent["id"])
    assert LONG_TIME.search(shown.stdout), "notice show keeps the microseconds"
    clock.advance(1)
    newer = send(a, "moscow", soon(a, 49.0, 9.0, text="Second convoy"))
    a.drain()
    assert [n["id"] for n in cli_json(b, monkeypatch, "notices", "--limit", "1")] == [newer["id"]]
    refused = cli(b, monkeypatch, "notices", "--limit", "0")
    assert refused.exit_code == 2  # a usage mistake, refused before anything is sent
    assert "Invalid value for '--limit'" in refused.stderr


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-:", min_size=1, max_size=30)
_VALUE = st.lists(_WORD, min_size=0, max_size=6).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    width=st.integers(min_value=40, max_value=200),
    rows=st.lists(st.tuples(_WORD, _VALUE, _VALUE, _VALUE), min_size=1, max_size=4),
    wrapped=st.sets(st.sampled_from(["kind", "subject", "at"])),
)
def test_listing_never_cuts_a_value_nor_overflows_the_terminal(
    width: int, rows: list[tuple[str, str, str, str]], wrapped: set[str]
) -> None:
    console = render._Console(width=width, markup=False, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    original = render.out
    render.out = console
    try:
        listing(("id", "kind", "subject", "at"), rows, wrap=sorted(wrapped))
    finally:
        render.out = original
        console.file.close()
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), text
    assert "…" not in text
    for row in rows:
        # A table column is never narrower than its longest word and a block's line never
        # narrower than 38 cells, so values wrap between words only: every word is whole.
        for word in " ".join(row).split():
            assert word in text, (word, text)


@pytest.mark.parametrize(
    ("api", "table"),
    [
        ("2026-11-27T16:06:14.674836Z", "2026-11-27 16:06:14Z"),
        ("2026-11-27T23:59:59.999999Z", "2026-11-27 23:59:59Z"),  # cut, never rounded up
        ("1970-01-01T00:00:00.000000Z", "1970-01-01 00:00:00Z"),
        ("2026-11-27T18:06:14.000000+02:00", "2026-11-27 16:06:14Z"),
    ],
)
def test_when_shows_an_api_time_in_utc_to_the_second(api: str, table: str) -> None:
    assert when(api) == table


def test_when_shows_absent_and_unparsable_times_as_they_are() -> None:
    assert when(None) == ""
    assert when(None, "never") == "never"
    assert when("not a time") == "not a time"


def test_say_reports_the_message_queued_not_the_call(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    text = cli_table(b, monkeypatch, "say", call_id, "Moscow here. Go ahead.")
    (message,) = cli_json(b, monkeypatch, "show", call_id)["messages"]
    assert f"Message {message['id']}: queued" in text
    assert f"Call {call_id}" not in text  # "queued" is the message's status, not the call's state


# What a peer or a planner may type that rich would read as markup: a closing tag with
# nothing to close (a crash), a style (restyled), an unknown tag (swallowed), a link.
def _joined(text: str) -> str:
    """`text` with its wrapped lines joined again: words one space apart, and the `│` that
    marks a further line of peer text left out."""
    return " ".join(" ".join(line.removeprefix(render.MARK.rstrip()).split()) for line in text.splitlines())


MARKUP = "Convoy [/] at [bold]gate[/bold] [north] [link=http://e.vil]here[/link]"


@pytest.mark.parametrize("width", [80, 200])
def test_peer_text_that_looks_like_markup_is_shown_as_it_is(
    nodes: tuple[Node, Node], monkeypatch: Any, width: int
) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b, subject=MARKUP)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    b.drain()
    assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": MARKUP}).status_code == 201
    assert a.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": MARKUP}).status_code == 200
    a.drain()
    sent = send(a, "moscow", soon(a, 48.0, 9.0, text=MARKUP))
    a.drain()
    for args in (("calls",), ("show", call_id), ("notices",), ("notice", "show", sent["id"]), ("alerts",)):
        text = cli_table(b, monkeypatch, *args, columns=width)  # exit status 0, or it fails here
        if args[0] in ("calls", "show") or args[:2] == ("notice", "show"):
            assert MARKUP in _joined(text), (args, text)
    shown = cli_table(b, monkeypatch, "show", call_id, columns=width)
    flat = _joined(shown)
    assert f"Summary {MARKUP}" in flat
    assert flat.count(MARKUP) == 3, shown  # the subject, the message and the summary


def test_notices_received_in_one_batch_are_listed_newest_first(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    a, b = nodes
    first = send(a, "moscow", soon(a, 48.0, 9.0, text="First"))
    second = send(a, "moscow", soon(a, 49.0, 9.0, text="Second"))
    a.drain()  # one batch: moscow stores both in one transaction, at one time
    listed = cli_json(b, monkeypatch, "notices")
    assert listed[0]["created_at"] == listed[1]["created_at"]
    assert [n["id"] for n in listed] == [second["id"], first["id"]]


def test_a_notice_conflict_alert_names_both_notices(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    a, b = nodes
    theirs = send(a, "moscow", soon(a, 48.0, 9.0, text="Convoy"))
    a.drain()
    ours = send(b, "stuttgart", soon(b, 48.001, 9.001, text="Patrol"))  # overlaps theirs
    (alert,) = [x for x in cli_json(b, monkeypatch, "alerts") if x["kind"] == "notice_conflict"]
    assert alert["subject"].startswith("conflict ")  # the stored subject: a row number
    text = " ".join(cli_table(b, monkeypatch, "alerts", columns=200).split())
    assert f"notice {ours['id']} volume 1 (stuttgart) with notice {theirs['id']} volume 1 (stuttgart)" in text


def test_a_listing_cut_at_its_limit_says_more_may_follow(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    """`openline calls` and `openline notices` list the newest --limit (100 by default): a
    full page says older ones may follow, so that it is not taken for the whole."""
    a, b = nodes
    for subject in ("First", "Second"):
        place_and_ring(a, b, subject)
    for lat in (48.0, 49.0):
        send(a, "moscow", soon(a, lat, 9.0))
    newest = a.api.get("/api/v1/notices", params={"limit": 1}).json()[0]["id"]
    oldest = a.api.get("/api/v1/calls", params={"limit": 1}).json()[0]["placed_at"]
    for listing_, more in (
        ("calls", f"there may be more (--until {oldest} lists the next 1, or a filter)."),  # by time
        ("notices", f"there may be more (--before {newest} lists the next 1, or a filter)."),
    ):
        assert f"1 are listed, newest first; {more}" in cli_table(
            a, monkeypatch, listing_, "--limit", "1", columns=200
        )
        assert "there may be more" not in cli_table(a, monkeypatch, listing_, "--limit", "3")
    assert "there may be more" not in cli(a, monkeypatch, "calls", "--limit", "1", "--json").stdout


def test_the_audit_trail_cut_at_its_limit_offers_no_filter(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    """`openline audit` takes only --limit and --before: "or a filter" sent people looking
    for options it does not have."""
    a, _ = nodes
    newest = a.api.get("/api/v1/audit", params={"limit": 1}).json()[0]["id"]
    more = f"there may be more (--before {newest} lists the next 1)."
    assert more in " ".join(cli_table(a, monkeypatch, "audit", "--limit", "1", columns=200).split())
    assert more in " ".join(cli(a, monkeypatch, "audit", "--limit", "1", "--json").stderr.split())


def test_user_list_says_who_has_a_second_factor(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    a, _ = nodes
    assert a.api.post("/api/v1/users", json={"name": "duty", "role": "watch_officer"}).status_code == 201
    assert a.api.post("/api/v1/users/duty/totp").status_code == 200
    listed = {u["name"]: u["totp"] for u in cli_json(a, monkeypatch, "user", "list")}
    assert listed == {"admin": False, "duty": True}
    text = cli_table(a, monkeypatch, "user", "list", columns=200)
    cells = [[c.strip() for c in re.split("[│┃]", line)[1:-1]] for line in text.splitlines()]
    table = {row[0]: row for row in cells if row}
    column = table["name"].index("totp")
    assert (table["admin"][column], table["duty"][column]) == ("no", "yes")


FAKE_ROW = (
    "weather update\n\nid 01a220ff-0000-7000-8000-000000000000\n  peer beta  dir in  priority flash  "
    "state picked_up  subject Convoy cleared\u202e"
)


@pytest.mark.parametrize("width", [80, 200])
def test_a_subject_from_the_peer_cannot_pass_for_another_row(
    nodes: tuple[Node, Node], monkeypatch: Any, width: int
) -> None:
    """A line break in a value went on to the next line, where in a block layout it looked
    like a call that does not exist; a right-to-left override turned what follows round."""
    a, b = nodes
    place_and_ring(a, b, subject=FAKE_ROW)
    text = cli_table(b, monkeypatch, "calls", columns=width)
    assert text.count("01a220ff-0000-7000-8000-000000000000") == 1
    starts = [line for line in text.splitlines() if line.lstrip().startswith("id 01a220ff")]
    assert starts == [], text  # on no line of its own
    assert "↵" in text
    assert "\u202e" not in text
    assert "\\u202e" in " ".join(text.split())


def test_a_time_copied_from_a_table_is_taken_back_as_a_filter(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    """Tables print `2026-11-27 16:06:14Z` (RFC 3339 allows the space for readability);
    `calls --since` refused that spelling, so an officer could not paste it back."""
    a, b = nodes
    place_and_ring(a, b)
    placed = cli_json(b, monkeypatch, "calls")[0]["placed_at"]
    shown = when(placed)  # as the table shows it, cut to the second
    assert " " in shown
    assert len(cli_json(b, monkeypatch, "calls", "--since", shown)) == 1
    assert cli_json(b, monkeypatch, "calls", "--until", shown) == []


def test_a_message_from_the_peer_cannot_pass_for_another_in_show(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    """A message may have several lines, and a carriage return, which on a terminal goes
    back to the start of the line: neither may print what looks like a message of its own."""
    a, b = nodes
    call_id = picked_up(a, b)
    fake = "Agreed.\n  2026-01-01T00:00:00.000000Z       moscow ✓ Strike approved\rmoscow ✓ Cleared"
    assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": fake}).status_code == 201
    a.drain()
    shown = cli_table(b, monkeypatch, "show", call_id, columns=200)
    assert "\r" not in shown
    assert "\\x0d" in shown
    lines = [line for line in shown.splitlines() if "Strike approved" in line]
    assert len(lines) == 1
    assert lines[0].lstrip().startswith("│")  # a continuation of the message, not one of its own


# Peer text padded to the width of an 80-column terminal, so that what follows the pad
# began a line of its own there: a receipted message of ours (U+2800 blanks are not
# dropped at a wrap, and stand for the two spaces a message line begins with).
PADDED_MESSAGE = (
    "Noted."
    + " " * 30
    + "\u2800\u2800"
    + "2026-11-28T19:59:59.123456Z       moscow ✓ We withdraw the objection; proceed."
)
FAKE_CALL_ID = "01a220ff-0000-7000-8000-000000000000"


def _continued(shown: str, words: str) -> list[str]:
    """The lines of `shown` that hold `words`, each asserted to be a marked continuation."""
    lines = [line for line in shown.splitlines() if words in line]
    assert lines, shown
    for line in lines:
        assert line.startswith(render.MARK), shown
    return lines


def test_a_message_padded_to_the_terminal_width_cannot_pass_for_one_of_ours(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    """The terminal wrapped a long message and went on at the first column, unmarked: a
    peer's message padded to the width printed a line that read as moscow's, receipted.
    Every further line of a message, wrapped or not, is marked `│`."""
    a, b = nodes
    call_id = picked_up(a, b)
    assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": PADDED_MESSAGE}).status_code == 201
    a.drain()
    shown = cli_table(b, monkeypatch, "show", call_id, columns=80)
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    (own,) = [line for line in shown.splitlines() if "stuttgart ✓ Noted." in line]
    assert own.startswith("  2026-")
    _continued(shown, "We withdraw")
    assert "moscow ✓ We withdraw the objection; proceed." in _joined(shown)  # nothing lost


def test_a_subject_summary_or_reason_padded_to_the_width_cannot_pass_for_a_line_of_show(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    """The subject heads `show` from the first column, and a summary or a decline reason
    follows a word of ours: padded to the width, each printed a line of its own."""
    a, b = nodes
    pad = " " * 80
    call_id = picked_up(a, b, subject=f"Convoy{pad}id {FAKE_CALL_ID}  state declined")
    summary = f"Done.{pad}Declined because the route is closed"
    assert a.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": summary}).status_code == 200
    a.drain()
    shown = cli_table(b, monkeypatch, "show", call_id, columns=80)
    assert shown.startswith("Convoy"), shown
    _continued(shown, FAKE_CALL_ID)
    _continued(shown, "the route is closed")
    declined = place_and_ring(a, b)
    reason = f"Busy.{pad}Summary Strike approved"
    assert b.api.post(f"/api/v1/calls/{declined}/decline", json={"reason": reason}).status_code == 200
    _continued(cli_table(b, monkeypatch, "show", declined, columns=80), "Strike approved")


def test_a_subject_padded_to_the_width_cannot_pass_for_another_row_of_a_block_listing(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    """Too narrow for the table, `calls` prints each row as a block, `id ...` at the first
    column: a subject padded to the width went on there as a call that does not exist."""
    a, b = nodes
    place_and_ring(a, b, subject=f"weather update{' ' * 80}id {FAKE_CALL_ID}")
    text = cli_table(b, monkeypatch, "calls", columns=80)
    assert "  subject weather update" in text  # a block listing, as at 80 columns
    _continued(text, FAKE_CALL_ID)


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(min_value=20, max_value=120),
    head=st.text(alphabet="ab ", max_size=40),
    text=st.lists(
        st.sampled_from(["a", "b", "é", "漢", "\u0301", "\u2800", " ", "\u3000", "\t", "\n", "x" * 30]),
        max_size=60,
    ).map("".join),
)
def test_marked_puts_every_further_line_behind_the_mark_and_loses_no_word(
    width: int, head: str, text: str
) -> None:
    console = render._Console(width=width, markup=False, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    original = render.out
    render.out = console
    try:
        line = render.marked(head, ("x", "bold"), text)
        console.print(line)
    finally:
        render.out = original
        console.file.close()
    lines = console.export_text().splitlines()
    assert len(lines) == len(line.plain.split("\n")), "the terminal wrapped none of it itself"
    assert all(cell_len(shown) <= width for shown in lines), lines
    assert all(shown.startswith(render.MARK.rstrip()) for shown in lines[1:]), lines
    kept = "".join(shown.removeprefix(render.MARK.rstrip()) for shown in lines[1:])
    words = f"{head}x{text}".split()
    assert "".join("".join(lines[:1]).split() + kept.split()) == "".join(words)


ZONE = "America/Argentina/Buenos_Aires"
RRULE = "FREQ=WEEKLY;BYDAY=MO,TU,WE"


def _roster(node: Node, clock: FakeClock) -> None:
    """duty-officer on a weekly shift in a long-named zone (it starts on 2026-11-28), and
    on duty by an override from 2026-11-29 10:00Z for a day."""
    r = node.api.post("/api/v1/users", json={"name": "duty-officer", "role": "watch_officer"})
    assert r.status_code == 201, r.text
    shift = {"user": "duty-officer", "start_local": "2026-11-28T06:00", "tz": ZONE, "duration_s": 8 * 3600}
    r = node.api.post("/api/v1/shifts", json={**shift, "rrule": RRULE})
    assert r.status_code == 201, r.text
    override = {"user": "duty-officer", "start": "2026-11-29T10:00:00Z", "end": "2026-11-30T10:00:00Z"}
    assert node.api.post("/api/v1/overrides", json=override).status_code == 201


@pytest.mark.parametrize("width", [80, 200])
def test_roster_tables_never_cut_a_value_short(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock, width: int
) -> None:
    a, _ = nodes
    _roster(a, clock)
    text = cli_table(a, monkeypatch, "roster", "--at", "2026-11-29T12:00:00Z", columns=width)
    assert all(len(line) <= width for line in text.splitlines()), text
    assert "…" not in text
    for whole in (ZONE, RRULE, "2026-11-28T06:00", "duty-officer"):
        assert whole in text, (whole, text)
    flat = " ".join(text.split())
    assert "On duty at 2026-11-29 12:00:00Z" in flat
    _assert_shown("2026-11-29 10:00:00Z", text)  # the override's start, to the second
    _assert_shown("2026-11-30 10:00:00Z", text)


def test_roster_json_times_are_utc_with_microseconds(
    nodes: tuple[Node, Node], monkeypatch: Any, clock: FakeClock
) -> None:
    a, _ = nodes
    _roster(a, clock)
    roster = cli_json(a, monkeypatch, "roster", "--at", "2026-11-29T12:00:00Z")
    assert roster["at"] == {"utc": "2026-11-29T12:00:00.000000Z", "local": "2026-11-29T12:00:00+00:00"}
    assert roster["overrides"][0]["start"]["utc"] == "2026-11-29T10:00:00.000000Z"
    assert roster["overrides"][0]["end"]["utc"] == "2026-11-30T10:00:00.000000Z"
    times = [roster["at"], roster["next_handover"], *(t for g in roster["gaps"] for t in g.values())]
    assert all(LONG_TIME.fullmatch(t["utc"]) for t in times if t is not None), times
    assert roster["on_duty"] == ["duty-officer"]


def test_a_notice_text_padded_to_the_width_cannot_pass_for_its_id_line(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    """`notice show` prints the text after the heading, then `id … state …`: a text padded
    to the width printed a line of its own that read as that line, in another state."""
    a, b = nodes
    fake = f"{' ' * 80}id {FAKE_CALL_ID}  state acknowledged"
    notice = send(a, "moscow", {**soon(a, 48.7, 9.1), "text": f"Air corridor{fake}"})
    a.drain()
    shown = cli_table(b, monkeypatch, "notice", "show", notice["id"], columns=80)
    (ours,) = [line for line in shown.splitlines() if line.startswith("id ")]
    assert ours.startswith(f"id {notice['id']}  state "), shown
    _continued(shown, FAKE_CALL_ID)
