"""refused for good

An envelope whose content the peer will not apply now takes its sequence number with
it: the peer answers with a signed refusal, and the sender settles it as it settles a
receipt. `envelopes.refused` means that from now on, and only that: the peer's signed
refusal of an envelope we sent (settled: `delivered_at` is when it came back), or ours of
one we received.

Until now the sender also wrote there the last refusal of an envelope still waiting (a
`sequence_gap`, say), which the next attempt overwrote or cleared. Those are cleared
here: the line's `last_error` has said the same all along, and an envelope still waiting
has not been refused for good.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    envelopes = sa.table("envelopes", sa.column("direction"), sa.column("delivered_at"), sa.column("refused"))
    op.execute(
        envelopes.update()
        .where(envelopes.c.direction == "out", envelopes.c.delivered_at.is_(None))
        .values(refused=None)
    )


def downgrade() -> None:
    """Nothing to undo: what was cleared was only the last attempt's error."""
