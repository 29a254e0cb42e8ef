"""The console over HTTP: login with growing delays after failures, sessions in strict
cookies, CSRF refusal, the one-time password, TOTP, what each role sees, live events."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from openline.console import routes
from openline.console.live import Hub
from openline.core.clock import FakeClock, rfc3339
from openline.errors import DatabaseDamaged, DatabaseUnavailable
from openline.services import accounts, alerts, line_health, sessions
from openline.services.accounts import Role
from openline.services.station import Tx
from tests.inproc import Node, make_node, place_and_ring, show
from tests.notice_docs import cli
from tests.test_access import client_for

PASSWORD = "correct horse battery staple"


def browser(node: Node) -> TestClient:
    # https, so the client's cookie jar keeps and sends the Secure cookie
    return TestClient(node.app, base_url="https://testserver", follow_redirects=False)


def add_user(node: Node, name: str, role: Role, *, one_time: bool = False) -> None:
    with node.station.tx() as tx:
        accounts.create_user(tx.conn, tx.now, name, role, PASSWORD, must_change_password=one_time)


def log_in(client: TestClient, name: str, password: str = PASSWORD, totp: str = "") -> object:
    return client.post("/login", data={"username": name, "password": password, "totp": totp})


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def test_pages_need_a_login(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    c = browser(a)
    for path in ("/", "/board", "/password", "/events"):
        r = c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"] in ("/login", "/password"), path
    r = c.get("/board", headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"] == "/login?ended=1"  # a live region: its session has ended
    page = c.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text
    assert 'name="password"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_login_sets_a_strict_session_cookie_and_shows_the_board(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    call_id = place_and_ring(a, b, "Convoy at checkpoint 4", "flash")
    c = browser(b)
    r = log_in(c, "duty")
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower(), attribute
    board = c.get("/")
    assert board.status_code == 200
    assert "Convoy at checkpoint 4" in board.text
    assert f'action="/calls/{call_id}/pickup"' in board.text
    assert re.search(r"<button[^>]*>Pick up call from stuttgart</button>", board.text)
    assert "(1) RINGING" in board.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port of the same host
        {"Origin": "http://localhost:18502"},  # a browser that does not send Sec-Fetch-Site
    ],
)
def test_a_login_posted_from_another_site_is_refused(
    nodes: tuple[Node, Node], headers: dict[str, str]
) -> None:
    """Login CSRF: a page elsewhere posted an account's name and password to /login and the
    officer's console became that account's (an auditor's: no Pick up buttons)."""
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    add_user(a, "aud", Role.AUDITOR)
    c = browser(a)
    assert log_in(c, "duty").status_code == 303
    duty = dict(c.cookies)
    before = a.snapshot()
    r = c.post("/login", data={"username": "aud", "password": PASSWORD, "totp": ""}, headers=headers)
    assert r.status_code == 403
    assert "A log-in sent from another site was refused" in html.unescape(r.text)
    assert "set-cookie" not in r.headers
    assert a.snapshot() == before  # no session made, no failed login counted
    assert dict(c.cookies) == duty  # still duty's console
    own = {"Sec-Fetch-Site": "same-origin", "Origin": "https://testserver"}
    assert (
        c.post("/login", data={"username": "aud", "password": PASSWORD, "totp": ""}, headers=own).status_code
        == 303
    )


def test_failed_logins_wait_longer_and_longer(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    waits = []
    for _ in range(4):
        r = log_in(c, "duty", "wrong password!!")
        assert r.status_code == 401
        assert "wrong password" in r.text
        refused = log_in(c, "duty", PASSWORD)  # even the right password must wait
        assert refused.status_code == 429
        waits.append(int(refused.headers["retry-after"]))
        clock.advance(waits[-1])
    assert waits == [1, 2, 4, 8]
    assert log_in(c, "duty").status_code == 303  # the wait is over and it was right
    r = log_in(c, "duty", "wrong password!!")  # a success cleared the user's count ...
    assert r.status_code == 401
    assert log_in(c, "duty").status_code == 429  # ... so the next wait starts again small
    clock.advance(1)
    assert log_in(c, "duty").status_code == 303
    trail = [e["action"] for e in a.api.get("/api/v1/audit").json()]
    assert trail.count("login.failed") == 5
    assert trail.count("login.throttled") == 5  # each failure locks the name a while


def test_attempts_a_lock_refuses_are_audited_once_as_the_lock(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """Six rapid wrong attempts: one was checked and failed, five were refused unchecked.
    The trail says the name was locked and until when, not each refusal (a flood would
    fill it)."""
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    statuses = [log_in(c, "duty", "wrong password!!").status_code for _ in range(6)]
    assert statuses == [401] + [429] * 5
    trail = [(e["actor"], e["action"], e["target"]) for e in a.api.get("/api/v1/audit").json()]
    logins = [e for e in trail if e[1].startswith("login")]
    until = rfc3339(clock.now() + 1_000_000)
    assert logins == [
        ("ip:testclient", "login.throttled", f"user:duty until {until}"),
        ("ip:testclient", "login.failed", "duty"),
    ]


def test_an_administrator_lets_a_locked_out_officer_in_at_once(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may fail logins with someone else's name: after nine, the officer waits
    minutes while a call rings. `openline user unlock` lifts the name's lock; only an
    administrator may, an unknown name is not_found, and nothing else changes."""
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    guesser = TestClient(a.app, base_url="https://testserver", follow_redirects=False, client=("10.9.9.9", 1))
    for _ in range(9):
        assert log_in(guesser, "duty", "wrong password!!").status_code == 401
        clock.advance(int(log_in(guesser, "duty").headers["retry-after"]))
    assert log_in(guesser, "duty", "wrong password!!").status_code == 401
    c = browser(a)  # the officer, at the watch floor's terminal
    locked = log_in(c, "duty")
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == str(sessions.MAX_DELAY_S)
    until = rfc3339(clock.now() + sessions.MAX_DELAY_S * 1_000_000)

    auditor = client_for(a, "aud", Role.AUDITOR)
    before = a.snapshot()
    for who, name, status in ((auditor, "duty", 403), (a.api, "nobody", 404)):
        assert who.post(f"/api/v1/users/{name}/unlock").status_code == status
    assert a.snapshot() == before

    said = cli(a, monkeypatch, "user", "unlock", "duty")
    assert said.exit_code == 0, said.output
    assert said.stdout == f"duty was locked out until {until}; may log in again now.\n"
    assert log_in(c, "duty").status_code == 303  # at once
    assert log_in(guesser, "ghost", "wrong password!!").status_code == 429  # its address still waits
    trail = [(e["actor"], e["action"], e["target"]) for e in a.api.get("/api/v1/audit").json()]
    assert ("admin", "user.unlock", "duty") in trail
    again = a.api.post("/api/v1/users/duty/unlock")
    assert again.json() == {"name": "duty", "locked_until": None}  # nothing to lift: not audited
    assert [e for e in trail if e[1] == "user.unlock"] == [("admin", "user.unlock", "duty")]


def test_many_names_failing_from_one_address_are_slowed_down_too(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    for i in range(sessions.IP_FREE_FAILURES):
        assert log_in(c, f"guess{i}", "wrong password!!").status_code == 401
    assert log_in(c, "guess-last", "wrong password!!").status_code == 401  # the address's first delay
    r = log_in(c, "duty")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"


def test_an_addresss_count_starts_again_after_a_quiet_spell(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """A shared watch-floor terminal: typos hours apart, under several names, added up for
    good, until one slip locked everyone out for minutes, while a call rang."""
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    for i in range(3 * sessions.IP_FREE_FAILURES):  # a slip every half hour, all night
        clock.advance(1800)
        assert log_in(c, f"typo{i}", "wrong password!!").status_code == 401
    assert log_in(c, "duty").status_code == 303  # at once, after one more slip
    # Failures in a row still add up: the address's doubling starts after its free ones.
    clock.advance(sessions.IP_QUIET_S)
    for i in range(sessions.IP_FREE_FAILURES + 1):
        assert log_in(c, f"guess{i}", "wrong password!!").status_code == 401
    assert log_in(c, "duty").status_code == 429


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    call_id = place_and_ring(a, b)
    c = browser(b)
    log_in(c, "duty")
    before = b.snapshot()
    for data in ({"via": "another site"}, {"csrf": "forged"}):  # posted as a browser posts a form
        r = c.post(f"/calls/{call_id}/pickup", data=data)
        assert r.status_code == 403
        # A page that says why, and the way back to the call (not the API's JSON).
        assert 'data-refused="csrf"' in r.text
        assert "reload the page and try again" in r.text
        assert f'href="/calls/{call_id}"' in r.text
    assert b.snapshot() == before
    token = csrf_of(c.get("/").text)
    r = c.post(f"/calls/{call_id}/pickup", data={"csrf": token})
    assert r.status_code == 303
    assert r.headers["location"] == f"/calls/{call_id}"
    page = c.get(f"/calls/{call_id}")
    assert "picked_up" in page.text
    assert "moscow:duty" in page.text


def test_a_one_time_password_must_be_changed_first(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, _ = nodes
    add_user(a, "fresh", Role.WATCH_OFFICER, one_time=True)
    c = browser(a)
    r = log_in(c, "fresh")
    assert r.headers["location"] == "/password"
    assert c.get("/").headers["location"] == "/password"
    page = c.get("/password")
    # Nothing live until the password is chosen: the event stream and the other pages
    # would only send the browser back here ("Not connected to the station").
    assert "sse-connect" not in page.text
    assert 'href="/history"' not in page.text
    assert "data-trouble" not in page.text
    token = csrf_of(page.text)
    bad = c.post(
        "/password",
        data={
            "csrf": token,
            "current_password": PASSWORD,
            "new_password": "x" * 12,
            "confirm_password": "y" * 12,
        },
    )
    assert bad.status_code == 422
    assert "differ" in bad.text
    new = "a brand new passphrase"
    r = c.post(
        "/password",
        data={"csrf": token, "current_password": PASSWORD, "new_password": new, "confirm_password": new},
    )
    assert r.status_code == 303
    board = c.get("/")
    assert board.status_code == 200
    assert 'sse-connect="/events"' in board.text
    own = c.get("/password")  # chosen now: an officer changing it later stays connected
    assert 'sse-connect="/events"' in own.text
    other = browser(a)
    assert log_in(other, "fresh", PASSWORD).status_code == 401
    clock.advance(1)  # the wait after one failure
    assert log_in(other, "fresh", new).status_code == 303
    # The user's own change, not an administrator's reset (which a leak would call for).
    trail = [(e["actor"], e["action"], e["target"]) for e in a.api.get("/api/v1/audit").json()]
    assert ("fresh", "user.password_changed", "fresh") in trail
    assert not [e for e in trail if e[1] == "user.reset_password"]


def test_totp_is_required_once_enrolled(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    uri = sessions.enroll_totp(a.station, "admin", "duty")
    assert uri.startswith("otpauth://totp/")
    secret = pyotp.parse_uri(uri).secret
    c = browser(a)
    assert log_in(c, "duty").status_code == 401  # the password alone is not enough
    clock.advance(1)
    assert log_in(c, "duty", totp="000000").status_code == 401
    clock.advance(2)
    code = pyotp.TOTP(secret).at(clock.now() // 1_000_000)
    assert log_in(c, "duty", "wrong password!!", totp=code).status_code == 401  # nor the code alone
    clock.advance(4)
    code = pyotp.TOTP(secret).at(clock.now() // 1_000_000)
    assert log_in(c, "duty", totp=code).status_code == 303
    again = browser(a)  # the same code a second time, even within its 30 s: refused
    assert log_in(again, "duty", totp=code).status_code == 401
    clock.advance(31)
    code = pyotp.TOTP(secret).at(clock.now() // 1_000_000)
    assert log_in(again, "duty", totp=code).status_code == 303


def test_a_new_second_factor_s_code_works_in_the_step_the_old_one_was_last_used(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """A phone lost mid-shift: the officer logs in with the new secret's code at once, and
    the first try must not fail (and lock the name) for the old secret's replay guard."""
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    old = pyotp.parse_uri(sessions.enroll_totp(a.station, "admin", "duty")).secret
    code = pyotp.TOTP(old).at(clock.now() // 1_000_000 + 30)  # the next step's: drift
    assert log_in(browser(a), "duty", totp=code).status_code == 303
    new = pyotp.parse_uri(sessions.enroll_totp(a.station, "admin", "duty")).secret
    code = pyotp.TOTP(new).at(clock.now() // 1_000_000)
    assert log_in(browser(a), "duty", totp=code).status_code == 303
    trail = [e["action"] for e in a.api.get("/api/v1/audit").json()]
    assert "login.failed" not in trail


def test_an_auditor_sees_the_board_without_content_or_pick_up(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    add_user(b, "inspector", Role.AUDITOR)
    call_id = place_and_ring(a, b, "Secret subject")
    c = browser(b)
    log_in(c, "inspector")
    board = c.get("/")
    assert board.status_code == 200
    assert "Secret subject" not in board.text
    assert "(withheld)" in board.text
    assert "Pick up" not in board.text
    token = csrf_of(board.text)  # the logout form's token
    before = b.snapshot()
    r = c.post(f"/calls/{call_id}/pickup", data={"csrf": token})
    assert r.status_code == 403
    assert 'data-refused="forbidden"' in r.text
    assert b.snapshot() == before
    assert "Secret subject" not in c.get(f"/calls/{call_id}").text


def test_a_disabled_user_is_logged_out_at_once(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    assert c.get("/").status_code == 200
    assert a.api.post("/api/v1/users/duty/disable").status_code == 200
    assert c.get("/").headers["location"] == "/login"


def test_a_user_enabled_again_gets_none_of_their_old_sessions_back(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    token = csrf_of(c.get("/").text)
    assert a.api.post("/api/v1/users/duty/disable").status_code == 200
    assert a.api.post("/api/v1/users/duty/enable").status_code == 200
    assert c.get("/").headers["location"] == "/login"
    before = a.snapshot()
    r = c.post("/handovers", data={"csrf": token, "note": "Written with a session that ended."})
    assert r.headers["location"] == "/login"
    assert a.snapshot() == before
    assert log_in(browser(a), "duty").status_code == 303  # the user may log in afresh


def test_a_password_reset_by_an_administrator_ends_every_session_of_the_user(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, _ = nodes
    add_user(a, "chief", Role.ADMINISTRATOR)
    add_user(a, "duty", Role.WATCH_OFFICER)
    first, second = browser(a), browser(a)
    for c in (first, second):
        log_in(c, "duty")
        assert c.get("/").status_code == 200
    new = "a new passphrase after the leak"  # as `user reset-password --password-stdin`
    r = a.api.post("/api/v1/users/duty/reset-password", json={"password": new})
    assert r.status_code == 200
    for c in (first, second):
        assert c.get("/").headers["location"] == "/login"
    assert log_in(browser(a), "duty").status_code == 401  # the old password is gone too
    clock.advance(1)  # the wait after one failure
    assert log_in(browser(a), "duty", new).status_code == 303
    add_user(a, "night", Role.WATCH_OFFICER)
    officer = browser(a)
    log_in(officer, "night")
    admin = browser(a)
    log_in(admin, "chief")
    token = csrf_of(admin.get("/admin").text)
    r = admin.post("/admin/users/night/reset-password", data={"csrf": token})
    assert r.status_code == 200
    assert "New one-time password for night" in r.text
    assert officer.get("/").headers["location"] == "/login"
    assert admin.get("/admin").status_code == 200  # the administrator's own session goes on


def test_logout_ends_the_session(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    cookie = c.cookies.get("openline_session")
    token = csrf_of(c.get("/").text)
    assert c.post("/logout", data={"csrf": token}).headers["location"] == "/login"
    stale = browser(a)
    stale.cookies.set("openline_session", cookie or "", domain="testserver")
    assert stale.get("/").status_code == 303


def test_the_hub_announces_commits_that_touch_calls_to_every_listener() -> None:
    hub = Hub()
    got: list[list[str]] = [[], []]

    async def main() -> None:
        stop = False
        streams = [hub.stream(lambda: stop) for _ in range(2)]
        for s in streams:
            assert await anext(s) == "retry: 1000\n\n"
            assert await anext(s) == 'event: change\ndata: {"changed": ["connected"]}\n\n'
        waits = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0)
        tx = Tx(conn=None, now=0)  # type: ignore[arg-type]
        hub.on_commit(tx)  # touched nothing: no event
        tx.touched.add("calls")
        threading.Thread(target=hub.on_commit, args=(tx,)).start()  # commits happen on worker threads
        for i, w in enumerate(await asyncio.gather(*waits)):
            got[i].append(w)
        stop = True
        for s in streams:
            await s.aclose()

    asyncio.run(main())
    for lines in got:
        assert lines == ['event: change\ndata: {"changed": ["calls"], "n": 1}\n\n']
    assert hub.listeners == 0


def test_a_stream_that_starts_while_the_database_is_down_says_so() -> None:
    """A full disk: the station reads, so a new page's refreshes succeed, and only the
    stream can tell it that nothing can be stored (console.js shows it at the top)."""
    hub = Hub()

    async def first_events() -> list[str]:
        s = hub.stream(lambda: False)
        try:
            return [await anext(s) for _ in range(3 if hub.database_down else 2)]
        finally:
            await s.aclose()

    connected = 'event: change\ndata: {"changed": ["connected"]}\n\n'
    assert asyncio.run(first_events()) == ["retry: 1000\n\n", connected]
    hub.on_reachability(False)
    assert asyncio.run(first_events()) == [
        "retry: 1000\n\n",
        connected,
        'event: change\ndata: {"changed": ["database_unavailable"]}\n\n',
    ]
    hub.on_reachability(True)
    assert asyncio.run(first_events()) == ["retry: 1000\n\n", connected]


@pytest.mark.parametrize("path", ["/static/console.js", "/static/console.css", "/static/vendor/htmx.min.js"])
def test_assets_are_served_from_the_package(nodes: tuple[Node, Node], path: str) -> None:
    a, _ = nodes
    r = browser(a).get(path)
    assert r.status_code == 200
    assert len(r.content) > 1000


def test_a_handover_in_the_console_lists_the_open_call_and_is_acknowledged(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    add_user(b, "night", Role.WATCH_OFFICER)
    call_id = place_and_ring(a, b, "Convoy still waiting")
    day = browser(b)
    log_in(day, "duty")
    r = day.post(
        "/handovers", data={"csrf": csrf_of(day.get("/").text), "note": "Call stuttgart back first."}
    )
    assert r.status_code == 303
    board = day.get("/").text
    assert "Handover from duty" in board
    assert "Acknowledge handover" not in board  # not by its writer
    nxt = browser(b)
    log_in(nxt, "night")
    board = nxt.get("/").text
    assert "Call stuttgart back first." in board
    assert f'href="/calls/{call_id}"' in board
    handover_id = b.api.get("/api/v1/handovers").json()[0]["id"]
    r = nxt.post(f"/handovers/{handover_id}/ack", data={"csrf": csrf_of(board)})
    assert r.status_code == 303
    assert "Handover from duty" not in nxt.get("/").text
    assert b.api.get("/api/v1/handovers").json()[0]["acknowledged_by"] == "night"


def test_history_filters_and_exports_csv_safely(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    add_user(b, "inspector", Role.AUDITOR)
    flash = place_and_ring(a, b, '=HYPERLINK("http://evil")', "flash")
    routine = place_and_ring(a, b, "Routine check", "routine")
    c = browser(b)
    log_in(c, "duty")
    page = c.get("/history", params={"priority": "flash"})
    assert page.status_code == 200
    assert flash in page.text
    assert routine not in page.text
    assert c.get("/history", params={"since": "yesterday"}).status_code == 422
    typo = c.get("/history", params={"peer": "stuttgrat"})  # not an empty history
    assert typo.status_code == 404
    assert "no line to a station named &#39;stuttgrat&#39;; the lines are to: stuttgart" in typo.text
    export = c.get("/history.csv", params={"priority": "flash"})
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    header, row = export.text.strip().split("\r\n")
    assert header.startswith("id,peer,direction,priority,state,subject")
    assert row.startswith(f"{flash},stuttgart,in,flash,ringing,")
    assert "\"'=HYPERLINK" in row  # a formula is exported as text
    auditor = browser(b)
    log_in(auditor, "inspector")
    withheld = auditor.get("/history.csv").text
    assert len(withheld.strip().split("\r\n")) == 3  # the header and both calls
    assert "HYPERLINK" not in withheld
    assert "Routine check" not in withheld


def test_history_counts_every_call_and_says_what_it_does_not_list(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page lists the newest HISTORY_LIMIT calls (500; here 2) and the CSV the newest
    CSV_LIMIT (100,000; here 1), and counts every call the filters select."""
    from openline.console import routes

    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    placed = [place_and_ring(a, b, f"Call {i}") for i in range(3)]
    monkeypatch.setattr(routes, "HISTORY_LIMIT", 2)
    monkeypatch.setattr(routes, "CSV_LIMIT", 1)
    c = browser(b)
    log_in(c, "duty")
    page = c.get("/history").text
    assert (
        'data-history-total="3">3 calls</span>; the newest 2 are listed here, and the newest 1 in the CSV'
        in page
    )
    assert placed[0] not in page
    assert len(c.get("/history.csv").text.strip().split("\r\n")) == 2  # the header and one call
    flash = c.get("/history", params={"priority": "flash"}).text
    assert 'data-history-total="0">0 calls</span></p>' in flash
    monkeypatch.setattr(routes, "HISTORY_LIMIT", 500)
    assert 'data-history-total="3">3 calls</span></p>' in c.get("/history").text


def test_the_roster_page_shows_the_week(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    _, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    r = b.api.post(
        "/api/v1/shifts",
        json={
            "user": "duty",
            "start_local": "2020-01-01T06:00",
            "tz": "UTC",
            "duration_s": 8 * 3600,
            "rrule": "FREQ=DAILY",
        },
    )
    assert r.status_code == 201, r.text
    c = browser(b)
    log_in(c, "duty")
    page = c.get("/roster")
    assert page.status_code == 200
    assert page.text.count("<strong>duty</strong> 06:00\u201314:00") == 7  # an en dash
    assert "Nobody on duty from" in page.text  # 14:00 to 06:00 every day
    assert ".000000Z" not in page.text  # the JSON's microseconds are not for the page


@pytest.mark.parametrize("role", list(Role))
def test_every_role_against_every_console_page(nodes: tuple[Node, Node], role: Role) -> None:
    a, b = nodes
    name = "who-" + role.value.replace("_", "-")
    add_user(b, name, role)
    call_id = place_and_ring(a, b, "Matrix call")
    c = browser(b)
    log_in(c, name)
    for path in (
        "/",
        "/board",
        "/history",
        "/history.csv",
        "/roster",
        "/report",
        "/ledger",
        "/ledger/live",
        f"/calls/{call_id}",
        f"/calls/{call_id}/live",
    ):
        r = c.get(path)
        assert r.status_code == 200, (role, path, r.status_code)
        if path in ("/report", "/ledger", "/ledger/live"):  # metadata only, for every role
            assert "Matrix call" not in r.text, (role, path)
        elif path != "/roster":  # the roster shows no calls
            assert ("Matrix call" in r.text) == (role is not Role.AUDITOR), (role, path)
    token = csrf_of(c.get("/").text)
    works = role is not Role.AUDITOR
    before = b.snapshot()
    for path, data in (
        (f"/calls/{call_id}/pickup", {}),
        ("/calls", {"peer": "stuttgart", "subject": "x", "priority": "routine"}),
        ("/handovers", {"note": "n"}),
        ("/alerts/1/ack", {}),
    ):
        r = c.post(path, data={"csrf": token, **data})
        if works:
            assert r.status_code != 403, (role, path)
        else:
            assert r.status_code == 403, (role, path)
            assert 'data-refused="forbidden"' in r.text
    if not works:
        assert b.snapshot() == before


def test_an_administrator_manages_users_lines_and_policies_in_the_console(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    add_user(b, "chief", Role.ADMINISTRATOR)
    add_user(b, "duty", Role.WATCH_OFFICER)
    c = browser(b)
    sessions.enroll_totp(b.station, "admin", "duty")
    log_in(c, "chief")
    page = c.get("/admin")
    assert page.status_code == 200
    # Who has a second factor: the administrator's question before enrolling anyone.
    assert "<th>second factor</th>" in page.text
    assert re.search(r"<td>duty</td>.*?<td>TOTP</td>", page.text, re.S)
    assert re.search(r"<td>chief</td>.*?<td>none</td>", page.text, re.S)
    token = csrf_of(page.text)
    r = c.post("/admin/users", data={"csrf": token, "name": "night", "role": "senior_watch_officer"})
    assert r.status_code == 200
    match = re.search(r"One-time password \(shown once\): (\S+)</p>", r.text)
    assert match
    fresh = browser(b)
    assert log_in(fresh, "night", match.group(1)).headers["location"] == "/password"
    before = b.snapshot()
    bad = c.post("/admin/users", data={"csrf": token, "name": "Bad Name", "role": "auditor"})
    assert bad.status_code == 422
    assert b.snapshot() == before
    # The API's own check of an address (`accounts.EMAIL_PATTERN`), not a copy of it.
    for email in ("not-an-email", "duty@example", "two words@example.org", "a@b.c" + "x" * 250):
        form = {"csrf": token, "name": "wo9", "role": "watch_officer", "email": email}
        bad = c.post("/admin/users", data=form)
        assert bad.status_code == 422, email
        assert "email: expected an address such as duty@example.org" in html.unescape(bad.text)
        assert "wo9 added" not in bad.text
        assert 'role="alert"' in bad.text
        assert b.snapshot() == before
        r = b.api.post("/api/v1/users", json={"name": "wo9", "role": "watch_officer", "email": email})
        assert r.status_code == 422, email
        assert r.json()["code"] == "invalid_input"
    for email in ("wo9@example.org\u202e", "wo9@exa\u200bmple.org"):  # shown as another address
        bad = c.post(
            "/admin/users", data={"csrf": token, "name": "wo9", "role": "watch_officer", "email": email}
        )
        assert bad.status_code == 422, email
        assert "email: must be printable characters" in html.unescape(bad.text)
    assert b.snapshot() == before
    form = {"csrf": token, "name": "wo9", "role": "watch_officer", "email": "wo9@example.org"}
    assert "User wo9 added" in c.post("/admin/users", data=form).text
    assert {u["name"]: u["email"] for u in b.api.get("/api/v1/users").json()}["wo9"] == "wo9@example.org"
    assert c.post("/admin/users/duty/disable", data={"csrf": token}).status_code == 200
    users = {u["name"]: u for u in b.api.get("/api/v1/users").json()}
    assert users["duty"]["disabled"] is True
    policy = json.dumps(
        {
            "steps": [{"targets": ["role:commander"], "delay_s": 30}],
            "repeat": 0,
            "final": {"targets": ["on_duty"], "delay_s": 120},
        }
    )
    r = c.post("/admin/lines/stuttgart/policy", data={"csrf": token, "policy": policy})
    assert r.status_code == 200, r.text
    assert b.api.get("/api/v1/lines/stuttgart/policy").json()["policy"]["steps"][0]["targets"] == [
        "role:commander"
    ]
    before = b.snapshot()
    r = c.post("/admin/lines/stuttgart/policy", data={"csrf": token, "policy": "{not json"})
    assert r.status_code == 422
    assert b.snapshot() == before
    r = c.post("/admin/lines", data={"csrf": token, "card": "{}"})
    assert r.status_code in (400, 422)
    card = json.dumps(b.station.card.to_json())  # well-formed, but the deadline is not
    r = c.post("/admin/lines", data={"csrf": token, "card": card, "answer_deadline_s": "soon"})
    assert r.status_code == 422
    assert "whole seconds" in r.text
    assert b.snapshot() == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("notice_deadline_s", "an hour", "notice deadline: whole seconds, got 'an hour'"),
        # str.isdigit() passes a superscript two, which int() refuses: a 500 before.
        ("notice_deadline_s", "3600\u00b2", "notice deadline: whole seconds, got '3600\u00b2'"),
        # int() refuses over 4,300 digits with a ValueError of its own: a 500 before.
        ("answer_deadline_s", "9" * 5000, "answer deadline: whole seconds, got '" + "9" * 39),
        # Arabic-Indic 15: int() reads it, but it is no number on a form of ours.
        ("margin_minutes", "\u0661\u0665", "time margin: whole minutes, got '\u0661\u0665'"),
        ("notice_deadline_s", "30", "notice deadline must be 60 to 604800 seconds, got 30"),
        ("margin_horizontal_m", "2 km", "horizontal margin: metres, got '2 km'"),
        ("margin_horizontal_m", "nan", "margin horizontal must be 0 to 100000, got nan"),
        ("margin_vertical_m", "-1", "margin vertical must be 0 to 10000, got -1.0"),
        ("margin_minutes", "1.5", "time margin: whole minutes, got '1.5'"),
        ("margin_minutes", "2000", "margin minutes must be 0 to 1440, got 2000"),
    ],
)
def test_a_line_with_bad_terms_is_refused_and_nothing_is_added(
    nodes: tuple[Node, Node], tmp_path: Path, clock: FakeClock, field: str, value: str, message: str
) -> None:
    _, b = nodes
    kyiv = make_node(tmp_path, "kyiv", clock, None)
    try:
        add_user(b, "chief", Role.ADMINISTRATOR)
        c = browser(b)
        log_in(c, "chief")
        token = csrf_of(c.get("/admin").text)
        before = b.snapshot()
        card = json.dumps(kyiv.station.card.to_json())
        r = c.post("/admin/lines", data={"csrf": token, "card": card, field: value})
        assert r.status_code == 422
        assert message in html.unescape(r.text)
        assert 'role="alert"' in r.text
        assert b.snapshot() == before
    finally:
        kyiv.station.db.dispose()


def test_an_administrator_adds_a_line_with_its_terms(
    nodes: tuple[Node, Node], tmp_path: Path, clock: FakeClock
) -> None:
    _, b = nodes
    kyiv = make_node(tmp_path, "kyiv", clock, None)
    try:
        add_user(b, "chief", Role.ADMINISTRATOR)
        c = browser(b)
        log_in(c, "chief")
        page = c.get("/admin").text
        terms = re.compile(
            r'data-line-terms="(\w+)">Terms: calls answered within (\d+) s;\s+notices acknowledged within '
            r"(\d+) s; separation margins\s+(\S+) m horizontal, (\S+) m vertical,\s+(\d+) min\."
        )
        assert terms.findall(page) == [("stuttgart", "60", "3600", "0", "0", "0")]
        for name in ("notice_deadline_s", "margin_horizontal_m", "margin_vertical_m", "margin_minutes"):
            assert f'name="{name}"' in page, name
        form = {
            "csrf": csrf_of(page),
            "card": json.dumps(kyiv.station.card.to_json()),
            "notice_deadline_s": "600",
            "margin_horizontal_m": "2500.5",
            "margin_vertical_m": "300",
            "margin_minutes": "15",
        }
        r = c.post("/admin/lines", data=form)
        assert r.status_code == 200, r.text
        assert "Pinned kyiv" in r.text
        assert ("kyiv", "60", "600", "2500.5", "300", "15") in terms.findall(r.text)
        (line,) = [x for x in b.api.get("/api/v1/lines").json() if x["peer"] == "kyiv"]
        assert line["notice_deadline_s"] == 600
        assert line["margins"] == {"horizontal_m": 2500.5, "vertical_m": 300.0, "minutes": 15}
    finally:
        kyiv.station.db.dispose()


def test_the_admin_page_is_for_administrators(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    c = browser(b)
    log_in(c, "duty")
    assert c.get("/admin").status_code == 403
    token = csrf_of(c.get("/").text)
    before = b.snapshot()
    assert c.post("/admin/users", data={"csrf": token, "name": "x", "role": "auditor"}).status_code == 403
    assert c.post("/admin/lines/stuttgart/policy", data={"csrf": token, "policy": "{}"}).status_code == 403
    assert (
        c.post("/admin/lines/stuttgart/terms", data={"csrf": token, "margin_minutes": "5"}).status_code == 403
    )
    assert c.post("/admin/lines/stuttgart/suspend", data={"csrf": token, "reason": "x"}).status_code == 403
    assert b.snapshot() == before


def test_administrators_propose_new_terms_for_an_open_line_in_the_console(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    pages = []
    for node in (a, b):
        add_user(node, "chief", Role.ADMINISTRATOR)
        c = browser(node)
        log_in(c, "chief")
        pages.append(c)
    ca, cb = pages
    page = ca.get("/admin").text
    assert 'action="/admin/lines/moscow/terms"' in page
    assert 'name="notice_deadline_s" inputmode="numeric" value="3600"' in page  # filled with its terms
    token_a, token_b = csrf_of(page), csrf_of(cb.get("/admin").text)
    terms = {"answer_deadline_s": "60", "notice_deadline_s": "900", "margin_horizontal_m": "250",
             "margin_vertical_m": "0", "margin_minutes": "5"}  # fmt: skip

    before = a.snapshot()
    bad = ca.post("/admin/lines/moscow/terms", data={"csrf": token_a, **terms, "margin_minutes": "soon"})
    assert bad.status_code == 422
    assert "time margin: whole minutes, got &#39;soon&#39;" in bad.text
    far = ca.post("/admin/lines/moscow/terms", data={"csrf": token_a, **terms, "margin_horizontal_m": "1e6"})
    assert far.status_code == 422
    assert "margin horizontal must be 0 to 100000" in far.text
    assert a.snapshot() == before

    r = ca.post("/admin/lines/moscow/terms", data={"csrf": token_a, **terms})
    assert r.status_code == 200
    assert "New terms proposed to moscow; not adopted yet" in r.text
    assert 'data-line-proposal="moscow"' in r.text
    assert 'name="margin_horizontal_m" inputmode="decimal" value="250"' in r.text  # the proposal, to amend
    r = cb.post("/admin/lines/stuttgart/terms", data={"csrf": token_b, **terms})
    assert r.status_code == 200
    assert "New terms adopted by both stations of the line with stuttgart." in r.text
    for c, peer in ((ca, "moscow"), (cb, "stuttgart")):
        page = c.get("/admin").text
        assert f'data-line-proposal="{peer}"' not in page
        terms_text = re.search(rf'<p class="quiet" data-line-terms="{peer}">(.*?)</p>', page, re.S)
        assert terms_text
        assert "notices acknowledged within 900 s" in terms_text.group(1)
        assert "250 m horizontal" in terms_text.group(1)


def test_administrators_suspend_and_resume_a_line_in_the_console(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    add_user(b, "chief", Role.ADMINISTRATOR)
    c = browser(b)
    log_in(c, "chief")
    page = c.get("/admin").text
    assert 'action="/admin/lines/stuttgart/suspend"' in page
    assert 'action="/admin/lines/stuttgart/resume"' not in page
    token = csrf_of(page)

    before = b.snapshot()
    blank = c.post("/admin/lines/stuttgart/suspend", data={"csrf": token, "reason": "\u200b"})
    assert blank.status_code == 422
    assert "reason must have something to read" in blank.text
    assert '<details class="line-suspend" open>' in blank.text  # the form stays open, with the text
    assert b.snapshot() == before

    why = "Stuttgart says its key was copied <b>tonight</b>"
    r = c.post("/admin/lines/stuttgart/suspend", data={"csrf": token, "reason": why})
    assert r.status_code == 200
    assert "The line with stuttgart is suspended" in r.text
    shown = re.search(r'<p class="warn" data-line-suspended="stuttgart">(.*?)</p>', r.text, re.S)
    assert shown
    assert html.escape(why, quote=False) in shown.group(1)
    assert "by chief" in shown.group(1)
    assert 'action="/admin/lines/stuttgart/resume"' in r.text
    assert b.line().state == "suspended"
    board = c.get("/").text  # the watch floor sees it too
    assert "data-line-suspended" in board
    assert "nothing taken from or sent to stuttgart" in board

    r = c.post("/admin/lines/stuttgart/resume", data={"csrf": token})
    assert r.status_code == 200
    assert "The line with stuttgart is resumed and stuttgart answered." in r.text
    assert 'data-line-suspended="stuttgart"' not in r.text
    assert b.line().state == "active"
    again = c.post("/admin/lines/stuttgart/resume", data={"csrf": token})
    assert again.status_code == 409
    assert "is not suspended (it is active)" in again.text


def test_an_alert_acknowledged_meanwhile_is_said_on_a_page(nodes: tuple[Node, Node]) -> None:
    """Two tabs on the board; the alert is acknowledged in one, then in the other before it
    refreshed. The second officer gets a page that says who did it, not the API's JSON."""
    _a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    with b.station.tx() as tx:
        alerts.raise_alert(tx, "roster_gap", "test gap", {"peer": "stuttgart"})
    first, second = browser(b), browser(b)
    log_in(first, "duty")
    log_in(second, "duty")
    (alert,) = b.api.get("/api/v1/alerts").json()
    stale = csrf_of(second.get("/").text)
    acked = first.post(f"/alerts/{alert['id']}/ack", data={"csrf": csrf_of(first.get("/").text)})
    assert (acked.status_code, acked.headers["location"]) == (303, "/#alerts")  # back at the alerts
    before = b.snapshot()
    r = second.post(f"/alerts/{alert['id']}/ack", data={"csrf": stale})
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("text/html")
    assert 'data-refused="conflict"' in r.text
    assert "acknowledged already, by duty" in r.text
    assert 'href="/"' in r.text
    assert b.snapshot() == before


def test_declining_a_call_is_opened_first_and_says_why_to_the_caller(nodes: tuple[Node, Node]) -> None:
    """Decline sat a few pixels from Pick up and acted at once, with no reason to give;
    the reason the API took never reached the caller's screen."""
    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    call_id = place_and_ring(a, b)
    c = browser(b)
    log_in(c, "duty")
    page = c.get(f"/calls/{call_id}").text
    assert "<summary>Decline…</summary>" in page
    assert f'id="reason-{call_id}" name="reason"' in page
    r = c.post(f"/calls/{call_id}/decline", data={"csrf": csrf_of(page), "reason": "Busy with a flash call"})
    assert r.status_code == 303
    b.drain()
    add_user(a, "caller", Role.WATCH_OFFICER)
    theirs = browser(a)
    log_in(theirs, "caller")
    shown = theirs.get(f"/calls/{call_id}").text
    assert (
        'declined because: <span class="said" dir="auto" data-decline-reason>Busy with a flash call</span>'
        in shown
    )


@pytest.mark.parametrize("damaged", [False, True])
def test_a_page_the_database_cannot_give_says_why_and_what_to_do(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch, damaged: bool
) -> None:
    """Out of reach, the station keeps trying; damaged, only the operator mends it: the
    officer must be told to call them, not to wait."""
    a, _ = nodes
    add_user(a, "olga", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "olga")
    error = (
        DatabaseDamaged("database disk image is malformed", Path("/srv/openline/openline.db"))
        if damaged
        else DatabaseUnavailable("database is locked")
    )

    def fails(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(routes, "_board", fails)
    page = c.get("/", headers={"Accept": "text/html"})  # a browser reloading the board
    assert page.status_code == 503
    assert page.headers["retry-after"] == "5"
    text = html.unescape(page.text)
    if damaged:
        assert "<title>Database damaged · OpenLine" in text
        assert "<h1>The station's database is damaged</h1>" in text
        assert "tell the station's operator now" in text
        assert "keeps trying" not in text
        assert "/srv/openline" not in text  # the file is the operator's to know
    else:
        assert "<title>Database unavailable · OpenLine" in text
        assert "<h1>The station cannot reach its database</h1>" in text
        assert "The station keeps trying." in text
    assert "database disk image is malformed" in text if damaged else "database is locked" in text


def _picked_up_by(node: Node, call_id: str, name: str) -> str:
    """The call picked up in the console by `name`; the time it was, as the page shows it."""
    c = browser(node)
    log_in(c, name)
    r = c.post(f"/calls/{call_id}/pickup", data={"csrf": csrf_of(c.get("/").text)})
    assert r.headers["location"] == f"/calls/{call_id}"
    return str(show(node, call_id)["picked_up_at"])[11:19] + "Z"


def test_losing_a_pick_up_race_is_said_on_the_calls_own_page(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    """Two officers pressed Pick up within milliseconds. The one who lost read "cannot
    pickup a call that is picked_up" at /calls/<id>/pickup, where a reload posted again."""
    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    add_user(b, "night", Role.WATCH_OFFICER)
    call_id = place_and_ring(a, b, "Convoy at checkpoint 4", "flash")
    late = browser(b)
    log_in(late, "night")
    stale = csrf_of(late.get("/").text)  # the board, Pick up on it
    clock.advance(4.5)
    at = _picked_up_by(b, call_id, "duty")
    before = b.snapshot()
    r = late.post(f"/calls/{call_id}/pickup", data={"csrf": stale})
    assert r.status_code == 303  # then a GET: a reload asks for the page, it posts nothing
    assert r.headers["location"] == f"/calls/{call_id}?refused=pickup"
    assert b.snapshot() == before
    page = late.get(r.headers["location"])
    assert page.status_code == 200
    said = html.unescape(page.text)
    assert f"Someone else picked this call up first: moscow:duty at {at}. Nothing changed." in said
    assert "cannot pickup" not in said
    assert 'role="alert" data-overtaken' in page.text
    assert late.get(f"/calls/{call_id}").text.count("data-overtaken") == 0  # not without it
    # The winner's second click (two tabs): theirs, said so.
    winner = browser(b)
    log_in(winner, "duty")
    before = b.snapshot()
    r = winner.post(f"/calls/{call_id}/pickup", data={"csrf": csrf_of(winner.get("/").text)})
    assert r.headers["location"] == f"/calls/{call_id}?refused=pickup"
    assert f"You picked this call up already, at {at}. Nothing changed." in html.unescape(
        winner.get(r.headers["location"]).text
    )
    assert b.snapshot() == before


@pytest.mark.parametrize("action", ["close", "decline", "messages", "cancel"])
def test_every_call_action_that_loses_a_race_says_so_on_the_calls_page(
    nodes: tuple[Node, Node], clock: FakeClock, action: str
) -> None:
    """Close after another officer closed, decline after another picked up, a message to a
    call the peer just closed, cancel after the peer picked up: the same care as Pick up."""
    a, b = nodes
    for node in (a, b):
        add_user(node, "duty", Role.WATCH_OFFICER)
        add_user(node, "night", Role.WATCH_OFFICER)
    call_id = place_and_ring(a, b, "Convoy at checkpoint 4", "flash")
    here = a if action == "cancel" else b  # only the caller cancels
    late = browser(here)
    log_in(late, "night")
    stale = csrf_of(late.get(f"/calls/{call_id}").text)
    clock.advance(3)
    at = _picked_up_by(b, call_id, "duty")
    b.drain()
    expected = f"Someone else picked this call up first: moscow:duty at {at}. Nothing changed."
    if action in ("close", "messages"):
        clock.advance(2)
        closer = a if action == "messages" else b
        r = closer.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": "done"})
        assert r.status_code == 200, r.text
        closer.drain()
        closed = str(show(b, call_id)["closed_at"])[11:19] + "Z"
        who = "stuttgart" if action == "messages" else "moscow:admin"
        tail = "Your message was not sent; nothing changed." if action == "messages" else "Nothing changed."
        expected = f"Someone else closed this call first: {who} at {closed}. {tail}"
    before = here.snapshot()
    form = {"csrf": stale, "text": "Are you still there?", "summary": "mine", "reason": "busy"}
    r = late.post(f"/calls/{call_id}/{action}", data=form)
    assert r.status_code == 303
    assert r.headers["location"] == f"/calls/{call_id}?refused={action}"
    assert here.snapshot() == before
    assert expected in html.unescape(late.get(r.headers["location"]).text)


def test_each_pick_up_button_is_named_by_its_call(nodes: tuple[Node, Node]) -> None:
    """With thirty calls ringing, every button was "Pick up call from stuttgart": a screen
    reader could not tell which call each one picks up."""
    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    calls_ = {
        place_and_ring(a, b, "Convoy at checkpoint 4", "flash"): ("FLASH", "Convoy at checkpoint 4"),
        place_and_ring(a, b, "Weekly link test", "routine"): ("ROUTINE", "Weekly link test"),
    }
    c = browser(b)
    log_in(c, "duty")
    for page, ringing_shown in (
        (c.get("/").text, True),
        *((c.get(f"/calls/{i}").text, False) for i in calls_),
    ):
        buttons = re.findall(
            r'<button type="submit" class="pickup"([^>]*)>Pick up call from stuttgart</button>', page
        )
        assert buttons, page  # what the officer sees is unchanged
        for attributes in buttons:
            match = re.search(r'aria-labelledby="([^"]+)"', attributes)
            assert match, attributes
            named = [_text_of(page, ident) for ident in match.group(1).split()]
            assert named[0] == "Pick up call from stuttgart"
            call_id = match.group(1).split()[0].removeprefix("pickup-")
            assert named[1:3] == list(calls_[call_id])
            if ringing_shown:  # how long it has rung, as the card shows it
                assert named[3].startswith("ringing")
            else:
                assert len(named) == 3


def _text_of(page: str, ident: str) -> str:
    match = re.search(rf'<(\w+)[^>]* id="{re.escape(ident)}"[^>]*>(.*?)</\1>', page, re.S)
    assert match, ident
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip()


def test_the_call_page_says_while_its_line_is_down(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    """The board said LINE DOWN, but the officer on the call read only "… not yet
    receipted": nothing told them that what they said was not reaching the other side."""
    a, b = nodes
    assert b.transport is not None
    add_user(b, "duty", Role.WATCH_OFFICER)
    call_id = place_and_ring(a, b, "Convoy at checkpoint 4", "flash")
    c = browser(b)
    log_in(c, "duty")
    _picked_up_by(b, call_id, "duty")
    b.drain()
    page = c.get(f"/calls/{call_id}").text
    assert "data-line-down" not in page
    assert "<title>Call with stuttgart" in page
    b.transport.down = True
    clock.advance(1)
    sent = c.post(f"/calls/{call_id}/messages", data={"csrf": csrf_of(page), "text": "Are you there?"})
    assert sent.status_code == 303
    b.deliver()
    clock.advance(b.station.line_down_after_s)
    assert line_health.audit_lines(b.station) == 1
    for path in (f"/calls/{call_id}", f"/calls/{call_id}/live"):  # the page, and its live part
        said = html.unescape(c.get(path).text)
        assert "data-line-down" in said, path
        assert "The line to stuttgart is down" in said
        assert "what is said here is not reaching stuttgart" in said
        assert "use your fallback procedure to reach stuttgart" in said
    assert "<title>LINE DOWN · Call with stuttgart" in c.get(f"/calls/{call_id}").text
    # Back: the warning goes, though nobody has acknowledged the alert yet.
    b.transport.down = False
    b.deliver(force=True)
    b.drain()
    assert [x["kind"] for x in b.api.get("/api/v1/alerts").json()] == ["line_down"]
    page = c.get(f"/calls/{call_id}").text
    assert "data-line-down" not in page
    assert "<title>Call with stuttgart" in page
    assert "✓ receipted" in page


def test_the_handover_lists_each_open_call_with_its_subject_flash_first(nodes: tuple[Node, Node]) -> None:
    """Thirty-four lines of "open call flash in stuttgart · ringing", no subject, in the
    order the calls were placed."""
    a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    add_user(b, "night", Role.WATCH_OFFICER)
    routine = place_and_ring(a, b, "Weekly link test", "routine")
    flash = place_and_ring(a, b, "Convoy at checkpoint 4", "flash")
    immediate = place_and_ring(a, b, "Fire area moved north", "immediate")
    with b.station.tx() as tx:
        alerts.raise_alert(tx, "roster_gap", "gap from 14:00Z", {})
    day = browser(b)
    log_in(day, "duty")
    r = day.post("/handovers", data={"csrf": csrf_of(day.get("/").text), "note": "Three open."})
    assert r.status_code == 303
    nxt = browser(b)
    log_in(nxt, "night")
    board = nxt.get("/").text
    card = board[board.index('aria-label="Handover"') :]
    card = card[: card.index("</section>")]
    items = [
        html.unescape(re.sub(r"<[^>]+>|\s+", " ", li)).split()
        for li in re.findall(r"<li.*?</li>", card, re.S)
    ]
    assert [" ".join(words) for words in items] == [
        "FLASH Convoy at checkpoint 4 · from stuttgart · ringing",
        "IMMEDIATE Fire area moved north · from stuttgart · ringing",
        "ROUTINE Weekly link test · from stuttgart · ringing",
        "open alert roster_gap · gap from 14:00Z",
    ]
    for call_id in (flash, immediate, routine):
        assert f'href="/calls/{call_id}"' in card
    add_user(b, "inspector", Role.AUDITOR)
    auditor = browser(b)
    log_in(auditor, "inspector")
    assert "Convoy at checkpoint 4" not in auditor.get("/").text


def test_a_long_call_s_page_shows_its_newest_messages_and_all_on_request(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page re-renders at every change and opens every message it shows: a long call
    shows its newest (`CALL_PAGE_NEWEST`) and says how many earlier ones it leaves out."""
    a, b = nodes
    monkeypatch.setattr(routes, "CALL_PAGE_NEWEST", 3)
    call_id = place_and_ring(a, b)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    b.drain()
    for i in range(5):
        assert (
            a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": f"report {i}"}).status_code == 201
        )
    a.drain()
    add_user(b, "duty", Role.WATCH_OFFICER)
    c = browser(b)
    log_in(c, "duty")
    page = c.get(f"/calls/{call_id}").text
    assert re.findall(r">report (\d)<", page) == ["2", "3", "4"]
    assert "2 earlier messages not shown: the newest 3 are." in page
    assert "earlier event" in page
    assert f'hx-get="/calls/{call_id}/live"' in page
    whole = c.get(f"/calls/{call_id}?all=1").text
    assert re.findall(r">report (\d)<", whole) == ["0", "1", "2", "3", "4"]
    assert "data-earlier-messages" not in whole
    assert "data-earlier-events" not in whole
    assert f'hx-get="/calls/{call_id}/live?all=1"' in whole  # the live part keeps showing all
    assert re.findall(r">report (\d)<", c.get(f"/calls/{call_id}/live?all=1").text) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]
    # The API shows the whole call, as before.
    assert [m["text"] for m in show(b, call_id)["messages"]] == [f"report {i}" for i in range(5)]
