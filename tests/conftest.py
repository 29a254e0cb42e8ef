from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PostgresServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None means the station home's own SQLite file; otherwise a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:16]
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def second_database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:16]
    yield server.create_database(name)
    server.drop_database(name)
