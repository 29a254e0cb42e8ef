"""New terms and what was decided under the old ones: new margins check the line's
active notices again on both stations, so that both find the same conflicts; a notice
shows the margins its conflicts were decided under, and a call the answer deadline it
rang under, not the line's terms now."""

from __future__ import annotations

from typing import Any

from openline.core.clock import FakeClock
from tests.inproc import Node, migrate_to, place_and_ring
from tests.inproc import show as show_call
from tests.notice_docs import HOUR, act, alerts, circle, cli_table, east_of, ledger_entries, send, show

NONE = {"horizontal_m": 0.0, "vertical_m": 0.0, "minutes": 0}
WIDE = {"horizontal_m": 2000.0, "vertical_m": 0.0, "minutes": 0}


def _adopt(a: Node, b: Node, **changes: Any) -> None:
    """Both administrators propose the same terms: both stations adopt them."""
    for node, peer in ((a, "moscow"), (b, "stuttgart")):
        r = node.api.put(f"/api/v1/lines/{peer}/terms", json=changes)
        assert r.status_code == 200, r.text
    assert r.json()["proposal"] == "adopted"


def _near(node: Node, lat: float, metres: float) -> dict[str, Any]:
    """A circle of 500 m `metres` east of (lat, 9.0): with another there, a gap of
    `metres` - 1000 m between their edges."""
    now = node.station.clock.now()
    return circle(*east_of(lat, 9.0, metres), 500, now + HOUR, now + 2 * HOUR)


def _pairs(node: Node, notice_id: str) -> list[tuple[Any, ...]]:
    conflicts = show(node, notice_id)["conflicts"]
    return sorted(
        (c["volume"], c["other_notice"], c["other_volume"], c["from"], c["until"]) for c in conflicts
    )


def test_wider_margins_check_the_lines_notices_again_on_both_stations(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    n2 = send(b, "stuttgart", _near(b, 48.01, 0))["id"]
    b.drain()
    # stuttgart sends N5 912 m from N2's edge; it waits in the outbox (the line is down).
    n5 = send(a, "moscow", _near(a, 48.01, 1912))["id"]
    assert show(a, n5)["conflicts"] == []
    assert show(a, n5)["margins"] == NONE
    _adopt(a, b, margin_horizontal_m=2000)
    # stuttgart checked N5 again under the new margins: a conflict, recorded and alarmed
    # as a new notice's, in the ledger after the new terms.
    assert [c["other_notice"] for c in show(a, n5)["conflicts"]] == [n2]
    assert show(a, n5)["margins"] == WIDE
    assert [x["detail"]["notice"] for x in alerts(a, "notice_conflict")] == [n5]
    types = [e["type"] for e in ledger_entries(a, "")]
    assert types.index("notice.conflict") > types.index("line.terms")
    (entry,) = ledger_entries(a, "notice.conflict")
    assert (entry["notice"], entry["other_notice"]) == (n5, n2)
    # moscow gets N5 after the change and checks it under the same margins: the same answer.
    a.drain()
    assert _pairs(b, n5) == _pairs(a, n5) != []
    assert _pairs(b, n2) == _pairs(a, n2) != []
    assert show(b, n5)["margins"] == WIDE
    # Checked again, nothing is recorded twice.
    _adopt(a, b, margin_horizontal_m=2500)
    assert _pairs(a, n5) == _pairs(b, n5)
    assert len(ledger_entries(a, "notice.conflict")) == len(ledger_entries(b, "notice.conflict")) == 1


def test_narrower_margins_keep_the_conflicts_found_before(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    a, b = nodes
    _adopt(a, b, margin_horizontal_m=2000)
    n2 = send(b, "stuttgart", _near(b, 48.01, 0))["id"]
    b.drain()
    n5 = send(a, "moscow", _near(a, 48.01, 1912))["id"]
    _adopt(a, b, margin_horizontal_m=0)
    # What stuttgart found under 2000 m stays; moscow, which gets N5 only now, checks it
    # under 0 m and finds none: each notice says which margins it was checked under.
    a.drain()
    assert [c["other_notice"] for c in show(a, n5)["conflicts"]] == [n2]
    assert show(a, n5)["margins"] == NONE
    assert (show(b, n5)["conflicts"], show(b, n5)["margins"]) == ([], NONE)
    # The conflict says the margins it was found under, which the notice's no longer are,
    # in its JSON from either notice, in its ledger entry and in `notice show`.
    for notice in (n5, n2):
        assert [c["margins"] for c in show(a, notice)["conflicts"]] == [WIDE], notice
    (entry,) = ledger_entries(a, "notice.conflict")
    assert entry["margins"] == WIDE
    shown = " ".join(cli_table(a, monkeypatch, "notice", "show", n5, columns=400).split())
    assert f"with notice {n2} volume 1," in shown
    assert "m (margins 2000 m)" in shown, shown


def test_a_conflict_recorded_before_margins_were_kept_with_it_has_none(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    _adopt(a, b, margin_horizontal_m=2000)
    n2 = send(b, "stuttgart", _near(b, 48.01, 0))["id"]
    b.drain()
    migrate_to(a, "0020", down=True)
    migrate_to(a, "head")
    n5 = send(a, "moscow", _near(a, 48.01, 1912))["id"]
    assert [c["margins"] for c in show(a, n5)["conflicts"]] == [WIDE]
    # Back to before 0021 and up again: what the conflict was found under is lost.
    migrate_to(a, "0020", down=True)
    migrate_to(a, "head")
    assert [(c["other_notice"], c["margins"]) for c in show(a, n5)["conflicts"]] == [(n2, None)]
    assert show(a, n5)["margins"] == WIDE


def test_a_notice_shows_the_margins_it_was_checked_under(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    sent = send(a, "moscow", _near(a, 48.01, 0))["id"]
    a.drain()
    act(a, sent, "withdraw")
    a.drain()
    _adopt(a, b, margin_horizontal_m=2000)
    # Withdrawn, it was not checked again: its margins are those of its check, not the line's.
    for node in (a, b):
        assert show(node, sent)["margins"] == NONE, node.name
    # A draft's preview is found under the line's margins now, and shows them.
    draft = send(a, "moscow", _near(a, 48.01, 0), draft=True)
    assert (draft["state"], show(a, draft["id"])["margins"]) == ("draft", WIDE)


def test_a_call_shows_the_answer_deadline_it_rang_under(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    rang = show_call(b, call_id)["answer_deadline_s"]
    _adopt(a, b, answer_deadline_s=rang + 20)
    # moscow set the deadline as the call started ringing there; stuttgart does not know it.
    got = show_call(b, call_id)
    assert (got["answer_deadline_s"], got["answer_deadline_from"]) == (rang, "ringing")
    got = show_call(a, call_id)
    assert (got["answer_deadline_s"], got["answer_deadline_from"]) == (rang + 20, "line")
    # Missed: moscow's statement names its deadline, and stuttgart shows it.
    clock.advance(rang)
    assert b.expire() == 1
    b.drain()
    got = show_call(a, call_id)
    assert (got["state"], got["answer_deadline_s"], got["answer_deadline_from"]) == ("missed", rang, "missed")
    got = show_call(b, call_id)
    assert (got["answer_deadline_s"], got["answer_deadline_from"]) == (rang, "ringing")
    # A call placed now rings under the new deadline.
    later = place_and_ring(a, b)
    assert show_call(b, later)["answer_deadline_s"] == rang + 20
