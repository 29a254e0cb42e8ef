"""numbers never reused

Shifts, roster overrides and API tokens are named by their number (`openline shift remove
4`, `user token revoke swo 2`) and so are they in the audit trail (`shift.add 4 wo1`).
SQLite gave a removed row's number to the next row when it had been the highest, so an
audit trail read `shift.add 4 wo1`, `shift.remove 4`, `shift.add 4 cmd`, and a removal
typed from an old listing removed someone else's shift. On SQLite these tables are
rebuilt with AUTOINCREMENT, which never hands out a number twice; PostgreSQL's sequences
never did.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 11:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("shifts", "roster_overrides", "api_tokens")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
