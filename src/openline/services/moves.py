"""A peer that moved: its handshake brings a card signed by the pinned keys, with another
address.

A station's handshake carries its card, and every station handshakes each open line when
it starts (`delivery.announce`), so a station restarted at a new address tells its peers
at once. The handshake request is signed but not fresh: a recording of an old one could
be replayed to send us back to an address the station has left. So the new address is
taken only once the station answers a handshake of ours *there*, signing our fresh nonce
with the pinned key: whoever holds that key is reachable at that address now. Until then
the pinned card stays, and the answer says so (`lines.initiate_handshake` logs it on the
moved station); an operator can always pin the new card by hand (`openline line update`).

The peer chooses the URL we send that handshake to, and the peer is a party we do not
trust: it could name addresses inside our network. So the answer does not say why the
handshake failed there (refused, timed out, some other server: that is logged here), and
after a failure we send none for that peer for `RETRY_AFTER_S`, whatever URL it names.

Each move taken this way raises `peer_moved` on the watch floor, once for each pair of
addresses: two copies of one station running at once (a restored station, and the old
machine come back) move the line back and forth, and only people can sort that out.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from sqlalchemy import select

from openline.adapters.schema import peers
from openline.adapters.transport import Transport
from openline.core.card import parse_card
from openline.core.clock import MICROS
from openline.errors import OpenLineError
from openline.services import alerts, lines
from openline.services.station import Station

log = structlog.get_logger("openline.moves")
# The watch floor is told of every move taken from a handshake: a station that did not
# move, but whose old machine came back to life beside the restored one, shows as a peer
# moving back and forth between two addresses (both hold its keys; nothing else tells
# them apart).
PEER_MOVED = "peer_moved"
RETRY_AFTER_S = 60  # kept in memory (`Station.probe_failed_at`): a restart allows one more


def _pinned(conn: Any, peer: str) -> dict[str, Any]:
    return dict(json.loads(conn.execute(select(peers.c.card).where(peers.c.name == peer)).one().card))


def follow(station: Station, transport: Transport, peer: str, card_json: Any) -> str:
    """After a handshake from `peer` that carried `card_json` (same keys as pinned, checked
    by `lines.answer_handshake`): pin it if it differs and the peer answers at its new
    address. Returns `lines.CARD_PINNED`, or why the pinned card is kept."""
    card = parse_card(card_json)
    with station.db.read() as conn:
        old = _pinned(conn, peer)
    if card.to_json() == old:
        return lines.CARD_PINNED
    kept = f"kept {', '.join(old['urls'])}: no handshake answered by {peer} at {card.url}"[:1000]
    at, failed = station.clock.now(), station.probe_failed_at.get(peer)
    if failed is not None and at < failed + RETRY_AFTER_S * MICROS:
        return f"{kept} (not tried again within {RETRY_AFTER_S} s of the last failure)"[:1000]
    try:
        lines.initiate_handshake(station, transport, peer, propose=False, url=card.url)
    except OpenLineError as exc:
        station.probe_failed_at[peer] = at
        log.warning("a peer's new address did not answer", peer=peer, url=card.url, error=str(exc)[:300])
        return kept
    station.probe_failed_at.pop(peer, None)
    with station.tx() as tx:
        now = _pinned(tx.conn, peer)
        if now != card.to_json():  # not pinned meanwhile by another handshake or by hand
            lines.repin(tx, card, now, actor="system", via="handshake")
            if card.urls != tuple(now["urls"]):
                detail = {"peer": peer, "url": card.url, "previous": now["urls"]}
                alerts.raise_alert(tx, PEER_MOVED, f"{peer} {now['urls'][0]} -> {card.url}", detail)
    log.warning("a peer moved", peer=peer, url=card.url, previous=old["urls"])
    return lines.CARD_PINNED
