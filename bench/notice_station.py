"""Station conflict-check benchmark: a station holding N active notice volumes checks a new notice.

`bench/conflicts.py` measures the conflict engine alone (an in-memory R-tree). A station
checks differently: every new or amended notice is checked against what its database
holds (`services.notice_conflicts.find`): SQL narrows the candidates by time window,
altitude band and n-vector box, and the exact test decides (`core.conflicts.confirm`: the
engine's quick verdicts for the candidates in one batch, then `conflict` for what they
leave open). This measures that path on the embedded default (SQLite, one station in process).

Data: the volumes of `bench/conflicts.py` (same generator, 0.1-50 km across, 1-12 h
windows over three days, 2,000 km box), each stored as one acknowledged inbound notice,
written straight into the station's tables after one real notice was received through the
service (its row is the template). Queries: new volumes from the same distribution, half
random, half placed against a stored volume.

Baseline, same run, same data and queries: the engine's `ConflictIndex` (built in memory).
Answers are compared pair for pair; any difference is printed.

Also the investigator's question, `notices --at` (`notice_conflicts.covering`): which
stored notices covered a point (each query's centre, 1 m round it) at an instant (the
middle of its window), against the same engine index asked the same. Prints figures, asserts
nothing. Run from the repository root: `.venv/bin/python bench/notice_station.py
[--volumes N]` (default 10^4; `make bench`).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "bench"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))  # the test harness's in-process stations; the data generator

from sqlalchemy import insert, select  # noqa: E402
from tests.inproc import link, make_node  # noqa: E402
from tests.notice_docs import square  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402

import conflicts as data  # noqa: E402
from openline.adapters.schema import notice_volumes, notices  # noqa: E402
from openline.core.clock import FakeClock, rfc3339  # noqa: E402
from openline.core.conflicts import ConflictIndex  # noqa: E402
from openline.core.volumes import Volume, centre  # noqa: E402
from openline.services import notice_conflicts, notice_view  # noqa: E402
from openline.services import notices as notice_service  # noqa: E402

CHUNK = 5_000


def store(node: Any, volumes: list[Volume], template: Any) -> float:
    """Each volume as one acknowledged inbound notice; returns volumes stored per second."""
    base = {**template._mapping, "state": "acknowledged"}
    t0 = time.perf_counter()
    with node.station.db.write() as conn:
        for start in range(0, len(volumes), CHUNK):
            chunk = volumes[start : start + CHUNK]
            # The rows the service writes, made for the whole chunk at once, then one a notice.
            volume_rows = notice_service._volume_rows("chunk", tuple(chunk))
            rows = []
            for i, v in enumerate(chunk, start):
                notice_id = f"bench-{i:08d}"
                volume_rows[i - start].update(notice_id=notice_id, n=1)
                rows.append(
                    {
                        **base,
                        "id": notice_id,
                        "series": notice_id,
                        "envelope_id": None,
                        "starts_at": v.start,
                        "ends_at": v.end,
                    }
                )
            conn.execute(insert(notices), rows)
            conn.execute(insert(notice_volumes), volume_rows)
    return len(volumes) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--volumes", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    rnd = random.Random(20261126)
    volumes = [data.random_volume(rnd, f"stored {i}") for i in range(args.volumes)]
    queries = data.make_queries(rnd, args.queries, volumes, "new")
    index = ConflictIndex.bulk(((f"bench-{i:08d}", 1), v) for i, v in enumerate(volumes))
    if args.backend in ("sqlite", "both"):
        run("SQLite", None, None, volumes, queries, index)
    if args.backend in ("postgresql", "both"):
        server = PostgresServer()
        server.start()
        try:
            urls = server.create_database("bench_a"), server.create_database("bench_b")
            run("PostgreSQL", *urls, volumes, queries, index)
        finally:
            server.stop()


def run(
    backend: str,
    url_a: str | None,
    url_b: str | None,
    volumes: list[Volume],
    queries: list[Volume],
    index: ConflictIndex[tuple[str, int]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="openline-bench-") as tmp:
        clock = FakeClock(data.BASE_US - 3600 * 1_000_000)
        a = make_node(Path(tmp), "stuttgart", clock, url_a)
        b = make_node(Path(tmp), "moscow", clock, url_b)
        link(a, b)
        start, end = (rfc3339(data.BASE_US + h * 3600 * 1_000_000) for h in (1, 2))
        far_away = square(-40.0, -60.0, start, end)  # clear of every bench volume
        template_id = notice_service.send(a.station, "admin", "moscow", far_away)
        a.drain()
        with b.station.db.read() as conn:
            template = conn.execute(select(notices).where(notices.c.id == template_id)).one()
            line_id = str(template.line_id)
        rate = store(b, volumes, template)
        if url_b is not None:
            with b.station.db.write() as conn:
                conn.exec_driver_sql("ANALYZE")
        station_ms, engine_ms, differ = [], [], 0
        with b.station.db.read() as conn:
            now = clock.now()
            plan = "\n".join(notice_conflicts.candidate_plan(conn, queries[0]))
            print(f"\n{backend} plan of the candidate query:\n{plan}")
            for q in queries:
                v = q
                t0 = time.perf_counter()
                found = notice_conflicts.find(
                    conn, "new", "new", line_id, (v,), now, category="air_operation"
                )
                station_ms.append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                expected = index.query(v)
                engine_ms.append((time.perf_counter() - t0) * 1e3)
                ours = {(f.other, f.other_volume) for f in found if f.other.startswith("bench-")}
                if ours != {key for key, _ in expected}:
                    differ += 1
                    print(
                        f"  differs: {q.name}: station {sorted(ours)}, "
                        f"engine {sorted(k for k, _ in expected)}"
                    )
            places = [_place(q) for q in queries]
            place_ms, place_engine_ms, place_differ, place_hits = [], [], 0, 0
            for v in places:
                t0 = time.perf_counter()
                covered = notice_conflicts.covering(conn, v)
                place_ms.append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                expected = index.query(v)
                place_engine_ms.append((time.perf_counter() - t0) * 1e3)
                ours = {(f.other, f.other_volume) for f in covered if f.other.startswith("bench-")}
                place_hits += len(ours)
                if ours != {key for key, _ in expected}:
                    place_differ += 1
                    print(f"  place differs: station {sorted(ours)}, engine {sorted(k for k, _ in expected)}")
        for node in (a, b):
            node.station.db.dispose()

    p = data.percentile
    print(f"\nstation conflict check, {backend}, {len(volumes):,} stored volumes, {len(queries)} new notices")
    print(f"  stored (bulk insert of rows): {rate:,.0f} volumes/s")
    print(f"  station check p50 / p99: {p(station_ms, 50):.2f} / {p(station_ms, 99):.2f} ms")
    print(
        f"  engine index (baseline, same data) p50 / p99: {p(engine_ms, 50):.3f} / {p(engine_ms, 99):.3f} ms"
    )
    print(f"  ratio station / engine at p50: {p(station_ms, 50) / max(p(engine_ms, 50), 1e-9):.1f}")
    print(f"  answers that differ: {differ} of {len(queries)}")
    print("  (the ratio is the cost of the database round trip and of reading candidates back)")
    print(
        f"which notices covered a point at an instant (notices --at), "
        f"{len(places)} places, {place_hits} found"
    )
    print(f"  station p50 / p99: {p(place_ms, 50):.2f} / {p(place_ms, 99):.2f} ms")
    print(
        f"  engine index (baseline, same data) p50 / p99: {p(place_engine_ms, 50):.3f} / "
        f"{p(place_engine_ms, 99):.3f} ms"
    )
    print(f"  answers that differ: {place_differ} of {len(places)}")


def _place(q: Volume) -> Volume:
    """The point at the centre of `q`, at the middle of its window, as `notices --at` asks."""
    lat, lng = centre(q.outline)
    middle = q.start if q.end is None else (q.start + q.end) // 2
    return notice_view.place_of(f"{lat},{lng}", 1.0, middle, None)


if __name__ == "__main__":
    main()
