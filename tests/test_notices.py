"""Notices between two stations in process: sent, delivered, acknowledged by a named
officer, rejected, withdrawn, amended; a conflict raises an alert on both watch floors;
bad input is refused and changes nothing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from openline.core import formats
from openline.core.clock import rfc3339
from openline.services import accounts, notices
from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import square

HOUR = 3_600_000_000


def _notice(
    node: Node, lat: float, lng: float, *, text: str = "Strike package over the valley"
) -> dict[str, Any]:
    """A square of about 2 km around (lat, lng), from now + 1 h to now + 3 h, 0 to 3,000 m."""
    now = node.station.clock.now()
    return square(lat, lng, rfc3339(now + HOUR) or "", rfc3339(now + 3 * HOUR) or "", text=text)


def _send(node: Node, peer: str, doc: dict[str, Any], **extra: Any) -> dict[str, Any]:
    r = node.api.post("/api/v1/notices", json={"peer": peer, "notice": doc, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _get(node: Node, notice_id: str) -> dict[str, Any]:
    r = node.api.get(f"/api/v1/notices/{notice_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _alerts(node: Node, kind: str) -> list[dict[str, Any]]:
    return [a for a in node.api.get("/api/v1/alerts").json() if a["kind"] == kind]


def test_a_notice_is_delivered_and_acknowledged_by_a_named_officer(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    sent = _send(a, "moscow", _notice(a, 48.0, 9.0))
    assert sent["state"] == "sent"
    a.drain()
    got = _get(b, sent["id"])
    assert got["state"] == "delivered"
    assert got["direction"] == "in"
    assert got["text"] == "Strike package over the valley"
    assert got["deadline_at"] is not None
    assert got["extents"] == sent["extents"]
    b.drain()  # nothing to send yet; a settles the receipt
    assert _get(a, sent["id"])["state"] == "delivered"
    r = b.api.post(f"/api/v1/notices/{sent['id']}/acknowledge")
    assert r.status_code == 200, r.text
    b.drain()
    mine = _get(a, sent["id"])
    assert mine["state"] == "acknowledged"
    assert mine["acknowledged_by"] == "moscow:admin"
    assert _get(b, sent["id"])["acknowledged_by"] == "moscow:admin"
    # Only the receiving side acknowledges; only the sender withdraws.
    assert a.api.post(f"/api/v1/notices/{sent['id']}/acknowledge").status_code == 409
    assert b.api.post(f"/api/v1/notices/{sent['id']}/withdraw").status_code == 409


def test_a_conflict_raises_an_alert_on_both_watch_floors(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    first = _send(a, "moscow", _notice(a, 48.0, 9.0))
    a.drain()
    clear = _send(b, "stuttgart", _notice(b, 49.0, 9.0))  # 111 km north: clear
    assert clear["conflicts"] == []
    second = _send(b, "stuttgart", _notice(b, 48.005, 9.005))  # overlaps the first
    assert [c["other_notice"] for c in second["conflicts"]] == [first["id"]]
    b.drain()
    for node in (a, b):
        found = _alerts(node, "notice_conflict")
        assert len(found) == 1, node.name
        assert found[0]["detail"]["notice"] == second["id"]
        assert found[0]["detail"]["other_notice"] == first["id"]
    assert [c["other_notice"] for c in _get(a, first["id"])["conflicts"]] == [second["id"]]


def test_reject_withdraw_and_amend(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    one = _send(a, "moscow", _notice(a, 48.0, 9.0))
    two = _send(a, "moscow", _notice(a, 50.0, 9.0))
    a.drain()
    r = b.api.post(f"/api/v1/notices/{one['id']}/reject", json={"reason": "Overlaps our exercise"})
    assert r.status_code == 200, r.text
    b.drain()
    assert _get(a, one["id"])["state"] == "rejected"
    # The sender amends the rejected notice: a new version, the old one kept as amended.
    v2 = _send(a, "moscow", _notice(a, 48.5, 9.0, text="Moved north"), amends=one["id"])
    assert (v2["version"], v2["series"], v2["supersedes"]) == (2, one["id"], one["id"])
    a.api.post(f"/api/v1/notices/{two['id']}/withdraw").raise_for_status()
    a.drain()
    for node in (a, b):
        assert _get(node, one["id"])["state"] == "amended"
        assert _get(node, v2["id"])["version"] == 2
        assert _get(node, two["id"])["state"] == "withdrawn"
        # Each version names the next, so that whoever holds the old one finds the new.
        assert _get(node, one["id"])["superseded_by"] == v2["id"]
        assert _get(node, v2["id"])["superseded_by"] is None
        listed = {n["id"]: n["superseded_by"] for n in node.api.get("/api/v1/notices").json()}
        assert (listed[one["id"]], listed[v2["id"]], listed[two["id"]]) == (v2["id"], None, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["extents"][0]["volume"]["outline_polygon"]["vertices"].__delitem__(slice(2, None)),
            "vertices",
        ),
        (lambda d: d.update(category="picnic"), "category"),
        (lambda d: d["extents"][0]["volume"]["outline_polygon"]["vertices"][1].update(lat=91), "vertex 2"),
        (
            lambda d: d["extents"][0].update(
                time_end=d["extents"][0]["time_start"] | {"value": "2020-01-01T00:00:00Z"}
            ),
            "end",
        ),
    ],
)
def test_bad_notices_are_refused_and_change_nothing(
    nodes: tuple[Node, Node], change: Any, message: str
) -> None:
    a, _ = nodes
    doc = _notice(a, 48.0, 9.0)
    change(doc)
    before = a.snapshot()
    r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": doc})
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert a.snapshot() == before


def _ring(n: int, lat: float = 48.0, lng: float = 9.0) -> list[dict[str, float]]:
    """n vertices round an ellipse of about 30 km, counter-clockwise."""
    return [
        {"lat": lat + 0.3 * math.sin(2 * math.pi * i / n), "lng": lng + 0.45 * math.cos(2 * math.pi * i / n)}
        for i in range(n)
    ]


def test_a_notice_too_large_for_one_envelope_is_refused_and_changes_nothing(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    doc = _notice(a, 48.0, 9.0)
    # About 2,000 vertices: a valid ring whose wire form is over 48 KiB, under four times that.
    doc["extents"][0]["volume"]["outline_polygon"]["vertices"] = _ring(2_000)
    size = len(json.dumps(doc))
    assert notices.MAX_BODY < size < notices.MAX_DOCUMENT
    before = a.snapshot()
    r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": doc})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("the notice is too large to send (")
    assert r.json()["detail"].endswith(f"one notice travels in at most {notices.MAX_BODY:,}): split it")
    assert a.snapshot() == before


def test_a_notice_far_too_large_is_refused_before_its_geometry_is_checked(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    doc = _notice(a, 48.0, 9.0)
    ring = _ring(20_000)
    ring[-2], ring[-3] = ring[-3], ring[-2]  # a crossing near the end: checking would find it
    doc["extents"][0]["volume"]["outline_polygon"]["vertices"] = ring
    size = len(json.dumps(doc))
    before = a.snapshot()
    r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": doc})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"the notice is too large to send ({size:,} bytes as JSON;")
    assert a.snapshot() == before
    # Read, the ring would have been refused for its crossing instead.
    crossing = "vertex 19997: the polygon intersects itself: edge 19997-19998 crosses edge 19999-20000"
    with pytest.raises(ValueError, match=crossing):
        formats.parse_notice("notice", doc, now=a.station.clock.now())


def test_an_auditor_sees_the_notice_but_not_its_text(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    sent = _send(a, "moscow", _notice(a, 48.0, 9.0))
    a.drain()
    with b.station.tx() as tx:
        user = accounts.create_user(
            tx.conn, tx.now, "inspector", Role.AUDITOR, "correct horse battery staple"
        )
        token = accounts.issue_token(tx.conn, tx.now, user, "test")
    from fastapi.testclient import TestClient

    auditor = TestClient(b.app, headers={"Authorization": f"Bearer {token}"})
    seen = auditor.get(f"/api/v1/notices/{sent['id']}").json()
    assert seen["content_withheld"] is True
    assert "text" not in seen
    assert seen["extents"] == sent["extents"]
    assert auditor.post(f"/api/v1/notices/{sent['id']}/acknowledge").status_code == 403


def test_a_conflict_across_the_antimeridian_is_found(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    doc = _notice(a, 10.0, 179.995)
    ring = [(9.99, 179.99), (9.99, -179.99), (10.01, -179.99), (10.01, 179.99)]  # crosses 180°
    doc["extents"][0]["volume"]["outline_polygon"]["vertices"] = [{"lat": y, "lng": x} for y, x in ring]
    first = _send(a, "moscow", doc)
    a.drain()
    other = _notice(b, 10.0, -179.995)
    volume = other["extents"][0]["volume"]
    del volume["outline_polygon"]
    volume["outline_circle"] = {
        "center": {"lat": 10.0, "lng": -179.995},
        "radius": {"value": 500, "units": "M"},
    }
    second = _send(b, "stuttgart", other)
    assert [c["other_notice"] for c in second["conflicts"]] == [first["id"]]
    far = _notice(b, 10.0, 170.0)  # the same latitude, 1,100 km west: clear
    assert _send(b, "stuttgart", far)["conflicts"] == []


def test_a_notice_unanswered_past_its_deadline_alarms_both_sides(
    nodes: tuple[Node, Node], clock: Any
) -> None:
    a, b = nodes
    answered = _send(a, "moscow", _notice(a, 48.0, 9.0))
    waiting = _send(a, "moscow", _notice(a, 50.0, 9.0))
    a.drain()
    b.api.post(f"/api/v1/notices/{answered['id']}/acknowledge").raise_for_status()
    b.drain()
    for node in (a, b):
        assert notices.audit_deadlines(node.station) == 0  # nothing is due within the hour
    clock.advance(3601)  # the line's notice deadline is an hour
    for node in (a, b):
        assert notices.audit_deadlines(node.station) == 1
        assert notices.audit_deadlines(node.station) == 1  # still overdue, but alarmed once
        found = _alerts(node, "notice_unacknowledged")
        assert [x["detail"]["notice"] for x in found] == [waiting["id"]], node.name
    assert "we must answer it" in _alerts(b, "notice_unacknowledged")[0]["detail"]["why"]
