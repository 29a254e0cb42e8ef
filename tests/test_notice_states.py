"""The notice state machine's new transitions (drafts discarded, sites removed), the
sender's own limits, and the removal document: pure, no station."""

from __future__ import annotations

from typing import Any

import pytest

from openline.core import notices as nm
from openline.core.notices import Event, Party, State
from openline.errors import IllegalTransition


def test_a_draft_is_sent_or_discarded_by_its_sender_only() -> None:
    assert nm.apply(State.DRAFT, Event.SEND, Party.SENDER) is State.SENT
    assert nm.apply(State.DRAFT, Event.DISCARD, Party.SENDER) is State.DISCARDED
    with pytest.raises(IllegalTransition, match="only the sender may discard"):
        nm.apply(State.DRAFT, Event.DISCARD, Party.RECEIVER)
    for state in State:
        if state is not State.DRAFT:
            with pytest.raises(IllegalTransition, match=f"cannot discard a notice that is {state.value}"):
                nm.apply(state, Event.DISCARD, Party.SENDER)
    for event in (Event.WITHDRAW, Event.ACK, Event.EXPIRE, Event.REMOVE, Event.AMEND):
        with pytest.raises(IllegalTransition):
            nm.apply(State.DRAFT, event, Party.SENDER if event is not Event.ACK else Party.RECEIVER)


@pytest.mark.parametrize("state", list(State))
def test_a_site_is_removed_from_any_active_or_expired_state(state: State) -> None:
    if state in nm.ACTIVE or state is State.EXPIRED:
        assert nm.apply(state, Event.REMOVE, Party.RECEIVER) is State.REMOVED
    else:
        with pytest.raises(IllegalTransition, match=f"cannot remove a notice that is {state.value}"):
            nm.apply(state, Event.REMOVE, Party.RECEIVER)
    with pytest.raises(IllegalTransition, match="only the receiver may remove"):
        nm.apply(state, Event.REMOVE, Party.SENDER)


def test_the_sender_may_not_withdraw_or_amend_an_acknowledged_site_nor_change_a_removal() -> None:
    for event, word in ((Event.WITHDRAW, "withdrawn"), (Event.AMEND, "amended")):
        with pytest.raises(IllegalTransition, match=f"site cannot be {word}: send a removal notice"):
            nm.check_sender_change(event, State.ACKNOWLEDGED, "protected_site", removal=False)
        for state in (State.SENT, State.DELIVERED, State.REJECTED):  # never acknowledged
            nm.check_sender_change(event, state, "protected_site", removal=False)
        nm.check_sender_change(event, State.ACKNOWLEDGED, "air_operation", removal=False)
    for event, word in ((Event.WITHDRAW, "withdrawn"), (Event.AMEND, "amended")):
        with pytest.raises(IllegalTransition, match=f"a removal notice cannot be {word}"):
            nm.check_sender_change(event, State.SENT, "protected_site", removal=True)


def test_an_amendment_keeps_its_category() -> None:
    nm.check_amendment("protected_site", "protected_site")
    with pytest.raises(
        IllegalTransition, match=r"keeps the notice's category \(protected_site\), got exercise"
    ):
        nm.check_amendment("protected_site", "exercise")
    with pytest.raises(IllegalTransition, match="got protected_site"):
        nm.check_amendment("air_operation", "protected_site")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"removes": 5}, "removes: expected the id"),
        ({"removes": ""}, "removes: expected the id"),
        ({"removes": "x" * 65}, "removes: expected the id"),
        ({"category": "air_operation"}, "a removal notice has category protected_site, got 'air_operation'"),
        ({"text": None}, "text: expected a string"),
        ({"text": "x" * (nm.MAX_TEXT + 1)}, "text must be at most"),
        ({"extents": [{}]}, "extents must be empty or absent"),
        ({"routes": "none"}, "routes must be empty or absent"),
    ],
)
def test_a_bad_removal_document_says_what_is_wrong(document: dict[str, Any], message: str) -> None:
    good = {"category": "protected_site", "text": "closed", "removes": "01a2-site"}
    assert nm.parse_removal("r.json", good | {"extents": [], "routes": []}) == ("closed", "01a2-site")
    with pytest.raises(ValueError, match=message) as raised:
        nm.parse_removal("r.json", good | document)
    assert str(raised.value).startswith("r.json: ")
