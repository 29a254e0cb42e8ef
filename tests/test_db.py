"""The SQLite adapter: WAL, durable commits, checkpoints off the commit path."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from openline.adapters.db import Checkpointer, Database


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
