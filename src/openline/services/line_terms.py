"""New terms for a line already added: proposed on each side, adopted by both at once.

A line's terms (answer deadline, notice deadline, separation margins) are agreed out of
band and set on both stations when the line is added; the handshake refuses terms that
differ. To change them later, each station's administrator proposes the new terms
(`openline line terms PEER ...`). The proposal is kept, and sent in a handshake: the peer
adopts it if it has proposed the same terms, and answers with its signature over them,
on which we adopt them too. Until both have proposed alike, the line keeps its terms
and works as before. Proposing the terms the line already has withdraws a proposal.

Each change is in the ledger: `line.terms_proposed` (or `line.terms_withdrawn`) on the
proposing station, then `line.terms` (the new terms and the previous ones) on both.
The new terms apply from then on, on each station: to notices sent or received
afterwards, and to calls that start to ring afterwards (the callee's station decides a
call's deadline as it starts ringing there). New margins check the line's active notices
again (`notice_conflicts.recheck_line`), so that both stations hold the conflicts those
margins find. What was decided before stays as decided.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from openline.adapters.schema import lines
from openline.adapters.transport import Transport
from openline.errors import Conflict, InvalidInput, OpenLineError
from openline.services import accounts, ledger
from openline.services.lines import (
    Terms,
    check_answer_deadline,
    handshake_error,
    initiate_handshake,
    line_for_peer,
    lock_line,
    proposal_of,
    terms_of,
)
from openline.services.station import Station

# What may be proposed: each term and its column. A term left out keeps its value.
TERM_NAMES = (
    "answer_deadline_s",
    "notice_deadline_s",
    "margin_horizontal_m",
    "margin_vertical_m",
    "margin_minutes",
)


def _proposed(line: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """The line's terms with `changes`, checked, as the handshake carries terms."""
    unknown = set(changes) - set(TERM_NAMES)
    if unknown:
        raise InvalidInput(f"no line term {sorted(unknown)[0]!r}; the terms are {', '.join(TERM_NAMES)}")
    current = {name: getattr(line, name) for name in TERM_NAMES}
    values = {**current, **{k: v for k, v in changes.items() if v is not None}}
    check_answer_deadline(int(values["answer_deadline_s"]))
    terms = Terms(
        int(values["notice_deadline_s"]),
        float(values["margin_horizontal_m"]),
        float(values["margin_vertical_m"]),
        int(values["margin_minutes"]),
    )
    terms.check()
    return {
        "answer_deadline_s": int(values["answer_deadline_s"]),
        "notice_deadline_s": terms.notice_deadline_s,
        "margins": {
            "horizontal_m": terms.margin_horizontal_m,
            "vertical_m": terms.margin_vertical_m,
            "minutes": terms.margin_minutes,
        },
    }


@dataclass(frozen=True)
class Proposed:
    """What came of a proposal: `adopted` by both stations, `withdrawn` (the line's own
    terms proposed), or `waiting`, with why not yet (`why`: the peer has not proposed
    the same terms, or was not reached)."""

    outcome: str
    why: str | None = None


def propose(
    station: Station, transport: Transport, peer: str, changes: dict[str, Any], *, actor: str
) -> Proposed:
    """Propose new terms for the line with `peer` (`changes`: terms by name; the others
    keep their values), then try the handshake that adopts them."""
    with station.tx() as tx:
        line = line_for_peer(tx.conn, peer)
        lock_line(tx.conn, line.id)
        proposed = _proposed(line, changes)
        facts = {"line": line.id, "peer": peer, "actor": actor}
        if proposed == terms_of(line):
            if proposal_of(line) is None:
                raise Conflict(f"the line with {peer!r} has these terms already; nothing changed")
            tx.conn.execute(
                update(lines).where(lines.c.id == line.id).values(proposed_terms=None, proposed_at=None)
            )
            accounts.record(tx.conn, tx.now, actor, "line.terms.withdraw", peer)
            ledger.append(tx, "line.terms_withdrawn", tx.now, facts)
            return Proposed("withdrawn")
        tx.conn.execute(
            update(lines)
            .where(lines.c.id == line.id)
            .values(proposed_terms=json.dumps(proposed, separators=(",", ":")), proposed_at=tx.now)
        )
        accounts.record(tx.conn, tx.now, actor, "line.terms.propose", f"{peer}: {json.dumps(proposed)}")
        ledger.append(tx, "line.terms_proposed", tx.now, {**facts, "terms": proposed})
    try:
        initiate_handshake(station, transport, peer)
    except OpenLineError as exc:
        return Proposed("waiting", handshake_error(exc))
    return Proposed("adopted")
