"""peer clock

What each line last measured of the peer station's clock against ours: the bounds of the
offset (µs, the peer's clock minus ours) that a round trip proves, when it was measured,
and since when the offset has been more than the station allows (`clock_skew_alert_s`),
or null.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_COLUMNS = ("peer_clock_low", "peer_clock_high", "peer_clock_at", "peer_clock_off_since")


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: nullable columns need no rebuild of `lines`.
    for name in _COLUMNS:
        op.add_column("lines", sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), as 0010 does.
    for name in reversed(_COLUMNS):
        op.drop_column("lines", name)
