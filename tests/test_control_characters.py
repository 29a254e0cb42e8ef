"""Control characters in what people and peers send: refused with a clear error where text
comes in (the API, the wire, paths and queries), and spelled out, never obeyed, where the
CLI shows text. PostgreSQL refuses NUL in text (a server error before), and an ESC
sequence or a carriage return in a subject would act on the officer's terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select

from openline.adapters.schema import calls as calls_table
from openline.cli import render
from openline.core.encoding import control_character, visible
from openline.errors import InvalidInput
from openline.services import calls, handover, outbox
from tests.inproc import Node, picked_up, place_and_ring
from tests.notice_docs import soon
from tests.test_inbox_refusals import pending_wire, post_signed, refused_code, refused_for_good

ESC = "Convoy \x1b[2J\x1b[H moving"  # would clear the screen and home the cursor


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("plain text", None),
        ("tab\tand\nlines\r\n", None),
        ("nul\x00", "\\x00 at position 4"),
        (ESC, "\\x1b at position 8"),
        ("del\x7f", "\\x7f at position 4"),
        ("c1\x9b", "\\x9b at position 3"),
    ],
)
def test_control_character_names_the_first_one(text: str, found: str | None) -> None:
    assert control_character(text) == found


def test_visible_spells_out_what_a_terminal_would_obey() -> None:
    assert visible("a\x1b[2Jb\rc\td\ne") == "a\\x1b[2Jb\\x0dc\td\ne"


def test_the_cli_shows_control_characters_spelled_out(monkeypatch: Any) -> None:
    buffer = io.StringIO()
    console = render._Console(file=buffer, markup=False, width=120)
    monkeypatch.setattr(render, "out", console)
    render.out.print(f"subject {ESC}")
    render.listing(("id", "subject"), [("c-1", ESC)])
    shown = buffer.getvalue()
    assert "\x1b" not in shown
    assert shown.count("Convoy \\x1b[2J\\x1b[H moving") == 2
    assert isinstance(console, Console)


def test_text_with_control_characters_is_refused_and_changes_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    before = a.snapshot()
    # The body's model refuses them, naming the field, before the service is asked (which
    # refuses them too: the console's forms and the wire come to it without the model).
    attempts = [
        ("/api/v1/calls", {"peer": "moscow", "subject": ESC}, "subject"),
        ("/api/v1/calls", {"peer": "\x00", "subject": "hello"}, "peer"),  # a lookup: a 500 on PostgreSQL
        (f"/api/v1/calls/{call_id}/messages", {"text": "nul\x00"}, "text"),
        (f"/api/v1/calls/{call_id}/messages", {"text": "hi", "lang": "en\x00"}, "lang"),
        (f"/api/v1/calls/{call_id}/close", {"summary": ESC}, "summary"),
        ("/api/v1/notices", {"peer": "moscow", "notice": soon(a, 48.0, 9.0, text=ESC)}, "notice"),
        ("/api/v1/handovers", {"note": "nul\x00"}, "note"),
    ]
    for path, body, field in attempts:
        r = a.api.post(path, json=body)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["code"] == "invalid_input"
        assert f"body.{field}: Value error, must not contain control characters" in r.json()["detail"], (
            r.json()
        )
    assert a.snapshot() == before


@pytest.mark.parametrize(
    "path",
    ["/api/v1/calls/a%00b", "/api/v1/calls?peer=x%00", "/api/v1/lines/a%1Bb/policy", "/history?peer=%00"],
)
def test_a_control_character_in_a_path_or_query_is_refused(nodes: tuple[Node, Node], path: str) -> None:
    a, _ = nodes
    before = a.snapshot()
    r = a.api.get(path)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "invalid_input"
    assert "control character" in r.json()["detail"]
    assert a.snapshot() == before


def test_the_services_refuse_them_where_no_model_stands_before_them(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    before = a.snapshot()
    for attempt, message in [
        (
            lambda: calls.place(a.station, "admin", "moscow", ESC, "routine"),
            "subject must not contain control",
        ),
        (lambda: calls.say(a.station, "admin", call_id, "hi", "en\x1b"), "lang must be a language tag"),
        (lambda: handover.hand_over(a.station, "admin", "nul\x00"), "note: must not contain control"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            attempt()
    assert a.snapshot() == before


def test_a_peer_message_with_control_characters_is_refused_on_the_wire(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b)
    a.drain()
    # What a peer whose own checks are missing would send: the body is sealed and signed.
    with a.station.tx() as tx:
        line_id = tx.conn.execute(
            select(calls_table.c.line_id).where(calls_table.c.id == call_id)
        ).scalar_one()
        outbox.enqueue(a.station, tx, line_id, "call.say", call_id, {"text": ESC, "lang": "en"})
    (env,) = pending_wire(a)
    before = b.snapshot()
    r = post_signed(a, b, {"envelopes": [env]})
    assert refused_code(r) == "malformed"
    refused_for_good(b, before, env, r.json()["results"][0])
