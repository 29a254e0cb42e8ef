"""`openline notice send --draft`, `notice edit`, `notice send-draft`, `notice discard` and the line
terms of `openline line add`, through the real CLI in process: clear errors, nothing
changed by bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openline.core.clock import FakeClock
from tests.inproc import Node, make_node
from tests.notice_docs import cli, cli_json, send, show, soon
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
    assert a.snapshot() == before


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
