"""The station database: SQLite in WAL mode by default, PostgreSQL for production.

Writes go through `Database.write()`, one transaction per use case. On SQLite every
write transaction starts with BEGIN IMMEDIATE, so two writers queue on the database
lock instead of deadlocking when a reader upgrades; inside one process a lock keeps
writer threads from spinning on SQLITE_BUSY. `Database.read()` transactions start with a
plain (deferred) BEGIN: in WAL mode a reader sees one snapshot and neither waits for a
writer nor holds one up, whereas BEGIN IMMEDIATE would take the write lock and leave
readers and writers sleeping in SQLite's busy handler. synchronous=FULL: a receipt says
"stored", and that must survive a power cut, not just a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from openline.errors import InvalidInput

_READ_ONLY = "openline_read_only"  # execution option that marks `Database.read()` connections


def normalise_url(url: str) -> str:
    """Accept the usual spellings and pick our drivers (pysqlite, psycopg 3)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"database URL is not valid: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise InvalidInput(f"database URL must be sqlite:// or postgresql://, got {backend!r}")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Database:
    def __init__(self, url: str, *, pool: bool = True) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
        if not pool:
            kwargs = {k: v for k, v in kwargs.items() if k not in ("pool_size", "pool_pre_ping")}
            kwargs["poolclass"] = NullPool
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            _configure_sqlite(self.engine)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed if the block returns, rolled back if it raises."""
        with self._write_lock or nullcontext(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (on SQLite a deferred BEGIN), rolled back when the block ends."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_READ_ONLY: True})
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")
