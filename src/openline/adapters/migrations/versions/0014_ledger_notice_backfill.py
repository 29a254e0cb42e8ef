"""ledger notice backfill

A station indexes each notice's ledger entries under the notice's id as it logs them
(`ledger_calls`, what `openline prove` reads), but only since the version of migration
0013. The entries of notices logged before it are in the log, unindexed: an
investigator's notice from last year could not be proved, and a notice sent before the
upgrade and acknowledged after it had a proof without its announcement, which the
verifier refuses. This indexes them now as the station indexes as it logs: an entry
under every notice it names (`core.evidence.named`, what a notice proof is held to), and
the peer's receipt for an envelope under the notice that the envelope carries (its
`ref`). Entries still waiting to be sequenced get the same in `call_id` and `also_id`.
What is indexed already is left as it is.

It reads the whole log once, 65,536 entries at a time (see docs/ledger.md for the time it
takes); calls were indexed from the start and are not touched.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 04:40:00
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from openline.core.evidence import named
from openline.core.tiles import TILE_WIDTH, decode_bundle

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_BUNDLES_AT_ONCE = 256


class _Notices:
    """The notices each entry of a log is indexed under, offered in log order (the receipt
    for an envelope comes after the envelope's own entry)."""

    def __init__(self, ids: set[str]) -> None:
        self.ids = ids
        self.envelopes: dict[str, set[str]] = {}

    def of(self, raw: bytes) -> set[str]:
        entry: dict[str, Any] = json.loads(raw)
        envelope, kind = str(entry.get("envelope")), str(entry.get("type"))
        if kind == "receipt.received":
            return self.envelopes.get(envelope, set())
        if kind.startswith("envelope.") and isinstance(entry.get("ref"), str):
            self.envelopes[envelope] = {entry["ref"]} & self.ids  # what its receipt is about
        return named(entry) & self.ids


def upgrade() -> None:
    conn = op.get_bind()
    ids = set(conn.execute(sa.text("SELECT id FROM notices")).scalars())
    if not ids:
        return
    notices = _Notices(ids)
    indexed = {
        (notice, int(idx))
        for notice, idx in conn.execute(
            sa.text("SELECT l.call_id, l.idx FROM ledger_calls l JOIN notices n ON n.id = l.call_id")
        )
    }
    insert = sa.text("INSERT INTO ledger_calls (call_id, idx) VALUES (:call_id, :idx)")
    after = -1
    while True:
        bundles = conn.execute(
            sa.text("SELECT idx, data FROM ledger_bundles WHERE idx > :after ORDER BY idx LIMIT :n"),
            {"after": after, "n": _BUNDLES_AT_ONCE},
        ).all()
        if not bundles:
            break
        missing = [
            {"call_id": notice, "idx": int(n) * TILE_WIDTH + i}
            for n, blob in bundles
            for i, raw in enumerate(decode_bundle(bytes(blob)))
            for notice in sorted(notices.of(raw))
            if (notice, int(n) * TILE_WIDTH + i) not in indexed
        ]
        if missing:
            conn.execute(insert, missing)
        after = int(bundles[-1][0])
    waiting = conn.execute(sa.text("SELECT seq, call_id, also_id, data FROM ledger_pending ORDER BY seq"))
    for seq, call_id, also_id, data in waiting.all():
        slots = [call_id, also_id]
        for notice in sorted(notices.of(bytes(data)) - set(slots)):
            if None in slots:  # two at most: an entry names no more than two notices
                slots[slots.index(None)] = notice
        if slots != [call_id, also_id]:
            conn.execute(
                sa.text("UPDATE ledger_pending SET call_id = :c, also_id = :a WHERE seq = :s"),
                {"c": slots[0], "a": slots[1], "s": seq},
            )


def downgrade() -> None:
    # Nothing to undo: the rows added are what revision 0013's code would have written.
    pass
