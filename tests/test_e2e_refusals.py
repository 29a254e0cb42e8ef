"""Two real `openline serve` processes: an envelope the receiver refuses does not hold the
line. The sender's outbox holds a message an older version wrote, with a field this
version does not know (what upgrading one station before the other left behind); it is
refused for good, and the messages behind it arrive."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from openline.adapters.schema import lines
from openline.runtime import build_station
from openline.services import outbox
from openline.settings import load
from tests.harness import StationProcess, picked_up_call, running_pair, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(
    tmp_path: Path, database_url: str | None, second_database_url: str | None
) -> Iterator[tuple[StationProcess, StationProcess]]:
    with running_pair(tmp_path, database_urls=(database_url, second_database_url)) as stations:
        yield stations


def _left_by_an_older_version(home: Path, call_id: str) -> str:
    """Queue, in a stopped station's outbox, a message whose body this version refuses."""
    station = build_station(load(home))
    try:
        with station.tx() as tx:
            line = tx.conn.execute(select(lines.c.id)).scalar_one()
            body = {"text": "from the old version", "lang": "en", "colour": "red"}
            return outbox.enqueue(station, tx, line, "call.say", call_id, body).id
    finally:
        station.db.dispose()


def test_a_refused_message_lets_the_ones_behind_it_through(
    pair: tuple[StationProcess, StationProcess],
) -> None:
    a, b = pair
    call_id = picked_up_call(a, b)

    a.stop()
    bad = _left_by_an_older_version(a.home, call_id)
    a.start()
    a.cli("say", call_id, "Behind it.")

    def thread(s: StationProcess) -> list[tuple[str | None, str | None]]:
        return [(m["text"], m["refused"]) for m in s.cli_json("show", call_id)["messages"]]

    why = "malformed: envelope body of call.say: unknown fields ['colour']"
    wait_for(lambda: thread(b) == [(None, why), ("Behind it.", None)], what="both messages at moscow")
    wait_for(lambda: thread(a) == [("from the old version", why), ("Behind it.", None)], what="settled")
    (line,) = a.cli_json("lines")
    assert line["outbox_depth"] == 0
    assert line["last_error"] is None
    for s, direction in ((a, "out"), (b, "in")):
        (alert,) = [x for x in s.cli_json("alerts") if x["kind"] == "envelope_refused"]
        assert (alert["subject"], alert["detail"]["direction"]) == (bad, direction)


def test_a_client_that_goes_away_mid_request_is_no_error(tmp_path: Path) -> None:
    """Anyone who reaches the port can open a request and drop it before its body is read
    (the body is read before the request is authenticated): an ordinary event, logged as
    such, not an error with a traceback that buries the real ones."""
    s = StationProcess.create(tmp_path, "stuttgart")
    s.start()
    try:
        head = (
            "POST /_openline/v1/send/0190c0de-0000-7000-8000-000000000000 HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
            "Authorization: OpenLine x\r\n\r\n"
        )
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
                sock.sendall(head.encode() + b'{"envelopes": [')
        wait_for(
            lambda: s.log_path.read_text().count("client went away before its request was read") == 3,
            what="three dropped requests logged",
        )
        assert s.cli_json("lines") == []  # and the station answers
        log = s.log_path.read_text()
        assert "unexpected error" not in log
        assert "Traceback" not in log
    finally:
        s.stop()
