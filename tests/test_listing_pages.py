"""Every listing past its newest 1,000: `before` names the last row a client has, and the
next page follows it in the listing's order, rows that share a time neither skipped nor
repeated (docs/api.md, "Requests and answers")."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from openline.adapters.schema import notifications
from openline.services import accounts, alerts
from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import cli_table, send, soon


def _pages(node: Node, path: str, limit: int, **params: Any) -> list[list[Any]]:
    pages: list[list[Any]] = []
    before = None
    while True:
        query = {"limit": limit, **params, **({} if before is None else {"before": before})}
        r = node.api.get(path, params=query)
        assert r.status_code == 200, r.text
        page = [x["id"] for x in r.json()]
        if not page:
            return pages
        pages.append(page)
        before = page[-1]
        assert len(pages) < 50


def _whole(node: Node, path: str) -> list[Any]:
    return [x["id"] for x in node.api.get(path, params={"limit": 1000}).json()]


def test_the_audit_trail_and_alerts_page_back_to_their_first(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    with a.station.tx() as tx:  # one transaction: every row at the same time
        for n in range(7):
            accounts.create_user(tx.conn, tx.now, f"officer{n}", Role.WATCH_OFFICER, "pw " * 6, actor="admin")
            alerts.raise_alert(tx, "roster_gap", f"gap {n}", {"n": n})
    for path in ("/api/v1/audit", "/api/v1/alerts"):
        whole = _whole(a, path)
        assert len(whole) >= 7
        pages = _pages(a, path, 3)
        assert [x for page in pages for x in page] == whole
        assert all(len(page) == 3 for page in pages[:-1])


def test_notifications_sharing_a_time_are_paged_in_order(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    with a.station.tx() as tx:
        tx.conn.execute(
            insert(notifications),
            [
                {"id": f"00000000-0000-7000-8000-{n:012d}", "kind": "test", "recipient": "admin",
                 "channel": "console", "address": "admin", "title": "t", "text": "t",
                 "created_at": tx.now - (n // 3), "status": "sent", "attempts": 1}  # three to a time
                for n in range(10)
            ],
        )  # fmt: skip
    whole = _whole(a, "/api/v1/notifications")
    assert len(whole) == 10
    for limit in (1, 2, 4):
        assert [x for page in _pages(a, "/api/v1/notifications", limit) for x in page] == whole


def test_notices_received_in_one_batch_are_paged_in_order(nodes: tuple[Node, Node]) -> None:
    """moscow stores the five in one transaction: they share created_at, ordered by id."""
    a, b = nodes
    for n in range(5):
        send(a, "moscow", soon(a, 10.0 + n, 20.0))
    a.drain()
    whole = _whole(b, "/api/v1/notices")
    assert len(whole) == 5
    assert [x for page in _pages(b, "/api/v1/notices", 2) for x in page] == whole
    assert [x for page in _pages(b, "/api/v1/notices", 2, direction="in") for x in page] == whole


@pytest.mark.parametrize(
    ("path", "before", "said"),
    [
        ("/api/v1/audit", 999_999, "before: there is no audit entry 999999 to list from"),
        ("/api/v1/alerts", 999_999, "before: there is no alert 999999 to list from"),
        ("/api/v1/notices", "nope", "before: there is no notice 'nope' to list from"),
        ("/api/v1/notifications", "nope", "before: there is no notification 'nope' to list from"),
        ("/api/v1/handovers", 999_999, "before: there is no handover 999999 to list from"),
    ],
)
def test_a_page_after_a_row_that_is_not_there_is_not_found(
    nodes: tuple[Node, Node], path: str, before: Any, said: str
) -> None:
    a, _ = nodes
    r = a.api.get(path, params={"before": before})
    assert r.status_code == 404, r.text
    assert r.json()["detail"] == said


def test_the_cli_says_how_to_list_the_next_page(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    a, _ = nodes
    with a.station.tx() as tx:
        for n in range(3):
            alerts.raise_alert(tx, "roster_gap", f"gap {n}", {"n": n})
    ids = _whole(a, "/api/v1/alerts")
    first = cli_table(a, monkeypatch, "alerts", "--limit", "2", columns=200)
    assert f"--before {ids[1]} lists the next 2" in first
    rest = cli_table(a, monkeypatch, "alerts", "--limit", "2", "--before", str(ids[1]), columns=200)
    assert f"gap {0}" in rest
    assert "gap 2" not in rest
