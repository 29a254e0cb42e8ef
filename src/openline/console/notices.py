"""The console's notices: the map and the history (`/notices`, its live part
`/notices/live`), which notices covered a place (`/notices/place`), the notice form
(shapes drawn on the map or a pasted notice file, sent or saved as a draft), the buttons
that acknowledge, reject, withdraw, amend, send, edit or discard a draft and request a
protected site's removal, and the watch board's list of notices waiting for our
acknowledgement.

Every button is the same use case as `openline notice ...` (`services.notices`), shown
only where the station would accept it from this side (the notice's `actions`, found by
the checks the use cases make); the station checks again, and a refusal is shown on the
page.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from openline.console.pages import json_field, once_of, posted, redirect, render, session_of, station_of
from openline.core import notices as nm
from openline.core.clock import MICROS, rfc3339
from openline.errors import IllegalTransition, InvalidInput, OpenLineError
from openline.services import idempotency, lines, notice_view, notices
from openline.services.accounts import Permission
from openline.services.sessions import Session
from openline.services.station import Station

NOTICE_LIMIT = 500  # the history's newest
# Older notices in force drawn besides them, protected sites first: each costs about a
# millisecond to render (300 notices, 370 ms), and the page refreshes on every change.
MAP_LIMIT = 1000
MAP_DAYS = 7  # the time slider runs from now to now + MAP_DAYS
RFC3339_UTC = "%Y-%m-%dT%H:%M:%SZ"
# A notice's body may hold 48 KiB (services.notices.MAX_BODY); form-encoding JSON can
# triple it, so its form may be larger than others.
NOTICE_FORM_BYTES = 256 * 1024
# The notice form's own fields: they build the document in the browser and are kept,
# as typed, when the station refuses the notice. The station reads only `notice`.
BUILDER_FIELDS = ("category", "text", "alt_lower", "alt_upper", "alt_units", "time_start", "time_end")
# The place page's fields: those of `GET /api/v1/notices?at=...`.
PLACE_FIELDS = ("at", "radius_m", "when", "altitude_m")
PLACE_FIELD_MAX = 60
# A time as the notice form reads it (static/notices.js): without an offset, UTC.
_TYPED_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}:\d{2})?", re.I
)
# Each button and the notice's `actions` entry (services.notices) it stands for.
_BUTTONS = {
    "ack": "acknowledge",
    "reject": "reject",
    "withdraw": "withdraw",
    "amend": "amend",
    "send": "send",
    "edit": "edit",
    "discard": "discard",
    "remove": "remove",
}

router = APIRouter(include_in_schema=False)


def actions(notice: dict[str, Any]) -> frozenset[str]:
    """The buttons a notice has for someone who works calls: those whose action the
    station would accept from this side now."""
    allowed = set(notice.get("actions") or ())
    return frozenset(name for name, action in _BUTTONS.items() if action in allowed)


def _default_fields(station: Station) -> dict[str, str]:
    """The form's starting values: 0 to 1,000 m, from the next full hour for three hours."""
    now = datetime.fromtimestamp(station.clock.now() / MICROS, UTC)
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return {
        "category": "air_operation",
        "text": "",
        "alt_lower": "0",
        "alt_upper": "1000",
        "alt_units": "m",
        "time_start": start.strftime(RFC3339_UTC),
        "time_end": (start + timedelta(hours=3)).strftime(RFC3339_UTC),
    }


def _context(request: Request, session: Session, **extra: Any) -> dict[str, Any]:
    who = session.principal
    who.require(Permission.VIEW)
    station = station_of(request)
    content = who.can(Permission.READ_CONTENT)
    rows = notice_view.list_notices(station, content=content, limit=NOTICE_LIMIT)
    # The map draws every notice in force, however old, besides the history's newest.
    older, older_total = notice_view.in_force(
        station, content=content, limit=MAP_LIMIT, besides=[n["id"] for n in rows]
    )
    return {
        "session": session,
        "notices": rows,
        "notices_total": notice_view.count_notices(station) if len(rows) == NOTICE_LIMIT else len(rows),
        "can_work": who.can(Permission.WORK_CALLS),
        "actions": actions,
        "peers": [line["peer"] for line in lines.list_lines(station) if line["state"] == "active"],
        "categories": nm.CATEGORIES,
        "fields": _default_fields(station),
        # Read by static/notices.js from a non-executed JSON block: the CSP stays strict.
        # Each notice with its polygons traced along their geodesic edges, as drawn.
        "map_data": {
            "now": rfc3339(station.clock.now()),
            "days": MAP_DAYS,
            "notices": notice_view.map_json(rows + older),
        },
        "not_drawn": older_total - len(older),
        **extra,
    }


def _amendment(request: Request, session: Session, notice_id: str) -> dict[str, Any]:
    """The form filled with one of our notices, to send a new version of it."""
    session.principal.require(Permission.WORK_CALLS)
    notice = notice_view.show_notice(
        station_of(request), notice_id, content=session.principal.can(Permission.READ_CONTENT)
    )
    if "amend" not in actions(notice):
        if notice["removes"] is not None:
            why = "a removal notice is acknowledged or rejected by the peer"
        elif notice["removal_pending"] is not None:
            why = f"its removal (notice {notice['removal_pending']}) is waiting for the peer's answer"
        else:
            why = f"it is {notice['direction']}bound and {notice['state']}"
        raise IllegalTransition(f"notice {notice_id} cannot be amended: {why}")
    return {"amends": notice_id, "chosen_peer": notice["peer"], "pasted": _document(notice)}


def _editing(request: Request, session: Session, notice_id: str) -> dict[str, Any]:
    """The form filled with one of our drafts, to change it in place."""
    session.principal.require(Permission.WORK_CALLS)
    notice = notice_view.show_notice(
        station_of(request), notice_id, content=session.principal.can(Permission.READ_CONTENT)
    )
    if "edit" not in actions(notice):
        raise IllegalTransition(
            f"notice {notice_id} cannot be edited: it is {notice['state']}, not our draft"
        )
    return {"edits": notice_id, "edits_amends": notice["supersedes"], "chosen_peer": notice["peer"],
            "pasted": _document(notice)}  # fmt: skip


def _document(notice: dict[str, Any]) -> str:
    """A notice as the form's JSON: the document it was sent or saved with."""
    document = {"category": notice["category"], "text": notice.get("text") or ""}
    if notice["removes"] is not None:  # a removal: no volumes
        document["removes"] = notice["removes"]
    else:
        document["extents"] = notice["extents"]
    return json.dumps(document, indent=2)


@router.get("/notices")
def notices_page(request: Request) -> HTMLResponse:
    session = session_of(request)
    amend, edit = request.query_params.get("amend"), request.query_params.get("edit")
    if not amend and not edit:
        return render(request, "notices.html", **_context(request, session))
    try:
        form = _amendment(request, session, amend) if amend else _editing(request, session, str(edit))
    except OpenLineError as exc:
        return render(
            request, "notices.html", status=exc.status, error=exc.detail, **_context(request, session)
        )
    return render(request, "notices.html", **_context(request, session, **form))


def _typed_time(text: str) -> str:
    """A time as typed into a form, as RFC 3339: `2026-11-29 10:30` (the notice form's
    reading, so that both forms on the page take the same times) is `2026-11-29T10:30:00Z`.
    Anything else is left as typed, for the station's check to name."""
    match = _TYPED_TIME.fullmatch(text)
    if match is None:
        return text
    date, minutes, seconds, offset = match.groups()
    return f"{date}T{minutes}{seconds or ':00'}{(offset or 'Z').upper()}"


def _number(text: str, what: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{what}: expected a number, got {text!r}") from None


@router.get("/notices/place")
def place_page(request: Request) -> HTMLResponse:
    """Which notices covered a place, and what had become of them by a time: the
    investigator's `openline notices --at`, on a page of its own so that it can be linked."""
    session = session_of(request)
    who = session.principal
    who.require(Permission.VIEW)
    asked = {name: request.query_params.get(name, "").strip() for name in PLACE_FIELDS}
    context: dict[str, Any] = {"session": session, "asked": asked, "found": None}
    if not any(asked.values()):
        return render(request, "place.html", **context)
    try:
        for name, value in asked.items():
            if len(value) > PLACE_FIELD_MAX:
                raise InvalidInput(f"{name}: at most {PLACE_FIELD_MAX} characters")
        asked["when"] = _typed_time(asked["when"])
        place = notice_view.place_asked(
            asked["at"] or None,
            _number(asked["radius_m"], "radius_m"),
            asked["when"] or None,
            _number(asked["altitude_m"], "altitude_m"),
        )
        assert place is not None  # something was asked, and narrowing without `at` is refused
        context["found"], context["found_total"] = notice_view.notices_at(
            station_of(request), place, content=who.can(Permission.READ_CONTENT), limit=NOTICE_LIMIT
        )
    except OpenLineError as exc:
        return render(request, "place.html", status=exc.status, error=exc.detail, **context)
    return render(request, "place.html", **context)


@router.get("/notices/live")
def notices_part(request: Request) -> HTMLResponse:
    session = session_of(request)
    return render(request, "_notices.html", **_context(request, session))


@router.post("/notices")
async def send_notice(request: Request) -> Response:
    session, form = await posted(request, max_bytes=NOTICE_FORM_BYTES)
    session.principal.require(Permission.WORK_CALLS)
    peer, amends, edits = form.get("peer", ""), form.get("amends") or None, form.get("edits") or None
    draft = form.get("draft") == "1"  # the "Save as draft" button
    station, actor = station_of(request), session.principal.name
    try:
        document = json_field(form, "notice")
        if edits is not None:  # one of our drafts, changed in place (and sent, unless saved)
            notices.edit_draft(station, actor, edits, document, send=not draft)
            notice_id = edits
        else:
            asked = {"peer": peer, "notice": document, "amends": amends, "draft": draft}
            notice_id, _ = idempotency.run(
                station,
                once_of(session, form, "/notices", asked),
                lambda once: notices.send(
                    station, actor, peer, document, amends=amends, draft=draft, once=once
                ),
            )
    except OpenLineError as exc:
        typed = {k: form[k] for k in BUILDER_FIELDS if k in form}
        kept = {"pasted": form.get("notice", ""), "chosen_peer": peer, "amends": amends, "edits": edits}
        if edits is not None:
            kept["edits_amends"] = form.get("edits_amends") or None
        context = _context(request, session, **kept)
        context["fields"] = {**context["fields"], **typed}
        return render(request, "notices.html", status=exc.status, form_error=exc.detail, **context)
    return redirect(f"/notices#notice-{notice_id}" if draft else "/notices")


def _request_removal(station: Station, actor: str, site_id: str, reason: str) -> None:
    """Send the removal notice of one of our protected sites: `notice send` with the
    document `{"category": "protected_site", "text": ..., "removes": <site>}`."""
    site = notice_view.show_notice(station, site_id, content=False)
    document = {"category": "protected_site", "text": reason, "removes": site_id}
    notices.send(station, actor, site["peer"], document)


@router.post("/notices/{notice_id}/{action}")
async def notice_action(request: Request, notice_id: str, action: str) -> Response:
    session, form = await posted(request)
    session.principal.require(Permission.WORK_CALLS)
    station, actor = station_of(request), session.principal.name
    try:
        if action == "ack":
            notices.acknowledge(station, actor, notice_id)
        elif action == "reject":
            notices.reject(station, actor, notice_id, form.get("reason", ""))
        elif action == "withdraw":
            notices.withdraw(station, actor, notice_id)
        elif action == "send":
            notices.send_draft(station, actor, notice_id)
        elif action == "discard":
            notices.discard(station, actor, notice_id)
        elif action == "remove":
            _request_removal(station, actor, notice_id, form.get("text", ""))
        else:
            raise InvalidInput(f"no action {action!r}")
    except OpenLineError as exc:
        # A reason or a removal's text that was refused stays in its form, opened.
        kept = {"notice": notice_id, "action": action, "text": form.get("reason", form.get("text", ""))}
        context = _context(request, session)
        return render(request, "notices.html", status=exc.status, error=exc.detail, kept=kept, **context)
    # Back where the officer was (the row, or the board's list), not at the top: working
    # through a backlog of 300 sites, every answer scrolled back to the start.
    if form.get("back") == "board":
        return redirect("/#notices-waiting")
    return redirect("/notices" if action == "discard" else f"/notices#notice-{notice_id}")
