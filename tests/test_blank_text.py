"""Text an officer writes must show something to read: a subject of a zero-width space
rang as an empty one, while "   " was refused. Invisible characters inside real text
(a zero-width joiner in an emoji, a ZWNJ in Persian) are text, and kept."""

from __future__ import annotations

import pytest

from openline.core.encoding import blank
from tests.inproc import Node, picked_up

PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with its ZWNJ
INVISIBLE = ["\u200b", "\ufeff", "\u2800\u2800", " \u200b\u200d ", "\u0301", "\u3164", "\u202e\u202c", "\n\t"]


@pytest.mark.parametrize("text", INVISIBLE)
def test_only_invisible_characters_is_blank(text: str) -> None:
    assert blank(text)


@pytest.mark.parametrize("text", ["x", "👩\u200d🚒 on site", PERSIAN, "\u200bA", "e\u0301", "٤"])
def test_text_with_something_to_read_is_not_blank(text: str) -> None:
    assert not blank(text)


@pytest.mark.parametrize("text", INVISIBLE)
def test_a_call_message_summary_or_handover_of_nothing_to_read_is_refused(
    nodes: tuple[Node, Node], text: str
) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    before = a.snapshot()
    for path, body, field in (
        ("/api/v1/calls", {"peer": "moscow", "subject": text}, "subject"),
        (f"/api/v1/calls/{call_id}/messages", {"text": text}, "text"),
        (f"/api/v1/calls/{call_id}/close", {"summary": text}, "summary"),
        ("/api/v1/handovers", {"note": text}, "note"),
    ):
        r = a.api.post(path, json=body)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["code"] == "invalid_input"
        assert r.json()["detail"].startswith(field), r.json()["detail"]
    assert a.snapshot() == before


def test_a_subject_with_a_joiner_inside_real_text_is_placed(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    r = a.api.post("/api/v1/calls", json={"peer": "moscow", "subject": "👩\u200d🚒 at " + PERSIAN})
    assert r.status_code == 201, r.text
    assert r.json()["subject"] == "👩\u200d🚒 at " + PERSIAN
