"""`openline init` makes a station in an empty PostgreSQL database only."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from openline.errors import HomeError
from openline.services.setup import init_home
from tests.pg import PostgresServer


def _tables(server: PostgresServer, name: str) -> list[str]:
    with psycopg.connect(server.url(name).replace("+psycopg", ""), autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return sorted(r[0] for r in rows)


def test_init_into_a_database_of_another_application_changes_nothing(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    with psycopg.connect(pg_server.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "someone_else" TEMPLATE template0')
    try:
        with psycopg.connect(pg_server.url("someone_else").replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CREATE TABLE invoices (id integer)")
        url = pg_server.url("someone_else") + "?password=hunter2"
        with pytest.raises(HomeError) as info:
            init_home(tmp_path / "home", "stuttgart", "http://127.0.0.1:8400", database_url=url)
        assert info.value.code.value == "home_exists"
        assert (
            "is not empty (it holds invoices): use an empty database; nothing was changed"
            in info.value.detail
        )
        assert "hunter2" not in info.value.detail
        assert _tables(pg_server, "someone_else") == ["invoices"]
        assert not (tmp_path / "home").exists()
    finally:
        pg_server.drop_database("someone_else")


def test_init_into_a_database_that_holds_a_station_does_not_migrate_it(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    name, url = pg_server.fresh_database()
    try:
        init_home(tmp_path / "first", "stuttgart", "http://127.0.0.1:8400", database_url=url)
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '0016'")  # an older station
        with pytest.raises(HomeError) as info:
            init_home(tmp_path / "second", "moscow", "http://127.0.0.1:8401", database_url=url)
        assert "already holds a station" in info.value.detail
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0016",)
    finally:
        pg_server.discard_database(name)


def test_a_station_made_in_process_starts_from_the_migrated_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite's own speed: every station a test makes in process starts as a copy of
    the database tests/conftest.py migrated once, instead of running all the migrations
    again (0.3 s in each of more than a thousand tests, unseen for a session when `init`
    began to look into its database first). `openline init` processes still migrate."""
    from alembic import command

    def migrating(*args: object, **kwargs: object) -> None:
        raise AssertionError("init_home ran the migrations")

    monkeypatch.setattr(command, "upgrade", migrating)
    init_home(tmp_path / "alpha", "alpha", "http://alpha.test:8000")
    assert (tmp_path / "alpha" / "openline.db").stat().st_size > 0
