"""Ledger benchmark: batched appends, proofs at 10^6 and 10^7 entries, bundle verification.

One station (SQLite, synchronous=FULL), no server.

1. Appends. `--appends` entries, each a real call-event-sized entry appended through
   `ledger.append` in transactions of `--batch`, then sequenced by `ledger.integrate`
   (leaf hashes, tiles, root). Figure: entries per second, end to end.
   Ceiling, same run: hashlib's SHA-256 over the same entry bytes, one call per entry
   (the leaf hashes alone, with nothing stored).
2. Proofs. A tree of 10^6 (and, with `--big`, 10^7) leaves is built straight into the
   tiles (synthetic leaf hashes: no entry rows, which proofs never read). Figures: the
   time to generate an inclusion proof for a random leaf and a consistency proof between
   random sizes, from the database, and to verify each. Baseline: one SHA-256 call.
3. Bundle verification. The appended log is exported as a bundle (signed checkpoint,
   a cosignature) and checked by `openline verify`'s core. Figure: entries per second.
   Ceiling, same run: the leaf and node hashes alone (hashlib), no parsing.

Targets (issue): >= 100,000 appends/s batched; proof generation <= 1 ms at 10^7 entries.
Prints figures, asserts nothing. Run from the repository root:
`.venv/bin/python bench/ledger.py [--big]` (`make bench` runs it without --big).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import update  # noqa: E402

from openline.adapters.schema import ledger_checkpoints, ledger_state  # noqa: E402
from openline.core import evidence, merkle, note  # noqa: E402
from openline.core.clock import SystemClock  # noqa: E402
from openline.core.keys import StationKeys  # noqa: E402
from openline.runtime import build_station  # noqa: E402
from openline.services import evidence as export  # noqa: E402
from openline.services import ledger  # noqa: E402
from openline.services.setup import init_home  # noqa: E402
from openline.services.station import Station  # noqa: E402
from openline.settings import load  # noqa: E402

TARGET_APPENDS = 100_000
TARGET_PROOF_MS = 1.0


def _station(root: Path, name: str) -> Station:
    init_home(root / name, name, "http://127.0.0.1:9")
    return build_station(load(root / name), clock=SystemClock())


def _metadata(i: int) -> dict[str, object]:
    """The shape of a typical call event: ids, an actor, an envelope; ten events a call."""
    return {
        "call": f"0193a7c2-{i // 10:04x}-7000-8000-0123456789ab"[:36],
        "actor": "station:moscow",
        "envelope": f"0193a7c2-{i:04x}-7000-8000-ba9876543210"[:36],
        "detail": {"deadline_at": "2026-11-26T10:00:00.000000Z"},
    }


def bench_appends(station: Station, count: int, batch: int) -> tuple[float, float, float]:
    """(entries committed per second by event transactions, entries sequenced into the
    tree per second by the integrator, the SHA-256 ceiling)."""
    now = station.clock.now()
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        with station.tx() as tx:
            for i in range(start, min(count, start + batch)):
                ledger.append(tx, "call.ringing", now + i, _metadata(i), call_id=_metadata(i)["call"])
    committed = count / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    while ledger.integrate(station):
        pass
    rate = count / (time.perf_counter() - t0)
    with station.db.read() as conn:
        data = [d for s in range(0, count, 1000) for _, d in ledger.entries(conn, s, min(count, s + 1000))]
    t0 = time.perf_counter()
    for d in data:
        hashlib.sha256(b"\x00" + d).digest()
    ceiling = count / (time.perf_counter() - t0)
    return committed, rate, ceiling


def build_tiles(station: Station, size: int) -> None:
    """A tree of `size` synthetic leaves, written straight into the tiles."""
    chunk = 65_536
    with station.db.write() as conn:
        tiles = ledger.Tiles(conn)
        for start in range(0, size, chunk):
            n = min(chunk, size - start)
            tiles.extend(
                start, [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(start, start + n)]
            )
            tiles._cache.clear()  # keep memory flat: the next chunk reads its edge back
        root = ledger.Tiles(conn).root(size)
        conn.execute(update(ledger_state).values(size=size, root=root))


def bench_proofs(station: Station, size: int, samples: int) -> dict[str, float]:
    rnd = random.Random(size)
    gen_inc, gen_con, ver_inc, ver_con = [], [], [], []
    with station.db.read() as conn:
        root = ledger.head(conn).root
        for _ in range(samples):
            index = rnd.randrange(size)
            leaf = hashlib.sha256(index.to_bytes(8, "big")).digest()
            t0 = time.perf_counter()
            proof = ledger.inclusion_proof(conn, index, size)
            gen_inc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            merkle.verify_inclusion(index, size, leaf, proof, root)
            ver_inc.append(time.perf_counter() - t0)
            m = rnd.randrange(1, size)
            t0 = time.perf_counter()
            cproof = ledger.consistency_proof(conn, m, size)
            gen_con.append(time.perf_counter() - t0)
            old_root = ledger.root_at(conn, m)
            t0 = time.perf_counter()
            merkle.verify_consistency(m, size, old_root, root, cproof)
            ver_con.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(10_000):
        hashlib.sha256(b"\x01" + root + root).digest()
    one_hash = (time.perf_counter() - t0) / 10_000

    def p(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] * 1000

    return {
        "inclusion_gen_p50_ms": p(gen_inc, 50),
        "inclusion_gen_p99_ms": p(gen_inc, 99),
        "consistency_gen_p50_ms": p(gen_con, 50),
        "consistency_gen_p99_ms": p(gen_con, 99),
        "inclusion_verify_p50_ms": statistics.median(ver_inc) * 1000,
        "consistency_verify_p50_ms": statistics.median(ver_con) * 1000,
        "one_sha256_us": one_hash * 1e6,
    }


def bench_verify(station: Station, root: Path) -> tuple[float, float, int]:
    """Export the appended log with a real cosignature and verify it as a stranger would."""
    peer_keys = StationKeys.generate()
    from openline.core.card import cosigner_name, make_card

    peer = make_card(peer_keys, "moscow", ["http://127.0.0.1:8"], [])
    cp = ledger.sign_checkpoint(station)
    assert cp is not None
    sig = note.cosign(
        note.parse(cp.note).text,
        cosigner_name("moscow", peer.fingerprint),
        peer_keys.cosign,
        int(time.time()),
    )
    with station.db.write() as conn:
        from openline.adapters.schema import peers

        conn.execute(
            peers.insert().values(
                name="moscow",
                card=json.dumps(peer.to_json()),
                signing_key=peer.signing_key,
                encryption_key=peer.encryption_key,
                fingerprint=peer.fingerprint,
                url=peer.url,
                pinned_at=0,
            )
        )
        conn.execute(update(ledger_checkpoints).values(cosigned_by="moscow"))
    ledger.add_cosignature(station, cp.size, "moscow", sig)
    out = root / "bundle"
    export.export_bundle(station, out)

    def read(path: str) -> bytes | None:
        p = out / path
        return p.read_bytes() if p.is_file() else None

    t0 = time.perf_counter()
    result = evidence.verify_bundle(read)
    rate = cp.size / (time.perf_counter() - t0)
    if not result.ok:
        raise SystemExit(f"the exported bundle did not verify: {result.failures[:3]}")
    data = [p.read_bytes() for p in sorted((out / "tile" / "entries").rglob("*")) if p.is_file()]
    t0 = time.perf_counter()
    hashes = 0
    for blob in data:
        at = 0
        while at < len(blob):
            n = int.from_bytes(blob[at : at + 2], "big")
            hashlib.sha256(b"\x00" + blob[at + 2 : at + 2 + n]).digest()
            hashes += 1
            at += 2 + n
    for _ in range(hashes):  # and about one node hash per leaf
        hashlib.sha256(b"\x01" + bytes(64)).digest()
    ceiling = cp.size / (time.perf_counter() - t0)
    return rate, ceiling, cp.size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--appends", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000, help="entries appended per transaction")
    parser.add_argument("--samples", type=int, default=200, help="proofs timed per tree size")
    parser.add_argument(
        "--big", action="store_true", help="also prove at 10^7 entries (builds ~320 MB of tiles)"
    )
    args = parser.parse_args()
    count = max(1_000, min(args.appends, 2_000_000))
    root = Path(tempfile.mkdtemp(prefix="openline-bench-ledger-"))

    station = _station(root, "stuttgart")
    committed, rate, ceiling = bench_appends(station, count, max(1, args.batch))
    verdict = "met" if rate >= TARGET_APPENDS else "MISSED"
    print(f"appends: {count:,} call-event entries")
    print(f"  sequenced into the tree (batched append: leaf hashes, tiles, bundles): {rate:,.0f}/s")
    print(f"    target >= {TARGET_APPENDS:,}/s: {verdict}")
    print(
        f"    ceiling, same run: hashlib SHA-256 of the entries alone {ceiling:,.0f}/s ({rate / ceiling:.2f})"
    )
    print(f"  committed by event transactions of {args.batch} (RFC 8785 JSON, insert): {committed:,.0f}/s")

    vrate, vceiling, vsize = bench_verify(station, root)
    print(f"bundle verification: {vsize:,} entries, signature and cosignature, every tile and entry")
    print(f"  {vrate:,.0f} entries/s; hashing alone {vceiling:,.0f}/s ({vrate / vceiling:.2f})")
    station.db.dispose()

    sizes = [1_000_000] + ([10_000_000] if args.big else [])
    for size in sizes:
        s = _station(root, f"tree{size}")
        t0 = time.perf_counter()
        build_tiles(s, size)
        built = time.perf_counter() - t0
        figures = bench_proofs(s, size, args.samples)
        gen = figures["inclusion_gen_p99_ms"]
        met = "met" if max(gen, figures["consistency_gen_p99_ms"]) <= TARGET_PROOF_MS else "MISSED"
        print(
            f"proofs at {size:,} entries (tiles built in {built:.1f} s), {args.samples} random samples each:"
        )
        print(
            f"  inclusion: generate p50 {figures['inclusion_gen_p50_ms']:.3f} ms, p99 {gen:.3f} ms; "
            f"verify p50 {figures['inclusion_verify_p50_ms']:.3f} ms"
        )
        print(
            f"  consistency: generate p50 {figures['consistency_gen_p50_ms']:.3f} ms, "
            f"p99 {figures['consistency_gen_p99_ms']:.3f} ms; "
            f"verify p50 {figures['consistency_verify_p50_ms']:.3f} ms"
        )
        print(
            f"  target: generation <= {TARGET_PROOF_MS} ms: {met}; "
            f"one SHA-256 {figures['one_sha256_us']:.2f} µs"
        )
        s.db.dispose()


if __name__ == "__main__":
    main()
