"""suspended lines

An administrator who stops trusting a peer (its key may be stolen, or it misbehaves)
suspends the line: nothing is taken from the peer or sent to it until the line is
resumed (docs/operations.md, "When a station's key is stolen"). The line keeps when,
by whom and why.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: nullable columns need no rebuild of `lines` (0010).
    op.add_column("lines", sa.Column("suspended_at", sa.BigInteger(), nullable=True))
    op.add_column("lines", sa.Column("suspended_by", sa.String(length=128), nullable=True))
    op.add_column("lines", sa.Column("suspend_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), as 0010 does.
    op.drop_column("lines", "suspend_reason")
    op.drop_column("lines", "suspended_by")
    op.drop_column("lines", "suspended_at")
