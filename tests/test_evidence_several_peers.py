"""Evidence on a station with lines to several peers: geneva, a coordinator, with lines to
north and south (and, later, east). A proof about a line rests on a checkpoint that the
line's own peer cosigned, whatever the other peers do; what a peer is given of geneva's
checkpoints carries geneva's signature and that peer's cosignature, and nothing of the
other parties; and a notice proof leaves out the conflicts with notices of other lines
unless asked for them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from openline.adapters.schema import ledger_checkpoints, ledger_peers, lines
from openline.adapters.transport import HttpTransport, TextAnswer
from openline.core import note, report, tiles
from openline.core.clock import FakeClock
from openline.core.evidence import verify_bundle, verify_proof
from openline.services import delivery, evidence, ledger, witness
from openline.services.accounts import Role
from tests.inproc import Node, Switchable, make_node
from tests.notice_docs import act, cli, send, site, soon
from tests.test_console import add_user, browser, log_in


@dataclass
class Routes:
    """A station's requests, each to the in-process app of the peer it is for. A route can
    be cut (that peer is down); the add-checkpoint requests sent are kept, by peer."""

    routes: dict[str, Switchable] = field(default_factory=dict)
    checkpoints: list[tuple[str, str]] = field(default_factory=list)

    def post(self, peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        return self.routes[peer].post(peer, base_url, path, payload)

    def post_text(self, peer: str, base_url: str, path: str, body: str) -> TextAnswer:
        self.checkpoints.append((peer, body))
        return self.routes[peer].post_text(peer, base_url, path, body)

    def close(self) -> None:
        for r in self.routes.values():
            r.close()


def routes(node: Node) -> Routes:
    return node.extra.setdefault("routes", Routes())  # type: ignore[no-any-return]


def link(a: Node, b: Node) -> None:
    """A line between a and b, each with its other lines kept."""
    for x, y in ((a, b), (b, a)):
        routes(x).routes[y.name] = Switchable(HttpTransport(x.station.keys, x.name, client=TestClient(y.app)))
        x.app.state.transport = routes(x)
    for x, y in ((a, b), (b, a)):
        r = x.api.post("/api/v1/lines", json={"card": y.station.card.to_json()})
        assert r.status_code == 201, r.text


def cut(a: Node, b: Node, down: bool = True) -> None:
    routes(a).routes[b.name].down = down
    routes(b).routes[a.name].down = down


def drain(*nodes: Node) -> None:
    """Deliver every outbox on every line whose peer is up."""
    for n in nodes:
        with n.station.db.read() as conn:
            wired = conn.execute(select(lines.c.id, lines.c.peer)).all()
        for line_id, peer in wired:
            if routes(n).routes[peer].down:
                continue
            for _ in range(100):
                if delivery.deliver_once(n.station, routes(n), line_id) is delivery.Outcome.IDLE:
                    break
            else:
                raise AssertionError(f"{n.name}: the outbox to {peer} did not drain")


def settle(*nodes: Node) -> None:
    """Integrate, sign and ask the peers to cosign (the ledger worker's round); a peer
    that is down is asked too, and fails, and waits out its backoff."""
    for _ in range(3):
        for n in nodes:
            ledger.integrate(n.station)
            ledger.sign_checkpoint(n.station)
        for n in nodes:
            for peer in witness.due_peers(n.station):
                witness.push(n.station, routes(n), peer)


def cosign_now(node: Node, *peers: str) -> None:
    """Sign the log as it stands and have `peers` cosign it now, backoff or not."""
    ledger.integrate(node.station)
    ledger.sign_checkpoint(node.station)
    for peer in peers:
        assert witness.push(node.station, routes(node), peer)


def place(a: Node, b: Node) -> str:
    r = a.api.post("/api/v1/calls", json={"peer": b.name, "subject": "Corridor", "priority": "routine"})
    assert r.status_code == 201, r.text
    drain(a, b)
    drain(b, a)
    return str(r.json()["id"])


def signers(text: str) -> list[str]:
    return [s.name for s in note.parse(text).signatures]


def origin(n: Node) -> str:
    return n.station.card.origin


def witness_key(n: Node) -> str:
    return n.station.card.cosigner_verifier().name


def types(proof: dict[str, Any]) -> list[str]:
    return [json.loads(base64.b64decode(e["entry"]))["type"] for e in proof["entries"]]


@pytest.fixture
def trio(tmp_path: Path, clock: FakeClock, database_url: str | None) -> Iterator[tuple[Node, Node, Node]]:
    """geneva (on the backend under test) with lines to north and south."""
    g = make_node(tmp_path, "geneva", clock, database_url)
    n = make_node(tmp_path, "north", clock, None)
    s = make_node(tmp_path, "south", clock, None)
    link(g, n)
    link(g, s)
    try:
        yield g, n, s
    finally:
        for x in (g, n, s):
            x.station.db.dispose()


# 1. A proof about a line, while another peer is down -----------------------------------


def test_a_proof_rests_on_a_checkpoint_its_own_peer_cosigned_while_another_is_down(
    trio: tuple[Node, Node, Node], monkeypatch: Any, tmp_path: Path
) -> None:
    g, n, s = trio
    north_call = place(g, n)
    settle(g, n, s)
    with g.station.db.read() as conn:
        both = ledger.latest_checkpoint(conn)
    assert both is not None
    assert both.cosigned_by == ("north", "south")

    cut(g, n)  # north stops; geneva goes on with south
    south_call = place(g, s)
    settle(g, s)
    with g.station.db.read() as conn:
        newest = ledger.latest_checkpoint(conn)
    assert newest is not None
    assert newest.size > both.size
    assert newest.cosigned_by == ("south",)

    # The north call's proof rests on the last checkpoint north cosigned, and shows
    # nothing of south: geneva's signature and north's cosignature only.
    r = g.api.get(f"/api/v1/ledger/calls/{north_call}/proof")
    assert r.status_code == 200, r.text
    proof = r.json()
    assert set(proof["cards"]) == {"geneva", "north"}
    assert signers(proof["checkpoint"]) == [origin(g), witness_key(n)]
    assert note.parse_checkpoint(note.parse(proof["checkpoint"]).text).size == both.size
    result = verify_proof(json.dumps(proof))
    assert result.ok, result.failures
    assert [c.by for c in result.cosignatures] == ["north"]
    assert result.story is not None
    assert result.story.peer == "north"

    # The south call's proof rests on south's newest cosignature.
    south = g.api.get(f"/api/v1/ledger/calls/{south_call}/proof").json()
    assert signers(south["checkpoint"]) == [origin(g), witness_key(s)]
    assert note.parse_checkpoint(note.parse(south["checkpoint"]).text).size == newest.size
    assert verify_proof(json.dumps(south)).ok

    # The same from the CLI.
    out = tmp_path / "p.json"
    made = cli(g, monkeypatch, "prove", north_call, "--out", str(out))
    assert made.exit_code == 0, made.output
    assert verify_proof(out.read_text()).ok

    # A call to north placed while north is down is in no checkpoint north cosigned:
    # refused, saying who has not cosigned, since when, and why.
    r = g.api.post("/api/v1/calls", json={"peer": "north", "subject": "Anyone?", "priority": "routine"})
    assert r.status_code == 201, r.text
    late = str(r.json()["id"])
    drain(g)
    settle(g, s)
    before = g.snapshot()
    r = g.api.get(f"/api/v1/ledger/calls/{late}/proof")
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert f"are not yet in a checkpoint cosigned by north (the latest it cosigned has {both.size} " in detail
    assert "north has not cosigned since" in detail
    assert "connection refused" in detail
    refused = cli(g, monkeypatch, "prove", late, "--out", str(tmp_path / "late.json"))
    assert refused.exit_code == 1
    assert "error (conflict)" in refused.output
    assert "cosigned by north" in " ".join(refused.output.split())
    assert not (tmp_path / "late.json").exists()
    assert g.snapshot() == before

    # North is back: it cosigns the newest checkpoint, and the call can be proved.
    cut(g, n, down=False)
    drain(g, n)
    drain(n, g)
    cosign_now(g, "north", "south")
    assert verify_proof(json.dumps(g.api.get(f"/api/v1/ledger/calls/{late}/proof").json())).ok


def test_the_report_rests_on_a_checkpoint_every_line_s_peer_cosigned(
    trio: tuple[Node, Node, Node], monkeypatch: Any
) -> None:
    g, n, s = trio
    place(g, n)
    place(g, s)
    cut(g, n)  # north is down before it has cosigned anything
    settle(g, s)
    r = g.api.get("/api/v1/report").json()
    assert r["checkpoint"]["cosigned_by"] == ["south"]
    shown = " ".join(cli(g, monkeypatch, "report").stdout.split())
    assert "cosigned by south; not by north, so the figures of north rest on geneva's word alone" in shown

    cut(g, n, down=False)
    cosign_now(g, "north", "south")
    with g.station.db.read() as conn:
        both = ledger.latest_checkpoint(conn)
    assert both is not None
    assert both.cosigned_by == ("north", "south")
    cut(g, n)  # down again; south goes on cosigning
    place(g, s)
    settle(g, s)
    r = g.api.get("/api/v1/report").json()
    assert r["checkpoint"]["cosigned_by"] == ["north", "south"]
    assert r["checkpoint"]["size"] == both.size
    assert r["totals"]["calls_placed"] == 2  # the figures up to that checkpoint
    shown = " ".join(cli(g, monkeypatch, "report").stdout.split())
    assert "cosigned by north, south" in shown
    assert "not by" not in shown


def recompute(bundle: Path, period: str) -> dict[str, Any]:
    """The report of `period` from a bundle's entries, as docs/ledger.md shows."""
    m = json.loads((bundle / "bundle.json").read_text())

    def entries() -> Iterator[dict[str, Any]]:
        for level, i, width in tiles.tiles_for_size(m["size"]):
            if level == 0:
                data = (bundle / tiles.tile_path("entries", i, width)).read_bytes()
                yield from (json.loads(e) for e in tiles.decode_bundle(data))

    root = base64.b64decode(m["root"])
    cp = report.Checkpoint(m["origin"], m["size"], root, (bundle / "checkpoint").read_text())
    return report.compute(entries(), report.parse_period(period), cp).to_json()


def test_the_report_held_back_by_a_silent_peer_has_a_bundle_and_names_only_its_lines(
    trio: tuple[Node, Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    g, n, s = trio
    place(g, n)
    settle(g, n, s)  # both cosign; south has no call this month
    cut(g, s)  # south stops; north goes on cosigning
    place(g, n)
    settle(g, n)
    r = g.api.get("/api/v1/report").json()
    with g.station.db.read() as conn:
        both = ledger.cosigned_checkpoint(conn, ["north", "south"])
        latest = ledger.latest_checkpoint(conn)
    assert both is not None
    assert latest is not None
    assert r["checkpoint"]["size"] == both.size < latest.size
    assert r["held_back"] == {"size": latest.size, "entries": latest.size - both.size}
    assert r["totals"]["calls_placed"] == 1

    # The report names north's line only: south's cosignature is not in its note.
    assert [x["peer"] for x in r["lines"]] == ["north"]
    assert r["checkpoint"]["cosigned_by"] == ["north"]
    assert signers(r["checkpoint"]["note"]) == [origin(g), witness_key(n)]
    shown = note.parse(r["checkpoint"]["note"])
    note.verify(shown, g.station.card.ledger_verifier())
    note.verify(shown, n.station.card.cosigner_verifier())
    assert "south" not in json.dumps(r)

    # The latest bundle is not the report's; the one of its checkpoint recomputes it.
    assert evidence.export_bundle(g.station, tmp_path / "latest")["size"] == latest.size
    assert recompute(tmp_path / "latest", r["period"])["totals"]["calls_placed"] == 2
    table = " ".join(cli(g, monkeypatch, "report").stdout.split())
    assert f"Held back at checkpoint {both.size}" in table
    assert f"the {latest.size - both.size} entries since are left out" in table
    command = f"openline ledger export --checkpoint {both.size} --peer north --out DIR"
    assert command in table
    assert "south" not in table
    add_user(g, "inspector", Role.AUDITOR)  # the console's report page says the same
    page = browser(g)
    log_in(page, "inspector")
    html = " ".join(page.get("/report").text.split())
    assert f"Held back at checkpoint {both.size}" in html
    assert f"the {latest.size - both.size} entries since are left out" in html
    assert command in html
    assert "south" not in html
    bundle = tmp_path / "report"
    args = command.split()[1:-1]
    made = cli(g, monkeypatch, *args, str(bundle))
    assert made.exit_code == 0, made.output
    assert (bundle / "checkpoint").read_text() == r["checkpoint"]["note"]
    result = verify_bundle(lambda p: (bundle / p).read_bytes() if (bundle / p).is_file() else None)
    assert result.ok, result.failures
    again = recompute(bundle, r["period"])
    again["checkpoint"]["cosigned_by"] = r["checkpoint"]["cosigned_by"]
    assert again == {k: v for k, v in r.items() if k in again}

    # A checkpoint never signed, one south has not cosigned, one nobody cosigned: refused.
    for size, peer, why in (
        (
            latest.size + 9,
            "north",
            f"error (not_found): this station signed no checkpoint of {latest.size + 9} ",
        ),
        (latest.size, "south", f"error (conflict): south has not cosigned the checkpoint of {latest.size} "),
        # Beyond what any ledger holds, and what the database stores: no overflow.
        *(
            (size, peer, f"error (not_found): this station signed no checkpoint of {size} ")
            for size in (2**63, 10**20)
            for peer in ("north", "")
        ),
    ):
        chosen = ("--peer", peer) if peer else ()
        refused = cli(g, monkeypatch, *args[:3], str(size), *chosen, "--out", str(tmp_path / "no"))
        assert refused.exit_code == 1
        assert why in " ".join(refused.output.split())
    place(g, n)
    ledger.integrate(g.station)
    unsigned = ledger.sign_checkpoint(g.station)
    assert unsigned is not None
    refused = cli(g, monkeypatch, *args[:3], str(unsigned.size), "--out", str(tmp_path / "no"))
    assert refused.exit_code == 1
    assert "error (conflict): no peer has cosigned the checkpoint of" in " ".join(refused.output.split())
    assert not (tmp_path / "no").exists()


def test_a_bundle_for_one_peer_rests_on_its_cosignature(
    trio: tuple[Node, Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    g, n, s = trio
    place(g, n)
    settle(g, n, s)
    cut(g, n)
    place(g, s)
    settle(g, s)
    with g.station.db.read() as conn:
        by_north = ledger.cosigned_checkpoint(conn, ["north"])
    assert by_north is not None
    manifest = evidence.export_bundle(g.station, tmp_path / "for-north", peer="north")
    assert manifest["size"] == by_north.size
    assert signers((tmp_path / "for-north" / "checkpoint").read_text()) == [origin(g), witness_key(n)]
    assert set(manifest["cards"]) == {"geneva", "north"}
    assert set(manifest["peer_checkpoints"]) == {"north"}
    bundle = tmp_path / "for-north"
    result = verify_bundle(lambda p: (bundle / p).read_bytes() if (bundle / p).is_file() else None)
    assert result.ok, result.failures
    assert not result.notes[:-1]  # nothing "not cosigned by" anyone: only north is in it

    # Without a peer: the whole station's bundle, as before.
    whole = evidence.export_bundle(g.station, tmp_path / "all")
    assert set(whole["cards"]) == {"geneva", "north", "south"}

    # The same from the CLI; a peer that is not pinned is refused, and nothing written.
    made = cli(
        g, monkeypatch, "ledger", "export", "--out", str(tmp_path / "cli"), "--peer", "north", "--json"
    )
    assert made.exit_code == 0, made.output
    assert (tmp_path / "cli" / "cards" / "north.json").is_file()
    assert not (tmp_path / "cli" / "cards" / "south.json").exists()
    refused = cli(g, monkeypatch, "ledger", "export", "--out", str(tmp_path / "none"), "--peer", "nobody")
    assert refused.exit_code == 1
    assert "error (not_found): no pinned station named 'nobody'" in " ".join(refused.output.split())
    assert not (tmp_path / "none").exists()
    # Into an existing directory only, as `prove` writes: one clear line, nothing made.
    (tmp_path / "a-file").write_text("x")
    for out, why in (
        (tmp_path / "missing" / "deeper" / "bundle", f"{tmp_path / 'missing' / 'deeper'} is not a directory"),
        (tmp_path / "a-file" / "bundle", f"{tmp_path / 'a-file'} is not a directory"),
    ):
        before = sorted(tmp_path.rglob("*"))
        refused = cli(g, monkeypatch, "ledger", "export", "--out", str(out))
        assert refused.exit_code == 1
        assert f"error (invalid_input): cannot write {out}: {why}" in " ".join(refused.output.split())
        assert "Traceback" not in refused.output
        assert sorted(tmp_path.rglob("*")) == before


# 2. What a peer is given of our checkpoints ---------------------------------------------


def test_a_new_peer_learns_nothing_of_the_coordinator_s_other_parties(
    trio: tuple[Node, Node, Node], clock: FakeClock, tmp_path: Path
) -> None:
    g, n, s = trio
    place(g, n)
    place(g, s)
    settle(g, n, s)
    e = make_node(tmp_path, "east", clock, None)
    try:
        link(g, e)
        east_call = place(g, e)
        # The new checkpoint is cosigned by north and south first, then sent to east.
        cosign_now(g, "north", "south", "east")
        with g.station.db.read() as conn:
            cp = ledger.latest_checkpoint(conn)
        assert cp is not None
        assert cp.cosigned_by == ("east", "north", "south")

        sent = [body for peer, body in routes(g).checkpoints if peer == "east"]
        assert sent
        for body in sent:
            assert signers(witness.parse_request(body).checkpoint) == [origin(g)]
        with e.station.db.read() as conn:
            kept = conn.execute(select(ledger_peers.c.witnessed_note)).scalar_one()
        assert signers(kept) == [origin(g), witness_key(e)]

        # A note stored by an older version, with the other parties' cosignatures in it,
        # is exported with geneva's signature and east's cosignature only.
        with g.station.db.read() as conn:
            full = conn.execute(
                select(ledger_checkpoints.c.note).where(ledger_checkpoints.c.size == cp.size)
            ).scalar_one()
        assert set(signers(full)) == {origin(g), witness_key(n), witness_key(s), witness_key(e)}
        with e.station.tx() as tx:
            tx.conn.execute(update(ledger_peers).values(witnessed_note=full, witnessed_size=cp.size))
        cosign_now(e, "geneva")
        evidence.export_bundle(e.station, tmp_path / "east-bundle")
        bundle = tmp_path / "east-bundle"
        held = (bundle / "peer-checkpoints" / "geneva").read_text()
        assert signers(held) == [origin(g), witness_key(e)]
        assert "north" not in held
        assert "south" not in held
        result = verify_bundle(lambda p: (bundle / p).read_bytes() if (bundle / p).is_file() else None)
        assert result.ok, result.failures

        # geneva's proof of the east call: its signature and east's cosignature.
        proof = g.api.get(f"/api/v1/ledger/calls/{east_call}/proof").json()
        assert signers(proof["checkpoint"]) == [origin(g), witness_key(e)]
        assert verify_proof(json.dumps(proof)).ok
    finally:
        e.station.db.dispose()


def test_a_proof_is_not_passed_off_with_another_peer_s_cosignature(trio: tuple[Node, Node, Node]) -> None:
    """A proof of a north call whose checkpoint south cosigned, with south's card added,
    is refused: the cosignature that counts is that of the peer the call was with."""
    g, n, s = trio
    north_call = place(g, n)
    settle(g, n, s)
    proof = g.api.get(f"/api/v1/ledger/calls/{north_call}/proof").json()
    with g.station.db.read() as conn:
        cp = ledger.latest_checkpoint(conn)
    assert cp is not None
    only_south = note.parse(cp.note).keeping(
        [g.station.card.ledger_verifier(), s.station.card.cosigner_verifier()]
    )
    doctored = {
        **proof,
        "checkpoint": only_south.render(),
        "cards": {**proof["cards"], "south": s.station.card.to_json()},
    }
    result = verify_proof(json.dumps(doctored))
    assert not result.ok
    assert any(
        f.message == "checkpoint: not cosigned by north, the peer of this call" for f in result.failures
    ), result.failures


# 3. A notice proof and the conflicts with notices of other lines ----------------------


def test_a_notice_proof_leaves_out_conflicts_with_other_lines_unless_asked(
    trio: tuple[Node, Node, Node], monkeypatch: Any, tmp_path: Path
) -> None:
    g, n, s = trio
    hospital = send(g, "south", site(g, 31.5234, 34.4453))
    drain(g)
    act(s, hospital["id"], "acknowledge")
    drain(s)
    air_op = send(n, "geneva", soon(n, 31.5234, 34.4453, text="Air operation"))
    drain(n)
    convoy = send(s, "geneva", soon(s, 31.5234, 34.4453, text="South's own sortie"))
    drain(s)
    drain(g)
    settle(g, n, s)

    def conflicts(proof: dict[str, Any]) -> list[tuple[str, str]]:
        result = verify_proof(json.dumps(proof))
        assert result.ok, result.failures
        entries = [x["entry"] for x in result.about or [] if x["entry"]["type"] == "notice.conflict"]
        return [(c["notice"], c["other_notice"]) for c in entries]

    # By default: the conflict with south's own notice (the same line) is there, the one
    # with north's air operation is not: its id and window are north's business.
    default = g.api.get(f"/api/v1/ledger/notices/{hospital['id']}/proof").json()
    assert conflicts(default) == [(convoy["id"], hospital["id"])]
    assert air_op["id"] not in json.dumps(default)
    # The air operation's proof, for north, leaves out its conflict with south's site.
    assert conflicts(g.api.get(f"/api/v1/ledger/notices/{air_op['id']}/proof").json()) == []

    # Asked for, it holds both, and verifies.
    asked = g.api.get(f"/api/v1/ledger/notices/{hospital['id']}/proof", params={"with_conflicts": True})
    assert sorted(conflicts(asked.json())) == sorted(
        [(air_op["id"], hospital["id"]), (convoy["id"], hospital["id"])]
    )

    out = tmp_path / "site.json"
    made = cli(g, monkeypatch, "prove", hospital["id"], "--out", str(out))
    assert made.exit_code == 0, made.output
    said = " ".join(made.stdout.split())
    assert "Left out 1 conflict with a notice of another line (north); --with-conflicts keeps it" in said
    assert conflicts(json.loads(out.read_text())) == [(convoy["id"], hospital["id"])]
    full = tmp_path / "site-full.json"
    made = cli(g, monkeypatch, "prove", hospital["id"], "--out", str(full), "--with-conflicts")
    assert made.exit_code == 0, made.output
    assert "Left out" not in made.stdout
    assert len(conflicts(json.loads(full.read_text()))) == 2
