"""history indexes

A station keeps every call, notice, alert, notification and handover it has ever had, and the
watch board, the history and the notices pages ask for the newest of them or for the few
still open. Without these indexes each such page read every row of its table, a cost
that grew with every day the station ran:

- `ix_calls_placed` (placed_at, id) and `ix_notices_created` (created_at, id): the newest
  calls and notices, read from the end of the index;
- `ix_notifications_created` (created_at, id): the same for notifications;
- `ix_alerts_open` (acknowledged_at, kind) and `ix_handovers_pending` (acknowledged_at):
  the alerts and handovers nobody has acknowledged yet;
- `ix_notice_conflicts_b` (notice_b): a notice's conflicts where it is the older of the
  two (the unique pair already indexes the newer), which every notice shown reads.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 05:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_calls_placed", "calls", ["placed_at", "id"]),
    ("ix_notices_created", "notices", ["created_at", "id"]),
    ("ix_notifications_created", "notifications", ["created_at", "id"]),
    ("ix_alerts_open", "alerts", ["acknowledged_at", "kind"]),
    ("ix_handovers_pending", "handovers", ["acknowledged_at"]),
    ("ix_notice_conflicts_b", "notice_conflicts", ["notice_b"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
