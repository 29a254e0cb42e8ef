"""The transparency report and the ledger's status through the real API, console and CLI:
figures from real calls on both stations, the checkpoint they name, recomputed by an
outsider from the entries, and the pages every role may see."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from openline.adapters.schema import ledger_evidence
from openline.core import merkle, tiles
from openline.core import report as core
from openline.core.clock import FakeClock, rfc3339
from openline.services import calls, evidence, ledger
from openline.services.accounts import Role
from tests.harness import StationProcess, wait_for
from tests.inproc import Node, place_and_ring, settle_ledgers
from tests.notice_docs import cli
from tests.test_console import add_user, browser, log_in

PERIOD = "2026-01"  # the fake clock starts on 2026-01-01
# What the station says beside the figures, which no bundle holds (docs/ledger.md).
STATION_ONLY = {"station", "computed_at", "as_of", "complete", "held_back"}


def _calls(a: Node, b: Node, clock: FakeClock) -> None:
    """stuttgart calls twice: moscow picks up after 7 s, then misses one; moscow calls
    once and stuttgart picks up after 3 s."""
    first = place_and_ring(a, b)
    clock.advance(7)
    calls.pickup(b.station, "officer", first)
    b.drain()
    a.drain()
    place_and_ring(a, b)
    clock.advance(61)
    assert b.expire() == 1
    b.drain()
    a.drain()
    third = place_and_ring(b, a)
    clock.advance(3)
    calls.pickup(a.station, "officer", third)
    a.drain()
    b.drain()


def _report(node: Node, period: str = PERIOD) -> dict[str, Any]:
    r = node.api.get("/api/v1/report", params={"period": period})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_the_report_counts_each_lines_calls_against_the_cosigned_checkpoint(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    _calls(a, b, clock)
    settle_ledgers(a, b)
    r = _report(a)
    assert r["station"] == "stuttgart"
    assert r["period"] == PERIOD
    [line] = r["lines"]
    assert line["peer"] == "moscow"
    assert line["line"] == a.line_id()
    assert (line["calls_placed"], line["calls_received"]) == (2, 1)
    assert (line["picked_up"], line["missed"], line["declined"], line["cancelled"]) == (2, 1, 0, 0)
    # Pick-ups took 7 s (ours, by moscow) and 3 s (theirs, by us): median 5, p90 the 2nd of 2.
    assert line["pickup_seconds"] == {"count": 2, "median": 5.0, "p90": 7.0}
    assert line["by_direction"]["out"]["pickup_seconds"]["median"] == 7.0
    assert line["by_direction"]["out"]["missed"] == 1
    assert line["by_direction"]["in"]["pickup_seconds"]["median"] == 3.0
    assert line["link_tests_sent"] is None
    assert "not recorded" in r["not_recorded"]["link_tests"]
    with a.station.db.read() as conn:
        cp = ledger.latest_checkpoint(conn, cosigned=True)
    assert cp is not None
    assert r["checkpoint"]["size"] == cp.size
    assert r["checkpoint"]["root"] == base64.b64encode(cp.root).decode()
    assert r["checkpoint"]["origin"] == a.station.card.origin
    assert r["checkpoint"]["cosigned_by"] == ["moscow"]
    assert r["checkpoint"]["note"] == cp.note
    # moscow's report is the mirror image, against its own log.
    [theirs] = _report(b)["lines"]
    assert (theirs["peer"], theirs["calls_placed"], theirs["calls_received"]) == ("stuttgart", 1, 2)
    assert (theirs["picked_up"], theirs["missed"]) == (2, 1)
    # Another month has no calls, against the same checkpoint; a month yet to come is refused.
    empty = _report(a, "2025-12")
    assert empty["lines"] == []
    assert empty["totals"]["calls_placed"] == 0
    assert empty["checkpoint"]["size"] == cp.size


def test_anyone_with_the_entries_recomputes_the_same_report(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    _calls(a, b, clock)
    settle_ledgers(a, b)
    r = _report(a)
    size = r["checkpoint"]["size"]
    raw: list[bytes] = []
    for start in range(0, size, ledger.MAX_RANGE):
        page = a.api.get("/api/v1/ledger/entries", params={"start": start, "end": min(size, start + 1000)})
        assert page.status_code == 200, page.text
        raw += [base64.b64decode(e["entry"]) for e in page.json()]
    root = merkle.root([merkle.leaf_hash(d) for d in raw])
    assert base64.b64encode(root).decode() == r["checkpoint"]["root"]
    cp = core.Checkpoint(r["checkpoint"]["origin"], size, root, r["checkpoint"]["note"], ("moscow",))
    again = core.compute((json.loads(d) for d in raw), core.parse_period(PERIOD), cp).to_json()
    assert again == {k: v for k, v in r.items() if k not in STATION_ONLY}


def test_a_bundle_recomputes_the_published_report_as_docs_ledger_md_says(
    nodes: tuple[Node, Node], clock: FakeClock, tmp_path: Path
) -> None:
    a, b = nodes
    _calls(a, b, clock)
    settle_ledgers(a, b)
    published = _report(a)
    bundle = tmp_path / "bundle"
    evidence.export_bundle(a.station, bundle)
    m = json.loads((bundle / "bundle.json").read_text())

    def entries() -> Iterator[dict[str, Any]]:
        for level, n, width in tiles.tiles_for_size(m["size"]):
            if level == 0:
                data = (bundle / tiles.tile_path("entries", n, width)).read_bytes()
                yield from (json.loads(e) for e in tiles.decode_bundle(data))

    cp = core.Checkpoint(
        m["origin"], m["size"], base64.b64decode(m["root"]), (bundle / "checkpoint").read_text()
    )
    again = core.compute(entries(), core.parse_period(PERIOD), cp).to_json()
    assert again["checkpoint"]["cosigned_by"] == []
    again["checkpoint"]["cosigned_by"] = published["checkpoint"]["cosigned_by"]
    assert again == {k: v for k, v in published.items() if k not in STATION_ONLY}


def test_the_report_uses_the_newest_cosigned_checkpoint_not_a_newer_uncosigned_one(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    _calls(a, b, clock)
    settle_ledgers(a, b)
    before = _report(a)
    place_and_ring(a, b)  # signed by stuttgart, but moscow has not cosigned it yet
    ledger.integrate(a.station)
    assert ledger.sign_checkpoint(a.station) is not None
    after = _report(a)
    assert after["checkpoint"] == before["checkpoint"]
    assert after["totals"]["calls_placed"] == 2


def test_without_a_cosigned_checkpoint_the_report_uses_the_signed_one_and_says_so(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    r = a.api.get("/api/v1/report", params={"period": PERIOD})
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"
    assert "no signed checkpoint" in r.json()["detail"]
    assert "openline ledger checkpoint" in r.json()["detail"]
    place_and_ring(a, b)
    ledger.integrate(a.station)
    ledger.sign_checkpoint(a.station)
    r = a.api.get("/api/v1/report", params={"period": PERIOD})
    assert r.status_code == 200
    assert r.json()["checkpoint"]["cosigned_by"] == []
    assert r.json()["totals"]["calls_placed"] == 1


def test_the_report_defaults_to_this_month(nodes: tuple[Node, Node], clock: FakeClock) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    r = a.api.get("/api/v1/report")
    assert r.status_code == 200
    assert r.json()["period"] == PERIOD
    assert r.json()["totals"]["calls_placed"] == 1


def test_a_month_not_over_is_flagged_and_one_not_begun_refused(
    nodes: tuple[Node, Node], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    _calls(a, b, clock)
    settle_ledgers(a, b)
    now = a.station.clock.now()
    r = _report(a)
    assert r["computed_at"] == r["as_of"] == rfc3339(now)  # nothing logged since the checkpoint
    assert r["complete"] is False
    assert r["held_back"] is None
    table = " ".join(cli(a, monkeypatch, "report").stdout.split())
    assert f"Figures as of {rfc3339(now)} (computed {rfc3339(now)})." in table
    assert f"{PERIOD} had not ended as of {rfc3339(now)}: these are its figures so far" in table
    size = r["checkpoint"]["size"]
    assert f"openline ledger export --checkpoint {size} --peer moscow --out DIR" in table

    # A month yet to come has no figures, rather than a table of zeros.
    before = a.snapshot()
    refused = a.api.get("/api/v1/report", params={"period": "2026-02"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_input"
    assert refused.json()["detail"].startswith(f"2026-02 has not begun: it is {rfc3339(now)}")
    assert a.snapshot() == before

    # A call logged but not yet in the checkpoint: the figures are as of the checkpoint.
    signed_at = now
    clock.advance(60)
    place_and_ring(a, b)
    r = _report(a)
    assert r["checkpoint"]["size"] == size
    assert r["as_of"] == rfc3339(signed_at)
    assert r["computed_at"] == rfc3339(clock.now())
    # Once the month is over and the checkpoint holds all of it, its report is complete.
    clock.set(core.parse_period("2026-02").start)
    settle_ledgers(a, b)
    january = _report(a)
    assert january["complete"] is True
    assert january["totals"]["calls_placed"] == 3
    table = " ".join(cli(a, monkeypatch, "report", "--period", PERIOD).stdout.split())
    assert "had not ended" not in table
    assert _report(a, "2026-02")["complete"] is False


@pytest.mark.parametrize(
    "period", ["2026-13", "2026-1", "last month", "2026-11-01", "x" * 40, "0000-01", "9999-12"]
)
def test_a_bad_period_is_refused_and_changes_nothing(nodes: tuple[Node, Node], period: str) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    before = a.snapshot()
    r = a.api.get("/api/v1/report", params={"period": period})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_input"
    assert a.snapshot() == before


def test_the_ledger_status_shows_both_witness_directions_and_the_evidence(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    r = a.api.get("/api/v1/ledger/status")
    assert r.status_code == 200, r.text
    s = r.json()
    with a.station.db.read() as conn:
        assert s["size"] == ledger.head(conn).size
    assert s["pending"] == 0
    assert s["checkpoint"]["cosigned_by"] == ["moscow"]
    assert s["cosigned_checkpoint"]["size"] == s["size"]
    [peer] = s["peers"]
    with b.station.db.read() as conn:
        theirs = ledger.latest_checkpoint(conn)
    assert theirs is not None
    assert peer["peer"] == "moscow"
    assert peer["cosigned_size"] == s["size"]
    assert peer["last_error"] is None
    assert peer["witnessed_size"] == theirs.size
    assert peer["witnessed_root"] == base64.b64encode(theirs.root).decode()
    assert (s["evidence_count"], s["evidence"]) == (0, [])
    _evidence(a)
    s = a.api.get("/api/v1/ledger/status").json()
    assert s["evidence_count"] == 1
    assert s["evidence"][0]["kind"] == "truncation"
    assert s["evidence"][0]["peer"] == "moscow"
    assert s["evidence"][0]["received_at"].startswith("2026-01-01T")
    # The evidence itself, to hand to anyone: both notes verify with moscow's card alone.
    assert s["evidence"][0]["request"] == "old 9\n\n(the checkpoint)"
    assert s["evidence"][0]["contradicts"] == "(the checkpoint of size 9)"


def _evidence(node: Node) -> None:
    """A contradiction as the witness keeps it (how it is caught: tests/test_ledger.py)."""
    with node.station.tx() as tx:
        tx.conn.execute(
            insert(ledger_evidence).values(
                peer="moscow",
                kind="truncation",
                received_at=tx.now,
                request="old 9\n\n(the checkpoint)",
                contradicts="(the checkpoint of size 9)",
                detail="checkpoint of size 5 after size 9 was cosigned",
            )
        )


# The console -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_the_report_page_with_its_chart_and_checkpoint(
    nodes: tuple[Node, Node], clock: FakeClock, role: Role
) -> None:
    a, b = nodes
    _calls(a, b, clock)
    settle_ledgers(a, b)
    name = "who-" + role.value.replace("_", "-")
    add_user(a, name, role)
    c = browser(a)
    log_in(c, name)
    page = c.get("/report", params={"period": PERIOD})
    assert page.status_code == 200, page.text
    html = page.text
    cp = _report(a)["checkpoint"]
    assert f"<strong data-checkpoint-size>{cp['size']}</strong>" in html
    assert f"<code data-checkpoint-root>{cp['root']}</code>" in html
    assert "cosigned by <strong>moscow</strong>" in html
    svgs = re.findall(r"<svg .*?</svg>", html, re.DOTALL)
    assert len(svgs) == 2
    calls_chart, times_chart = svgs
    assert 'class="bar bar-calls_placed"' in calls_chart
    assert "<title>moscow: placed 2</title>" in calls_chart
    assert "<title>moscow: missed 1</title>" in calls_chart
    assert "<title>moscow: median 5 s</title>" in times_chart
    assert "<title>moscow: 90th percentile 7 s</title>" in times_chart
    assert 'href="/report"' in html  # in the nav
    assert 'href="/ledger"' in html
    # As the CLI says: figures so far while the month goes on, and the bundle to check them.
    assert f"{PERIOD} had not ended as of" in html
    assert f"openline ledger export --checkpoint {cp['size']} --peer moscow --out DIR" in html
    assert "from the first ring to the first pick-up" in html
    # The policy forbids inline styles and scripts, and nothing loads from elsewhere.
    assert "style=" not in html
    assert "<script>" not in html
    assert not re.search(r'(src|href)="https?:', html)


def test_the_report_page_defaults_to_this_month_and_refuses_a_bad_one(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    c = browser(a)
    add_user(a, "inspector", Role.AUDITOR)
    log_in(c, "inspector")
    page = c.get("/report")
    assert page.status_code == 200  # no checkpoint yet is a state, not an error: the page says so
    assert "no signed checkpoint" in page.text
    place_and_ring(a, b)
    settle_ledgers(a, b)
    page = c.get("/report")
    assert page.status_code == 200
    assert f'value="{PERIOD}"' in page.text
    bad = c.get("/report", params={"period": "2026-13"})
    assert bad.status_code == 422
    assert "not a month" in bad.text
    empty = c.get("/report", params={"period": "2025-12"})
    assert empty.status_code == 200
    assert "No calls were placed or received in 2025-12." in empty.text
    assert "<svg" not in empty.text


def test_the_ledger_page_shows_the_checkpoint_witnesses_and_evidence(
    nodes: tuple[Node, Node], clock: FakeClock
) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    add_user(a, "inspector", Role.AUDITOR)
    c = browser(a)
    log_in(c, "inspector")
    page = c.get("/ledger")
    assert page.status_code == 200, page.text
    status = a.api.get("/api/v1/ledger/status").json()
    assert f"<strong data-ledger-size>{status['size']}</strong>" in page.text
    assert "cosigned by <strong>moscow</strong>" in page.text
    assert status["checkpoint"]["note"].splitlines()[0] in page.text
    assert "<td>moscow</td>" in page.text
    assert f"{status['peers'][0]['witnessed_size']} entries, root" in page.text
    assert "None: no peer has shown two views" in page.text
    _evidence(a)
    live = c.get("/ledger/live")
    assert live.status_code == 200
    assert live.text.startswith('<div id="ledger"')
    assert "Evidence of contradictions (1)" in live.text
    assert "checkpoint of size 5 after size 9 was cosigned" in live.text
    assert '<strong class="warn">truncation</strong>' in live.text
    assert "<pre>(the checkpoint of size 9)</pre>" in live.text  # the evidence, to hand on


def test_the_report_and_ledger_pages_need_a_login(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    c = browser(a)
    for path in ("/report", "/ledger", "/ledger/live"):
        r = c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/login"


# The CLI ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_openline_report_prints_the_figures_and_the_checkpoint(
    running: StationProcess, tmp_path: Path
) -> None:
    s = running
    r = s.cli("report", "--json", check=False)
    assert r.returncode == 1
    assert "(conflict)" in r.stderr
    assert "no signed checkpoint" in r.stderr
    bad = s.cli("report", "--period", "2026-13", check=False)
    assert bad.returncode == 1
    assert "(invalid_input)" in bad.stderr
    assert "not a month" in bad.stderr
    # A line to a peer that is not running: its pinning is an entry, which the station signs.
    card = tmp_path / "moscow.json"
    card.write_text(StationProcess.create(tmp_path, "moscow").cli("card").stdout)
    s.cli("line", "add", str(card))
    wait_for(lambda: s.cli("report", "--json", check=False).returncode == 0, what="a checkpoint")
    data = s.cli_json("report", "--period", "2026-11")
    assert data["format"] == "openline-transparency-report/v1"
    assert data["station"] == "stuttgart"
    assert data["period"] == "2026-11"
    assert data["checkpoint"]["size"] >= 1
    assert data["checkpoint"]["origin"].startswith("openline/ledger/stuttgart/")
    assert data["checkpoint"]["cosigned_by"] == []
    assert data["lines"] == []
    assert set(data["totals"]) >= {"calls_placed", "calls_received", "picked_up", "missed", "pickup_seconds"}
    assert set(data["not_recorded"]) == {"link_tests"}
    table = s.cli("report", "--period", "2026-11")
    assert "Transparency report of stuttgart, 2026-11" in table.stdout
    assert f"Computed against checkpoint {data['checkpoint']['size']}" in table.stdout
    assert "not recorded by this version" in table.stdout
