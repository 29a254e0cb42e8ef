"""/metrics: Prometheus text with the station's traffic and each line's health."""

from __future__ import annotations

import re

import pytest

from openline.adapters import db
from openline.core.clock import FakeClock
from openline.services import delivery, line_health
from tests.full_disk import disk_full
from tests.inproc import Node, picked_up, place_and_ring


def sample(node: Node, name: str) -> float:
    text = node.api.get("/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_traffic_and_show_line_health(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    delivered = sample(a, "openline_envelopes_delivered_total")
    stored = sample(b, 'openline_envelopes_received_total{outcome="stored"}')
    failures = sample(a, "openline_delivery_failures_total")

    call_id = place_and_ring(a, b)
    # Counters are per process; here both stations share one, so each figure counts the
    # call (stuttgart to moscow) and the ringing (moscow to stuttgart).
    assert sample(a, "openline_envelopes_delivered_total") == delivered + 2
    assert sample(b, 'openline_envelopes_received_total{outcome="stored"}') == stored + 2

    assert a.transport is not None
    a.transport.down = True
    assert sample(a, 'openline_outbox_oldest_seconds{peer="moscow"}') == 0
    assert a.api.post(f"/api/v1/calls/{call_id}/cancel").status_code == 200
    a.deliver()
    clock.advance(42)
    assert sample(a, "openline_delivery_failures_total") == failures + 1
    assert sample(a, 'openline_outbox_depth{peer="moscow"}') == 1
    assert sample(a, 'openline_outbox_oldest_seconds{peer="moscow"}') == 42
    assert sample(a, 'openline_line_active{peer="moscow"}') == 1
    assert sample(a, "openline_database_up") == 1
    assert sample(a, 'openline_alerts_open{kind="line_down"}') == 0
    assert line_health.audit_lines(a.station) == 1  # 42 s waiting, past line_down_after_s
    assert sample(a, 'openline_alerts_open{kind="line_down"}') == 1
    text = a.api.get("/metrics").text
    assert "secret" not in text
    assert "Test call" not in text


@pytest.mark.parametrize("backend", ["sqlite"])  # full as a disk is: tests/full_disk.py
def test_a_station_that_can_read_but_not_store_is_down_until_it_stores_again(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a full disk the peer's envelopes are refused (503) while every read succeeds:
    /metrics said `openline_database_up 1` all along."""
    a, b = nodes
    monkeypatch.setattr(db, "SETTLE_SECONDS", 0.0)  # tests/test_db.py: how long it must settle
    call_id = picked_up(b, a)  # moscow calls, stuttgart picks up: they talk
    said = {"text": "x" * 8000, "lang": "en"}  # more pages than stuttgart's file has
    with disk_full(a.station.db):
        assert b.api.post(f"/api/v1/calls/{call_id}/messages", json=said).status_code == 201
        assert b.deliver() is delivery.Outcome.FAILED  # stuttgart answered 503: not stored
        assert sample(a, "openline_database_up") == 0
        assert a.api.get("/api/v1/calls").status_code == 200  # it still reads ...
        assert sample(a, "openline_database_up") == 0  # ... and still cannot store
    assert b.deliver(force=True) is delivery.Outcome.SENT  # room again: stored
    assert sample(a, "openline_database_up") == 1
