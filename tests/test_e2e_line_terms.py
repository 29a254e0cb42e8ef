"""New terms for an open line between two real `openline serve` processes: proposed on
each side through the CLI and adopted by both, including proposals both sides made while
the other was down, adopted when a station starts and announces itself. And a line one
side suspends (`openline line suspend`), then resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness import StationProcess, running_pair, wait_for

pytestmark = pytest.mark.e2e


def _line(s: StationProcess) -> dict[str, Any]:
    (line,) = s.get_json("/lines")
    return dict(line)


def test_both_sides_propose_new_terms_and_both_adopt_them(tmp_path: Path) -> None:
    with running_pair(tmp_path) as (a, b):
        waiting = a.cli_json("line", "terms", "moscow", "--margin-horizontal", "250")
        assert (waiting["proposal"], waiting["state"]) == ("waiting", "active")
        assert "line terms differ" in waiting["handshake"]
        adopted = b.cli_json("line", "terms", "stuttgart", "--margin-horizontal", "250")
        assert (adopted["proposal"], adopted["handshake"]) == ("adopted", "ok")
        for s in (a, b):
            line = _line(s)
            assert (line["margins"]["horizontal_m"], line["proposed_terms"]) == (250.0, None), s.name

        # Proposed on each side while the other is down: adopted when stuttgart starts
        # again and announces itself to moscow.
        b.stop()
        assert (
            "line terms differ"
            not in a.cli_json("line", "terms", "moscow", "--margin-minutes", "15")["handshake"]
        )
        a.stop()
        b.start()
        assert b.cli_json("line", "terms", "stuttgart", "--margin-minutes", "15")["proposal"] == "waiting"
        a.start()
        for s in (a, b):
            wait_for(lambda s=s: _line(s)["margins"]["minutes"] == 15, what=f"the new terms on {s.name}")
            assert _line(s)["proposed_terms"] is None
            assert _line(s)["state"] == "active"


def test_a_suspended_line_refuses_the_peer_until_resumed(tmp_path: Path) -> None:
    """Two real stations: moscow suspends its line with stuttgart through the CLI; a call
    stuttgart places then stays in its outbox, refused `line_suspended`, and moscow stores
    nothing; once resumed, the call rings at moscow."""
    with running_pair(tmp_path) as (a, b):
        done = b.cli_json("line", "suspend", "stuttgart", "--reason", "key may be copied")
        assert (done["state"], done["suspended"]["reason"]) == ("suspended", "key may be copied")
        call_id = a.cli_json("call", "moscow", "--subject", "Are you there?")["id"]
        refused = wait_for(
            lambda: "line_suspended" in (_line(a)["last_error"] or "") and _line(a),
            what="stuttgart's delivery refused",
        )
        assert refused["outbox_depth"] == 1
        assert b.call_state(call_id) is None  # nothing stored at moscow
        r = b.cli("call", "stuttgart", "--subject", "Refused here too", check=False)
        assert r.returncode != 0
        assert "line_suspended" in r.stderr

        back = b.cli_json("line", "resume", "stuttgart")
        assert (back["state"], back["handshake"]) == ("active", "ok")
        wait_for(lambda: b.call_state(call_id) == "ringing", what="the call ringing at moscow")
        wait_for(lambda: _line(a)["outbox_depth"] == 0, what="stuttgart's outbox drained")
