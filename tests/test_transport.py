"""The peer transport against peers that answer badly, on real loopback sockets: one that
drips its answer a byte at a time, one that never stops answering, and one that holds
every request. None may hold a request past its deadline, fill our memory, or take the
connections and threads that the other lines need."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from openline.adapters.transport import MAX_ANSWER, MAX_IN_FLIGHT_PER_PEER, HttpTransport
from openline.core.keys import StationKeys
from openline.errors import PeerUnreachable

TIMEOUT = 1.0  # the transport's, for these tests
OK = b'{"ok":true}'


class _Peer(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        mode = self.path.strip("/")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if mode == "ok":
            self.send_header("Content-Length", str(len(OK)))
            self.end_headers()
            self.wfile.write(OK)
            return
        self.end_headers()  # no length: the answer runs until the connection closes
        stop = self.server.stop
        try:
            if mode == "drip":  # a byte every 0.2 s, for ever: each read comes in time
                while not stop.wait(0.2):
                    self.wfile.write(b" ")
                    self.wfile.flush()
            elif mode == "flood":  # as fast as we read it, for ever
                while not stop.is_set():
                    self.wfile.write(b" " * 65536)
            elif mode == "hold":
                stop.wait(30)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stop: threading.Event


@pytest.fixture
def peer() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Peer)
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def transport() -> Iterator[HttpTransport]:
    t = HttpTransport(StationKeys.generate(), "stuttgart", timeout=TIMEOUT)
    try:
        yield t
    finally:
        t.close()


def test_an_answer_dripped_a_byte_at_a_time_ends_at_the_deadline(peer: str, transport: HttpTransport) -> None:
    started = time.monotonic()
    with pytest.raises(PeerUnreachable, match="took more than 1 s"):
        transport.post("moscow", peer, "/drip", {"envelopes": []})
    assert time.monotonic() - started < TIMEOUT + 1.0  # httpx alone would wait for ever


def test_an_answer_that_never_ends_is_read_no_further_than_the_limit(
    peer: str, transport: HttpTransport
) -> None:
    with pytest.raises(PeerUnreachable, match=f"runs past {MAX_ANSWER} bytes"):
        transport.post("moscow", peer, "/flood", {"envelopes": []})


def test_a_peer_that_holds_our_requests_cannot_take_every_connection(
    peer: str, transport: HttpTransport
) -> None:
    """moscow holds every request it gets; its requests beyond the cap fail at once, and
    another peer (minsk, at another address) is still answered meanwhile."""
    with ThreadPoolExecutor(MAX_IN_FLIGHT_PER_PEER) as pool:
        held = [
            pool.submit(transport.post, "moscow", peer, "/hold", {}) for _ in range(MAX_IN_FLIGHT_PER_PEER)
        ]
        deadline = time.monotonic() + 5
        while transport._in_flight.get("moscow", 0) < MAX_IN_FLIGHT_PER_PEER:
            assert time.monotonic() < deadline, "the held requests did not start"
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(PeerUnreachable, match="still waiting for an answer"):
            transport.post("moscow", peer, "/ok", {})
        assert time.monotonic() - started < 0.5
        assert transport.post("minsk", peer, "/ok", {}) == {"ok": True}
        for f in held:  # each ends at its own deadline
            with pytest.raises(PeerUnreachable):
                f.result(timeout=TIMEOUT + 5)
    assert transport.post("moscow", peer, "/ok", {}) == {"ok": True}  # its slots are free again


def test_a_port_nobody_answers_on_is_unreachable(transport: HttpTransport) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening
        with pytest.raises(PeerUnreachable, match="ConnectError"):
            transport.post("moscow", f"http://127.0.0.1:{port}", "/ok", {})
