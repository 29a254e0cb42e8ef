"""Removing a protected site (UN No-Strike List practice): its own notice, acknowledged by
the other side; the site stays protected until then. Bad removals, ours or the peer's,
are refused and change nothing."""

from __future__ import annotations

from typing import Any

from openline.services import outbox
from tests.inproc import Node
from tests.notice_docs import act, alerts, circle, ledger_entries, send, show, site, soon
from tests.test_inbox_refusals import post_signed, refused_for_good


def _removal(site_id: str, **extra: Any) -> dict[str, Any]:
    return {"category": "protected_site", "text": "The hospital has moved", "removes": site_id, **extra}


def _acknowledged_site(a: Node, b: Node) -> dict[str, Any]:
    protected = send(a, "moscow", site(a, 50.0, 9.0))
    a.drain()
    act(b, protected["id"], "acknowledge")
    b.drain()
    assert show(a, protected["id"])["state"] == "acknowledged"
    return protected


def test_a_site_is_removed_only_once_the_peer_acknowledges_its_removal(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    protected = _acknowledged_site(a, b)

    before = a.snapshot()
    r = a.api.post(f"/api/v1/notices/{protected['id']}/withdraw")
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "illegal_transition"
    assert "send a removal notice" in r.json()["detail"]
    assert a.snapshot() == before

    removal = send(a, "moscow", _removal(protected["id"]))
    assert (removal["state"], removal["removes"], removal["extents"]) == ("sent", protected["id"], [])
    assert removal["deadline_at"] is not None
    # Still protected on both sides while the removal waits for its answer.
    strike = send(b, "stuttgart", soon(b, 50.0, 9.0))
    assert [c["other_notice"] for c in strike["conflicts"]] == [protected["id"]]
    a.drain()
    b.drain()
    for node in (a, b):
        assert show(node, protected["id"])["state"] == "acknowledged", node.name
        assert show(node, protected["id"])["removed_by"] is None
        assert len(alerts(node, "notice_conflict")) == 1, node.name
    assert show(b, removal["id"])["state"] == "delivered"
    assert show(b, removal["id"])["text"] == "The hospital has moved"

    act(b, removal["id"], "acknowledge")
    b.drain()
    for node in (a, b):
        gone = show(node, protected["id"])
        assert (gone["state"], gone["removed_by"]) == ("removed", removal["id"]), node.name
        assert gone["removed_at"] is not None
        assert show(node, removal["id"])["state"] == "acknowledged"
        (entry,) = [e for e in ledger_entries(node) if e["type"] == "notice.removed"]
        assert (entry["notice"], entry["removal"]) == (protected["id"], removal["id"])
    # No longer protected: another strike there meets only the first strike.
    again = send(b, "stuttgart", soon(b, 50.0, 9.001))
    assert [c["other_notice"] for c in again["conflicts"]] == [strike["id"]]
    for path in (f"{protected['id']}/withdraw", f"{removal['id']}/withdraw"):
        assert a.api.post(f"/api/v1/notices/{path}").status_code == 409


def test_a_rejected_removal_leaves_the_site_protected(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    protected = _acknowledged_site(a, b)
    removal = send(a, "moscow", _removal(protected["id"]))
    a.drain()
    act(b, removal["id"], "reject", {"reason": "Patients are still there"})
    b.drain()
    for node in (a, b):
        assert show(node, removal["id"])["state"] == "rejected"
        assert show(node, protected["id"])["state"] == "acknowledged"
        assert [e for e in ledger_entries(node) if e["type"] == "notice.removed"] == []
    assert [c["other_notice"] for c in send(b, "stuttgart", soon(b, 50.0, 9.0))["conflicts"]] == [
        protected["id"]
    ]
    again = send(a, "moscow", _removal(protected["id"]))  # nothing pending any more
    assert again["removes"] == protected["id"]


def test_a_site_never_acknowledged_may_still_be_withdrawn(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    protected = send(a, "moscow", site(a, 50.0, 9.0))
    a.drain()
    act(a, protected["id"], "withdraw")
    a.drain()
    assert show(b, protected["id"])["state"] == "withdrawn"


def test_a_removal_is_answered_not_withdrawn_and_its_site_waits_for_the_answer(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    protected = _acknowledged_site(a, b)
    removal = send(a, "moscow", _removal(protected["id"]))
    refusals = [
        (f"{removal['id']}/withdraw", None, "a removal notice cannot be withdrawn"),
        ("", {"peer": "moscow", "notice": site(a, 50.1, 9.0), "amends": removal["id"]}, "cannot be amended"),
        (
            "",
            {"peer": "moscow", "notice": site(a, 50.1, 9.0), "amends": protected["id"]},
            "cannot be amended",
        ),
    ]
    for path, body, detail in refusals:
        before = a.snapshot()
        r = a.api.post(f"/api/v1/notices/{path}".rstrip("/"), json=body)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "illegal_transition"
        assert detail in r.json()["detail"]
        assert a.snapshot() == before


BAD_REMOVALS: list[tuple[str, dict[str, Any], int, str]] = [
    ("unknown", {}, 404, "no notice with id 'no-such-notice'"),
    ("theirs", {}, 422, "is not one of ours to moscow"),
    ("activity", {}, 422, "a air_operation notice, not a protected site"),
    ("withdrawn", {}, 409, "is withdrawn; only an active protected site is removed"),
    ("pending", {}, 409, "is already being removed by notice"),
    ("removal", {}, 422, "a removal notice, not a protected site"),
    ("site", {"extents": [{"volume": {}}]}, 422, "carries no volumes: extents"),
    ("site", {"category": "air_operation"}, 422, "a removal notice has category protected_site"),
    ("site", {"text": 5}, 422, "text: expected a string"),
    ("site", {"amends": "x"}, 422, "a removal notice amends nothing"),
]


def test_bad_removals_are_refused_and_change_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    ours = send(a, "moscow", site(a, 50.0, 9.0))
    theirs = send(b, "stuttgart", site(b, 51.0, 9.0))
    activity = send(a, "moscow", soon(a, 48.0, 9.0))
    withdrawn = send(a, "moscow", site(a, 52.0, 9.0))
    act(a, withdrawn["id"], "withdraw")
    pending = send(a, "moscow", _removal(ours["id"]))
    b.drain()
    ids = {
        "unknown": "no-such-notice",
        "theirs": theirs["id"],
        "activity": activity["id"],
        "withdrawn": withdrawn["id"],
        "pending": ours["id"],
        "removal": pending["id"],
        "site": send(a, "moscow", site(a, 53.0, 9.0))["id"],
    }
    for target, extra, status, detail in BAD_REMOVALS:
        fields = {k: v for k, v in extra.items() if k != "amends"}
        body: dict[str, Any] = {"peer": "moscow", "notice": _removal(ids[target], **fields)}
        if "amends" in extra:
            body["amends"] = extra["amends"]
        for draft in (False, True):
            before = a.snapshot()
            r = a.api.post("/api/v1/notices", json={**body, "draft": draft})
            assert (r.status_code, detail in r.json()["detail"]) == (status, True), (target, extra, r.text)
            assert a.snapshot() == before, (target, extra)


class _RolledBack(Exception):
    pass


def _from_a(a: Node, ref: str, body: dict[str, Any]) -> dict[str, Any]:
    """A validly signed and sealed `notice.send` envelope from a, next in its sequence,
    kept in a's outbox as a station without a's own checks would keep it."""
    with a.station.tx() as tx:
        env = outbox.enqueue(a.station, tx, a.line_id(), "notice.send", ref, body)
    return env.to_json()


BAD_INBOUND: list[tuple[str, dict[str, Any], str]] = [
    ("unknown", {}, "which is no notice on this line"),
    ("b-site", {}, "which is not a notice the peer sent us"),
    ("activity", {}, "which is not a protected site"),
    ("removed", {}, "which is removed or being removed already"),
    ("site", {"extents": [{"volume": {}}]}, "carries no volumes"),
    ("site", {"category": "fire_area"}, "a removal notice has category protected_site"),
    ("site", {"supersedes": "x"}, "a removal notice amends nothing"),
]


def test_a_bad_removal_from_the_peer_is_refused_as_malformed(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a_site = send(a, "moscow", site(a, 50.0, 9.0))
    gone = send(a, "moscow", site(a, 50.5, 9.0))
    activity = send(a, "moscow", soon(a, 48.0, 9.0))
    b_site = send(b, "stuttgart", site(b, 51.0, 9.0))
    a.drain()
    act(b, gone["id"], "acknowledge")
    b.drain()
    removal = send(a, "moscow", _removal(gone["id"]))
    a.drain()
    act(b, removal["id"], "acknowledge")
    b.drain()
    assert show(b, gone["id"])["state"] == "removed"
    ids = {
        "unknown": "no-such-notice",
        "b-site": b_site["id"],
        "activity": activity["id"],
        "removed": gone["id"],
        "site": a_site["id"],
    }
    for target, change, detail in BAD_INBOUND:
        ref = outbox.new_id()
        body = {"notice": ref, "series": ref, "version": 1, "supersedes": None, "extents": []}
        body |= _removal(ids[target]) | change
        before = b.snapshot()
        env = _from_a(a, ref, body)
        r = post_signed(a, b, {"envelopes": [env]})
        assert r.status_code == 200, r.text
        (result,) = r.json()["results"]
        assert result["status"] == "refused", (target, change, result)
        assert result["error"]["code"] == "malformed"
        assert detail in result["error"]["detail"], (target, change, result)
        refused_for_good(b, before, env, result)  # nothing applied; its number taken
    # The same envelope, well formed, is stored: the refusals above were for their reasons.
    ref = outbox.new_id()
    body = {"notice": ref, "series": ref, "version": 1, "supersedes": None, "extents": []}
    r = post_signed(a, b, {"envelopes": [_from_a(a, ref, body | _removal(a_site["id"]))]})
    assert r.json()["results"][0]["status"] == "stored", r.text
    assert show(b, ref)["removes"] == a_site["id"]


def test_two_protected_sites_that_overlap_do_not_conflict(nodes: tuple[Node, Node]) -> None:
    """A hospital inside a protected district is no conflict for anyone to answer, as the
    offline check has it; an activity over either one is."""
    a, b = nodes
    district = send(b, "stuttgart", circle(48.0, 9.0, 2000, b.station.clock.now(), None,
                                           alt=(-500, 20_000), category="protected_site"))  # fmt: skip
    b.drain()
    hospital = send(b, "stuttgart", site(b, 48.0, 9.0))
    b.drain()
    assert hospital["conflicts"] == []
    for node in (a, b):
        assert show(node, hospital["id"])["conflicts"] == []
        assert [x for x in node.api.get("/api/v1/alerts").json() if x["kind"] == "notice_conflict"] == []
    strike = send(a, "moscow", soon(a, 48.0, 9.0))
    assert {c["other_notice"] for c in strike["conflicts"]} == {district["id"], hospital["id"]}


def test_protected_movements_do_not_conflict_with_sites_or_each_other(nodes: tuple[Node, Node]) -> None:
    """A convoy route past a clinic, and the same convoy notified by both sides, are no
    conflict for anyone to answer: neither may be struck. An air operation over the route
    is one."""
    a, b = nodes
    clinic = send(b, "stuttgart", site(b, 48.0, 9.0, text="Clinic"))
    b.drain()
    convoy = soon(b, 48.0, 9.0, text="Relief convoy", category="protected_movement")
    ours = send(b, "stuttgart", convoy)
    b.drain()
    theirs = send(a, "moscow", convoy)
    a.drain()
    assert (ours["conflicts"], theirs["conflicts"]) == ([], [])
    for node in (a, b):
        for notice in (clinic, ours, theirs):
            assert show(node, notice["id"])["conflicts"] == [], node.name
        assert alerts(node, "notice_conflict") == [], node.name
    # East of the clinic (200 m) but over both notices of the convoy's route (0.01° each side).
    strike = send(a, "moscow", soon(a, 48.0, 9.015))
    assert {c["other_notice"] for c in strike["conflicts"]} == {ours["id"], theirs["id"]}
