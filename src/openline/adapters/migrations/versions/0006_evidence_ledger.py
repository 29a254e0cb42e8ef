"""The evidence ledger: pending entries, entry bundles, hash tiles, checkpoints, witnesses.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:09:47.585912
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_bundles",
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_ledger_bundles")),
    )
    op.create_table(
        "ledger_calls",
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", "idx", name=op.f("pk_ledger_calls")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("cosigned_by", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_ledger_checkpoints")),
    )
    op.create_table(
        "ledger_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("peer", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("contradicts", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_evidence")),
    )
    op.create_table(
        "ledger_pending",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("call_id", sa.String(length=36), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_pending")),
    )
    op.create_table(
        "ledger_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_state")),
    )
    # The empty log: its root is SHA-256 of nothing (RFC 9162, 2.1.1).
    op.bulk_insert(
        sa.table(
            "ledger_state", sa.column("id"), sa.column("size"), sa.column("root"), sa.column("updated_at")
        ),
        [{"id": 1, "size": 0, "root": hashlib.sha256(b"").digest(), "updated_at": 0}],
    )
    op.create_table(
        "ledger_tiles",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_ledger_tiles")),
    )
    op.create_table(
        "ledger_peers",
        sa.Column("peer", sa.String(length=63), nullable=False),
        sa.Column("cosigned_size", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cosigned_at", sa.BigInteger(), nullable=True),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("witnessed_size", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("witnessed_root", sa.LargeBinary(), nullable=True),
        sa.Column("witnessed_note", sa.Text(), nullable=True),
        sa.Column("witnessed_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["peer"], ["peers.name"], name=op.f("fk_ledger_peers_peer_peers")),
        sa.PrimaryKeyConstraint("peer", name=op.f("pk_ledger_peers")),
    )
    op.execute("INSERT INTO ledger_peers (peer) SELECT name FROM peers")  # lines pinned before


def downgrade() -> None:
    op.drop_table("ledger_peers")
    op.drop_table("ledger_tiles")
    op.drop_table("ledger_state")
    op.drop_table("ledger_pending")
    op.drop_table("ledger_evidence")
    op.drop_table("ledger_checkpoints")
    op.drop_table("ledger_calls")
    op.drop_table("ledger_bundles")
