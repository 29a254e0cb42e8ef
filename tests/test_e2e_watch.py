"""The watch floor through the real CLI and two real `openline serve` processes: a
roster, a short escalation policy, a call nobody picks up, escalation steps in the
event log, a signed webhook, and a pick-up that stops it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.harness import StationProcess, running_pair, wait_for
from tests.servers import SECRET, Receiver
from tests.zygote import ZYGOTE

pytestmark = pytest.mark.e2e

POLICY = {
    "steps": [
        {"targets": ["on_duty"], "delay_s": 1},
        {"targets": ["role:senior_watch_officer", "webhook"], "delay_s": 1},
    ],
    "repeat": 0,
    "final": {"targets": ["role:administrator"], "delay_s": 60},
}


@pytest.fixture
def pair(tmp_path: Path, receiver: Receiver) -> Iterator[tuple[StationProcess, StationProcess]]:
    env = {"OPENLINE_WEBHOOK_URLS": json.dumps([receiver.base + "/pager"]), "OPENLINE_WEBHOOK_SECRET": SECRET}
    with running_pair(tmp_path, moscow_env=env) as stations:
        yield stations


def with_input(s: StationProcess, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return ZYGOTE.run(args, s.env(), input=text, timeout=60)


def escalated(s: StationProcess, call_id: str) -> list[dict[str, Any]]:
    return [e for e in s.cli_json("show", call_id)["events"] if e["event"] == "escalated"]


def test_an_unanswered_call_escalates_through_the_roster_and_a_webhook(
    pair: tuple[StationProcess, StationProcess], receiver: Receiver, tmp_path: Path
) -> None:
    a, b = pair
    b.cli("user", "add", "duty", "--role", "watch_officer")
    b.cli("user", "add", "senior", "--role", "senior_watch_officer")
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    shift = b.cli_json("shift", "add", "duty", "--start", start, "--tz", "UTC", "--hours", "12")
    roster = b.cli_json("roster")
    assert roster["on_duty"] == ["duty"]
    assert roster["shifts"] == [shift]
    assert roster["next_handover"]["utc"].endswith("Z")
    assert len(roster["gaps"]) == 1  # nobody after the 12 hours

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**POLICY, "repeat": 99}))
    r = b.cli("policy", "set", "stuttgart", str(bad), check=False)
    assert r.returncode == 1
    assert "error (invalid_input)" in r.stderr
    assert "policy.repeat" in r.stderr
    assert b.cli_json("policy", "show", "stuttgart")["default"] is True
    good = tmp_path / "policy.json"
    good.write_text(json.dumps(POLICY))
    assert b.cli_json("policy", "set", "stuttgart", str(good))["policy"] == POLICY

    call_id = a.cli_json("call", "moscow", "--subject", "Convoy at checkpoint 4", "--priority", "flash")["id"]
    wait_for(lambda: len(escalated(b, call_id)) >= 3, timeout=30, what="three escalation steps")
    steps = escalated(b, call_id)
    assert [(e["detail"]["step"], e["detail"]["recipients"]) for e in steps[:3]] == [
        ("round 1, step 1", ["duty"]),
        ("round 1, step 2", ["senior"]),
        ("final", ["admin"]),
    ]
    assert steps[1]["detail"]["webhooks"] == 1
    wait_for(lambda: receiver.hits, timeout=20, what="the webhook")
    hit = receiver.hits[0]
    event = Webhook(SECRET).verify(hit.body, hit.headers)
    assert event["data"]["call_id"] == call_id
    assert "Convoy" not in hit.body.decode()
    wait_for(
        lambda: any(e["event"] == "notified" for e in b.get_json(f"/calls/{call_id}")["events"]),
        timeout=20,
        what="the notified event",
    )

    b.cli("pickup", call_id)
    count = len(escalated(b, call_id))
    time.sleep(2.5)
    assert len(escalated(b, call_id)) == count  # picked up: the lease runs, nothing rings
    assert a.cli_json("show", call_id)["state"] == "picked_up"
    alerts = b.cli_json("alerts")
    assert [x["kind"] for x in alerts] == ["roster_gap"]
    b.cli("alert", "ack", str(alerts[0]["id"]))
    assert b.cli_json("alerts", "--open") == []
