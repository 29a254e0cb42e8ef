"""What a client integrating through the local API can count on (docs/api.md): a mistyped
query parameter or a body in another media type is refused, naming what is taken; a body
that cannot be read is refused in our codes; a 401 says how to authenticate; and the
published OpenAPI document says all of that. Each refusal changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.inproc import Node

CALL = {"peer": "moscow", "subject": "Convoy at checkpoint 4"}


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/api/v1/calls?stat=closed", "unknown query parameter 'stat': /api/v1/calls takes direction,"),
        ("/api/v1/alerts?opne=true", "unknown query parameter 'opne'"),
        ("/api/v1/notices?categroy=maritime", "unknown query parameter 'categroy'"),
        ("/api/v1/station?verbose=1", "/api/v1/station takes no query parameters"),
        ("/api/v1/calls?state=closed&offset=2", "unknown query parameter 'offset'"),
        ("/api/v1/calls?state=closed&state=missed", "query parameter 'state' given more than once"),
        ("/api/v1/audit?limit=1&limit=2", "query parameter 'limit' given more than once"),
    ],
)
def test_a_mistyped_query_parameter_is_refused(nodes: tuple[Node, Node], path: str, said: str) -> None:
    """`?stat=closed` used to answer with every call, as if no filter had been given."""
    a, _ = nodes
    r = a.api.get(path)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "invalid_input"
    assert said in r.json()["detail"]


def test_the_query_parameters_an_endpoint_takes_still_work(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    a.api.post("/api/v1/calls", json=CALL)
    assert len(a.api.get("/api/v1/calls?state=placed&limit=5&peer=moscow").json()) == 1
    assert a.api.get("/api/v1/calls?state=closed").json() == []


@pytest.mark.parametrize(
    ("content_type", "got"),
    [
        ("text/plain", "'text/plain'"),
        ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
        ("application/xml", "'application/xml'"),
        (None, "no Content-Type"),
    ],
)
def test_a_body_in_another_media_type_is_refused_415(
    nodes: tuple[Node, Node], content_type: str | None, got: str
) -> None:
    a, _ = nodes
    before = a.snapshot()
    body = b'{"peer": "moscow", "subject": "Convoy at checkpoint 4"}'
    headers = {} if content_type is None else {"content-type": content_type}
    r = a.api.post("/api/v1/calls", content=body, headers=headers)
    assert r.status_code == 415, r.text
    assert r.headers["accept"] == "application/json"
    assert r.json()["code"] == "unsupported_media_type"
    assert r.json()["detail"] == f"request body: expected application/json, got {got}"
    assert a.snapshot() == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_bodies_are_taken(nodes: tuple[Node, Node], content_type: str) -> None:
    a, _ = nodes
    headers = {"content-type": content_type}
    r = a.api.post("/api/v1/calls", content=b'{"peer": "moscow", "subject": "x"}', headers=headers)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"peer": "\xff", "subject": "x"}', "request body: not UTF-8 text (byte 10 is 0xff)"),
        (b"[" * 100_000 + b"]" * 100_000, "request body: JSON nested too deeply"),
    ],
)
def test_an_unreadable_body_is_invalid_input(nodes: tuple[Node, Node], body: bytes, said: str) -> None:
    """Both were a 400 "There was an error parsing the body" (FastAPI's words)."""
    a, _ = nodes
    before = a.snapshot()
    r = a.api.post("/api/v1/calls", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert r.json()["detail"] == said
    assert a.snapshot() == before


def test_a_chunked_body_over_the_limit_is_oversize_as_a_declared_one_is(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    limit = a.app.state.max_request_bytes
    before = a.snapshot()

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(limit // 2**20 + 2):
            yield b" " * 2**20

    r = a.api.post("/api/v1/calls", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "oversize"
    assert r.json()["title"] == "Request too large"  # as one that declares its length
    assert r.json()["detail"] == f"request body: more than {limit} bytes"
    assert a.snapshot() == before


def test_a_401_says_how_to_authenticate(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    r = a.api.get("/api/v1/calls", headers={"Authorization": "Bearer olt_not-a-token"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="openline"'
    r = a.api.post("/_openline/v1/handshake", json={}, headers={"Authorization": ""})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "OpenLine"


def test_the_openapi_document_names_authentication_and_errors(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    doc = a.api.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["token"]["description"],
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    operations = [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]
    assert len(operations) > 60
    for path, method, op in operations:
        assert op["responses"]["default"]["content"] == problem, (method, path)
        if "422" in op["responses"]:
            assert op["responses"]["422"]["content"] == problem, (method, path)
        if path.startswith("/api/"):
            assert op["security"] == [{"token": []}], (method, path)
        elif path.startswith("/_openline/"):
            assert op["security"] == [{"station": []}], (method, path)
    keyed = {
        (path, method)
        for path, method, op in operations
        if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
    }
    assert keyed == {
        ("/api/v1/calls", "post"),
        ("/api/v1/calls/{call_id}/messages", "post"),
        ("/api/v1/notices", "post"),
    }
    # A real refusal matches the documented shape.
    refused = a.api.post("/api/v1/calls", json={"peer": "moscow"}).json()
    assert set(doc["components"]["schemas"]["Problem"]["required"]) <= set(refused)
    assert refused["code"] in doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]


@pytest.mark.parametrize(
    "path", ["/healthz", "/api/v1/station", "/api/v1/calls", "/login", "/api/v1/no-such-thing"]
)
def test_head_is_answered_wherever_get_is(nodes: tuple[Node, Node], path: str) -> None:
    """A monitor's `HEAD /healthz` was a 405: FastAPI routes take only the methods named."""
    a, _ = nodes
    got = a.api.get(path)
    head = a.api.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]


def test_head_where_get_is_not_taken_is_refused_as_get_would_be(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    call = a.api.post("/api/v1/calls", json=CALL).json()
    before = a.snapshot()
    r = a.api.head(f"/api/v1/calls/{call['id']}/pickup")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert a.snapshot() == before


@pytest.mark.parametrize("path", ["/api/v1/calls", "/api/v1/no-such-thing", "/api/v1/notices"])
def test_no_api_answer_is_kept_by_a_browser_or_proxy(nodes: tuple[Node, Node], path: str) -> None:
    """The console's pages said no-store; the API's answers, which carry the same subjects
    and messages, said nothing."""
    a, _ = nodes
    a.api.post("/api/v1/calls", json=CALL)
    assert a.api.get(path).headers["cache-control"] == "no-store"
    assert a.api.head(path).headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/calls", 200),
        ("HEAD", "/api/v1/calls", 200),
        ("GET", "/api/v1/no-such-thing", 404),
        ("POST", "/api/v1/calls", 422),
        ("GET", "/api/v1/calls?peer=%00", 400),
        ("GET", "/healthz", 200),
        ("GET", "/no-such-page", 404),
    ],
)
def test_every_answer_names_the_station(
    nodes: tuple[Node, Node], method: str, path: str, status: int
) -> None:
    """How the CLI tells its station from another server answering JSON at its URL."""
    a, _ = nodes
    r = a.api.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == status, r.text
    assert r.headers["openline-station"] == "stuttgart"
    unauthenticated = a.api.request(method, path, headers={"Authorization": "Bearer nope"})
    assert unauthenticated.headers["openline-station"] == "stuttgart"


def test_an_unexpected_error_names_the_station_too(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette answers it outside every middleware: the handler names the station itself."""
    a, _ = nodes

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(type(a.station.card), "to_json", broken)
    client = TestClient(a.app, headers=a.api.headers, raise_server_exceptions=False)
    r = client.get("/api/v1/station")
    assert (r.status_code, r.json()["code"]) == (500, "internal")
    assert r.headers["openline-station"] == "stuttgart"
