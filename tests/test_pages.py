"""What was paged, and a test page: `GET /api/v1/notifications` lists who was told what,
on which channel, about which call or alert, and whether it went; `POST
/api/v1/notifications/test` sends a page the way a real one goes, so an administrator
can see e-mail and webhooks work before a call needs them. Bad requests change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from openline.adapters.notify import WebhookChannel
from openline.core.clock import FakeClock
from openline.services import alert_paging, notifier
from openline.services.accounts import Role
from openline.services.alerts import raise_alert
from openline.services.station import NotifyConfig
from tests.inproc import Node, place_and_ring
from tests.servers import SECRET, Receiver
from tests.test_access import client_for

PASSWORD = "correct horse battery staple"


@pytest.fixture
def floor(staffed: tuple[Node, Node]) -> tuple[Node, Node]:
    """moscow has a duty officer on duty, a senior and a commander, and one webhook."""
    return staffed


def send_webhooks(node: Node) -> int:
    channel = WebhookChannel(SECRET)
    try:
        return notifier.dispatch_due(node.station, channel)
    finally:
        channel.close()


def listed(node: Node, **params: Any) -> list[dict[str, Any]]:
    r = node.api.get("/api/v1/notifications", params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


def test_a_test_page_goes_the_way_a_real_one_does(floor: tuple[Node, Node], receiver: Receiver) -> None:
    _, b = floor
    r = b.api.post("/api/v1/notifications/test", json={"targets": ["on_duty", "webhook"]})
    assert r.status_code == 201, r.text
    console, hook = r.json()
    assert (console["recipient"], console["channel"], console["status"]) == ("duty", "console", "sent")
    assert (hook["recipient"], hook["channel"], hook["status"]) == ("station", "webhook", "pending")
    # The token in the path is not shown; which of the station's webhook_urls it is, is.
    assert hook["address"] == receiver.base + "/… (webhook_urls #1)"
    assert hook["kind"] == "test"
    assert hook["title"] == "Test page from moscow"

    assert send_webhooks(b) == 1
    [hit] = receiver.hits
    event = Webhook(SECRET).verify(hit.body, hit.headers)
    assert event["type"] == "test"
    assert event["data"]["id"] == hook["id"]
    [sent] = listed(b, channel="webhook", status="sent")
    assert sent["id"] == hook["id"]
    assert sent["sent_at"] is not None
    assert sent["attempts"] == 1
    audit = b.api.get("/api/v1/audit").json()
    assert any(x["action"] == "notification.test" and x["target"] == "on_duty, webhook" for x in audit)


def test_the_listing_says_which_call_or_alert_each_page_was_about(
    floor: tuple[Node, Node], clock: FakeClock
) -> None:
    from openline.services import watch

    a, b = floor
    call_id = place_and_ring(a, b)
    watch.escalate_due(b.station)
    clock.advance(1)
    with b.station.tx() as tx:
        raise_alert(tx, "roster_gap", "2026-11-28T00:00:00Z", {})
    alert_paging.page_due(b.station)
    [alert] = b.api.get("/api/v1/alerts").json()

    about_call = listed(b, call=call_id)
    assert [(x["recipient"], x["kind"], x["call"], x["alert"]) for x in about_call] == [
        ("duty", "call.ringing", call_id, None)
    ]
    about_alert = listed(b, alert=alert["id"])
    assert [(x["recipient"], x["kind"], x["call"], x["alert"]) for x in about_alert] == [
        ("duty", "alert.roster_gap", None, alert["id"])
    ]
    assert [x["kind"] for x in listed(b)] == ["alert.roster_gap", "call.ringing"]  # newest first
    assert listed(b, limit=1) == listed(b)[:1]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"targets": []}, "expected a list of 1 to 10 targets"),
        ({"targets": ["everyone"]}, "targets[0]: expected on_duty, webhook"),
        ({"targets": ["role:king"]}, "no role 'king'"),
        ({"targets": ["user:duty", "user:duty"]}, "listed twice"),
        ({"targets": ["user:nobody"]}, "reach nobody: no enabled user matches"),
        ({"targets": "on_duty"}, "targets"),
        ({"targets": ["on_duty"], "to": "x"}, "to"),
        ({}, "targets"),
    ],
)
def test_a_bad_test_page_is_refused_and_writes_nothing(
    floor: tuple[Node, Node], body: dict[str, Any], words: str
) -> None:
    _, b = floor
    before = b.snapshot()
    r = b.api.post("/api/v1/notifications/test", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert words in r.json()["detail"]
    assert b.snapshot() == before


def test_a_test_page_that_would_reach_nobody_says_why(floor: tuple[Node, Node]) -> None:
    _, b = floor
    assert b.api.post("/api/v1/users/duty/disable").status_code == 200
    b.station.notify = NotifyConfig(webhook_urls=(), email=False, console_url=None)
    before = b.snapshot()
    r = b.api.post("/api/v1/notifications/test", json={"targets": ["on_duty", "webhook"]})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (
        "targets on_duty, webhook reach nobody: no enabled user matches; nobody is on duty; "
        "the station has no webhook_urls"
    )
    assert b.snapshot() == before


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"status": "lost"}, "status must be one of pending, sent, failed"),
        ({"channel": "pigeon"}, "channel must be one of console, email, webhook"),
        ({"limit": 0}, "limit"),
        ({"alert": "x"}, "alert"),
    ],
)
def test_bad_listing_filters_are_refused(
    floor: tuple[Node, Node], params: dict[str, Any], words: str
) -> None:
    _, b = floor
    r = b.api.get("/api/v1/notifications", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert words in r.json()["detail"]


def test_only_an_administrator_sends_a_test_page(floor: tuple[Node, Node]) -> None:
    _, b = floor
    officer = client_for(b, "officer", Role.WATCH_OFFICER)
    before = b.snapshot()
    r = officer.post("/api/v1/notifications/test", json={"targets": ["on_duty"]})
    assert r.status_code == 403
    assert "manage_users" in r.json()["detail"]
    assert b.snapshot() == before
    assert officer.get("/api/v1/notifications").status_code == 200


def test_the_admin_page_sends_a_test_page_and_shows_the_latest(floor: tuple[Node, Node]) -> None:
    from tests.test_console import add_user, browser, csrf_of, log_in

    _, b = floor
    add_user(b, "chief", Role.ADMINISTRATOR)
    c = browser(b)
    log_in(c, "chief", PASSWORD)
    page = c.get("/admin")
    assert "Nobody has been paged yet." in page.text
    token = csrf_of(page.text)

    before = b.snapshot()
    r = c.post("/admin/test-page", data={"csrf": token, "targets": "everyone"})
    assert r.status_code == 422
    assert "targets[0]: expected on_duty, webhook" in r.text
    assert b.snapshot() == before

    r = c.post("/admin/test-page", data={"csrf": token, "targets": "on_duty webhook"})
    assert r.status_code == 200, r.text
    assert "Test page sent to duty (console), station (webhook)." in r.text
    table = r.text[r.text.index("data-pages") :]
    assert table.count("<td>test</td>") == 2
    assert "t0ken" not in r.text

    add_user(b, "officer", Role.WATCH_OFFICER)
    o = browser(b)
    log_in(o, "officer", PASSWORD)
    r = o.post("/admin/test-page", data={"csrf": csrf_of(o.get("/").text), "targets": "on_duty"})
    assert r.status_code == 403
    assert len(listed(b)) == 2  # the officer sent nothing
