"""A station restored from a backup, and its peer, mend the line between them.

Restored, a station is as it was at the backup: what it sent since is taken by the peer
under numbers it would hand out again (`replay`), and what it received since the peer
holds as delivered (`sequence_gap` on everything the peer sends next). After the
start-up handshake the two compare counters (services/resync.py): the restored one goes
on after what the peer holds, and the peer sends again what the restored one lost.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from openline.adapters.home import read_token
from openline.adapters.schema import envelopes, lines
from openline.adapters.transport import SYNC_PATH, HttpTransport, PeerRefused
from openline.api.app import create_app
from openline.core.clock import FakeClock, rfc3339
from openline.core.requestsig import sign_request
from openline.runtime import build_station
from openline.services import backup, calls, delivery, resync
from openline.settings import load
from tests.inproc import Deferred, Node, Switchable, linked_pair, picked_up, show
from tests.notice_docs import alerts, ledger_entries


def _restored(a: Node, home: Path, clock: FakeClock, b: Node) -> Node:
    """`a` stopped, and its station started again from the backup at `home`, talking to b."""
    a.station.db.dispose()
    station = build_station(load(home), clock=clock)
    app = create_app(station, transport=Deferred(station), workers=False)
    api = TestClient(app, headers={"Authorization": f"Bearer {read_token(home)}"})
    node = Node(a.name, home, station, app, api)
    node.peer_http, b.peer_http = TestClient(b.app), TestClient(app)
    node.transport = Switchable(HttpTransport(station.keys, node.name, client=node.peer_http))
    b.transport = Switchable(HttpTransport(b.station.keys, b.name, client=b.peer_http))
    app.state.transport, b.app.state.transport = node.transport, b.transport
    return node


def _announce(node: Node) -> None:
    assert node.transport is not None
    assert delivery.announce(node.station, node.transport, node.line_id())


def _say(node: Node, call_id: str, text: str, clock: FakeClock) -> None:
    calls.say(node.station, "admin", call_id, text)
    clock.advance(1)  # the thread is in time order


def _texts(node: Node, call_id: str) -> list[str | None]:
    return [m["text"] for m in show(node, call_id)["messages"]]


@pytest.fixture
def sqlite_pair(tmp_path: Path, clock: FakeClock) -> Any:
    a, b = linked_pair(tmp_path, clock)
    yield a, b
    for n in (a, b):
        n.station.db.dispose()


def test_a_station_restored_from_a_backup_and_its_peer_mend_the_line(
    sqlite_pair: tuple[Node, Node], tmp_path: Path, clock: FakeClock
) -> None:
    a, b = sqlite_pair
    call_id = picked_up(a, b)
    a.drain()
    backup.backup(a.home, tmp_path / "backup")
    for text in ("lost 1", "lost 2"):
        _say(a, call_id, text, clock)
    a.drain()
    for text in ("sent back 1", "sent back 2"):
        _say(b, call_id, text, clock)
    b.drain()

    clock.advance(600)  # the disk died; the backup is found and started
    a = _restored(a, tmp_path / "backup", clock, b)
    assert _texts(a, call_id) == []  # as it was at the backup
    _announce(a)  # what `serve` does at start: the handshake, then the counters

    # stuttgart goes on after what moscow holds, and its watch floor is told what it lost
    # both ways: what it had sent, and what moscow now sends again.
    at = rfc3339(clock.now())
    told = {x["subject"]: x["detail"] for x in alerts(a, "line_resynchronised")}
    assert told == {
        f"moscow going on from 4 at {at}": {"peer": "moscow", "lost_from": 2, "lost_to": 3},
        f"moscow resending from 3 at {at}": {"peer": "moscow", "received_lost_from": 3, "resending": 2},
    }
    (entry,) = ledger_entries(a, "line.resync")
    assert entry["skipped"] == [2, 4]
    # moscow sends again what stuttgart lost, which keeps the receipts stuttgart gave first.
    first = {m["id"]: m["receipt"] for m in show(b, call_id)["messages"]}
    b.drain()
    assert _texts(a, call_id) == ["sent back 1", "sent back 2"]
    assert {m["id"]: m["receipt"] for m in show(b, call_id)["messages"]} == first
    (resent,) = alerts(b, "line_resynchronised")
    assert resent["detail"] == {"peer": "stuttgart", "resent_from": 3, "lost": 2}
    assert [(e["resent"], e["lost"]) for e in ledger_entries(b, "line.resync")] == [(2, 2)]

    # And the line works both ways again.
    _say(a, call_id, "after", clock)
    a.drain()
    _say(b, call_id, "and back", clock)
    b.drain()
    assert _texts(b, call_id) == ["lost 1", "lost 2", "sent back 1", "sent back 2", "after", "and back"]
    assert _texts(a, call_id) == ["sent back 1", "sent back 2", "after", "and back"]
    for node in (a, b):
        line = node.line()
        assert (line.retry_at, line.last_error) == (None, None)
        assert node.api.get("/api/v1/lines").json()[0]["outbox_depth"] == 0


def test_each_restore_from_one_backup_is_told_on_its_own(
    sqlite_pair: tuple[Node, Node], tmp_path: Path, clock: FakeClock
) -> None:
    """A first restore failed, and the same backup is restored again: the peer resends
    what was lost a second time, and its watch floor gets a second alert, not the first
    one's subject again (which raised nothing, or folded into an acknowledged alert)."""
    a, b = sqlite_pair
    call_id = picked_up(a, b)
    a.drain()
    backup.backup(a.home, tmp_path / "backup")
    shutil.copytree(tmp_path / "backup", tmp_path / "backup-again")
    _say(b, call_id, "sent back", clock)
    b.drain()
    for home in (tmp_path / "backup", tmp_path / "backup-again"):
        clock.advance(600)
        a = _restored(a, home, clock, b)
        _announce(a)
        b.drain()
        assert _texts(a, call_id) == ["sent back"]
        for x in alerts(b, "line_resynchronised"):  # the watch floor acknowledges what it saw
            b.api.post(f"/api/v1/alerts/{x['id']}/acknowledge")
    told = alerts(b, "line_resynchronised")
    assert [x["detail"] for x in told] == [{"peer": "stuttgart", "resent_from": 3, "lost": 1}] * 2
    assert len({x["subject"] for x in told}) == 2


def test_what_the_restored_station_sent_before_it_compared_counters_is_refused_for_good(
    sqlite_pair: tuple[Node, Node], tmp_path: Path, clock: FakeClock
) -> None:
    """The peer was down when it started again: a message its officer sent meanwhile took
    a number the peer holds. The peer refuses it with a signed refusal (a `replay`), so it
    is settled, shown refused, and the line goes on."""
    a, b = sqlite_pair
    call_id = picked_up(a, b)
    a.drain()
    backup.backup(a.home, tmp_path / "backup")
    calls.say(a.station, "admin", call_id, "lost")
    a.drain()

    a = _restored(a, tmp_path / "backup", clock, b)
    early = calls.say(a.station, "admin", call_id, "too early")
    a.drain()
    (message,) = show(a, call_id)["messages"]
    assert message["refused"] == "replay: sequence number 2 was already used (next expected 3)"
    assert message["receipt"]["type"] == "refusal"
    (alert,) = alerts(a, "envelope_refused")
    assert alert["subject"] == early
    # moscow changed nothing for it: its thread has what it holds under that number.
    assert _texts(b, call_id) == ["lost"]
    _announce(a)
    calls.say(a.station, "admin", call_id, "after")
    a.drain()
    assert _texts(b, call_id) == ["lost", "after"]


def _forget_inbound_from(node: Node, seq: int) -> None:
    """What a restore does to one direction: the envelopes from `seq` on are gone, and
    the station expects `seq` next."""
    with node.station.tx() as tx:
        tx.conn.execute(delete(envelopes).where(envelopes.c.direction == "in", envelopes.c.seq >= seq))
        tx.conn.execute(update(lines).values(next_in_seq=seq))


def test_counters_mend_on_both_databases(nodes: tuple[Node, Node]) -> None:
    """The two mendings on their own, on SQLite and PostgreSQL: moscow lost the last two
    envelopes stuttgart sent it; stuttgart lost the number it had reached."""
    a, b = nodes
    call_id = picked_up(a, b)
    a.drain()
    for text in ("one", "two"):
        calls.say(a.station, "admin", call_id, text)
    a.drain()
    before = a.line().next_out_seq
    _forget_inbound_from(b, before - 2)
    assert b.transport is not None
    assert resync.sync(b.station, b.transport, "stuttgart")
    assert a.line().batch_id is None
    a.drain()
    assert _texts(b, call_id) == ["one", "two"]
    with b.station.db.read() as conn:
        seqs = conn.execute(select(envelopes.c.seq).where(envelopes.c.direction == "in")).scalars().all()
    assert sorted(seqs)[-2:] == [before - 2, before - 1]
    assert b.line().next_in_seq == before

    with a.station.tx() as tx:
        tx.conn.execute(update(lines).values(next_out_seq=before - 1))
    assert a.transport is not None
    assert resync.sync(a.station, a.transport, "moscow")
    assert a.line().next_out_seq == before
    calls.say(a.station, "admin", call_id, "three")
    a.drain()
    assert b.line().next_in_seq == before + 1


def test_counters_that_agree_change_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    picked_up(a, b)
    a.drain()
    before = a.snapshot(), b.snapshot()
    assert a.transport is not None
    assert resync.sync(a.station, a.transport, "moscow")
    assert (a.snapshot(), b.snapshot()) == before


def test_a_peer_without_the_sync_is_left_as_it_is(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    """An older station answers 404: the start-up handshake is done all the same."""
    a, _ = nodes
    assert a.transport is not None
    real = a.transport.post

    def older(peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        if path == SYNC_PATH:
            raise PeerRefused("moscow refused (404 not_found)", peer_code="not_found", http_status=404)
        return real(peer, base_url, path, payload)

    monkeypatch.setattr(a.transport, "post", older)
    before = a.line()
    _announce(a)
    assert a.line().next_out_seq == before.next_out_seq


def _post_sync(a: Node, b: Node, payload: Any) -> Any:
    body = json.dumps(payload).encode()
    auth = sign_request(a.station.keys, "POST", SYNC_PATH, a.name, b.name, body)
    assert a.peer_http is not None
    return a.peer_http.post(SYNC_PATH, content=body, headers={"Authorization": auth})


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"next_in": 0}, "malformed"),
        ({"next_in": "5"}, "malformed"),
        ({"next_out": 2.0}, "malformed"),
        ({"next_out": True}, "malformed"),
        ({"next_in": 2**63}, "malformed"),
        ({"nonce": "short"}, "malformed"),
        ({"extra": 1}, "malformed"),
        ({"at": "yesterday"}, "malformed"),
        ({"line": "f" * 32}, "wrong_destination"),
    ],
)
def test_a_bad_sync_is_refused_and_changes_nothing(
    nodes: tuple[Node, Node], change: dict[str, Any], code: str
) -> None:
    a, b = nodes
    picked_up(a, b)
    before = b.snapshot()
    at = rfc3339(a.station.clock.now())
    payload = {"line": a.line_id(), "nonce": "n" * 16, "next_in": 99, "next_out": 1, "at": at, **change}
    r = _post_sync(a, b, payload)
    assert r.status_code in (400, 409, 422), r.text
    assert r.json()["code"] == code
    assert b.snapshot() == before


def test_a_sync_sent_again_is_a_replay(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    line = a.line()
    payload = {"line": line.id, "nonce": "n" * 16, "next_in": line.next_in_seq, "next_out": line.next_out_seq,
               "at": rfc3339(a.station.clock.now())}  # fmt: skip
    assert _post_sync(a, b, payload).status_code == 200
    before = b.snapshot()
    r = _post_sync(a, b, payload)
    assert r.json()["code"] == "replay"
    assert b.snapshot() == before


def test_an_answer_not_signed_by_the_peer_changes_nothing(nodes: tuple[Node, Node], monkeypatch: Any) -> None:
    """Only the peer's signature over our nonce moves our counters: an answer altered on
    the way (a later `next_in`, to make us skip numbers) is refused."""
    a, b = nodes
    picked_up(a, b)
    assert a.transport is not None
    real = a.transport.post

    def altered(peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        answer = real(peer, base_url, path, payload)
        return {**answer, "next_in": answer["next_in"] + 100} if path == SYNC_PATH else answer

    monkeypatch.setattr(a.transport, "post", altered)
    before = a.snapshot()
    with pytest.raises(Exception, match="signature"):
        resync.sync(a.station, a.transport, "moscow")
    assert a.snapshot() == before
