"""Two real `openline serve` processes: a notice is sent and acknowledged through the CLI,
a conflicting notice raises an alert on both watch floors, and the notice's proof
verifies offline."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openline.core.clock import SystemClock, rfc3339
from tests.harness import StationProcess, running_pair, wait_for

pytestmark = pytest.mark.e2e
HOUR = 3_600_000_000


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[StationProcess, StationProcess]]:
    with running_pair(tmp_path) as stations:
        yield stations


def _file(path: Path, lat: float, lng: float, text: str) -> Path:
    now = SystemClock().now()
    d = 0.02
    ring = [(lat - d, lng - d), (lat - d, lng + d), (lat + d, lng + d), (lat + d, lng - d)]
    doc: dict[str, Any] = {
        "category": "air_operation",
        "text": text,
        "extents": [
            {
                "volume": {
                    "outline_polygon": {"vertices": [{"lat": y, "lng": x} for y, x in ring]},
                    "altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
                    "altitude_upper": {"value": 10000, "reference": "W84", "units": "FT"},
                },
                "time_start": {"value": rfc3339(now + HOUR), "format": "RFC3339"},
                "time_end": {"value": rfc3339(now + 4 * HOUR), "format": "RFC3339"},
            }
        ],
    }
    path.write_text(json.dumps(doc))
    return path


def _state(s: StationProcess, notice_id: str) -> str | None:
    """The notice's state at `s`, None while `s` has not received it."""
    notice = s.get_json(f"/notices/{notice_id}")
    return None if notice is None else str(notice["state"])


def test_a_notice_is_acknowledged_and_a_conflict_alarms_both_sides(
    pair: tuple[StationProcess, StationProcess], tmp_path: Path
) -> None:
    a, b = pair
    sent = a.cli_json(
        "notice", "send", str(_file(tmp_path / "strike.json", 48.0, 9.0, "Strike")), "--to", "moscow"
    )
    wait_for(lambda: _state(b, sent["id"]) == "delivered", what="delivered at moscow")
    assert b.cli_json("notice", "show", sent["id"])["text"] == "Strike"
    b.cli("notice", "ack", sent["id"])
    wait_for(lambda: _state(a, sent["id"]) == "acknowledged", what="acknowledged, seen by stuttgart")
    assert a.cli_json("notice", "show", sent["id"])["acknowledged_by"] == "moscow:admin"

    convoy = _file(tmp_path / "convoy.json", 48.01, 9.01, "Convoy")
    other = b.cli_json("notice", "send", str(convoy), "--to", "stuttgart")
    assert [c["other_notice"] for c in other["conflicts"]] == [sent["id"]]
    for s in (a, b):
        wait_for(
            lambda s=s: any(x["kind"] == "notice_conflict" for x in s.get_json("/alerts")),
            what=f"conflict alert at {s.name}",
        )
    listed = a.cli_json("notices")
    assert {x["id"] for x in listed} == {sent["id"], other["id"]}
    # A year on, on either side: which notices covered this point, and who acknowledged.
    for s in (a, b):
        covered = s.cli_json("notices", "--at", "48.0,9.0")
        assert [(x["id"], x["acknowledged_by"]) for x in covered] == [
            (other["id"], None),  # the convoy overlaps the strike: it covers the point too
            (sent["id"], "moscow:admin"),
        ]
    assert a.cli_json("notices", "--at", "48.3,9.0") == []  # 33 km north of both
    # The proof of it, for an investigator: written by stuttgart once its ledger is
    # cosigned, checked offline with nothing but the file.
    proof = tmp_path / "strike-proof.json"
    wait_for(
        lambda: a.cli("prove", sent["id"], "--out", str(proof), check=False).returncode == 0,
        timeout=30,
        interval=0.5,
        what="a cosigned checkpoint covering the notice",
    )
    checked = json.loads(
        subprocess.run(
            [sys.executable, "-m", "openline", "verify", str(proof), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin"},
            check=True,
        ).stdout
    )
    assert checked["ok"] is True
    assert checked["kind"] == "notice-proof"
    types = [x["entry"]["type"] for x in checked["about"]]
    assert {"notice.sent", "receipt.received", "notice.acknowledged"} <= set(types)
    # Bad input: refused, nothing sent.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"category": "exercise", "text": "x", "extents": []}))
    refused = a.cli("notice", "send", str(bad), "--to", "moscow", check=False)
    assert refused.returncode == 1
    assert "invalid_input" in refused.stderr
    assert len(a.cli_json("notices")) == 2
