"""The console's administration page (`/admin`): people (add, disable, enable, reset a
password) and pages (a test page, the latest pages and their outcome) for
administrators; lines (pin a peer's card with the line's terms, a moved
peer's new card, an escalation policy per line) for whoever may manage lines. The same
use cases as `openline user ...`, `openline notify test`, `openline line add|update`
and `openline policy set`; a
refusal is shown on the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from openline.console.pages import json_field, posted, render, session_of, station_of
from openline.core.encoding import digits
from openline.errors import InvalidInput, OpenLineError
from openline.services import accounts, line_terms, lines, paging, watch
from openline.services.accounts import Permission, Role
from openline.services.sessions import Session

router = APIRouter(include_in_schema=False)


def _admin(request: Request, session: Session, **extra: Any) -> dict[str, Any]:
    who = session.principal
    if not (who.can(Permission.MANAGE_USERS) or who.can(Permission.MANAGE_LINES)):
        who.require(Permission.MANAGE_USERS)  # raises, naming the roles that may
    station = station_of(request)
    people: list[Any] = []
    pages: list[dict[str, Any]] = []
    if who.can(Permission.MANAGE_USERS):
        with station.db.read() as conn:
            people = accounts.list_users(conn)
        pages = paging.list_notifications(station, paging.NotificationFilter(limit=20))
    line_list = lines.list_lines(station)
    policies = {
        line["peer"]: json.dumps(watch.show_policy(station, line["peer"])["policy"], indent=2)
        for line in line_list
    }
    return {
        "session": session,
        "users": people,
        "pages": pages,
        "lines": line_list,
        "policies": policies,
        "roles": [r.value for r in Role],
        "can_users": who.can(Permission.MANAGE_USERS),
        "can_lines": who.can(Permission.MANAGE_LINES),
        "card": json.dumps(station.card.to_json(), indent=2),
        **extra,
    }


@router.get("/admin")
def admin_page(request: Request) -> HTMLResponse:
    session = session_of(request)
    return render(request, "admin.html", **_admin(request, session))


async def _admin_action(request: Request, permission: Permission) -> tuple[Session, dict[str, str]]:
    session, form = await posted(request)
    session.principal.require(permission)
    return session, form


def _admin_result(
    request: Request, session: Session, done: Callable[[], str], kept: dict[str, str] | None = None
) -> HTMLResponse:
    """The page with what `done` says, or with why it was refused and what was typed
    (`kept`) back in the form."""
    try:
        message = done()
    except OpenLineError as exc:
        context = _admin(request, session, kept=kept or {})
        return render(request, "admin.html", status=exc.status, error=exc.detail, **context)
    return render(request, "admin.html", message=message, **_admin(request, session))


@router.post("/admin/users")
async def admin_add_user(request: Request) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_USERS)
    station = station_of(request)

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

    # Refused (a name taken, an address mistyped): what was typed stays, to correct.
    kept = {k: form.get(k, "") for k in ("name", "role", "email")}
    return _admin_result(request, session, done, kept)


@router.post("/admin/users/{name}/{action}")
async def admin_user_action(request: Request, name: str, action: str) -> HTMLResponse:
    session, _ = await _admin_action(request, Permission.MANAGE_USERS)
    station, actor = station_of(request), session.principal.name

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


@router.post("/admin/test-page")
async def admin_test_page(request: Request) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_USERS)
    station = station_of(request)

    def done() -> str:
        rows = paging.send_test(station, session.principal.name, form.get("targets", "").split())
        to = ", ".join(f"{r['recipient']} ({r['channel']})" for r in rows)
        return f"Test page sent to {to}. Its outcome shows under Latest pages: reload in a few seconds."

    return _admin_result(request, session, done)


# The "add a line" form's fields for the line's terms (`lines.Terms` attributes): what each
# is, and whether it is whole. An empty field is the default.
_TERM_FIELDS = {
    "notice_deadline_s": ("notice deadline: whole seconds", True),
    "margin_horizontal_m": ("horizontal margin: metres", False),
    "margin_vertical_m": ("vertical margin: metres", False),
    "margin_minutes": ("time margin: whole minutes", True),
}


# The "propose new terms" form's fields: every line term, the answer deadline too.
_PROPOSED_FIELDS = {"answer_deadline_s": ("answer deadline: whole seconds", True), **_TERM_FIELDS}


def _whole(text: str, what: str) -> int:
    if not digits(text):
        raise InvalidInput(f"{what}, got {text!r:.40}")
    return int(text)


def _typed_terms(form: dict[str, str], fields: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """The line terms typed into a form, by name (an empty field is left out); the use
    case checks their bounds."""
    values: dict[str, Any] = {}
    for field, (what, whole) in fields.items():
        text = form.get(field, "").strip()
        if not text:
            continue
        try:
            values[field] = _whole(text, what) if whole else float(text)
        except ValueError:
            raise InvalidInput(f"{what}, got {text!r:.40}") from None
    return values


def _line_terms(form: dict[str, str]) -> lines.Terms:
    return lines.Terms(**_typed_terms(form, _TERM_FIELDS))


@router.post("/admin/lines")
async def admin_add_line(request: Request) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_LINES)
    station = station_of(request)

    def done() -> str:
        card = json_field(form, "card")
        deadline = form.get("answer_deadline_s", "").strip()
        peer = lines.add_line(
            station,
            card,
            answer_deadline_s=_whole(deadline, "answer deadline: whole seconds") if deadline else None,
            terms=_line_terms(form),
            actor=session.principal.name,
        )
        failed = lines.try_handshake(station, request.app.state.transport, peer)
        if failed is not None:
            return f"Pinned {peer}; the line is pending: {failed}"
        return f"Pinned {peer}; compare its fingerprint with the peer out of band."

    return _admin_result(request, session, done)


@router.post("/admin/lines/{peer}/card")
async def admin_update_card(request: Request, peer: str) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_LINES)
    station = station_of(request)

    def done() -> str:
        lines.update_card(station, peer, json_field(form, "card"), actor=session.principal.name)
        line = next(x for x in lines.list_lines(station) if x["peer"] == peer)
        return f"{peer} is now reached at {line['peer_url']}; its fingerprint is unchanged."

    return _admin_result(request, session, done)


@router.post("/admin/lines/{peer}/suspend")
async def admin_suspend_line(request: Request, peer: str) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_LINES)
    station = station_of(request)

    def done() -> str:
        lines.suspend(station, peer, form.get("reason", ""), actor=session.principal.name)
        return f"The line with {peer} is suspended: nothing from {peer} is taken and nothing is sent to it."

    return _admin_result(request, session, done, {"suspend": peer, "reason": form.get("reason", "")})


@router.post("/admin/lines/{peer}/resume")
async def admin_resume_line(request: Request, peer: str) -> HTMLResponse:
    session, _ = await _admin_action(request, Permission.MANAGE_LINES)
    station = station_of(request)

    def done() -> str:
        lines.resume(station, peer, actor=session.principal.name)
        failed = lines.try_handshake(station, request.app.state.transport, peer)
        if failed is not None:
            return f"The line with {peer} is resumed; the handshake failed: {failed}"
        return f"The line with {peer} is resumed and {peer} answered."

    return _admin_result(request, session, done)


@router.post("/admin/lines/{peer}/terms")
async def admin_propose_terms(request: Request, peer: str) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_LINES)
    station = station_of(request)

    def done() -> str:
        changes = _typed_terms(form, _PROPOSED_FIELDS)
        transport = request.app.state.transport
        proposed = line_terms.propose(station, transport, peer, changes, actor=session.principal.name)
        if proposed.outcome == "adopted":
            return f"New terms adopted by both stations of the line with {peer}."
        if proposed.outcome == "withdrawn":
            return f"Proposal to {peer} withdrawn; the line keeps its terms."
        return f"New terms proposed to {peer}; not adopted yet: {proposed.why}"

    return _admin_result(request, session, done)


@router.post("/admin/lines/{peer}/policy")
async def admin_set_policy(request: Request, peer: str) -> HTMLResponse:
    session, form = await _admin_action(request, Permission.MANAGE_LINES)
    station = station_of(request)

    def done() -> str:
        policy = json_field(form, "policy")
        watch.set_policy(station, session.principal.name, peer, policy)
        return f"Escalation policy of the line with {peer} saved; calls already ringing keep theirs."

    return _admin_result(request, session, done)
