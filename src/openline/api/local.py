"""The local API (/api/v1): what the CLI and, later, the console use. Bearer-token auth.

Routes translate HTTP to service calls and nothing more."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from openline.api.bodies import Strict
from openline.api.deps import (
    BEFORE,
    Before,
    IdempotencyKey,
    PrincipalDep,
    StationDep,
    TransportDep,
    known_query_only,
    made_once,
    principal_of,
)
from openline.core.clock import time_param
from openline.services import (
    accounts,
    alerts,
    calls,
    handover,
    line_terms,
    lines,
    paging,
    rosters,
    sessions,
    watch,
)
from openline.services.accounts import Permission, Role

router = APIRouter(prefix="/api/v1", dependencies=[Depends(known_query_only)])
Priority = Literal["flash", "immediate", "priority", "routine"]
# A row number in a path: a database integer, so bounded (the fuzz test sends 10^27).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class PlaceCall(Strict):
    peer: str = Field(min_length=1, max_length=63)
    subject: str = Field(min_length=1, max_length=calls.MAX_SUBJECT)
    priority: Priority = "routine"


class Say(Strict):
    text: str = Field(min_length=1, max_length=calls.MAX_TEXT)
    lang: str = Field(default="en", min_length=1, max_length=35)


class Close(Strict):
    summary: str | None = Field(default=None, min_length=1, max_length=calls.MAX_SUMMARY)


class Decline(Strict):
    reason: str | None = Field(default=None, min_length=1, max_length=calls.MAX_SUMMARY)


class AddUser(Strict):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str | None = Field(
        default=None,
        min_length=accounts.MIN_PASSWORD,
        max_length=accounts.MAX_PASSWORD,
        description="Omit it for a one-time password, returned once, to be changed at first login.",
    )
    email: str | None = Field(
        default=None,
        max_length=accounts.MAX_EMAIL,
        pattern=accounts.EMAIL_PATTERN,
        description="For e-mail notifications.",
    )


class ResetPassword(Strict):
    password: str | None = Field(
        default=None, min_length=accounts.MIN_PASSWORD, max_length=accounts.MAX_PASSWORD
    )


class AddToken(Strict):
    label: str = Field(
        min_length=1,
        max_length=accounts.MAX_LABEL,
        description="Tells the user's tokens apart (printable, unique per user): 'laptop'.",
    )


class AddShift(Strict):
    user: str = Field(min_length=1, max_length=64)
    start_local: str = Field(min_length=1, max_length=32, description="Wall time in tz: 2026-11-27T06:00")
    tz: str = Field(min_length=1, max_length=64, description="IANA time zone, e.g. Europe/Berlin")
    duration_s: int = Field(ge=60, le=7 * 86_400)
    rrule: str | None = Field(default=None, min_length=1, max_length=500, description="RFC 5545 RRULE value")


class AddOverride(Strict):
    user: str = Field(min_length=1, max_length=64)
    start: str = Field(min_length=1, max_length=40, description="RFC 3339")
    end: str = Field(min_length=1, max_length=40, description="RFC 3339")
    replaces: str | None = Field(default=None, min_length=1, max_length=64)


class HandOver(Strict):
    note: str = Field(min_length=1, max_length=handover.MAX_NOTE)


# The line terms' bounds, for adding a line and for proposing new terms.
AnswerDeadline = Annotated[int, Field(ge=lines.ANSWER_DEADLINE_RANGE[0], le=lines.ANSWER_DEADLINE_RANGE[1])]
NoticeDeadline = Annotated[int, Field(ge=lines.NOTICE_DEADLINE_RANGE[0], le=lines.NOTICE_DEADLINE_RANGE[1])]
MarginHorizontal = Annotated[float, Field(ge=0, le=lines.MAX_MARGIN_HORIZONTAL_M, allow_inf_nan=False)]
MarginVertical = Annotated[float, Field(ge=0, le=lines.MAX_MARGIN_VERTICAL_M, allow_inf_nan=False)]
MarginMinutes = Annotated[int, Field(ge=0, le=lines.MAX_MARGIN_MINUTES)]


class AddLine(Strict):
    card: dict[str, Any]
    answer_deadline_s: AnswerDeadline | None = None
    # Line terms too: both stations must choose the same values (docs/notices.md).
    notice_deadline_s: NoticeDeadline = lines.NOTICE_DEADLINE_S
    margin_horizontal_m: MarginHorizontal = 0.0
    margin_vertical_m: MarginVertical = 0.0
    margin_minutes: MarginMinutes = 0


@router.get("/station")
def station_info(station: StationDep, who: PrincipalDep) -> dict[str, Any]:
    return {
        "name": station.name,
        "card": station.card.to_json(),
        "fingerprint": station.card.fingerprint,
        "user": who.name,
        "role": who.role.value,
    }


@router.get("/lines")
def get_lines(station: StationDep, who: PrincipalDep) -> list[dict[str, Any]]:
    who.require(Permission.VIEW)
    return lines.list_lines(station)


@router.post("/lines", status_code=201)
def add_line(station: StationDep, transport: TransportDep, who: PrincipalDep, req: AddLine) -> dict[str, Any]:
    who.require(Permission.MANAGE_LINES)
    terms = lines.Terms(
        req.notice_deadline_s, req.margin_horizontal_m, req.margin_vertical_m, req.margin_minutes
    )
    peer = lines.add_line(
        station, req.card, answer_deadline_s=req.answer_deadline_s, terms=terms, actor=who.name
    )
    note = lines.try_handshake(station, transport, peer)
    line = next(x for x in lines.list_lines(station) if x["peer"] == peer)
    return {**line, "handshake": note or "ok"}


@router.get("/calls")
def get_calls(
    station: StationDep,
    who: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    state: Annotated[str | None, Query(max_length=16)] = None,
    peer: Annotated[str | None, Query(max_length=63)] = None,
    direction: Annotated[str | None, Query(max_length=16)] = None,
    priority: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[str | None, Query(max_length=40, description="RFC 3339: placed at or after")] = None,
    until: Annotated[str | None, Query(max_length=40, description="RFC 3339: placed before")] = None,
) -> list[dict[str, Any]]:
    who.require(Permission.VIEW)
    where = calls.CallFilter(
        state, peer, direction, priority, time_param(since, "since"), time_param(until, "until")
    )
    return calls.list_calls(station, limit=limit, content=who.can(Permission.READ_CONTENT), where=where)


@router.post("/calls", status_code=201)
def place_call(
    station: StationDep,
    who: PrincipalDep,
    req: PlaceCall,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Place a call. With an Idempotency-Key, sending it again answers with the same call."""
    who.require(Permission.WORK_CALLS)
    call_id = made_once(
        station,
        who,
        (request, response),
        req,
        idempotency_key,
        lambda once: calls.place(station, who.name, req.peer, req.subject, req.priority, once=once),
    )
    return calls.show_call(station, call_id, content=who.can(Permission.READ_CONTENT))


@router.get("/calls/{call_id}")
def get_call(station: StationDep, who: PrincipalDep, call_id: str) -> dict[str, Any]:
    who.require(Permission.VIEW)
    return calls.show_call(station, call_id, content=who.can(Permission.READ_CONTENT))


@router.post("/calls/{call_id}/pickup")
def pickup(station: StationDep, who: PrincipalDep, call_id: str) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    calls.pickup(station, who.name, call_id)
    return calls.show_call(station, call_id, content=who.can(Permission.READ_CONTENT))


@router.post("/calls/{call_id}/messages", status_code=201)
async def say(
    station: StationDep,
    request: Request,
    response: Response,
    call_id: str,
    req: Say,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Send a message. With an Idempotency-Key, sending it again answers with the same one."""

    # The endpoint machine clients call at a rate: authenticated on the worker thread that
    # runs the use case (`principal_of`), one hand-off between threads fewer per message.
    def run() -> str:
        who = principal_of(request, station)
        who.require(Permission.WORK_CALLS)
        return made_once(
            station,
            who,
            (request, response),
            req,
            idempotency_key,
            lambda once: calls.say(station, who.name, call_id, req.text, req.lang, once=once),
        )

    message_id = await run_in_threadpool(run)
    return {"call": call_id, "id": message_id, "status": "queued"}


@router.post("/calls/{call_id}/close")
def close(
    station: StationDep, who: PrincipalDep, call_id: str, req: Annotated[Close, Body()] = Close()
) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    calls.close(station, who.name, call_id, req.summary)
    return calls.show_call(station, call_id, content=who.can(Permission.READ_CONTENT))


@router.post("/calls/{call_id}/decline")
def decline(
    station: StationDep, who: PrincipalDep, call_id: str, req: Annotated[Decline, Body()] = Decline()
) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    calls.decline(station, who.name, call_id, req.reason)
    return calls.show_call(station, call_id, content=who.can(Permission.READ_CONTENT))


@router.post("/calls/{call_id}/cancel")
def cancel(station: StationDep, who: PrincipalDep, call_id: str) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    calls.cancel(station, who.name, call_id)
    return calls.show_call(station, call_id, content=who.can(Permission.READ_CONTENT))


# People and the audit trail -----------------------------------------------------------


@router.get("/users")
def get_users(station: StationDep, who: PrincipalDep) -> list[dict[str, Any]]:
    who.require(Permission.MANAGE_USERS)
    with station.db.read() as conn:
        return accounts.list_users(conn)


@router.post("/users", status_code=201)
def add_user(station: StationDep, who: PrincipalDep, req: AddUser) -> dict[str, Any]:
    who.require(Permission.MANAGE_USERS)
    password = req.password or accounts.one_time_password()
    with station.tx() as tx:
        accounts.create_user(
            tx.conn,
            tx.now,
            req.name,
            req.role,
            password,
            must_change_password=req.password is None,
            actor=who.name,
            email=req.email,
        )
        user = accounts.get_user(tx.conn, req.name)
    return {**user, "one_time_password": None if req.password else password}


def _set_disabled(station: StationDep, who: PrincipalDep, name: str, disabled: bool) -> dict[str, Any]:
    who.require(Permission.MANAGE_USERS)
    with station.tx() as tx:
        return accounts.set_disabled(tx.conn, tx.now, who.name, name, disabled)


@router.post("/users/{name}/disable")
def disable_user(station: StationDep, who: PrincipalDep, name: str) -> dict[str, Any]:
    return _set_disabled(station, who, name, True)


@router.post("/users/{name}/enable")
def enable_user(station: StationDep, who: PrincipalDep, name: str) -> dict[str, Any]:
    return _set_disabled(station, who, name, False)


@router.post("/users/{name}/unlock")
def unlock_user(station: StationDep, who: PrincipalDep, name: str) -> dict[str, Any]:
    who.require(Permission.MANAGE_USERS)
    return {"name": name, "locked_until": sessions.unlock(station, who.name, name)}


@router.post("/users/{name}/reset-password")
def reset_password(
    station: StationDep, who: PrincipalDep, name: str, req: Annotated[ResetPassword, Body()] = ResetPassword()
) -> dict[str, Any]:
    who.require(Permission.MANAGE_USERS)
    with station.tx() as tx:
        generated = accounts.reset_password(tx.conn, tx.now, who.name, name, req.password)
    return {"name": name, "one_time_password": generated}


@router.post("/users/{name}/totp")
def enroll_totp(station: StationDep, who: PrincipalDep, name: str) -> dict[str, Any]:
    who.require(Permission.MANAGE_USERS)
    return {"name": name, "otpauth_uri": sessions.enroll_totp(station, who.name, name)}


@router.get("/users/{name}/tokens")
def get_tokens(station: StationDep, who: PrincipalDep, name: str) -> list[dict[str, Any]]:
    """The user's API tokens, oldest first: `id`, `user`, `label`, `created_at`; never
    the token, which the station keeps only as a hash."""
    who.require(Permission.MANAGE_USERS)
    with station.db.read() as conn:
        return accounts.list_tokens(conn, name)


@router.post("/users/{name}/tokens", status_code=201)
def add_token(station: StationDep, who: PrincipalDep, name: str, req: AddToken) -> dict[str, Any]:
    """Issue an API token for the user. The answer holds it (`token`), once: the station
    keeps only its hash."""
    who.require(Permission.MANAGE_USERS)
    with station.tx() as tx:
        return accounts.add_token(tx.conn, tx.now, who.name, name, req.label)


@router.delete("/users/{name}/tokens/{token_id}")
def revoke_token(station: StationDep, who: PrincipalDep, name: str, token_id: RowId) -> dict[str, Any]:
    """Revoke one of the user's API tokens: it stops working at once. The answer is the
    token's record."""
    who.require(Permission.MANAGE_USERS)
    with station.tx() as tx:
        return accounts.revoke_token(tx.conn, tx.now, who.name, name, token_id)


@router.get("/audit")
def get_audit(
    station: StationDep,
    who: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Before = None,
) -> list[dict[str, Any]]:
    who.require(Permission.READ_AUDIT)
    with station.db.read() as conn:
        return accounts.list_audit(conn, limit, before)


# The watch floor: escalation policies, alerts, the roster --------------------------------


class ProposeTerms(Strict):
    """New terms for an open line; a term left out keeps its value (docs/notices.md)."""

    answer_deadline_s: AnswerDeadline | None = None
    notice_deadline_s: NoticeDeadline | None = None
    margin_horizontal_m: MarginHorizontal | None = None
    margin_vertical_m: MarginVertical | None = None
    margin_minutes: MarginMinutes | None = None


@router.put("/lines/{peer}/terms")
def propose_terms(
    station: StationDep, transport: TransportDep, who: PrincipalDep, peer: str, req: ProposeTerms
) -> dict[str, Any]:
    """Propose new terms for the line; both stations adopt them in the handshake that finds
    the peer proposing the same. `proposal`: `adopted`, `withdrawn` (the line's own terms
    proposed) or `waiting`; `handshake`: "ok", or why not adopted yet."""
    who.require(Permission.MANAGE_LINES)
    done = line_terms.propose(station, transport, peer, req.model_dump(exclude_none=True), actor=who.name)
    line = next(x for x in lines.list_lines(station) if x["peer"] == peer)
    return {**line, "proposal": done.outcome, "handshake": done.why or "ok"}


class NewCard(Strict):
    card: dict[str, Any]


@router.put("/lines/{peer}/card")
def update_card(station: StationDep, who: PrincipalDep, peer: str, req: NewCard) -> dict[str, Any]:
    """Pin the peer's new card, signed by the keys pinned already: a station that moved to
    another address. Its line is retried there at once."""
    who.require(Permission.MANAGE_LINES)
    lines.update_card(station, peer, req.card, actor=who.name)
    return next(x for x in lines.list_lines(station) if x["peer"] == peer)


class Suspend(Strict):
    reason: str = Field(min_length=1, max_length=lines.MAX_SUSPEND_REASON)


@router.post("/lines/{peer}/suspend")
def suspend_line(station: StationDep, who: PrincipalDep, peer: str, req: Suspend) -> dict[str, Any]:
    """Stop trusting the peer at once (its key may be stolen): nothing it signs is taken
    and nothing is sent to it until the line is resumed; `reason` goes to the audit trail."""
    who.require(Permission.MANAGE_LINES)
    lines.suspend(station, peer, req.reason, actor=who.name)
    return next(x for x in lines.list_lines(station) if x["peer"] == peer)


@router.post("/lines/{peer}/resume")
def resume_line(station: StationDep, transport: TransportDep, who: PrincipalDep, peer: str) -> dict[str, Any]:
    """Trust the peer again: the line is as before it was suspended, and a handshake is
    tried at once. `handshake`: "ok", or why it failed (the deliverer keeps trying)."""
    who.require(Permission.MANAGE_LINES)
    lines.resume(station, peer, actor=who.name)
    note = lines.try_handshake(station, transport, peer)
    line = next(x for x in lines.list_lines(station) if x["peer"] == peer)
    return {**line, "handshake": note or "ok"}


@router.get("/lines/{peer}/policy")
def get_policy(station: StationDep, who: PrincipalDep, peer: str) -> dict[str, Any]:
    who.require(Permission.VIEW)
    return watch.show_policy(station, peer)


@router.put("/lines/{peer}/policy")
def put_policy(
    station: StationDep, who: PrincipalDep, peer: str, policy: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    who.require(Permission.MANAGE_LINES)
    return watch.set_policy(station, who.name, peer, policy)


@router.get("/alerts")
def get_alerts(
    station: StationDep,
    who: PrincipalDep,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Before = None,
) -> list[dict[str, Any]]:
    who.require(Permission.VIEW)
    return alerts.list_alerts(station, open_only=open_only, limit=limit, before=before)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(station: StationDep, who: PrincipalDep, alert_id: RowId) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    return alerts.acknowledge_alert(station, who.name, alert_id)


@router.get("/notifications")
def get_notifications(
    station: StationDep,
    who: PrincipalDep,
    call: Annotated[str | None, Query(max_length=36, description="Only those of this call.")] = None,
    alert: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Only this alert's pages.")] = None,
    status: Annotated[str | None, Query(max_length=16, description="pending, sent or failed")] = None,
    channel: Annotated[str | None, Query(max_length=16, description="console, email or webhook")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[str | None, Query(min_length=1, max_length=64, description=BEFORE)] = None,
) -> list[dict[str, Any]]:
    """Notifications newest first: who was paged, on which channel, about which call or
    alert, and whether it went. Metadata only; a webhook's address shows only its host."""
    who.require(Permission.VIEW)
    wanted = paging.NotificationFilter(call, alert, status, channel, limit, before)
    return paging.list_notifications(station, wanted)


class TestPage(Strict):
    targets: list[Any] = Field(
        description="As an escalation step names them: on_duty, webhook, role:R, user:U."
    )


@router.post("/notifications/test", status_code=201)
def send_test_page(station: StationDep, who: PrincipalDep, req: TestPage) -> list[dict[str, Any]]:
    """Send a test page to `targets` the way a real one goes, and answer with the
    notifications written (`pending` until each channel's worker has sent it)."""
    who.require(Permission.MANAGE_USERS)
    return paging.send_test(station, who.name, req.targets)


@router.get("/roster")
def get_roster(
    station: StationDep, who: PrincipalDep, at: Annotated[str | None, Query(max_length=40)] = None
) -> dict[str, Any]:
    who.require(Permission.VIEW)
    return rosters.roster_view(station, time_param(at, "at"))


@router.post("/shifts", status_code=201)
def add_shift(station: StationDep, who: PrincipalDep, req: AddShift) -> dict[str, Any]:
    who.require(Permission.MANAGE_ROSTER)
    return rosters.add_shift(station, who.name, req.user, req.start_local, req.tz, req.duration_s, req.rrule)


@router.delete("/shifts/{shift_id}", status_code=204)
def remove_shift(station: StationDep, who: PrincipalDep, shift_id: RowId) -> None:
    who.require(Permission.MANAGE_ROSTER)
    rosters.remove_shift(station, who.name, shift_id)


@router.post("/overrides", status_code=201)
def add_override(station: StationDep, who: PrincipalDep, req: AddOverride) -> dict[str, Any]:
    who.require(Permission.MANAGE_ROSTER)
    return rosters.add_override(station, who.name, req.user, req.start, req.end, req.replaces)


@router.delete("/overrides/{override_id}", status_code=204)
def remove_override(station: StationDep, who: PrincipalDep, override_id: RowId) -> None:
    who.require(Permission.MANAGE_ROSTER)
    rosters.remove_override(station, who.name, override_id)


@router.post("/handovers", status_code=201)
def hand_over(station: StationDep, who: PrincipalDep, req: HandOver) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    return handover.hand_over(station, who.name, req.note)


@router.get("/handovers")
def get_handovers(
    station: StationDep,
    who: PrincipalDep,
    pending: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    before: Before = None,
) -> list[dict[str, Any]]:
    who.require(Permission.VIEW)
    content = who.can(Permission.READ_CONTENT)
    return handover.list_handovers(station, content=content, pending_only=pending, limit=limit, before=before)


@router.post("/handovers/{handover_id}/acknowledge")
def acknowledge_handover(station: StationDep, who: PrincipalDep, handover_id: RowId) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    return handover.acknowledge_handover(station, who.name, handover_id)
