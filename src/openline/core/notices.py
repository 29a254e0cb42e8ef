"""Notices: what a notice is, how it moves through its life, and its form on the wire.

A notice announces an activity (`category`, free text) in one or more 4D volumes; the
other station must acknowledge it. States: `draft` (kept on our station only; it may be
`edited` in place, or `discarded`) → `sent` → `delivered` → `acknowledged` by a named
officer of the receiving side, or `rejected` with a reason; the sender may `withdraw` it, or `amend` it (a new
version; the old one is kept, in state `amended`); an active notice whose last volume has
ended is `expired`. A protected site leaves protection as the UN No-Strike List has it:
by a removal notice, which the other side acknowledges; the site is then `removed`.

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
PROTECTED = frozenset({"protected_site", "protected_movement"})  # what must not be struck
REMOVABLE = frozenset({"protected_site"})  # leaves protection by an acknowledged removal notice
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
    DISCARDED = "discarded"  # a draft thrown away; it never left the station
    REMOVED = "removed"  # a protected site whose removal notice was acknowledged


class Event(StrEnum):
    SEND = "send"
    DELIVER = "deliver"
    ACK = "acknowledge"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    AMEND = "amend"
    EXPIRE = "expire"
    DISCARD = "discard"
    EDIT = "edit"  # a draft's document replaced in place; it stays a draft
    REMOVE = "remove"


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
    (State.DRAFT, Event.DISCARD): State.DISCARDED,
    (State.DRAFT, Event.EDIT): State.DRAFT,
}
for _from in (State.SENT, State.DELIVERED, State.ACKNOWLEDGED, State.REJECTED):
    _NEXT[(_from, Event.AMEND)] = State.AMENDED
for _from in (State.SENT, State.DELIVERED, State.ACKNOWLEDGED):
    _NEXT[(_from, Event.WITHDRAW)] = State.WITHDRAWN
    _NEXT[(_from, Event.EXPIRE)] = State.EXPIRED
# A site that expired while its removal was pending is still removed, so that both
# stations end in one state whichever of them the timer reached first.
for _from in (State.SENT, State.DELIVERED, State.ACKNOWLEDGED, State.EXPIRED):
    _NEXT[(_from, Event.REMOVE)] = State.REMOVED
_BY = {
    Event.SEND: Party.SENDER,
    Event.DELIVER: Party.SENDER,  # the receiver's receipt, settled at the sender
    Event.ACK: Party.RECEIVER,
    Event.REJECT: Party.RECEIVER,
    Event.WITHDRAW: Party.SENDER,
    Event.AMEND: Party.SENDER,
    Event.DISCARD: Party.SENDER,
    Event.EDIT: Party.SENDER,
    # A site is removed by the receiver's acknowledgement of its removal notice.
    Event.REMOVE: Party.RECEIVER,
}
ACTIVE = frozenset({State.SENT, State.DELIVERED, State.ACKNOWLEDGED})  # checked for conflicts
AWAITING = frozenset({State.SENT, State.DELIVERED})  # waiting for the receiving side's answer


def apply(state: State, event: Event, by: Party) -> State:
    """The state after `event` caused by `by`, or IllegalTransition saying why not."""
    if event in _BY and _BY[event] is not by:
        raise IllegalTransition(f"only the {_BY[event].value} may {event.value} a notice")
    after = _NEXT.get((state, event))
    if after is None:
        raise IllegalTransition(f"cannot {event.value} a notice that is {state.value}")
    return after


def check_sender_change(event: Event, state: State, category: str, *, removal: bool) -> None:
    """What the sender may not do to its own notice, beyond the state machine; raises
    IllegalTransition saying what to do instead.

    A removal notice is answered, never withdrawn or amended (a withdrawal crossing the
    acknowledgement would leave the site removed on one station only). An acknowledged
    protected site is neither withdrawn nor amended: its protection ends only when the
    other side has acknowledged a removal notice (UN No-Strike List practice). A site never
    acknowledged may still be withdrawn or amended.
    """
    if removal and event in (Event.WITHDRAW, Event.AMEND):
        raise IllegalTransition(
            f"a removal notice cannot be {'withdrawn' if event is Event.WITHDRAW else 'amended'}: "
            "the peer acknowledges or rejects it"
        )
    if event in (Event.WITHDRAW, Event.AMEND) and category in REMOVABLE and state is State.ACKNOWLEDGED:
        # An amendment ends the old version as a withdrawal does, whatever the peer then
        # answers to the new one: a moved site is a removal and a new site.
        done = "withdrawn" if event is Event.WITHDRAW else "amended"
        raise IllegalTransition(
            f"an acknowledged protected site cannot be {done}: send a removal notice "
            '(a notice file {"category": "protected_site", "text": ..., "removes": "<its id>"})'
            + ("" if event is Event.WITHDRAW else " and the site as it is now in a new notice")
            + "; the site stays protected until the peer acknowledges the removal"
        )


def check_amendment(old_category: str, new_category: str) -> None:
    """An amendment is a new version of the same activity: it keeps its category (a
    protected site that became an exercise would leave protection without a removal).
    Raises IllegalTransition saying what to do instead."""
    if new_category != old_category:
        raise IllegalTransition(
            f"an amendment keeps the notice's category ({old_category}), got {new_category}: "
            "send a new notice for another kind of activity"
        )


def may_conflict(a: str | None, b: str | None) -> bool:
    """Whether notices of categories `a` and `b` are checked against each other. A conflict
    is between two activities, or an activity and what must not be struck; two protected
    notices (a hospital inside a protected district, a convoy route past a clinic, the same
    convoy notified to two parties) never conflict with each other. A category not given
    (an ASTM or GeoJSON file checked offline) is an activity."""
    return not (a in PROTECTED and b in PROTECTED)


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


def parse_removal(name: str, document: dict[str, Any]) -> tuple[str, str]:
    """A removal notice's `(text, removes)`: the document
    `{"category": "protected_site", "text": ..., "removes": "<site notice id>"}`, with no
    volumes (`extents` and `routes` absent or empty). Raises ValueError saying what is wrong."""
    removes, text = document.get("removes"), document.get("text")
    if not isinstance(removes, str) or not 1 <= len(removes) <= 64:
        raise ValueError(f"{name}: removes: expected the id of a protected site notice, got {removes!r:.80}")
    if document.get("category") not in REMOVABLE:
        raise ValueError(
            f"{name}: a removal notice has category {' or '.join(sorted(REMOVABLE))}, "
            f"got {document.get('category')!r:.40}"
        )
    if not isinstance(text, str):
        raise ValueError(f"{name}: text: expected a string, got {text!r:.40}")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name}: text must be at most {MAX_TEXT} characters, got {len(text)}")
    for field in ("extents", "routes"):
        if document.get(field) not in (None, []):
            raise ValueError(f"{name}: a removal notice carries no volumes: {field} must be empty or absent")
    return text, removes
