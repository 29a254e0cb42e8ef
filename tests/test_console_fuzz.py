"""The console's forms, fed what people and scripts mistype or worse: whatever a logged-in
administrator posts, the station answers without a server error (the API has the same
test through its OpenAPI document, tests/test_api_fuzz.py; forms have no schema)."""

from __future__ import annotations

import random

from openline.services.accounts import Role
from tests.inproc import Node, place_and_ring
from tests.test_console import add_user, browser, csrf_of, log_in

# Each caught a server error once: over 4,300 digits (int() refuses), '²' and '١٢'
# (str.isdigit() passes them), nesting deeper than the JSON decoder recurses.
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1.5",
    "1e309",
    "nan",
    "inf",
    "0x10",
    "9" * 5000,
    "\u00b2",
    "\u0661\u0662",
    "\x00",
    "[" * 5000,
    "{}",
    "[]",
    "null",
    "true",
    "a" * 100_000,
    "<script>alert(1)</script>",
    "[/] [bold]x",
]


def _forms(call_id: str) -> dict[str, list[str]]:
    """Each form the console posts, with the fields its page sends."""
    terms = ["notice_deadline_s", "margin_horizontal_m", "margin_vertical_m", "margin_minutes"]
    return {
        "/admin/lines": ["card", "answer_deadline_s", *terms],
        "/admin/lines/stuttgart/policy": ["policy"],
        "/admin/lines/stuttgart/terms": ["answer_deadline_s", *terms],
        "/admin/users": ["name", "role", "email", "password"],
        "/calls": ["peer", "subject", "priority"],
        f"/calls/{call_id}/messages": ["text", "lang"],
        f"/calls/{call_id}/close": ["summary"],
        "/notices": ["peer", "notice", "amends", "draft"],
        "/handovers": ["note"],
        "/password": ["current_password", "new_password", "confirm_password"],
        "/alerts/1/ack": [],
        "/alerts/x/ack": [],
        "/handovers/x/ack": [],
        "/notices/x/acknowledge": ["reason"],
        # Last: a suspended line refuses the forms above (409), which is not what they test.
        "/admin/lines/stuttgart/suspend": ["reason"],
        "/admin/lines/stuttgart/resume": [],
    }


def test_console_forms_answer_nasty_input_without_a_server_error(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    add_user(b, "chief", Role.ADMINISTRATOR)
    client = browser(b)
    client.raise_server_exceptions = False  # a server error is an answer to count here
    log_in(client, "chief")
    token = csrf_of(client.get("/admin").text)
    rnd = random.Random(20261127)  # the same posts every run
    failures = []
    for path, fields in _forms(call_id).items():
        for _ in range(25):
            data = {"csrf": token, **{f: rnd.choice(NASTY) for f in fields if rnd.random() < 0.8}}
            r = client.post(path, data=data)
            if r.status_code >= 500:
                failures.append(f"{r.status_code} POST {path} { ({k: v[:24] for k, v in data.items()}) }")
    for query in ("limit=" + "9" * 5000, "since=%C2%B2", "limit=-1", "peer=%00", "state=" + "x" * 5000):
        r = client.get("/history?" + query)
        if r.status_code >= 500:
            failures.append(f"{r.status_code} GET /history?{query[:40]}")
    typed = [v for v in NASTY if len(v) < 10_000] + ["0,0", "91,0", "0,0,0", "2026-11-27T00:00:00Z"]
    for _ in range(40):  # which notices covered a place: four typed fields (a URL's length)
        fields = ("at", "radius_m", "when", "altitude_m")
        params = {f: rnd.choice(typed) for f in fields}
        r = client.get("/notices/place", params={k: v for k, v in params.items() if rnd.random() < 0.8})
        if r.status_code >= 500:
            shown = {k: v[:24] for k, v in params.items()}
            failures.append(f"{r.status_code} GET /notices/place {shown}")
    for path in ("/report?period=2026-13", "/report?period=%C2%B2", "/roster?at=noon", "/calls/%00"):
        r = client.get(path)
        if r.status_code >= 500:
            failures.append(f"{r.status_code} GET {path}")
    assert failures == [], "\n".join(failures)
