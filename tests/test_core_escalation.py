"""Escalation policies: parsing with clear errors, and a schedule that never ends silently."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openline.core import escalation as esc
from openline.errors import InvalidInput


def policy(steps: int, repeat: int) -> esc.Policy:
    return esc.Policy(
        tuple(esc.Step((f"user:u{i}",), 10 + i) for i in range(steps)),
        repeat,
        esc.Step(("on_duty",), 300),
    )


def test_default_policy_rings_duty_then_senior_then_commander() -> None:
    p = esc.DEFAULT_POLICY
    assert [s.targets for s in p.steps] == [("on_duty",), ("role:senior_watch_officer",), ("role:commander",)]
    assert [s.delay_s for s in p.steps] == [60, 60, 60]
    assert esc.parse_policy(p.to_json()) == p
    assert esc.loads(p.dumps()) == p


def test_schedule_runs_the_steps_repeat_plus_one_times_then_the_catch_all_for_ever() -> None:
    p = policy(3, 1)
    pos, fired = esc.START, []
    for _ in range(10):
        fired.append(pos.describe())
        pos = esc.advance(p, pos)
    assert fired == [
        "round 1, step 1",
        "round 1, step 2",
        "round 1, step 3",
        "round 2, step 1",
        "round 2, step 2",
        "round 2, step 3",
        "final",
        "final",
        "final",
        "final",
    ]
    assert esc.step_at(p, pos) is p.final


@given(st.integers(1, esc.MAX_STEPS), st.integers(0, esc.MAX_REPEAT), st.integers(0, 300))
def test_every_position_has_a_next_step_with_a_positive_delay(steps: int, repeat: int, n: int) -> None:
    p = policy(steps, repeat)
    pos = esc.START
    for _ in range(n):
        assert esc.step_at(p, pos).delay_s > 0
        pos = esc.advance(p, pos)
    before_final = steps * (repeat + 1)
    assert (pos.step == esc.FINAL) == (n >= before_final)


GOOD = {
    "steps": [{"targets": ["on_duty"], "delay_s": 60}],
    "repeat": 0,
    "final": {"targets": ["webhook"], "delay_s": 300},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": []}, "policy.steps: expected a list of 1 to 10"),
        ({"steps": [{"targets": ["on_duty"]}]}, "policy.steps[0]: expected an object"),
        ({"steps": [{"targets": [], "delay_s": 5}]}, "policy.steps[0].targets"),
        ({"steps": [{"targets": ["pager"], "delay_s": 5}]}, "policy.steps[0].targets[0]"),
        ({"steps": [{"targets": ["role:king"], "delay_s": 5}]}, "no role 'king'"),
        ({"steps": [{"targets": ["on_duty", "on_duty"], "delay_s": 5}]}, "listed twice"),
        ({"steps": [{"targets": ["on_duty"], "delay_s": 0}]}, "policy.steps[0].delay_s"),
        ({"steps": [{"targets": ["on_duty"], "delay_s": True}]}, "policy.steps[0].delay_s"),
        ({"repeat": 11}, "policy.repeat"),
        ({"repeat": -1}, "policy.repeat"),
        ({"final": {"targets": ["on_duty"], "delay_s": 86_401}}, "policy.final.delay_s"),
        ({"extra": 1}, "exactly 'steps', 'repeat' and 'final'"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(
        InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
    ):
        esc.parse_policy({**GOOD, **change})


def test_a_good_policy_parses() -> None:
    p = esc.parse_policy(GOOD)
    assert p.steps == (esc.Step(("on_duty",), 60),)
    assert p.final == esc.Step(("webhook",), 300)
