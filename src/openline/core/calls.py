"""The call state machine, the same on both stations.

    placed ──deliver──▶ delivered ──ring──▶ ringing ──pickup──▶ picked_up ──close──▶ closed
       │                   │                  │ │ │                 │
       └──────cancel───────┴──────cancel──────┘ │ └─decline▶ declined  └─say (stays)
                                                └──miss──▶ missed

The callee's station is the authority on ringing, pick-up, decline and missed (it owns
the watch floor and the answer deadline); the caller alone may cancel; either side may
speak and close once the call is picked up. Each event names the party that caused it,
and an event from the wrong party is as illegal as one in the wrong state.

Events can reach the caller out of order across directions: the callee's `ring` can
arrive before the receipt that proves delivery. A `deliver` (or a repeated `ring`) for a
call that has moved on is therefore accepted and changes nothing.

Statements can also cross on the line: each side acts before hearing the other. The
caller cancels while the callee picks up, declines or rings out; both close at once.
Then the callee's station decides, as it decides everything about ringing, so that the
two stations end the same (`crossed`): the caller's station takes the callee's answer
(picked up, declined, missed; or closed, with the callee's time and summary), and the
callee's station ignores the caller's statement that came too late.
"""

from __future__ import annotations

from enum import StrEnum

from openline.errors import IllegalTransition


class State(StrEnum):
    PLACED = "placed"
    DELIVERED = "delivered"
    RINGING = "ringing"
    PICKED_UP = "picked_up"
    CLOSED = "closed"
    MISSED = "missed"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class Event(StrEnum):
    DELIVER = "deliver"
    RING = "ring"
    PICKUP = "pickup"
    SAY = "say"
    CLOSE = "close"
    MISS = "miss"
    DECLINE = "decline"
    CANCEL = "cancel"


class Party(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"


TERMINAL = frozenset({State.CLOSED, State.MISSED, State.DECLINED, State.CANCELLED})
# How a call ended, most telling first, for a log that holds more than one ending (the
# caller's station logs its cancel and then the callee's crossing answer, `crossed`):
# whether anyone answered, then the callee's answer before the caller's cancel.
OUTCOMES = (State.PICKED_UP, State.MISSED, State.DECLINED, State.CANCELLED)
PRIORITIES = ("flash", "immediate", "priority", "routine")

# (state, event) -> next state, for the party allowed to cause it.
_TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.PLACED, Event.DELIVER): State.DELIVERED,
    (State.PLACED, Event.RING): State.RINGING,
    (State.PLACED, Event.CANCEL): State.CANCELLED,
    (State.DELIVERED, Event.RING): State.RINGING,
    (State.DELIVERED, Event.CANCEL): State.CANCELLED,
    (State.RINGING, Event.PICKUP): State.PICKED_UP,
    (State.RINGING, Event.MISS): State.MISSED,
    (State.RINGING, Event.DECLINE): State.DECLINED,
    (State.RINGING, Event.CANCEL): State.CANCELLED,
    (State.PICKED_UP, Event.SAY): State.PICKED_UP,
    (State.PICKED_UP, Event.CLOSE): State.CLOSED,
}
_WHO: dict[Event, frozenset[Party]] = {
    Event.DELIVER: frozenset({Party.CALLER}),
    Event.RING: frozenset({Party.CALLEE}),
    Event.PICKUP: frozenset({Party.CALLEE}),
    Event.SAY: frozenset({Party.CALLER, Party.CALLEE}),
    Event.CLOSE: frozenset({Party.CALLER, Party.CALLEE}),
    Event.MISS: frozenset({Party.CALLEE}),
    Event.DECLINE: frozenset({Party.CALLEE}),
    Event.CANCEL: frozenset({Party.CALLER}),
}


def _is_stale(state: State, event: Event) -> bool:
    if event is Event.DELIVER:
        return state is not State.PLACED
    if event is Event.RING:
        return state not in (State.PLACED, State.DELIVERED)
    return False


def apply(state: State, event: Event, by: Party) -> State:
    """The state after `event` caused by `by`, or `IllegalTransition` with the reason."""
    if by not in _WHO[event]:
        raise IllegalTransition(f"the {by.value} may not {event.value} a call")
    nxt = _TRANSITIONS.get((state, event))
    if nxt is not None:
        return nxt
    if _is_stale(state, event):
        return state
    if state in TERMINAL:
        raise IllegalTransition(f"the call is already {state.value}; cannot {event.value} it")
    raise IllegalTransition(f"cannot {event.value} a call that is {state.value}")


# What the caller's station becomes when the callee's statement crosses its own.
_CROSSINGS: dict[tuple[State, Event], State] = {
    (State.CANCELLED, Event.PICKUP): State.PICKED_UP,
    (State.CANCELLED, Event.DECLINE): State.DECLINED,
    (State.CANCELLED, Event.MISS): State.MISSED,
    (State.CLOSED, Event.CLOSE): State.CLOSED,
}


def crossed(state: State, event: Event, by: Party) -> State | None:
    """The state a station takes when the peer's `event`, refused by `apply` in `state`,
    crossed a statement of its own on the line: the callee's answer (the callee decides),
    or None when the statement changes nothing here.

    Only for statements from the peer: a local action in a terminal state is refused."""
    if by is not Party.CALLEE:
        return None
    return _CROSSINGS.get((state, event))


# The callee's answer each state stands for: a call picked up (and maybe closed since),
# missed or declined, as the callee's station said.
_ANSWER_OF = {
    State.PICKED_UP: Event.PICKUP,
    State.CLOSED: Event.PICKUP,
    State.MISSED: Event.MISS,
    State.DECLINED: Event.DECLINE,
}


def contradicts(state: State, event: Event, by: Party) -> bool:
    """Whether the peer's `event`, refused by `apply` in `state`, gainsays an answer the
    same party gave before: the callee saying a call it picked up was missed, say. No
    crossing explains that; a station restored from a backup does (its timers act on
    what it holds), and the two stations then hold different states."""
    return by is Party.CALLEE and event in _ANSWER_OF.values() and _ANSWER_OF.get(state, event) is not event


def allowed(state: State, by: Party) -> list[Event]:
    """Events `by` may cause in `state` (for UIs: which buttons to show)."""
    return [e for (s, e), _ in _TRANSITIONS.items() if s is state and by in _WHO[e]]


def event_why(detail: object) -> str:
    """What explains an event of a call's log that the bare word would leave a puzzle, from
    its `detail`: a statement of ours the peer's crossed (`{"crossed": "cancelled"}`: our
    cancel, replaced by the callee's answer), a statement of the peer's that changed
    nothing here (`ignored`: its kind and why), an envelope the peer refused (its kind and
    code). Empty for any other event; the whole `detail` is in `--json` and the API."""
    if not isinstance(detail, dict):
        return ""
    if "crossed" in detail:
        ours = {"cancelled": "cancel", "closed": "close"}.get(str(detail["crossed"]), detail["crossed"])
        return f"crossed our {ours}: the callee's station decides"
    if "reason" in detail and "kind" in detail:
        return f"{detail['kind']}: {detail['reason']}"
    if "code" in detail and "kind" in detail:
        return f"{detail['kind']} refused: {detail['code']}"
    if isinstance(detail.get("why"), str):  # paging held or resumed: the line was suspended
        return str(detail["why"])
    return ""
