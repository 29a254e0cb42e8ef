"""The SQLite adapter: WAL, durable commits, checkpoints off the commit path, and what
kind of transaction `read()` and `write()` begin."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from openline.adapters import db as db_module
from openline.adapters.db import Checkpointer, Database, Outage, reachable, sqlite_backup
from openline.errors import DatabaseUnavailable
from tests.full_disk import disk_full


def pragma(db: Database, name: str) -> object:
    with db.read() as conn:
        return conn.execute(text(f"PRAGMA {name}")).scalar()


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert pragma(db, "journal_mode") == "wal"
    assert pragma(db, "synchronous") == 2  # FULL
    assert pragma(db, "wal_autocheckpoint") == 1000  # SQLite's own, for the CLI and tests
    db.dispose()


def test_background_checkpoints_move_the_wal_into_the_database(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", background_checkpoints=True)
    assert pragma(db, "wal_autocheckpoint") == 0  # no commit pays for a checkpoint
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT)"))
    for i in range(200):
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": "x" * 2000 + str(i)})
    db_file = tmp_path / "x.db"
    assert db_file.stat().st_size < 100_000  # the rows are still only in the WAL ...
    checkpointer = Checkpointer(db, interval=0.05)
    checkpointer.start()
    checkpointer.stop()
    assert db_file.stat().st_size > 200 * 2000  # ... and now in the database file
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 200
    db.dispose()


def test_a_checkpointed_wal_is_cut_back_to_its_limit(tmp_path: Path) -> None:
    """A burst grew the WAL past `WAL_SIZE_LIMIT`: once checkpointed, the next transaction
    starts it over and it shrinks, instead of keeping its largest size for months."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", background_checkpoints=True)
    assert pragma(db, "journal_size_limit") == db_module.WAL_SIZE_LIMIT
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (v BLOB)"))
    for _ in range(24):  # 24 MiB of rows, in the WAL only (no automatic checkpoints)
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (randomblob(1048576))"))
    wal = tmp_path / "x.db-wal"
    assert wal.stat().st_size > db_module.WAL_SIZE_LIMIT
    db.checkpoint()
    with db.write() as conn:
        conn.execute(text("INSERT INTO t VALUES (x'00')"))
    assert wal.stat().st_size <= db_module.WAL_SIZE_LIMIT
    db.dispose()


def _table(db: Database) -> None:
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT)"))


def _other(tmp_path: Path) -> sqlite3.Connection:
    """A second connection to the same file, as another process would have (the CLI)."""
    return sqlite3.connect(tmp_path / "x.db", timeout=0, isolation_level=None)


def test_a_write_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    _table(db)
    other = _other(tmp_path)
    # Not a statement run yet, and already no other writer can begin (BEGIN IMMEDIATE).
    with db.write(), pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # released at the commit
    other.execute("ROLLBACK")
    other.close()
    db.dispose()


def test_a_write_that_raises_leaves_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    _table(db)

    def use_case() -> None:
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES ('a')"))
            conn.execute(text("INSERT INTO t VALUES ('b')"))
            raise RuntimeError("the use case failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        use_case()
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    db.dispose()


def test_a_read_sees_one_snapshot_and_takes_no_write_lock(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    _table(db)
    other = _other(tmp_path)
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
        other.execute("BEGIN IMMEDIATE")  # a writer is not held up by the reader ...
        other.execute("INSERT INTO t VALUES ('a')")
        other.execute("COMMIT")
        # ... and the reader goes on seeing the snapshot it started with.
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
    other.close()
    db.dispose()


def test_a_write_that_cannot_begin_says_the_database_is_unavailable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", pool=False)
    _table(db)

    @event.listens_for(db.engine, "connect")
    def _impatient(dbapi_conn: Any, _record: Any) -> None:  # after the station's 30 s
        dbapi_conn.execute("PRAGMA busy_timeout=50")

    other = _other(tmp_path)
    other.execute("BEGIN IMMEDIATE")
    locked = r"cannot reach its database \(database is locked\)"
    with pytest.raises(DatabaseUnavailable, match=locked) as exc, db.write():
        pass
    assert exc.value.status == 503
    assert isinstance(exc.value.__cause__, DBAPIError)
    other.execute("ROLLBACK")
    with db.write() as conn:  # free again
        conn.execute(text("INSERT INTO t VALUES ('a')"))
    other.close()
    db.dispose()


def test_a_database_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")  # its directory does not exist
    with pytest.raises(DatabaseUnavailable, match=r"\(unable to open database file\)"), db.read():
        pass
    db.dispose()


def test_a_statement_the_database_refuses_is_not_called_unavailable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(DBAPIError, match="no such table") as exc, db.read() as conn:
        conn.execute(text("SELECT * FROM nowhere"))
    assert not isinstance(exc.value, DatabaseUnavailable)
    db.dispose()


def test_reachability_hooks_hear_each_change_once(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'later' / 'x.db'}")
    heard: list[bool] = []
    db.on_reachability.append(heard.append)
    for _ in range(2):
        with pytest.raises(DatabaseUnavailable), db.read():
            pass
    assert (heard, db.up) == ([False], False)
    (tmp_path / "later").mkdir()
    for _ in range(2):
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
    assert (heard, db.up) == ([False, True], True)
    db.dispose()


def test_a_database_that_cannot_store_is_down_until_writes_commit_again(tmp_path: Path) -> None:
    """A full disk: reads work, writes fail. Each read said the database was back at once,
    so /metrics and the console never showed the outage; and as a full disk lets a small
    write through now and then, one commit does not say it is over either."""
    now = [0.0]
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", monotonic=lambda: now[0])
    _table(db)
    heard: list[bool] = []
    db.on_reachability.append(heard.append)

    def store(size: int) -> None:
        with db.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (:v)"), {"v": "x" * size})

    settle = db_module.SETTLE_SECONDS
    with disk_full(db):
        with pytest.raises(DatabaseUnavailable, match=r"\(database or disk is full\)"):
            store(20_000)  # more pages than the file has
        assert (heard, db.up) == ([False], False)
        for _ in range(3):
            assert pragma(db, "quick_check") == "ok"  # reads work ...
        store(10)  # ... and so does a write that fits in the pages the file has
        now[0] += settle / 2
        with pytest.raises(DatabaseUnavailable):
            store(20_000)
        now[0] += settle
        assert pragma(db, "quick_check") == "ok"  # the last write failed: still down
        assert (heard, db.up) == ([False], False)
    store(20_000)  # room again: a write commits, long after the last that failed ...
    assert (heard, db.up) == ([False, True], True)  # ... and the outage is over
    with disk_full(db), pytest.raises(DatabaseUnavailable):
        store(20_000)
    store(10)  # soon after a failure, a commit alone ...
    assert (heard, db.up) == ([False, True, False], False)
    now[0] += settle
    assert pragma(db, "quick_check") == "ok"  # ... is borne out once none has failed for a while
    assert (heard, db.up) == ([False, True, False, True], True)
    db.dispose()


def test_a_damaged_database_file_is_damaged_and_no_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "x.db"
    db = Database(f"sqlite:///{path}")
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (:v)"), [{"v": "x" * 500}] * 100)
    db.dispose()  # the last connection closed: everything is in the file, no WAL
    with path.open("r+b") as f:  # the table's root page, the second of the file
        f.seek(4096)
        f.write(b"\xde\xad\xbe\xef" * 1024)
    heard: list[bool] = []
    db.on_reachability.append(heard.append)
    with pytest.raises(DatabaseUnavailable) as raised, db.read() as conn:
        conn.execute(text("SELECT count(*) FROM t"))
    damaged = raised.value
    assert (damaged.code, damaged.status, damaged.reason) == (
        "database_damaged",
        503,
        "database disk image is malformed",
    )
    assert str(damaged).startswith("the station's database is damaged (database disk image is malformed)")
    assert str(path) not in str(damaged)  # what clients (and peers) are told
    assert damaged.diagnostics().startswith(  # what the operator is told
        f"the database {path} is damaged (SQLite: database disk image is malformed): "
        "restore the latest backup of the station home, with the station stopped"
    )
    assert (heard, db.up) == ([], True)  # the database answered: it is not out of reach
    outage = Outage("timers loop")
    with caplog.at_level(logging.ERROR, logger="openline.db"):
        assert all(outage.absorbs(damaged) for _ in range(3))
    assert [r.getMessage() for r in caplog.records] == [  # once, not at every retry
        "database damaged; the timers loop retries, but only a restored backup mends it: "
        + damaged.diagnostics()
    ]
    with pytest.raises(DatabaseUnavailable) as copied:
        sqlite_backup(path, tmp_path / "copy.db")
    assert copied.value.code == "database_damaged"
    assert copied.value.diagnostics().startswith(f"the database {path} is damaged (SQLite: ")
    db.dispose()


@pytest.mark.parametrize(
    ("error", "out_of_reach"),
    [
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.errors.DiskFull("could not extend file: No space left on device"), True),
        (psycopg.errors.TooManyConnections("sorry, too many clients already"), True),
        (psycopg.OperationalError("connection failed: Connection refused"), True),  # no SQLSTATE
        (psycopg.errors.QueryCanceled("canceling statement due to user request"), False),
        (psycopg.errors.UniqueViolation("duplicate key value"), False),
    ],
)
def test_which_postgresql_errors_mean_the_database_is_out_of_reach(
    error: Exception, out_of_reach: bool
) -> None:
    wrapped = DBAPIError("SELECT 1", {}, error)
    with pytest.raises(DatabaseUnavailable if out_of_reach else DBAPIError) as raised, reachable():
        raise wrapped
    assert isinstance(raised.value, DatabaseUnavailable) is out_of_reach
    if out_of_reach:
        assert str(error).splitlines()[0] in str(raised.value)


def test_the_checkpointer_says_once_that_the_database_is_damaged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The WAL checkpointer reads the file through the raw connection, outside
    `reachable`: a damaged file made it log a traceback every second, for ever."""
    path = tmp_path / "x.db"
    db = Database(f"sqlite:///{path}")
    tries: list[float] = []

    def damaged() -> None:
        tries.append(time.monotonic())
        exc = sqlite3.DatabaseError("database disk image is malformed")
        exc.sqlite_errorcode = 11  # type: ignore[attr-defined]  # SQLITE_CORRUPT, as SQLite sets it
        raise exc

    db.checkpoint = damaged  # type: ignore[method-assign]
    checkpointer = Checkpointer(db, interval=0.01)
    with caplog.at_level(logging.WARNING, logger="openline.db"):
        checkpointer.start()
        deadline = time.monotonic() + 10
        while len(tries) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        checkpointer._stop.set()
        checkpointer._thread.join(5)
    assert len(tries) >= 5
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "ERROR",
            "database damaged; the checkpointer retries, but only a restored backup mends it: "
            f"the database {path} is damaged (SQLite: database disk image is malformed): restore the "
            'latest backup of the station home, with the station stopped (docs/operations.md, "Backing '
            'up and restoring")',
            None,
        )
    ]
    db.dispose()


def test_a_last_checkpoint_that_fails_is_said_once_and_left_to_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM on a full disk: the checkpoint at stop raised, the rest of the shutdown was
    skipped and the station still logged that it had stopped cleanly."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", background_checkpoints=True)

    def full() -> None:
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = 13  # type: ignore[attr-defined]  # SQLITE_FULL, as SQLite sets it
        raise exc

    db.checkpoint = full  # type: ignore[method-assign]
    checkpointer = Checkpointer(db, interval=3600)
    checkpointer.start()
    with caplog.at_level(logging.WARNING, logger="openline.db"):
        checkpointer.stop()
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "WARNING",
            "the last checkpoint failed (database or disk is full); the WAL keeps every commit and "
            "is copied into the database file after the next start",
            None,
        )
    ]
    assert db.unfinished == ["the last WAL checkpoint (nothing is lost: the WAL keeps every commit)"]
    db.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ol:s3cret@db/st", "postgresql://ol:***@db/st"),
        ("postgresql://ol@db/st?password=s3cret", "postgresql://ol@db/st"),
        ("postgresql://ol@db/st?sslmode=require&PASSWORD=s3cret", "postgresql://ol@db/st?sslmode=require"),
        ("sqlite:////srv/openline/st/openline.db", "sqlite:////srv/openline/st/openline.db"),
    ],
)
def test_a_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    """Errors, logs and `backup` show the URL; libpq takes a password in either place."""
    from openline.adapters.db import shown_url

    assert shown_url(url) == shown
