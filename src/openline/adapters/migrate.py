"""Bring a station database to the latest Alembic migration."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from openline.adapters.db import Database
from openline.errors import Code, DatabaseUnavailable, OpenLineError

_DIR = Path(__file__).parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_DIR))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = _config()
    try:
        with db.write() as conn:  # one transaction: a failed migration leaves nothing
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        where = make_url(db.url).render_as_string(hide_password=True)
        reason = exc.reason if isinstance(exc, DatabaseUnavailable) else getattr(exc, "orig", None) or exc
        raise OpenLineError(
            f"cannot open the database at {where}: {reason}", code=Code.DATABASE_UNAVAILABLE
        ) from None


def current(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
