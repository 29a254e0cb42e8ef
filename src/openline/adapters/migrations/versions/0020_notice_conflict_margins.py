"""notice conflict margins

A notice keeps the separation margins its line held when this station last checked it
for conflicts (`conflict_margins`, JSON): what its conflicts, or their absence, were
decided under, shown with it, as the line's margins may have changed since. Notices
checked before this revision have none: what they were checked under is not known.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: a nullable column needs no rebuild of `notices`.
    op.add_column("notices", sa.Column("conflict_margins", sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), as 0010 does.
    op.drop_column("notices", "conflict_margins")
