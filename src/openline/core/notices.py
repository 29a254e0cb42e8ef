"""Notices: what a notice is, how it moves through its life, and its form on the wire.

A notice announces an activity (`category`, free text) in one or more 4D volumes; the
other station must acknowledge it. States: `draft` → `sent` → `delivered` →
`acknowledged` by a named officer of the receiving side, or `rejected` with a reason;
the sender may `withdraw` it, or `amend` it (a new version; the old one is kept, in
state `amended`); an active notice whose last volume has ended is `expired`.

Pure: the state machine, and each volume's ASTM F3548 Volume4D form (InterUSS field
names) as the notice body carries it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from openline.core.clock import rfc3339
from openline.core.volumes import Circle, Polygon, Volume
from openline.errors import IllegalTransition

CATEGORIES = (
    "air_operation",
    "fire_area",
    "maritime",
    "ground_movement",
    "protected_site",
    "protected_movement",
    "exercise",
)
OPEN_ENDED = frozenset({"protected_site"})  # may have volumes without an end
MAX_TEXT = 8000
MAX_VOLUMES = 200


class State(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    AMENDED = "amended"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class Event(StrEnum):
    SEND = "send"
    DELIVER = "deliver"
    ACK = "acknowledge"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    AMEND = "amend"
    EXPIRE = "expire"


class Party(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"


# (from, event) -> to; and who may cause each event.
_NEXT: dict[tuple[State, Event], State] = {
    (State.DRAFT, Event.SEND): State.SENT,
    (State.SENT, Event.DELIVER): State.DELIVERED,
    # The acknowledgement may be settled before the receipt of the notice itself.
    (State.SENT, Event.ACK): State.ACKNOWLEDGED,
    (State.DELIVERED, Event.ACK): State.ACKNOWLEDGED,
    (State.SENT, Event.REJECT): State.REJECTED,
    (State.DELIVERED, Event.REJECT): State.REJECTED,
}
for _from in (State.SENT, State.DELIVERED, State.ACKNOWLEDGED, State.REJECTED):
    _NEXT[(_from, Event.AMEND)] = State.AMENDED
for _from in (State.SENT, State.DELIVERED, State.ACKNOWLEDGED):
    _NEXT[(_from, Event.WITHDRAW)] = State.WITHDRAWN
    _NEXT[(_from, Event.EXPIRE)] = State.EXPIRED
_BY = {
    Event.SEND: Party.SENDER,
    Event.DELIVER: Party.SENDER,  # the receiver's receipt, settled at the sender
    Event.ACK: Party.RECEIVER,
    Event.REJECT: Party.RECEIVER,
    Event.WITHDRAW: Party.SENDER,
    Event.AMEND: Party.SENDER,
}
ACTIVE = frozenset({State.SENT, State.DELIVERED, State.ACKNOWLEDGED})  # checked for conflicts


def apply(state: State, event: Event, by: Party) -> State:
    """The state after `event` caused by `by`, or IllegalTransition saying why not."""
    if event in _BY and _BY[event] is not by:
        raise IllegalTransition(f"only the {_BY[event].value} may {event.value} a notice")
    after = _NEXT.get((state, event))
    if after is None:
        raise IllegalTransition(f"cannot {event.value} a notice that is {state.value}")
    return after


# The wire form --------------------------------------------------------------------------


def _altitude(metres: float) -> dict[str, Any]:
    return {"value": metres, "reference": "W84", "units": "M"}


def _time(micros: int) -> dict[str, Any]:
    return {"value": rfc3339(micros), "format": "RFC3339"}


def volume4d(v: Volume) -> dict[str, Any]:
    """A volume as ASTM F3548-21 Volume4D JSON with the InterUSS DSS field names; an
    open end is left out (ASTM's `time_end` is optional)."""
    volume: dict[str, Any] = {
        "altitude_lower": _altitude(v.alt_lower_m),
        "altitude_upper": _altitude(v.alt_upper_m),
    }
    if isinstance(v.outline, Circle):
        volume["outline_circle"] = {
            "center": {"lat": v.outline.lat, "lng": v.outline.lng},
            "radius": {"value": v.outline.radius_m, "units": "M"},
        }
    else:
        assert isinstance(v.outline, Polygon)
        volume["outline_polygon"] = {
            "vertices": [{"lat": lat, "lng": lng} for lat, lng in v.outline.vertices]
        }
    out: dict[str, Any] = {"volume": volume, "time_start": _time(v.start)}
    if v.end is not None:
        out["time_end"] = _time(v.end)
    return out
