"""The evidence ledger in a station: every event goes in with its state change, the
tiles answer proofs that verify, checkpoints are signed and cosigned over the line, and a
peer that rewrites or truncates its log is caught.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import delete, func, insert, select, update

from openline.adapters.schema import (
    alerts,
    ledger_bundles,
    ledger_calls,
    ledger_checkpoints,
    ledger_evidence,
    ledger_peers,
    ledger_pending,
    ledger_state,
    ledger_tiles,
)
from openline.core import merkle, note
from openline.core.ledger import reveals
from openline.core.tiles import decode_bundle
from openline.services import calls, ledger, outbox, witness
from openline.services.accounts import Role
from openline.services.station import Station
from tests.inproc import Node, place_and_ring, settle_ledgers
from tests.test_console import add_user, browser, log_in


def _all_entries(station: Station) -> list[dict[str, object]]:
    with station.db.read() as conn:
        size = ledger.head(conn).size
        out = []
        for start in range(0, size, ledger.MAX_RANGE):
            out += [
                json.loads(d) for _, d in ledger.entries(conn, start, min(size, start + ledger.MAX_RANGE))
            ]
    return out


def _types(station: Station) -> list[str]:
    return [str(e["type"]) for e in _all_entries(station)]


def test_every_event_of_a_call_is_in_both_ledgers(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    calls.pickup(b.station, "officer", call_id)
    b.drain()
    calls.say(a.station, "admin", call_id, "Status of the corridor?")
    a.drain()
    calls.close(b.station, "officer", call_id, summary="agreed")
    b.drain()
    a.drain()
    settle_ledgers(a, b)
    ta, tb = _types(a.station), _types(b.station)
    for t in (
        "line.pinned",
        "line.active",
        "call.placed",
        "envelope.sent",
        "receipt.received",
        "call.delivered",
    ):
        assert t in ta, t
    for t in ("call.ringing", "call.picked_up", "call.message_sent", "call.closed"):
        assert t in ta, t
    for t in ("call.placed", "envelope.received", "call.ringing", "call.picked_up", "call.message_received"):
        assert t in tb, t
    # Nothing said is in either log: not the subject, the message or the summary.
    for n in (a, b):
        for e in _all_entries(n.station):
            text = json.dumps(e)
            for said in ("Status of the corridor", "agreed", "Test call"):
                assert said not in text


def test_content_commitments_match_on_both_sides_and_reveal_the_message(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    calls.pickup(b.station, "officer", call_id)
    b.drain()
    env_id = calls.say(a.station, "admin", call_id, "The convoy moves at 0600")
    a.drain()
    settle_ledgers(a, b)
    sent = [
        e for e in _all_entries(a.station) if e.get("envelope") == env_id and e["type"] == "envelope.sent"
    ]
    got = [
        e for e in _all_entries(b.station) if e.get("envelope") == env_id and e["type"] == "envelope.received"
    ]
    assert len(sent) == len(got) == 1
    assert sent[0]["content"] == got[0]["content"]
    # Selective disclosure: the receiver opens the body and shows it; anyone checks it.
    with b.station.db.read() as conn:
        from openline.adapters.schema import envelopes

        row = conn.execute(select(envelopes).where(envelopes.c.id == env_id)).one()
    body = outbox.open_body(b.station, row)
    from openline.core.encoding import b64d, canonical

    salt = b64d(body["salt"])
    content = canonical({k: v for k, v in body.items() if k != "salt"})
    assert reveals(str(got[0]["content"]), content, salt)
    assert not reveals(str(got[0]["content"]), content.replace(b"0600", b"0700"), salt)


def test_tile_proofs_match_the_reference_and_verify(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    with a.station.tx() as tx:
        for i in range(700):  # past two full tiles, so level 1 has hashes too
            ledger.append(tx, "test.entry", tx.now, {"n": i})
    while ledger.integrate(a.station, limit=97):  # odd batches: tiles filled across batches
        pass
    with a.station.db.read() as conn:
        size = ledger.head(conn).size
        data = [d for _, d in ledger.entries(conn, 0, min(size, 1000))]
        leaves = [merkle.leaf_hash(d) for d in data]
        assert ledger.head(conn).root == merkle.root(leaves)
        assert conn.execute(select(func.count()).select_from(ledger_tiles)).scalar_one() >= 4
        for index, at_size in [(0, 1), (2, 3), (255, 256), (256, 257), (300, size), (size - 1, size)]:
            proof = ledger.inclusion_proof(conn, index, at_size)
            assert proof == merkle.inclusion_proof(index, leaves[:at_size])
            merkle.verify_inclusion(index, at_size, leaves[index], proof, merkle.root(leaves[:at_size]))
        for m, n in [(1, 2), (3, 7), (256, 512), (255, 700), (100, size)]:
            if n > size:
                continue
            proof = ledger.consistency_proof(conn, m, n)
            assert proof == merkle.consistency_proof(m, leaves[:n])
            merkle.verify_consistency(m, n, merkle.root(leaves[:m]), merkle.root(leaves[:n]), proof)


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [(-1, 5, "entry index"), (5, 5, "entry index"), (0, 0, "tree size"), (0, 10**9, "tree size")],
)
def test_bad_proof_requests_are_refused(
    nodes: tuple[Node, Node], index: int, size: int, message: str
) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    with a.station.db.read() as conn, pytest.raises(ledger.InvalidInput, match=message):
        ledger.inclusion_proof(conn, index, size)


@pytest.mark.parametrize("huge", [2**62 + 1, 2**63, 10**20])
def test_a_size_or_index_beyond_any_ledger_is_refused_over_the_api(
    nodes: tuple[Node, Node], huge: int
) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    for path, params in (
        ("proof/inclusion", {"index": 0, "size": huge}),
        ("proof/inclusion", {"index": huge, "size": 1}),
        ("proof/consistency", {"from": 1, "to": huge}),
        ("entries", {"start": huge, "end": 1}),
        ("entries", {"start": 0, "end": huge}),
    ):
        r = a.api.get(f"/api/v1/ledger/{path}", params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["code"] == "invalid_input", r.text


def test_checkpoints_are_cosigned_by_the_peer(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    for me, peer in ((a, b), (b, a)):
        with me.station.db.read() as conn:
            cp = ledger.latest_checkpoint(conn, cosigned=True)
            assert cp is not None
            assert cp.size == ledger.head(conn).size
        signed = note.parse(cp.note)
        checkpoint = note.parse_checkpoint(signed.text)
        assert checkpoint.origin == me.station.card.origin
        note.verify(signed, me.station.card.ledger_verifier())
        cosig = note.verify(signed, peer.station.card.cosigner_verifier())
        assert cosig.name.startswith(f"openline/witness/{peer.name}/")


def test_a_station_that_rewrites_its_log_is_caught_by_its_peer(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    settle_ledgers(a, b)
    # stuttgart rewrites an entry of its log (as if to deny the call), rebuilds its tiles
    # and root from the altered entries, and signs a new, larger checkpoint.
    _doctor(a.station, lambda data: [*data[:3], data[3].replace(b"1", b"2"), *data[4:]])
    calls.cancel(a.station, "admin", call_id)
    a.drain()
    ledger.integrate(a.station)
    with a.station.db.write() as conn:  # it also forgets it ever signed the old checkpoints
        conn.execute(delete(ledger_checkpoints))
    assert ledger.sign_checkpoint(a.station) is not None
    assert a.transport is not None
    assert not witness.push(a.station, a.transport, "moscow")
    with b.station.db.read() as conn:
        kinds = [r.kind for r in conn.execute(select(ledger_evidence))]
        alarm = conn.execute(select(alerts).where(alerts.c.kind == "ledger_fork")).one()
    assert kinds == ["rewrite"]
    assert "stuttgart" in alarm.subject
    # The alarm is on moscow's watch floor, for someone to acknowledge.
    shown = b.api.get("/api/v1/alerts").json()
    assert [x["kind"] for x in shown if x["acknowledged_at"] is None] == ["ledger_fork"]


def test_a_station_that_truncates_its_log_is_caught_by_its_peer(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    # stuttgart is "restored from an old backup": its last 3 entries are gone, and so is
    # its memory of the checkpoints it signed.
    _doctor(a.station, lambda data: data[:-3])
    with a.station.db.write() as conn:
        conn.execute(delete(ledger_checkpoints))
    assert ledger.sign_checkpoint(a.station) is not None
    assert a.transport is not None
    assert not witness.push(a.station, a.transport, "moscow")
    assert not witness.push(a.station, a.transport, "moscow")  # it retries: kept once
    with b.station.db.read() as conn:
        kinds = [r.kind for r in conn.execute(select(ledger_evidence))]
        assert conn.execute(select(alerts).where(alerts.c.kind == "ledger_fork")).first() is not None
    assert kinds == ["truncation"]
    with a.station.db.read() as conn:  # stuttgart learns it too
        assert conn.execute(select(alerts).where(alerts.c.kind == "ledger_inconsistent")).first() is not None
    # ... and says so where it is asked: moscow will not cosign this log again, so a proof
    # of a call placed now is not "not yet" but never, to be made on moscow.
    with b.station.db.read() as conn:
        witnessed = conn.execute(select(ledger_peers.c.witnessed_size)).scalar_one()
    (peer,) = a.api.get("/api/v1/ledger/status").json()["peers"]
    assert peer["cosigned_lost"] == witnessed
    add_user(a, "clerk", Role.AUDITOR)
    page = browser(a)
    log_in(page, "clerk")
    assert (
        f"{witnessed} entries of the log this station held before it was restored" in page.get("/ledger").text
    )
    call_id = place_and_ring(a, b)
    settle_ledgers(a, b)
    r = a.api.get(f"/api/v1/ledger/calls/{call_id}/proof")
    assert r.status_code == 409, r.text
    assert f"moscow never will: it cosigned {witnessed} entries of the log" in r.json()["detail"]


def test_a_restored_log_that_grew_past_what_the_peer_cosigned_knows_it_too(nodes: tuple[Node, Node]) -> None:
    """Restored, the station logs at once (the resync, new calls) and passes the size the
    peer cosigned before it first asks: the peer's answer, a consistency proof that does
    not lead to its root, says the same as a shorter log did. The station stops asking."""
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    with b.station.db.read() as conn:
        witnessed = conn.execute(select(ledger_peers.c.witnessed_size)).scalar_one()
    _doctor(a.station, lambda data: data[:-3])  # the backup, three entries short
    with a.station.db.write() as conn:
        conn.execute(delete(ledger_checkpoints))
    _grow(a, 10)  # and more logged since than was lost
    assert ledger.sign_checkpoint(a.station) is not None
    assert a.transport is not None
    assert witness.due_peers(a.station) == ["moscow"]
    assert not witness.push(a.station, a.transport, "moscow")
    (peer,) = a.api.get("/api/v1/ledger/status").json()["peers"]
    assert peer["cosigned_lost"] == witnessed
    assert witness.due_peers(a.station) == []  # it will not cosign: asked no more
    assert peer["next_attempt_at"] is None  # and no next attempt is shown
    add_user(a, "clerk", Role.AUDITOR)
    page = browser(a)
    log_in(page, "clerk")
    shown = page.get("/ledger").text
    assert "not cosigned, and never to be by moscow" in shown
    assert "prove what was logged since on moscow's station" in shown


def _grow(node: Node, n: int) -> None:
    with node.station.tx() as tx:
        for i in range(n):
            ledger.append(tx, "test.entry", tx.now, {"n": i})
    ledger.integrate(node.station)


def test_a_station_never_signs_a_checkpoint_inconsistent_with_its_last(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    with a.station.db.read() as conn:
        before = ledger.latest_checkpoint(conn)
    _doctor(a.station, lambda data: [b'{"v":1}', *data[1:]])
    _grow(a, 1)
    assert ledger.sign_checkpoint(a.station) is None
    with a.station.db.read() as conn:
        assert ledger.latest_checkpoint(conn) == before
        assert conn.execute(select(alerts).where(alerts.c.kind == "ledger_inconsistent")).first() is not None


def _checkpoint_sizes(station: Station) -> list[int]:
    with station.db.read() as conn:
        query = select(ledger_checkpoints.c.size).order_by(ledger_checkpoints.c.size)
        return list(conn.execute(query).scalars())


def test_a_checkpoint_proven_before_the_log_grew_again_is_made_again(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sign_checkpoint proves and signs in a read transaction; an integration committed
    before its write transaction must not get a checkpoint of the older tree in."""
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    _grow(a, 3)
    real = ledger._signed_note
    grown: list[int] = []

    def meanwhile(station: Station, state: ledger.TreeHead) -> str:
        if not grown:  # another thread integrates between the read and the write
            _grow(a, 2)
            grown.append(state.size)
        return real(station, state)

    monkeypatch.setattr(ledger, "_signed_note", meanwhile)
    before = _checkpoint_sizes(a.station)
    made = ledger.sign_checkpoint(a.station)
    with a.station.db.read() as conn:
        now = ledger.head(conn)
    assert made is not None
    assert grown
    assert made.size == now.size == grown[0] + 2  # of the tree as it was at the write
    assert made.root == now.root
    assert note.parse_checkpoint(note.parse(made.note).text).root == now.root
    assert _checkpoint_sizes(a.station) == [*before, now.size]


def test_a_checkpoint_signed_meanwhile_is_not_signed_twice(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    _grow(a, 3)
    real = ledger._signed_note
    others: list[ledger.SignedCheckpoint | None] = []

    def meanwhile(station: Station, state: ledger.TreeHead) -> str:
        if not others:  # another process signs the same tree between the read and the write
            monkeypatch.setattr(ledger, "_signed_note", real)
            others.append(ledger.sign_checkpoint(a.station))
        return real(station, state)

    monkeypatch.setattr(ledger, "_signed_note", meanwhile)
    before = _checkpoint_sizes(a.station)
    assert ledger.sign_checkpoint(a.station) is None
    assert others[0] is not None
    assert _checkpoint_sizes(a.station) == [*before, others[0].size]


def test_witness_refuses_bad_requests_and_changes_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    with b.station.db.read() as conn:
        before = conn.execute(select(ledger_peers)).all()
    with a.station.db.read() as conn:
        cp = ledger.latest_checkpoint(conn)
    assert cp is not None
    bare = note.parse(cp.note)
    own_only = bare.text + "\n" + bare.signatures[0].line()
    cases = [
        ("nonsense", 400),
        (f"old x\n\n{own_only}", 400),
        (f"old {cp.size}\nnot-base64!\n\n{own_only}", 400),
        (f"old \u00b2\n\n{own_only}", 400),  # isdigit() but not int(): a 500 before
        (f"old {'9' * 5000}\n\n{own_only}", 400),  # more digits than int() reads
        (f"old {cp.size}\n{'A' * 43}\u00e9\n\n{own_only}", 400),  # non-ASCII: ValueError, not binascii.Error
        (f"old {cp.size}\n\n{own_only[:-30]}\u2014{own_only[-29:]}", 400),  # in the signature line
        (f"old {cp.size}\n\n{own_only.replace('openline/ledger', 'other/ledger')}", 404),
        (f"old 1\n\n{own_only}", 409),
        (f"old {cp.size + 1}\n\n{own_only}", 400),
    ]
    forged = note.sign(bare.text, a.station.card.origin, b.station.keys.ledger)  # wrong key
    cases.append((f"old {cp.size}\n\n{forged}", 403))
    for body, status in cases:
        answer = witness.add_checkpoint(b.station, "stuttgart", body)
        assert answer.status == status, (body[:40], answer)
    with b.station.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(ledger_evidence)).scalar_one() == 0
        assert conn.execute(select(alerts).where(alerts.c.kind == "ledger_fork")).first() is None
        assert conn.execute(select(ledger_peers)).all() == before


def _doctor(station: Station, change: Callable[[list[bytes]], list[bytes]]) -> None:
    """Change the sequenced entries and rebuild tiles and root from them, as a station that
    doctors its database would do so that its own proofs still verify."""
    with station.db.write() as conn:
        rows = conn.execute(select(ledger_bundles.c.data).order_by(ledger_bundles.c.idx)).scalars()
        data = change([d for row in rows for d in decode_bundle(bytes(row))])
        for table in (ledger_bundles, ledger_tiles, ledger_calls):
            conn.execute(delete(table))
        conn.execute(update(ledger_state).values(size=0, root=merkle.EMPTY_ROOT))
        conn.execute(insert(ledger_pending), [{"call_id": None, "data": d} for d in data])
    while ledger.integrate(station):
        pass
