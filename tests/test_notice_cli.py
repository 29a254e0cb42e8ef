"""`openline notice send --draft`, `notice edit`, `notice send-draft`, `notice discard` and the line
terms of `openline line add`, through the real CLI in process: clear errors, nothing
changed by bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openline.core.clock import FakeClock
from tests.inproc import Node, make_node
from tests.notice_docs import act, cli, cli_json, cli_table, send, show, site, soon
from tests.test_notice_terms import _wire


def test_a_draft_is_saved_sent_and_discarded_from_the_cli(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, b = nodes
    theirs = send(b, "stuttgart", soon(b, 48.0, 9.0))
    b.drain()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(soon(a, 48.005, 9.005, text="Convoy")))
    draft = cli_json(a, monkeypatch, "notice", "send", str(plan), "--to", "moscow", "--draft")
    assert draft["state"] == "draft"
    assert [c["other_notice"] for c in draft["would_conflict"]] == [theirs["id"]]
    shown = cli(a, monkeypatch, "notice", "show", draft["id"])
    assert shown.exit_code == 0, shown.output
    assert "would conflict" in shown.stdout
    assert f"openline notice send-draft {draft['id']}" in shown.stdout.replace("\n", "")
    assert f"openline notice edit {draft['id']} FILE" in shown.stdout.replace("\n", "")
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(soon(a, 49.0, 9.0, text="Convoy, rerouted")))
    edited = cli_json(a, monkeypatch, "notice", "edit", draft["id"], str(moved))
    assert (edited["id"], edited["state"], edited["text"]) == (draft["id"], "draft", "Convoy, rerouted")
    assert edited["would_conflict"] == []  # moved away from moscow's notice
    sent = cli_json(a, monkeypatch, "notice", "send-draft", draft["id"])
    assert (sent["id"], sent["state"]) == (draft["id"], "sent")
    a.drain()
    assert show(b, draft["id"])["text"] == "Convoy, rerouted"
    before = a.snapshot()
    late = cli(a, monkeypatch, "notice", "edit", draft["id"], str(plan))
    assert late.exit_code == 1
    assert "illegal_transition" in late.stderr
    assert "cannot edit a notice that is delivered" in late.stderr
    unreadable = cli(a, monkeypatch, "notice", "edit", draft["id"], str(tmp_path / "missing.json"))
    assert unreadable.exit_code == 1
    assert "cannot read" in unreadable.stderr
    assert a.snapshot() == before

    other = cli_json(a, monkeypatch, "notice", "send", str(plan), "--to", "moscow", "--draft")
    assert cli_json(a, monkeypatch, "notice", "discard", other["id"])["state"] == "discarded"
    before = a.snapshot()
    again = cli(a, monkeypatch, "notice", "send-draft", other["id"])
    assert again.exit_code == 1
    assert "illegal_transition" in again.stderr
    assert "not a draft" in again.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"category": "exercise", "text": "x", "extents": []}))
    refused = cli(a, monkeypatch, "notice", "send", str(bad), "--to", "moscow", "--draft")
    assert refused.exit_code == 1
    assert "invalid_input" in refused.stderr
    assert f"{bad}: " in refused.stderr  # named by its file, as `conflicts` names it
    assert a.snapshot() == before
    bom = tmp_path / "bom.json"  # a spreadsheet's export: `conflicts` read it, `notice send` did not
    bom.write_bytes(b"\xef\xbb\xbf" + plan.read_bytes())
    taken = cli_json(a, monkeypatch, "notice", "send", str(bom), "--to", "moscow", "--draft")
    assert taken["state"] == "draft"


def test_line_add_sets_the_terms(tmp_path: Path, clock: FakeClock, monkeypatch: Any) -> None:
    a = make_node(tmp_path, "stuttgart", clock, None)
    b = make_node(tmp_path, "moscow", clock, None)
    try:
        _wire(a, b)
        options = ["--notice-deadline", "900", "--margin-horizontal", "250.5", "--margin-vertical", "30",
                   "--margin-minutes", "10"]  # fmt: skip
        for x, y in ((a, b), (b, a)):
            card = tmp_path / f"{y.name}.card"
            card.write_text(json.dumps(y.station.card.to_json()))
            added = cli_json(x, monkeypatch, "line", "add", str(card), *options)
        assert added["handshake"] == "ok"
        for node in (a, b):
            (line,) = cli_json(node, monkeypatch, "lines")
            assert line["state"] == "active"
            assert line["notice_deadline_s"] == 900
            assert line["margins"] == {"horizontal_m": 250.5, "vertical_m": 30.0, "minutes": 10}
        c = make_node(tmp_path, "ankara", clock, None)
        card = tmp_path / "ankara.card"
        card.write_text(json.dumps(c.station.card.to_json()))
        before = a.snapshot()
        refused = cli(a, monkeypatch, "line", "add", str(card), "--margin-minutes", "5000")
        assert refused.exit_code == 1
        assert "invalid_input" in refused.stderr
        assert "margin_minutes" in refused.stderr
        assert a.snapshot() == before
        c.station.db.dispose()
    finally:
        for n in (a, b):
            n.station.db.dispose()


def test_notices_are_listed_by_state_line_direction_and_category(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: Any
) -> None:
    """`openline notices --state --peer --direction --category` and the API's parameters:
    the watch floor's "what waits for our answer", among every notice the station holds.
    The state is the one a notice reads now (an acknowledged notice whose window has
    ended reads expired before the timer records it). Bad values are refused, naming
    them, and change nothing."""
    a, b = nodes
    waiting = send(b, "stuttgart", soon(b, 48.0, 9.0))
    hospital = send(b, "stuttgart", site(b, 31.5234, 34.4453))
    b.drain()
    act(a, hospital["id"], "acknowledge")
    ours = send(a, "moscow", soon(a, 50.0, 9.0))
    a.drain()

    def ids(*args: str) -> list[str]:
        return [n["id"] for n in cli_json(a, monkeypatch, "notices", *args)]

    assert ids("--state", "delivered", "--direction", "in") == [waiting["id"]]
    assert ids("--state", "acknowledged") == [hospital["id"]]
    assert ids("--direction", "out") == [ours["id"]]
    assert ids("--category", "protected_site", "--peer", "moscow") == [hospital["id"]]
    table = cli_table(a, monkeypatch, "notices", "--state", "delivered", "--direction", "in")
    assert waiting["id"] in table
    assert hospital["id"] not in table
    clock.advance(4 * 3600)  # the two squares' windows have ended; the site is open-ended
    assert ids("--state", "expired") == [ours["id"], waiting["id"]]
    assert ids("--state", "delivered") == []
    assert ids("--state", "acknowledged") == [hospital["id"]]

    before = a.snapshot()
    for params, words in (
        ({"state": "ringing"}, "state must be one of draft, sent"),
        ({"direction": "up"}, "direction must be in or out, got 'up'"),
        ({"category": "picnic"}, "category must be one of air_operation"),
        ({"state": "acknowledged", "at": "31.5234,34.4453"}, "with at, list every notice that covered"),
    ):
        r = a.api.get("/api/v1/notices", params=params)
        assert r.status_code == 422, r.text
        assert words in r.json()["detail"], r.json()
    refused = cli(a, monkeypatch, "notices", "--state", "ringing")
    assert refused.exit_code == 1
    assert "state must be one of" in refused.output
    # A mistyped peer would list nothing, which reads as "nothing waiting from them".
    for r in (a.api.get("/api/v1/notices", params={"peer": "mosocw"}),
              a.api.get("/api/v1/calls", params={"peer": "mosocw"})):  # fmt: skip
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == "no line to a station named 'mosocw'; the lines are to: moscow"
    for command in ("notices", "calls"):
        refused = cli(a, monkeypatch, command, "--peer", "mosocw")
        assert refused.exit_code == 1
        assert "error (not_found): no line to a station named 'mosocw'" in refused.output
    assert a.snapshot() == before
