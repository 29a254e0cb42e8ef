"""What the watch sees of a conflict: the board's alert names both notices, their volumes
and lines, with links to them; and a recorded conflict says why it first stopped holding,
and when, the same from either notice, on either station, as its alert's `over` says."""

from __future__ import annotations

import html
import re
from typing import Any

from openline.core.clock import FakeClock, rfc3339
from openline.services import notice_expiry, notices
from tests.inproc import Node, place_and_ring
from tests.notice_docs import HOUR, MINUTE, act, alerts, circle, cli_table, send, show, site, soon
from tests.test_console_notices_actions import _officer


def _board_alerts(node: Node) -> dict[int, tuple[str, str]]:
    """The board's open alerts, by id: each item's HTML and the text an officer reads."""
    c, _ = _officer(node)
    board = c.get("/").text
    found = re.findall(r'<li class="warn" data-alert="(\d+)">(.*?)</li>', board, re.S)
    return {
        int(i): (item, " ".join(html.unescape(re.sub(r"<[^>]+>", "", item)).split())) for i, item in found
    }


def test_the_board_says_which_notices_a_conflict_alert_is_about(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    theirs = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    ours = send(b, "stuttgart", soon(b, 48.005, 9.005))
    b.drain()
    # Each station checked the newer notice, `ours`; the alert names the line each is on.
    for node, line in ((b, "stuttgart"), (a, "moscow")):
        [alert] = alerts(node, "notice_conflict")
        d = alert["detail"]
        item, text = _board_alerts(node)[alert["id"]]
        assert text.startswith(
            f"notice_conflict · notice {ours['id']} volume 1 ({line}) with notice {theirs['id']} volume 1 "
            f"({line}), overlapping {d['from']} to {d['until']}, 0.0 to 3000.0 m"
        ), (node.name, text)
        assert f'href="/notices#notice-{ours["id"]}"' in item
        assert f'href="/notices#notice-{theirs["id"]}"' in item
        assert alert["subject"] not in text  # the conflict's row number says nothing
        assert "paging until acknowledged" in text
        assert f'action="/alerts/{alert["id"]}/ack"' in item


def test_a_handover_names_the_notices_of_a_conflict_it_hands_over(
    nodes: tuple[Node, Node], monkeypatch: Any
) -> None:
    """The snapshot a handover keeps carries each open alert's detail: the incoming officer
    reads which notices conflict, on the board and from `openline handovers`, not
    `conflict 1`."""
    a, b = nodes
    theirs = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    ours = send(b, "stuttgart", soon(b, 48.005, 9.005))
    b.drain()
    [alert] = alerts(b, "notice_conflict")
    r = b.api.post("/api/v1/handovers", json={"note": "A conflict is open."})
    assert r.status_code == 201, r.text
    [item] = r.json()["open_items"]["alerts"]
    assert (item["subject"], item["detail"]) == (alert["subject"], alert["detail"])

    c, _ = _officer(b)
    found = re.search(rf'<li data-handover-alert="{alert["id"]}">(.*?)</li>', c.get("/").text, re.S)
    assert found, "no handover item for the alert"
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())
    named = f"notice {ours['id']} volume 1 (stuttgart) with notice {theirs['id']} volume 1 (stuttgart)"
    assert text.startswith(f"open alert notice_conflict · {named}, overlapping "), text
    assert f'href="/notices#notice-{theirs["id"]}"' in found.group(1)
    listed = " ".join(cli_table(b, monkeypatch, "handovers", columns=400).split())
    assert f"open alert {alert['id']} notice_conflict {named}" in listed, listed


def test_the_boards_other_alerts_link_what_they_are_about(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    late = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    call_id = place_and_ring(a, b)
    clock.advance(3601)  # past the call's answer deadline and the notice's
    assert notices.audit_deadlines(b.station) == 1
    assert b.expire() == 1
    shown = {alert["kind"]: alert for alert in b.api.get("/api/v1/alerts").json()}
    board = _board_alerts(b)
    item, text = board[shown["missed_call"]["id"]]
    assert text.startswith(f"missed_call · ROUTINE call from stuttgart · {call_id} paging until"), text
    assert f'href="/calls/{call_id}"' in item
    item, text = board[shown["notice_unacknowledged"]["id"]]
    assert text.startswith(f"notice_unacknowledged · notice {late['id']} · we must answer it paging"), text
    assert f'href="/notices#notice-{late["id"]}"' in item


def _ended(node: Node, notice_id: str) -> dict[str, tuple[Any, Any]]:
    """Why and when each of a notice's recorded conflicts ended, by the other notice."""
    return {c["other_notice"]: (c["ended"], c["ended_at"]) for c in show(node, notice_id)["conflicts"]}


def test_a_conflict_says_why_it_first_stopped_holding_from_either_notice(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: Any
) -> None:
    """A hospital conflicts with a strike, which is rejected and then amended (and still
    conflicts), and with a drill, which expires; then the hospital is removed. Each
    conflict ended with the first of its two notices to stop being active."""
    a, b = nodes
    start = clock.now()
    hospital = send(a, "moscow", site(a, 50.0, 9.0))
    a.drain()
    act(b, hospital["id"], "acknowledge")
    strike = send(b, "stuttgart", circle(50.0, 9.0, 1000, start + HOUR, start + 3 * HOUR, text="Strike"))
    drill = send(
        b, "stuttgart", circle(50.0, 9.0, 500, start, start + 30 * MINUTE, text="Drill", category="exercise")
    )
    b.drain()
    clock.advance(600)
    rejected = act(a, strike["id"], "reject", {"reason": "A hospital"})
    a.drain()
    clock.advance(300)
    amended = send(
        b,
        "stuttgart",
        circle(50.0, 9.0, 900, start + HOUR, start + 3 * HOUR, text="Strike"),
        amends=strike["id"],
    )
    b.drain()
    clock.set(start + 31 * MINUTE)  # the drill is over
    for node in (a, b):
        assert notice_expiry.expire_due(node.station) == 1
    clock.advance(300)
    removal = send(a, "moscow", {"category": "protected_site", "text": "Moved", "removes": hospital["id"]})
    a.drain()
    act(b, removal["id"], "acknowledge")
    b.drain()

    removed_at = show(a, hospital["id"])["removed_at"]
    expected = {
        strike["id"]: (f"notice {strike['id']} is rejected", rejected["rejected_at"]),
        drill["id"]: (f"notice {drill['id']} is expired", rfc3339(start + 30 * MINUTE)),
        amended["id"]: (f"notice {hospital['id']} is removed", removed_at),
    }
    for node in (a, b):
        assert show(node, strike["id"])["state"] == "amended"
        assert _ended(node, hospital["id"]) == expected, node.name
        for other, (why, at) in expected.items():
            assert _ended(node, other) == {hospital["id"]: (why, at)}, (node.name, other)
        # The alert of each conflict was quietened for the same reason.
        overs = {
            frozenset((x["detail"]["notice"], x["detail"]["other_notice"])): x["detail"]["over"]["why"]
            for x in alerts(node, "notice_conflict")
        }
        assert overs == {frozenset((hospital["id"], other)): why for other, (why, _) in expected.items()}
    shown = " ".join(cli_table(a, monkeypatch, "notice", "show", hospital["id"], columns=400).split())
    assert (
        f"conflict, ended (notice {strike['id']} is rejected, at {rejected['rejected_at']}): "
        f"volume 1 with notice {strike['id']} volume 1" in shown
    ), shown


def test_a_conflict_whose_overlap_is_over_says_so_and_when(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """A strike over the range for an hour, then elsewhere, and a drill there all day: the
    conflict ended when their overlap did, while both notices were still active, and says
    so after the strike has expired too. A patrol that ends with its overlap with a raid
    ended it."""
    a, b = nodes
    start = clock.now()
    strike = circle(50.0, 9.0, 1000, start + HOUR, start + 2 * HOUR, text="Strike")
    strike["extents"] += circle(52.0, 9.0, 1000, start + 3 * HOUR, start + 5 * HOUR)["extents"]
    strike = send(a, "moscow", strike)
    raid = send(a, "moscow", circle(54.0, 9.0, 1000, start + HOUR, start + 4 * HOUR, text="Raid"))
    a.drain()
    drill = send(b, "stuttgart", circle(50.0, 9.0, 500, start, start + 6 * HOUR, category="exercise"))
    patrol = send(b, "stuttgart", circle(54.0, 9.0, 500, start, start + 2 * HOUR, text="Patrol"))
    b.drain()
    over = ("its overlap is over", rfc3339(start + 2 * HOUR))
    patrol_over = (f"notice {patrol['id']} is expired", rfc3339(start + 2 * HOUR))
    for now in (start + 2 * HOUR + 1, start + 5 * HOUR + 1):
        clock.set(now)
        for node in (a, b):
            notice_expiry.expire_due(node.station)
            assert _ended(node, strike["id"]) == {drill["id"]: over}, node.name
            assert _ended(node, drill["id"]) == {strike["id"]: over}, node.name
            assert _ended(node, raid["id"]) == {patrol["id"]: patrol_over}, node.name
            assert _ended(node, patrol["id"]) == {raid["id"]: patrol_over}, node.name
