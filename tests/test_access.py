"""People and access: every role against every local API route, the auditor's metadata-only
view, user management and its audit trail, with bad input refused and nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from openline.services import accounts
from openline.services.accounts import Role
from tests.inproc import Node, place_and_ring

PASSWORD = "correct horse battery staple"
ALL = frozenset(Role)
WORKERS = frozenset({Role.ADMINISTRATOR, Role.WATCH_OFFICER, Role.SENIOR_WATCH_OFFICER, Role.COMMANDER})
ADMIN = frozenset({Role.ADMINISTRATOR})
ROSTER = frozenset({Role.ADMINISTRATOR, Role.SENIOR_WATCH_OFFICER})

# Written out by hand, not derived from accounts.GRANTS: this is the specification the
# grants table must meet. (method, path template) -> roles allowed.
MATRIX: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/api/v1/station"): ALL,
    ("GET", "/api/v1/lines"): ALL,
    ("POST", "/api/v1/lines"): ADMIN,
    ("GET", "/api/v1/calls"): ALL,
    ("POST", "/api/v1/calls"): WORKERS,
    ("GET", "/api/v1/calls/{call_id}"): ALL,
    ("POST", "/api/v1/calls/{call_id}/pickup"): WORKERS,
    ("POST", "/api/v1/calls/{call_id}/messages"): WORKERS,
    ("POST", "/api/v1/calls/{call_id}/close"): WORKERS,
    ("POST", "/api/v1/calls/{call_id}/decline"): WORKERS,
    ("POST", "/api/v1/calls/{call_id}/cancel"): WORKERS,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users/{name}/disable"): ADMIN,
    ("POST", "/api/v1/users/{name}/enable"): ADMIN,
    ("POST", "/api/v1/users/{name}/unlock"): ADMIN,
    ("POST", "/api/v1/users/{name}/reset-password"): ADMIN,
    ("GET", "/api/v1/audit"): frozenset({Role.ADMINISTRATOR, Role.AUDITOR}),
    ("POST", "/api/v1/users/{name}/totp"): ADMIN,
    ("GET", "/api/v1/users/{name}/tokens"): ADMIN,
    ("POST", "/api/v1/users/{name}/tokens"): ADMIN,
    ("DELETE", "/api/v1/users/{name}/tokens/{token_id}"): ADMIN,
    ("POST", "/api/v1/handovers"): WORKERS,
    ("GET", "/api/v1/handovers"): ALL,
    ("POST", "/api/v1/handovers/{handover_id}/acknowledge"): WORKERS,
    ("GET", "/api/v1/lines/{peer}/policy"): ALL,
    ("PUT", "/api/v1/lines/{peer}/policy"): ADMIN,
    ("PUT", "/api/v1/lines/{peer}/terms"): ADMIN,
    ("PUT", "/api/v1/lines/{peer}/card"): ADMIN,
    ("POST", "/api/v1/lines/{peer}/suspend"): ADMIN,
    ("POST", "/api/v1/lines/{peer}/resume"): ADMIN,
    ("GET", "/api/v1/alerts"): ALL,
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): WORKERS,
    ("GET", "/api/v1/notifications"): ALL,
    ("POST", "/api/v1/notifications/test"): ADMIN,
    ("GET", "/api/v1/roster"): ALL,
    ("POST", "/api/v1/shifts"): ROSTER,
    ("DELETE", "/api/v1/shifts/{shift_id}"): ROSTER,
    ("POST", "/api/v1/overrides"): ROSTER,
    ("DELETE", "/api/v1/overrides/{override_id}"): ROSTER,
    # The ledger holds metadata and commitments only: every role may see it.
    ("GET", "/api/v1/ledger/checkpoint"): ALL,
    ("POST", "/api/v1/ledger/checkpoint"): ALL,
    ("GET", "/api/v1/ledger/proof/inclusion"): ALL,
    ("GET", "/api/v1/ledger/proof/consistency"): ALL,
    ("GET", "/api/v1/ledger/entries"): ALL,
    ("GET", "/api/v1/ledger/keys"): ALL,
    ("GET", "/api/v1/ledger/calls/{call_id}/proof"): ALL,
    ("GET", "/api/v1/ledger/notices/{notice_id}/proof"): ALL,
    ("GET", "/api/v1/ledger/status"): ALL,
    ("GET", "/api/v1/report"): ALL,
    ("POST", "/api/v1/notices"): WORKERS,
    ("GET", "/api/v1/notices"): ALL,
    ("GET", "/api/v1/notices/{notice_id}"): ALL,
    ("POST", "/api/v1/notices/{notice_id}/acknowledge"): WORKERS,
    ("POST", "/api/v1/notices/{notice_id}/reject"): WORKERS,
    ("POST", "/api/v1/notices/{notice_id}/withdraw"): WORKERS,
    ("POST", "/api/v1/notices/{notice_id}/send"): WORKERS,
    ("POST", "/api/v1/notices/{notice_id}/discard"): WORKERS,
    ("PUT", "/api/v1/notices/{notice_id}"): WORKERS,
}


def client_for(node: Node, name: str, role: Role) -> TestClient:
    with node.station.tx() as tx:
        user_id = accounts.create_user(tx.conn, tx.now, name, role, PASSWORD)
        token = accounts.issue_token(tx.conn, tx.now, user_id, "test")
    return TestClient(node.app, headers={"Authorization": f"Bearer {token}"})


def test_the_matrix_covers_every_local_route(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    routes = {
        (method.upper(), path)
        for path, operations in a.app.openapi()["paths"].items()
        if path.startswith("/api/v1")
        for method in operations
    }
    assert len(routes) >= 10  # guards the walk itself
    assert routes == set(MATRIX)


def _request(client: TestClient, method: str, path: str, call_id: str, peer_card: dict[str, Any]) -> Any:
    url = path.format(
        call_id=call_id,
        name="victim",
        peer="moscow",
        alert_id=1,
        shift_id=1,
        override_id=1,
        handover_id=1,
        token_id=1,
        notice_id="no-such-notice",
    )
    body: dict[str, Any] | None = None
    if path in ("/api/v1/lines", "/api/v1/lines/{peer}/card"):
        body = {"card": peer_card}
    elif path == "/api/v1/calls":
        body = {"peer": "moscow", "subject": "matrix"}
    elif path.endswith("/messages"):
        body = {"text": "matrix"}
    elif path == "/api/v1/users":
        body = {"name": "someone-new", "role": "auditor"}
    elif path == "/api/v1/users/{name}/tokens" and method == "POST":
        body = {"label": "matrix"}
    elif path.endswith("/suspend"):
        body = {"reason": "matrix"}
    elif path.endswith("/terms") and method == "PUT":
        body = {"margin_minutes": 5}
    elif path.endswith("/policy") and method == "PUT":
        step = {"targets": ["on_duty"], "delay_s": 60}
        body = {"steps": [step], "repeat": 0, "final": step}
    elif path == "/api/v1/shifts":
        body = {
            "user": "victim",
            "start_local": "2026-11-27T06:00",
            "tz": "Europe/Berlin",
            "duration_s": 28_800,
        }
    elif path == "/api/v1/handovers" and method == "POST":
        body = {"note": "matrix"}
    elif path == "/api/v1/notices" and method == "POST":
        body = {"peer": "moscow", "notice": {"category": "exercise", "text": "matrix", "extents": []}}
    elif path == "/api/v1/notices/{notice_id}" and method == "PUT":
        body = {"notice": {"category": "exercise", "text": "matrix", "extents": []}}
    elif path.endswith("/reject"):
        body = {"reason": "matrix"}
    elif path == "/api/v1/notifications/test":
        body = {"targets": ["user:victim"]}
    elif path == "/api/v1/overrides":
        body = {"user": "victim", "start": "2026-11-27T06:00:00Z", "end": "2026-11-27T14:00:00Z"}
    return client.request(method, url, json=body)


@pytest.mark.parametrize("role", list(Role))
def test_every_role_against_every_route(nodes: tuple[Node, Node], role: Role) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    with a.station.tx() as tx:
        accounts.create_user(tx.conn, tx.now, "victim", Role.WATCH_OFFICER, PASSWORD)
    who = client_for(a, f"the-{role.value.replace('_', '-')}", role)
    for (method, path), allowed in MATRIX.items():
        before = a.snapshot()
        r = _request(who, method, path, call_id, b.station.card.to_json())
        if role in allowed:
            assert r.status_code != 403, (method, path, r.text)
        else:
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert r.json()["code"] == "forbidden"
            assert role.value in r.json()["detail"]
            assert a.snapshot() == before, (method, path)


def test_a_message_without_a_valid_token_is_refused_and_changes_nothing(nodes: tuple[Node, Node]) -> None:
    # The message endpoint authenticates on its own worker thread (api.deps.principal_of),
    # not through the shared dependency: the same refusals, nothing stored.
    a, b = nodes
    call_id = place_and_ring(a, b)
    b.api.post(f"/api/v1/calls/{call_id}/pickup")
    a.drain()
    b.drain()
    anonymous = TestClient(a.app)
    url = f"/api/v1/calls/{call_id}/messages"
    before = a.snapshot()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic bm9wZQ=="}):
        r = anonymous.post(url, json={"text": "let me in"}, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["code"] == "unauthorized"
    # Its body is validated first, so a malformed one is refused as such, token or not.
    r = anonymous.post(url, json={"text": ""}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 422
    assert a.snapshot() == before
    assert a.api.post(url, json={"text": "with the token"}).status_code == 201


def test_an_auditor_sees_what_happened_but_not_what_was_said(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    subject = "Convoy crossing at grid 38T LN 1234"
    text = "Hold fire on route 4 until 14:00Z"
    call_id = place_and_ring(a, b, subject=subject)
    assert b.api.post(f"/api/v1/calls/{call_id}/pickup").status_code == 200
    b.drain()
    assert a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": text}).status_code == 201
    a.drain()
    assert b.api.post(f"/api/v1/calls/{call_id}/close", json={"summary": "agreed"}).status_code == 200
    b.drain()

    auditor = client_for(b, "auditor", Role.AUDITOR)
    shown = auditor.get(f"/api/v1/calls/{call_id}")
    listed = auditor.get("/api/v1/calls")
    assert shown.status_code == listed.status_code == 200
    for raw in (shown.text, listed.text):
        assert subject not in raw
        assert text not in raw
        assert "agreed" not in raw
    call = shown.json()
    assert call["content_withheld"] is True
    assert call["subject"] is None
    assert call["summary"] is None
    assert [m["text"] for m in call["messages"]] == [None]
    assert call["messages"][0]["receipt"]["type"] == "receipt"  # the proof is still there
    assert call["state"] == "closed"
    assert [e["event"] for e in call["events"]][:3] == ["placed", "delivered", "ringing"]

    officer = client_for(b, "officer", Role.WATCH_OFFICER)
    full = officer.get(f"/api/v1/calls/{call_id}").json()
    assert full["content_withheld"] is False
    assert full["subject"] == subject
    assert [m["text"] for m in full["messages"]] == [text]
    assert full["summary"] == "agreed"


def test_users_added_disabled_enabled_and_reset_with_an_audit_trail(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    r = a.api.post("/api/v1/users", json={"name": "duty", "role": "watch_officer"})
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["must_change_password"] is True
    one_time = added["one_time_password"]
    assert len(one_time) >= 16
    with a.station.db.read() as conn:
        assert accounts.check_password(conn, "duty", one_time).role is Role.WATCH_OFFICER

    r = a.api.post(
        "/api/v1/users", json={"name": "senior", "role": "senior_watch_officer", "password": PASSWORD}
    )
    assert r.status_code == 201
    assert r.json()["one_time_password"] is None
    assert r.json()["must_change_password"] is False
    names = {u["name"]: u["role"] for u in a.api.get("/api/v1/users").json()}
    assert names == {"admin": "administrator", "duty": "watch_officer", "senior": "senior_watch_officer"}

    senior = TestClient(a.app)
    with a.station.tx() as tx:
        user_id = accounts.check_password(tx.conn, "senior", PASSWORD).user_id
        senior.headers["Authorization"] = f"Bearer {accounts.issue_token(tx.conn, tx.now, user_id, 't')}"
    assert senior.get("/api/v1/calls").status_code == 200
    assert a.api.post("/api/v1/users/senior/disable").json()["disabled"] is True
    assert senior.get("/api/v1/calls").status_code == 401  # at once
    assert a.api.post("/api/v1/users/senior/enable").json()["disabled"] is False
    assert senior.get("/api/v1/calls").status_code == 200

    r = a.api.post("/api/v1/users/duty/reset-password", json={})
    new = r.json()["one_time_password"]
    assert new
    assert new != one_time
    with a.station.db.read() as conn:
        assert accounts.check_password(conn, "duty", new).name == "duty"
        with pytest.raises(accounts.Unauthorized):
            accounts.check_password(conn, "duty", one_time)

    trail = [(e["actor"], e["action"], e["target"]) for e in a.api.get("/api/v1/audit").json()]
    assert trail[:5] == [
        ("admin", "user.reset_password", "duty"),
        ("admin", "user.enable", "senior"),
        ("admin", "user.disable", "senior"),
        ("admin", "user.create", "senior (senior_watch_officer)"),
        ("admin", "user.create", "duty (watch_officer)"),
    ]
    assert ("system", "user.create", "admin (administrator)") in trail
    assert any(action == "line.add" and target.startswith("moscow (") for _, action, target in trail)
    assert all(PASSWORD not in str(e) and new not in str(e) for e in trail)


BAD_INPUT = [
    ("POST", "/api/v1/users", {"name": "Bad Name", "role": "auditor"}, 422, "invalid_input"),
    ("POST", "/api/v1/users", {"name": "x", "role": "overlord"}, 422, "invalid_input"),
    ("POST", "/api/v1/users", {"name": "x", "role": "auditor", "password": "short"}, 422, "invalid_input"),
    ("POST", "/api/v1/users", {"name": "x", "role": "auditor", "extra": 1}, 422, "invalid_input"),
    ("POST", "/api/v1/users", {"name": "admin", "role": "auditor"}, 409, "conflict"),
    # Shown as another address than the one mail goes to: right-to-left override, zero width.
    (
        "POST",
        "/api/v1/users",
        {"name": "x", "role": "auditor", "email": "ops@example.org\u202e"},
        422,
        "invalid_input",
    ),
    (
        "POST",
        "/api/v1/users",
        {"name": "x", "role": "auditor", "email": "ops@exa\u200bmple.org"},
        422,
        "invalid_input",
    ),
    ("POST", "/api/v1/users/nobody/disable", None, 404, "not_found"),
    ("POST", "/api/v1/users/admin/disable", None, 409, "conflict"),  # the last administrator
    ("POST", "/api/v1/users/nobody/reset-password", {}, 404, "not_found"),
    ("POST", "/api/v1/users/admin/reset-password", {"password": "short"}, 422, "invalid_input"),
    ("GET", "/api/v1/audit?limit=0", None, 422, "invalid_input"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_INPUT)
def test_bad_user_input_is_refused_and_changes_nothing(
    nodes: tuple[Node, Node], method: str, path: str, body: Any, status: int, code: str
) -> None:
    a, _ = nodes
    before = a.snapshot()
    r = a.api.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert r.json()["detail"]
    assert a.snapshot() == before


def test_a_second_administrator_lets_the_first_be_disabled(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    assert a.api.post("/api/v1/users", json={"name": "second", "role": "administrator"}).status_code == 201
    assert a.api.post("/api/v1/users/second/disable").status_code == 200
    assert a.api.post("/api/v1/users/admin/disable").status_code == 409  # second is disabled
    assert a.api.post("/api/v1/users/second/enable").status_code == 200
    r = a.api.post("/api/v1/users/admin/disable")
    assert r.status_code == 200
    assert a.api.get("/api/v1/users").status_code == 401  # the CLI's token belonged to admin


def test_what_the_framework_refuses_is_a_problem_document_too(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    before = a.snapshot()
    missing = a.api.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"
    wrong = a.api.delete("/api/v1/calls")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["code"] == "method_not_allowed"
    assert wrong.headers["allow"]  # the methods of the route the path matched first
    deep = "[" * 50_000 + "]" * 50_000  # FastAPI cannot parse it (RecursionError): said in our terms
    unparsed = a.api.post("/api/v1/calls", content=deep, headers={"content-type": "application/json"})
    assert unparsed.status_code == 422
    assert unparsed.headers["content-type"] == "application/problem+json"
    assert unparsed.json()["code"] == "invalid_input"
    assert unparsed.json()["detail"] == "request body: JSON nested too deeply"
    assert a.snapshot() == before
