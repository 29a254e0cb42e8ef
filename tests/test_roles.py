"""Roles on the local API: a watch officer works calls; only an administrator adds lines."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openline.errors import Unauthorized
from openline.services import accounts
from openline.services.accounts import Role
from tests.inproc import Node, place_and_ring


def client_for(node: Node, name: str, role: Role) -> TestClient:
    with node.station.tx() as tx:
        user_id = accounts.create_user(tx.conn, tx.now, name, role, "correct horse battery staple")
        token = accounts.issue_token(tx.conn, tx.now, user_id, "test")
    return TestClient(node.app, headers={"Authorization": f"Bearer {token}"})


def test_watch_officer_works_calls_but_cannot_add_lines(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    officer = client_for(b, "duty-officer", Role.WATCH_OFFICER)
    call_id = place_and_ring(a, b)
    assert officer.get("/api/v1/calls").json()[0]["id"] == call_id
    r = officer.post(f"/api/v1/calls/{call_id}/pickup")
    assert r.status_code == 200
    assert r.json()["picked_up_by"] == "moscow:duty-officer"
    assert officer.post(f"/api/v1/calls/{call_id}/messages", json={"text": "go ahead"}).status_code == 201

    before = b.snapshot()
    r = officer.post("/api/v1/lines", json={"card": a.station.card.to_json()})
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    assert "administrator" in r.json()["detail"]
    assert b.snapshot() == before


def test_passwords_are_argon2id_and_tokens_are_hashed(nodes: tuple[Node, Node]) -> None:
    from sqlalchemy import select

    from openline.adapters.schema import api_tokens, users

    a, _ = nodes
    with a.station.tx() as tx:
        user_id = accounts.create_user(tx.conn, tx.now, "senior", Role.WATCH_OFFICER, "a long passphrase!")
        token = accounts.issue_token(tx.conn, tx.now, user_id, "test")
    with a.station.db.read() as conn:
        row = conn.execute(select(users.c.password_hash).where(users.c.id == user_id)).one()
        stored = [r.token_hash for r in conn.execute(select(api_tokens.c.token_hash))]
        assert row.password_hash.startswith("$argon2id$")
        assert accounts.check_password(conn, "senior", "a long passphrase!").role is Role.WATCH_OFFICER
        with pytest.raises(Unauthorized, match="wrong password"):
            accounts.check_password(conn, "senior", "a long passphrase?")
        with pytest.raises(Unauthorized, match="unknown user"):
            accounts.check_password(conn, "nobody", "a long passphrase!")
    assert token not in stored
    assert accounts.hash_token(token) in stored
