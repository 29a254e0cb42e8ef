"""`openline alerts`: what each alert is about, as an officer acts on it."""

from __future__ import annotations

from typing import Any

from openline.services import alerts
from tests.inproc import Node, place_and_ring
from tests.notice_docs import cli_table


def test_an_alert_about_a_call_says_its_priority_and_peer(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    """It said only `missed_call · <call id>`: which of 49 missed calls was the flash one
    could not be told from the routine ones. An older alert, whose detail does not say
    the call's priority, is shown by its call's id as before."""
    a, b = nodes
    flash = place_and_ring(b, a, "Convoy at checkpoint 4", "flash")
    older = place_and_ring(b, a, "Patrol", "routine")
    with a.station.tx() as tx:
        alerts.raise_alert(tx, "missed_call", flash, {"call": flash, "peer": "moscow", "priority": "flash"})
        alerts.raise_alert(tx, "missed_call", older, {"call": older})
    text = " ".join(cli_table(a, monkeypatch, "alerts", "--open", columns=200).replace("│", " ").split())
    assert f"missed_call FLASH call from moscow: {flash} " in text
    assert f"missed_call {older} " in text
