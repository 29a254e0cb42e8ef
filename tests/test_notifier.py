"""Notifications from escalation steps reach real servers on loopback: e-mail through an
SMTP server the test runs, webhooks through an HTTP server the test runs. A failing
channel is retried and logged, gives up with an alert, and never holds up the others."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from openline.adapters.notify import Notification, SmtpChannel, WebhookChannel
from openline.adapters.schema import escalation_policies, notifications
from openline.core import escalation as esc
from openline.core.clock import FakeClock
from openline.runtime import Workers
from openline.services import accounts, notifier, watch
from openline.services.accounts import Role
from openline.services.station import NotifyConfig
from tests.inproc import Node, link, make_node, place_and_ring, put_on_duty, show
from tests.servers import SECRET, Receiver, Relay, parsed

POLICY = esc.Policy((esc.Step(("on_duty", "webhook"), 60),), 0, esc.Step(("role:commander",), 300))


@pytest.fixture
def floor(
    tmp_path: Path,
    clock: FakeClock,
    database_url: str | None,
    second_database_url: str | None,
    receiver: Receiver,
) -> Iterator[tuple[Node, Node]]:
    a = make_node(tmp_path, "stuttgart", clock, database_url)
    b = make_node(tmp_path, "moscow", clock, second_database_url)
    for node in (a, b):
        node.station.answer_deadline_s = 3600
    b.station.notify = NotifyConfig(
        webhook_urls=(receiver.base + "/hook",), email=True, console_url="https://moscow.example/console"
    )
    link(a, b)
    with b.station.tx() as tx:
        accounts.create_user(
            tx.conn, tx.now, "duty", Role.WATCH_OFFICER, "x" * 12, email="duty@moscow.example"
        )
        tx.conn.execute(
            escalation_policies.insert().values(
                line_id=b.line_id(), policy=POLICY.dumps(), updated_at=tx.now, updated_by="test"
            )
        )
    put_on_duty(b, "duty", clock, days=20)
    try:
        yield a, b
    finally:
        for n in (a, b):
            n.station.db.dispose()


def rows(node: Node, channel: str) -> list[Any]:
    with node.station.db.read() as conn:
        return list(conn.execute(select(notifications).where(notifications.c.channel == channel)).all())


def send_both(node: Node, relay: Relay) -> tuple[int, int]:
    """Send what is due by e-mail (through `relay`) and to the webhook: how many of each."""
    email = SmtpChannel("127.0.0.1", relay.port, "openline@moscow.example", timeout=5)
    hook = WebhookChannel(SECRET, timeout=5)
    try:
        return notifier.dispatch_due(node.station, email), notifier.dispatch_due(node.station, hook)
    finally:
        hook.close()


def events(node: Node, call_id: str, *names: str) -> list[dict[str, Any]]:
    return [e for e in show(node, call_id)["events"] if e["event"] in names]


def test_email_and_webhook_are_delivered_with_metadata_only(
    floor: tuple[Node, Node], relay: Relay, receiver: Receiver
) -> None:
    a, b = floor
    call_id = place_and_ring(a, b, "Strike package at grid 38T", "flash")
    watch.escalate_due(b.station)
    assert send_both(b, relay) == (1, 1)
    (envelope,) = relay.recorder.envelopes
    message = parsed(envelope)
    assert envelope.rcpt_tos == ["duty@moscow.example"]
    assert message["Subject"] == "[OpenLine moscow] FLASH call from stuttgart ringing for 0 s"
    body = message.get_content()
    assert call_id in body
    assert f"https://moscow.example/console/calls/{call_id}" in body
    assert body.count("https://moscow.example/console") == 1  # once, after the text
    (hit,) = receiver.hits
    event = Webhook(SECRET).verify(hit.body, hit.headers)
    assert event["data"]["call_id"] == call_id
    assert event["data"]["link"] == f"https://moscow.example/console/calls/{call_id}"  # was null
    assert "https://" not in event["data"]["text"]
    for text in (body, hit.body.decode()):
        assert "Strike package" not in text
    assert {r.status for r in rows(b, "email") + rows(b, "webhook")} == {"sent"}
    notified = events(b, call_id, "notified")
    assert sorted((e["detail"]["channel"], e["detail"]["recipient"]) for e in notified) == [
        ("email", "duty"),
        ("webhook", "station"),
    ]


def test_a_flood_of_calls_is_folded_into_one_page_per_address(
    floor: tuple[Node, Node], relay: Relay, receiver: Receiver
) -> None:
    """A peer places six calls at once (a hostile one might place sixty): the officer on
    duty gets three e-mails one by one, the flash call among them though it came last,
    and one that lists the other three; so does the webhook. Each call's own pages are
    still on record, the folded ones `folded`, and each call pages on."""
    a, b = floor
    ids = [place_and_ring(a, b, f"Routine {n}") for n in range(5)]
    flash = place_and_ring(a, b, "Flash", "flash")
    assert watch.escalate_due(b.station) == 6
    assert send_both(b, relay) == (4, 4)
    subjects = [parsed(e)["Subject"] for e in relay.recorder.envelopes]
    assert subjects[0] == "[OpenLine moscow] FLASH call from stuttgart ringing for 0 s"
    assert subjects[3] == "[OpenLine moscow] 3 MORE CALLS at moscow"
    one_by_one = {r.call_id for r in rows(b, "email") if r.status == "sent" and r.kind == "call.ringing"}
    assert flash in one_by_one
    assert len(one_by_one) == 3
    folded = {r.call_id for r in rows(b, "email") if r.status == "folded"}
    assert folded == set(ids) - one_by_one
    (more,) = [r for r in rows(b, "email") if r.kind == "call.more"]
    assert {i for i in ids if f"(call {i})" in more.text} == folded
    assert "openline pickup ID" in more.text
    kinds = [Webhook(SECRET).verify(h.body, h.headers)["type"] for h in receiver.hits]
    assert sorted(kinds) == ["call.more", "call.ringing", "call.ringing", "call.ringing"]
    # The folded pages answer for their calls: listed per call, never sent.
    (page,) = b.api.get(
        "/api/v1/notifications", params={"call": sorted(folded)[0], "channel": "email"}
    ).json()
    assert (page["status"], page["sent_at"], page["next_attempt_at"]) == ("folded", None, None)
    assert len(b.api.get("/api/v1/notifications", params={"status": "folded"}).json()) == 6
    for call_id in [*ids, flash]:
        (escalated,) = events(b, call_id, "escalated")
        assert escalated["detail"]["recipients"] == ["duty"]


def test_calls_missed_at_once_are_folded_too(floor: tuple[Node, Node], clock: FakeClock) -> None:
    """Six calls ring out at the same deadline: the catch-all (the commander here) gets
    three `call.missed` e-mails, the flash call's among them, and one that lists the rest."""
    a, b = floor
    with b.station.tx() as tx:
        accounts.create_user(tx.conn, tx.now, "chief", Role.COMMANDER, "x" * 12, email="chief@moscow.example")
    ids = [place_and_ring(a, b, f"Routine {n}") for n in range(5)]
    flash = place_and_ring(a, b, "Flash", "flash")
    clock.advance(3601)
    assert b.expire() == 6
    mail = [r for r in rows(b, "email") if r.recipient == "chief"]
    one_by_one = [r.call_id for r in mail if r.kind == "call.missed" and r.status == "pending"]
    folded = {r.call_id for r in mail if r.kind == "call.missed" and r.status == "folded"}
    (more,) = [r for r in mail if r.kind == "call.more"]
    assert flash in one_by_one
    assert len(one_by_one) == 3
    assert folded == set(ids) - set(one_by_one)
    assert {i for i in ids if f"(call {i})" in more.text} == folded
    assert more.title == "3 MORE CALLS at moscow"
    assert all(show(b, i)["state"] == "missed" for i in [*ids, flash])


def test_a_failing_webhook_is_retried_with_backoff_then_gives_up_with_an_alert(
    floor: tuple[Node, Node], receiver: Receiver, clock: FakeClock
) -> None:
    a, b = floor
    b.station.notify = NotifyConfig(webhook_urls=(receiver.base + "/fail",))
    call_id = place_and_ring(a, b)
    watch.escalate_due(b.station)
    hook = WebhookChannel(SECRET, timeout=5)
    try:
        assert notifier.dispatch_due(b.station, hook) == 1
        (row,) = rows(b, "webhook")
        assert (row.status, row.attempts) == ("pending", 1)
        assert "HTTP 500" in row.last_error
        assert row.next_attempt_at > clock.now()
        assert notifier.dispatch_due(b.station, hook) == 0  # not before its backoff
        for attempt in range(2, notifier.MAX_ATTEMPTS + 1):
            clock.advance(3600)
            assert notifier.dispatch_due(b.station, hook) == 1, attempt
    finally:
        hook.close()
    (row,) = rows(b, "webhook")
    assert (row.status, row.attempts) == ("failed", notifier.MAX_ATTEMPTS)
    assert len(receiver.hits) == notifier.MAX_ATTEMPTS
    assert len(events(b, call_id, "notification_retry")) == notifier.MAX_ATTEMPTS - 1
    (failed,) = events(b, call_id, "notification_failed")
    assert "HTTP 500" in failed["detail"]["error"]
    alerts = b.api.get("/api/v1/alerts").json()
    assert ("notification_failed", row.id) in [(x["kind"], x["subject"]) for x in alerts]
    (alert,) = [x for x in alerts if x["kind"] == "notification_failed"]
    assert alert["detail"]["address"] == receiver.base + "/… (webhook_urls #1)"  # which hook failed


class Hung:
    """A channel whose endpoint hangs (a test double for a dead gateway outside the
    machine), until released."""

    name = "webhook"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, n: Notification, address: str) -> None:
        self.entered.set()
        self.release.wait(30)


def test_a_hung_channel_does_not_hold_up_the_others(floor: tuple[Node, Node], relay: Relay) -> None:
    a, b = floor
    place_and_ring(a, b)
    watch.escalate_due(b.station)
    hung = Hung()
    workers = [
        notifier.Notifier(b.station, hung),
        notifier.Notifier(
            b.station, SmtpChannel("127.0.0.1", relay.port, "openline@moscow.example", timeout=5)
        ),
    ]
    for w in workers:
        w.start()
    try:
        assert hung.entered.wait(10)
        for _ in range(200):
            if relay.recorder.envelopes:
                break
            threading.Event().wait(0.05)
        assert len(relay.recorder.envelopes) == 1  # delivered while the webhook hangs
        assert rows(b, "webhook")[0].status == "pending"
    finally:
        hung.release.set()
        for w in workers:
            w.stop()


class HungAt:
    """A webhook channel whose one URL hangs (a dead chat hook, outside the machine) while
    the others answer: what reached each."""

    name = "webhook"

    def __init__(self, dead: str) -> None:
        self.dead = dead
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sent: list[str] = []

    def send(self, n: Notification, address: str) -> None:
        if address == self.dead:
            self.entered.set()
            self.release.wait(30)
        else:
            self.sent.append(address)


def test_a_hung_webhook_does_not_hold_up_the_stations_other_webhooks(floor: tuple[Node, Node]) -> None:
    """One worker sent every webhook row in turn: a dead hook's 5 s timeouts spaced out
    the pager gateway's pages. Each URL has its own worker (`Workers` builds them)."""
    a, b = floor
    dead, pager = "https://chat.example/hook", "https://pager.example/hook"
    b.station.notify = NotifyConfig(webhook_urls=(dead, pager))
    place_and_ring(a, b)
    watch.escalate_due(b.station)
    channel = HungAt(dead)
    workers = Workers(b.station, b.transport, (channel,))  # type: ignore[arg-type]
    assert [w.lane for w in workers.notifiers] == [
        notifier.Lane(only=dead),
        notifier.Lane(only=pager),
        notifier.Lane(others=(dead, pager)),
    ]
    for w in workers.notifiers:
        w.start()
    try:
        assert channel.entered.wait(10)
        for _ in range(200):
            if channel.sent:
                break
            threading.Event().wait(0.05)
        assert channel.sent == [pager]  # while the chat hook hangs
    finally:
        channel.release.set()
        for w in workers.notifiers:
            w.stop()


def test_a_page_to_a_webhook_no_longer_in_the_settings_is_still_sent(floor: tuple[Node, Node]) -> None:
    a, b = floor
    old, new = "https://old.example/hook", "https://new.example/hook"
    b.station.notify = NotifyConfig(webhook_urls=(old,))
    place_and_ring(a, b)
    watch.escalate_due(b.station)  # its page to the old URL waits
    channel = HungAt("nowhere")
    (rest,) = [lane for lane in notifier.lanes(channel, (new,)) if lane.only is None]  # type: ignore[arg-type]
    assert notifier.dispatch_due(b.station, channel, rest) == 1  # type: ignore[arg-type]
    assert channel.sent == [old]


def test_a_claimed_notification_is_retried_if_its_worker_died(
    floor: tuple[Node, Node], clock: FakeClock, relay: Relay
) -> None:
    a, b = floor
    place_and_ring(a, b)
    watch.escalate_due(b.station)
    claimed = notifier._claim(b.station, "email")  # a worker claims it, then dies
    assert len(claimed) == 1
    email = SmtpChannel("127.0.0.1", relay.port, "openline@moscow.example", timeout=5)
    assert notifier.dispatch_due(b.station, email) == 0
    clock.advance(notifier.CLAIM_SECONDS)
    assert notifier.dispatch_due(b.station, email) == 1
    assert len(relay.recorder.envelopes) == 1
    (row,) = rows(b, "email")
    assert (row.status, row.attempts) == ("sent", 2)


def test_console_notifications_need_no_sending(floor: tuple[Node, Node]) -> None:
    a, b = floor
    place_and_ring(a, b)
    watch.escalate_due(b.station)
    (row,) = rows(b, "console")
    assert (row.recipient, row.status, row.next_attempt_at) == ("duty", "sent", None)
    assert row.sent_at is not None
