"""Text a peer controls, shown in the console as it was sent: bidirectional overrides and
control characters spelled out (as the CLI does), line breaks kept, each message in its
language and direction; and a text over the station's limit refused with the reason and
kept in its form, never cut short by the browser (`maxlength` counts UTF-16 units)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from openline.services.accounts import Role
from tests.harness import add_user as add_process_user
from tests.harness import running_pair, wait_for
from tests.inproc import Node, picked_up
from tests.notice_docs import send, site
from tests.test_console import add_user, csrf_of, log_in
from tests.test_console import browser as client

# A subject as a hostile peer writes it: with the override, "41-EE" is shown as "EE-14".
SUBJECT = "Hold fire at grid \u202e41-EE\u202c until 14:00Z <b>now</b>"
SPELLED = r"Hold fire at grid \u202e41-EE\u202c until 14:00Z &lt;b&gt;now&lt;/b&gt;"
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
ARABIC = "أوقفوا النار\nعند الشبكة 41"
FLAME = "\U0001f525"  # two UTF-16 units, one character


def _officer(node: Node, name: str = "duty") -> tuple[TestClient, str]:
    add_user(node, name, Role.WATCH_OFFICER)
    c = client(node)
    log_in(c, name)
    return c, csrf_of(c.get("/").text)


def _say(node: Node, call_id: str, text: str, lang: str = "en") -> None:
    r = node.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": text, "lang": lang})
    assert r.status_code == 201, r.text


def test_bidirectional_controls_from_a_peer_are_spelled_out_on_every_page(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b, SUBJECT)
    _say(a, call_id, "Move to \u2067grid 7\u2069\nthen wait")
    r = a.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": "Done \u202dOK\u202c\nLine two"})
    assert r.status_code == 200, r.text
    send(a, "moscow", site(a, 48.0, 9.0, text="Clinic \u202eB-12\u202c\nWard 3"))
    a.drain()
    b.drain()
    c, _ = _officer(b)
    for path in ("/", "/history", f"/calls/{call_id}", "/notices"):
        page = c.get(path).text
        assert not BIDI.search(page), path  # none reaches the browser as itself
    board, history, call = (c.get(p).text for p in ("/", "/history", f"/calls/{call_id}"))
    for page in (board, history, call):
        assert SPELLED in page  # escaped as before, and what was sent
    assert f'<h1 class="prio-routine said" id="subject-{call_id}" dir="auto">{SPELLED}</h1>' in call
    said = '<span class="text said" lang="en" dir="auto">'
    assert said + "Move to \\u2067grid 7\\u2069\nthen wait</span>" in call
    assert '<span class="said" dir="auto" data-summary>Done \\u202dOK\\u202c\nLine two</span>' in call
    said = '<span class="said" dir="auto" data-notice-text>'
    assert said + "Clinic \\u202eB-12\\u202c\nWard 3</span>" in c.get("/notices").text


def test_each_message_is_shown_in_its_language_and_direction(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b, "תיאום")
    _say(a, call_id, "أوقفوا النار\nعند الشبكة 41", lang="ar")
    _say(a, call_id, "Line one\r\nLine two")  # as a browser sends a line break: one, not spelled
    a.drain()
    b.drain()
    c, _ = _officer(b)
    page = c.get(f"/calls/{call_id}").text
    assert '<span class="text said" lang="ar" dir="auto">أوقفوا النار\nعند الشبكة 41</span>' in page
    assert '<span class="text said" lang="en" dir="auto">Line one\nLine two</span>' in page
    assert f'id="subject-{call_id}" dir="auto">תיאום</h1>' in page


def test_the_consoles_forms_cut_no_text_short() -> None:
    """`maxlength` counts UTF-16 units: 8,000 of them are 4,000 emoji, cut without a word."""
    templates = Path(__file__).parents[1] / "src/openline/console/templates"
    for name in ("_call.html", "board.html", "_notices.html", "_notice_form.html"):
        assert "maxlength" not in (templates / name).read_text(), name


def test_a_message_over_the_limit_is_refused_with_the_reason_and_kept(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    c, token = _officer(b)
    # The officer's own text goes back into the form exactly, override and all.
    typed = "\u202e" + FLAME * 8000
    r = c.post(f"/calls/{call_id}/messages", data={"csrf": token, "text": typed})
    assert r.status_code == 422
    why = '<p class="error" role="alert" id="form-error">text must be at most 8000 characters, got 8001</p>'
    assert why in r.text
    kept = re.search(r'<textarea id="text" name="text" [^>]*>(.*?)</textarea>', r.text, re.S)
    assert kept
    assert html.unescape(kept.group(1)) == typed
    assert b.api.get(f"/api/v1/calls/{call_id}").json()["messages"] == []  # nothing was sent

    # 8,000 emoji are 8,000 characters: sent whole (their form is 96,000 bytes).
    r = c.post(f"/calls/{call_id}/messages", data={"csrf": token, "text": FLAME * 8000})
    assert r.status_code == 303, r.text
    (said,) = b.api.get(f"/api/v1/calls/{call_id}").json()["messages"]
    assert said["text"] == FLAME * 8000

    r = c.post(f"/calls/{call_id}/close", data={"csrf": token, "summary": FLAME * 4001})
    assert r.status_code == 422
    assert "summary must be at most 4000 characters, got 4001" in r.text
    assert f'name="summary" value="{FLAME * 4001}"' in r.text


def test_lines_typed_in_the_console_are_sent_as_typed_not_as_the_browser_posts_them(
    nodes: tuple[Node, Node],
) -> None:
    """A browser posts a textarea's line breaks as CR LF: the message, the summary and a
    handover note keep the line break typed, not a CR that `openline show` spells out."""
    a, b = nodes
    call_id = picked_up(a, b)
    c, token = _officer(b)
    r = c.post(f"/calls/{call_id}/messages", data={"csrf": token, "text": "line one\r\nline two"})
    assert r.status_code == 303, r.text
    (said,) = b.api.get(f"/api/v1/calls/{call_id}").json()["messages"]
    assert said["text"] == "line one\nline two"
    r = c.post(f"/calls/{call_id}/close", data={"csrf": token, "summary": "done\r\nall clear"})
    assert r.status_code == 303, r.text
    assert b.api.get(f"/api/v1/calls/{call_id}").json()["summary"] == "done\nall clear"
    b.drain()
    a.drain()
    received = a.api.get(f"/api/v1/calls/{call_id}").json()["messages"]
    assert [m["text"] for m in received] == ["line one\nline two"]


def test_closing_with_a_message_typed_and_not_sent_asks_first(nodes: tuple[Node, Node]) -> None:
    """Close call sits under Send: pressed with a message typed (console.js sends it along
    as `unsent`), the call stays open, both texts stay in the form, and a second button
    closes without sending it."""
    a, b = nodes
    call_id = picked_up(a, b)
    c, token = _officer(b)
    form = {"csrf": token, "summary": "Agreed", "unsent": "Hold fire at the bridge"}
    r = c.post(f"/calls/{call_id}/close", data=form)
    assert r.status_code == 409, r.text
    assert "A message is typed and not sent" in r.text
    assert ">Hold fire at the bridge</textarea>" in r.text
    assert 'name="summary" value="Agreed"' in r.text
    assert "data-discard" in r.text
    assert b.api.get(f"/api/v1/calls/{call_id}").json()["state"] == "picked_up"
    # Blank is nothing typed; and asked, the officer closes without sending it.
    for extra in ({"unsent": " \r\n"}, {"discard": "1"}):
        call = picked_up(a, b, "Second") if extra.get("unsent") else call_id
        r = c.post(f"/calls/{call}/close", data={**form, **extra})
        assert r.status_code == 303, r.text
        shown = b.api.get(f"/api/v1/calls/{call}").json()
        assert (shown["state"], shown["messages"]) == ("closed", [])


def test_a_subject_or_a_rejection_over_the_limit_is_refused_and_kept(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    c, token = _officer(a)
    form = {"csrf": token, "peer": "moscow", "subject": FLAME * 501, "priority": "routine"}
    r = c.post("/calls", data=form)
    assert r.status_code == 422
    assert "subject must be at most 500 characters, got 501" in r.text
    assert f'name="subject" required value="{FLAME * 501}"' in r.text

    notice = send(b, "stuttgart", site(b, 48.0, 9.0))["id"]
    b.drain()
    a.drain()
    r = c.post(f"/notices/{notice}/reject", data={"csrf": token, "reason": FLAME * 8001})
    assert r.status_code == 422, r.text
    assert "at most 8000 characters" in r.text
    assert f'name="reason" required value="{FLAME * 8001}"' in r.text
    assert re.search(r'<details class="notice-reject" open>\s*<summary>Reject…</summary>', r.text)
    # Given back open, its field is in place; on a page as first shown, each row's field
    # waits in a <template> until its Reject… opens (a field in a closed <details> costs
    # Chromium a layout of the whole page: hundreds of rows froze it).
    assert f'<template data-on-open><input id="reason-{notice}"' not in r.text
    shown = c.get("/notices").text
    assert f'<template data-on-open><input id="reason-{notice}" name="reason" required></template>' in shown
    assert shown.count('<input id="reason-') == shown.count('<template data-on-open><input id="reason-')


@pytest.mark.e2e
def test_a_peers_text_reads_as_sent_in_chromium(tmp_path: Path, browser: Browser) -> None:
    """In a browser: the override spelled out, the Arabic message laid out from the right
    with its line break, and 8,001 emoji typed refused with the reason, not cut to 4,000."""
    password = "a long passphrase here"
    with running_pair(tmp_path, officers={"moscow": "boris"}, password=password) as (a, b):
        add_process_user(b, "olga", "watch_officer", password)
        call_id = a.cli_json("call", "moscow", "--subject", SUBJECT)["id"]
        wait_for(lambda: b.call_state(call_id) == "ringing", timeout=20, what="the call ringing at moscow")
        with b.api() as api:
            assert api.post(f"/calls/{call_id}/pickup").status_code == 200
        wait_for(lambda: a.call_state(call_id) == "picked_up", timeout=20, what="stuttgart told")
        with a.api() as api:
            r = api.post(f"/calls/{call_id}/messages", json={"text": ARABIC, "lang": "ar"})
            assert r.status_code == 201, r.text
        wait_for(lambda: b.get_json(f"/calls/{call_id}")["messages"], timeout=20, what="the message")

        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        try:
            page.goto(b.url + "/login")
            page.fill("input[name=username]", "olga")
            page.fill("input[name=password]", password)
            page.get_by_role("button", name="Log in").click()
            page.goto(b.url + f"/calls/{call_id}")
            expect(page.locator("h1")).to_have_text(html.unescape(SPELLED))
            message = page.locator(".msg .text")
            expect(message).to_have_css("direction", "rtl")
            expect(message).to_have_attribute("lang", "ar")
            assert message.inner_text() == ARABIC  # on two lines

            page.fill("#text", FLAME * 8001)
            page.get_by_role("button", name="Send").click()
            expect(page.get_by_role("alert").filter(has_text="at most 8000 characters")).to_have_text(
                "text must be at most 8000 characters, got 8001"
            )
            assert page.input_value("#text") == FLAME * 8001  # kept whole, to shorten
            assert b.get_json(f"/calls/{call_id}")["messages"][0]["from"] == "stuttgart"
            assert len(b.get_json(f"/calls/{call_id}")["messages"]) == 1
        finally:
            context.close()
