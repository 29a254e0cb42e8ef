"""Escalation policies: who is notified, in what order, while a call rings unanswered.

A policy is ordered steps, each naming targets and how long to wait before the next
step; the steps run `repeat` more times; then a final catch-all step fires, and fires
again every `final.delay_s` for as long as the call rings. So a ringing call always has
a next step: an escalation never ends silently (GoAlert's model, with Grafana OnCall's
snapshot: the policy is copied onto each call when it starts ringing).

Targets: `on_duty` (whoever the roster has on duty), `role:<role>` (every enabled user
with that role), `user:<name>`, and `webhook` (the station's webhooks).

Pure: no I/O. The schedule itself (`Position`, `advance`) is tested exhaustively.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from openline.core.clock import MICROS
from openline.errors import InvalidInput

ROLES = ("administrator", "watch_officer", "senior_watch_officer", "commander", "auditor")
_TARGET_RE = re.compile(r"^(on_duty|webhook|role:[a-z_]+|user:[a-z0-9][a-z0-9._-]{0,63})$")
MAX_STEPS = 10
MAX_REPEAT = 10
MAX_DELAY_S = 86_400
FINAL = -1  # the position of the catch-all step


@dataclass(frozen=True)
class Step:
    targets: tuple[str, ...]
    delay_s: int  # seconds to wait after this step before the next one

    def to_json(self) -> dict[str, Any]:
        return {"targets": list(self.targets), "delay_s": self.delay_s}


@dataclass(frozen=True)
class Policy:
    steps: tuple[Step, ...]
    repeat: int  # how many more times the steps run before the catch-all
    final: Step  # the catch-all, repeated every final.delay_s while the call rings

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "repeat": self.repeat,
            "final": self.final.to_json(),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)


DEFAULT_POLICY = Policy(
    steps=(
        Step(("on_duty",), 60),
        Step(("role:senior_watch_officer",), 60),
        Step(("role:commander",), 60),
    ),
    repeat=1,
    final=Step(
        ("on_duty", "role:senior_watch_officer", "role:commander", "role:administrator", "webhook"), 300
    ),
)


@dataclass(frozen=True)
class Position:
    round: int  # 0 for the first run of the steps
    step: int  # index into the steps, or FINAL

    def describe(self) -> str:
        return "final" if self.step == FINAL else f"round {self.round + 1}, step {self.step + 1}"


START = Position(0, 0)


def step_at(policy: Policy, pos: Position) -> Step:
    return policy.final if pos.step == FINAL else policy.steps[pos.step]


def after(policy: Policy, pos: Position, due_at: int, now: int) -> tuple[Position, int]:
    """The position after firing `pos` (due at `due_at`, fired at `now`, µs) and when it
    is due. Steps keep their schedule even when fired late (a restart in the middle loses
    none and fires them in order); the catch-all repeats from `now`, so an outage does
    not turn into a burst of identical pages."""
    base = now if pos.step == FINAL else due_at
    return advance(policy, pos), max(base + step_at(policy, pos).delay_s * MICROS, due_at + 1)


def advance(policy: Policy, pos: Position) -> Position:
    """The position after firing `pos`: the next step, the next round, then the catch-all
    for ever."""
    if pos.step == FINAL:
        return pos
    if pos.step + 1 < len(policy.steps):
        return Position(pos.round, pos.step + 1)
    if pos.round < policy.repeat:
        return Position(pos.round + 1, 0)
    return Position(pos.round, FINAL)


def parse_targets(targets: Any, where: str) -> tuple[str, ...]:
    """A step's targets: 1 to 10 of `on_duty`, `webhook`, `role:<role>`, `user:<name>`,
    none twice. `where` names them in an error."""
    if not isinstance(targets, list) or not 1 <= len(targets) <= 10:
        raise InvalidInput(f"{where}: expected a list of 1 to 10 targets")
    for i, target in enumerate(targets):
        if not isinstance(target, str) or not _TARGET_RE.fullmatch(target):
            raise InvalidInput(
                f"{where}[{i}]: expected on_duty, webhook, role:<role> or user:<name>, got {target!r}"
            )
        if target.startswith("role:") and target[5:] not in ROLES:
            raise InvalidInput(f"{where}[{i}]: no role {target[5:]!r}; roles: {', '.join(ROLES)}")
    if len(set(targets)) != len(targets):
        raise InvalidInput(f"{where}: a target is listed twice")
    return tuple(targets)


def _step(data: Any, where: str) -> Step:
    if not isinstance(data, dict) or set(data) != {"targets", "delay_s"}:
        raise InvalidInput(f"{where}: expected an object with exactly 'targets' and 'delay_s'")
    targets, delay = parse_targets(data["targets"], f"{where}.targets"), data["delay_s"]
    if isinstance(delay, bool) or not isinstance(delay, int) or not 1 <= delay <= MAX_DELAY_S:
        raise InvalidInput(f"{where}.delay_s: expected whole seconds from 1 to {MAX_DELAY_S}, got {delay!r}")
    return Step(targets, delay)


def parse_policy(data: Any) -> Policy:
    """A policy from its JSON form, or `invalid_input` naming the field at fault."""
    if not isinstance(data, dict) or set(data) != {"steps", "repeat", "final"}:
        raise InvalidInput("policy: expected an object with exactly 'steps', 'repeat' and 'final'")
    steps = data["steps"]
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise InvalidInput(f"policy.steps: expected a list of 1 to {MAX_STEPS} steps")
    repeat = data["repeat"]
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 0 <= repeat <= MAX_REPEAT:
        raise InvalidInput(f"policy.repeat: expected 0 to {MAX_REPEAT}, got {repeat!r}")
    return Policy(
        tuple(_step(s, f"policy.steps[{i}]") for i, s in enumerate(steps)),
        repeat,
        _step(data["final"], "policy.final"),
    )


@functools.lru_cache(maxsize=256)
def loads(text: str) -> Policy:
    """A policy from its stored text. Cached: every ringing call holds a copy, and most
    copies are the same text (a Policy is immutable)."""
    return parse_policy(json.loads(text))
