"""Notification channels: tell people about a call outside the console.

Two channels, one interface (`Channel.send(notification, address)`):

- `WebhookChannel` POSTs a JSON event to a URL, signed as the Standard Webhooks
  specification says (https://www.standardwebhooks.com/): headers `webhook-id`,
  `webhook-timestamp` and `webhook-signature`, an HMAC-SHA256 made by the
  `standardwebhooks` library with a `whsec_` secret shared with the receiver.
- `SmtpChannel` sends one plain-text e-mail through an SMTP relay (`smtplib`).

Retry contract: `send` makes one attempt, bounded by the channel's timeout, and either
returns (delivered) or raises `NotifyError`. It never retries by itself: the caller
retries a failed channel with backoff, and one slow channel must not hold up another.
A retry sends the same `Notification`, so its `id` (the `webhook-id` header, the local
part of the e-mail `Message-ID`) lets the receiver drop the duplicates that retries
after an unclear failure produce.

Notifications carry metadata only (who calls whom, how urgent, for how long), never
message content: they leave the secure channel. Error messages name the channel, the
place and the reason, never a secret.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol

import httpx
from standardwebhooks.webhooks import Webhook

from openline.core.card import NAME_RE
from openline.core.clock import MICROS, rfc3339

_WHSEC_PREFIX = "whsec_"
# Standard Webhooks, "Signature scheme": secrets should be 24 to 64 random bytes.
_MIN_SECRET_BYTES = 24
# A dot-atom (RFC 5322 §3.2.3) of safe characters: valid as the left of a Message-ID
# and as a header value, and it covers UUIDs and "kind.uuid" keys.
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_ID_MAX = 128
# Characters with a meaning in an address header (RFC 5322 §3.4) besides the one '@'.
_ADDRESS_SPECIALS = frozenset('<>()[],;:"\\')


@dataclass(frozen=True)
class Notification:
    id: str
    kind: str
    station: str
    title: str
    text: str
    at: int
    call_id: str | None = None
    alert_id: int | None = None
    link: str | None = None
    recipient: str = ""


class NotifyError(Exception):
    """A channel could not deliver; the message says which channel, where, and why (no secrets)."""


class Channel(Protocol):
    name: str

    def send(self, n: Notification, address: str) -> None: ...


class WebhookChannel:
    """Standard Webhooks over HTTP(S): one signed JSON POST per notification."""

    name = "webhook"

    def __init__(self, secret: str, *, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        self._webhook = webhook_signer(secret)
        self._timeout = timeout
        self._owns_client = client is None
        # trust_env=False as in adapters.transport: the station's egress is its own settings.
        if client is None:
            client = httpx.Client(headers={"User-Agent": "openline"}, trust_env=False)
        self._client = client

    def send(self, n: Notification, address: str) -> None:
        url = _webhook_url(address)
        where = f"webhook to {_redacted(url)}"
        _check_notification(n, where)
        body = json.dumps(_event(n), separators=(",", ":"))
        sent_at = int(time.time())
        signature = self._webhook.sign(n.id, datetime.fromtimestamp(sent_at, tz=UTC), body)
        headers = {
            "content-type": "application/json",
            "webhook-id": n.id,
            "webhook-timestamp": str(sent_at),
            "webhook-signature": signature,
        }
        try:
            # Streamed and never read: only the status matters, and a receiver must not
            # keep us busy with a large or slow body.
            with self._client.stream(
                "POST",
                url,
                content=body.encode(),
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            ) as response:
                status, reason = response.status_code, response.reason_phrase
        except httpx.TimeoutException as exc:
            raise NotifyError(f"{where}: timed out after {self._timeout:g} s ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise NotifyError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            raise NotifyError(f"{where}: HTTP {status} {reason} (redirects are not followed)")
        raise NotifyError(f"{where}: HTTP {status} {reason}")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class SmtpChannel:
    """E-mail through an SMTP relay: one plain-text message per notification."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not _plausible_address(sender):
            raise ValueError(f"SMTP sender {sender!r} is not a plausible e-mail address")
        if (username is None) != (password is None):
            raise ValueError("SMTP username and password go together: give both or neither")
        if username is not None and not starttls:
            raise ValueError("refusing to send SMTP credentials without STARTTLS")
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._username = username
        self._password = password
        self._timeout = timeout

    def send(self, n: Notification, address: str) -> None:
        if not _plausible_address(address):
            raise NotifyError(f"e-mail to {address!r}: not a plausible e-mail address")
        where = f"e-mail to {address} via {self._host}:{self._port}"
        _check_notification(n, where)
        message = self._message(n, address)
        try:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            raise NotifyError(f"{where}: {self._reason(exc)}") from exc
        try:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username is not None and self._password is not None:
                smtp.login(self._username, self._password)
            smtp.send_message(message, from_addr=self._sender, to_addrs=[address])
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            smtp.close()
            raise NotifyError(f"{where}: {self._reason(exc)}") from exc
        # Delivered: a failed QUIT must not become a failure, and a duplicate on retry.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        smtp.close()

    def _message(self, n: Notification, address: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = address
        message["Subject"] = f"[OpenLine {n.station}] {n.title}"
        message["Date"] = format_datetime(datetime.fromtimestamp(n.at / MICROS, tz=UTC), usegmt=True)
        message["Message-ID"] = f"<{n.id}@{n.station}.openline>"
        # RFC 3834 §5: vacation responders must not answer an automatic message.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(n.text if n.link is None else f"{n.text}\n\n{n.link}")
        return message

    def _reason(self, exc: BaseException) -> str:
        reason = f"{type(exc).__name__}: {exc}"
        # smtplib does not put the password in its errors, but a server's reply might.
        if self._password:
            reason = reason.replace(self._password, "***")
        return reason


def _event(n: Notification) -> dict[str, Any]:
    return {
        "type": n.kind,
        "timestamp": rfc3339(n.at),
        "data": {
            "id": n.id,
            "station": n.station,
            "title": n.title,
            "text": n.text,
            "call_id": n.call_id,
            "alert_id": n.alert_id,
            "link": n.link,
            "recipient": n.recipient,
        },
    }


def webhook_signer(secret: str) -> Webhook:
    """The Standard Webhooks signer for `secret`, or `ValueError` saying what is wrong with
    it (never quoting it): the settings check `webhook_secret` with this when they load."""
    _check_secret(secret)
    return Webhook(secret)


def _check_secret(secret: str) -> None:
    if not secret.startswith(_WHSEC_PREFIX):
        raise ValueError(f"a webhook secret starts with {_WHSEC_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(_WHSEC_PREFIX) :], validate=True)
    except ValueError:  # binascii.Error, or characters outside ASCII
        raise ValueError(f"a webhook secret is {_WHSEC_PREFIX!r} followed by base64") from None
    if len(key) < _MIN_SECRET_BYTES:
        raise ValueError(f"a webhook secret needs at least {_MIN_SECRET_BYTES} bytes, got {len(key)}")


def _check_notification(n: Notification, where: str) -> None:
    """Refuse what could break out of a header or a Message-ID."""
    if len(n.id) > _ID_MAX or not _ID_RE.match(n.id):
        raise NotifyError(f"{where}: notification id {n.id!r} is not a token of letters, digits, '-_.'")
    if not NAME_RE.match(n.station):
        raise NotifyError(f"{where}: station name {n.station!r} is malformed")
    if not n.title or not n.title.isprintable():
        raise NotifyError(f"{where}: the title must be one non-empty line of printable text")


def _webhook_url(address: str) -> httpx.URL:
    # The refused address is not echoed: a mistyped webhook URL may still hold its token.
    if not address.isprintable() or any(c.isspace() for c in address):
        raise NotifyError("webhook to an address with spaces or control characters: not an http(s) URL")
    try:
        url = httpx.URL(address)
    except httpx.InvalidURL:
        raise NotifyError("webhook to a malformed address: not an http(s) URL") from None
    if url.scheme not in ("http", "https"):
        got = f"{url.scheme!r}"[:20] if url.scheme else "none"
        raise NotifyError(f"webhook to a non-http(s) address: expected scheme http or https, got {got}")
    if not url.host:
        raise NotifyError(f"webhook to {url.scheme}:// without a host: not an http(s) URL")
    return url


def shown_address(channel: str, address: str) -> str:
    """A notification's address as a listing may show it: a webhook's scheme, host and
    port only (its path may hold a token), other addresses as they are."""
    if channel != "webhook":
        return address
    try:
        return _redacted(_webhook_url(address))
    except NotifyError:
        return "(not an http(s) URL)"


def _redacted(url: httpx.URL) -> str:
    """Scheme, host and port only: chat webhooks (Slack, Teams) carry their token in the path."""
    origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
    return origin if url.raw_path == b"/" else f"{origin}/…"


def _plausible_address(address: str) -> bool:
    """A bare addr-spec with exactly one '@': nothing that could add a header or a recipient."""
    if not address.isprintable() or any(c.isspace() or c in _ADDRESS_SPECIALS for c in address):
        return False
    local, at, domain = address.partition("@")
    if not (local and at and domain) or "@" in domain:
        return False
    return parseaddr(address) == ("", address)
