"""Every kind of bad envelope or request is refused with its code and changes nothing."""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
from typing import Any

import pytest
from sqlalchemy import select

from openline.adapters.schema import alerts, envelopes, ledger_pending, lines
from openline.core.clock import rfc3339
from openline.core.envelope import MAX_BODY_BYTES, make_envelope
from openline.core.keys import StationKeys, encryption_public_key
from openline.core.requestsig import sign_request
from openline.services.outbox import new_id
from tests.inproc import Node, picked_up, wire_of

BATCH = "/_openline/v1/send/{}"


def post_signed(
    sender: Node,
    receiver: Node,
    payload: Any,
    *,
    keys: StationKeys | None = None,
    origin: str | None = None,
    destination: str | None = None,
    raw: bytes | None = None,
    path: str | None = None,
) -> Any:
    """POST a batch (or to another station endpoint, `path`) to `receiver`, signed as
    `sender` would (or as told)."""
    assert receiver.peer_http is not None
    path = path or BATCH.format(new_id())
    body = raw if raw is not None else json.dumps(payload).encode()
    auth = sign_request(
        keys or sender.station.keys, "POST", path, origin or sender.name, destination or receiver.name, body
    )
    client = sender.peer_http
    assert client is not None
    return client.post(
        path, content=body, headers={"Authorization": auth, "Content-Type": "application/json"}
    )


def pending_wire(node: Node) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from openline.adapters.schema import envelopes

    with node.station.db.read() as conn:
        rows = conn.execute(
            select(envelopes.c.wire)
            .where(envelopes.c.direction == "out", envelopes.c.delivered_at.is_(None))
            .order_by(envelopes.c.seq)
        ).all()
    return [json.loads(r.wire) for r in rows]


@pytest.fixture
def queued(nodes: tuple[Node, Node]) -> tuple[Node, Node, dict[str, Any]]:
    """A call in progress and one message from stuttgart not yet delivered to moscow."""
    a, b = nodes
    call_id = picked_up(a, b)
    r = a.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "secret text"})
    assert r.status_code == 201
    (env,) = pending_wire(a)
    return a, b, env


def refused_code(response: Any) -> str:
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["status"] == "refused", result
    return str(result["error"]["code"])


def resign(node: Node, header: dict[str, Any]) -> str:
    from openline.core.encoding import canonical

    return node.station.keys.sign(canonical(header))


def test_valid_envelope_is_stored_once_and_retry_gets_the_same_receipt(queued: Any) -> None:
    a, b, env = queued
    first = post_signed(a, b, {"envelopes": [env]}).json()["results"][0]
    assert first["status"] == "stored"
    before = b.snapshot()
    again = post_signed(a, b, {"envelopes": [env]}).json()["results"][0]
    assert again["status"] == "duplicate"
    assert again["receipt"] == first["receipt"]
    assert b.snapshot() == before


@pytest.mark.parametrize("field", ["sig", "body", "header.kind", "header.time", "header.ref"])
def test_tampered_envelope_is_refused_as_bad_signature(queued: Any, field: str) -> None:
    a, b, env = queued
    bad = copy.deepcopy(env)
    if field == "sig":
        bad["sig"] = ("A" if bad["sig"][0] != "A" else "B") + bad["sig"][1:]
    elif field == "body":
        bad["body"] = ("A" if bad["body"][5] != "A" else "B").join([bad["body"][:5], bad["body"][6:]])
    elif field == "header.kind":
        bad["header"]["kind"] = "call.close"
    elif field == "header.time":
        bad["header"]["time"] = rfc3339(0)
    else:
        bad["header"]["ref"] = new_id()
    before = b.snapshot()
    assert refused_code(post_signed(a, b, {"envelopes": [bad]})) == "bad_signature"
    assert b.snapshot() == before


def test_replayed_sequence_number_is_refused(queued: Any) -> None:
    a, b, env = queued
    assert post_signed(a, b, {"envelopes": [env]}).json()["results"][0]["status"] == "stored"
    # A validly signed envelope that reuses an old sequence number under a new id.
    replay = copy.deepcopy(env)
    replay["header"]["id"] = new_id()
    replay["sig"] = resign(a, replay["header"])
    before = b.snapshot()
    assert refused_code(post_signed(a, b, {"envelopes": [replay]})) == "replay"
    assert b.snapshot() == before


def test_sequence_gap_is_refused(queued: Any) -> None:
    a, b, env = queued
    gap = copy.deepcopy(env)
    gap["header"]["seq"] += 1
    gap["sig"] = resign(a, gap["header"])
    before = b.snapshot()
    assert refused_code(post_signed(a, b, {"envelopes": [gap]})) == "sequence_gap"
    assert b.snapshot() == before


def test_wrong_destination_is_refused(queued: Any) -> None:
    a, b, env = queued
    wrong = copy.deepcopy(env)
    wrong["header"]["to"] = "ankara"
    wrong["sig"] = resign(a, wrong["header"])
    before = b.snapshot()
    assert refused_code(post_signed(a, b, {"envelopes": [wrong]})) == "wrong_destination"
    # The request itself addressed to another station: 401 before anything is read.
    r = post_signed(a, b, {"envelopes": [env]}, destination="ankara")
    assert (r.status_code, r.json()["code"]) == (401, "wrong_destination")
    assert b.snapshot() == before


def test_unknown_station_is_refused(queued: Any) -> None:
    a, b, env = queued
    stranger = StationKeys.generate()
    before = b.snapshot()
    r = post_signed(a, b, {"envelopes": [env]}, keys=stranger, origin="ankara")
    assert (r.status_code, r.json()["code"]) == (401, "unknown_station")
    assert r.headers["content-type"] == "application/problem+json"
    assert b.snapshot() == before


def test_request_signed_with_another_key_is_refused(queued: Any) -> None:
    a, b, env = queued
    before = b.snapshot()
    r = post_signed(a, b, {"envelopes": [env]}, keys=StationKeys.generate())
    assert (r.status_code, r.json()["code"]) == (401, "bad_signature")
    assert b.snapshot() == before


def test_oversize_body_is_refused(queued: Any) -> None:
    a, b, env = queued
    bkey = encryption_public_key(b.station.keys.encryption_public)
    big, _ = make_envelope(
        a.station.keys,
        recipient=bkey,
        envelope_id=new_id(),
        line=env["header"]["line"],
        sender=a.name,
        receiver=b.name,
        seq=env["header"]["seq"],
        time=env["header"]["time"],
        kind="call.say",
        ref=env["header"]["ref"],
        body={"text": "x" * (MAX_BODY_BYTES + 10)},
    )
    before = b.snapshot()
    assert refused_code(post_signed(a, b, {"envelopes": [big.to_json()]})) == "oversize"
    assert b.snapshot() == before


def test_oversize_request_is_refused(queued: Any) -> None:
    a, b, _env = queued
    before = b.snapshot()
    r = post_signed(a, b, None, raw=b"{" + b" " * (9 * 1024 * 1024) + b"}")
    assert (r.status_code, r.json()["code"]) == (400, "oversize")
    assert b.snapshot() == before


DEEP = b"[" * 100_000 + b"]" * 100_000  # the JSON decoder's RecursionError is no ValueError


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"envelopes": 3}',
        b'{"envelopes": [], "x": 1}',
        DEEP,
        b'{"envelopes": ' + DEEP + b"}",
    ],
)
def test_malformed_batch_is_refused(queued: Any, raw: bytes) -> None:
    a, b, _env = queued
    before = b.snapshot()
    r = post_signed(a, b, None, raw=raw)
    assert (r.status_code, r.json()["code"]) == (400, "malformed")
    assert b.snapshot() == before


@pytest.mark.parametrize("mangle", ["drop-field", "extra-field", "seq-string", "not-object", "bad-kind"])
def test_malformed_envelope_is_refused(queued: Any, mangle: str) -> None:
    a, b, env = queued
    bad: Any = copy.deepcopy(env)
    if mangle == "drop-field":
        del bad["header"]["seq"]
    elif mangle == "extra-field":
        bad["header"]["extra"] = 1
    elif mangle == "seq-string":
        bad["header"]["seq"] = "1"
    elif mangle == "bad-kind":
        bad["header"]["kind"] = "call.explode"
    else:
        bad = "envelope"
    before = b.snapshot()
    assert refused_code(post_signed(a, b, {"envelopes": [bad]})) == "malformed"
    assert b.snapshot() == before


def test_one_bad_envelope_does_not_fail_the_batch(queued: Any) -> None:
    a, b, env = queued
    bad = copy.deepcopy(env)
    bad["sig"] = "A" + bad["sig"][1:] if bad["sig"][0] != "A" else "B" + bad["sig"][1:]
    r = post_signed(a, b, {"envelopes": [bad, env]})
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses == ["refused", "stored"]


def test_unsigned_request_is_refused(queued: Any) -> None:
    a, b, env = queued
    before = b.snapshot()
    assert a.peer_http is not None
    r = a.peer_http.post(BATCH.format(new_id()), json={"envelopes": [env]})
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    assert b.snapshot() == before


STATION_ENDPOINTS = ["/_openline/v1/handshake", BATCH, "/_openline/v1/ledger/add-checkpoint"]


@pytest.mark.parametrize("endpoint", STATION_ENDPOINTS)
@pytest.mark.parametrize(
    ("signer", "code"),
    [
        ({"keys": "stranger", "origin": "ankara"}, "unknown_station"),
        ({"destination": "paris"}, "wrong_destination"),
        ({"keys": "stranger"}, "bad_signature"),
    ],
)
def test_every_station_endpoint_checks_the_request_signature(
    queued: Any, endpoint: str, signer: dict[str, str], code: str
) -> None:
    a, b, _env = queued
    keys = StationKeys.generate() if signer.get("keys") == "stranger" else None
    before = b.snapshot()
    r = post_signed(
        a,
        b,
        {},
        keys=keys,
        origin=signer.get("origin"),
        destination=signer.get("destination"),
        path=endpoint.format(new_id()),
    )
    assert (r.status_code, r.json()["code"]) == (401, code)
    assert r.headers["content-type"] == "application/problem+json"
    assert b.snapshot() == before


@pytest.mark.parametrize("endpoint", STATION_ENDPOINTS)
def test_every_station_endpoint_refuses_an_unsigned_request(queued: Any, endpoint: str) -> None:
    a, b, _env = queued
    before = b.snapshot()
    assert a.peer_http is not None
    r = a.peer_http.post(endpoint.format(new_id()), content=b"{}")
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    assert b.snapshot() == before


def test_a_checkpoint_that_is_not_utf8_is_refused_after_its_signature(queued: Any) -> None:
    a, b, _env = queued
    before = b.snapshot()
    r = post_signed(a, b, None, raw=b"\xff\xfe", path="/_openline/v1/ledger/add-checkpoint")
    assert (r.status_code, r.text) == (400, "request body is not UTF-8\n")
    assert b.snapshot() == before


def test_message_text_never_reaches_the_log(
    queued: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, env = queued
    bad = copy.deepcopy(env)
    bad["header"]["seq"] += 5
    bad["sig"] = resign(a, bad["header"])
    post_signed(a, b, {"envelopes": [bad]})
    a.drain()
    captured = capsys.readouterr()
    assert "secret text" not in captured.out + captured.err + caplog.text
    msg = wire_of(a, env["header"]["id"])
    assert "secret text" not in json.dumps(msg)


def test_a_request_refused_whole_is_logged(
    queued: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """As each refused envelope is: a forged signature, a declared size over the limit."""
    a, b, env = queued
    post_signed(a, b, {"envelopes": [env]}, keys=StationKeys.generate())
    post_signed(a, b, None, raw=b" " * (b.app.state.max_request_bytes + 1))
    logged = capsys.readouterr().out + caplog.text
    refused = [line for line in logged.splitlines() if "station request refused" in line]
    assert len(refused) == 2, logged
    assert "code=bad_signature" in refused[0]
    assert "code=oversize" in refused[1]


def test_a_chunked_body_is_cut_off_at_the_limit_not_read_whole(queued: Any) -> None:
    """A body sent in chunks declares no length. The station must stop reading where it
    passes the limit, before the request is authenticated (there is none here), or anyone
    who can reach the port could make it hold any amount in memory."""
    _a, b, _env = queued
    limit = b.app.state.max_request_bytes
    chunk = b"x" * 65536
    reads = 0

    async def receive() -> dict[str, Any]:  # four times the limit (a reader that takes it all ends)
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": chunk, "more_body": reads * len(chunk) < 4 * limit}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/_openline/v1/send/{new_id()}",
        "raw_path": b"",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    before = b.snapshot()
    asyncio.run(b.app(scope, receive, send))
    assert reads <= limit // len(chunk) + 2  # stopped at the limit
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(body)["code"] == "oversize"
    assert b.snapshot() == before


def crafted(a: Node, b: Node, env: dict[str, Any], kind: str, body: dict[str, Any], **header: Any) -> Any:
    """An envelope from stuttgart, validly signed and sealed, in place of `env` (the next
    one moscow expects), with this kind and body (and header fields)."""
    from openline.services.ledger import with_salt

    h = env["header"]
    made, _ = make_envelope(
        a.station.keys,
        recipient=encryption_public_key(b.station.keys.encryption_public),
        envelope_id=new_id(),
        line=h["line"],
        sender=a.name,
        receiver=b.name,
        seq=h["seq"],
        time=header.get("time", h["time"]),
        kind=kind,
        ref=header.get("ref", h["ref"]),
        body=with_salt(body),
    )
    return made.to_json()


@pytest.mark.parametrize(
    ("kind", "body", "why"),
    [
        ("call.pickup", {"by": "\x1b[2J\x1b[31mEVIL\x00"}, "by must be a user name"),
        ("call.pickup", {"by": {"x": [1]}}, "by must be a user name"),
        ("call.pickup", {}, "missing ['by']"),
        ("call.missed", {"deadline_at": {"evil": 1}}, "deadline_at is not a time"),
        ("call.say", {"text": "hello", "lang": "en", "evil": "\x1b[2J"}, "unknown fields ['evil']"),
        ("call.cancel", {"why": "no"}, "unknown fields ['why']"),
        ("notice.ack", {"by": "<b>boris</b>"}, "by must be a user name"),
    ],
)
def test_a_body_whose_fields_do_not_fit_its_kind_is_refused(
    queued: Any, kind: str, body: dict[str, Any], why: str
) -> None:
    """The peer's body is stored and shown (a pick-up's `by` in `picked_up_by`, on the
    console and the CLI): a field that does not fit, or one no kind has, is `malformed`.
    The envelope is the peer's and in its turn, so it is refused for good: nothing of it is
    applied, and it takes its sequence number (`refused_for_good`)."""
    a, b, env = queued
    before = b.snapshot()
    bad = crafted(a, b, env, kind, body)
    r = post_signed(a, b, {"envelopes": [bad]})
    assert refused_code(r) == "malformed"
    assert why in r.json()["results"][0]["error"]["detail"]
    refused_for_good(b, before, bad, r.json()["results"][0])


def refused_for_good(node: Node, before: dict[str, Any], env: dict[str, Any], result: dict[str, Any]) -> None:
    """What a refusal for good changed at the receiver, and nothing else: the envelope kept
    with our signed refusal, the line's next sequence number, one ledger entry and one
    alert. No call, notice, event or message."""
    after = node.snapshot()
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"envelopes", "lines", "ledger_pending", "alerts"}, changed
    refusal = result["refusal"]
    assert refusal["type"] == "refusal"
    assert refusal["envelope"] == env["header"]["id"]
    assert refusal["error"] == result["error"]
    assert refusal["from"] == node.name
    with node.station.db.read() as conn:
        row = conn.execute(select(envelopes).where(envelopes.c.id == env["header"]["id"])).one()
        line = conn.execute(select(lines.c.next_in_seq)).one()
        (entry,) = [
            json.loads(r.data)
            for r in conn.execute(select(ledger_pending))
            if tuple(r) not in before["ledger_pending"]
        ]
        (alert,) = [r for r in conn.execute(select(alerts)) if tuple(r) not in before["alerts"]]
    assert (row.direction, row.seq) == ("in", env["header"]["seq"])
    assert row.refused == f"{result['error']['code']}: {result['error']['detail']}"
    assert json.loads(row.receipt) == refusal
    assert line.next_in_seq == env["header"]["seq"] + 1
    assert entry["type"] == "envelope.refused"
    assert entry["envelope"] == env["header"]["id"]
    assert entry["code"] == result["error"]["code"]
    assert "content" not in entry
    assert (alert.kind, alert.subject) == ("envelope_refused", env["header"]["id"])


@pytest.mark.parametrize("time", ["9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+23:59"])
def test_a_time_no_station_can_write_is_refused_not_a_server_error(queued: Any, time: str) -> None:
    """A valid RFC 3339 time whose offset takes it past 9999 (or before 0001) in UTC: it
    was stored, then the ledger's formatting failed, and the whole batch was a 500."""
    a, b, env = queued
    before = b.snapshot()
    bad = crafted(a, b, env, "call.say", {"text": "hello", "lang": "en"}, time=time)
    r = post_signed(a, b, {"envelopes": [bad]})
    assert refused_code(r) == "malformed"
    assert b.snapshot() == before
    assert post_signed(a, b, {"envelopes": [env]}).json()["results"][0]["status"] == "stored"  # still serving


@pytest.mark.parametrize(
    "raw",
    [
        b'{"envelopes": []}',  # a batch has 1 to 50
        b'{"envelopes": [], "envelopes": [1]}',  # a key twice
    ],
)
def test_an_empty_or_ambiguous_batch_is_refused(queued: Any, raw: bytes) -> None:
    a, b, _env = queued
    before = b.snapshot()
    r = post_signed(a, b, None, raw=raw)
    assert (r.status_code, r.json()["code"]) == (400, "malformed")
    assert b.snapshot() == before


def handshake_body(a: Node, b: Node, nonce: str, **terms: Any) -> bytes:
    """stuttgart's handshake to moscow, as `lines.initiate_handshake` makes it."""
    from openline.services.lines import terms_of

    line = b.line()
    return json.dumps(
        {
            "line": line.id,
            "nonce": nonce,
            "terms": {**terms_of(line), **terms},
            "card": a.station.card.to_json(),
        }
    ).encode()


def test_a_recorded_handshake_sent_again_is_refused_and_changes_nothing(nodes: tuple[Node, Node]) -> None:
    """Its request signature has no time in it: the same bytes, sent again by whoever
    recorded them, grew moscow's ledger by a line.handshake entry each time and reset the
    line's backoff."""
    a, b = nodes
    raw = handshake_body(a, b, "n" * 16)
    first = post_signed(a, b, None, raw=raw, path="/_openline/v1/handshake")
    assert first.status_code == 200, first.text
    before = b.snapshot()
    for _ in range(3):
        again = post_signed(a, b, None, raw=raw, path="/_openline/v1/handshake")
        assert (again.status_code, again.json()["code"]) == (400, "replay")
    assert b.snapshot() == before
    fresh = post_signed(a, b, None, raw=handshake_body(a, b, "m" * 16), path="/_openline/v1/handshake")
    assert fresh.status_code == 200, fresh.text


@pytest.mark.parametrize(
    "terms",
    [
        {"junk": "J" * 100_000},
        {"answer_deadline_s": "60"},
        {"answer_deadline_s": -1},
        {"margins": {"horizontal_m": float("nan"), "vertical_m": 0, "minutes": 0}},
        {"margins": {"horizontal_m": 0, "vertical_m": 0, "minutes": 1.5}},
    ],
)
def test_handshake_terms_of_the_wrong_shape_are_refused_without_an_alert(
    nodes: tuple[Node, Node], terms: dict[str, Any]
) -> None:
    """A peer's terms go into an alert and the log when they differ from ours: checked
    first (a peer sent 1 MB of them, kept in an alert per handshake)."""
    a, b = nodes
    before = b.snapshot()
    body = handshake_body(a, b, secrets.token_hex(8), **terms).replace(b"NaN", b"1e999")
    r = post_signed(a, b, None, raw=body, path="/_openline/v1/handshake")
    assert (r.status_code, r.json()["code"]) == (400, "malformed"), r.text
    assert b.snapshot() == before


def test_a_peer_that_keeps_changing_its_terms_raises_one_alert_at_a_time(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    for deadline in range(61, 66):
        body = handshake_body(a, b, secrets.token_hex(8), answer_deadline_s=deadline)
        r = post_signed(a, b, None, raw=body, path="/_openline/v1/handshake")
        assert (r.status_code, r.json()["code"]) == (409, "conflict")
    (told,) = [x for x in b.api.get("/api/v1/alerts").json() if x["kind"] == "line_terms_differ"]
    assert told["detail"]["theirs"]["answer_deadline_s"] == 61
    assert b.api.post(f"/api/v1/alerts/{told['id']}/acknowledge").status_code == 200
    body = handshake_body(a, b, secrets.token_hex(8), answer_deadline_s=70)
    assert post_signed(a, b, None, raw=body, path="/_openline/v1/handshake").status_code == 409
    kinds = [x["kind"] for x in b.api.get("/api/v1/alerts").json()]
    assert kinds.count("line_terms_differ") == 2  # once acknowledged, the next set is told


@pytest.mark.parametrize("batch_id", ["-" * 36, "0" * 36, "01A22105-04A9-790E-AA6A-05D6462DDA8D"])
def test_a_batch_id_that_is_no_uuid_is_refused(queued: Any, batch_id: str) -> None:
    """36 dashes passed the old check: a batch id is a lowercase UUID, like every id."""
    a, b, env = queued
    before = b.snapshot()
    r = post_signed(a, b, {"envelopes": [env]}, path=BATCH.format(batch_id))
    assert (r.status_code, r.json()["code"]) == (400, "malformed")
    assert b.snapshot() == before
