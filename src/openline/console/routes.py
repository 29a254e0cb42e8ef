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
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from openline.api.local import RowId
from openline.console import admin as admin_pages
from openline.console import charts
from openline.console import notices as notice_pages
from openline.console.pages import (
    COOKIE,
    SECURITY_HEADERS,
    hub_of,
    once_of,
    page_after_login,
    posted,
    read_form,
    redirect,
    render,
    session_left_s,
    session_of,
    station_of,
)

# Re-exported for the app: it sends LoginRequired to the login page and serves /static.
from openline.console.pages import STATIC_DIR as STATIC_DIR
from openline.console.pages import LoginRequired as LoginRequired
from openline.core.calls import PRIORITIES, TERMINAL, State
from openline.core.clock import MICROS, parse_rfc3339
from openline.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    OpenLineError,
    TooManyAttempts,
    Unauthorized,
)
from openline.services import (
    alerts,
    calls,
    evidence,
    handover,
    idempotency,
    ledger_view,
    line_health,
    lines,
    notice_view,
    report,
    rosters,
    sessions,
)
from openline.services.accounts import Permission
from openline.services.sessions import Session
from openline.services.station import Station

router = APIRouter(include_in_schema=False)
router.include_router(notice_pages.router)
router.include_router(admin_pages.router)
FAVICON = (STATIC_DIR / "favicon.svg").read_bytes()


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/favicon.ico")
def favicon() -> Response:
    """For what has no <link rel="icon"> (a JSON error, a CSV): the same SVG, not a 404."""
    return Response(
        FAVICON,
        media_type="image/svg+xml",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=86400"},
    )


# Logging in and out ------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    ended, back = request.query_params.get("ended") == "1", page_after_login(request.query_params.get("next"))
    return render(request, "login.html", ended=ended, next_page=back)


def _cross_site(request: Request) -> bool:
    """Whether a browser sent this request from a page that is not the console's own. The
    login form has no session yet to carry a CSRF token, and a login posted from another
    site would swap the officer's session for one of the sender's accounts (an auditor's,
    say: no Pick up buttons; an officer's: the victim's actions under another's name).
    Browsers say where a request comes from (`Sec-Fetch-Site`, older ones `Origin`);
    a client that says neither is not a browser another site can drive."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin is not None and origin != own


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    username = form.get("username", "")
    if _cross_site(request):
        why = "A log-in sent from another site was refused: open the console at its own address and log in."
        return render(request, "login.html", status=403, error=why, username="")
    try:
        session = sessions.login(
            station_of(request),
            username,
            form.get("password", ""),
            form.get("totp") or None,
            _client(request),
        )
    except TooManyAttempts as exc:
        refused = render(request, "login.html", status=429, error=exc.detail, username=username)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except Unauthorized as exc:
        return render(request, "login.html", status=401, error=exc.detail, username=username)
    back = page_after_login(form.get("next")) or "/"
    response = redirect("/password" if session.must_change_password else back)
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
    session, _ = await posted(request, allow_password_change=True)
    sessions.logout(station_of(request), session.token)
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/password")
def password_page(request: Request) -> HTMLResponse:
    session = session_of(request, allow_password_change=True)
    return render(request, "password.html", session=session)


@router.post("/password")
async def change_password(request: Request) -> Response:
    session, form = await posted(request, allow_password_change=True)
    new = form.get("new_password", "")
    try:
        if new != form.get("confirm_password", ""):
            raise InvalidInput("the two new passwords differ")
        sessions.change_password(station_of(request), session, form.get("current_password", ""), new)
    except OpenLineError as exc:
        return render(request, "password.html", status=exc.status, session=session, error=exc.detail)
    return redirect("/")


# The watch board ---------------------------------------------------------------------


def _board(request: Request, session: Session) -> dict[str, Any]:
    station = station_of(request)
    who = session.principal
    content = who.can(Permission.READ_CONTENT)
    # Every call ringing here is counted, and the most urgent are shown, however many calls
    # came after them: the recent calls are another list.
    ringing, ringing_total = calls.ringing(station, limit=RINGING_SHOWN, content=content)
    recent = calls.list_calls(station, limit=50, content=content)
    roster = rosters.roster_view(station)
    waiting, waiting_total = notice_view.awaiting_answer(station, content=content, limit=NOTICES_SHOWN)
    return {
        "session": session,
        "can_work": who.can(Permission.WORK_CALLS),
        "ringing": ringing,
        "ringing_total": ringing_total,
        "recent": [c for c in recent if not (c["state"] == "ringing" and c["direction"] == "in")],
        "lines": lines.list_lines(station),
        "on_duty": roster["on_duty"],
        "next_handover": roster["next_handover"],
        "on_duty_after_handover": roster["on_duty_after_handover"],
        "alerts": alerts.most_urgent_open(station, ALERTS_SHOWN),
        "alerts_total": sum(alerts.open_counts(station).values()),
        # Lines with an open line_down alert: marked on the board and in the page title.
        "down": _alerted_down(station),
        "handovers": _handovers(
            station,
            handover.list_handovers(station, content=content, pending_only=True, limit=5),
            [*ringing, *recent],
            content=content,
        ),
        "notices": waiting,
        "notices_total": waiting_total,
    }


RINGING_SHOWN = 100  # the rest are counted, with a link to all of them
NOTICES_SHOWN = 10  # notices waiting for our answer on the board; the notices page has them all
ALERTS_SHOWN = 20


def _alerted_down(station: Station) -> set[str]:
    """The peers whose line has an open `line_down` alert."""
    return {a["detail"].get("peer") for a in alerts.open_of_kind(station, line_health.KIND)}


@router.get("/")
def board_page(request: Request) -> HTMLResponse:
    session = session_of(request)
    return render(request, "board.html", **_board(request, session))


@router.get("/board")
def board_part(request: Request) -> HTMLResponse:
    session = session_of(request)
    return render(request, "_board.html", **_board(request, session))


@router.get("/ringing")
def ringing_part(request: Request) -> HTMLResponse:
    """Every page's header count of the calls ringing here (the board has its own)."""
    session_of(request)
    return render(
        request, "_ringing.html", ringing_total=calls.ringing_count(station_of(request)), ringing_live=True
    )


@router.post("/calls")
async def place_call(request: Request) -> Response:
    session, form = await posted(request)
    session.principal.require(Permission.WORK_CALLS)
    station = station_of(request)
    asked = {k: form.get(k, "") for k in ("peer", "subject", "priority")}
    try:
        call_id, _ = idempotency.run(
            station,
            once_of(session, form, "/calls", asked),
            lambda once: calls.place(
                station, session.principal.name, asked["peer"], asked["subject"], asked["priority"], once=once
            ),
        )
    except OpenLineError as exc:
        context = _board(request, session)
        kept = {"subject": form.get("subject", "")}
        return render(request, "board.html", status=exc.status, error=exc.detail, kept=kept, **context)
    return redirect(f"/calls/{call_id}")


# One call ----------------------------------------------------------------------------


# A call's page shows its newest messages and events, unless asked for all (`?all=1`): it
# re-renders on every change to the call, and each message is opened to be shown (a call
# of 1,000 messages took 0.4 s a render, for every officer watching it, at every message).
CALL_PAGE_NEWEST = 200


def _call(request: Request, session: Session, call_id: str) -> dict[str, Any]:
    who = session.principal
    who.require(Permission.VIEW)
    station = station_of(request)
    everything = request.query_params.get("all") == "1"
    call = calls.show_call(
        station,
        call_id,
        content=who.can(Permission.READ_CONTENT),
        newest=None if everything else CALL_PAGE_NEWEST,
    )
    line = next((x for x in lines.list_lines(station) if x["peer"] == call["peer"]), None)
    return {
        "session": session,
        "call": call,
        "can_work": who.can(Permission.WORK_CALLS),
        "everything": everything,
        "undelivered": _undelivered(station, call, line),
        "line_down": _line_down(station, call, line),
    }


def _undelivered(
    station: Station, call: dict[str, Any], line: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The line of one of our calls that has not reached the peer yet, once that is worth
    saying (the peer refused or did not answer, or `line_down_after_s` has passed): the
    officer who placed it must know to use the fallback procedure."""
    if call["direction"] != "out" or call["state"] != "placed" or call["refused"]:
        return None  # a call the peer refused is said otherwise: it will never go
    waited = station.clock.now() - parse_rfc3339(call["placed_at"])
    if line is None or not (line["last_error"] or waited >= station.line_down_after_s * MICROS):
        return None
    return line


def _line_down(station: Station, call: dict[str, Any], line: dict[str, Any] | None) -> dict[str, Any] | None:
    """The line of a call not yet ended while it is down: what is said on the call is not
    reaching the other side, and the officer on it must use the fallback procedure. Down
    by the rule that raises `line_down` (something sent has waited `line_down_after_s`
    for the peer's receipt), or while its `line_down` alert is open and the line's own
    check still fails (a silent line). Not once the line is back, even before someone
    acknowledges the alert."""
    if line is None or State(call["state"]) in TERMINAL:
        return None
    waiting = line["waiting_since"]
    if (
        waiting is not None
        and station.clock.now() - parse_rfc3339(waiting) >= station.line_down_after_s * MICROS
    ):
        return line
    if line["last_error"] and call["peer"] in _alerted_down(station):
        return line
    return None


# A call action that lost a race (two officers pressing Pick up at once, the peer closing
# the call as a message is sent) is said on the call's own page, after a redirect, so that
# a reload does not post it again: what was done first, by whom and when, and that nothing
# changed. Each action, and the events in the call's log that leave it nothing to do.
_ANSWERED = ("picked_up", "declined", "missed", "cancelled")
_OVERTAKEN_BY = {
    "pickup": _ANSWERED,
    "decline": _ANSWERED,
    "cancel": _ANSWERED,
    "close": ("closed",),
    "messages": ("closed",),
}
_DONE = {
    "picked_up": "picked this call up",
    "declined": "declined this call",
    "cancelled": "cancelled this call",
    "closed": "closed this call",
}


def _overtaken(station: Station, user: str, call: dict[str, Any], action: str | None) -> str | None:
    """Why `user`'s `action` on `call` was refused, if someone else's action came first;
    None if nothing did."""
    ends = _OVERTAKEN_BY.get(action or "", ())
    first = next((e for e in call["events"] if e["event"] in ends), None)
    if first is not None and first["event"] == "missed":
        said = f"Nobody picked this call up within its answer deadline: it was missed at {_hms(first['at'])}."
    elif first is not None:
        done, at = _DONE[first["event"]], _hms(first["at"])
        actor = first["actor"]
        if first["event"] == "picked_up" and call["picked_up_by"]:
            by = call["picked_up_by"]  # station:user, on whichever side picked it up
        elif actor.startswith("station:"):  # the peer's station
            by = actor.removeprefix("station:")
        else:  # an officer here
            by = f"{station.name}:{actor}"
        mine = by == f"{station.name}:{user}"
        said = f"You {done} already, at {at}." if mine else f"Someone else {done} first: {by} at {at}."
    elif (
        action in ("pickup", "decline")
        and call["state"] == "ringing"
        and call["deadline_at"]
        and (parse_rfc3339(call["deadline_at"]) <= station.clock.now())
    ):  # the deadline passed and the timer loop has not yet marked it missed
        said = f"Too late: this call's answer deadline passed at {_hms(call['deadline_at'])}; it is missed."
    else:
        return None
    return said + (
        " Your message was not sent; nothing changed." if action == "messages" else " Nothing changed."
    )


def _hms(at: str) -> str:
    return at[11:19] + "Z"


@router.get("/calls/{call_id}")
def call_page(request: Request, call_id: str) -> HTMLResponse:
    session = session_of(request)
    context = _call(request, session, call_id)
    refused = request.query_params.get("refused")
    overtaken = _overtaken(station_of(request), session.principal.name, context["call"], refused)
    return render(request, "call.html", overtaken=overtaken, refused=refused, **context)


@router.get("/calls/{call_id}/live")
def call_part(request: Request, call_id: str) -> HTMLResponse:
    session = session_of(request)
    return render(request, "_call.html", **_call(request, session, call_id))


@router.post("/calls/{call_id}/{action}")
async def call_action(request: Request, call_id: str, action: str) -> Response:
    session, form = await posted(request)
    session.principal.require(Permission.WORK_CALLS)
    station, actor = station_of(request), session.principal.name
    if action == "close" and form.get("unsent", "").strip() and form.get("discard") != "1":
        # One press away from Send, Close would end the call and lose what is typed.
        kept = {"text": form["unsent"], "summary": form.get("summary", "")}
        why = (
            "A message is typed and not sent: send it first, or close without sending it. "
            "The call is still open."
        )
        context = _call(request, session, call_id)
        return render(request, "call.html", status=409, error=why, kept=kept, unsent=True, **context)
    try:
        if action == "pickup":
            calls.pickup(station, actor, call_id)
        elif action == "messages":
            text = form.get("text", "")
            idempotency.run(
                station,
                once_of(session, form, f"/calls/{call_id}/messages", {"text": text}),
                lambda once: calls.say(station, actor, call_id, text, once=once),
            )
        elif action == "close":
            calls.close(station, actor, call_id, form.get("summary") or None)
        elif action == "decline":
            calls.decline(station, actor, call_id, form.get("reason") or None)
        elif action == "cancel":
            calls.cancel(station, actor, call_id)
        else:
            raise InvalidInput(f"no action {action!r}")
    except OpenLineError as exc:
        context = _call(request, session, call_id)
        if isinstance(exc, IllegalTransition) and _overtaken(station, actor, context["call"], action):
            return redirect(f"/calls/{call_id}?refused={action}")
        kept = {k: form[k] for k in ("text", "summary", "reason") if k in form}
        return render(request, "call.html", status=exc.status, error=exc.detail, kept=kept, **context)
    return redirect(f"/calls/{call_id}")


@router.post("/alerts/{alert_id}/ack")
async def ack_alert(request: Request, alert_id: RowId) -> Response:
    session, _ = await posted(request)
    session.principal.require(Permission.WORK_CALLS)
    alerts.acknowledge_alert(station_of(request), session.principal.name, alert_id)
    return redirect("/#alerts")  # back at the alerts, not the top of the board


def _handovers(
    station: Station, pending: list[dict[str, Any]], shown: list[dict[str, Any]], *, content: bool
) -> list[dict[str, Any]]:
    """The handovers to acknowledge, each open call in its snapshot with its subject (a
    call the board does not already show is looked up), flash first, as the board orders
    the ringing calls."""
    known = {c["id"]: c for c in shown}
    rank = {p: i for i, p in enumerate(PRIORITIES)}

    def board_order(call: dict[str, Any]) -> tuple[int, int, str]:
        since = call["ringing_at"] or call["placed_at"]
        return rank.get(call["priority"], len(rank)), parse_rfc3339(since), call["id"]

    for h in pending:
        listed = []
        for item in h["open_items"]["calls"]:
            if item["id"] not in known:
                known[item["id"]] = calls.show_call(station, item["id"], content=content)
            listed.append({**known[item["id"]], "state": item["state"]})  # its state when handed over
        h["open_items"] = {**h["open_items"], "calls": sorted(listed, key=board_order)}
    return pending


@router.post("/handovers")
async def hand_over(request: Request) -> Response:
    session, form = await posted(request)
    session.principal.require(Permission.WORK_CALLS)
    try:
        handover.hand_over(station_of(request), session.principal.name, form.get("note", ""))
    except OpenLineError as exc:
        kept = {"note": form.get("note", "")}
        context = _board(request, session)
        return render(request, "board.html", status=exc.status, error=exc.detail, kept=kept, **context)
    return redirect("/")


@router.post("/handovers/{handover_id}/ack")
async def ack_handover(request: Request, handover_id: RowId) -> Response:
    session, _ = await posted(request)
    session.principal.require(Permission.WORK_CALLS)
    try:
        handover.acknowledge_handover(station_of(request), session.principal.name, handover_id)
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
    session = session_of(request)
    who = session.principal
    who.require(Permission.VIEW)
    context: dict[str, Any] = {"session": session, "lines": lines.list_lines(station_of(request))}
    try:
        where, chosen = _filter(request)
        rows = calls.list_calls(
            station_of(request), limit=HISTORY_LIMIT, content=who.can(Permission.READ_CONTENT), where=where
        )
        total = calls.count_calls(station_of(request), where)
    except (InvalidInput, NotFound) as exc:  # NotFound: a peer we have no line to
        return render(request, "history.html", status=exc.status, error=exc.detail, calls=[], chosen={},
                      total=0, **context)  # fmt: skip
    return render(request, "history.html", calls=rows, total=total, csv_limit=CSV_LIMIT, chosen=chosen,
                  csv_query=request.url.query, **context)  # fmt: skip


def _csv_cell(value: Any) -> str:
    """Text for a spreadsheet: a cell that starts like a formula is quoted as text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/history.csv")
def history_csv(request: Request) -> Response:
    session = session_of(request)
    who = session.principal
    who.require(Permission.VIEW)
    where, _ = _filter(request)
    rows = calls.list_calls(
        station_of(request), limit=CSV_LIMIT, content=who.can(Permission.READ_CONTENT), where=where
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for row in rows:
        writer.writerow([_csv_cell(row[field]) for field in CSV_FIELDS])
    name = f"openline-{station_of(request).name}-calls.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/roster")
def roster_page(request: Request) -> HTMLResponse:
    session = session_of(request)
    session.principal.require(Permission.VIEW)
    station = station_of(request)
    return render(request, "roster.html", session=session, **rosters.roster_week(station))


# The transparency report and the ledger: metadata only, for every role ----------------


@router.get("/report")
def report_page(request: Request) -> HTMLResponse:
    session = session_of(request)
    session.principal.require(Permission.VIEW)
    station = station_of(request)
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
    with station_of(request).db.read() as conn:
        return {"session": session, "ledger": ledger_view.status(conn)}


@router.get("/ledger")
def ledger_page(request: Request) -> HTMLResponse:
    session = session_of(request)
    return render(request, "ledger.html", **_ledger(request, session))


@router.get("/ledger/live")
def ledger_part(request: Request) -> HTMLResponse:
    session = session_of(request)
    return render(request, "_ledger.html", **_ledger(request, session))


@router.get("/proofs/{subject_id}.json")
def proof_download(request: Request, subject_id: str) -> Response:
    """The proof of a call or a notice (`openline prove`), as a file to hand over and check
    with `openline verify`. What cannot be proved yet (a log not cosigned up to it, a
    draft) is said on the ledger page, with the status the API gives."""
    session = session_of(request)
    session.principal.require(Permission.VIEW)
    station = station_of(request)
    try:
        proof = evidence.prove(station, subject_id)
    except OpenLineError as exc:
        context = _ledger(request, session)
        return render(request, "ledger.html", status=exc.status, error=exc.detail, **context)
    what = "notice" if "notice" in proof else "call"
    name = f"openline-{station.name}-{what}-{re.sub(r'[^0-9A-Za-z-]', '_', subject_id)}-proof.json"
    return Response(
        json.dumps(proof, indent=2) + "\n",
        media_type="application/json",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


# Live updates ------------------------------------------------------------------------


@router.get("/events")
def events(request: Request) -> StreamingResponse:
    session = session_of(request)
    station = station_of(request)
    server = getattr(request.app.state, "server", None)

    def stopping() -> bool:
        return bool(server is not None and server.should_exit)

    def session_ended() -> bool:
        """Logged out, expired, or ended by an administrator. A database out of reach ends
        nothing: the page already says so."""
        try:
            sessions.session_of(station, session.token)
        except Unauthorized:
            return True
        except OpenLineError:
            return False
        return False

    return StreamingResponse(
        hub_of(request).stream(stopping, session_ended),
        media_type="text/event-stream",
        headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"},
    )


@router.get("/session")
def session_left(request: Request) -> JSONResponse:
    """How long the browser's session has left, and its CSRF token: asked by a console page
    before it warns or ends itself (a login in another tab gave the browser a new session)
    and when its event stream is refused (`unauthorized`: the session has ended)."""
    try:
        session = session_of(request)
    except LoginRequired:
        raise Unauthorized("the session has ended; log in again") from None
    return JSONResponse(
        {"left_s": session_left_s(request, session), "csrf": session.csrf}, headers=SECURITY_HEADERS
    )
