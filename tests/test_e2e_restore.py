"""Two real `openline serve` processes: a station lost and restored from its last backup
(`openline backup`, as docs/operations.md has it) takes up the line again by itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import StationProcess, picked_up_call, running_pair, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[StationProcess, StationProcess]]:
    """On SQLite: `openline backup` copies a SQLite station (a PostgreSQL one is backed up
    with the database's own tools)."""
    with running_pair(tmp_path) as stations:
        yield stations


def _texts(s: StationProcess, call_id: str) -> list[str]:
    return [m["text"] for m in s.cli_json("show", call_id)["messages"]]


def test_a_station_restored_from_its_backup_takes_up_the_line_again(
    pair: tuple[StationProcess, StationProcess], tmp_path: Path
) -> None:
    a, b = pair
    call_id = picked_up_call(a, b)
    a.cli("backup", str(tmp_path / "last-night"))

    a.cli("say", call_id, "Said after the backup.")
    wait_for(lambda: _texts(b, call_id) == ["Said after the backup."], what="at moscow")
    b.cli("say", call_id, "Answered after the backup.")
    wait_for(lambda: len(_texts(a, call_id)) == 2, what="the answer at stuttgart")

    # stuttgart's disk is lost: its last backup is started in its place, at its address.
    a.stop()
    restored = StationProcess(tmp_path / "last-night", "stuttgart", a.port)
    restored.start()
    try:
        wait_for(lambda: _texts(restored, call_id) == ["Answered after the backup."], what="sent again")
        restored.cli("say", call_id, "Back on the line.")
        b.cli("say", call_id, "Heard you.")
        wait_for(lambda: _texts(b, call_id)[-2:] == ["Back on the line.", "Heard you."], what="moscow")
        wait_for(lambda: _texts(restored, call_id)[-2:] == ["Back on the line.", "Heard you."], what="back")
        for s in (restored, b):
            (line,) = s.cli_json("lines")
            assert line["last_error"] is None
            assert [x["kind"] for x in s.cli_json("alerts") if x["kind"] == "line_resynchronised"]
    finally:
        restored.stop()
