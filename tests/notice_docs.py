"""Notice documents for tests (a square of about 2 km around a point, 0 to 3,000 m; a
circle; a protected site), and the calls the notice tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import select

from openline.adapters.schema import ledger_pending
from openline.core.clock import rfc3339
from tests.inproc import Node

HOUR = 3_600_000_000
MINUTE = 60_000_000
WGS84 = Geod(ellps="WGS84")


def square(
    lat: float,
    lng: float,
    start: str,
    end: str,
    *,
    text: str = "Strike package over the valley",
    category: str = "air_operation",
) -> dict[str, Any]:
    """A notice of one square volume, 0.02° on a side, from `start` to `end` (RFC 3339)."""
    d = 0.01
    return {
        "category": category,
        "text": text,
        "extents": [
            {
                "volume": {
                    "outline_polygon": {
                        "vertices": [
                            {"lat": lat - d, "lng": lng - d},
                            {"lat": lat - d, "lng": lng + d},
                            {"lat": lat + d, "lng": lng + d},
                            {"lat": lat + d, "lng": lng - d},
                        ]
                    },
                    "altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
                    "altitude_upper": {"value": 3000, "reference": "W84", "units": "M"},
                },
                "time_start": {"value": start, "format": "RFC3339"},
                "time_end": {"value": end, "format": "RFC3339"},
            }
        ],
    }


def circle(
    lat: float,
    lng: float,
    radius_m: float,
    start: int,
    end: int | None,
    *,
    alt: tuple[float, float] = (0, 3000),
    text: str = "Strike package over the valley",
    category: str = "air_operation",
) -> dict[str, Any]:
    """A notice of one circle, from `start` to `end` (microseconds; None: open-ended)."""
    extent: dict[str, Any] = {
        "volume": {
            "outline_circle": {
                "center": {"lat": lat, "lng": lng},
                "radius": {"value": radius_m, "units": "M"},
            },
            "altitude_lower": {"value": alt[0], "reference": "W84", "units": "M"},
            "altitude_upper": {"value": alt[1], "reference": "W84", "units": "M"},
        },
        "time_start": {"value": rfc3339(start), "format": "RFC3339"},
    }
    if end is not None:
        extent["time_end"] = {"value": rfc3339(end), "format": "RFC3339"}
    return {"category": category, "text": text, "extents": [extent]}


def east_of(lat: float, lng: float, metres: float) -> tuple[float, float]:
    """The point `metres` due east of (lat, lng), along the geodesic."""
    lng2, lat2, _ = WGS84.fwd(lng, lat, 90.0, metres)
    return float(lat2), float(lng2)


def soon(node: Node, lat: float, lng: float, **extra: Any) -> dict[str, Any]:
    """A square around (lat, lng), from now + 1 h to now + 3 h, 0 to 3,000 m."""
    now = node.station.clock.now()
    return square(lat, lng, rfc3339(now + HOUR) or "", rfc3339(now + 3 * HOUR) or "", **extra)


def site(node: Node, lat: float, lng: float, *, text: str = "Al-Shifa hospital") -> dict[str, Any]:
    """A protected site: a circle of 200 m, from now on, open-ended."""
    now = node.station.clock.now()
    return circle(lat, lng, 200, now, None, alt=(-500, 20_000), text=text, category="protected_site")


def send(node: Node, peer: str, doc: dict[str, Any], **extra: Any) -> dict[str, Any]:
    r = node.api.post("/api/v1/notices", json={"peer": peer, "notice": doc, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def show(node: Node, notice_id: str) -> dict[str, Any]:
    r = node.api.get(f"/api/v1/notices/{notice_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def act(node: Node, notice_id: str, action: str, body: Any = None) -> dict[str, Any]:
    r = node.api.post(f"/api/v1/notices/{notice_id}/{action}", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def alerts(node: Node, kind: str) -> list[dict[str, Any]]:
    return [a for a in node.api.get("/api/v1/alerts").json() if a["kind"] == kind]


def ledger_entries(node: Node, prefix: str = "notice.") -> list[dict[str, Any]]:
    """The ledger entries of this station whose type starts with `prefix`, oldest first
    (in process nothing integrates them unless a test says so: they are all pending)."""
    with node.station.db.read() as conn:
        rows = conn.execute(select(ledger_pending.c.data).order_by(ledger_pending.c.seq)).all()
    entries = [json.loads(r.data) for r in rows]
    return [e for e in entries if str(e["type"]).startswith(prefix)]


def cli(node: Node, monkeypatch: Any, *args: str) -> Any:
    """Run `openline ARGS --home <node's home>` in process: the real CLI, talking to the
    node's real API through its in-process app instead of over the network."""
    from typer.testing import CliRunner

    from openline.cli import main
    from openline.cli.client import StationClient

    class InProcess(StationClient):
        def __init__(self, home: Path, *, timeout: float = 30.0) -> None:
            super().__init__(home, timeout=timeout)
            auth = self._client.headers["Authorization"]  # the token the CLI chose to act with
            self._client.close()
            self._client = TestClient(node.app, headers={"Authorization": auth})

    monkeypatch.setattr(main, "StationClient", InProcess)
    return CliRunner().invoke(main.app, [*args, "--home", str(node.home)])


def cli_table(node: Node, monkeypatch: Any, *args: str, columns: int = 80) -> str:
    """The readable output of `openline ARGS` (`cli`) in a terminal `columns` wide: rich
    reads the width once, when a console is made, so the CLI's consoles are replaced."""
    from rich.console import Console

    from openline.cli import main, notices, render

    console = Console(width=columns, markup=False)  # as render.out is
    for module in (render, main, notices):
        monkeypatch.setattr(module, "out", console)
    result = cli(node, monkeypatch, *args)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def cli_json(node: Node, monkeypatch: Any, *args: str) -> Any:
    """`cli(... ARGS --json)`, its JSON document. In process the station's own log lines
    share standard output: the JSON comes last."""
    result = cli(node, monkeypatch, *args, "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line[:1] in ("{", "["))
    return json.loads("\n".join(lines[first:]))


# What a station's log holds of a notice it sent and the peer acknowledged, at least.
SENT_AND_ACKNOWLEDGED = frozenset(
    {"notice.sent", "envelope.sent", "receipt.received", "envelope.received", "notice.acknowledged"}
)
