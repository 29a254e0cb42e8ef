"""A peer that moved: its handshake brings a card signed by the pinned keys, with another
address.

A station's handshake carries its card, and every station handshakes each open line when
it starts (`delivery.announce`), so a station restarted at a new address tells its peers
at once. The handshake request is signed but not fresh: a recording of an old one could
be replayed to send us back to an address the station has left. So the new address is
taken only once the station answers a handshake of ours *there*, signing our fresh nonce
with the pinned key: whoever holds that key is reachable at that address now. Until then
the pinned card stays, and the answer says why (`lines.initiate_handshake` logs it on the
moved station); an operator can always pin the new card by hand (`openline line update`).
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from sqlalchemy import select

from openline.adapters.schema import peers
from openline.adapters.transport import Transport
from openline.core.card import parse_card
from openline.errors import OpenLineError
from openline.services import lines
from openline.services.station import Station

log = structlog.get_logger("openline.moves")


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
    try:
        lines.initiate_handshake(station, transport, peer, propose=False, url=card.url)
    except OpenLineError as exc:
        log.warning("a peer's new address did not answer", peer=peer, url=card.url, error=str(exc)[:300])
        return f"kept {', '.join(old['urls'])}: no handshake answered by {peer} at {card.url} ({exc})"[:1000]
    with station.tx() as tx:
        now = _pinned(tx.conn, peer)
        if now != card.to_json():  # not pinned meanwhile by another handshake or by hand
            lines.repin(tx, card, now, actor="system", via="handshake")
    log.info("a peer moved", peer=peer, url=card.url, previous=old["urls"])
    return lines.CARD_PINNED
