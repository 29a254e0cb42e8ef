"""What every console route shares: the session and its CSRF check, reading a form,
rendering a template with the security headers, and the redirect after a POST."""

from __future__ import annotations

import secrets
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from openline.console.live import Hub
from openline.core.calls import event_why
from openline.core.clock import MICROS
from openline.core.encoding import parse_json, visible
from openline.errors import (
    CsrfRefused,
    DatabaseDamaged,
    DatabaseUnavailable,
    InvalidInput,
    OpenLineError,
    Unauthorized,
)
from openline.services import calls, idempotency, sessions
from openline.services.sessions import Session
from openline.services.station import Station

COOKIE = "openline_session"
# The longest text a form sends (a message or a notice's text, 8,000 characters) may be
# 8,000 emoji: 32,000 bytes of UTF-8, 96,000 once form-encoded. The station counts its
# characters and says when there are too many: the form must get that far.
MAX_FORM_BYTES = 128 * 1024
MAX_FORM_FIELDS = 20
STATIC_DIR = files("openline.console") / "static"


class _Exact(str):
    """Text put back into a form field as it stands (`|exact`): what the officer typed,
    kept when the station refused it. Spelled out, the spelling would be sent in its place.
    Escaped like any other text."""


def _exact(value: Any) -> _Exact:
    return _Exact("" if value is None else value)


def _shown(value: Any) -> Any:
    """Every `{{ ... }}` of every console page, before it is escaped (Jinja's `finalize`):
    text with its control characters and bidirectional embeddings, overrides and isolates
    spelled out (\\u202e), as the CLI shows them (`encoding.visible`). Subjects, messages,
    summaries, reasons and notice texts come from a peer, and an override shows
    "grid \\u202e41-EE" as "grid EE-14": what is shown must be what was sent. A browser
    sends a line break as CR LF, and HTML reads CR LF as a line break: one, not spelled.
    Markup (a macro's output, `tojson`) was made here and is left alone."""
    if isinstance(value, str) and not isinstance(value, (Markup, _Exact)):
        return visible(value.replace("\r\n", "\n"))
    return value


_ENV = Environment(
    loader=PackageLoader("openline.console", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=_shown,
)
_ENV.globals["event_why"] = event_why
# A form that makes something (a call, a message) carries a key of its own, as an API
# client's Idempotency-Key: sent twice (a double click, a browser resending it), it makes
# one. `routes.once_of` reads it.
_ENV.globals["form_once"] = lambda: secrets.token_urlsafe(16)
_ENV.filters["exact"] = _exact

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


class LoginRequired(Exception):
    """No live session: the browser is sent to the login page."""


def page_after_login(asked: str | None) -> str | None:
    """The console page to go back to after logging in (`next`, from the page whose
    session ended), or None: only a path of this station's own (never `//elsewhere` or a
    URL: the login page must not send an officer to another site), and not the login
    page itself."""
    if not asked or len(asked) > 2000 or not asked.startswith("/") or asked.startswith(("//", "/\\")):
        return None
    path = asked.split("?")[0]
    if any(ord(c) < 0x21 or c == "\\" for c in asked) or path in ("/login", "/logout"):
        return None
    if path.startswith(_NOT_PAGES) or path.endswith((".csv", ".json")):  # a download, a stream, the API
        return None
    return asked


def station_of(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    session = context.get("session")
    if session is not None and not session.must_change_password and not name.startswith("_"):
        # Every page counts the calls ringing here, in its header and its title, and
        # sounds the alarm for them: an officer reading the history or the map must not
        # miss a call. The board keeps its count in its own live region.
        context.setdefault("ringing_total", calls.ringing_count(station_of(request)))
        context["ringing_live"] = name != "board.html"
        # Seconds until the session ends, by the station's clock: the page warns before
        # and goes to the login page at the end, rather than at the next change.
        context["session_left_s"] = session_left_s(request, session)
    # What a refused form had typed, put back into it (`|exact`): the officer reads why,
    # and sends it again changed, without typing it all again.
    context.setdefault("kept", {})
    html = _ENV.get_template(name).render(request=request, station=station_of(request).name, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def session_left_s(request: Request, session: Session) -> int:
    """Whole seconds until the session ends, by the station's clock."""
    return max(0, (session.expires_at - station_of(request).clock.now()) // MICROS)


# Paths that are not the console's pages: the APIs, the station-to-station endpoints, the
# event stream, static files, and the operators' endpoints.
_NOT_PAGES = ("/api/", "/_openline/", "/events", "/static/", "/metrics", "/healthz", "/openapi.json")


def wants_page(request: Request) -> bool:
    """Whether a browser navigated here and expects a page, not a document or a fragment."""
    return (
        request.method == "GET"
        and not request.headers.get("hx-request")
        and "text/html" in request.headers.get("accept", "")
        and not request.url.path.startswith(_NOT_PAGES)
    )


def posted_form(request: Request) -> bool:
    """Whether a console form was posted here (a plain HTML form, not htmx, not the API)."""
    form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    return (
        request.method == "POST"
        and not request.headers.get("hx-request")
        and (form or "text/html" in request.headers.get("accept", ""))
        and not request.url.path.startswith(_NOT_PAGES)
    )


# Where a refused form or page sends the officer back to, besides the board.
_BACK = (("/calls/", "the call"), ("/notices", "the notices"), ("/admin", "the administration"))


def refused(request: Request, exc: OpenLineError) -> HTMLResponse:
    """The page an officer gets when the console refuses what they asked (a stale form, an
    alert acknowledged by someone else meanwhile, a page their role may not see): the
    reason, that nothing changed, and the way back; not the API's problem document."""
    try:
        session: Session | None = session_of(request, allow_password_change=True)
    except (LoginRequired, OpenLineError):  # not logged in, or no database to ask
        session = None
    path = request.url.path
    back, back_to = next(
        ((_back_path(path, prefix), name) for prefix, name in _BACK if path.startswith(prefix)), (None, "")
    )
    return render(
        request,
        "refused.html",
        status=exc.status,
        session=session,
        title=exc.title,
        detail=exc.detail,
        code=exc.code.value,
        back=back,
        back_to=back_to,
    )


def _back_path(path: str, prefix: str) -> str:
    """The page a refused form came from: a call's page for its actions, else the section."""
    if prefix == "/calls/":
        call = path[len(prefix) :].split("/", 1)[0]
        return prefix + call
    return prefix


def unavailable(request: Request, exc: DatabaseUnavailable, retry_s: int) -> HTMLResponse:
    """The page a browser gets while the station cannot reach its database: what is wrong,
    what it means for the line, and a reload every `retry_s` seconds until it is back."""
    damaged = isinstance(exc, DatabaseDamaged)
    response = render(
        request, "unavailable.html", status=503, reason=exc.reason, retry=retry_s, damaged=damaged
    )
    response.headers["Retry-After"] = str(retry_s)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    body = await request.body()
    if len(body) > max_bytes:
        raise InvalidInput(f"form: at most {max_bytes} bytes, got {len(body)}: a text in it is far too long")
    try:
        fields = parse_qs(
            body.decode(), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"form: {exc}") from None
    # A browser sends a textarea's line breaks as CR LF (HTML's form submission), whatever
    # was typed: kept so, every line of a message read as ending in a control character
    # (`openline show` spells it out, `\x0d`). What was typed was a line break.
    return {k: v[0].replace("\r\n", "\n") for k, v in fields.items()}


def session_of(request: Request, *, allow_password_change: bool = False) -> Session:
    try:
        session = sessions.session_of(station_of(request), request.cookies.get(COOKIE))
    except Unauthorized:
        raise LoginRequired from None
    if session.must_change_password and not allow_password_change:
        raise LoginRequired("password")
    return session


async def posted(
    request: Request, *, allow_password_change: bool = False, max_bytes: int = MAX_FORM_BYTES
) -> tuple[Session, dict[str, str]]:
    """The session and form of a POST, after checking its CSRF token."""
    session = session_of(request, allow_password_change=allow_password_change)
    form = await read_form(request, max_bytes)
    token = form.get("csrf") or request.headers.get("x-csrf-token")
    if token != session.csrf:
        raise CsrfRefused("this form is stale or came from another site; reload the page and try again")
    return session, form


def json_field(form: dict[str, str], name: str) -> Any:
    """A form field that holds a JSON document (a card, a policy, a notice), or `invalid_input`."""
    try:
        return parse_json(form.get(name, ""))
    except ValueError as exc:
        raise InvalidInput(f"{name}: not JSON: {exc}") from None


def once_of(
    session: Session, form: dict[str, str], path: str, asked: dict[str, Any]
) -> idempotency.Once | None:
    """The key a console form carries (`form_once`), as an API client's Idempotency-Key:
    the same form sent twice makes one call or message."""
    key = form.get("once")
    return idempotency.once(session.principal.user_id, key, "POST", path, asked) if key else None
