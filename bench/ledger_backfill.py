"""Migration 0014's cost: indexing the notice entries of a log logged before stations did.

A station created by `openline init` (SQLite, synchronous=FULL) is given a log of
`--entries` synthetic entries shaped like the real ones (a notice or call event, its
envelope entry, the peer's receipt, a line event, in turn; half about `--notices`
notices, half about calls), written straight into the entry bundles, and set back to
revision 0013. Figure: the upgrade to head, entries per second, and the index rows it
wrote. Baseline, same run: decoding the bundles and parsing every entry (json.loads)
alone, which the migration cannot do without.

Prints figures, asserts nothing. Run from the repository root:
`.venv/bin/python bench/ledger_backfill.py [--entries N]`.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from openline.adapters import migrate
from openline.adapters.db import Database
from openline.core.encoding import canonical
from openline.core.tiles import TILE_WIDTH, decode_bundle

LINE = "06c63000d23aa5a84235c012f78ede56"
AT = "2026-01-01T00:00:00.000000Z"
DIGEST = "sha-256=pfy1EoYqXnsi9eI92MSdxiA1g0TxCR6nLOvQIBZ8JFc"


def log(count: int, notices: list[str], calls: list[str]) -> list[bytes]:
    """Entry bundles of `count` entries: event, envelope, receipt, line event, in turn."""
    entries = []
    for i in range(count // 4):
        about = notices[i % len(notices)] if i % 2 else calls[i % len(calls)]
        env = str(uuid.uuid4())
        kind = "notice" if i % 2 else "call"
        envelope = {"envelope": env, "line": LINE, "peer": "moscow", "at": AT, "v": 1}
        entries += [
            canonical({"type": f"{kind}.sent", kind: about, **envelope}),
            canonical(
                {
                    "type": "envelope.sent",
                    "ref": about,
                    "kind": f"{kind}.send",
                    "seq": i,
                    "header": DIGEST,
                    "content": DIGEST,
                    **envelope,
                }
            ),
            canonical({"type": "receipt.received", "receipt": DIGEST, "stored_at": AT, **envelope}),
            canonical({"type": "line.contact", "at": AT, "line": LINE, "peer": "moscow", "v": 1}),
        ]
    return [
        b"".join(struct.pack(">H", len(e)) + e for e in entries[i : i + TILE_WIDTH])
        for i in range(0, len(entries), TILE_WIDTH)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--notices", type=int, default=10_000)
    args = parser.parse_args()
    notices = [str(uuid.uuid4()) for _ in range(args.notices)]
    calls = [str(uuid.uuid4()) for _ in range(args.notices)]
    bundles = log(args.entries, notices, calls)
    entries = sum(len(decode_bundle(b)) for b in bundles)

    started = time.perf_counter()
    for blob in bundles:
        for raw in decode_bundle(blob):
            json.loads(raw)
    parse_rate = entries / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "station"
        subprocess.run(
            [sys.executable, "-m", "openline", "init", "--home", str(home), "--name", "bench",
             "--url", "http://127.0.0.1:9"],
            check=True, capture_output=True,
        )  # fmt: skip
        conn = sqlite3.connect(home / "openline.db")
        conn.executemany(  # the rows the migration reads; the line they name is not needed
            "INSERT INTO notices (id, series, version, line_id, peer, direction, category, state, "
            "created_by, created_at, starts_at, updated_at) "
            "VALUES (?, ?, 1, 'x', 'moscow', 'out', 'protected_site', 'sent', 'admin', 0, 0, 0)",
            [(n, n) for n in notices],
        )
        conn.executemany("INSERT INTO ledger_bundles (idx, data) VALUES (?, ?)", list(enumerate(bundles)))
        conn.execute("UPDATE alembic_version SET version_num = '0013'")
        conn.commit()
        conn.close()
        db = Database(f"sqlite:///{home / 'openline.db'}")
        try:
            started = time.perf_counter()
            migrate.upgrade(db)
            seconds = time.perf_counter() - started
            with db.engine.connect() as c:
                rows = c.execute(text("SELECT count(*) FROM ledger_calls")).scalar()
        finally:
            db.dispose()
    print(f"log: {entries:,} entries, {args.notices:,} notices")
    print(
        f"migration 0014: {seconds:.1f} s, {entries / seconds:,.0f} entries/s, {rows:,} index rows written"
        f" | baseline, bundles decoded and parsed alone: {parse_rate:,.0f} entries/s"
        f" ({entries / seconds / parse_rate:.2f})"
    )


if __name__ == "__main__":
    main()
