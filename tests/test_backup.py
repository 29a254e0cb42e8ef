"""`openline backup`: a consistent copy of a station home taken while the station runs,
which is itself a home that serves; refusals that leave everything as it was."""

from __future__ import annotations

import stat
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from openline.services.setup import init_home
from tests.harness import OPENLINE, StationProcess, connect, start_all, stop_all, wait_for
from tests.pg import PostgresServer
from tests.unwritable import KINDS, REASONS, unwritable

MESSAGES = 120


def _backup(home: Path, destination: Path, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *OPENLINE, "backup", "--home", str(home), str(destination)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.mark.e2e
def test_a_backup_taken_while_the_station_talks_is_a_consistent_home_that_serves(tmp_path: Path) -> None:
    a = StationProcess.create(tmp_path, "stuttgart")
    b = StationProcess.create(tmp_path, "moscow")
    copy = tmp_path / "backups" / "stuttgart"
    sent: list[str] = []
    try:
        start_all(a, b)
        connect(a, b)
        call_id = a.cli_json("call", "moscow", "--subject", "Backed up mid-call")["id"]
        wait_for(lambda: b.call_state(call_id) is not None, what="call delivered")
        b.cli("pickup", call_id)
        wait_for(lambda: a.call_state(call_id) == "picked_up", what="picked up")

        def talk() -> None:
            with a.api() as api:
                for i in range(MESSAGES):
                    api.post(f"/calls/{call_id}/messages", json={"text": f"message {i}"}).raise_for_status()
                    sent.append(f"message {i}")
                    time.sleep(0.02)

        talker = threading.Thread(target=talk)
        talker.start()
        wait_for(lambda: len(sent) >= 10, what="messages flowing")
        at_start = len(sent)
        done = _backup(a.home, copy)
        talker.join(60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Station stuttgart backed up to {copy}\n")
        assert "integrity check ok" in done.stdout
        assert stat.S_IMODE(copy.stat().st_mode) == 0o700
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in copy.iterdir()} == {
            name: 0o600
            for name in (
                "settings.toml",
                "signing.key",
                "encryption.key",
                "api-token",
                "ledger.key",
                "cosign.key",
                "openline.db",
            )
        }
        assert len(sent) == MESSAGES
        a.stop()

        # The copy, served where the station was: the call and a prefix of its messages, as
        # they stood at one moment while they were being written.
        restored = StationProcess(copy, "stuttgart", a.port)
        restored.start()
        shown = restored.cli_json("show", call_id)
        texts = [m["text"] for m in shown["messages"]]
        assert at_start <= len(texts) < MESSAGES
        assert texts == sent[: len(texts)]
        assert shown["state"] == "picked_up"
        restored.stop()
    finally:
        stop_all(a, b)


def test_backup_refuses_a_destination_that_holds_anything_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home, "stuttgart", "http://127.0.0.1:8400")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("an operator's notes")
    before_home, before_taken = _snapshot(home), _snapshot(taken)
    refused = _backup(home, taken)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error (home_exists): {taken} exists and is not an empty directory;")
    inside = _backup(home, home / "backup")
    assert inside.returncode == 1
    assert inside.stderr.startswith(f"error (invalid_input): {home / 'backup'} is inside the station home")
    assert (_snapshot(home), _snapshot(taken)) == (before_home, before_taken)
    assert not (home / "backup").exists()
    missing = _backup(tmp_path / "nowhere", tmp_path / "new")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error (home_missing): no station home at ")
    assert not (tmp_path / "new").exists()


def test_backup_refuses_a_destination_in_the_home_through_a_symbolic_link(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home, "stuttgart", "http://127.0.0.1:8400")
    link = tmp_path / "alink"
    link.symlink_to(home)
    before = _snapshot(home)
    through = _backup(home, link / "copy")
    assert through.returncode == 1
    assert through.stderr.startswith(
        f"error (invalid_input): {link / 'copy'} is inside the station home {home} "
        f"(through a symbolic link: it is {home.resolve() / 'copy'}): back it up somewhere else"
    ), through.stderr
    linked_home = _backup(link, home / "copy")
    assert linked_home.returncode == 1
    assert linked_home.stderr.startswith(
        f"error (invalid_input): {home / 'copy'} is inside the station home {link}"
    ), linked_home.stderr
    assert _snapshot(home) == before
    assert not (home / "copy").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_backup_where_the_system_refuses_to_write_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    home = tmp_path / "home"
    init_home(home, "stuttgart", "http://127.0.0.1:8400")
    prefix, place = unwritable(kind, tmp_path)
    before = _snapshot(tmp_path)
    destinations = [place / "backups" / "stuttgart"]
    if kind != "under_a_file":
        destinations.append(place)  # an empty directory, there already
    for destination in destinations:
        refused = _backup(home, destination, prefix)
        assert refused.returncode == 1, refused.stderr
        assert "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert refused.stderr.startswith(
            f"error (cannot_write): cannot back up to {destination}: {REASONS[kind]}"
        ), refused.stderr
        assert refused.stderr.rstrip().endswith("; nothing was changed")
    assert _snapshot(tmp_path) == before
    assert not (place / "backups").exists()
    if place.is_dir():
        assert list(place.iterdir()) == []


def test_a_postgresql_home_is_backed_up_without_its_database(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    name, url = pg_server.fresh_database()
    home = tmp_path / "home"
    # A password as a parameter, which libpq takes (the test server trusts every login).
    init_home(home, "stuttgart", "http://127.0.0.1:8400", database_url=f"{url}?password=hunter2")
    done = _backup(home, tmp_path / "copy")
    pg_server.discard_database(name)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "database: PostgreSQL (postgresql+psycopg://postgres@127.0.0.1:" in said
    assert "back it up with pg_dump" in said
    assert "hunter2" not in done.stdout + done.stderr
    # Started as it is, the copy would be a second station on the live database.
    assert "restore the dump into a new, empty database, set database_url in" in said
    assert "As it is, the copy names the live database" in said
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(
        ["settings.toml", "signing.key", "encryption.key", "api-token", "ledger.key", "cosign.key"]
    )
    assert _snapshot(tmp_path / "copy") == {
        n: c for n, c in _snapshot(home).items() if n in _snapshot(tmp_path / "copy")
    }
