"""Drafts in the console: Save as draft beside Send, the draft in the history of this
station only with the conflicts it would have, its Send and Discard buttons for roles
that work calls, each refused on the page with nothing changed once the draft is gone;
and a rejection's reason shown on both stations, never to the auditor."""

from __future__ import annotations

import json
import re

import pytest

from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import act, send, show, soon
from tests.test_console_notices_actions import WORKERS, _buttons, _doc, _officer, _row, _textarea

REASON = "Overlaps our corridor"


def _drafts(node: Node) -> list[dict[str, object]]:
    return [n for n in node.api.get("/api/v1/notices").json() if n["state"] == "draft"]


def test_save_as_draft_keeps_it_here_with_its_conflicts_then_send_sends_it(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    theirs = send(b, "stuttgart", soon(b, 48.0, 9.0))["id"]  # the draft below would conflict with it
    b.drain()
    c, token = _officer(a)
    page = c.get("/notices").text
    assert '<button type="submit" name="draft" value="1">Save as draft</button>' in page
    before = b.snapshot()
    r = c.post(
        "/notices", data={"csrf": token, "peer": "moscow", "notice": json.dumps(_doc(a)), "draft": "1"}
    )
    assert r.status_code == 303
    (draft,) = _drafts(a)
    assert r.headers["location"] == f"/notices#notice-{draft['id']}"
    assert draft["created_by"] == "duty"
    a.drain()
    assert b.snapshot() == before  # nothing crossed the line

    row = _row(c.get("/notices").text, str(draft["id"]))
    assert "on this station only" in row
    assert _buttons(row, str(draft["id"])) == {"send", "edit", "discard"}
    preview = re.search(r'<div class="would-conflict" data-would-conflict="1">.*?</div>', row, re.S)
    assert preview, row
    assert f'volume 1 with <a href="#notice-{theirs}"><code class="nid">{theirs}</code></a> volume 1' in (
        preview.group(0)
    )
    assert show(a, theirs)["conflicts"] == []  # a preview, recorded nowhere

    r = c.post(f"/notices/{draft['id']}/send", data={"csrf": token})
    assert r.status_code == 303
    assert r.headers["location"] == f"/notices#notice-{draft['id']}"
    sent = show(a, str(draft["id"]))
    assert (sent["state"], sent["would_conflict"]) == ("sent", None)
    assert [x["other_notice"] for x in sent["conflicts"]] == [theirs]
    row = _row(c.get("/notices").text, str(draft["id"]))
    assert _buttons(row, str(draft["id"])) == {"withdraw", "amend"}
    assert "would-conflict" not in row
    a.drain()
    assert show(b, str(draft["id"]))["state"] == "delivered"


def test_a_draft_with_no_conflict_says_so_and_is_discarded(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    draft = send(a, "moscow", _doc(a), draft=True)
    c, token = _officer(a)
    row = _row(c.get("/notices").text, draft["id"])
    assert 'data-would-conflict="0"' in row
    assert "would conflict with nothing" in row
    r = c.post(f"/notices/{draft['id']}/discard", data={"csrf": token})
    assert r.status_code == 303
    assert show(a, draft["id"])["state"] == "discarded"
    assert _buttons(_row(c.get("/notices").text, draft["id"]), draft["id"]) == set()
    # Gone: neither button is shown, and posting them is refused with nothing changed.
    before = a.snapshot()
    for action in ("send", "discard"):
        r = c.post(f"/notices/{draft['id']}/{action}", data={"csrf": token})
        assert r.status_code == 409, action
        assert "discarded" in r.text, action
        assert 'role="alert"' in r.text
    assert a.snapshot() == before
    a.drain()
    assert b.api.get("/api/v1/notices").json() == []  # the peer never heard of it


def test_a_sent_notice_is_neither_sent_again_nor_discarded(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    notice_id = send(a, "moscow", _doc(a))["id"]
    c, token = _officer(a)
    before = a.snapshot()
    r = c.post(f"/notices/{notice_id}/send", data={"csrf": token})
    assert r.status_code == 409
    assert "not a draft" in r.text
    r = c.post(f"/notices/{notice_id}/discard", data={"csrf": token})
    assert r.status_code == 409
    assert "cannot discard a notice that is sent" in r.text
    assert a.snapshot() == before


def test_a_refused_draft_is_shown_by_the_form_and_nothing_is_kept(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    c, token = _officer(a)
    bad = _doc(a)
    bad["extents"][0]["volume"]["altitude_upper"]["units"] = "KM"
    before = a.snapshot()
    r = c.post("/notices", data={"csrf": token, "peer": "moscow", "notice": json.dumps(bad), "draft": "1"})
    assert r.status_code == 422
    assert "expected &#39;M&#39; or &#39;FT&#39;, got &#39;KM&#39;" in r.text
    assert 'role="alert" data-form-error' in r.text
    assert a.snapshot() == before


def test_edit_fills_the_form_with_the_draft_and_saves_or_sends_it_in_place(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    draft = send(a, "moscow", _doc(a, text="First plan"), draft=True)
    c, token = _officer(a)
    page = c.get(f"/notices?edit={draft['id']}").text
    assert f'Edit draft <code class="nid">{draft["id"]}</code>' in page
    assert f'<input type="hidden" name="edits" value="{draft["id"]}">' in page
    assert json.loads(_textarea(page, "notice")) == {
        "category": draft["category"],
        "text": "First plan",
        "extents": draft["extents"],
    }
    assert re.findall(r'<option value="([^"]*)" selected>', page)[0] == "moscow"  # the draft keeps its peer
    assert "Save and send" in page
    assert "Save the draft" in page

    # A refused edit shows the form again, still editing this draft, and keeps nothing.
    bad = _doc(a, lat=49.0, text="Second plan")
    bad["extents"][0]["volume"]["altitude_upper"]["units"] = "KM"
    before = a.snapshot()
    form = {"csrf": token, "peer": "moscow", "edits": draft["id"], "notice": json.dumps(bad), "draft": "1"}
    r = c.post("/notices", data=form)
    assert r.status_code == 422
    assert 'role="alert" data-form-error' in r.text
    assert f'<input type="hidden" name="edits" value="{draft["id"]}">' in r.text
    assert a.snapshot() == before

    r = c.post("/notices", data={**form, "notice": json.dumps(_doc(a, lat=49.0, text="Second plan"))})
    assert r.status_code == 303
    assert r.headers["location"] == f"/notices#notice-{draft['id']}"
    saved = show(a, draft["id"])
    assert (saved["state"], saved["text"]) == ("draft", "Second plan")
    assert [d["id"] for d in _drafts(a)] == [draft["id"]]  # changed in place, not a second draft

    del form["draft"]  # the primary button: save and send
    r = c.post("/notices", data={**form, "notice": json.dumps(_doc(a, lat=49.5, text="Third plan"))})
    assert r.status_code == 303
    a.drain()
    assert (show(a, draft["id"])["state"], show(b, draft["id"])["text"]) == ("delivered", "Third plan")
    before = a.snapshot()
    r = c.get(f"/notices?edit={draft['id']}")
    assert r.status_code == 409
    assert "cannot be edited: it is delivered, not our draft" in r.text
    assert a.snapshot() == before


@pytest.mark.parametrize("role", list(Role))
def test_only_roles_that_work_calls_send_or_discard_a_draft(nodes: tuple[Node, Node], role: Role) -> None:
    a, _ = nodes
    draft = send(a, "moscow", _doc(a), draft=True)
    c, token = _officer(a, role, "someone")
    works = role in WORKERS
    page = c.get("/notices").text
    assert _buttons(_row(page, draft["id"]), draft["id"]) == ({"send", "edit", "discard"} if works else set())
    assert ("Save as draft" in page) is works
    if works:
        return
    before = a.snapshot()
    for action in ("send", "discard"):
        r = c.post(f"/notices/{draft['id']}/{action}", data={"csrf": token})
        assert r.status_code == 403, action
        assert 'data-refused="forbidden"' in r.text
    form = {"csrf": token, "peer": "moscow", "notice": json.dumps(_doc(a)), "draft": "1"}
    assert c.post("/notices", data=form).status_code == 403
    assert c.post("/notices", data={**form, "edits": draft["id"]}).status_code == 403
    assert c.get(f"/notices?edit={draft['id']}").status_code == 403
    assert a.snapshot() == before


# A rejection's reason --------------------------------------------------------------------


def test_a_rejections_reason_is_shown_on_both_stations_but_not_to_the_auditor(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    notice_id = send(a, "moscow", _doc(a))["id"]
    a.drain()
    c, token = _officer(b)
    assert c.post(f"/notices/{notice_id}/reject", data={"csrf": token, "reason": REASON}).status_code == 303
    b.drain()
    for node in (a, b):
        assert show(node, notice_id)["rejection_reason"] == REASON, node.name
        officer, _ = _officer(node, Role.WATCH_OFFICER, "reader")
        row = _row(officer.get("/notices").text, notice_id)
        said = f'<span class="said" dir="auto">{REASON}</span>'
        assert f'<p class="notice-reason" data-rejection-reason>Rejected: {said}</p>' in row, node.name
        auditor, _ = _officer(node, Role.AUDITOR, "inspector")
        page = auditor.get("/notices").text
        assert REASON not in page, node.name  # neither in the history nor in the map's data
        assert "data-rejection-reason" not in _row(page, notice_id), node.name
    # A notice not rejected has no reason.
    other = send(a, "moscow", _doc(a, lat=50.0))["id"]
    assert show(a, other)["rejection_reason"] is None
    a.drain()
    act(b, other, "acknowledge")
    assert show(b, other)["rejection_reason"] is None
