"""The call state machine (openline.core.calls) against a table written out here by hand.

The expected behaviour is stated twice, independently of the module's own tables: once as
a grid of (state x event) outcomes and once as who may cause each event. Every test
compares `apply` with those two statements.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from openline.core.calls import TERMINAL, Event, Party, State, allowed, apply, crossed
from openline.errors import Code, Conflict, IllegalTransition

# The state machine as the design describes it. Columns are events, rows are states.
#   a state name  the event moves the call there (say keeps picked_up)
#   =             a stale no-op: accepted, the state does not change
#   -             illegal in this state
_GRID = """
            deliver    ring       pickup     say        close      miss       decline    cancel
placed      delivered  ringing    -          -          -          -          -          cancelled
delivered   =          ringing    -          -          -          -          -          cancelled
ringing     =          =          picked_up  -          -          missed     declined   cancelled
picked_up   =          =          -          picked_up  closed     -          -          -
closed      =          =          -          -          -          -          -          -
missed      =          =          -          -          -          -          -          -
declined    =          =          -          -          -          -          -          -
cancelled   =          =          -          -          -          -          -          -
"""

_STALE = "="
_ILLEGAL = "-"

# Who may cause each event, from the design: the callee owns ringing, pick-up, decline and
# missed; the caller alone delivers and cancels; either side speaks and closes.
_WHO: dict[Event, set[Party]] = {
    Event.DELIVER: {Party.CALLER},
    Event.CANCEL: {Party.CALLER},
    Event.RING: {Party.CALLEE},
    Event.PICKUP: {Party.CALLEE},
    Event.MISS: {Party.CALLEE},
    Event.DECLINE: {Party.CALLEE},
    Event.SAY: {Party.CALLER, Party.CALLEE},
    Event.CLOSE: {Party.CALLER, Party.CALLEE},
}

_TERMINAL = {State.CLOSED, State.MISSED, State.DECLINED, State.CANCELLED}


def _parse_grid(text: str) -> dict[tuple[State, Event], str]:
    rows = [line.split() for line in text.strip().splitlines()]
    events = [Event(name) for name in rows[0]]
    table: dict[tuple[State, Event], str] = {}
    for row in rows[1:]:
        state = State(row[0])
        assert len(row) == len(events) + 1, f"grid row for {state} has {len(row) - 1} cells"
        for event, cell in zip(events, row[1:], strict=True):
            table[state, event] = cell
    return table


_TABLE = _parse_grid(_GRID)


def _expected(state: State, event: Event, by: Party) -> State | None:
    """The state the design says `apply` returns, or None when it must refuse."""
    if by not in _WHO[event]:
        return None
    cell = _TABLE[state, event]
    if cell == _ILLEGAL:
        return None
    if cell == _STALE:
        return state
    return State(cell)


def _try(state: State, event: Event, by: Party) -> State | None:
    try:
        return apply(state, event, by)
    except IllegalTransition:
        return None


_TRIPLES = list(itertools.product(State, Event, Party))


def test_transition_grid_is_complete() -> None:
    assert set(_TABLE) == set(itertools.product(State, Event))
    assert set(_WHO) == set(Event)


@pytest.mark.parametrize(("state", "event", "by"), _TRIPLES, ids=str)
def test_apply_matches_the_transition_table(state: State, event: Event, by: Party) -> None:
    want = _expected(state, event, by)
    if want is None:
        with pytest.raises(IllegalTransition) as info:
            apply(state, event, by)
        assert info.value.code is Code.ILLEGAL_TRANSITION
    else:
        got = apply(state, event, by)
        assert got is want


def test_apply_terminal_set_is_the_designs() -> None:
    assert set(TERMINAL) == _TERMINAL


@pytest.mark.parametrize(
    ("event", "by"),
    [(e, p) for e in Event for p in Party if p not in _WHO[e]],
    ids=str,
)
def test_apply_wrong_party_is_refused_in_every_state(event: Event, by: Party) -> None:
    for state in State:
        with pytest.raises(IllegalTransition, match=f"the {by.value} may not {event.value} a call"):
            apply(state, event, by)


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        (State.DELIVERED, Event.RING, State.RINGING),
        (State.RINGING, Event.PICKUP, State.PICKED_UP),
        (State.RINGING, Event.DECLINE, State.DECLINED),
        (State.RINGING, Event.MISS, State.MISSED),
    ],
)
def test_apply_only_callee_rings_and_answers(state: State, event: Event, after: State) -> None:
    with pytest.raises(IllegalTransition, match="caller may not"):
        apply(state, event, Party.CALLER)
    assert apply(state, event, Party.CALLEE) is after


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        (State.PLACED, Event.DELIVER, State.DELIVERED),
        (State.PLACED, Event.CANCEL, State.CANCELLED),
        (State.DELIVERED, Event.CANCEL, State.CANCELLED),
        (State.RINGING, Event.CANCEL, State.CANCELLED),
    ],
)
def test_apply_only_caller_delivers_and_cancels(state: State, event: Event, after: State) -> None:
    with pytest.raises(IllegalTransition, match="callee may not"):
        apply(state, event, Party.CALLEE)
    assert apply(state, event, Party.CALLER) is after


@pytest.mark.parametrize("by", list(Party))
def test_apply_say_keeps_picked_up_and_nothing_else(by: Party) -> None:
    assert apply(State.PICKED_UP, Event.SAY, by) is State.PICKED_UP
    for state in set(State) - {State.PICKED_UP}:
        with pytest.raises(IllegalTransition, match="cannot say"):
            apply(state, Event.SAY, by)


@pytest.mark.parametrize("state", sorted(_TERMINAL))
def test_apply_terminal_refusal_names_the_state(state: State) -> None:
    with pytest.raises(IllegalTransition, match=f"already {state.value}; cannot close it"):
        apply(state, Event.CLOSE, Party.CALLER)


def test_apply_illegal_transition_is_a_409_conflict() -> None:
    with pytest.raises(Conflict) as info:
        apply(State.PLACED, Event.PICKUP, Party.CALLEE)
    assert info.value.status == 409
    assert "cannot pickup a call that is placed" in str(info.value)


@pytest.mark.parametrize(("state", "by"), list(itertools.product(State, Party)), ids=str)
def test_allowed_lists_exactly_the_real_transitions(state: State, by: Party) -> None:
    want = {event for event in Event if by in _WHO[event] and _TABLE[state, event] not in (_STALE, _ILLEGAL)}
    got = allowed(state, by)
    assert set(got) == want
    assert len(got) == len(set(got))
    for event in got:
        apply(state, event, by)  # never raises


@pytest.mark.parametrize("state", sorted(_TERMINAL))
def test_allowed_is_empty_once_terminal(state: State) -> None:
    assert allowed(state, Party.CALLER) == []
    assert allowed(state, Party.CALLEE) == []


def test_apply_every_state_is_reachable_from_placed() -> None:
    seen = {State.PLACED}
    frontier = [State.PLACED]
    while frontier:
        state = frontier.pop()
        for event, by in itertools.product(Event, Party):
            nxt = _try(state, event, by)
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(State)


def test_apply_never_returns_to_placed() -> None:
    for state, event, by in _TRIPLES:
        if state is not State.PLACED:
            assert _try(state, event, by) is not State.PLACED


# Properties over random event sequences --------------------------------------------------

_steps = st.lists(st.tuples(st.sampled_from(Event), st.sampled_from(Party)), max_size=40)


@given(_steps)
def test_apply_random_sequences_stay_in_the_machine(steps: list[tuple[Event, Party]]) -> None:
    state = State.PLACED
    terminal_at: State | None = None
    for event, by in steps:
        want = _expected(state, event, by)
        try:
            nxt = apply(state, event, by)
        except IllegalTransition:
            assert want is None, f"{event} by {by} in {state} was refused"
            continue
        assert isinstance(nxt, State)
        assert nxt is want
        if terminal_at is not None:
            # A terminal call changes no more; only stale no-ops are accepted.
            assert nxt is terminal_at
            assert event in (Event.DELIVER, Event.RING)
        if nxt in _TERMINAL:
            terminal_at = nxt
        state = nxt


def _legal_path(draws: list[tuple[Event, Party]], *, skip: Event | None = None) -> list[tuple[Event, Party]]:
    """The legal, state-changing steps among `draws`, applied from placed."""
    state, path = State.PLACED, []
    for event, by in draws:
        if event is skip:
            continue
        nxt = _try(state, event, by)
        if nxt is not None and (nxt is not state or event is Event.SAY):
            path.append((event, by))
            state = nxt
    return path


def _run(path: list[tuple[Event, Party]]) -> State:
    state = State.PLACED
    for event, by in path:
        state = apply(state, event, by)
    return state


@given(_steps.filter(bool), st.integers(min_value=0))
def test_apply_late_delivery_receipt_changes_nothing(draws: list[tuple[Event, Party]], where: int) -> None:
    """The callee's ring can overtake the receipt: deliver anywhere in a call ends the same."""
    path = _legal_path(draws, skip=Event.DELIVER)
    if not path:
        return
    at = where % (len(path) + 1)
    late = [*path[:at], (Event.DELIVER, Party.CALLER), *path[at:]]
    assert _run(late) is _run(path)


@given(_steps, st.integers(min_value=0))
def test_apply_repeated_ring_changes_nothing(draws: list[tuple[Event, Party]], where: int) -> None:
    path = _legal_path(draws)
    rings = [i for i, (event, _) in enumerate(path) if event is Event.RING]
    if not rings:
        return
    at = rings[0] + 1 + where % (len(path) - rings[0])
    again = [*path[:at], (Event.RING, Party.CALLEE), *path[at:]]
    assert _run(again) is _run(path)


class CallMachine(RuleBasedStateMachine):
    """Drive one call with random events; the model is the grid above."""

    def __init__(self) -> None:
        super().__init__()
        self.state = State.PLACED
        self.history: list[State] = [State.PLACED]

    @rule(event=st.sampled_from(Event), by=st.sampled_from(Party))
    def step(self, event: Event, by: Party) -> None:
        want = _expected(self.state, event, by)
        if want is None:
            with pytest.raises(IllegalTransition):
                apply(self.state, event, by)
            return
        self.state = apply(self.state, event, by)
        assert self.state is want
        self.history.append(self.state)

    @invariant()
    def state_is_a_state(self) -> None:
        assert self.state in set(State)

    @invariant()
    def terminal_is_final(self) -> None:
        ends = [i for i, s in enumerate(self.history) if s in _TERMINAL]
        if ends:
            assert set(self.history[ends[0] :]) == {self.history[ends[0]]}

    @invariant()
    def history_follows_the_diagram(self) -> None:
        order = [State.PLACED, State.DELIVERED, State.RINGING, State.PICKED_UP]
        live = [s for s in self.history if s in order]
        assert live == sorted(live, key=order.index)


CallMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30)
test_apply_against_model_machine = CallMachine.TestCase


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        (State.CANCELLED, Event.PICKUP, State.PICKED_UP),
        (State.CANCELLED, Event.DECLINE, State.DECLINED),
        (State.CANCELLED, Event.MISS, State.MISSED),
        (State.CLOSED, Event.CLOSE, State.CLOSED),
    ],
)
def test_crossed_takes_the_callees_answer(state: State, event: Event, after: State) -> None:
    with pytest.raises(IllegalTransition):
        apply(state, event, Party.CALLEE)  # refused as a transition ...
    assert crossed(state, event, Party.CALLEE) is after  # ... taken as a crossing


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(Event))
def test_crossed_never_takes_the_callers_statement(state: State, event: Event) -> None:
    """The callee's station ignores the caller's late cancel or close: it decides."""
    assert crossed(state, event, Party.CALLER) is None


def test_crossed_only_where_apply_refuses() -> None:
    for state in State:
        for event in Event:
            if crossed(state, event, Party.CALLEE) is not None:
                with pytest.raises(IllegalTransition):
                    apply(state, event, Party.CALLEE)


@pytest.mark.parametrize(
    ("state", "event", "by", "gainsays"),
    [
        (State.PICKED_UP, Event.MISS, Party.CALLEE, True),  # it picked up, and says missed
        (State.CLOSED, Event.DECLINE, Party.CALLEE, True),
        (State.MISSED, Event.PICKUP, Party.CALLEE, True),
        (State.PICKED_UP, Event.PICKUP, Party.CALLEE, False),  # the same answer again
        (State.PICKED_UP, Event.CANCEL, Party.CALLER, False),  # a crossing: the caller's late cancel
        (State.CLOSED, Event.CLOSE, Party.CALLEE, False),  # both closed at once
        (State.CANCELLED, Event.MISS, Party.CALLEE, False),  # a crossing the callee decides
    ],
)
def test_only_a_callee_gainsaying_its_own_answer_contradicts(
    state: State, event: Event, by: Party, gainsays: bool
) -> None:
    from openline.core.calls import contradicts

    assert contradicts(state, event, by) is gainsays
