"""alert paging

An open alert pages people until somebody acknowledges it, as a ringing call does:
`alerts` keeps a copy of the escalation policy it follows, the step due next and when;
`notifications.alert_id` names the alert a notification was sent for. Alerts already
open when the station is upgraded do not page (they have been on the console).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: nullable columns need no rebuild of either table.
    op.add_column("alerts", sa.Column("escalation", sa.Text(), nullable=True))
    op.add_column("alerts", sa.Column("escalation_step", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("escalation_round", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("next_escalation_at", sa.BigInteger(), nullable=True))
    op.create_index("ix_alerts_next_escalation", "alerts", ["next_escalation_at"])
    op.add_column("notifications", sa.Column("alert_id", sa.Integer(), nullable=True))
    op.create_index("ix_notifications_alert", "notifications", ["alert_id"])


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), as in 0010.
    op.drop_index("ix_notifications_alert", table_name="notifications")
    op.drop_column("notifications", "alert_id")
    op.drop_index("ix_alerts_next_escalation", table_name="alerts")
    op.drop_column("alerts", "next_escalation_at")
    op.drop_column("alerts", "escalation_round")
    op.drop_column("alerts", "escalation_step")
    op.drop_column("alerts", "escalation")
