"""The spatial index the conflict check narrows through (migration 0009): an R*Tree on
SQLite kept in step with `notice_volumes` by triggers, a GiST expression index on
PostgreSQL. A missing or stale index entry would hide a conflict, so these tests check
the entries themselves, and that the check finds what it must through them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from openline.services import notice_conflicts
from tests.inproc import Node, migrate_to
from tests.notice_docs import HOUR, alerts, circle, east_of, send, site, soon


def _boxes(node: Node) -> list[Any]:
    with node.station.db.read() as conn:
        return list(conn.execute(text("SELECT * FROM notice_boxes ORDER BY notice_id, n")).all())


def _volumes(node: Node) -> list[Any]:
    with node.station.db.read() as conn:
        return list(conn.execute(text("SELECT * FROM notice_volumes ORDER BY notice_id, n")).all())


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_stored_volume_has_a_box_that_holds_it(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    send(a, "moscow", soon(a, 48.77, 9.18))
    send(a, "moscow", site(a, 0.0, 179.999))  # open-ended, on the antimeridian
    a.drain()
    for node in (a, b):
        volumes, boxes = _volumes(node), _boxes(node)
        assert [(v.notice_id, v.n) for v in volumes] == [(x.notice_id, x.n) for x in boxes]
        for v, x in zip(volumes, boxes, strict=True):
            # Stored as 32-bit floats, rounded outwards: never smaller than the volume.
            box, volume = x._mapping, v._mapping
            for axis in "xyz":
                assert box[f"{axis}_min"] <= volume[f"n{axis}_min"]
                assert box[f"{axis}_max"] >= volume[f"n{axis}_max"]
            assert x.alt_min <= v.alt_lower_m
            assert x.alt_max >= v.alt_upper_m
            assert x.t_min <= v.start_at
            assert x.t_max >= (9e18 if v.end_at is None else v.end_at)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_deleted_volume_loses_its_box_and_a_changed_one_is_boxed_anew(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    first = send(a, "moscow", soon(a, 48.77, 9.18))["id"]
    second = send(a, "moscow", soon(a, 10.0, 10.0))["id"]
    with a.station.db.write() as conn:
        conn.execute(
            text("UPDATE notice_volumes SET alt_upper_m = 9000 WHERE notice_id = :id"), {"id": first}
        )
        conn.execute(text("DELETE FROM notice_volumes WHERE notice_id = :id"), {"id": second})
    [box] = _boxes(a)
    assert (box.notice_id, box.n, box.alt_max) == (first, 1, 9000)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_migration_boxes_volumes_stored_before_it_and_goes_back_cleanly(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    send(a, "moscow", soon(a, 48.77, 9.18))
    migrate_to(a, "0008", down=True)
    with a.station.db.read() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name LIKE 'notice_boxes%'")).scalar()
            == 0
        )
    migrate_to(a, "head")
    assert [(x.notice_id, x.n) for x in _boxes(a)] == [(v.notice_id, v.n) for v in _volumes(a)]
    assert len(_boxes(a)) == 1


def test_postgresql_has_the_gist_index_and_the_check_uses_it(nodes: tuple[Node, Node], backend: str) -> None:
    a, b = nodes
    if backend == "postgresql":
        with b.station.db.read() as conn:
            definition = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_notice_volumes_box'")
            ).scalar_one()
        assert "USING gist" in definition
        assert "int8range(start_at, end_at, '[]'::text)" in definition
    # Through the index, on either backend: a circle across the antimeridian from an
    # open-ended site (200 m) is found when they overlap, and not 5 km away.
    protected = send(a, "moscow", site(a, 0.0, 179.999))["id"]
    a.drain()
    now = b.station.clock.now()
    near = send(b, "stuttgart", circle(*east_of(0.0, 179.999, 300.0), 150, now + HOUR, now + 2 * HOUR))
    far = send(b, "stuttgart", circle(*east_of(0.0, 179.999, 5_000.0), 150, now + HOUR, now + 2 * HOUR))
    assert near["extents"][0]["volume"]["outline_circle"]["center"]["lng"] < 0  # across it
    assert [c["other_notice"] for c in near["conflicts"]] == [protected]
    assert far["conflicts"] == []
    assert len(alerts(b, "notice_conflict")) == 1
    with b.station.db.read() as conn:
        plan = notice_conflicts.candidate_plan(
            conn, notice_conflicts.stored_volume(_volume_row(b, near["id"]))
        )
    if backend == "sqlite":  # PostgreSQL's planner may rightly scan a table this small
        assert "notice_boxes VIRTUAL TABLE" in plan[0]


def _volume_row(node: Node, notice_id: str) -> Any:
    with node.station.db.read() as conn:
        return conn.execute(
            text("SELECT * FROM notice_volumes WHERE notice_id = :id"), {"id": notice_id}
        ).one()
