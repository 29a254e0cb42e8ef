"""Notification channels (openline.adapters.notify) against real servers on loopback."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from openline.adapters.notify import Notification as N
from openline.adapters.notify import NotifyError, SmtpChannel, WebhookChannel
from openline.core.clock import MICROS
from tests.ports import free_port
from tests.servers import HOLD, SECRET, Receiver, Recorder, Relay, parsed, running

OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
_2026 = 1_767_225_600 * MICROS  # 2026-01-01T00:00:00Z

NOTE = N(
    id="0190a6f2-7c1e-7d4a-9c3b-1f2e3d4c5b6a",
    kind="call.ringing",
    station="stuttgart",
    title="FLASH call from moscow ringing for 60 s",
    text="Line: moscow\nPriority: FLASH\nRinging since 00:00:00Z",
    at=_2026 + 123,
    call_id="0190a6f2-0000-7000-8000-000000000001",
    link="https://stuttgart.example/calls/0190a6f2-0000-7000-8000-000000000001",
    recipient="alice",
)


@pytest.fixture
def webhook() -> Iterator[WebhookChannel]:
    channel = WebhookChannel(SECRET, timeout=0.5)
    try:
        yield channel
    finally:
        channel.close()


def test_webhook_posts_the_event_signed_by_standard_webhooks(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    before = int(time.time())
    webhook.send(NOTE, receiver.base + "/hook")
    [hit] = receiver.hits
    assert hit.path == "/hook"
    assert json.loads(hit.body) == {
        "type": "call.ringing",
        "timestamp": "2026-01-01T00:00:00.000123Z",
        "data": {
            "id": NOTE.id,
            "station": "stuttgart",
            "title": "FLASH call from moscow ringing for 60 s",
            "text": "Line: moscow\nPriority: FLASH\nRinging since 00:00:00Z",
            "call_id": NOTE.call_id,
            "alert_id": None,
            "link": NOTE.link,
            "recipient": "alice",
        },
    }
    headers = {k.lower(): v for k, v in hit.headers.items()}
    assert headers["webhook-id"] == NOTE.id
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(hit.body, headers) == json.loads(hit.body)


def test_webhook_signature_fails_with_another_secret_or_a_tampered_body(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    webhook.send(NOTE, receiver.base + "/hook")
    [hit] = receiver.hits
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(hit.body, hit.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(hit.body.replace(b"moscow", b"berlin"), hit.headers)


def test_webhook_retry_keeps_the_id_so_the_receiver_can_drop_duplicates(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    webhook.send(NOTE, receiver.base + "/hook")
    webhook.send(NOTE, receiver.base + "/hook")
    ids = [{k.lower(): v for k, v in h.headers.items()}["webhook-id"] for h in receiver.hits]
    assert ids == [NOTE.id, NOTE.id]


def test_webhook_http_500_is_a_notify_error(receiver: Receiver, webhook: WebhookChannel) -> None:
    with pytest.raises(NotifyError, match=r"^webhook to http://127\.0\.0\.1:\d+/…: HTTP 500"):
        webhook.send(NOTE, receiver.base + "/fail")


def test_webhook_error_does_not_show_a_token_in_the_url(receiver: Receiver, webhook: WebhookChannel) -> None:
    url = receiver.base.replace("http://", "http://user:hunter2@") + "/fail/T0/B0/s3cr3t?k=v"
    with pytest.raises(NotifyError) as caught:
        webhook.send(NOTE, url)
    assert "500" in str(caught.value)
    for secret in ("hunter2", "s3cr3t", "k=v", "user"):
        assert secret not in str(caught.value)


def test_webhook_redirect_is_not_followed(receiver: Receiver, webhook: WebhookChannel) -> None:
    with pytest.raises(NotifyError, match=r"HTTP 302 .*redirects are not followed"):
        webhook.send(NOTE, receiver.base + "/redirect")
    assert [h.path for h in receiver.hits] == ["/redirect"]


def test_webhook_redirect_is_not_followed_even_by_a_client_that_would(receiver: Receiver) -> None:
    with httpx.Client(follow_redirects=True) as client:
        channel = WebhookChannel(SECRET, client=client)
        with pytest.raises(NotifyError, match="HTTP 302"):
            channel.send(NOTE, receiver.base + "/redirect")
        channel.close()
        assert not client.is_closed  # the caller's client is the caller's to close
    assert [h.path for h in receiver.hits] == ["/redirect"]


def test_webhook_connection_refused_is_a_notify_error(webhook: WebhookChannel) -> None:
    port = free_port()
    with pytest.raises(NotifyError, match=rf"^webhook to http://127\.0\.0\.1:{port}/…: ConnectError"):
        webhook.send(NOTE, f"http://127.0.0.1:{port}/hook")


def test_webhook_timeout_is_a_notify_error_within_the_timeout(
    receiver: Receiver, webhook: WebhookChannel
) -> None:
    started = time.monotonic()
    with pytest.raises(NotifyError, match=r"timed out after 0\.5 s \(ReadTimeout\)"):
        webhook.send(NOTE, receiver.base + "/slow")
    # Generous: the point is that send does not wait for the receiver's HOLD.
    assert time.monotonic() - started < HOLD / 3


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("ftp://127.0.0.1/hook", "got 'ftp'"),
        ("file:///etc/passwd", "got 'file'"),
        ("127.0.0.1:8080/hook", "got"),
        ("/relative/hook", "got none"),
        ("", "got none"),
        ("http:///no-host", "without a host"),
        ("http://127.0.0.1/a b", "spaces or control characters"),
        ("http://127.0.0.1/\r\nx: y", "spaces or control characters"),
    ],
)
def test_webhook_refuses_an_address_that_is_not_an_http_url(
    receiver: Receiver, webhook: WebhookChannel, address: str, reason: str
) -> None:
    with pytest.raises(NotifyError, match=rf"^webhook to .*{reason}"):
        webhook.send(NOTE, address)
    assert receiver.hits == []


@pytest.mark.parametrize(
    "secret",
    ["", "k" * 44, "whsec_", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_webhook_refuses_a_secret_that_is_not_a_whsec_key(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret") as caught:
        WebhookChannel(secret)
    if secret:
        assert secret not in str(caught.value)


# ---- an SMTP relay -----------------------------------------------------------------


def test_email_sends_one_message_with_metadata_only(relay: Relay) -> None:
    channel = SmtpChannel("127.0.0.1", relay.port, "station@stuttgart.example", timeout=5)
    channel.send(NOTE, "alice@example.org")
    [envelope] = relay.recorder.envelopes
    assert envelope.mail_from == "station@stuttgart.example"
    assert envelope.rcpt_tos == ["alice@example.org"]
    message = parsed(envelope)
    assert message["From"] == "station@stuttgart.example"
    assert message["To"] == "alice@example.org"
    assert message["Subject"] == "[OpenLine stuttgart] FLASH call from moscow ringing for 60 s"
    assert message["Message-ID"] == f"<{NOTE.id}@stuttgart.openline>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == f"{NOTE.text}\n\n{NOTE.link}\n"
    assert message.keys() == [
        *("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted"),
        *("Content-Type", "Content-Transfer-Encoding", "MIME-Version"),
    ]


def test_email_without_a_link_is_the_text_alone(relay: Relay) -> None:
    channel = SmtpChannel("127.0.0.1", relay.port, "station@stuttgart.example", timeout=5)
    channel.send(replace(NOTE, link=None, title="Anruf aus München verpasst"), "bob@example.org")
    message = parsed(relay.recorder.envelopes[0])
    assert message.get_content() == NOTE.text + "\n"
    assert message["Subject"] == "[OpenLine stuttgart] Anruf aus München verpasst"


def test_email_to_a_closed_port_is_a_notify_error() -> None:
    port = free_port()
    channel = SmtpChannel("127.0.0.1", port, "station@stuttgart.example", timeout=5)
    with pytest.raises(NotifyError, match=rf"^e-mail to alice@example\.org via 127\.0\.0\.1:{port}: "):
        channel.send(NOTE, "alice@example.org")


def test_email_refused_by_the_relay_is_a_notify_error(relay: Relay) -> None:
    channel = SmtpChannel("127.0.0.1", relay.port, "station@stuttgart.example", timeout=5)
    with pytest.raises(NotifyError, match=r"SMTPRecipientsRefused.*no such user"):
        channel.send(NOTE, "nobody@example.org")
    assert relay.recorder.envelopes == []


@pytest.mark.parametrize(
    "address",
    [
        "a@b@c",
        "x\r\nBcc: evil@x",
        "alice@example.org\r\nBcc: evil@x",
        "",
        "no-at-sign",
        "@example.org",
        "alice@",
        "alice @example.org",
        "Alice <alice@example.org>",
        "alice@example.org, evil@x",
        "alice@example.org\x00",
    ],
)
def test_email_refuses_an_implausible_address_and_sends_nothing(relay: Relay, address: str) -> None:
    channel = SmtpChannel("127.0.0.1", relay.port, "station@stuttgart.example", timeout=5)
    with pytest.raises(NotifyError, match="not a plausible e-mail address"):
        channel.send(NOTE, address)
    assert relay.recorder.envelopes == []


@pytest.mark.parametrize(
    "change",
    [
        {"title": "ringing\r\nBcc: evil@x"},
        {"title": "ringing\nBcc: evil@x"},
        {"title": ""},
        {"station": "stuttgart\r\nBcc: evil@x"},
        {"id": "x>\r\nBcc: evil@x"},
        {"id": "a@b"},
    ],
)
def test_email_refuses_a_notification_that_could_inject_a_header(
    relay: Relay, change: dict[str, str]
) -> None:
    channel = SmtpChannel("127.0.0.1", relay.port, "station@stuttgart.example", timeout=5)
    with pytest.raises(NotifyError, match=r"^e-mail to alice@example\.org via .*(title|station|id)"):
        channel.send(replace(NOTE, **change), "alice@example.org")  # type: ignore[arg-type]
    assert relay.recorder.envelopes == []


def test_webhook_refuses_a_title_that_is_not_one_line(receiver: Receiver, webhook: WebhookChannel) -> None:
    with pytest.raises(NotifyError, match="title"):
        webhook.send(replace(NOTE, title="one\r\ntwo"), receiver.base + "/hook")
    assert receiver.hits == []


def test_email_refuses_a_bad_sender_or_credentials_in_the_clear() -> None:
    with pytest.raises(ValueError, match="sender"):
        SmtpChannel("127.0.0.1", 25, "station@x\r\nBcc: evil@x")
    with pytest.raises(ValueError, match="both or neither"):
        SmtpChannel("127.0.0.1", 25, "station@x.example", starttls=True, username="station")
    with pytest.raises(ValueError, match="without STARTTLS"):
        SmtpChannel("127.0.0.1", 25, "station@x.example", username="station", password="pw")


def test_email_starttls_the_relay_does_not_offer_is_a_notify_error(relay: Relay) -> None:
    channel = SmtpChannel("127.0.0.1", relay.port, "station@stuttgart.example", starttls=True, timeout=5)
    with pytest.raises(NotifyError, match="STARTTLS"):
        channel.send(NOTE, "alice@example.org")
    assert relay.recorder.envelopes == []


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_email_starttls_checks_the_relay_certificate_and_never_shows_the_password(tmp_path: Path) -> None:
    with running(Recorder(), _self_signed(tmp_path)) as relay:
        channel = SmtpChannel(
            "127.0.0.1",
            relay.port,
            "station@stuttgart.example",
            starttls=True,
            username="station",
            password="hunter2-password",
            timeout=5,
        )
        with pytest.raises(NotifyError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            channel.send(NOTE, "alice@example.org")
        assert "hunter2" not in str(caught.value)
        assert relay.recorder.envelopes == []
