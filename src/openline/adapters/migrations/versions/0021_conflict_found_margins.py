"""conflict found margins

Each recorded conflict keeps the separation margins it was found under (`margins`,
JSON): the pair's, the componentwise maximum of both notices' lines' margins. A notice's
own `conflict_margins` (0020) are those of its last check, which may be narrower than
those a conflict found earlier was found under. Conflicts recorded before this revision
have none: what they were found under is not known.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends, as 0020: a nullable column needs no rebuild.
    op.add_column("notice_conflicts", sa.Column("margins", sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), as 0010 and 0020 do.
    op.drop_column("notice_conflicts", "margins")
