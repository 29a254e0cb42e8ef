from __future__ import annotations

import gc
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.dependencies import models as fastapi_models
from hypothesis import settings
from sqlalchemy.engine import make_url

from openline.adapters import migrate
from openline.adapters.db import Database
from openline.core.clock import FakeClock
from openline.services import accounts, setup
from openline.services.station import NotifyConfig
from tests.browser import browser  # noqa: F401 (fixtures for every test module)
from tests.harness import StationProcess
from tests.inproc import STAFF_PASSWORD, Node, PairImage, add_staff, copied_pair, pair_image, put_on_duty
from tests.pg import PostgresServer, ram_disk
from tests.servers import Receiver, receiver, relay  # noqa: F401

# The run's temporary files (station homes and their SQLite files, browser profiles) live
# in RAM when there is room, as the PostgreSQL cluster's do, so that two xdist workers
# share no disk: in one run, both stations of a test held their deliveries for seconds
# and resumed in the same millisecond, most likely behind the other worker's fsynced
# bursts (the crash tests commit a thousand times). Nothing here needs a disk: the crash
# tests kill processes, which a RAM disk survives as a disk does, and no test asserts
# timing. Set before pytest picks its base directory; TMPDIR carries it to every process
# the tests start.
_RAM = ram_disk(least=2 * 1024**3)
if _RAM is not None:
    tempfile.tempdir = _RAM
    os.environ["TMPDIR"] = _RAM

# Timing belongs in bench/: a slow CI machine must not fail a property for being slow.
settings.register_profile("openline", deadline=None, print_blob=True)
settings.load_profile("openline")


# What takes seconds a test: real `openline serve` processes (marked e2e), a real Chromium,
# a PostgreSQL server of the test's own.
_SLOW_FIXTURES = frozenset({"browser", "running", "own_pg_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, each group in its own order: the run then ends on a few quick
    tests, where it ended on whichever slow test a worker took last while the others,
    done, waited (a tail of a minute and more in a full run)."""

    def quick(item: pytest.Item) -> bool:
        fixtures = getattr(item, "fixturenames", ())
        return item.get_closest_marker("e2e") is None and _SLOW_FIXTURES.isdisjoint(fixtures)

    items.sort(key=quick)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every module is imported now: keep what exists out of the garbage collector's full
    collections (gc.freeze), which otherwise walk all of FastAPI, SQLAlchemy, pydantic,
    Playwright, ... again every few tests, for garbage that can only be newer."""
    gc.collect()
    gc.freeze()


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


@pytest.fixture(autouse=True, scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """In process, a new station home's SQLite database starts as a copy of one migrated
    by the real migrations once per session, and a database already at the latest
    revision (such a copy, or PostgreSQL's copy of its migrated template) is not
    migrated again: `init_home` ran every migration for each station of every test.
    `openline init` and `openline serve` processes still migrate for themselves
    (tests/test_cli_errors.py, tests/test_demo.py), and tests/test_notice_index.py runs a
    migration down and up."""
    template = tmp_path_factory.mktemp("template") / "openline.db"
    db = Database(f"sqlite:///{template}", pool=False)
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()
    with closing(sqlite3.connect(template)) as conn:  # everything in the file, no WAL beside it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    image = template.read_bytes()
    head = migrate.head()
    real_require, real_upgrade = setup.require_empty, setup.upgrade

    def require_empty(db: Database) -> None:
        # `init_home` looks into the database before it migrates it, and opening it writes
        # the file's header: the copy is made before that first look, which then sees our
        # schema and no station in it, as in a database migrated and never used.
        if db.is_sqlite:
            path = Path(str(make_url(db.url).database))
            if path.stat().st_size == 0:  # the empty file `init_home` has just created
                with open(path, "r+b") as f:  # keeps the file's 0600
                    f.write(image)
        real_require(db)

    def upgrade(db: Database, revision: str = "head") -> None:
        if revision == "head" and migrate.current(db) == head:
            return
        real_upgrade(db, revision)

    setup.require_empty, setup.upgrade = require_empty, upgrade  # type: ignore[assignment]
    yield
    setup.require_empty, setup.upgrade = real_require, real_upgrade


# FastAPI memoises what kind of callable each endpoint and dependency is (functools caches
# of 4,096 entries), and the memo holds the callable: `create_app`'s closures and, through
# them, each test's app, station and database engine. Over the suite that kept more than a
# gigabyte alive, and each full garbage collection walked all of it (pauses of a second and
# more). They are caches only, so each test empties them when it ends.
_FASTAPI_MEMOS = [f for f in vars(fastapi_models).values() if callable(getattr(f, "cache_clear", None))]


@pytest.fixture(autouse=True)
def _forget_apps() -> Iterator[None]:
    yield
    for memo in _FASTAPI_MEMOS:
        memo.cache_clear()


def _templated_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        server.make_template()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    yield from _templated_server()


@pytest.fixture
def own_pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for one test alone, which may stop it (`pause`) and start it
    again (`resume`): stopping the run's shared one would fail other tests."""
    yield from _templated_server()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _fresh_database(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None means the station home's own SQLite file; otherwise a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name, url = server.fresh_database()
    yield url
    server.discard_database(name)


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


@pytest.fixture(scope="session")
def _pair_images() -> dict[str, PairImage]:
    """The image of a linked pair on each backend, made on first need (`nodes`)."""
    return {}


@pytest.fixture
def nodes(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    clock: FakeClock,
    backend: str,
    request: pytest.FixtureRequest,
    _pair_images: dict[str, PairImage],
) -> Iterator[tuple[Node, Node]]:
    """stuttgart and moscow in process, line active, on one fake clock: a copy of the pair
    that `linked_pair` made once for the session on this backend (`PairImage`)."""
    server: PostgresServer | None = None
    if backend == "postgresql":
        server = request.getfixturevalue("pg_server")
    image = _pair_images.get(backend)
    if image is None:
        made_on = None if server is None else (server.fresh_database()[1], server.fresh_database()[1])
        image = _pair_images[backend] = pair_image(tmp_path_factory.mktemp("pair"), made_on)
    copies: dict[str, tuple[str, str]] = {}  # station: (database, URL)
    urls = None
    if server is not None:
        assert image.databases is not None
        copies = {station: server.fresh_database(db) for station, db in image.databases.items()}
        urls = {station: url for station, (_, url) in copies.items()}
    a, b = copied_pair(tmp_path, clock, image, urls)
    try:
        yield a, b
    finally:
        for n in (a, b):
            n.station.db.dispose()
        if server is not None:
            for database, _ in copies.values():
                server.discard_database(database)


@pytest.fixture
def staffed(nodes: tuple[Node, Node], clock: FakeClock, receiver: Receiver) -> tuple[Node, Node]:  # noqa: F811
    """`nodes`, with moscow's watch floor staffed (`duty` on duty, `senior`, `boss`; all
    with the password `STAFF_PASSWORD`) and paging to one webhook, whose path holds a
    token, with links to its console."""
    a, b = nodes
    b.station.notify = NotifyConfig(
        webhook_urls=(receiver.base + "/hook/t0ken",),
        email=False,
        console_url="https://moscow.example/console",
    )
    add_staff(b, STAFF_PASSWORD)
    put_on_duty(b, "duty", clock)
    return a, b


@pytest.fixture
def running(tmp_path: Path) -> Iterator[StationProcess]:
    """One real `openline serve` (stuttgart, SQLite) for CLI tests, stopped afterwards."""
    s = StationProcess.create(tmp_path, "stuttgart")
    s.start()
    try:
        yield s
    finally:
        s.stop()
