"""A call placed while the peer's station is down raises `line_down` on the caller's watch
floor within the station's `line_down_after_s`, between real `openline serve` processes,
and pages whom the line's escalation policy names (here a webhook) until somebody
acknowledges it; the call rings once the peer is back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.harness import StationProcess, running_pair, wait_for
from tests.servers import SECRET, Receiver

pytestmark = pytest.mark.e2e


def line_down(station: StationProcess) -> list[dict[str, Any]]:
    return [x for x in station.get_json("/alerts") if x["kind"] == "line_down"]


def test_a_call_that_cannot_reach_the_peer_raises_line_down_and_pages(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = {
        "OPENLINE_LINE_DOWN_AFTER_S": "5",
        "OPENLINE_WEBHOOK_URLS": json.dumps([receiver.base + "/pager"]),
        "OPENLINE_WEBHOOK_SECRET": SECRET,
    }
    with running_pair(tmp_path, stuttgart_env=env) as (a, b):
        policy = tmp_path / "policy.json"
        policy.write_text(
            json.dumps(
                {
                    "steps": [{"targets": ["webhook"], "delay_s": 600}],
                    "repeat": 0,
                    "final": {"targets": ["role:administrator"], "delay_s": 600},
                }
            )
        )
        a.cli("policy", "set", "moscow", str(policy))
        b.stop()
        call_id = a.cli_json("call", "moscow", "--subject", "Flash: corridor", "--priority", "flash")["id"]
        [alert] = wait_for(lambda: line_down(a), timeout=30, what="line_down at stuttgart")
        assert alert["subject"].startswith("moscow since ")
        assert alert["detail"]["calls"] == [{"call": call_id, "priority": "flash"}]
        assert alert["detail"]["waiting"] == 1
        [hit] = wait_for(lambda: receiver.hits, timeout=30, what="the page to the webhook")
        event = Webhook(SECRET).verify(hit.body, hit.headers)
        assert event["type"] == "alert.line_down"
        assert event["data"]["title"] == f"LINE DOWN: {alert['subject']}"
        assert event["data"]["station"] == "stuttgart"
        assert "corridor" not in hit.body.decode()  # metadata only: the subject stays on the line
        table = a.cli("alerts").stdout
        assert "line_down" in table
        assert call_id[:8] in table
        [line] = a.cli_json("lines")
        assert line["outbox_depth"] == 1
        assert line["waiting_since"] is not None
        b.start()
        wait_for(
            lambda: any(c["id"] == call_id and c["state"] == "ringing" for c in b.get_json("/calls")),
            timeout=60,
            what="the call to ring at moscow once it is back",
        )
        assert line_down(a)[0]["paging"]["step"] == "final"
        assert "paging" in a.cli("alerts").stdout
        a.cli("alert", "ack", str(alert["id"]))
        assert line_down(a)[0]["acknowledged_by"] == "admin"
        assert line_down(a)[0]["paging"] is None
        assert len(line_down(a)) == 1


def test_an_idle_line_whose_peer_is_gone_raises_line_down(tmp_path: Path) -> None:
    """Nothing to send: the line's own check (a handshake after `line_check_s` of silence)
    finds the peer gone, before anyone needs the line."""
    env = {"OPENLINE_LINE_CHECK_S": "10", "OPENLINE_LINE_DOWN_AFTER_S": "5"}
    with running_pair(tmp_path, stuttgart_env=env) as (a, b):
        b.stop()
        [alert] = wait_for(
            lambda: line_down(a), timeout=60, what="line_down at stuttgart for the silent line"
        )
        assert alert["subject"].startswith("moscow silent since ")
        assert alert["detail"]["calls"] == []
        [line] = a.cli_json("lines")
        assert line["last_error"].startswith("line check: moscow at http://127.0.0.1:")
