"""The web console: server-rendered pages (Jinja2), live updates by Server-Sent Events
(htmx), every asset served from the package.

Routes hold no business rules: they check the session and the CSRF token, call the same
services as the API, and render. Forms are plain HTML forms (POST, then a redirect), so
the console works without scripts; htmx only re-fetches the live parts when the station
announces a change.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from openline.api.local import RowId
from openline.console import charts
from openline.console.live import Hub
from openline.core.clock import parse_rfc3339, rfc3339
from openline.errors import Conflict, CsrfRefused, InvalidInput, OpenLineError, TooManyAttempts, Unauthorized
from openline.services import (
    accounts,
    alerts,
    calls,
    handover,
    ledger_view,
    lines,
    notices,
    report,
    rosters,
    sessions,
    watch,
)
from openline.services.accounts import Permission, Role
from openline.services.lines import initiate_handshake
from openline.services.sessions import Session
from openline.services.station import Station

COOKIE = "openline_session"
MAX_FORM_BYTES = 64 * 1024
STATIC_DIR = files("openline.console") / "static"
_ENV = Environment(
    loader=PackageLoader("openline.console", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


# Nothing inline: scripts and styles come from /static, so the policy can forbid the rest.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """No live session: the browser is sent to the login page."""


def _station(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _ENV.get_template(name).render(request=request, station=_station(request).name, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput(f"form: at most {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"form: {exc}") from None
    return {k: v[0] for k, v in fields.items()}


def _session(request: Request, *, allow_password_change: bool = False) -> Session:
    try:
        session = sessions.session_of(_station(request), request.cookies.get(COOKIE))
    except Unauthorized:
        raise LoginRequired from None
    if session.must_change_password and not allow_password_change:
        raise LoginRequired("password")
    return session


async def _posted(request: Request, *, allow_password_change: bool = False) -> tuple[Session, dict[str, str]]:
    """The session and form of a POST, after checking its CSRF token."""
    session = _session(request, allow_password_change=allow_password_change)
    form = await _form(request)
    token = form.get("csrf") or request.headers.get("x-csrf-token")
    if token != session.csrf:
        raise CsrfRefused("this form is stale or came from another site; reload the page and try again")
    return session, form


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# Logging in and out ------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    username = form.get("username", "")
    try:
        session = sessions.login(
            _station(request), username, form.get("password", ""), form.get("totp") or None, _client(request)
        )
    except TooManyAttempts as exc:
        refused = render(request, "login.html", status=429, error=exc.detail, username=username)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except Unauthorized as exc:
        return render(request, "login.html", status=401, error=exc.detail, username=username)
    response = redirect("/password" if session.must_change_password else "/")
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=sessions.SESSION_HOURS * 3600,
        httponly=True,
        secure=True,
        samesite="strict",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session, _ = await _posted(request, allow_password_change=True)
    sessions.logout(_station(request), session.token)
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/password")
def password_page(request: Request) -> HTMLResponse:
    session = _session(request, allow_password_change=True)
    return render(request, "password.html", session=session)


@router.post("/password")
async def change_password(request: Request) -> Response:
    session, form = await _posted(request, allow_password_change=True)
    new = form.get("new_password", "")
    try:
        if new != form.get("confirm_password", ""):
            raise InvalidInput("the two new passwords differ")
        sessions.change_password(_station(request), session, form.get("current_password", ""), new)
    except OpenLineError as exc:
        return render(request, "password.html", status=exc.status, session=session, error=exc.detail)
    return redirect("/")


# The watch board ---------------------------------------------------------------------


def _board(request: Request, session: Session) -> dict[str, Any]:
    station = _station(request)
    who = session.principal
    content = who.can(Permission.READ_CONTENT)
    recent = calls.list_calls(station, limit=50, content=content)
    ringing = [c for c in recent if c["state"] == "ringing" and c["direction"] == "in"]
    roster = rosters.roster_view(station)
    return {
        "session": session,
        "can_work": who.can(Permission.WORK_CALLS),
        "ringing": sorted(ringing, key=lambda c: (PRIORITY_ORDER[c["priority"]], c["ringing_at"])),
        "recent": [c for c in recent if c not in ringing],
        "lines": lines.list_lines(station),
        "on_duty": roster["on_duty"],
        "next_handover": roster["next_handover"],
        "alerts": alerts.list_alerts(station, open_only=True, limit=20),
        "handovers": handover.list_handovers(station, content=content, pending_only=True, limit=5),
    }


PRIORITY_ORDER = {"flash": 0, "immediate": 1, "priority": 2, "routine": 3}


@router.get("/")
def board_page(request: Request) -> HTMLResponse:
    session = _session(request)
    return render(request, "board.html", **_board(request, session))


@router.get("/board")
def board_part(request: Request) -> HTMLResponse:
    session = _session(request)
    return render(request, "_board.html", **_board(request, session))


@router.post("/calls")
async def place_call(request: Request) -> Response:
    session, form = await _posted(request)
    session.principal.require(Permission.WORK_CALLS)
    station = _station(request)
    try:
        call_id = calls.place(
            station,
            session.principal.name,
            form.get("peer", ""),
            form.get("subject", ""),
            form.get("priority", ""),
        )
    except OpenLineError as exc:
        context = _board(request, session)
        return render(request, "board.html", status=exc.status, error=exc.detail, **context)
    return redirect(f"/calls/{call_id}")


# One call ----------------------------------------------------------------------------


def _call(request: Request, session: Session, call_id: str) -> dict[str, Any]:
    who = session.principal
    who.require(Permission.VIEW)
    call = calls.show_call(_station(request), call_id, content=who.can(Permission.READ_CONTENT))
    return {"session": session, "call": call, "can_work": who.can(Permission.WORK_CALLS)}


@router.get("/calls/{call_id}")
def call_page(request: Request, call_id: str) -> HTMLResponse:
    session = _session(request)
    return render(request, "call.html", **_call(request, session, call_id))


@router.get("/calls/{call_id}/live")
def call_part(request: Request, call_id: str) -> HTMLResponse:
    session = _session(request)
    return render(request, "_call.html", **_call(request, session, call_id))


@router.post("/calls/{call_id}/{action}")
async def call_action(request: Request, call_id: str, action: str) -> Response:
    session, form = await _posted(request)
    session.principal.require(Permission.WORK_CALLS)
    station, actor = _station(request), session.principal.name
    try:
        if action == "pickup":
            calls.pickup(station, actor, call_id)
        elif action == "messages":
            calls.say(station, actor, call_id, form.get("text", ""))
        elif action == "close":
            calls.close(station, actor, call_id, form.get("summary") or None)
        elif action == "decline":
            calls.decline(station, actor, call_id, form.get("reason") or None)
        elif action == "cancel":
            calls.cancel(station, actor, call_id)
        else:
            raise InvalidInput(f"no action {action!r}")
    except OpenLineError as exc:
        return render(
            request, "call.html", status=exc.status, error=exc.detail, **_call(request, session, call_id)
        )
    return redirect(f"/calls/{call_id}")


@router.post("/alerts/{alert_id}/ack")
async def ack_alert(request: Request, alert_id: RowId) -> Response:
    session, _ = await _posted(request)
    session.principal.require(Permission.WORK_CALLS)
    alerts.acknowledge_alert(_station(request), session.principal.name, alert_id)
    return redirect("/")


@router.post("/handovers")
async def hand_over(request: Request) -> Response:
    session, form = await _posted(request)
    session.principal.require(Permission.WORK_CALLS)
    try:
        handover.hand_over(_station(request), session.principal.name, form.get("note", ""))
    except OpenLineError as exc:
        return render(request, "board.html", status=exc.status, error=exc.detail, **_board(request, session))
    return redirect("/")


@router.post("/handovers/{handover_id}/ack")
async def ack_handover(request: Request, handover_id: RowId) -> Response:
    session, _ = await _posted(request)
    session.principal.require(Permission.WORK_CALLS)
    try:
        handover.acknowledge_handover(_station(request), session.principal.name, handover_id)
    except OpenLineError as exc:
        return render(request, "board.html", status=exc.status, error=exc.detail, **_board(request, session))
    return redirect("/")


# History and the roster --------------------------------------------------------------

HISTORY_LIMIT = 500
CSV_LIMIT = 100_000
CSV_FIELDS = (
    "id", "peer", "direction", "priority", "state", "subject", "picked_up_by", *calls.TIME_FIELDS,
)  # fmt: skip


def _filter(request: Request) -> tuple[calls.CallFilter, dict[str, str]]:
    q = request.query_params
    chosen = {k: q[k] for k in ("state", "peer", "direction", "priority", "since", "until") if q.get(k)}

    def at(key: str) -> int | None:
        if key not in chosen:
            return None
        try:  # a date from the form means its midnight UTC
            text = chosen[key] if "T" in chosen[key] else chosen[key] + "T00:00:00Z"
            return parse_rfc3339(text)
        except (ValueError, TypeError):
            raise InvalidInput(f"{key}: expected a date (2026-11-26) or an RFC 3339 time") from None

    f = calls.CallFilter(
        chosen.get("state"),
        chosen.get("peer"),
        chosen.get("direction"),
        chosen.get("priority"),
        at("since"),
        at("until"),
    )
    return f, chosen


@router.get("/history")
def history(request: Request) -> HTMLResponse:
    session = _session(request)
    who = session.principal
    who.require(Permission.VIEW)
    context: dict[str, Any] = {"session": session, "lines": lines.list_lines(_station(request))}
    try:
        where, chosen = _filter(request)
        rows = calls.list_calls(
            _station(request), limit=HISTORY_LIMIT, content=who.can(Permission.READ_CONTENT), where=where
        )
    except InvalidInput as exc:
        return render(request, "history.html", status=422, error=exc.detail, calls=[], chosen={}, **context)
    return render(request, "history.html", calls=rows, chosen=chosen, csv_query=request.url.query, **context)


def _csv_cell(value: Any) -> str:
    """Text for a spreadsheet: a cell that starts like a formula is quoted as text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/history.csv")
def history_csv(request: Request) -> Response:
    session = _session(request)
    who = session.principal
    who.require(Permission.VIEW)
    where, _ = _filter(request)
    rows = calls.list_calls(
        _station(request), limit=CSV_LIMIT, content=who.can(Permission.READ_CONTENT), where=where
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for row in rows:
        writer.writerow([_csv_cell(row[field]) for field in CSV_FIELDS])
    name = f"openline-{_station(request).name}-calls.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/roster")
def roster_page(request: Request) -> HTMLResponse:
    session = _session(request)
    session.principal.require(Permission.VIEW)
    station = _station(request)
    return render(request, "roster.html", session=session, **rosters.roster_week(station))


# The transparency report and the ledger: metadata only, for every role ----------------


@router.get("/report")
def report_page(request: Request) -> HTMLResponse:
    session = _session(request)
    session.principal.require(Permission.VIEW)
    station = _station(request)
    period = request.query_params.get("period") or report.current_period(station)
    try:
        data = report.transparency_report(station, period)
    except OpenLineError as exc:
        # No checkpoint yet is a state of the station, not a bad request: the page says so.
        status = 200 if isinstance(exc, Conflict) else exc.status
        return render(
            request, "report.html", status=status, error=exc.detail, session=session, period=period[:32]
        )
    return render(
        request, "report.html", session=session, period=period, report=data, charts=charts.report_charts(data)
    )


def _ledger(request: Request, session: Session) -> dict[str, Any]:
    session.principal.require(Permission.VIEW)
    with _station(request).db.read() as conn:
        return {"session": session, "ledger": ledger_view.status(conn)}


@router.get("/ledger")
def ledger_page(request: Request) -> HTMLResponse:
    session = _session(request)
    return render(request, "ledger.html", **_ledger(request, session))


@router.get("/ledger/live")
def ledger_part(request: Request) -> HTMLResponse:
    session = _session(request)
    return render(request, "_ledger.html", **_ledger(request, session))


# Notices: the map and the history ---------------------------------------------------

NOTICE_LIMIT = 500
MAP_DAYS = 7  # the time slider runs from now to now + MAP_DAYS


def _notices(request: Request, session: Session, **extra: Any) -> dict[str, Any]:
    who = session.principal
    who.require(Permission.VIEW)
    station = _station(request)
    rows = notices.list_notices(station, content=who.can(Permission.READ_CONTENT), limit=NOTICE_LIMIT)
    return {
        "session": session,
        "notices": rows,
        "can_work": who.can(Permission.WORK_CALLS),
        "peers": [line["peer"] for line in lines.list_lines(station) if line["state"] == "active"],
        # Read by static/notices.js from a non-executed JSON block: the CSP stays strict.
        "map_data": {"now": rfc3339(station.clock.now()), "days": MAP_DAYS, "notices": rows},
        **extra,
    }


@router.get("/notices")
def notices_page(request: Request) -> HTMLResponse:
    session = _session(request)
    return render(request, "notices.html", **_notices(request, session))


@router.post("/notices")
async def send_notice(request: Request) -> Response:
    session, form = await _posted(request)
    session.principal.require(Permission.WORK_CALLS)
    peer, pasted = form.get("peer", ""), form.get("notice", "")
    try:
        document = _json_field(form, "notice")
        notices.send(_station(request), session.principal.name, peer, document)
    except OpenLineError as exc:
        context = _notices(request, session, pasted=pasted, chosen_peer=peer)
        return render(request, "notices.html", status=exc.status, error=exc.detail, **context)
    return redirect("/notices")


@router.post("/notices/{notice_id}/ack")
async def ack_notice(request: Request, notice_id: str) -> Response:
    session, _ = await _posted(request)
    session.principal.require(Permission.WORK_CALLS)
    try:
        notices.acknowledge(_station(request), session.principal.name, notice_id)
    except OpenLineError as exc:
        context = _notices(request, session)
        return render(request, "notices.html", status=exc.status, error=exc.detail, **context)
    return redirect("/notices")


# Administration ----------------------------------------------------------------------


def _admin(request: Request, session: Session, **extra: Any) -> dict[str, Any]:
    who = session.principal
    if not (who.can(Permission.MANAGE_USERS) or who.can(Permission.MANAGE_LINES)):
        who.require(Permission.MANAGE_USERS)  # raises, naming the roles that may
    station = _station(request)
    with station.db.read() as conn:
        people = accounts.list_users(conn) if who.can(Permission.MANAGE_USERS) else []
    line_list = lines.list_lines(station)
    policies = {
        line["peer"]: json.dumps(watch.show_policy(station, line["peer"])["policy"], indent=2)
        for line in line_list
    }
    return {
        "session": session,
        "users": people,
        "lines": line_list,
        "policies": policies,
        "roles": [r.value for r in Role],
        "can_users": who.can(Permission.MANAGE_USERS),
        "can_lines": who.can(Permission.MANAGE_LINES),
        "card": json.dumps(station.card.to_json(), indent=2),
        **extra,
    }


def _json_field(form: dict[str, str], name: str) -> Any:
    """A form field that holds a JSON document (a card, a policy), or `invalid_input`."""
    try:
        return json.loads(form.get(name, ""))
    except ValueError as exc:
        raise InvalidInput(f"{name}: not JSON: {exc}") from None


@router.get("/admin")
def admin_page(request: Request) -> HTMLResponse:
    session = _session(request)
    return render(request, "admin.html", **_admin(request, session))


async def _admin_action(request: Request, permission: Permission) -> tuple[Session, dict[str, str]]:
    session, form = await _posted(request)
    session.principal.require(permission)
    return session, form


def _admin_result(request: Request, session: Session, done: Callable[[], str]) -> HTMLResponse:
    try:
        message = done()
    except OpenLineError as exc:
        return render(request, "admin.html", status=exc.status, error=exc.detail, **_admin(request, session))
    return render(request, "admin.html", message=message, **_admin(request, session))


@router.post("/admin/users")
async def admin_add_user(request: Request) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_USERS)
    station = _station(request)

    def done() -> str:
        password = accounts.one_time_password()
        with station.tx() as tx:
            accounts.create_user(
                tx.conn,
                tx.now,
                form.get("name", ""),
                accounts.parse_role(form.get("role", "")),
                password,
                must_change_password=True,
                actor=session.principal.name,
                email=form.get("email") or None,
            )
        return f"User {form.get('name')} added. One-time password (shown once): {password}"

    return _admin_result(request, session, done)


@router.post("/admin/users/{name}/{action}")
async def admin_user_action(request: Request, name: str, action: str) -> HTMLResponse:
    session, _ = await _admin_action(request, Permission.MANAGE_USERS)
    station, actor = _station(request), session.principal.name

    def done() -> str:
        if action in ("disable", "enable"):
            with station.tx() as tx:
                accounts.set_disabled(tx.conn, tx.now, actor, name, action == "disable")
            return f"User {name} {action}d."
        if action == "reset-password":
            with station.tx() as tx:
                password = accounts.reset_password(tx.conn, tx.now, actor, name, None)
            return f"New one-time password for {name} (shown once): {password}"
        raise InvalidInput(f"no action {action!r}")

    return _admin_result(request, session, done)


@router.post("/admin/lines")
async def admin_add_line(request: Request) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_LINES)
    station = _station(request)

    def done() -> str:
        card = _json_field(form, "card")
        deadline = form.get("answer_deadline_s", "").strip()
        if deadline and not deadline.isdigit():
            raise InvalidInput(f"answer deadline: whole seconds, got {deadline!r}")
        peer = lines.add_line(
            station, card, answer_deadline_s=int(deadline) if deadline else None, actor=session.principal.name
        )
        try:
            initiate_handshake(station, request.app.state.transport, peer)
        except OpenLineError as exc:
            return f"Pinned {peer}; the line is pending: {lines.handshake_error(exc)}"
        return f"Pinned {peer}; compare its fingerprint with the peer out of band."

    return _admin_result(request, session, done)


@router.post("/admin/lines/{peer}/policy")
async def admin_set_policy(request: Request, peer: str) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_LINES)
    station = _station(request)

    def done() -> str:
        policy = _json_field(form, "policy")
        watch.set_policy(station, session.principal.name, peer, policy)
        return f"Escalation policy of the line with {peer} saved; calls already ringing keep theirs."

    return _admin_result(request, session, done)


# Live updates ------------------------------------------------------------------------


@router.get("/events")
def events(request: Request) -> StreamingResponse:
    _session(request)
    server = getattr(request.app.state, "server", None)

    def stopping() -> bool:
        return bool(server is not None and server.should_exit)

    return StreamingResponse(
        _hub(request).stream(stopping),
        media_type="text/event-stream",
        headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"},
    )
