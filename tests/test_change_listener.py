"""PostgreSQL's LISTEN/NOTIFY feeding the console: changes are heard, and a listener that
loses its connection says so when it listens again, so that nothing committed meanwhile
goes unshown."""

from __future__ import annotations

import queue

from sqlalchemy import text

from openline.adapters.db import ChangeListener, Database, announce
from tests.pg import PostgresServer

LISTENING = "(listening)"


def test_the_listener_hears_changes_and_resyncs_after_losing_its_connection(
    pg_server: PostgresServer,
) -> None:
    name, url = pg_server.fresh_database()
    db = Database(url)
    heard: queue.Queue[str] = queue.Queue()
    listener = ChangeListener(db, heard.put, lambda: heard.put(LISTENING), poll_seconds=0.1)
    listener.start()
    try:
        assert heard.get(timeout=10) == LISTENING
        with db.write() as conn:
            announce(conn, '["calls"]')
        assert heard.get(timeout=10) == '["calls"]'
        # Its session ended from outside, as a server restart or a proxy's idle cut does.
        with db.read() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                )
            ).scalar_one()
        assert ended == 1
        assert heard.get(timeout=10) == LISTENING
        with db.write() as conn:
            announce(conn, '["alerts"]')
        assert heard.get(timeout=10) == '["alerts"]'
        assert heard.empty()
    finally:
        listener.stop()
        db.dispose()
        pg_server.discard_database(name)
