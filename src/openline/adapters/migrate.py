"""Bring a station database to the latest Alembic migration.

`upgrade` makes the schema from nothing too, which only `openline init` may do.
Everything else opens an existing station's database with `open_station`: a database
that holds no station (an SQLite file that is not there, a PostgreSQL URL that names an
empty database), one written by a newer OpenLine, or an SQLite file that SQLite finds
damaged in what it reads to open it (its header, its schema, the schema's revision) is
refused, and left as it was.

The whole file is not checked (`PRAGMA quick_check` reads every page: 22 s for a 1.4 GB
station on a cold cache, docs/operations.md); damage elsewhere is found where it is read,
and `openline backup` checks every page of its copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from openline.adapters.db import Database, shown_url
from openline.adapters.schema import users
from openline.errors import Code, DatabaseDamaged, DatabaseUnavailable, HomeError, OpenLineError

_DIR = Path(__file__).parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_DIR))
    return cfg


def _shown(db: Database) -> str:
    return shown_url(db.url)


@contextmanager
def _opening(db: Database) -> Iterator[None]:
    """A database that cannot be reached or read at start is one clear error."""
    try:
        yield
    except DatabaseDamaged as exc:
        raise HomeError(f"{exc.diagnostics()}; nothing was changed", code=Code.DATABASE_DAMAGED) from None
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        reason = exc.reason if isinstance(exc, DatabaseUnavailable) else getattr(exc, "orig", None) or exc
        raise OpenLineError(
            f"cannot open the database at {_shown(db)}: {reason}", code=Code.DATABASE_UNAVAILABLE
        ) from None


def require_empty(db: Database) -> None:
    """`init` makes a station in an empty database only (or one with our schema and no
    station in it): one that holds a station is refused before anything migrates it, and
    so is one that holds anything else (another application's tables would be mixed into
    ours). Nothing is changed."""
    with _opening(db), db.read() as conn:
        tables = sorted(inspect(conn).get_table_names())
        ours = {"alembic_version", "users"} <= set(tables)
        station = ours and conn.execute(select(func.count()).select_from(users)).scalar_one() > 0
    if not tables or (ours and not station):  # empty, or our schema with no station in it
        return
    if station:
        said = "already holds a station"
    else:
        said = f"is not empty (it holds {', '.join(tables[:5])}{', …' if len(tables) > 5 else ''})"
    raise HomeError(
        f"the database at {_shown(db)} {said}: use an empty database; nothing was changed",
        code=Code.HOME_EXISTS,
    )


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = _config()
    with _opening(db), db.write() as conn:  # one transaction: a failed migration leaves nothing
        _refuse_newer(db, conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def open_station(url: str, *, background_checkpoints: bool = False) -> Database:
    """The database of an existing station at `url`, refused with `HomeError` when it
    holds no station (nothing is created: not even an SQLite file) or was written by a
    newer OpenLine. An older one is accepted: `openline serve` upgrades it."""
    db = Database(url, background_checkpoints=background_checkpoints)
    try:
        if db.is_sqlite:
            _refuse_missing_file(db)  # before connecting, which would create the file
        with _opening(db), db.read() as conn:
            if not MigrationContext.configure(conn).get_current_heads():
                raise HomeError(
                    f"the database at {_shown(db)} holds no OpenLine station (it has no OpenLine "
                    "schema): is the URL mistyped, or does it name another database? Correct "
                    "database_url (or OPENLINE_DATABASE_URL); only `openline init` makes a new station"
                )
            _refuse_newer(db, conn)
    except BaseException:
        db.dispose()
        raise
    return db


def _refuse_missing_file(db: Database) -> None:
    name = make_url(db.url).database
    try:
        size = Path(name).stat().st_size if name and name != ":memory:" else None
    except FileNotFoundError:
        size = None
    except OSError as exc:
        raise OpenLineError(
            f"cannot open the database at {_shown(db)}: {exc.strerror}", code=Code.DATABASE_UNAVAILABLE
        ) from None
    if not size:
        found = "the file does not exist" if size is None else "the file is empty"
        raise HomeError(
            f"the database at {_shown(db)} holds no OpenLine station ({found}): was the file moved "
            "or deleted, or is its volume not mounted? Put it back, or point database_url at it; "
            "only `openline init` makes a new station"
        )


def _refuse_newer(db: Database, conn: Connection) -> None:
    """A revision this version does not know: a newer OpenLine migrated the database."""
    known, latest = _revisions()
    unknown = [r for r in MigrationContext.configure(conn).get_current_heads() if r not in known]
    if unknown:
        raise HomeError(
            f"the database at {_shown(db)} was written by a newer OpenLine (schema revision "
            f"{', '.join(unknown)}; this version knows up to {latest}): upgrade OpenLine, or "
            "restore a backup taken with this version",
            code=Code.DATABASE_TOO_NEW,
        )


@cache
def _revisions() -> tuple[frozenset[str], str | None]:
    """Every revision this version has, and its latest (reading the scripts takes ~15 ms)."""
    script = ScriptDirectory.from_config(_config())
    return frozenset(s.revision for s in script.walk_revisions()), script.get_current_head()


def current(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@cache
def head() -> str | None:
    """The revision this code migrates to (read once: the scripts do not change while it runs)."""
    return ScriptDirectory.from_config(_config()).get_current_head()
