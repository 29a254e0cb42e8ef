"""The console's notices page: the map and the history for every role, the auditor's
view without text or buttons, an officer's acknowledgement reaching the sender, a notice
pasted into the form; and, in a real Chromium, the offline Leaflet map drawn with the
country outlines, the volumes and a conflict, without a request leaving the machine."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect

from openline.core.clock import rfc3339
from openline.services.accounts import Role
from tests.browser import artifact_path
from tests.harness import StationProcess, connect, wait_for
from tests.harness import add_user as add_cli_user
from tests.inproc import Node
from tests.notice_docs import square
from tests.test_console import add_user, csrf_of, log_in
from tests.test_console import browser as client

HOUR = 3_600_000_000
TEXT = "Strike package over the valley"


def _notice(node: Node, lat: float = 48.0, lng: float = 9.0) -> dict[str, Any]:
    now = node.station.clock.now()
    start, end = rfc3339(now + HOUR), rfc3339(now + 3 * HOUR)
    assert start is not None
    assert end is not None
    return square(lat, lng, start, end, text=TEXT)


def _sent_to_moscow(a: Node) -> str:
    r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": _notice(a)})
    assert r.status_code == 201, r.text
    a.drain()
    return str(r.json()["id"])


def _map_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="notice-data">(.*?)</script>', html, re.S)
    assert match, "no map data in the page"
    return dict(json.loads(match.group(1)))


@pytest.mark.parametrize("role", list(Role))
def test_notices_page_shows_the_map_and_the_history_to_every_role(
    nodes: tuple[Node, Node], role: Role
) -> None:
    a, b = nodes
    notice_id = _sent_to_moscow(a)
    add_user(b, "someone", role)
    c = client(b)
    log_in(c, "someone")
    r = c.get("/notices")
    assert r.status_code == 200, r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'href="/notices"' in r.text  # the nav
    assert "data-notice-map" in r.text
    assert 'src="/static/vendor/leaflet.js"' in r.text
    assert 'src="/static/notices.js"' in r.text
    assert "<style" not in r.text
    assert f'data-notice="{notice_id}"' in r.text
    data = _map_data(r.text)
    (shown,) = data["notices"]
    assert shown["id"] == notice_id
    assert shown["state"] == "delivered"
    assert shown["extents"][0]["volume"]["outline_polygon"]["vertices"][0] == {"lat": 47.99, "lng": 8.99}
    auditor = role is Role.AUDITOR
    assert (TEXT in r.text) == (not auditor)
    assert shown["content_withheld"] is auditor
    assert ("text" in shown) is not auditor
    assert (f'action="/notices/{notice_id}/ack"' in r.text) is not auditor
    assert ('action="/notices"' in r.text) is not auditor  # the paste form


def test_notices_page_needs_a_login(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    c = client(a)
    r = c.get("/notices")
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    assert c.post("/notices/x/ack", data={"csrf": "x"}).status_code == 303


def test_an_auditor_cannot_acknowledge_a_notice(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = _sent_to_moscow(a)
    add_user(b, "inspector", Role.AUDITOR)
    c = client(b)
    log_in(c, "inspector")
    token = csrf_of(c.get("/notices").text)
    before = b.snapshot()
    r = c.post(f"/notices/{notice_id}/ack", data={"csrf": token})
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    r = c.post("/notices", data={"csrf": token, "peer": "stuttgart", "notice": json.dumps(_notice(b))})
    assert r.status_code == 403
    assert b.snapshot() == before


def test_an_acknowledgement_needs_the_csrf_token(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = _sent_to_moscow(a)
    add_user(b, "duty", Role.WATCH_OFFICER)
    c = client(b)
    log_in(c, "duty")
    r = c.post(f"/notices/{notice_id}/ack", data={"csrf": "forged"})
    assert r.status_code == 403
    assert b.api.get(f"/api/v1/notices/{notice_id}").json()["state"] == "delivered"


def test_an_officer_acknowledges_a_notice_and_the_sender_sees_it(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = _sent_to_moscow(a)
    add_user(b, "duty", Role.WATCH_OFFICER)
    c = client(b)
    log_in(c, "duty")
    token = csrf_of(c.get("/notices").text)
    r = c.post(f"/notices/{notice_id}/ack", data={"csrf": token})
    assert r.status_code == 303
    assert r.headers["location"] == "/notices"
    page = c.get("/notices").text
    assert f'action="/notices/{notice_id}/ack"' not in page  # acknowledged: no button any more
    assert "moscow:duty" in page
    assert b.api.get(f"/api/v1/notices/{notice_id}").json()["state"] == "acknowledged"
    b.drain()
    seen = a.api.get(f"/api/v1/notices/{notice_id}").json()
    assert seen["state"] == "acknowledged"
    assert seen["acknowledged_by"] == "moscow:duty"
    # A second acknowledgement is refused with the service's message, on the page.
    r = c.post(f"/notices/{notice_id}/ack", data={"csrf": token})
    assert r.status_code == 409
    assert notice_id in r.text


def test_our_own_notice_has_no_acknowledge_button(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    notice_id = _sent_to_moscow(a)
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = client(a)
    log_in(c, "duty")
    page = c.get("/notices")
    assert f'data-notice="{notice_id}"' in page.text
    assert f'action="/notices/{notice_id}/ack"' not in page.text
    r = c.post(f"/notices/{notice_id}/ack", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 409  # only the receiver acknowledges


def test_a_pasted_notice_is_sent_and_a_bad_one_is_refused_on_the_page(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = client(a)
    log_in(c, "duty")
    token = csrf_of(c.get("/notices").text)
    r = c.post("/notices", data={"csrf": token, "peer": "moscow", "notice": "{not json"})
    assert r.status_code == 422
    assert "notice: not JSON" in r.text
    assert "{not json" in r.text  # kept in the textarea
    bad = _notice(a)
    bad["extents"][0]["volume"]["altitude_upper"]["units"] = "KM"
    r = c.post("/notices", data={"csrf": token, "peer": "moscow", "notice": json.dumps(bad)})
    assert r.status_code == 422
    assert "expected &#39;M&#39; or &#39;FT&#39;, got &#39;KM&#39;" in r.text
    assert a.api.get("/api/v1/notices").json() == []
    r = c.post("/notices", data={"csrf": token, "peer": "moscow", "notice": json.dumps(_notice(a))})
    assert r.status_code == 303
    (sent,) = a.api.get("/api/v1/notices").json()
    assert sent["created_by"] == "duty"
    a.drain()
    assert b.api.get(f"/api/v1/notices/{sent['id']}").json()["state"] == "delivered"


# In a real browser -------------------------------------------------------------------

PASSWORD = "a long passphrase here"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[StationProcess, StationProcess]]:
    a = StationProcess.create(tmp_path, "stuttgart")
    b = StationProcess.create(tmp_path, "moscow")
    a.start()
    b.start()
    try:
        connect(a, b)
        add_cli_user(b, "boris", "watch_officer", PASSWORD)
        yield a, b
    finally:
        for s in (a, b):
            if s.proc is not None:
                s.stop()


def _send(station: StationProcess, peer: str, doc: dict[str, Any]) -> str:
    with station.api() as api:
        r = api.post("/notices", json={"peer": peer, "notice": doc})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def _log_in(page: Page, station: StationProcess) -> None:
    page.goto(station.url + "/login")
    page.fill("input[name=username]", "boris")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(station.url + "/")


@pytest.mark.e2e
def test_the_notices_map_draws_offline_in_a_real_browser(
    pair: tuple[StationProcess, StationProcess], browser: Browser
) -> None:
    a, b = pair
    now = datetime.now(UTC)

    def at(hours: float) -> str:
        return (now + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")

    # stuttgart's activity and moscow's own overlapping one: a conflict on both floors.
    theirs = _send(a, "moscow", square(48.0, 9.0, at(1), at(3), text=TEXT))
    ours = _send(b, "stuttgart", square(48.005, 9.005, at(2), at(4), text=TEXT))
    _send(b, "stuttgart", square(48.1, 9.2, at(-1), at(30), text=TEXT, category="protected_site"))
    with b.api() as api:
        wait_for(lambda: api.get(f"/notices/{theirs}").json()["conflicts"], what="the conflict on moscow")
        assert api.get(f"/notices/{ours}").json()["conflicts"]

    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    page = ctx.new_page()
    requests: list[str] = []
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The console has no favicon yet; the browser asks for one on every page.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text} at {message.location.get('url')}")

    def on_request(request: Request) -> None:
        requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("request", on_request)
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    try:
        _log_in(page, b)
        page.get_by_role("link", name="Notices").click()
        expect(page).to_have_url(b.url + "/notices")
        the_map = page.locator("[data-notice-map]")
        expect(the_map).to_have_class(re.compile(r"\bleaflet-container\b"))
        expect(page.locator("path.country").first).to_be_attached(timeout=5000)
        assert page.locator("path.country").count() > 100  # the Natural Earth outlines
        # Now: only the protected site is active; at +2.5 h the two conflicting squares too.
        expect(the_map).to_have_attribute("data-visible", "1")
        expect(page.locator("path.leaflet-interactive.notice-protected")).to_have_count(1)
        page.locator("[data-notice-time]").fill(str(150))
        expect(the_map).to_have_attribute("data-visible", "3")
        expect(page.locator("path.leaflet-interactive.notice-conflict")).to_have_count(2)
        page.locator("[data-notice-time]").fill(str(5 * 60))  # +5 h: both have ended
        expect(the_map).to_have_attribute("data-visible", "1")
        page.locator("[data-notice-any-time]").check()
        expect(the_map).to_have_attribute("data-visible", "3")
        expect(page.locator("[data-notice-time-label]")).to_have_text("all times")
        page.locator("[data-notice-any-time]").uncheck()
        page.locator("[data-notice-time]").fill(str(150))  # back to the conflict for the picture
        expect(page.locator("path.notice-conflict")).to_have_count(2)
        page.screenshot(path=artifact_path("console-notices-map.png"), full_page=True)

        row = page.locator(f"tr[data-notice='{theirs}']")
        expect(row).to_contain_text(TEXT)
        row.get_by_role("button", name="Acknowledge").click()
        expect(page).to_have_url(b.url + "/notices")
        expect(page.locator(f"tr[data-notice='{theirs}'] [data-notice-state]")).to_have_text("acknowledged")
        expect(page.locator(f"tr[data-notice='{theirs}']")).to_contain_text("moscow:boris")
        with a.api() as api:
            acked = wait_for(
                lambda: api.get(f"/notices/{theirs}").json()["acknowledged_by"], what="the ack on stuttgart"
            )
            assert acked == "moscow:boris"
    finally:
        ctx.close()
    outside = [url for url in requests if not url.startswith(b.url + "/")]
    assert outside == [], outside
    assert any(url.endswith("/static/vendor/countries-110m.json") for url in requests)
    assert problems == [], problems
    assert artifact_path("console-notices-map.png").stat().st_size > 10_000
