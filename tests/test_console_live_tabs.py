"""The console's live connection through a night on the watch floor, in a real Chromium
against two real stations: many tabs open at once, the tab holding the stream closed, a
proxy that answers 502 while the station restarts, a session ended by an administrator,
and a login again in another tab."""

from __future__ import annotations

import contextlib
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.harness import StationProcess, running_pair
from tests.ports import free_port

pytestmark = pytest.mark.e2e
PASSWORD = "a long passphrase here"
TABS = ("/history", "/notices", "/roster", "/report", "/ledger")  # with the board: six


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[StationProcess, StationProcess]]:
    with running_pair(tmp_path, officers={"moscow": "boris"}, password=PASSWORD) as stations:
        yield stations


def log_in(page: Page, url: str, name: str = "boris") -> None:
    page.goto(url + "/")
    expect(page).to_have_url(url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(url + "/")
    expect(page.get_by_role("region", name="Ringing calls")).to_be_visible()


def open_tab(ctx: BrowserContext, url: str) -> Page:
    """A console page in a new tab, once it listens: its first refresh is the one the
    stream's first event asks for."""
    page = ctx.new_page()
    with page.expect_request("**/ringing"):
        page.goto(url)
    return page


def streams_opened(ctx: BrowserContext) -> list[str]:
    """The /events requests the browser makes from now on, in any tab."""
    opened: list[str] = []
    ctx.on("request", lambda request: opened.append(request.url) if request.url.endswith("/events") else None)
    return opened


def until(page: Page, predicate: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Until `predicate` holds; Playwright reports requests only while it is called."""
    for _ in range(int(timeout_s / 0.1)):
        if predicate():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}")


def _session_ends_in(station: StationProcess, seconds: float) -> None:
    with sqlite3.connect(station.home / "openline.db") as db:
        db.execute("UPDATE sessions SET expires_at = ?", (int((time.time() + seconds) * 1_000_000),))


def test_seven_console_tabs_share_one_stream_and_a_call_still_rings_and_is_picked_up(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """Six tabs each held an event stream: all six connections Chromium opens to a station.
    A new call never showed, Pick up did nothing and a seventh tab never loaded."""
    a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    opened = streams_opened(ctx)
    board = ctx.new_page()
    try:
        log_in(board, b.url)
        tabs = [board] + [open_tab(ctx, b.url + path) for path in TABS]
        seventh = ctx.new_page()
        seventh.goto(b.url + "/history", timeout=10_000)
        expect(seventh).to_have_title(re.compile(r"^Call history"))
        tabs.append(seventh)
        assert opened == [b.url + "/events"]  # one stream for the browser

        call_id = a.cli_json("call", "moscow", "--subject", "Seven tabs open")["id"]
        expect(board.locator(f"[data-call='{call_id}'] [data-pickup]")).to_be_visible(timeout=5000)
        for tab in tabs:
            expect(tab).to_have_title(re.compile(r"^\(1\) RINGING · "), timeout=5000)
        board.keyboard.press("p")
        expect(board).to_have_url(b.url + f"/calls/{call_id}", timeout=5000)
        expect(board.locator("[data-state]")).to_have_text("picked_up")
        for tab in tabs[1:]:
            expect(tab).not_to_have_title(re.compile("RINGING"), timeout=5000)
    finally:
        ctx.close()


def test_another_tab_takes_over_the_stream_when_its_tab_closes(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    opened = streams_opened(ctx)
    board = ctx.new_page()
    try:
        log_in(board, b.url)
        history = open_tab(ctx, b.url + "/history")
        assert opened == [b.url + "/events"]  # the board's: the history hears it through the board
        with history.expect_request("**/events"):
            board.close()
        a.cli_json("call", "moscow", "--subject", "After the board closed")
        expect(history).to_have_title(re.compile(r"^\(1\) RINGING · "), timeout=5000)
        expect(history.locator("#ringing")).to_have_text("1 ringing")
        expect(history.locator("[data-trouble]")).to_be_hidden()
    finally:
        ctx.close()


def test_every_tab_says_the_session_ended_when_an_administrator_disables_the_user(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """The board used to go on looking live (ringing, sounding) until the next change."""
    _a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    board = ctx.new_page()
    try:
        log_in(board, b.url)
        history = open_tab(ctx, b.url + "/history")
        with b.api() as api:
            api.post("/users/boris/disable").raise_for_status()
        # Each to the login page, and from there back to where it was (the board is "/").
        for page, back in ((board, ""), (history, "&next=%2Fhistory")):
            expect(page).to_have_url(b.url + "/login?ended=1" + back, timeout=15_000)
            expect(page).to_have_title(re.compile(r"^SESSION ENDED · "))
            expect(page.locator("[data-session-ended]")).to_be_visible()
    finally:
        ctx.close()


def test_the_board_goes_to_the_login_page_when_the_station_comes_back_without_its_session(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """The session ended while the station was down (a password reset): back up, /events
    answers with the login page, which an event stream cannot follow; the board said
    'reconnecting' for ever."""
    _a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    board = ctx.new_page()
    try:
        log_in(board, b.url)
        b.stop()
        banner = board.locator("[data-trouble]")
        expect(banner).to_contain_text("Not connected to the station", timeout=10_000)
        with sqlite3.connect(b.home / "openline.db") as db:
            db.execute("DELETE FROM sessions")  # as a password reset does
        b.start()
        expect(board).to_have_url(b.url + "/login?ended=1", timeout=10_000)
        expect(board).to_have_title(re.compile(r"^SESSION ENDED · "))
    finally:
        ctx.close()


def test_a_login_in_another_tab_keeps_the_board_alive_past_the_old_session(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """The expiry warning says to log in again; the officer did, in another tab. The board
    still ended itself at the old session's end, and its stream with it."""
    a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    opened = streams_opened(ctx)
    board = ctx.new_page()
    try:
        log_in(board, b.url)
        _session_ends_in(b, 8)
        board.reload()
        until(board, lambda: len(opened) == 2, "the reloaded board's stream")
        banner = board.locator("[data-trouble]")
        expect(banner).to_contain_text("Your session ends in")
        again = ctx.new_page()
        again.goto(b.url + "/login")
        again.fill("input[name=username]", "boris")
        again.fill("input[name=password]", PASSWORD)
        again.get_by_role("button", name="Log in").click()
        expect(again).to_have_url(b.url + "/")
        again.close()

        # The old session's stream ends at the station; the board opens one with the new.
        until(board, lambda: len(opened) == 3, "a stream for the new session", timeout_s=20)
        # At the old session's end the board asked the station: the warning goes, the board stays.
        expect(banner).to_be_hidden(timeout=5000)
        expect(board).to_have_url(b.url + "/")
        call_id = a.cli_json("call", "moscow", "--subject", "After the login again")["id"]
        expect(board.locator(f"[data-call='{call_id}'] [data-pickup]")).to_be_visible(timeout=5000)
        expect(board).to_have_title(re.compile(r"^\(1\) RINGING · "))
        # The page's forms carry the new session's token: logging out works from here.
        board.get_by_role("button", name="Log out").click()
        expect(board).to_have_url(b.url + "/login")
    finally:
        ctx.close()


def test_logging_out_is_not_taken_for_a_session_that_ended(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """The station ends the session as the officer logs out, and the board's stream hears
    that within seconds: the board went to "SESSION ENDED" when that came before the
    logout's own answer (a full run met it)."""
    _a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    board = ctx.new_page()

    def slow_answer(route: Route) -> None:
        answer = route.fetch(max_redirects=0)  # the session is ended at the station now
        time.sleep(7)  # longer than the stream takes to notice (live.SESSION_CHECK_SECONDS)
        route.fulfill(response=answer)

    try:
        log_in(board, b.url)
        board.route("**/logout", slow_answer)
        board.get_by_role("button", name="Log out").click()
        expect(board).to_have_url(b.url + "/login", timeout=15_000)
        expect(board).not_to_have_title(re.compile("SESSION ENDED"))
    finally:
        ctx.close()


class Gateway:
    """A reverse proxy in front of a station, as nginx is: each connection is piped to the
    station, or answered 502 Bad Gateway when the station does not take it (stopped)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
        except OSError:
            with client:
                client.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        upstream.settimeout(None)
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_behind_a_proxy_the_board_reconnects_within_seconds_after_a_long_restart(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """The proxy answers 502 while the station is down. The SSE extension waited twice as
    long after each refused attempt, up to 64 s: the board stayed 'Not connected' up to a
    minute after the station was back."""
    a, b = pair
    gateway = Gateway(b.port)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    board = ctx.new_page()
    refused: list[str] = []  # the attempts to open the stream that the proxy answered 502
    ctx.on(
        "response", lambda r: refused.append(r.url) if r.url.endswith("/events") and r.status == 502 else None
    )
    try:
        log_in(board, gateway.url)
        banner = board.locator("[data-trouble]")
        b.stop()
        expect(banner).to_contain_text("Not connected to the station", timeout=10_000)
        until(board, lambda: len(refused) >= 6, "six attempts refused by the proxy", timeout_s=30)
        b.start()
        expect(banner).to_be_hidden(timeout=5000)
        call_id = a.cli_json("call", "moscow", "--subject", "Back behind the proxy")["id"]
        expect(board.locator(f"[data-call='{call_id}']")).to_be_visible(timeout=5000)
    finally:
        ctx.close()
        gateway.close()


def test_a_station_that_cannot_store_says_so_though_its_pages_still_refresh(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    """On a full disk the station reads (every refresh succeeds) but stores nothing: the
    stream's `database_unavailable` is then all the page has to say it, until the stream
    says the database is back (tests/test_live.py: a stream that starts meanwhile says
    it too)."""
    _, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        board = ctx.new_page()
        log_in(board, b.url)
        banner = board.locator("[data-trouble]")
        expect(banner).to_be_hidden()

        def hear(*changed: str) -> None:  # as the station's stream delivers it to a region
            board.evaluate(
                """changed => document.querySelector("[hx-trigger*='sse:change']").dispatchEvent(
                    new CustomEvent("htmx:sseMessage", {bubbles: true,
                        detail: new MessageEvent("change", {data: JSON.stringify({changed})})}))""",
                list(changed),
            )

        hear("database_unavailable")
        expect(banner).to_contain_text(
            re.compile(
                r"^The station cannot use its database \(since \d\d:\d\d:\d\dZ\): nothing new can be stored"
            )
        )
        hear("calls")  # a change of something else: still so
        expect(banner).to_contain_text("The station cannot use its database")
        hear("connected")
        expect(banner).to_be_hidden()
    finally:
        ctx.close()
