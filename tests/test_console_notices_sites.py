"""Protected sites in the console: the Request removal button on our active sites, the
removal notice it sends (answered with the usual buttons on the peer's page), each
notice's `removes` / `removed_by` relation and "removal pending"; and, case by case, that
a site's and a removal's buttons are exactly what the station accepts: every button
hidden here is refused when posted anyway, with nothing changed."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import act, send, show, site, soon
from tests.test_console_notices_actions import WORKERS, _buttons, _officer, _row

REASON = "The clinic has moved to the north"


def _site(a: Node, b: Node, *, acknowledged: bool = True) -> str:
    """One of stuttgart's protected sites, delivered to moscow (and acknowledged there)."""
    notice_id = str(send(a, "moscow", site(a, 50.0, 9.0))["id"])
    a.drain()
    if acknowledged:
        act(b, notice_id, "acknowledge")
        b.drain()
    return notice_id


def _removal(a: Node, site_id: str) -> str:
    doc = {"category": "protected_site", "text": REASON, "removes": site_id}
    removal = str(send(a, "moscow", doc)["id"])
    a.drain()
    return removal


def _shown(c: TestClient, notice_id: str) -> set[str]:
    return _buttons(_row(c.get("/notices").text, notice_id), notice_id)


def _refused(
    node: Node, c: TestClient, token: str, path: str, status: int, message: str, **form: str
) -> None:
    """Posting a button that is not shown is refused on the page, and changes nothing."""
    before = node.snapshot()
    r = c.post(path, data={"csrf": token, **form})
    assert r.status_code == status, (path, r.text[:300])
    assert message in r.text, path
    assert 'role="alert"' in r.text, path
    assert node.snapshot() == before, path


# The button and its removal notice -----------------------------------------------------


def test_an_officer_requests_a_sites_removal_and_the_peer_acknowledges_it(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    site_id = _site(a, b)
    c, token = _officer(a)
    page = c.get("/notices").text
    row = _row(page, site_id)
    assert _buttons(row, site_id) == {"remove"}  # no Withdraw or Amend: it was acknowledged
    assert "Request removal…" in row
    r = c.post(f"/notices/{site_id}/remove", data={"csrf": token, "text": REASON})
    assert r.status_code == 303
    assert r.headers["location"] == f"/notices#notice-{site_id}"
    (removal,) = [n for n in a.api.get("/api/v1/notices").json() if n["removes"] == site_id]
    assert (removal["state"], removal["category"], removal["text"]) == ("sent", "protected_site", REASON)
    assert removal["created_by"] == "duty"
    assert removal["extents"] == []

    # Our page: the site's removal is pending, linked both ways; neither has a button.
    page = c.get("/notices").text
    row = _row(page, site_id)
    assert f'data-removal-pending="{removal["id"]}"' in row
    assert "removal pending" in row
    assert _buttons(row, site_id) == set()
    removal_row = _row(page, removal["id"])
    assert f'removal of <a href="#notice-{site_id}">' in removal_row
    assert _buttons(removal_row, removal["id"]) == set()

    # The peer's page and board: the removal waits for an answer, with the usual buttons.
    a.drain()
    peer, peer_token = _officer(b)
    page = peer.get("/notices").text
    assert _buttons(_row(page, removal["id"]), removal["id"]) == {"ack", "reject"}
    assert REASON in _row(page, removal["id"])
    assert "removal pending" in _row(page, site_id)
    board = peer.get("/").text
    waiting = re.search(rf'<li data-waiting-notice="{removal["id"]}">.*?</li>', board, re.S)
    assert waiting
    assert f'removal</strong> of <a href="/notices#notice-{site_id}">' in waiting.group(0)
    r = peer.post(f"/notices/{removal['id']}/ack", data={"csrf": peer_token})
    assert r.status_code == 303
    b.drain()
    for node, officer in ((a, c), (b, peer)):
        assert show(node, site_id)["state"] == "removed", node.name
        page = officer.get("/notices").text
        row = _row(page, site_id)
        assert f'removed by <a href="#notice-{removal["id"]}">' in row, node.name
        assert "removal pending" not in row, node.name
        assert _buttons(row, site_id) == set(), node.name
        assert _buttons(_row(page, removal["id"]), removal["id"]) == set(), node.name


def test_a_removal_needs_no_reason_and_a_rejected_one_may_be_requested_again(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    site_id = _site(a, b)
    c, token = _officer(a)
    assert c.post(f"/notices/{site_id}/remove", data={"csrf": token}).status_code == 303
    (removal,) = [n for n in a.api.get("/api/v1/notices").json() if n["removes"] == site_id]
    assert removal["text"] == ""
    a.drain()
    act(b, removal["id"], "reject", {"reason": "Patients are still there"})
    b.drain()
    # Rejected: the site is protected as before, and its removal may be requested again.
    row = _row(c.get("/notices").text, site_id)
    assert "removal pending" not in row
    assert _buttons(row, site_id) == {"remove"}
    row = _row(c.get("/notices").text, removal["id"])
    assert 'Rejected: <span class="said" dir="auto">Patients are still there</span>' in row


# Which buttons, case by case: what is hidden is refused ----------------------------------


def test_an_acknowledged_site_is_not_withdrawn_but_removed(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    site_id = _site(a, b)
    c, token = _officer(a)
    assert _shown(c, site_id) == {"remove"}
    _refused(a, c, token, f"/notices/{site_id}/withdraw", 409, "send a removal notice")
    # Nor amended (moved, or made another kind of notice): the old version would stop
    # protecting it, whatever the peer then answered to the new one.
    moved = json.dumps(site(a, 50.2, 9.0))
    form = {"peer": "moscow", "amends": site_id, "notice": moved}
    _refused(a, c, token, "/notices", 409, "cannot be amended: send a removal notice", **form)


def test_a_site_not_yet_acknowledged_may_still_be_withdrawn(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    site_id = _site(a, b, acknowledged=False)
    c, token = _officer(a)
    assert _shown(c, site_id) == {"withdraw", "amend", "remove"}
    assert c.post(f"/notices/{site_id}/withdraw", data={"csrf": token}).status_code == 303
    assert show(a, site_id)["state"] == "withdrawn"
    assert _shown(c, site_id) == set()
    _refused(a, c, token, f"/notices/{site_id}/remove", 409, "only an active protected site is removed")


def test_a_site_being_removed_has_no_buttons_and_refuses_every_change(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    site_id = _site(a, b, acknowledged=False)  # so that only the pending removal forbids withdrawing
    removal = _removal(a, site_id)
    c, token = _officer(a)
    assert _shown(c, site_id) == set()
    pending = f"its removal (notice {removal}) is waiting for the peer&#39;s answer"
    _refused(a, c, token, f"/notices/{site_id}/withdraw", 409, pending)
    _refused(a, c, token, f"/notices/{site_id}/remove", 409, f"already being removed by notice {removal}")
    r = c.get(f"/notices?amend={site_id}")
    assert r.status_code == 409
    assert pending in r.text
    assert 'name="amends"' not in r.text
    amended = json.dumps(site(a, 50.0, 9.1))
    form = {"peer": "moscow", "amends": site_id, "notice": amended}
    _refused(a, c, token, "/notices", 409, pending, **form)
    # The receiver may not withdraw or remove the peer's site either.
    peer, peer_token = _officer(b)
    assert _shown(peer, site_id) == {"ack", "reject"}  # it may still answer the site itself
    _refused(b, peer, peer_token, f"/notices/{site_id}/withdraw", 409, "only the sender may withdraw")
    _refused(b, peer, peer_token, f"/notices/{site_id}/remove", 422, "is not one of ours to stuttgart")


def test_a_removal_notice_is_answered_never_withdrawn_amended_or_removed(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    removal = _removal(a, _site(a, b))
    c, token = _officer(a)
    assert _shown(c, removal) == set()
    _refused(a, c, token, f"/notices/{removal}/withdraw", 409, "a removal notice cannot be withdrawn")
    _refused(a, c, token, f"/notices/{removal}/remove", 422, "is a removal notice, not a protected site")
    r = c.get(f"/notices?amend={removal}")
    assert r.status_code == 409
    assert "a removal notice is acknowledged or rejected by the peer" in r.text
    form = {"peer": "moscow", "amends": removal, "notice": json.dumps(site(a, 50.0, 9.1))}
    _refused(a, c, token, "/notices", 409, "a removal notice cannot be amended", **form)


def test_an_activity_has_no_request_removal_button(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    notice_id = str(send(a, "moscow", soon(a, 50.0, 9.0))["id"])
    c, token = _officer(a)
    assert _shown(c, notice_id) == {"withdraw", "amend"}
    _refused(a, c, token, f"/notices/{notice_id}/remove", 422, "not a protected site")


# Who sees the button, and who may post it ----------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_only_roles_that_work_calls_request_a_removal(nodes: tuple[Node, Node], role: Role) -> None:
    a, b = nodes
    site_id = _site(a, b)
    c, token = _officer(a, role, "someone")
    works = role in WORKERS
    assert ("remove" in _shown(c, site_id)) is works
    if works:
        return
    before = a.snapshot()
    r = c.post(f"/notices/{site_id}/remove", data={"csrf": token, "text": REASON})
    assert r.status_code == 403
    assert 'data-refused="forbidden"' in r.text
    assert a.snapshot() == before
