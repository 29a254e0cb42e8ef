"""The tables the code declares (`adapters.schema`) are the tables the migrations build,
on both backends: a column or an index added to one and not the other would pass every
test on a fresh database and break an upgraded station. Alembic's own comparison says
what differs. The only things it may report are the notices' spatial index, which
migration 0009 creates by hand (SQLAlchemy declares neither an SQLite R*Tree nor a GiST
index over expressions): the R*Tree's tables on SQLite, the index on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from openline.adapters import migrate
from openline.adapters.db import Database
from openline.adapters.schema import metadata

RTREE = {"notice_boxes", "notice_boxes_node", "notice_boxes_parent", "notice_boxes_rowid"}
GIST = "ix_notice_volumes_box"


def _differences(url: str) -> list[object]:
    db = Database(url)
    try:
        migrate.upgrade(db)
        assert migrate.current(db) == migrate.head()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            found = compare_metadata(context, metadata)
    finally:
        db.dispose()
    return [d for d in found if not _by_hand(d)]


def _by_hand(difference: object) -> bool:
    if not isinstance(difference, tuple):
        return False
    what, item = difference[0], difference[1]
    return (what == "remove_table" and item.name in RTREE) or (what == "remove_index" and item.name == GIST)


def test_the_migrations_build_the_declared_schema(tmp_path: Path, database_url: str | None) -> None:
    assert _differences(database_url or f"sqlite:///{tmp_path / 'station.db'}") == []
