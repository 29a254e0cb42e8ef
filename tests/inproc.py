"""Two stations in one process, on one injected clock, with no background threads.

Each station has its real database (SQLite file or PostgreSQL) and its real FastAPI app;
requests between them go through httpx to the peer's app in process (Starlette's
TestClient), signed exactly as on the network. Tests drive the deliverer and the timers
step by step (`deliver`, `expire`), so time only moves when the test says so.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from openline.adapters.home import read_token, write_secret
from openline.adapters.schema import lines, metadata
from openline.adapters.transport import HttpTransport, TextAnswer, Transport
from openline.api.app import create_app
from openline.core.clock import FakeClock
from openline.errors import PeerUnreachable
from openline.runtime import build_station, default_transport
from openline.services import calls, delivery, ledger, witness
from openline.services.setup import init_home
from openline.services.station import Station
from openline.settings import SETTINGS_FILE, load, render_toml


@dataclass
class Switchable:
    """A transport that can be cut, as a peer that is down or a cable that is unplugged."""

    inner: Transport
    down: bool = False
    attempts: int = 0

    def post(self, peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        self.attempts += 1
        if self.down:
            raise PeerUnreachable(f"{peer} at {base_url}: connection refused (test: line down)")
        return self.inner.post(peer, base_url, path, payload)

    def post_text(self, peer: str, base_url: str, path: str, body: str) -> TextAnswer:
        self.attempts += 1
        if self.down:
            raise PeerUnreachable(f"{peer} at {base_url}: connection refused (test: line down)")
        return self.inner.post_text(peer, base_url, path, body)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Deferred:
    """A station's own `HttpTransport`, made on first use. `link` replaces it before any
    request of most tests needs it, and making one costs a TLS context (~17 ms)."""

    station: Station
    _inner: Transport | None = None

    def _transport(self) -> Transport:
        if self._inner is None:
            self._inner = default_transport(self.station)
        return self._inner

    def post(self, peer: str, base_url: str, path: str, payload: dict[str, Any]) -> Any:
        return self._transport().post(peer, base_url, path, payload)

    def post_text(self, peer: str, base_url: str, path: str, body: str) -> TextAnswer:
        return self._transport().post_text(peer, base_url, path, body)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


@dataclass
class Node:
    name: str
    home: Path
    station: Station
    app: FastAPI
    api: TestClient
    transport: Switchable | None = None
    peer_http: TestClient | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def line_id(self) -> str:
        with self.station.db.read() as conn:
            return str(conn.execute(select(lines.c.id)).scalar_one())

    def line(self) -> Any:
        with self.station.db.read() as conn:
            return conn.execute(select(lines)).one()

    def deliver(self, *, force: bool = False) -> delivery.Outcome:
        assert self.transport is not None
        return delivery.deliver_once(self.station, self.transport, self.line_id(), force=force)

    def drain(self, limit: int = 100) -> None:
        for _ in range(limit):
            if self.deliver() is delivery.Outcome.IDLE:
                return
        raise AssertionError(f"{self.name}: outbox did not drain in {limit} steps")

    def expire(self) -> int:
        return calls.expire_due(self.station)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table: to show that a refusal changed nothing."""
        with self.station.db.read() as conn:
            return {
                t.name: sorted((tuple(r) for r in conn.execute(select(t)).all()), key=repr)
                for t in metadata.sorted_tables
            }


def make_node(root: Path, name: str, clock: FakeClock, database_url: str | None) -> Node:
    home = root / name
    init_home(home, name, f"http://{name}.test:8000", database_url=database_url, clock=clock)
    return open_node(home, name, clock)


def open_node(home: Path, name: str, clock: FakeClock) -> Node:
    """The station at `home`, as `openline serve` opens it, with an API client."""
    station = build_station(load(home), clock=clock)
    app = create_app(station, transport=Deferred(station), workers=False)
    api = TestClient(app, headers={"Authorization": f"Bearer {read_token(home)}"})
    return Node(name, home, station, app, api)


def linked_pair(
    root: Path, clock: FakeClock, database_url: str | None = None, second_database_url: str | None = None
) -> tuple[Node, Node]:
    """stuttgart and moscow in process under `root`, line active, on one fake clock."""
    a = make_node(root, "stuttgart", clock, database_url)
    b = make_node(root, "moscow", clock, second_database_url)
    link(a, b)
    return a, b


def wire(a: Node, b: Node) -> None:
    """Wire a's requests to b's app and back."""
    a.peer_http, b.peer_http = TestClient(b.app), TestClient(a.app)
    a.transport = Switchable(HttpTransport(a.station.keys, a.name, client=a.peer_http))
    b.transport = Switchable(HttpTransport(b.station.keys, b.name, client=b.peer_http))
    a.app.state.transport, b.app.state.transport = a.transport, b.transport


def link(a: Node, b: Node) -> None:
    """Wire a's requests to b's app and back, pin both cards, run the handshake."""
    wire(a, b)
    for x, y in ((a, b), (b, a)):
        r = x.api.post("/api/v1/lines", json={"card": y.station.card.to_json()})
        assert r.status_code == 201, r.text
    assert a.line().state == "active"
    assert b.line().state == "active"


@dataclass(frozen=True)
class PairImage:
    """A linked pair's two homes, file by file, as the real `init_home` and `link` left
    them at the start of a `FakeClock`, for `copied_pair` to copy: every test of the suite
    starts from such a pair, and making one costs two inits and three requests.
    `databases`: on PostgreSQL, each station's database, which copies are made of."""

    files: dict[str, dict[str, bytes]]
    databases: dict[str, str] | None = None
    start: int = field(default_factory=lambda: FakeClock().now())


def pair_image(root: Path, database_urls: tuple[str, str] | None = None) -> PairImage:
    """Make a linked pair under `root` (on the databases of `database_urls`, else SQLite)
    and keep its image; the pair is closed."""
    clock = FakeClock()
    a, b = linked_pair(root, clock, *(database_urls or (None, None)))
    for n in (a, b):
        n.station.db.dispose()  # a SQLite file whole (no WAL beside it); a database copyable
    files = {n.name: {p.name: p.read_bytes() for p in n.home.iterdir()} for n in (a, b)}
    databases = None
    if database_urls is not None:
        databases = {n.name: url.rsplit("/", 1)[1] for n, url in zip((a, b), database_urls, strict=True)}
    return PairImage(files, databases, clock.now())


def copied_pair(
    root: Path, clock: FakeClock, image: PairImage, database_urls: dict[str, str] | None = None
) -> tuple[Node, Node]:
    """stuttgart and moscow under `root` as `linked_pair` makes them, copied from `image`
    (on PostgreSQL, `database_urls` are copies of its databases)."""
    assert clock.now() == image.start, "a copied pair starts where its image was made"
    assert (database_urls is None) == (image.databases is None)
    made = []
    for name, files in image.files.items():
        home = root / name
        home.mkdir(mode=0o700, parents=True)
        for file, data in files.items():
            if file == SETTINGS_FILE and database_urls is not None:
                settings = tomllib.loads(data.decode())
                data = render_toml({**settings, "database_url": database_urls[name]}).encode()
            write_secret(home / file, data)
        made.append(open_node(home, name, clock))
    a, b = made
    wire(a, b)
    return a, b


def place_and_ring(a: Node, b: Node, subject: str = "Test call", priority: str = "routine") -> str:
    r = a.api.post("/api/v1/calls", json={"peer": b.name, "subject": subject, "priority": priority})
    assert r.status_code == 201, r.text
    call_id = str(r.json()["id"])
    a.drain()
    b.drain()
    return call_id


def picked_up(a: Node, b: Node, subject: str = "Test call") -> str:
    """A call from a to b, ringing, then picked up at b, and a told so."""
    call_id = place_and_ring(a, b, subject)
    r = b.api.post(f"/api/v1/calls/{call_id}/pickup")
    assert r.status_code == 200, r.text
    b.drain()
    return call_id


def send_unsettled(node: Node, **kwargs: Any) -> delivery.Answer:
    """Claim the node's next batch and send it, leaving the peer's answer unsettled (what
    the deliverer's pipelining does while it claims the next one). `kwargs` go to the
    claim (`settling=`)."""
    assert node.transport is not None
    claimed = delivery._claim(node.station, node.transport, node.line_id(), **kwargs)
    assert isinstance(claimed, delivery.Claimed), claimed
    step = delivery._post(node.transport, claimed, node.station.clock)
    assert isinstance(step, delivery.Answer), step
    return step


def show(node: Node, call_id: str) -> dict[str, Any]:
    r = node.api.get(f"/api/v1/calls/{call_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def wire_of(node: Node, envelope_id: str) -> dict[str, Any]:
    from openline.adapters.schema import envelopes

    with node.station.db.read() as conn:
        row = conn.execute(select(envelopes.c.wire).where(envelopes.c.id == envelope_id)).one()
    return dict(json.loads(row.wire))


def migrate_to(node: Node, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the node's database to `revision`, in one transaction as
    `openline` migrates."""
    from alembic import command

    from openline.adapters.migrate import _config

    cfg = _config()
    with node.station.db.write() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def settle_ledgers(*nodes: Node) -> None:
    """Integrate, sign and cosign on every node until nothing changes (what each
    station's ledger worker does in `openline serve`)."""
    for _ in range(3):
        for n in nodes:
            ledger.integrate(n.station)
            ledger.sign_checkpoint(n.station)
        for n in nodes:
            assert n.transport is not None
            for peer in witness.due_peers(n.station):
                witness.push(n.station, n.transport, peer)


STAFF_PASSWORD = "correct horse battery staple"


def add_staff(node: Node, password: str = STAFF_PASSWORD) -> None:
    """A watch floor to escalate to: `duty` (a watch officer), `senior` (a senior watch
    officer) and `boss` (a commander), besides the administrator `admin`."""
    from openline.services import accounts
    from openline.services.accounts import Role

    with node.station.tx() as tx:
        for name, role in (
            ("duty", Role.WATCH_OFFICER),
            ("senior", Role.SENIOR_WATCH_OFFICER),
            ("boss", Role.COMMANDER),
        ):
            accounts.create_user(tx.conn, tx.now, name, role, password)


def put_on_duty(node: Node, user: str, clock: FakeClock, *, days: int = 2) -> None:
    """An override that puts `user` on duty from an hour ago for `days` days."""
    from openline.core.clock import MICROS, rfc3339

    now = clock.now()
    r = node.api.post(
        "/api/v1/overrides",
        json={
            "user": user,
            "start": rfc3339(now - 3600 * MICROS),
            "end": rfc3339(now + days * 86_400 * MICROS),
        },
    )
    assert r.status_code == 201, r.text
