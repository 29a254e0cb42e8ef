"""Idempotency-Key: a client that sends a request again after a timeout gets what the
first one made (a call, a message, a notice), never a second one; a key reused for
another request, or malformed, is refused and changes nothing (docs/api.md)."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from openline.adapters.schema import calls, idempotency_keys, lines, notices, users
from openline.core.clock import FakeClock
from openline.errors import Conflict
from openline.services import calls as call_service
from openline.services import idempotency
from openline.services.accounts import Role
from tests.inproc import Node, picked_up
from tests.notice_docs import alerts, soon
from tests.test_console import browser, csrf_of, log_in
from tests.test_user_tokens import add_user, holder, issue

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"
CALL = {"peer": "moscow", "subject": "Convoy at checkpoint 4"}


def _count(node: Node, table: Any) -> int:
    with node.station.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _post(client: TestClient, path: str, body: dict[str, Any], key: str | None = KEY) -> Any:
    headers = {} if key is None else {"Idempotency-Key": f'"{key}"'}
    return client.post(path, json=body, headers=headers)


def test_a_call_sent_again_with_its_key_is_placed_once(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    first = _post(a.api, "/api/v1/calls", CALL)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    a.drain()
    again = _post(a.api, "/api/v1/calls", CALL)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["state"] == "placed"
    assert again.json()["state"] == "delivered"  # what the call is now, not what it was
    assert a.deliver().name == "IDLE"  # nothing new to send
    assert _count(a, calls) == 1
    assert _count(b, calls) == 1  # rang once at the peer
    # The key is sent unquoted by many clients: the same key.
    unquoted = a.api.post("/api/v1/calls", json=CALL, headers={"Idempotency-Key": KEY})
    assert unquoted.json()["id"] == first.json()["id"]


def test_without_a_key_each_request_makes_its_own(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    ids = {_post(a.api, "/api/v1/calls", CALL, key=None).json()["id"] for _ in range(2)}
    assert len(ids) == 2
    assert _count(a, idempotency_keys) == 0


def test_a_retry_is_answered_even_when_it_could_not_be_made_now(nodes: tuple[Node, Node]) -> None:
    """The line stopped being active after the call was placed: the retry still answers
    with the call, not with why a new one cannot be placed now."""
    a, _ = nodes
    first = _post(a.api, "/api/v1/calls", CALL).json()
    with a.station.tx() as tx:
        tx.conn.execute(update(lines).values(state="pending"))
    assert a.api.post("/api/v1/calls", json=CALL).status_code == 409  # a new call cannot be placed
    again = _post(a.api, "/api/v1/calls", CALL)
    assert again.status_code == 201
    assert again.json()["id"] == first["id"]


def test_a_key_reused_for_another_request_is_refused(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    _post(a.api, "/api/v1/calls", CALL)
    before = a.snapshot()
    for body, path in (
        ({**CALL, "subject": "Another subject"}, "/api/v1/calls"),
        ({**CALL, "priority": "flash"}, "/api/v1/calls"),
    ):
        r = _post(a.api, path, body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "invalid_input"
        assert "Idempotency-Key" in r.json()["detail"]
        assert "another request" in r.json()["detail"]
    assert a.snapshot() == before


@pytest.mark.parametrize(
    "header",
    ['""', "", "x" * 256, '"with \\"quote\\""', "back\\slash", "caf\u00e9", '"unterminated'],
)
def test_a_malformed_key_is_refused_and_nothing_is_made(nodes: tuple[Node, Node], header: str) -> None:
    a, _ = nodes
    before = a.snapshot()
    r = a.api.post("/api/v1/calls", json=CALL, headers={"Idempotency-Key": header.encode("utf-8")})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert r.json()["detail"].startswith("Idempotency-Key: expected 1-255 printable ASCII characters")
    assert a.snapshot() == before


def test_keys_are_each_users_own(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    duty = holder(a, issue(a, "duty")["token"])
    mine = _post(a.api, "/api/v1/calls", CALL).json()
    theirs = _post(duty, "/api/v1/calls", CALL).json()
    assert mine["id"] != theirs["id"]
    assert _post(duty, "/api/v1/calls", CALL).json()["id"] == theirs["id"]


def test_a_key_answers_for_a_day(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, _ = nodes
    first = _post(a.api, "/api/v1/calls", CALL).json()
    clock.advance(23 * 3600)
    assert _post(a.api, "/api/v1/calls", CALL).json()["id"] == first["id"]
    clock.advance(3600)
    later = _post(a.api, "/api/v1/calls", CALL).json()
    assert later["id"] != first["id"]  # a day on, the key is free again
    assert _count(a, idempotency_keys) == 1  # the expired one went when the new one came


def test_a_message_sent_again_with_its_key_is_sent_once(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    path = f"/api/v1/calls/{call_id}/messages"
    first = _post(a.api, path, {"text": "Hold at the bridge"})
    assert first.status_code == 201, first.text
    again = _post(a.api, path, {"text": "Hold at the bridge"})
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    a.drain()
    thread = b.api.get(f"/api/v1/calls/{call_id}").json()["messages"]
    assert [m["text"] for m in thread] == ["Hold at the bridge"]
    # The same key on another call's path is another request.
    other = picked_up(a, b, subject="Second call")
    r = _post(a.api, f"/api/v1/calls/{other}/messages", {"text": "Hold at the bridge"})
    assert r.status_code == 422
    assert "another request" in r.json()["detail"]


def test_a_notice_sent_again_with_its_key_is_sent_once(nodes: tuple[Node, Node]) -> None:
    """Sent twice, a notice would conflict with itself and page both watch floors."""
    a, b = nodes
    body = {"peer": "moscow", "notice": soon(a, 48.7, 9.1)}
    first = _post(a.api, "/api/v1/notices", body)
    assert first.status_code == 201, first.text
    again = _post(a.api, "/api/v1/notices", body)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    a.drain()
    assert _count(a, notices) == 1
    assert _count(b, notices) == 1
    assert alerts(a, "notice_conflict") == []
    assert alerts(b, "notice_conflict") == []


def test_a_request_made_meanwhile_under_the_same_key_rolls_the_other_back(nodes: tuple[Node, Node]) -> None:
    """Two retries at once: the second to commit finds the key taken in its own
    transaction, and is rolled back whole (409): nothing is made twice."""
    a, _ = nodes
    with a.station.db.read() as conn:
        admin = conn.execute(select(users.c.id).where(users.c.name == "admin")).scalar_one()
    once = idempotency.once(admin, KEY, "POST", "/api/v1/calls", CALL)
    assert once is not None
    call_service.place(a.station, "admin", "moscow", "Convoy at checkpoint 4", once=once)
    before = a.snapshot()
    with pytest.raises(Conflict, match="at the same time; nothing was done twice"):
        call_service.place(a.station, "admin", "moscow", "Convoy at checkpoint 4", once=once)
    assert a.snapshot() == before


def test_two_requests_with_one_key_at_the_same_moment_make_one(nodes: tuple[Node, Node]) -> None:
    """Two connections keep the same key at once: on PostgreSQL the second waits on the
    first's row and is refused when it commits (the unique key), on SQLite it waits for
    the write lock and finds the row. Either way one is kept and the other rolled back."""
    a, _ = nodes
    with a.station.db.read() as conn:
        admin = conn.execute(select(users.c.id).where(users.c.name == "admin")).scalar_one()
    once = idempotency.once(admin, KEY, "POST", "/api/v1/calls", CALL)
    assert once is not None
    first_in = threading.Event()
    outcomes: dict[str, Any] = {}

    def keep(name: str, wait_first: bool) -> None:
        try:
            if wait_first:
                first_in.wait(5)
            with a.station.tx() as tx:
                idempotency.keep(tx, once, name)
                if not wait_first:
                    first_in.set()
                    time.sleep(0.3)  # the other one is waiting on us now
            outcomes[name] = "kept"
        except Conflict as exc:
            outcomes[name] = exc.detail

    threads = [
        threading.Thread(target=keep, args=("first", False)),
        threading.Thread(target=keep, args=("second", True)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert outcomes["first"] == "kept"
    assert "at the same time; nothing was done twice" in outcomes["second"]
    with a.station.db.read() as conn:
        assert conn.execute(select(idempotency_keys.c.made)).scalars().all() == ["first"]


@pytest.mark.parametrize("key", [KEY, None])
def test_a_body_nested_too_deeply_to_fingerprint_is_invalid_input(
    nodes: tuple[Node, Node], key: str | None
) -> None:
    """Pydantic parses 300 levels of a notice document but will not serialise them again
    for the key's fingerprint: that was a 500 (and it was taken even without a key)."""
    a, _ = nodes
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    before = a.snapshot()
    r = _post(a.api, "/api/v1/notices", {"peer": "moscow", "notice": deep}, key=key)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert a.snapshot() == before


def _once_of(html: str) -> str:
    match = re.search(r'name="once" value="([^"]+)"', html)
    assert match, "no once key in the form"
    return match.group(1)


def test_a_console_form_sent_twice_places_one_call_and_sends_one_message(
    nodes: tuple[Node, Node],
) -> None:
    """A double click on Call (or a browser sending the form again) rang the peer twice:
    each form that makes something carries its own key, as an API client's."""
    a, b = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    board = c.get("/").text
    form = {"csrf": csrf_of(board), "once": _once_of(board), "peer": "moscow", "subject": "Convoy"}
    form["priority"] = "flash"
    first, again = c.post("/calls", data=form), c.post("/calls", data=form)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert _count(a, calls) == 1
    assert _once_of(c.get("/").text) != form["once"]  # the next form is another
    a.drain()
    b.drain()
    call_id = first.headers["location"].rsplit("/", 1)[1]
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    b.drain()
    page = c.get(f"/calls/{call_id}").text
    said = {"csrf": form["csrf"], "once": _once_of(page), "text": "Hold at the bridge"}
    for _ in range(2):
        assert c.post(f"/calls/{call_id}/messages", data=said).status_code == 303
    a.drain()
    thread = b.api.get(f"/api/v1/calls/{call_id}").json()["messages"]
    assert [m["text"] for m in thread] == ["Hold at the bridge"]


def test_the_console_notice_form_sent_twice_sends_one_notice(nodes: tuple[Node, Node]) -> None:
    """Sent twice, a notice conflicted with itself and paged both watch floors."""
    a, b = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    c = browser(a)
    log_in(c, "duty")
    page = c.get("/notices").text
    form = {"csrf": csrf_of(page), "once": _once_of(page), "peer": "moscow"}
    form["notice"] = json.dumps(soon(a, 48.7, 9.1))
    for _ in range(2):
        assert c.post("/notices", data=form).status_code == 303
    a.drain()
    assert _count(a, notices) == 1
    assert _count(b, notices) == 1
    assert alerts(a, "notice_conflict") == []
