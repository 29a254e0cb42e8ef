"""A test page through the real CLI and a real `openline serve`: `openline notify test`
waits for each webhook's first attempt, shows which went and which failed and why, and
exits 1 if any failed; the pages and their outcomes stay in `openline notifications`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from tests.harness import StationProcess
from tests.servers import SECRET, Receiver

pytestmark = pytest.mark.e2e


def test_a_test_page_reaches_the_webhook_or_says_why_not(tmp_path: Path, receiver: Receiver) -> None:
    s = StationProcess.create(tmp_path, "moscow")
    urls = [receiver.base + "/pager/t0ken"]
    s.extra_env = {"OPENLINE_WEBHOOK_URLS": json.dumps(urls), "OPENLINE_WEBHOOK_SECRET": SECRET}
    s.start()
    try:
        r = s.cli("notify", "test", "webhook", "role:administrator")
        assert "sent" in r.stdout
        [hit] = receiver.hits
        event = Webhook(SECRET).verify(hit.body, hit.headers)
        assert event["type"] == "test"
        assert event["data"]["title"] == "Test page from moscow"
        assert "t0ken" not in r.stdout  # the webhook's path is not shown
    finally:
        s.stop()

    s.extra_env["OPENLINE_WEBHOOK_URLS"] = json.dumps([receiver.base + "/fail"])
    s.start()
    try:
        r = s.cli("notify", "test", "webhook", "--json", check=False)
        assert r.returncode == 1, r.stderr
        [row] = json.loads(r.stdout)
        assert row["status"] == "pending"  # retried as a real page would be
        assert "HTTP 500" in row["last_error"]
        listed = s.cli_json("notifications", "--channel", "webhook")
        assert [(x["kind"], x["status"]) for x in listed] == [("test", "pending"), ("test", "sent")]
        r = s.cli("notify", "test", "user:nobody", check=False)
        assert r.returncode == 1
        assert "error (invalid_input): targets user:nobody reach nobody" in r.stderr
        assert len(s.cli_json("notifications", "--channel", "webhook")) == 2
    finally:
        s.stop()
