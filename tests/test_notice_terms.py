"""The line's notice deadline and separation margins: line terms agreed in the handshake,
applied by the conflict check (the componentwise maximum of both lines' margins for a
pair on two lines). Bad terms are refused and change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openline.adapters.transport import HttpTransport, Transport
from openline.core.clock import FakeClock, parse_rfc3339
from tests.inproc import Node, Switchable, make_node
from tests.notice_docs import HOUR, MINUTE, circle, east_of, send, show

TERMS = {"notice_deadline_s": 600, "margin_horizontal_m": 500, "margin_vertical_m": 0, "margin_minutes": 0}


def _wire(a: Node, b: Node) -> None:
    """What `tests.inproc.link` does before adding the cards: each station's requests go
    to the other's app."""
    a.peer_http, b.peer_http = TestClient(b.app), TestClient(a.app)
    a.transport = Switchable(HttpTransport(a.station.keys, a.name, client=a.peer_http))
    b.transport = Switchable(HttpTransport(b.station.keys, b.name, client=b.peer_http))
    a.app.state.transport, b.app.state.transport = a.transport, b.transport


def _add(x: Node, y: Node, **terms: Any) -> dict[str, Any]:
    r = x.api.post("/api/v1/lines", json={"card": y.station.card.to_json(), **terms})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def fresh(
    tmp_path: Path, clock: FakeClock, database_url: str | None, second_database_url: str | None
) -> Iterator[tuple[Node, Node]]:
    """stuttgart and moscow, able to reach each other, with no line yet."""
    a = make_node(tmp_path, "stuttgart", clock, database_url)
    b = make_node(tmp_path, "moscow", clock, second_database_url)
    _wire(a, b)
    try:
        yield a, b
    finally:
        for n in (a, b):
            n.station.db.dispose()


def _linked(a: Node, b: Node, **terms: Any) -> None:
    _add(a, b, **terms)
    assert _add(b, a, **terms)["handshake"] == "ok"


def test_the_terms_are_agreed_and_shown(fresh: tuple[Node, Node]) -> None:
    a, b = fresh
    _linked(a, b, **TERMS)
    for node in (a, b):
        (line,) = node.api.get("/api/v1/lines").json()
        assert line["state"] == "active"
        assert line["notice_deadline_s"] == 600
        assert line["margins"] == {"horizontal_m": 500.0, "vertical_m": 0.0, "minutes": 0}
    now = a.station.clock.now()
    sent = send(a, "moscow", circle(48.0, 9.0, 500, now + HOUR, now + 2 * HOUR))
    assert sent["margins"] == {"horizontal_m": 500.0, "vertical_m": 0.0, "minutes": 0}
    assert parse_rfc3339(sent["deadline_at"]) - parse_rfc3339(sent["sent_at"]) == 600 * 1_000_000
    a.drain()
    got = show(b, sent["id"])
    assert parse_rfc3339(got["deadline_at"]) - parse_rfc3339(got["delivered_at"]) == 600 * 1_000_000


@pytest.mark.parametrize(
    "differ",
    [
        {"notice_deadline_s": 601},
        {"margin_horizontal_m": 499.5},
        {"margin_vertical_m": 30},
        {"margin_minutes": 5},
    ],
)
def test_a_handshake_with_differing_terms_is_refused(
    fresh: tuple[Node, Node], differ: dict[str, Any]
) -> None:
    a, b = fresh
    _add(a, b, **TERMS)
    answer = _add(b, a, **(TERMS | differ))
    assert answer["state"] == "pending"
    assert "line terms differ" in answer["handshake"]
    for node in (a, b):
        (line,) = node.api.get("/api/v1/lines").json()
        assert line["state"] == "pending", node.name
    now = a.station.clock.now()
    notice = circle(48, 9, 500, now + HOUR, now + 2 * HOUR)
    r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": notice})
    assert r.status_code == 409
    assert r.json()["code"] == "line_not_active"


BAD_TERMS: list[tuple[dict[str, Any], str]] = [
    ({"notice_deadline_s": 59}, "notice_deadline_s"),
    ({"notice_deadline_s": 8 * 86_400}, "notice_deadline_s"),
    ({"margin_horizontal_m": -1}, "margin_horizontal_m"),
    ({"margin_horizontal_m": 100_001}, "margin_horizontal_m"),
    ({"margin_vertical_m": 10_001}, "margin_vertical_m"),
    ({"margin_vertical_m": "high"}, "margin_vertical_m"),
    ({"margin_minutes": 1441}, "margin_minutes"),
    ({"margin_minutes": 1.5}, "margin_minutes"),
]


def test_bad_terms_are_refused_and_change_nothing(fresh: tuple[Node, Node]) -> None:
    a, b = fresh
    for terms, field in BAD_TERMS:
        before = a.snapshot()
        r = a.api.post("/api/v1/lines", json={"card": b.station.card.to_json(), **terms})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_input"), (terms, r.text)
        assert field in r.json()["detail"], terms
        assert a.snapshot() == before, terms
    assert _add(a, b, notice_deadline_s=60)["notice_deadline_s"] == 60  # the lowest allowed


# The margins, one dimension at a time: a pair `gap` apart (metres, metres or minutes).
MARGIN = {"horizontal": "margin_horizontal_m", "vertical": "margin_vertical_m", "minutes": "margin_minutes"}


def _pair(node: Node, dimension: str, gap: int, lat: float) -> tuple[dict[str, Any], dict[str, Any]]:
    now = node.station.clock.now()
    start, end = now + HOUR, now + 2 * HOUR
    first = circle(lat, 9.0, 500, start, end, alt=(0, 1000))
    if dimension == "horizontal":  # the outlines `gap` metres apart
        east = east_of(lat, 9.0, 500 + gap + 500)
        second = circle(*east, 500, start, end, alt=(0, 1000))
    elif dimension == "vertical":  # the bands `gap` metres apart
        second = circle(lat, 9.0, 500, start, end, alt=(1000 + gap, 2000))
    else:  # `gap` minutes apart
        second = circle(lat, 9.0, 500, end + gap * MINUTE, end + gap * MINUTE + HOUR, alt=(0, 1000))
    return first, second


@pytest.mark.parametrize("dimension", sorted(MARGIN))
@pytest.mark.parametrize("margin", [0, 500])
def test_the_margins_decide_a_near_pair(fresh: tuple[Node, Node], dimension: str, margin: int) -> None:
    a, b = fresh
    _linked(a, b, **{MARGIN[dimension]: margin})
    near = _pair(a, dimension, 300, lat=48.0)
    far = _pair(a, dimension, 600, lat=52.0)  # 450 km from the near pair
    for (first_doc, second_doc), conflict in ((near, margin == 500), (far, False)):
        first = send(a, "moscow", first_doc)
        a.drain()
        second = send(b, "stuttgart", second_doc)
        b.drain()
        for node in (a, b):  # both stations hold the same terms and reach the same answer
            found = [c["other_notice"] for c in show(node, second["id"])["conflicts"]]
            assert found == ([first["id"]] if conflict else []), (node.name, dimension, margin)


@dataclass
class _Routed:
    """One station's requests, each to the app of the peer it is for."""

    by_peer: dict[str, Transport]

    def post(self, peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        return self.by_peer[peer].post(peer, base_url, path, payload)

    def post_text(self, peer: str, base_url: str, path: str, body: str) -> Any:
        return self.by_peer[peer].post_text(peer, base_url, path, body)

    def close(self) -> None:
        pass


def test_a_pair_on_two_lines_is_held_to_the_wider_margins(
    tmp_path: Path, clock: FakeClock, database_url: str | None
) -> None:
    hub = make_node(tmp_path, "stuttgart", clock, database_url)
    near, wide = make_node(tmp_path, "moscow", clock, None), make_node(tmp_path, "ankara", clock, None)
    try:
        hub.app.state.transport = _Routed(
            {
                p.name: HttpTransport(hub.station.keys, hub.name, client=TestClient(p.app))
                for p in (near, wide)
            }
        )
        for peer in (near, wide):
            peer.app.state.transport = HttpTransport(peer.station.keys, peer.name, client=TestClient(hub.app))
        _linked(hub, near)  # no margins
        _linked(hub, wide, margin_horizontal_m=500)
        now = clock.now()
        start, end = now + HOUR, now + 2 * HOUR
        west, east = east_of(48.0, 9.0, -1300), east_of(48.0, 9.0, 1300)
        middle = send(hub, "moscow", circle(48.0, 9.0, 500, start, end))
        # 300 m from `middle`, on the same line: its margins (none) apply, so clear.
        assert send(hub, "moscow", circle(*west, 500, start, end))["conflicts"] == []
        # 300 m from `middle`, on the line with 500 m: the wider margins apply.
        other_line = send(hub, "ankara", circle(*east, 500, start, end))
        assert [c["other_notice"] for c in other_line["conflicts"]] == [middle["id"]]
        # `middle` was checked under its line's margins (none) and lists the conflict with
        # the margins it was found under, its pair's: what makes 300 m apart a conflict.
        wider = {"horizontal_m": 500.0, "vertical_m": 0.0, "minutes": 0}
        got = show(hub, middle["id"])
        assert got["margins"] == {"horizontal_m": 0.0, "vertical_m": 0.0, "minutes": 0}
        assert [(c["other_notice"], c["margins"]) for c in got["conflicts"]] == [(other_line["id"], wider)]
    finally:
        for n in (hub, near, wide):
            n.station.db.dispose()
