"""What an accessibility tester found in the console's pages, checked over HTTP: a refused
form keeps what was typed (the administration page too) and marks the field it kept; each
page has its heading; each alert's button is named by its alert."""

from __future__ import annotations

import html
import re

from openline.services import alerts
from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import send, soon
from tests.test_console import add_user, browser, csrf_of, log_in


def test_a_refused_add_user_keeps_the_name_and_address_typed(nodes: tuple[Node, Node]) -> None:
    _a, b = nodes
    add_user(b, "root", Role.ADMINISTRATOR)
    c = browser(b)
    log_in(c, "root")
    typed = {"name": "root", "role": "auditor", "email": "ops@example.org"}  # the name is taken
    r = c.post("/admin/users", data={"csrf": csrf_of(c.get("/admin").text), **typed})
    assert r.status_code >= 400
    assert 'role="alert" id="form-error"' in r.text
    form = r.text[r.text.index('action="/admin/users"') :]
    assert 'id="new-name" name="name" required maxlength="64" value="root"' in form
    assert 'value="ops@example.org"' in form
    assert '<option value="auditor" selected>' in form
    assert r.text.count("<h1>") == 1  # the page's own, over its sections' h2


def test_a_refused_call_says_error_in_the_title_and_marks_its_subject(nodes: tuple[Node, Node]) -> None:
    a, _b = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    page = c.get("/").text
    once = re.search(r'name="once" value="([^"]+)"', page)
    assert once
    data = {"csrf": csrf_of(page), "once": once.group(1), "peer": "moscow", "priority": "routine"}
    r = c.post("/calls", data={**data, "subject": "x" * 501})
    assert r.status_code >= 400
    assert re.search(r"<title>Error: ", r.text)
    subject = re.search(r'<input id="subject"[^>]*>', r.text)
    assert subject
    assert 'aria-invalid="true"' in subject.group(0)
    assert 'aria-describedby="form-error"' in subject.group(0)
    assert 'value="' + "x" * 501 + '"' in subject.group(0)


def test_the_board_has_a_heading_and_each_alert_button_its_own_name(nodes: tuple[Node, Node]) -> None:
    _a, b = nodes
    add_user(b, "duty", Role.WATCH_OFFICER)
    with b.station.tx() as tx:
        alerts.raise_alert(tx, "roster_gap", "gap from 14:00Z", {})
        alerts.raise_alert(tx, "roster_gap", "gap from 20:00Z", {})
    c = browser(b)
    log_in(c, "duty")
    board = c.get("/").text
    assert re.search(r"<h1[^>]*>Watch board</h1>", board)
    for alert in b.api.get("/api/v1/alerts").json():
        n = alert["id"]
        assert f'id="ack-{n}" aria-labelledby="ack-{n} alert-{n}">Acknowledge</button>' in board
        named = re.search(rf'<span id="alert-{n}">(.*?)</span>', board, re.S)
        assert named
        assert alert["subject"] in html.unescape(named.group(1))


def test_each_acknowledge_notice_button_on_the_board_has_its_own_name(nodes: tuple[Node, Node]) -> None:
    """Every one was named just "Acknowledge notice": which notice, only the list item said."""
    a, b = nodes
    for lat in (48.0, 49.0):
        send(a, "moscow", soon(a, lat, 9.0))
    a.drain()
    add_user(b, "duty", Role.WATCH_OFFICER)
    c = browser(b)
    log_in(c, "duty")
    board = c.get("/").text
    waiting = [n for n in b.api.get("/api/v1/notices").json() if n["direction"] == "in"]
    assert len(waiting) == 2
    for notice in waiting:
        n = notice["id"]
        assert (
            f'id="ack-notice-{n}" aria-labelledby="ack-notice-{n} waiting-{n}">Acknowledge notice</button>'
            in board
        )
        named = re.search(rf'<span id="waiting-{n}">(.*?)</span>', board, re.S)
        assert named
        assert html.unescape(named.group(1)) == f"<strong>{notice['category']}</strong> from stuttgart"
