"""Both stations tell a notice's story alike: the times of what one side did, however late
the other heard of it, the delivery of a notice that moved on before its receipt came
back, and an amendment's place in the old version's evidence. And what the sender may not
do to a protected site the peer has acknowledged, from its own station or on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from openline.core.evidence import About
from openline.services.outbox import new_id
from tests.inproc import Node
from tests.notice_docs import HOUR, act, circle, ledger_entries, send, show, site, soon
from tests.test_inbox_refusals import crafted, pending_wire, post_signed, refused_code, refused_for_good


def _entry(node: Node, kind: str, notice_id: str) -> dict[str, Any]:
    (entry,) = [e for e in ledger_entries(node) if e["type"] == kind and e["notice"] == notice_id]
    return entry


def _same(a: Node, b: Node, notice_id: str, *fields: str) -> dict[str, Any]:
    """The notice as both stations show it, with these fields set and equal on both."""
    mine, theirs = show(a, notice_id), show(b, notice_id)
    for field in fields:
        assert mine[field] is not None, field
        assert mine[field] == theirs[field], field
    return mine


def test_an_amendment_is_dated_by_its_sending_on_both_stations_and_named_in_the_ledger(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    one = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    a.station.clock.advance(5)
    v2 = send(a, "moscow", soon(a, 48.2, 9.0, text="Moved north"), amends=one["id"])
    a.station.clock.advance(40)  # the line was slow: moscow hears of it 40 s later
    a.drain()
    b.drain()
    old = _same(a, b, one["id"], "amended_at")
    assert old["state"] == "amended"
    assert old["amended_at"] == v2["sent_at"]
    _same(a, b, v2["id"], "sent_at", "starts_at")  # the peer's sent_at was never set
    sent, received = _entry(a, "notice.sent", v2["id"]), _entry(b, "notice.received", v2["id"])
    assert sent["supersedes"] == received["supersedes"] == one["id"]
    assert sent["at"] == received["at"]
    # The old version's evidence shows what ended it, on either station.
    for node, kind in ((a, "notice.sent"), (b, "notice.received")):
        about = About(one["id"])
        for i, entry in enumerate(ledger_entries(node, "")):
            about.offer(i, entry)
        picked = [(e["entry"]["type"], e["entry"]["notice"]) for e in about.entries if "notice" in e["entry"]]
        assert (kind, v2["id"]) in picked, node.name


def test_a_sites_removal_is_dated_by_its_acknowledgement_on_both_stations(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    protected = send(a, "moscow", site(a, 50.0, 9.0))
    a.drain()
    act(b, protected["id"], "acknowledge")
    b.drain()
    a.station.clock.advance(60)
    removal = send(a, "moscow", {"category": "protected_site", "text": "closed", "removes": protected["id"]})
    a.station.clock.advance(30)
    a.drain()
    b.station.clock.advance(10)
    act(b, removal["id"], "acknowledge")
    b.station.clock.advance(44)  # stuttgart was down: it hears of it 44 s later
    b.drain()
    gone = _same(a, b, protected["id"], "removed_at")
    assert gone["state"] == "removed"
    answered = _same(a, b, removal["id"], "acknowledged_at", "starts_at", "sent_at")
    assert gone["removed_at"] == answered["acknowledged_at"]
    assert answered["starts_at"] == answered["sent_at"]
    for kind, subject in (("notice.acknowledged", removal["id"]), ("notice.removed", protected["id"])):
        assert _entry(a, kind, subject)["at"] == _entry(b, kind, subject)["at"], kind


def test_a_notice_that_moved_on_before_its_receipt_came_back_is_still_delivered(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    withdrawn = send(a, "moscow", soon(a, 48.0, 9.0))
    act(a, withdrawn["id"], "withdraw")
    amended = send(a, "moscow", soon(a, 49.0, 9.0))
    send(a, "moscow", soon(a, 49.2, 9.0), amends=amended["id"])
    assert show(a, withdrawn["id"])["delivered_at"] is None
    a.drain()  # the notices and what became of them go in one batch; then the receipts
    for notice_id, state in ((withdrawn["id"], "withdrawn"), (amended["id"], "amended")):
        mine = _same(a, b, notice_id, "delivered_at")
        assert mine["state"] == state


def test_a_notice_whose_every_volume_has_ended_is_refused_and_changes_nothing(
    nodes: tuple[Node, Node],
) -> None:
    a, _ = nodes
    now = a.station.clock.now()
    before = a.snapshot()
    r = a.api.post(
        "/api/v1/notices", json={"peer": "moscow", "notice": circle(48, 9, 500, now - 3 * HOUR, now - HOUR)}
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_input")
    assert "every volume has ended" in r.json()["detail"]
    assert a.snapshot() == before
    # One volume still to come is enough: the notice announces it.
    doc = circle(48, 9, 500, now - 3 * HOUR, now - HOUR)
    doc["extents"] += circle(48, 9, 500, now - HOUR, now + HOUR)["extents"]
    send(a, "moscow", doc)


def test_an_acknowledged_site_is_not_amended_nor_any_notice_made_another_kind(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    protected = send(a, "moscow", site(a, 50.0, 9.0))
    pending = send(a, "moscow", site(a, 51.0, 9.0))
    activity = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    act(b, protected["id"], "acknowledge")
    b.drain()
    refusals = [
        (site(a, 50.2, 9.0), protected["id"], "an acknowledged protected site cannot be amended"),
        (
            soon(a, 51.0, 9.0, category="exercise"),
            pending["id"],
            "keeps the notice's category (protected_site)",
        ),
        (site(a, 48.0, 9.0), activity["id"], "keeps the notice's category (air_operation)"),
    ]
    for doc, amends, message in refusals:
        before = a.snapshot()
        r = a.api.post("/api/v1/notices", json={"peer": "moscow", "notice": doc, "amends": amends})
        assert (r.status_code, r.json()["code"]) == (409, "illegal_transition"), r.text
        assert message in r.json()["detail"]
        assert a.snapshot() == before
    # A site never acknowledged may still be moved: the peer has agreed to nothing yet.
    send(a, "moscow", site(a, 51.1, 9.0), amends=pending["id"])


def _site_then_next(a: Node, b: Node) -> tuple[dict[str, Any], dict[str, Any]]:
    """A protected site of stuttgart's held at moscow, and the envelope moscow expects next
    from stuttgart, left unsent: to be replaced by a crafted one with its number."""
    protected = send(a, "moscow", site(a, 50.0, 9.0))
    a.drain()
    b.drain()
    send(a, "moscow", soon(a, 48.0, 9.0))
    (env,) = pending_wire(a)
    return protected, env


def test_a_peers_amendment_into_another_kind_of_notice_is_refused_on_the_wire(
    nodes: tuple[Node, Node],
) -> None:
    """What stuttgart's own station refuses, a station that does not is refused by moscow:
    a protected site turned into an exercise would leave protection with no removal."""
    a, b = nodes
    protected, env = _site_then_next(a, b)
    notice_id = new_id()
    exercise = soon(a, 50.0, 9.0, category="exercise")
    body = {
        "notice": notice_id,
        "series": protected["id"],
        "version": 2,
        "supersedes": protected["id"],
        **exercise,
    }
    before = b.snapshot()
    amendment = crafted(a, b, env, "notice.send", body, ref=notice_id)
    r = post_signed(a, b, {"envelopes": [amendment]})
    assert refused_code(r) == "malformed"
    assert (
        "keeps the notice's category (protected_site), got exercise"
        in r.json()["results"][0]["error"]["detail"]
    )
    refused_for_good(b, before, amendment, r.json()["results"][0])
    assert show(b, protected["id"])["state"] == "delivered"


@pytest.mark.parametrize(
    ("place", "why"),
    [
        ({"supersedes": ["x"]}, "supersedes is not a notice id, got ['x']"),
        ({"supersedes": {"a": 1}}, "supersedes is not a notice id"),
        ({"series": "s" * 30_000}, "series is not a notice id"),
        ({"series": "\u202e\x1b[2J"}, "series is not a notice id"),
        ({"version": -7}, "version must be 1 to 2147483647, got -7"),
        ({"version": True}, "version must be 1 to"),
        ({"version": 2}, "a notice that amends nothing is version 1 of its own series"),
        ({"series": "SERIES"}, "a notice that amends nothing is version 1 of its own series"),
        ({"supersedes": "SITE"}, "an amendment is version 2 or later"),
        ({"supersedes": "SITE", "version": 5, "series": "SITE"}, "is version 2 of that series, not 5 of"),
    ],
)
def test_a_notice_s_place_in_its_series_is_checked_on_the_wire(
    nodes: tuple[Node, Node], place: dict[str, Any], why: str
) -> None:
    """A hostile peer's `series`, `version` and `supersedes` are refused for good
    (`malformed`) with nothing stored; a list in `supersedes` had reached SQL (500)."""
    a, b = nodes
    protected, env = _site_then_next(a, b)
    notice_id = new_id()
    names = {"SITE": protected["id"], "SERIES": new_id()}
    fields = {k: names.get(v, v) if isinstance(v, str) else v for k, v in place.items()}
    body = {"notice": notice_id, "series": notice_id, "version": 1, "supersedes": None, **fields}
    body.update(soon(a, 48.5, 9.0))
    before = b.snapshot()
    crafted_env = crafted(a, b, env, "notice.send", body, ref=notice_id)
    r = post_signed(a, b, {"envelopes": [crafted_env]})
    assert r.status_code == 200, r.text
    assert refused_code(r) == "malformed"
    assert why in r.json()["results"][0]["error"]["detail"]
    refused_for_good(b, before, crafted_env, r.json()["results"][0])
