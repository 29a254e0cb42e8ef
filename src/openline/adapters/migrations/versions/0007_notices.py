"""Deconfliction notices: notices, their volumes, the conflicts found, the line's notice deadline.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 11:02:57.272081
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notice_a", sa.String(length=36), nullable=False),
        sa.Column("volume_a", sa.Integer(), nullable=False),
        sa.Column("notice_b", sa.String(length=36), nullable=False),
        sa.Column("volume_b", sa.Integer(), nullable=False),
        sa.Column("time_start", sa.BigInteger(), nullable=False),
        sa.Column("time_end", sa.BigInteger(), nullable=True),
        sa.Column("alt_lower_m", sa.Float(), nullable=False),
        sa.Column("alt_upper_m", sa.Float(), nullable=False),
        sa.Column("detected_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_conflicts")),
        sa.UniqueConstraint("notice_a", "volume_a", "notice_b", "volume_b", name="uq_notice_conflicts_pair"),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("series", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("supersedes", sa.String(length=36), nullable=True),
        sa.Column("line_id", sa.String(length=32), nullable=False),
        sa.Column("peer", sa.String(length=63), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("envelope_id", sa.String(length=36), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=True),
        sa.Column("deadline_at", sa.BigInteger(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_at", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("rejected_at", sa.BigInteger(), nullable=True),
        sa.Column("withdrawn_at", sa.BigInteger(), nullable=True),
        sa.Column("amended_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["line_id"], ["lines.id"], name=op.f("fk_notices_line_id_lines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_series", ["series", "version"], unique=False)
        batch_op.create_index("ix_notices_state", ["state", "ends_at"], unique=False)

    op.create_table(
        "notice_volumes",
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("volume4d", sa.Text(), nullable=False),
        sa.Column("alt_lower_m", sa.Float(), nullable=False),
        sa.Column("alt_upper_m", sa.Float(), nullable=False),
        sa.Column("start_at", sa.BigInteger(), nullable=False),
        sa.Column("end_at", sa.BigInteger(), nullable=True),
        sa.Column("nx_min", sa.Float(), nullable=False),
        sa.Column("nx_max", sa.Float(), nullable=False),
        sa.Column("ny_min", sa.Float(), nullable=False),
        sa.Column("ny_max", sa.Float(), nullable=False),
        sa.Column("nz_min", sa.Float(), nullable=False),
        sa.Column("nz_max", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_volumes_notice_id_notices")
        ),
        sa.PrimaryKeyConstraint("notice_id", "n", name=op.f("pk_notice_volumes")),
    )
    with op.batch_alter_table("notice_volumes", schema=None) as batch_op:
        batch_op.create_index("ix_notice_volumes_time", ["start_at", "end_at"], unique=False)

    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notice_deadline_s", sa.Integer(), server_default="3600", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_column("notice_deadline_s")

    with op.batch_alter_table("notice_volumes", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_volumes_time")

    op.drop_table("notice_volumes")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_state")
        batch_op.drop_index("ix_notices_series")

    op.drop_table("notices")
    op.drop_table("notice_conflicts")
