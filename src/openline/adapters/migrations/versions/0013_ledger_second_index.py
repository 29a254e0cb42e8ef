"""ledger second index

An entry waiting to be sequenced may be about two things: a conflict between two notices
is in the proof of each. `ledger_pending.also_id` names the second, indexed in
`ledger_calls` beside `call_id` when the entry is sequenced.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: a nullable column needs no rebuild.
    op.add_column("ledger_pending", sa.Column("also_id", sa.String(36), nullable=True))


def downgrade() -> None:
    op.drop_column("ledger_pending", "also_id")
