"""Real servers on loopback for notification tests: a webhook receiver (HTTP) and an
SMTP relay (aiosmtpd). Their fixtures are registered in conftest.py."""

from __future__ import annotations

import base64
import email
import email.policy
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

from tests.ports import free_port

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
HOLD = 30.0  # the slow endpoint's longest hold; the fixture releases it sooner


# ---- a webhook receiver ------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    base: str
    hits: list[Hit] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.receiver.hits.append(Hit(self.path, dict(self.headers.items()), body))
        if self.path.startswith("/slow"):
            self.server.receiver.release.wait(HOLD)
            return  # no answer at all: the client has given up by now
        if self.path.startswith("/fail"):
            self.send_response(500)
        elif self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("location", "/ok")
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    receiver: Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        server.receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Recorder:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@dataclass
class Relay:
    port: int
    recorder: Recorder


@contextmanager
def running(recorder: Recorder, tls_context: ssl.SSLContext | None = None) -> Iterator[Relay]:
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, tls_context=tls_context)
    controller.start()
    try:
        yield Relay(port, recorder)
    finally:
        controller.stop()


@pytest.fixture
def relay() -> Iterator[Relay]:
    with running(Recorder()) as relay:
        yield relay


def parsed(envelope: Envelope) -> EmailMessage:
    assert isinstance(envelope.content, bytes)
    # SMTP carries CRLF line ends; the message itself was written with LF.
    message = email.message_from_bytes(envelope.content.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message
