"""The console in a real Chromium against two real stations: an officer at stuttgart
places a call from the console; an officer at moscow, already looking at the watch
board, sees it ring without reloading, picks it up; they exchange messages; one closes.
Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import HeldResponse, artifact_path
from tests.harness import (
    StationProcess,
    add_user,
    connect,
    picked_up_call,
    running_pair,
    start_all,
    stop_all,
    wait_for,
)
from tests.pg import PostgresServer

pytestmark = pytest.mark.e2e
PASSWORD = "a long passphrase here"
LIVE_MS = 1000  # an inbound call must appear within a second, without a reload


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[StationProcess, StationProcess]]:
    with running_pair(
        tmp_path, officers={"stuttgart": "anna", "moscow": "boris"}, password=PASSWORD
    ) as stations:
        yield stations


def log_in(page: Page, station: StationProcess, name: str) -> None:
    page.goto(station.url + "/")
    expect(page).to_have_url(station.url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(station.url + "/")
    expect(page.get_by_role("region", name="Ringing calls")).to_be_visible()


def test_two_officers_handle_a_call_in_the_console(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
) -> None:
    a, b = pair
    anna_ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    boris_ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    anna, boris = anna_ctx.new_page(), boris_ctx.new_page()
    try:
        log_in(anna, a, "anna")
        log_in(boris, b, "boris")
        expect(boris.get_by_text("No call is ringing.")).to_be_visible()
        boris.wait_for_timeout(300)  # the board's event stream is connected by now

        # Anna places a flash call from the console.
        anna.select_option("select[name=peer]", "moscow")
        anna.fill("input[name=subject]", "Convoy of 12 trucks at checkpoint 4")
        anna.select_option("select[name=priority]", "flash")
        anna.get_by_role("button", name="Call", exact=True).click()
        expect(anna).to_have_url(re.compile(r"/calls/[0-9a-f-]{36}$"))
        call_url = anna.url
        call_id = call_url.rsplit("/", 1)[1]

        # Boris's board shows it ringing, live, with a big Pick up button.
        started = time.monotonic()
        pick_up = boris.get_by_role("button", name="Pick up")
        expect(pick_up).to_be_visible(timeout=LIVE_MS + 2000)
        seen_after = time.monotonic() - started
        expect(boris.locator(f"[data-call='{call_id}']")).to_contain_text(
            "Convoy of 12 trucks at checkpoint 4"
        )
        expect(boris).to_have_title(re.compile(r"^\(1\) RINGING"))
        boris.screenshot(path=artifact_path("console-ringing.png"), full_page=True)

        # The keyboard shortcut picks it up.
        boris.keyboard.press("p")
        expect(boris).to_have_url(b.url + f"/calls/{call_id}")
        expect(boris.locator("[data-state]")).to_have_text("picked_up")
        expect(anna.locator("[data-state]")).to_have_text("picked_up", timeout=5000)  # live on anna's view

        boris.fill("textarea[name=text]", "Moscow here. Go ahead.")
        boris.get_by_role("button", name="Send").click()
        expect(anna.locator(".thread").get_by_text("Moscow here. Go ahead.")).to_be_visible(timeout=5000)
        anna.fill("textarea[name=text]", "Convoy passes at 14:00Z.")
        anna.get_by_role("button", name="Send").click()
        expect(boris.locator(".thread").get_by_text("Convoy passes at 14:00Z.")).to_be_visible(timeout=5000)
        expect(anna.get_by_text("✓ receipted")).to_have_count(2, timeout=5000)
        anna.screenshot(path=artifact_path("console-thread.png"), full_page=True)
        _a_change_during_a_refresh_is_not_lost(anna, boris)
        _a_change_just_after_a_refresh_is_heard(anna)

        # Close, one press from Send, with a message typed and not sent: the station asks.
        boris.fill("textarea[name=text]", "Hold fire at the bridge")
        boris.fill("input[name=summary]", "Convoy acknowledged")
        boris.get_by_role("button", name="Close call").click()
        expect(boris.locator("#form-error")).to_contain_text("A message is typed and not sent")
        expect(boris.locator("[data-state]")).to_have_text("picked_up")
        expect(boris.locator("textarea[name=text]")).to_have_value("Hold fire at the bridge")
        expect(boris.locator("#summary")).to_have_value("Convoy acknowledged")
        boris.fill("#summary", "Convoy acknowledged; no bridge")  # as the form stands when pressed
        boris.get_by_role("button", name="Close without sending the message").click()
        expect(boris.locator("[data-state]")).to_have_text("closed")
        expect(boris.get_by_text("Convoy acknowledged; no bridge")).to_be_visible()
        expect(boris.locator(".thread")).not_to_contain_text("Hold fire at the bridge")
        expect(anna.locator("[data-state]")).to_have_text("closed", timeout=5000)
        expect(boris.get_by_role("region", name="Event log")).to_contain_text("escalated")
        boris.screenshot(path=artifact_path("console-closed.png"), full_page=True)
        assert artifact_path("console-ringing.png").stat().st_size > 10_000
        # Recorded for the benchmark notes; the hard bound is the expect timeout above.
        print(f"inbound call visible on the board {seen_after * 1000:.0f} ms after placing it")
    finally:
        anna_ctx.close()
        boris_ctx.close()


def test_the_board_reconnects_after_a_station_restart(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
) -> None:
    a, b = pair
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})  # a wall display
    page = ctx.new_page()
    try:
        log_in(page, b, "boris")
        b.stop()
        b.start()
        page.wait_for_timeout(2500)  # the event stream reconnects by itself (retry: 1 s)
        call_id = a.cli_json("call", "moscow", "--subject", "After the restart")["id"]
        expect(page.locator(f"[data-call='{call_id}']")).to_be_visible(timeout=5000)
        pick_up = page.get_by_role("button", name="Pick up")
        # The card shows before the call rings, and the live board may swap the button for
        # a new one between finding it and measuring it (no box then): measure until it holds.
        box = wait_for(pick_up.bounding_box, timeout=5, what="the Pick up button on screen")
        assert box["height"] >= 48  # readable across the room, and an easy target
        page.screenshot(path=artifact_path("console-wall-display.png"))
    finally:
        ctx.close()


# Counts the alarm's tones: each beep makes two oscillators.
COUNT_TONES = """
window.tones = 0;
const make = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () { window.tones += 1; return make.call(this); };
"""


def test_a_ringing_call_is_seen_and_heard_on_every_page(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
) -> None:
    """The officer switched the sound on at the board, then went to read the history: a
    call that rings now must still sound, and say so in the title and the header."""
    a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    ctx.add_init_script(COUNT_TONES)
    page = ctx.new_page()
    try:
        log_in(page, b, "boris")
        sound = page.locator("[data-sound]")
        sound.click()
        expect(sound).to_have_text("Sound on")
        page.get_by_role("link", name="History").click()
        expect(page).to_have_url(b.url + "/history")
        expect(sound).to_have_attribute("aria-pressed", "true")  # kept from the board
        expect(sound).to_have_text(re.compile("^Sound on"))
        ringing = page.locator("#ringing")
        expect(ringing).to_be_hidden()
        page.wait_for_timeout(300)  # the event stream is connected by now
        assert page.evaluate("window.tones") == 0

        call_id = a.cli_json("call", "moscow", "--subject", "Rings while the history is read")["id"]
        expect(page).to_have_title(re.compile(r"^\(1\) RINGING · "), timeout=LIVE_MS + 2000)
        expect(ringing).to_have_text("1 ringing")
        wait_for(lambda: page.evaluate("window.tones") >= 4, timeout=5, what="two beeps at least")
        page.screenshot(path=artifact_path("console-ringing-elsewhere.png"))

        b.cli("pickup", call_id)  # picked up on another console: the alarm stops
        expect(page).not_to_have_title(re.compile("RINGING"), timeout=5000)
        expect(ringing).to_be_hidden()
        quiet = page.evaluate("window.tones")
        page.wait_for_timeout(2000)  # more than one beep's interval
        assert page.evaluate("window.tones") == quiet

        sound.click()  # switched off: off on the next page too
        expect(sound).to_have_text("Sound off")
        page.goto(b.url + "/notices")
        expect(page.locator("[data-sound]")).to_have_attribute("aria-pressed", "false")
    finally:
        ctx.close()


def test_the_keyboard_focus_stays_on_pick_up_when_the_board_refreshes(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
) -> None:
    """An officer tabbed to Pick up; another call rang and the board refreshed itself. The
    focus was lost to the page, and the next Enter did nothing."""
    a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    try:
        log_in(page, b, "boris")
        page.wait_for_timeout(300)
        first = a.cli_json("call", "moscow", "--subject", "First", "--priority", "flash")["id"]
        pick_up = page.locator(f"[data-call='{first}'] [data-pickup]")
        expect(pick_up).to_be_visible(timeout=LIVE_MS + 2000)
        page.wait_for_timeout(300)  # the refresh for the ringing state is in
        pick_up.focus()
        a.cli_json("call", "moscow", "--subject", "Second", "--priority", "routine")
        expect(page.locator("[data-pickup]")).to_have_count(2, timeout=LIVE_MS + 2000)
        focused = page.evaluate("document.activeElement.closest('[data-call]')?.getAttribute('data-call')")
        assert focused == first
        page.keyboard.press("Enter")
        expect(page).to_have_url(b.url + f"/calls/{first}")
    finally:
        ctx.close()


@pytest.mark.parametrize("width", [375, 768])
def test_no_page_scrolls_sideways_on_a_phone_or_a_tablet(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
    width: int,
) -> None:
    """375 px (a phone) and 768 px (a tablet held upright) wide: wide tables scroll inside
    themselves, and every link in the header can be reached. The report's figures, a dozen
    columns, ran 1,033 px wide on the tablet."""
    a, b = pair
    call_id = a.cli_json("call", "moscow", "--subject", "From the phone " + "x" * 80)["id"]
    ctx = browser.new_context(viewport={"width": width, "height": 800})
    page = ctx.new_page()
    try:
        log_in(page, b, "boris")
        for path in ("/", "/history", "/notices", "/roster", "/report", "/ledger", f"/calls/{call_id}"):
            page.goto(b.url + path)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, (path, wide)
            if path == "/report":
                assert page.locator("table.figures").count() > 0  # what would run wide is there
        for link in page.locator("nav.links a").all():
            box = link.bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= width, link.text_content()
        page.screenshot(path=artifact_path(f"console-{width}px.png"), full_page=True)
    finally:
        ctx.close()


def _session_ends_then_log_in(page: Page, station: StationProcess, name: str, login_url: str) -> None:
    """The session of the page on `station` ends in 3 s; once on the login page (its URL
    matching `login_url`), `name` logs in again."""
    _session_ends_in(station, 3)
    expect(page).to_have_url(re.compile(login_url), timeout=8000)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _session_ends_in(station: StationProcess, seconds: float) -> None:
    with sqlite3.connect(station.home / "openline.db") as db:
        db.execute("UPDATE sessions SET expires_at = ?", (int((time.time() + seconds) * 1_000_000),))


def test_the_console_warns_before_the_session_ends_and_says_when_it_has(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
) -> None:
    """Twelve hours after the login the session ends. The board used to go on looking
    live until the next call arrived, and then turned silently into the login page."""
    _a, b = pair
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    try:
        log_in(page, b, "boris")
        expect(page.locator("[data-trouble]")).to_be_hidden()
        _session_ends_in(b, 10 * 60)
        page.reload()
        expect(page.locator("[data-trouble]")).to_contain_text("Your session ends in 9 min")
        _session_ends_in(b, 3)
        page.reload()
        expect(page).to_have_url(b.url + "/login?ended=1", timeout=8000)  # at once, not at the next change
        expect(page).to_have_title(re.compile(r"^SESSION ENDED · "))
        expect(page.locator("[data-session-ended]")).to_be_visible()
    finally:
        ctx.close()


def test_after_the_session_ends_the_officer_is_back_on_the_page_with_what_was_typed(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
) -> None:
    """A night shift outlives a 12-hour session. The page went to the login page and what
    was typed was lost; after logging in the officer landed on the board. Now the same
    officer is back on the call with the message and summary as typed; another officer
    logging in on that tab gets none of it."""
    a, b = pair
    add_user(b, "vera", "watch_officer", PASSWORD)
    call_id = picked_up_call(a, b)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    try:
        log_in(page, b, "boris")
        page.goto(b.url + f"/calls/{call_id}")
        page.fill("#text", "Convoy held at the bridge")
        page.fill("#summary", "Half done")
        _session_ends_then_log_in(page, b, "boris", r"/login\?ended=1&next=")
        expect(page).to_have_url(b.url + f"/calls/{call_id}")
        expect(page.locator("#text")).to_have_value("Convoy held at the bridge")
        expect(page.locator("#summary")).to_have_value("Half done")

        # Another officer on the same tab, after the session ends again: nothing of boris's.
        page.fill("#text", "Not for vera")
        _session_ends_then_log_in(page, b, "vera", r"/login\?ended=1&next=")
        expect(page).to_have_url(b.url + f"/calls/{call_id}")
        expect(page.locator("#text")).to_have_value("")
    finally:
        ctx.close()


def _delivered_sortie(a: StationProcess, b: StationProcess) -> str:
    """An air operation from a, delivered at b and waiting for its answer: its id."""
    start, end = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + h * 3600)) for h in (1, 2))
    volume = {
        "outline_circle": {"center": {"lat": 48.0, "lng": 9.0}, "radius": {"value": 500, "units": "M"}},
        "altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
        "altitude_upper": {"value": 3000, "reference": "W84", "units": "M"},
    }
    extent = {
        "volume": volume,
        "time_start": {"value": start, "format": "RFC3339"},
        "time_end": {"value": end, "format": "RFC3339"},
    }
    doc = {"category": "air_operation", "text": "Sortie over the valley", "extents": [extent]}
    with a.api() as api:
        notice = str(api.post("/notices", json={"peer": b.name, "notice": doc}).json()["id"])
    wait_for(lambda: b.cli_json("notice", "show", notice)["state"] == "delivered", what="delivered")
    return notice


def test_on_a_tablet_what_is_tapped_is_big_enough(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
) -> None:
    """By touch, the map's zoom buttons (30 px), the Reject… disclosure (22 px tall) and
    the "all times" box (13 px) were below the 44 px the platforms ask for."""
    a, b = pair
    notice = _delivered_sortie(a, b)
    ctx = browser.new_context(viewport={"width": 768, "height": 1024}, has_touch=True)
    page = ctx.new_page()
    try:
        log_in(page, b, "boris")
        page.goto(b.url + "/notices")
        expect(page.locator("[data-notice-map]")).to_have_attribute("data-loads", re.compile(r"[1-9]"))
        # Each measured in one go in the page: a live refresh may replace the row between a
        # look-up and its measure (an element measured after it was replaced had no box).
        heights = "els => els.map(e => [e.textContent.trim(), e.getBoundingClientRect().height])"
        row = f"tr[data-notice='{notice}']"
        tapped = (".leaflet-control-zoom-in", f"{row} details.notice-reject summary", "[data-notice-time]")
        for selector in tapped:
            [(_, height)] = page.locator(selector).evaluate_all(heights)
            assert height >= 44, (selector, height)
        buttons = page.locator(f"{row} button").evaluate_all(heights)
        links = page.locator("nav.links a").evaluate_all(heights)
        assert "Acknowledge" in [text for text, _ in buttons], buttons
        assert len(links) >= 5, links
        assert all(height >= 44 for _, height in buttons + links), buttons + links
        box = page.locator("[data-notice-any-time]").bounding_box()
        assert box is not None
        assert min(box["width"], box["height"]) >= 24  # a box beside its label, which taps it too
        page.locator("[data-notice-map]").screenshot(path=artifact_path("console-map-tablet.png"))
    finally:
        ctx.close()


def test_a_reason_typed_under_reject_is_back_after_the_session_ends(
    pair: tuple[StationProcess, StationProcess],
    browser: Browser,
) -> None:
    """Its field waits in a template until Reject… opens: the typed reason was kept but
    found no field to go back into."""
    a, b = pair
    notice = _delivered_sortie(a, b)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    try:
        log_in(page, b, "boris")
        page.goto(b.url + "/notices")
        row = page.locator(f"tr[data-notice='{notice}']")
        row.get_by_text("Reject…").click()
        row.get_by_label("Reason").fill("Crosses our exercise area")
        _session_ends_then_log_in(page, b, "boris", r"/login\?ended=1&next=%2Fnotices")
        expect(page).to_have_url(b.url + "/notices")
        expect(row.get_by_label("Reason")).to_have_value("Crosses our exercise area")
    finally:
        ctx.close()


def test_a_login_goes_back_only_to_a_page_of_the_station_itself(
    pair: tuple[StationProcess, StationProcess],
) -> None:
    """`next` names a page of this station, never another site."""
    _a, b = pair
    with httpx.Client(base_url=b.url) as web:
        r = web.get("/history?state=ringing", headers={"Accept": "text/html"})  # as a browser asks
        assert (r.status_code, r.headers["location"]) == (303, "/login?next=%2Fhistory%3Fstate%3Dringing")
        # A live region's refresh: back to the page htmx says it is on, if it is ours.
        region = {"Accept": "text/html", "HX-Request": "true", "HX-Current-URL": b.url + "/notices?x=1"}
        r = web.get("/calls/x/live", headers=region)
        assert r.headers["HX-Redirect"] == "/login?ended=1&next=%2Fnotices%3Fx%3D1"
        elsewhere = {**region, "HX-Current-URL": "https://evil.example/notices"}
        assert web.get("/calls/x/live", headers=elsewhere).headers["HX-Redirect"] == "/login?ended=1"
        bad_pages = ("//evil.example/", "https://evil.example/", "/\\evil.example", "/login", "history")
        not_pages = ("/api/v1/calls", "/events", "/history.csv", "/static/console.js")  # land on no page
        for bad in (*bad_pages, *not_pages):
            page = web.get("/login", params={"next": bad}).text
            assert 'name="next"' not in page, bad
            r = web.post("/login", data={"username": "boris", "password": PASSWORD, "next": bad})
            assert (r.status_code, r.headers["location"]) == (303, "/"), bad
            web.cookies.clear()
        r = web.post("/login", data={"username": "boris", "password": PASSWORD, "next": "/history?all=1"})
        assert (r.status_code, r.headers["location"]) == (303, "/history?all=1")


def test_the_console_says_when_what_it_shows_may_be_out_of_date(
    tmp_path: Path, own_pg_server: PostgresServer, browser: Browser
) -> None:
    """A board that stops updating looks calm: the officer must be told. The station's
    database goes away (PostgreSQL stopped), then the station itself; each time the
    console says so at the top of the page, and says nothing once it is back."""
    a = StationProcess.create(tmp_path, "stuttgart", own_pg_server.fresh_database()[1])
    b = StationProcess.create(tmp_path, "moscow", own_pg_server.fresh_database()[1])
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    cut = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        start_all(a, b)
        connect(a, b)
        add_user(b, "boris", "watch_officer", PASSWORD)
        log_in(page, b, "boris")
        banner = page.locator("[data-trouble]")
        expect(banner).to_be_hidden()
        cut.route("**/events", lambda route: route.abort())  # its network lost
        cut_page = cut.new_page()
        log_in(cut_page, b, "boris")
        cut_banner = cut_page.locator("[data-trouble]")
        expect(cut_banner).to_contain_text("Not connected to the station (since ")

        own_pg_server.pause()
        expect(banner).to_contain_text(
            re.compile(
                r"^The station cannot reach its database \(.+\) "
                r"\(since \d\d:\d\d:\d\dZ\); it keeps trying\."
            ),
            timeout=10_000,
        )
        expect(banner).to_contain_text("What this page shows may be out of date.")
        page.screenshot(path=artifact_path("console-database-unavailable.png"))
        # A page whose stream was lost, and is refused when it reconnects: the station
        # answers, so the page says what the station says, not that the station is out of
        # reach (a full run met this when the pause came as a page was opening its stream).
        cut.unroute("**/events")
        expect(cut_banner).to_contain_text(
            re.compile(r"^The station cannot reach its database \(.+\) \(since \d\d:\d\d:\d\dZ\); it keeps"),
            timeout=15_000,
        )
        # An officer who reloads meanwhile gets a page that says so, and reloads itself.
        reloaded = ctx.new_page()
        answered = reloaded.goto(b.url + "/")
        assert answered is not None
        assert answered.status == 503
        expect(reloaded.get_by_role("heading", name="The station cannot reach its database")).to_be_visible()
        expect(reloaded.get_by_text("nothing can ring here")).to_be_visible()
        reloaded.screenshot(path=artifact_path("console-database-unavailable-page.png"))
        own_pg_server.resume()
        expect(banner).to_be_hidden(timeout=10_000)
        expect(reloaded.get_by_role("region", name="Ringing calls")).to_be_visible(timeout=15_000)
        reloaded.close()
        call_id = a.cli_json("call", "moscow", "--subject", "After the outage")["id"]
        expect(page.locator(f"[data-call='{call_id}']")).to_be_visible(timeout=10_000)

        b.stop()
        expect(banner).to_contain_text("Not connected to the station (since ", timeout=10_000)
        b.start()
        expect(banner).to_be_hidden(timeout=15_000)
    finally:
        ctx.close()
        cut.close()
        stop_all(a, b)


def _a_change_just_after_a_refresh_is_heard(page: Page) -> None:
    """htmx puts a refreshed region in the page, then waits its settle delay (20 ms by
    default) before it makes the new element listen: a change announced in between
    reached only the element just replaced, and the view kept the state before it (the
    intermittent '✓ receipted' failure). The console settles at once. Here a change is
    announced on the page's event stream the moment after a refresh is swapped in; the
    region in the page must fetch again."""
    outcome = page.evaluate(
        """() => new Promise((resolve) => {
          const source = document.body["htmx-internal-data"].sseEventSource;
          const change = () => new MessageEvent("change", {data: '{"changed": ["calls"]}'});
          let armed = true;
          document.addEventListener("htmx:afterSwap", (ev) => {
            if (!armed || ev.target.id !== "call") return;
            armed = false;
            setTimeout(() => {
              document.addEventListener("htmx:beforeRequest", (req) => {
                if (req.detail.elt.id === "call") resolve("fetched");
              });
              source.dispatchEvent(change());
              setTimeout(() => resolve("not fetched"), 2000);
            }, 0);
          });
          source.dispatchEvent(change());
        })"""
    )
    assert outcome == "fetched"


def _a_change_during_a_refresh_is_not_lost(anna: Page, boris: Page) -> None:
    """Anna's call view is refreshing (its response held back here) when a second message
    arrives. htmx queues that change on the element the held response then replaces; the
    console must fetch once more, or the second message would not show until some later
    change."""
    held = HeldResponse(anna, "**/calls/*/live")  # the state as of the first change
    boris.fill("textarea[name=text]", "First of two.")
    boris.get_by_role("button", name="Send").click()
    held.wait("anna's view refreshing")
    boris.fill("textarea[name=text]", "Second of two.")
    boris.get_by_role("button", name="Send").click()
    # Receipted at boris: stored at anna's station, its change announced to anna's page.
    expect(boris.get_by_text("✓ receipted")).to_have_count(4, timeout=10_000)
    held.release()
    expect(anna.locator(".thread").get_by_text("First of two.")).to_be_visible(timeout=5000)
    expect(anna.locator(".thread").get_by_text("Second of two.")).to_be_visible(timeout=5000)
    # And once shown, nothing keeps re-fetching: the extra fetch happens once.
    fetches: list[str] = []
    anna.on("request", lambda request: fetches.append(request.url) if request.url.endswith("/live") else None)
    anna.wait_for_timeout(1500)
    assert fetches == []


def test_a_call_that_cannot_get_through_is_said_on_its_page_and_the_board(
    tmp_path: Path, browser: Browser
) -> None:
    """The officer who placed a call while the peer's station is down reads, on the call's
    page, that it has not got through; the board marks the line and its tab's title says
    LINE DOWN until someone acknowledges the alert; the call rings once the peer is back."""
    with running_pair(
        tmp_path,
        officers={"stuttgart": "anna"},
        password=PASSWORD,
        stuttgart_env={"OPENLINE_LINE_DOWN_AFTER_S": "5"},
    ) as (a, b):
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        anna = ctx.new_page()
        log_in(anna, a, "anna")
        b.stop()
        anna.select_option("select[name=peer]", "moscow")
        anna.fill("input[name=subject]", "Convoy of 12 trucks at checkpoint 4")
        anna.select_option("select[name=priority]", "flash")
        anna.get_by_role("button", name="Call", exact=True).click()
        expect(anna).to_have_url(re.compile(r"/calls/[0-9a-f-]{36}$"))
        call_id = anna.url.rsplit("/", 1)[1]
        # Said once an attempt has failed (at once here: nothing listens at moscow's port).
        warning = anna.locator("[data-undelivered]")
        expect(warning).to_contain_text("Not delivered to moscow yet", timeout=20_000)
        expect(warning).to_contain_text("use your fallback procedure to reach moscow")
        anna.screenshot(path=artifact_path("console-call-not-delivered.png"), full_page=True)

        anna.goto(a.url + "/")  # the alert is raised within 5 s + the 5 s audit: live
        expect(anna).to_have_title(re.compile(r"^LINE DOWN · Watch board"), timeout=20_000)
        expect(anna.locator("[data-line-down]")).to_contain_text("DOWN: not getting through")
        b.start()
        wait_for(
            lambda: any(c["id"] == call_id and c["state"] == "ringing" for c in b.get_json("/calls")),
            timeout=60,
            what="the call to ring at moscow",
        )
        # Seen and acknowledged: the mark and the title go, live.
        alerts = anna.get_by_role("region", name="Alerts")
        alerts.get_by_role("button", name="Acknowledge").first.click()
        expect(anna.locator("[data-line-down]")).to_have_count(0, timeout=5000)
        expect(anna).to_have_title(re.compile(r"^Watch board"), timeout=5000)
        ctx.close()
