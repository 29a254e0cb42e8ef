from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from hypothesis import settings

from openline.core.clock import FakeClock
from openline.services import accounts
from tests.browser import browser  # noqa: F401 (fixtures for every test module)
from tests.harness import StationProcess
from tests.inproc import Node, link, make_node
from tests.pg import PostgresServer
from tests.servers import receiver, relay  # noqa: F401

# Timing belongs in bench/: a slow CI machine must not fail a property for being slow.
settings.register_profile("openline", deadline=None, print_blob=True)
settings.load_profile("openline")


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """In process, argon2id at the library's cheapest cost: the same algorithm and code
    path, but a hash takes microseconds instead of the 0.12 s that every station set-up
    and login paid, hundreds of times over. `serve` processes started by the end-to-end
    tests keep the real cost, and tests/test_password_hashing.py checks what it is."""
    real = accounts._HASHER
    accounts._HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)
    yield
    accounts._HASHER = real


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        server.make_template()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _fresh_database(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None means the station home's own SQLite file; otherwise a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:16]
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    yield from _fresh_database(backend, request)


@pytest.fixture
def second_database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A second station's database, on the same backend as the first."""
    yield from _fresh_database(backend, request)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def nodes(
    tmp_path: Path, clock: FakeClock, database_url: str | None, second_database_url: str | None
) -> Iterator[tuple[Node, Node]]:
    """stuttgart and moscow in process, line active, on one fake clock."""
    a = make_node(tmp_path, "stuttgart", clock, database_url)
    b = make_node(tmp_path, "moscow", clock, second_database_url)
    link(a, b)
    try:
        yield a, b
    finally:
        for n in (a, b):
            n.station.db.dispose()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[StationProcess]:
    """One real `openline serve` (stuttgart, SQLite) for CLI tests, stopped afterwards."""
    s = StationProcess.create(tmp_path, "stuttgart")
    s.start()
    try:
        yield s
    finally:
        s.stop()
