"""line terms proposal

A line's terms may change once it is open: each station keeps the terms its
administrator has proposed (`proposed_terms`, JSON, and when) until a handshake finds the
peer proposing the same, when both adopt them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 20:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: nullable columns need no rebuild of `lines`.
    op.add_column("lines", sa.Column("proposed_terms", sa.Text(), nullable=True))
    op.add_column("lines", sa.Column("proposed_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later): a batch rebuild of `lines` would
    # drop the table the envelopes' foreign keys name.
    op.drop_column("lines", "proposed_at")
    op.drop_column("lines", "proposed_terms")
