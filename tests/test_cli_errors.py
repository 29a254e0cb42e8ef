"""Bad input through the real CLI and a real station: clear errors, nothing changed."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command as alembic

from openline.adapters import migrate
from openline.adapters.db import Database
from openline.services.setup import init_home
from tests.harness import OPENLINE, StationProcess, wait_for
from tests.pg import PostgresServer
from tests.ports import free_port
from tests.unwritable import KINDS, REASONS, unwritable

pytestmark = pytest.mark.e2e


def run_cli(
    *args: str,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`openline ARGS` with no OPENLINE_* variables but `home` and `env`, run under `prefix`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    if home is not None:
        environment["OPENLINE_HOME"] = str(home)
    environment.update(env or {})
    return subprocess.run(
        [*prefix, *OPENLINE, *args], env=environment, capture_output=True, text=True, timeout=60
    )


def tree(path: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(path)): (p.stat().st_mode, p.read_bytes())
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_init_creates_a_private_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = run_cli("init", "--home", str(home), "--name", "stuttgart", "--url", "http://127.0.0.1:9")
    assert r.returncode == 0, r.stderr
    assert "one-time password" in r.stdout
    for name in ("signing.key", "encryption.key", "api-token", "openline.db", "settings.toml"):
        assert (home / name).stat().st_mode & 0o777 == 0o600, name
    assert (home.stat().st_mode & 0o077) == 0
    settings = (home / "settings.toml").read_text()
    assert 'name = "stuttgart"' in settings
    assert "password" not in settings


def test_init_on_an_existing_home_refuses_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert (
        run_cli("init", "--home", str(home), "--name", "stuttgart", "--url", "http://127.0.0.1:9").returncode
        == 0
    )
    before = tree(home)
    r = run_cli("init", "--home", str(home), "--name", "other", "--url", "http://127.0.0.1:10")
    assert r.returncode == 1
    assert "home_exists" in r.stderr
    assert "rm -r" in r.stderr
    assert tree(home) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Bad Name", "--url", "http://127.0.0.1:9"], "station name"),
        # "lowercase letters" said nothing of the Cyrillic ones it refused.
        (["--name", "москва", "--url", "http://127.0.0.1:9"], "1-63 lowercase ASCII letters a-z, digits 0-9"),
        (["--name", "ok", "--url", "ftp://127.0.0.1"], "http(s)"),
        (["--name", "ok", "--url", "http://127.0.0.1:9", "--database-url", "mysql://x"], "sqlite"),
        # Accepted before, then every command failed (a path) or every peer saw a password.
        (["--name", "ok", "--url", "http://127.0.0.1:9/foo"], "http(s)://host[:port]"),
        (["--name", "ok", "--url", "http://127.0.0.1:9/?q=1"], "http(s)://host[:port]"),
        (["--name", "ok", "--url", "http://user:pw@127.0.0.1:9"], "http(s)://host[:port]"),
        # Accepted before, and every peer then refused the card.
        (["--name", "ok", "--url", "http://127.0.0.1:9", "--language", ""], "language tags"),
        (["--name", "ok", "--url", "http://127.0.0.1:9", "--language", "x" * 40], "language tags"),
    ],
)
def test_init_with_bad_input_creates_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    home = tmp_path / "home"
    r = run_cli("init", "--home", str(home), *args)
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not home.exists()


def test_init_on_a_file_refuses_and_leaves_the_file(tmp_path: Path) -> None:
    home = tmp_path / "afile"
    home.write_bytes(b"precious")
    r = run_cli("init", "--home", str(home), "--name", "ok", "--url", "http://127.0.0.1:9")
    assert r.returncode == 1
    assert "is a file, not a directory" in r.stderr
    assert "Traceback" not in r.stderr
    assert home.read_bytes() == b"precious"


def test_commands_without_a_home_say_how_to_make_one(tmp_path: Path) -> None:
    r = run_cli("lines", home=tmp_path / "nowhere")
    assert r.returncode == 1
    assert "openline init" in r.stderr


def test_cli_says_when_the_station_is_not_running(tmp_path: Path) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    r = s.cli("lines", check=False)
    assert r.returncode == 1
    assert "station_not_running" in r.stderr
    assert "openline serve" in r.stderr


def test_serve_on_a_port_another_process_holds_refuses_before_anything_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    made = run_cli("init", "--home", str(home), "--name", "stuttgart", "--url", f"http://127.0.0.1:{port}")
    assert made.returncode == 0, made.stderr
    before = tree(home)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        r = run_cli("serve", home=home)
    assert r.returncode == 1, r.stderr
    assert f"error (cannot_listen): cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "--listen HOST:PORT" in r.stderr
    # Refused before the database was opened: no migration, no worker, no alert raised.
    assert tree(home) == before
    assert "Application startup" not in r.stderr + r.stdout


def db_rows(s: StationProcess) -> dict[str, list[tuple[object, ...]]]:
    from sqlalchemy import create_engine, select

    from openline.adapters.schema import metadata

    # The deliverer's own bookkeeping moves with time on a pending line; everything else
    # must stay exactly as it was.
    volatile = {"retry_attempt", "retry_at", "last_error", "last_contact_at"}
    engine = create_engine(f"sqlite:///{s.home / 'openline.db'}")
    _ledger_settled(engine)
    with engine.connect() as conn:
        rows = {
            t.name: sorted(
                (tuple(r) for r in conn.execute(select(*[c for c in t.columns if c.name not in volatile]))),
                key=repr,
            )
            for t in metadata.sorted_tables
        }
    engine.dispose()
    return rows


def _ledger_settled(engine: Any, timeout: float = 10.0) -> None:
    """Wait for the serving station's ledger worker to have sequenced every entry and
    signed a checkpoint of the whole log: its own bookkeeping, on its own schedule, which
    must not pass for a change made by a refused command."""
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            pending = conn.execute(text("SELECT count(*) FROM ledger_pending")).scalar_one()
            size = conn.execute(text("SELECT coalesce(max(size), 0) FROM ledger_state")).scalar_one()
            signed = conn.execute(text("SELECT coalesce(max(size), 0) FROM ledger_checkpoints")).scalar_one()
        if pending == 0 and signed == size:
            return
        time.sleep(0.05)
    raise AssertionError(f"the ledger did not settle in {timeout} s")


def test_bad_cards_are_refused_and_change_nothing(running: StationProcess, tmp_path: Path) -> None:
    s = running
    peer = StationProcess.create(tmp_path, "moscow")
    good = json.loads(peer.cli("card").stdout)
    before = db_rows(s)
    cases = {
        "tampered": {**good, "urls": ["http://127.0.0.1:1"]},
        "wrong fingerprint": {**good, "fingerprint": "0000 " * 7 + "0000"},
        "missing field": {k: v for k, v in good.items() if k != "signature"},
    }
    for label, card in cases.items():
        path = tmp_path / f"{label}.card"
        path.write_text(json.dumps(card))
        r = s.cli("line", "add", str(path), check=False)
        assert r.returncode == 1, label
        assert "bad_card" in r.stderr, (label, r.stderr)
    (tmp_path / "garbage.card").write_text("{not json")
    r = s.cli("line", "add", str(tmp_path / "garbage.card"), check=False)
    assert r.returncode == 1
    assert "not JSON" in r.stderr
    r = s.cli("line", "add", str(tmp_path / "missing.card"), check=False)
    assert r.returncode == 1
    assert "cannot read" in r.stderr
    own = tmp_path / "own.card"
    own.write_text(s.cli("card").stdout)
    r = s.cli("line", "add", str(own), check=False)
    assert r.returncode == 1
    assert "own card" in r.stderr
    assert db_rows(s) == before


def test_a_fresh_station_says_its_ledger_is_empty_until_its_first_line(
    running: StationProcess, tmp_path: Path
) -> None:
    """docs/cli.md told a fresh station to run `ledger checkpoint` for `report` to work; with
    nothing in the ledger there is nothing to sign, and `report` pointed to it all the same."""
    s = running
    before = db_rows(s)
    report = s.cli("report", check=False)
    assert report.returncode == 1
    assert report.stderr == (
        "error (conflict): the ledger has no signed checkpoint, and the report is computed against one:"
        " the ledger is empty, nothing has been recorded yet; its first entry is the first line added"
        " (`openline line add`)\n"
    )
    checkpoint = s.cli("ledger", "checkpoint", check=False)
    assert checkpoint.returncode == 1
    assert checkpoint.stderr == (
        "error (not_found): the ledger is empty: there is nothing to sign; its first entry is the"
        " first line added (`openline line add`)\n"
    )
    assert db_rows(s) == before
    card = tmp_path / "moscow.card"
    card.write_text(StationProcess.create(tmp_path, "moscow").cli("card").stdout)
    s.cli("line", "add", str(card))
    signed = s.cli_json("ledger", "checkpoint")
    assert signed["size"] >= 1
    assert s.cli_json("report")["checkpoint"]["size"] >= 1


def test_a_new_key_for_a_pinned_name_is_refused(running: StationProcess, tmp_path: Path) -> None:
    s = running
    first = StationProcess.create(tmp_path / "one", "moscow")
    impostor = StationProcess.create(tmp_path / "two", "moscow")
    (tmp_path / "first.card").write_text(first.cli("card").stdout)
    (tmp_path / "impostor.card").write_text(impostor.cli("card").stdout)
    s.cli("line", "add", str(tmp_path / "first.card"))
    before = db_rows(s)
    r = s.cli("line", "add", str(tmp_path / "impostor.card"), check=False)
    assert r.returncode == 1
    assert "key_changed" in r.stderr
    assert "out of band" in r.stderr
    assert db_rows(s) == before


def test_bad_call_input_is_refused_and_changes_nothing(running: StationProcess) -> None:
    s = running
    before = db_rows(s)
    r = s.cli("call", "ankara", "--subject", "hello", check=False)
    assert r.returncode == 1
    assert "not_found" in r.stderr
    assert "ankara" in r.stderr
    r = s.cli("call", "ankara", "--subject", "hello", "--priority", "urgent", check=False)
    assert r.returncode == 1
    assert "priority" in r.stderr
    r = s.cli("pickup", "01a21640-cfba-7a33-ad6d-919cd288df34", check=False)
    assert r.returncode == 1
    assert "not_found" in r.stderr
    r = s.cli("show", "no-such-call", check=False)
    assert r.returncode == 1
    assert "not_found" in r.stderr
    with s.api() as api:
        for path, body in [
            ("/calls", {"peer": "x", "subject": ""}),
            ("/calls", {"peer": "x", "subject": "s", "priority": "urgent"}),
            ("/calls", {"peer": "x", "subject": "s", "extra": 1}),
            ("/calls", {"peer": "x", "subject": "s" * 501}),
        ]:
            resp = api.post(path, json=body)
            assert resp.status_code == 422, body
            assert resp.json()["code"] == "invalid_input"
            assert resp.headers["content-type"] == "application/problem+json"
        resp = api.get("/calls", params={"state": "dancing"})
        assert resp.status_code == 422
        # Each filter's refusal says what it takes, not a length limit it happens to break.
        for name, value, says in [
            ("state", "dancing", "state must be one of placed,"),
            ("direction", "sideways", "direction must be in or out, got 'sideways'"),
            ("priority", "whenever", "priority must be one of flash,"),
        ]:
            resp = api.get("/calls", params={name: value})
            assert resp.status_code == 422, name
            assert says in resp.json()["detail"], resp.json()
        bad_token = api.get("/lines", headers={"Authorization": "Bearer nope"})
        assert bad_token.status_code == 401
    # An id is one path segment, whatever it holds: it names no other resource, and an
    # answer that is not JSON (a redirect) is an error, not a traceback.
    for weird in ("", " ", "?x=1", "../lines", "../calls", "#x", "a/b"):
        r = s.cli("show", weird, check=False)
        assert r.returncode == 1, (weird, r.stdout)
        assert r.stderr.startswith("error ("), (weird, r.stderr)
        assert "Traceback" not in r.stderr
    assert db_rows(s) == before


# "Конвой" typed in a cp1251 terminal, as Python hands bytes that are not UTF-8 on (PEP 383).
CP1251 = "Конвой".encode("cp1251").decode("utf-8", "surrogateescape")


def test_an_argument_that_is_not_utf8_is_refused_before_anything_runs(
    running: StationProcess, tmp_path: Path
) -> None:
    """Each command crashed, with a traceback, where it first encoded such an argument."""
    s = running
    before = db_rows(s)
    for args, n, byte in [
        (("call", "stuttgart", "--subject", CP1251), 4, 0),
        (("user", "add", f"ivan{CP1251}", "--role", "auditor"), 3, 4),
        (("calls", f"--peer={CP1251}"), 2, 7),
    ]:
        r = s.cli(*args, check=False)
        assert r.returncode == 1, r.stderr
        assert r.stderr == f"error (invalid_input): argument {n} is not UTF-8 text (byte {byte} is 0xca)\n"
        assert r.stdout == ""
    assert db_rows(s) == before
    home = tmp_path / "home"
    r = run_cli(
        "init", "--home", str(home), "--name", "ok", "--url", "http://127.0.0.1:9", "--language", CP1251
    )
    assert r.returncode == 1
    assert r.stderr == "error (invalid_input): argument 9 is not UTF-8 text (byte 0 is 0xca)\n"
    assert not home.exists()


def test_a_user_name_rule_says_which_letters(running: StationProcess) -> None:
    """It said "lowercase letters" and then refused `москва`: the rule is ASCII a-z."""
    r = running.cli("user", "add", "москва", "--role", "auditor", check=False)
    assert r.returncode == 1
    assert "user name must be 1-64 lowercase ASCII letters a-z, digits 0-9, '.', '_' or '-'" in r.stderr


def test_a_margin_that_is_not_a_number_is_a_usage_error(running: StationProcess, tmp_path: Path) -> None:
    s = running
    peer = StationProcess.create(tmp_path, "moscow")
    card = tmp_path / "moscow.card"
    card.write_text(peer.cli("card").stdout)
    before = db_rows(s)
    for value in ("nan", "inf"):
        r = s.cli("line", "add", str(card), "--margin-horizontal", value, check=False)
        assert r.returncode == 2, r.stderr
        assert "expected a finite number" in r.stderr
        assert "Traceback" not in r.stderr
    assert db_rows(s) == before


def test_python_dash_m_openline_works() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "openline", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0
    assert "openline" in r.stdout.lower()


@pytest.mark.parametrize("damage", [b"\x00\xff\xfe", b"olt_abc\x1bdef", b"", b"olt abc"])
def test_a_damaged_api_token_file_is_a_clear_error(tmp_path: Path, damage: bytes) -> None:
    home = tmp_path / "home"
    made = run_cli("init", "--home", str(home), "--name", "stuttgart", "--url", "http://127.0.0.1:9")
    assert made.returncode == 0, made.stderr
    (home / "api-token").write_bytes(damage)
    before = tree(home)
    r = run_cli("lines", home=home)
    assert r.returncode == 1, r.stderr
    assert "error (home_missing): station home" in r.stderr
    assert "api-token file is damaged" in r.stderr
    assert "Traceback" not in r.stderr
    assert tree(home) == before


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    """A refusal's whole standard error: one line, no traceback."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.parametrize("damage", ["removed", "emptied"])
def test_a_station_whose_database_file_is_gone_is_refused_and_no_database_is_made(
    tmp_path: Path, damage: str
) -> None:
    # `cp -a` of a home without its database, or a volume that is not mounted: `serve`
    # made a blank station there, with no users, lines or ledger.
    home = tmp_path / "home"
    init_home(home, "stuttgart", f"http://127.0.0.1:{free_port()}")
    database = home / "openline.db"
    if damage == "removed":
        database.unlink()
    else:
        database.write_bytes(b"")
    before = tree(home)
    found = "the file does not exist" if damage == "removed" else "the file is empty"
    for command in (["serve"], ["ledger", "export", "--out", str(tmp_path / "bundle")]):
        r = run_cli(*command, home=home)
        assert r.returncode == 1, (command, r.stderr)
        line = _one_line(r)
        assert line.startswith(
            f"error (home_missing): the database at sqlite:///{database} holds no OpenLine station "
            f"({found}): "
        ), line
        assert "moved or deleted" in line
        assert "not mounted" in line
        assert "only `openline init` makes a new station" in line
        # Nothing made: no database file, no -wal or -shm beside it, no bundle.
        assert tree(home) == before
    assert not (tmp_path / "bundle").exists()


def test_an_empty_postgresql_database_is_refused_and_gets_no_table(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    import psycopg

    name, url = pg_server.fresh_database()
    home = tmp_path / "home"
    init_home(home, "stuttgart", f"http://127.0.0.1:{free_port()}", database_url=url)
    empty = "t_empty_" + uuid.uuid4().hex[:8]
    server = f"host=127.0.0.1 port={pg_server.port} user=postgres"
    with psycopg.connect(f"{server} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{empty}" TEMPLATE template0')
    try:
        # A mistyped URL: the server trusts any password, and none may be shown.
        mistyped = f"postgresql://postgres:s3cret@127.0.0.1:{pg_server.port}/{empty}"
        r = run_cli("serve", home=home, env={"OPENLINE_DATABASE_URL": mistyped})
        assert r.returncode == 1, r.stderr
        line = _one_line(r)
        assert line.startswith(
            f"error (home_missing): the database at postgresql+psycopg://postgres:***@127.0.0.1:"
            f"{pg_server.port}/{empty} holds no OpenLine station"
        ), line
        assert "is the URL mistyped" in line
        assert "only `openline init` makes a new station" in line
        assert "s3cret" not in r.stderr + r.stdout
        with psycopg.connect(f"{server} dbname={empty}") as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
        assert tables == (0,)
    finally:
        pg_server.drop_database(empty)
        pg_server.discard_database(name)


def test_a_database_written_by_a_newer_openline_is_one_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_home(home, "stuttgart", f"http://127.0.0.1:{free_port()}")
    with closing(sqlite3.connect(home / "openline.db")) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    before = tree(home)
    r = run_cli("serve", home=home)
    assert r.returncode == 1, r.stderr
    line = _one_line(r)  # it was Alembic's traceback of 280 lines
    assert line == (
        f"error (database_too_new): the database at sqlite:///{home / 'openline.db'} was written by a "
        f"newer OpenLine (schema revision 9999; this version knows up to {migrate.head()}): upgrade "
        "OpenLine, or restore a backup taken with this version"
    )
    assert tree(home) == before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o622], ids=lambda mode: f"{mode:04o}")
def test_an_api_token_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    home = tmp_path / "home"
    init_home(home, "stuttgart", "http://127.0.0.1:9")
    token = home / "api-token"
    token.chmod(mode)
    before = tree(home)
    r = run_cli("lines", home=home)
    assert r.returncode == 1, r.stderr
    # Refused before the CLI looked for the station (which is not running: station_not_running).
    assert _one_line(r) == (
        f"error (unsafe_permissions): permissions {mode:04o} for {token} are too open: the token lets "
        f"anyone act as the station's administrator; chmod 600 {token}"
    )
    assert tree(home) == before


@pytest.mark.parametrize(
    ("key", "grants"),
    [
        ("signing.key", "the key lets anyone act as this station"),
        ("encryption.key", "the key lets anyone open what is sealed to this station"),
        ("ledger.key", "the key lets anyone sign checkpoints of this station's ledger"),
        ("cosign.key", "the key lets anyone cosign checkpoints as this station"),
    ],
)
def test_a_key_file_others_may_read_or_write_is_refused_and_nothing_starts(
    tmp_path: Path, key: str, grants: str
) -> None:
    home = tmp_path / "home"
    init_home(home, "stuttgart", f"http://127.0.0.1:{free_port()}")
    (home / key).chmod(0o640)
    before = tree(home)
    for command in (["serve"], ["card"], ["ledger", "key"]):
        r = run_cli(*command, home=home)
        assert r.returncode == 1, (command, r.stderr)
        assert _one_line(r) == (
            f"error (unsafe_permissions): permissions 0640 for {home / key} are too open: {grants}; "
            f"chmod 600 {home / key}"
        ), command
        assert "Application startup" not in r.stdout + r.stderr
        assert tree(home) == before  # not even migrated: the keys are read first


def _damage(database: Path, how: str) -> None:
    """What a failing disk, a file system or a careless copy does to a database file."""
    size = database.stat().st_size
    with database.open("r+b") as f:
        if how == "garbage":  # a run of bad sectors in the middle of the file
            f.seek(size // 3)
            f.write(b"\xde\xad\xbe\xef" * (size // 12))
        elif how == "truncated":  # a copy cut short
            f.truncate(size // 2)
        else:  # its header overwritten
            f.write(b"this is no SQLite database")


@pytest.mark.parametrize(
    ("damage", "sqlite_says"),
    [
        ("garbage", "database disk image is malformed"),
        ("truncated", "database disk image is malformed"),
        ("header", "file is not a database"),
    ],
)
def test_a_damaged_database_is_refused_with_what_to_do_and_left_as_it_was(
    tmp_path: Path, damage: str, sqlite_says: str
) -> None:
    home = tmp_path / "home"
    init_home(home, "stuttgart", f"http://127.0.0.1:{free_port()}")
    database = home / "openline.db"
    _damage(database, damage)
    before = tree(home)
    commands = {
        "serve": ["serve"],
        "ledger export": ["ledger", "export", "--out", str(tmp_path / "bundle")],
        "backup": ["backup", str(tmp_path / "copy")],
    }
    for label, command in commands.items():
        r = run_cli(*command, home=home)
        assert r.returncode == 1, (label, r.stderr)
        line = _one_line(r)  # it was `database_unavailable`, "cannot open", and no way out
        assert line.startswith(
            f"error (database_damaged): the database {database} is damaged (SQLite: {sqlite_says}): "
        ), (label, line)
        assert "restore the latest backup of the station home" in line, line
        assert 'docs/operations.md, "Backing up and restoring"' in line, line
        assert tree(home) == before, label
    assert not (tmp_path / "bundle").exists()
    assert not (tmp_path / "copy").exists()


def test_damage_found_while_serving_is_a_clear_error_logged_once_per_worker(tmp_path: Path) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    database = s.home / "openline.db"
    # The calls table and its indexes: not read at start, but by the timer loop, the
    # auditor and `openline calls` (a new station's tables are one page each).
    with closing(sqlite3.connect(database)) as conn:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        pages = [p for (p,) in conn.execute("SELECT rootpage FROM sqlite_schema WHERE tbl_name = 'calls'")]
    with database.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\xde\xad\xbe\xef" * (page_size // 4))

    def damaged_pages() -> list[bytes]:
        with database.open("rb") as f:
            return [(f.seek((page - 1) * page_size), f.read(page_size))[1] for page in pages]

    before = damaged_pages()
    s.start()
    try:
        r = s.cli("calls", check=False)
        assert r.returncode == 1, r.stderr
        assert _one_line(r).startswith(  # it was `error (internal)`: "see its log"
            "error (database_damaged): the station's database is damaged (database disk image is "
            "malformed); only its operator can mend it"
        )
        wait_for(lambda: "database damaged; the timers loop" in s.log_path.read_text(), what="timers")
        time.sleep(2.5)  # the timer loop and the auditor try again every second
        with httpx.Client() as client:
            assert client.get(s.url + "/healthz").status_code == 200
    finally:
        assert s.stop() == 0
    log = [json.loads(line) for line in s.log_path.read_text().splitlines()]
    assert not [e for e in log if "exception" in e]  # it was two tracebacks a second
    told = [e["event"] for e in log if e["event"].startswith("database damaged")]
    assert len(told) == len(set(told)) >= 2, told  # once per worker, not at every retry
    for event in told:
        assert f"the database {database} is damaged (SQLite: database disk image is malformed)" in event
        assert "restore the latest backup" in event
    assert damaged_pages() == before  # nothing was written over them


def test_serve_still_brings_an_older_station_up_to_date(tmp_path: Path) -> None:
    s = StationProcess.create(tmp_path, "stuttgart")
    db = Database(f"sqlite:///{s.home / 'openline.db'}", pool=False)
    try:
        cfg = migrate._config()
        with db.write() as conn:
            cfg.attributes["connection"] = conn
            alembic.downgrade(cfg, "0013")
        assert migrate.current(db) == "0013"
        s.start()
        try:
            assert s.cli_json("lines") == []
        finally:
            s.stop()
        assert migrate.current(db) == migrate.head()
        # The operator sees the upgrade begin (it can take a while) and end.
        said = [json.loads(line) for line in s.log_path.read_text().splitlines()]
        upgrading = [e for e in said if e["event"] in ("upgrading the database", "database upgraded")]
        assert [(e["event"], e["schema_from"], e["schema_to"]) for e in upgrading] == [
            ("upgrading the database", "0013", migrate.head()),
            ("database upgraded", "0013", migrate.head()),
        ]
        assert upgrading[1]["seconds"] >= 0
        s.start()  # up to date: nothing said of it
        s.stop()
        said = [json.loads(line) for line in s.log_path.read_text().splitlines()]
        assert len([e for e in said if e["event"] == "database upgraded"]) == 1
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("OPENLINE_LOG_LEVEL", "verbose", "must be one of debug, info, warning, error, got 'verbose'"),
        ("OPENLINE_LOG_LEVEL", "", "must be one of debug, info, warning, error, got ''"),
        ("OPENLINE_WEBHOOK_SECRET", "foo", "a webhook secret starts with 'whsec_'"),
        ("OPENLINE_WEBHOOK_SECRET", "whsec_foo", "a webhook secret is 'whsec_' followed by base64"),
        ("OPENLINE_WEBHOOK_SECRET", "whsec_J3V6MA==", "a webhook secret needs at least 24 bytes, got 4"),
    ],
)
def test_a_bad_log_level_or_webhook_secret_is_refused_before_anything_starts(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    # They were tracebacks from `serve`, after it had taken its port and migrated (and a
    # secret without webhook_urls was not looked at until someone added one).
    home = tmp_path / "home"
    init_home(home, "stuttgart", f"http://127.0.0.1:{free_port()}")
    before = tree(home)
    key = variable.removeprefix("OPENLINE_").lower()
    for command in ("serve", "card"):
        r = run_cli(command, home=home, env={variable: value})
        assert r.returncode == 1, r.stderr
        assert _one_line(r) == (
            f"error (invalid_input): settings in {home / 'settings.toml'} are not valid: "
            f"{key} (from {variable}): {says}"
        )
        assert "Application startup" not in r.stderr + r.stdout
    assert tree(home) == before


@pytest.mark.parametrize("kind", KINDS)
def test_init_where_the_system_refuses_to_write_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    prefix, place = unwritable(kind, tmp_path)
    before = tree(tmp_path)
    homes = [place / "stations" / "stuttgart"]
    if kind != "under_a_file":
        homes.append(place)  # an empty directory, there already
    for home in homes:
        args = ["--home", str(home), "--name", "stuttgart", "--url", "http://127.0.0.1:9"]
        r = run_cli("init", *args, prefix=prefix)
        assert r.returncode == 1, r.stderr
        line = _one_line(r)
        refusal = f"error (cannot_write): cannot create the station home {home}: {REASONS[kind]}"
        assert line.startswith(refusal), line
        assert line.endswith("; nothing was changed")
    assert tree(tmp_path) == before
    assert not (place / "stations").exists()
    if place.is_dir():
        assert list(place.iterdir()) == []
