"""Alembic environment: migrations run against the connection the caller hands over."""

from __future__ import annotations

from alembic import context

from openline.adapters.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through openline.adapters.migrate.upgrade()")
# Each backend's spatial index over notice volumes is made by hand in migration 0009 (an
# SQLite R*Tree and its shadow tables, or a PostgreSQL GiST expression index) and is not
# in the metadata: autogenerate must not offer to drop it.
_HAND_MADE = ("notice_boxes", "ix_notice_volumes_box")


def _include(obj: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
    return not (reflected and name is not None and name.startswith(_HAND_MADE))


context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, include_object=_include
)
with context.begin_transaction():
    context.run_migrations()
