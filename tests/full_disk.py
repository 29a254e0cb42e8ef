"""An SQLite station database that cannot grow, as on a full disk, without root or a small
file system: SQLite refuses a page past `PRAGMA max_page_count` with SQLITE_FULL, "database
or disk is full", the error a full disk gives. As there, a write that fits in the pages the
file has may still succeed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from openline.adapters.db import Database


@contextmanager
def disk_full(db: Database) -> Iterator[None]:
    """While the block runs, no transaction of `db` can grow its file."""

    def cap(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(db.engine, "checkout", cap)
    try:
        yield
    finally:
        event.remove(db.engine, "checkout", cap)
        db.engine.dispose()  # pooled connections keep their cap: new ones have none
