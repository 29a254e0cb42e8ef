"""A station that moves to another address: its peers follow once its new address answers
a handshake signed by its pinned key (services/moves.py), or when an operator pins its new
card by hand (`PUT /lines/{peer}/card`, `openline line update`, the console's admin page).
In process, both backends; tests/test_e2e_moves.py does it with real `openline serve`
processes moving ports."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from openline.adapters.schema import audit, peers
from openline.adapters.transport import HANDSHAKE_PATH, TextAnswer, Transport
from openline.core import note
from openline.core.card import Card, cosigner_name, ledger_origin, make_card
from openline.core.clock import FakeClock
from openline.core.encoding import canonical
from openline.core.requestsig import sign_request
from openline.errors import PeerUnreachable
from openline.services import delivery, ledger, lines, moves
from openline.services.accounts import Role
from openline.services.station import Station
from tests.inproc import Node, make_node, show
from tests.notice_docs import cli_table
from tests.test_console import add_user, browser, csrf_of, log_in
from tests.test_roles import client_for

OLD = "http://moscow.test:8000"
NEW = "http://moscow.moved.test:8443"


@dataclass
class Moving:
    """A transport to a peer whose station has left some addresses: a request there fails
    as a connection refused would."""

    inner: Transport
    gone: set[str] = field(default_factory=set)
    sent_to: list[str] = field(default_factory=list)

    def post(self, peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        self.sent_to.append(base_url)
        if base_url in self.gone:
            raise PeerUnreachable(f"{peer} at {base_url}: connection refused (test: nobody there)")
        return self.inner.post(peer, base_url, path, payload)

    def post_text(self, peer: str, base_url: str, path: str, body: str) -> TextAnswer:
        if base_url in self.gone:
            raise PeerUnreachable(f"{peer} at {base_url}: connection refused (test: nobody there)")
        return self.inner.post_text(peer, base_url, path, body)

    def close(self) -> None:
        self.inner.close()


def _moving(node: Node) -> Moving:
    assert node.transport is not None
    moving = Moving(node.transport.inner)
    node.transport.inner = moving
    return moving


def _move(station: Station, url: str) -> Card:
    """What restarting a station with another `url` in its settings does to its card."""
    station.card = make_card(station.keys, station.name, [url], list(station.card.languages))
    return station.card


def _resigned(station: Station, **changes: Any) -> dict[str, Any]:
    """The station's card with `changes`, signed by its own key."""
    draft = dataclasses.replace(station.card, **changes)
    return dataclasses.replace(draft, signature=station.keys.sign(canonical(draft.unsigned()))).to_json()


def _ledger_key(station: Station, other: Station) -> str:
    """A checkpoint key named as `station`'s, but `other`'s."""
    origin = ledger_origin(station.name, station.card.fingerprint)
    return note.verifier(origin, other.keys.ledger.public_key()).text()


def _pinned(node: Node, peer: str) -> Any:
    with node.station.db.read() as conn:
        return conn.execute(select(peers).where(peers.c.name == peer)).one()


def _ledger(node: Node, kind: str) -> list[dict[str, Any]]:
    ledger.integrate(node.station)  # what the ledger worker does in `openline serve`
    with node.station.db.read() as conn:
        size = ledger.head(conn).size
        entries = [json.loads(d) for _, d in ledger.entries(conn, max(0, size - 256), size)] if size else []
    return [e for e in entries if e["type"] == kind]


def _audit(node: Node, action: str) -> list[Any]:
    with node.station.db.read() as conn:
        return list(conn.execute(select(audit).where(audit.c.action == action)).all())


def _old_handshake(node: Node, card: dict[str, Any]) -> tuple[bytes, str]:
    """A handshake request `node` signed while it had `card`: what a recording holds."""
    line = node.line()
    body = json.dumps(
        {"line": line.id, "nonce": "recorded-nonce-1", "terms": lines.terms_of(line), "card": card}
    ).encode()
    return body, sign_request(node.station.keys, "POST", HANDSHAKE_PATH, node.name, "stuttgart", body)


def test_a_station_that_moved_is_followed_once_its_new_address_answers(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    to_moscow = _moving(a)
    to_moscow.gone.add(OLD)  # moscow has left its old address...
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "Before the move"})
    call_id = r.json()["id"]
    assert a.deliver() is delivery.Outcome.FAILED  # ...so this waits for it
    card = _move(b.station, NEW)

    # moscow starts at its new address and announces itself: stuttgart checks the new
    # address with a handshake of its own there before it pins the card.
    assert delivery.announce(b.station, b.transport, b.line_id()) is True
    assert to_moscow.sent_to[-1] == NEW
    pinned = _pinned(a, "moscow")
    assert (pinned.url, json.loads(pinned.card)) == (NEW, card.to_json())
    assert a.line().retry_at is None  # retried there at once
    [entry] = _ledger(a, "line.card")
    assert (entry["urls"], entry["previous"], entry["via"], entry["actor"]) == (
        [NEW],
        [OLD],
        "handshake",
        "system",
    )
    assert entry["fingerprint"] == card.fingerprint
    [row] = _audit(a, "line.card")
    assert row.target == f"moscow: {OLD} -> {NEW}"

    a.drain()
    b.drain()
    assert show(b, call_id)["state"] == "ringing"
    assert to_moscow.sent_to[-1] == NEW
    # A second announcement finds the card pinned: no new entry, no probe.
    probes = len(to_moscow.sent_to)
    assert delivery.announce(b.station, b.transport, b.line_id()) is True
    assert len(to_moscow.sent_to) == probes
    assert len(_ledger(a, "line.card")) == 1


def test_two_copies_of_a_station_moving_the_line_back_and_forth_are_told(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restored station runs at a new address, and the old machine comes back to life
    at the old one: both hold its keys, and each one's handshake moves its peer's line to
    it. Nothing tells the two apart, so the watch floor is told of each move: once for
    each pair of addresses, not at every handshake."""
    a, b = nodes
    for url in (NEW, OLD, NEW, OLD):
        _move(b.station, url)
        assert delivery.announce(b.station, b.transport, b.line_id()) is True
        assert _pinned(a, "moscow").url == url
        clock.advance(61)
    moved = [x for x in a.api.get("/api/v1/alerts").json() if x["kind"] == "peer_moved"]
    assert sorted(x["subject"] for x in moved) == sorted([f"moscow {OLD} -> {NEW}", f"moscow {NEW} -> {OLD}"])
    assert {(x["detail"]["url"], tuple(x["detail"]["previous"])) for x in moved} == {
        (NEW, (OLD,)),
        (OLD, (NEW,)),
    }
    # The watch board says what it may mean, and what to do.
    add_user(a, "duty", Role.WATCH_OFFICER)
    page = browser(a)
    log_in(page, "duty")
    board = page.get("/").text
    assert f"moscow now answers at {OLD} (was {NEW}): if moscow did not move, two copies of it" in board
    assert 'href="/admin"' not in board  # a page the officer on watch may not open
    # So does `openline alerts`, not only the bare subject.
    listed = " ".join(cli_table(a, monkeypatch, "alerts", columns=200).split())
    assert f"moscow now answers at {OLD} (was {NEW}): if it did not move, two copies of it" in listed
    assert "an administrator can suspend the line" in listed
    # By hand, the administrator knows: no alert.
    _move(b.station, "http://moscow.third.test:8000")
    r = a.api.put("/api/v1/lines/moscow/card", json={"card": b.station.card.to_json()})
    assert r.status_code == 200, r.text
    assert len([x for x in a.api.get("/api/v1/alerts").json() if x["kind"] == "peer_moved"]) == 2


def test_a_new_address_nobody_answers_at_is_not_pinned(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    """A station that moved where its peer cannot reach it (a firewall, a wrong URL in its
    settings): the peer keeps the card it has, says why, and the station keeps trying."""
    a, b = nodes
    to_moscow = _moving(a)
    to_moscow.gone.add(NEW)
    before = _pinned(a, "moscow")
    _move(b.station, NEW)
    assert delivery.announce(b.station, b.transport, b.line_id()) is False
    assert to_moscow.sent_to[-1] == NEW
    assert _pinned(a, "moscow") == before
    assert _ledger(a, "line.card") == []
    to_moscow.gone.clear()  # the firewall is opened...
    # ...but stuttgart does not send to an address moscow names again within a minute of
    # a failure there: a peer must not use it to scan stuttgart's network.
    probes = len(to_moscow.sent_to)
    assert delivery.announce(b.station, b.transport, b.line_id(), quiet=True) is False
    assert len(to_moscow.sent_to) == probes
    clock.advance(moves.RETRY_AFTER_S)
    assert delivery.announce(b.station, b.transport, b.line_id(), quiet=True) is True
    assert _pinned(a, "moscow").url == NEW


def test_a_replayed_handshake_does_not_send_a_station_back_to_its_old_address(
    nodes: tuple[Node, Node],
) -> None:
    """Station requests are signed but not fresh. A recording of moscow's handshake from
    before its move, replayed, names the old address: stuttgart asks there, nobody holding
    moscow's key answers, and the new address stays pinned."""
    a, b = nodes
    to_moscow = _moving(a)
    recorded = _old_handshake(b, b.station.card.to_json())
    _move(b.station, NEW)
    assert delivery.announce(b.station, b.transport, b.line_id()) is True
    to_moscow.gone.add(OLD)
    pinned = _pinned(a, "moscow")

    body, auth = recorded
    assert b.peer_http is not None  # moscow's client to stuttgart's app
    r = b.peer_http.post(HANDSHAKE_PATH, content=body, headers={"Authorization": auth})
    assert r.status_code == 200, r.text
    assert r.json()["card"] == f"kept {NEW}: no handshake answered by moscow at {OLD}"  # not why
    assert to_moscow.sent_to[-1] == OLD
    assert _pinned(a, "moscow") == pinned
    assert len(_ledger(a, "line.card")) == 1


def test_an_operator_pins_a_moved_station_s_new_card(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    card = _move(b.station, NEW).to_json()
    r = a.api.put("/api/v1/lines/moscow/card", json={"card": card})
    assert r.status_code == 200, r.text
    assert (r.json()["peer"], r.json()["peer_url"]) == ("moscow", NEW)
    assert json.loads(_pinned(a, "moscow").card) == card
    [entry] = _ledger(a, "line.card")
    assert (entry["via"], entry["actor"], entry["previous"]) == ("card", "admin", [OLD])
    [row] = _audit(a, "line.card")
    assert row.actor == "admin"
    # The same card again changes nothing, and says so.
    r = a.api.put("/api/v1/lines/moscow/card", json={"card": card})
    assert r.status_code == 409
    assert "pinned with this very card" in r.json()["detail"]


def test_adding_a_moved_station_s_card_again_points_to_line_update(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    card = _move(b.station, NEW).to_json()
    before = a.snapshot()
    r = a.api.post("/api/v1/lines", json={"card": card})
    assert r.status_code == 409
    assert (
        "another address (http://moscow.moved.test:8443; pinned: http://moscow.test:8000)"
        in r.json()["detail"]
    )
    assert "openline line update CARD_FILE" in r.json()["detail"]
    assert a.snapshot() == before


def test_a_card_that_cannot_replace_the_pinned_one_is_refused_and_changes_nothing(
    tmp_path: Path, nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    impostor = make_node(tmp_path / "elsewhere", "moscow", clock, None)  # same name, other keys
    stranger = make_node(tmp_path / "elsewhere", "kyiv", clock, None)
    try:
        moved = _move(b.station, NEW).to_json()
        tampered = {**moved, "urls": ["http://evil.test"]}  # the signature no longer covers it
        other_ledger_key = _resigned(b.station, ledger_key=_ledger_key(b.station, impostor.station))
        cases: list[tuple[str, Any, int, str, str]] = [
            ("moscow", impostor.station.card.to_json(), 400, "key_changed", "Refusing a new key"),
            ("kyiv", stranger.station.card.to_json(), 404, "not_found", "no pinned station named 'kyiv'"),
            ("moscow", tampered, 400, "bad_card", "signature"),
            ("moscow", other_ledger_key, 400, "key_changed", "Refusing a new key"),
            ("stuttgart", moved, 422, "invalid_input", "not a card of 'stuttgart': it names 'moscow'"),
            ("moscow", {"name": "moscow"}, 400, "bad_card", "missing fields"),
        ]
        officer = client_for(a, "duty", Role.WATCH_OFFICER)
        before = a.snapshot()
        for peer, card, status, code, words in cases:
            r = a.api.put(f"/api/v1/lines/{peer}/card", json={"card": card})
            assert (r.status_code, r.json()["code"]) == (status, code), (peer, r.text)
            assert words in r.json()["detail"], r.text
        r = a.api.put("/api/v1/lines/moscow/card", json={"card": moved, "extra": 1})
        assert r.status_code == 422
        r = officer.put("/api/v1/lines/moscow/card", json={"card": moved})
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), r.text
        assert a.snapshot() == before
    finally:
        for n in (impostor, stranger):
            n.station.db.dispose()


def test_a_handshake_whose_card_names_another_witness_key_is_refused(nodes: tuple[Node, Node]) -> None:
    """Only the address and the languages of a pinned card may change: a handshake whose
    card, signed by the pinned key, names another cosigning key is refused, and the
    pinned card stays."""
    a, b = nodes
    before = _pinned(a, "moscow")
    other = note.verifier(
        cosigner_name("moscow", b.station.card.fingerprint),
        Ed25519PrivateKey.generate().public_key(),
        note.COSIGNATURE_V1,
    )
    card = _resigned(b.station, urls=(NEW,), cosigner_key=other.text())
    line = b.line()
    body = json.dumps(
        {"line": line.id, "nonce": "abcdefgh12", "terms": lines.terms_of(line), "card": card}
    ).encode()
    auth = sign_request(b.station.keys, "POST", HANDSHAKE_PATH, "moscow", "stuttgart", body)
    assert b.peer_http is not None
    r = b.peer_http.post(HANDSHAKE_PATH, content=body, headers={"Authorization": auth})
    assert (r.status_code, r.json()["code"]) == (400, "key_changed"), r.text
    assert _pinned(a, "moscow") == before


def test_an_administrator_pins_a_moved_station_s_card_in_the_console(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    add_user(a, "chief", Role.ADMINISTRATOR)
    c = browser(a)
    log_in(c, "chief")
    page = c.get("/admin").text
    assert f'<p class="quiet" data-line-address="moscow">Reached at {OLD}' in page
    assert 'action="/admin/lines/moscow/card"' in page
    token = csrf_of(page)
    before = a.snapshot()
    r = c.post("/admin/lines/moscow/card", data={"csrf": token, "card": json.dumps(a.station.card.to_json())})
    assert r.status_code == 422
    assert "that is not a card of &#39;moscow&#39;: it names &#39;stuttgart&#39;" in r.text
    r = c.post("/admin/lines/moscow/card", data={"csrf": token, "card": "{not json"})
    assert r.status_code == 422
    assert a.snapshot() == before
    card = _move(b.station, NEW)
    r = c.post("/admin/lines/moscow/card", data={"csrf": token, "card": json.dumps(card.to_json())})
    assert r.status_code == 200, r.text
    assert f"moscow is now reached at {NEW}; its fingerprint is unchanged." in r.text
    assert f'data-line-address="moscow">Reached at {NEW}' in r.text
    [entry] = _ledger(a, "line.card")
    assert entry["actor"] == "chief"
