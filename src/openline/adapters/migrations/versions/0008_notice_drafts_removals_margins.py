"""Notice drafts, protected-site removals, recorded expiry; the line's separation margins.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 12:54:18.117753
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("margin_horizontal_m", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("margin_vertical_m", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("margin_minutes", sa.Integer(), server_default="0", nullable=False))

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draft_body", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("removes", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("removed_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("expired_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("removed_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("discarded_at", sa.BigInteger(), nullable=True))
        batch_op.alter_column("envelope_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.create_index("ix_notices_removes", ["removes"], unique=False)

    # Until now a notice of ours was sent when it was created.
    op.execute("UPDATE notices SET sent_at = created_at WHERE direction = 'out'")


def downgrade() -> None:
    # Drafts have no envelope, which 0007 requires: they go.
    op.execute(
        "DELETE FROM notice_volumes WHERE notice_id IN (SELECT id FROM notices WHERE envelope_id IS NULL)"
    )
    op.execute("DELETE FROM notices WHERE envelope_id IS NULL")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_removes")
        batch_op.alter_column("envelope_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.drop_column("discarded_at")
        batch_op.drop_column("removed_at")
        batch_op.drop_column("expired_at")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("removed_by")
        batch_op.drop_column("removes")
        batch_op.drop_column("draft_body")

    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_column("margin_minutes")
        batch_op.drop_column("margin_vertical_m")
        batch_op.drop_column("margin_horizontal_m")
