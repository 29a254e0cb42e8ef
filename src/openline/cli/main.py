"""`openline`: every command takes the station home from --home or OPENLINE_HOME."""

from __future__ import annotations

import errno
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO

import typer
from rich.markup import escape
from rich.text import Text

from openline import __version__
from openline.cli.client import ApiError, StationClient, seg
from openline.cli.options import finite, time_text
from openline.cli.render import MAX_LIMIT, err, limit_reached, listing, marked, out, when
from openline.core.calls import event_why
from openline.core.encoding import parse_json, undecodable
from openline.errors import Code, OpenLineError

app = typer.Typer(
    help="OpenLine: a deconfliction hotline between stations that do not trust each other.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # a traceback is ours to read, never drawn for a user
)
line_app = typer.Typer(help="Manage lines to peer stations.", no_args_is_help=True)
app.add_typer(line_app, name="line")
user_app = typer.Typer(help="Manage the people who use this station.", no_args_is_help=True)
app.add_typer(user_app, name="user")
policy_app = typer.Typer(help="A line's escalation policy.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
alert_app = typer.Typer(help="Acknowledge alerts.", no_args_is_help=True)
app.add_typer(alert_app, name="alert")
shift_app = typer.Typer(help="Shifts on the duty roster.", no_args_is_help=True)
app.add_typer(shift_app, name="shift")
override_app = typer.Typer(help="Overrides and swaps on the duty roster.", no_args_is_help=True)
app.add_typer(override_app, name="override")
handover_app = typer.Typer(help="Hand the watch over, and acknowledge a handover.", no_args_is_help=True)
app.add_typer(handover_app, name="handover")

HomeOpt = Annotated[
    Path, typer.Option("--home", envvar="OPENLINE_HOME", help="Station home directory.", show_default=False)
]
CallArg = typer.Argument(metavar="CALL", help="The call id (from `openline calls`).")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (stable fields) instead of a table.")]
BeforeOpt = Annotated[
    int | None,
    typer.Option("--before", metavar="ID", help="The next page: those after this id (the last shown)."),
]
# Checked here against the station's bounds: a usage error (exit 2) naming --limit, not
# the station's `query.limit`.
LimitOpt = Annotated[
    int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many (1-1000), newest first.")
]


PRIORITIES = ["flash", "immediate", "priority", "routine"]
ROLES = ["administrator", "watch_officer", "senior_watch_officer", "commander", "auditor"]
WITHHELD = "[dim](withheld)[/]"  # content an auditor does not see
PRIORITY_STYLE = {"flash": "bold red", "immediate": "red", "priority": "yellow", "routine": ""}


def fail(message: str, code: str = "error") -> NoReturn:
    err.print(
        f"[bold red]error[/] ({escape(code)}): {escape(message)}",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)


_asked: list[Path] = []  # the homes whose station this command asked (`run`)


@contextmanager
def client(home: Path) -> Iterator[StationClient]:
    try:
        c = StationClient(home)
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)
    _asked.append(home)
    try:
        yield c
    except ApiError as exc:
        if exc.status == 404 and (older := c.older_station()):  # an endpoint it does not have yet
            fail(f"{exc.detail}: {older}", Code.STATION_TOO_OLD.value)
        fail(exc.detail, exc.code_text)
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)
    finally:
        c.close()


def before_last(items: list[dict[str, Any]]) -> str | None:
    """The option that lists the page after `items` (newest first, by id): `--before`."""
    return f"--before {items[-1]['id']}" if items else None


def emit(
    data: Any,
    as_json: bool,
    render: Callable[[Any], None],
    *,
    limit: int | None = None,
    next_page: Callable[[list[dict[str, Any]]], str | None] | None = before_last,
    narrow: str | None = "a filter",
) -> None:
    """`data` as JSON, or as `render` shows it. A listing cut at `limit` says so (`render`
    does, in its table's form); under --json on standard error, with the option that
    lists the next page (`next_page`, if the command has one)."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        if limit is not None:
            after = next_page(data) if next_page is not None else None
            limit_reached(len(data), limit, after, to_stderr=True, narrow=narrow)
    else:
        render(data)


def until_oldest(items: list[dict[str, Any]]) -> str | None:
    """The option that lists the calls placed before these (newest first): `--until`."""
    return f"--until {items[-1]['placed_at']}" if items else None


@app.command()
def version() -> None:
    """Print the OpenLine version."""
    out.print(__version__)


@app.command()
def init(
    home: HomeOpt,
    name: Annotated[
        str, typer.Option(help="Station name: 1-63 lowercase ASCII letters a-z, digits 0-9, '-'.")
    ],
    url: Annotated[str, typer.Option(help="Public URL peers reach this station at.")],
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="OPENLINE_DATABASE_URL", help="PostgreSQL URL instead of the home's SQLite file."
        ),
    ] = None,
    language: Annotated[list[str] | None, typer.Option(help="Languages the watch floor reads.")] = None,
) -> None:
    """Create a station home: settings, keys, database, administrator and API token."""
    from openline.adapters.db import shown_url
    from openline.services.setup import init_home

    try:
        result = init_home(home, name, url, database_url=database_url, languages=language)
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)
    out.print(f"Station [bold]{escape(name)}[/] created in {escape(str(result.home))}", markup=True)
    out.print(f"  database: {shown_url(result.database_url)}")
    out.print(f"  API token: {result.home / 'api-token'} (mode 0600; the CLI uses it)")
    out.print(
        f"  administrator: [bold]{escape(result.admin_name)}[/]  "
        f"one-time password: [bold]{escape(result.admin_password)}[/]",
        markup=True,
    )
    out.print("  This password is shown once and must be changed at first login.")
    out.print(f"Next: [bold]openline serve --home {escape(str(result.home))}[/]", markup=True)


@app.command()
def backup(
    home: HomeOpt,
    destination: Annotated[Path, typer.Argument(metavar="DEST", help="A new or empty directory.")],
) -> None:
    """Copy the station home to DEST, safely while the station runs."""
    from openline.services.backup import backup as take_backup

    try:
        result = take_backup(home, destination)
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)
    out.print(
        f"Station [bold]{escape(result.station)}[/] backed up to {escape(str(result.destination))}",
        markup=True,
        soft_wrap=True,
    )
    out.print(f"  files: {', '.join(result.files)} (mode 0600, directory 0700)", soft_wrap=True)
    if result.database_bytes is not None:
        out.print(
            f"  database: a consistent copy ({result.database_bytes:,} bytes) taken with SQLite's online "
            "backup; integrity check ok",
            soft_wrap=True,
        )
        restore = f"stop the station and run [bold]openline serve --home {escape(str(result.destination))}[/]"
    else:
        out.print(
            f"  database: PostgreSQL ({escape(result.database_url or '')}) is not in the copy: "
            "back it up with pg_dump",
            soft_wrap=True,
        )
        restore = (
            "restore the dump into a new, empty database, set database_url in "
            f"{escape(str(result.destination / 'settings.toml'))} to it, and only then run [bold]openline "
            f"serve --home {escape(str(result.destination))}[/]. As it is, the copy names the live database"
        )
    out.print(
        f"  The copy holds the station's private keys: keep it as private as the home. To restore, {restore}",
        markup=True,
        soft_wrap=True,
    )


@app.command()
def serve(
    home: HomeOpt,
    listen: Annotated[
        str | None, typer.Option(help="HOST:PORT to listen on (default: from the URL).")
    ] = None,
) -> None:
    """Run the station: HTTP API, station-to-station endpoints and background workers."""
    from openline.serve import run

    try:
        run(home, listen)
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)


@app.command()
def card(home: HomeOpt) -> None:
    """Print this station's self-signed card (JSON) to give to a peer."""
    from openline.adapters.home import load_keys
    from openline.core.card import make_card
    from openline.settings import load

    try:
        settings = load(home)
        c = make_card(load_keys(home), settings.name, [settings.url], settings.languages)
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)
    sys.stdout.write(json.dumps(c.to_json(), indent=2) + "\n")


@line_app.command("add")
def line_add(
    home: HomeOpt,
    card_file: Annotated[
        Path, typer.Argument(metavar="CARD_FILE", help="The peer's card (JSON file, or - for stdin).")
    ],
    answer_deadline: Annotated[
        int | None,
        typer.Option(
            help="Seconds a call may ring before it is missed. A line term: "
            "both stations must set the same value."
        ),
    ] = None,
    notice_deadline: Annotated[
        int, typer.Option(help="Seconds a notice may wait for its acknowledgement (60-604800). A line term.")
    ] = 3600,
    margin_horizontal: Annotated[
        float,
        typer.Option(callback=finite, help="Metres two activities must stay apart (0-100000). A line term."),
    ] = 0.0,
    margin_vertical: Annotated[
        float,
        typer.Option(
            callback=finite, help="Metres above or below each other they must stay (0-10000). A line term."
        ),
    ] = 0.0,
    margin_minutes: Annotated[
        int, typer.Option(help="Minutes apart in time they must stay (0-1440). A line term.")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Verify a peer's card, pin it, and try the handshake that makes the line active."""
    card_json = _read_card(card_file)
    with client(home) as c:
        line = c.post(
            "/lines",
            {
                "card": card_json,
                "answer_deadline_s": answer_deadline,
                "notice_deadline_s": notice_deadline,
                "margin_horizontal_m": margin_horizontal,
                "margin_vertical_m": margin_vertical,
                "margin_minutes": margin_minutes,
            },
        )

    def render(x: dict[str, Any]) -> None:
        out.print(
            f"Pinned [bold]{escape(x['peer'])}[/] — fingerprint [bold]{escape(x['peer_fingerprint'])}[/]",
            markup=True,
        )
        out.print("Compare this fingerprint with the peer out of band (voice, paper).")
        state = x["state"]
        note = "" if state == "active" else f" ({escape(str(x['handshake']))})"
        out.print(f"Line {escape(x['id'])}: [bold]{escape(state)}[/]{note}", markup=True)

    emit(line, as_json, render)


def _read_card(card_file: Path) -> Any:
    try:
        text = sys.stdin.read() if str(card_file) == "-" else card_file.read_text()
        return parse_json(text)
    except OSError as exc:
        fail(f"cannot read {card_file}: {exc.strerror}", "invalid_input")
    except ValueError as exc:
        fail(f"{card_file} is not JSON: {exc}", "bad_card")


@line_app.command(
    "update", short_help="Pin a peer's new card (the same keys, a new address): for a station that moved."
)
def line_update(
    home: HomeOpt,
    card_file: Annotated[
        Path, typer.Argument(metavar="CARD_FILE", help="The peer's new card (JSON file, or - for stdin).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Pin a peer's new card in place of the one pinned, when it is signed by the same keys:
    a station that moved to another address. The line is retried there at once."""
    card_json = _read_card(card_file)
    name = card_json.get("name") if isinstance(card_json, dict) else None
    if not isinstance(name, str) or not name:
        fail(f"{card_file} is not a station card: it has no name", "bad_card")
    with client(home) as c:
        line = c.put(f"/lines/{seg(name)}/card", {"card": card_json})

    def render(x: dict[str, Any]) -> None:
        out.print(
            f"[bold]{escape(x['peer'])}[/] is now reached at [bold]{escape(x['peer_url'])}[/] "
            f"(fingerprint {escape(x['peer_fingerprint'])}, unchanged).",
            markup=True,
        )
        if x["outbox_depth"]:
            out.print(f"{x['outbox_depth']} envelope(s) waiting for it are being sent there now.")

    emit(line, as_json, render)


PeerArg = Annotated[str, typer.Argument(metavar="PEER", help="The peer station's name.")]


@line_app.command(
    "suspend", short_help="Stop trusting a peer at once (its key may be stolen): nothing taken or sent."
)
def line_suspend(
    home: HomeOpt,
    peer: PeerArg,
    reason: Annotated[str, typer.Option(help="Why, for the audit trail (up to 1000 characters).")],
    as_json: JsonOpt = False,
) -> None:
    """Suspend the line with PEER: from now on nothing PEER signs is taken (its batches,
    handshakes and checkpoints are refused with `line_suspended`), nothing is sent to it,
    and nobody here can place a call, send a message or act on a notice on the line. What
    waits in the outbox stays there. Administrators only; undone by `line resume`."""
    with client(home) as c:
        line = c.post(f"/lines/{seg(peer)}/suspend", {"reason": reason})

    def render(x: dict[str, Any]) -> None:
        out.print(f"Line with [bold]{escape(x['peer'])}[/] [bold]suspended[/].", markup=True)
        out.print(
            f"Nothing from {x['peer']} is taken and nothing is sent to it until `openline line "
            f"resume {x['peer']}`. Waiting in the outbox: {x['outbox_depth']}."
        )

    emit(line, as_json, render)


@line_app.command("resume", short_help="Trust a suspended peer again; the line is retried at once.")
def line_resume(home: HomeOpt, peer: PeerArg, as_json: JsonOpt = False) -> None:
    """Resume a suspended line: it is what it was before (active, or pending if it had
    never opened), and a handshake is tried at once. Administrators only."""
    with client(home) as c:
        line = c.post(f"/lines/{seg(peer)}/resume", None)

    def render(x: dict[str, Any]) -> None:
        note = "" if x["handshake"] == "ok" else f" (handshake: {escape(str(x['handshake']))})"
        out.print(f"Line with [bold]{escape(x['peer'])}[/]: [bold]{escape(x['state'])}[/]{note}", markup=True)

    emit(line, as_json, render)


@line_app.command(
    "terms", short_help="Propose new terms for an open line; both stations adopt them once both agree."
)
def line_terms(
    home: HomeOpt,
    peer: Annotated[str, typer.Argument(metavar="PEER", help="The peer station's name.")],
    answer_deadline: Annotated[int | None, typer.Option(help="Seconds a call may ring (5-86400).")] = None,
    notice_deadline: Annotated[
        int | None, typer.Option(help="Seconds a notice may wait for its acknowledgement (60-604800).")
    ] = None,
    margin_horizontal: Annotated[
        float | None, typer.Option(callback=finite, help="Metres two activities must stay apart (0-100000).")
    ] = None,
    margin_vertical: Annotated[
        float | None,
        typer.Option(callback=finite, help="Metres above or below each other they must stay (0-10000)."),
    ] = None,
    margin_minutes: Annotated[
        int | None, typer.Option(help="Minutes apart in time they must stay (0-1440).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose new terms for an open line (a term left out keeps its value). Both stations
    adopt them once the peer's administrator has proposed the same; until then the line
    keeps its terms. Proposing the terms it has withdraws a proposal."""
    changes = {
        "answer_deadline_s": answer_deadline,
        "notice_deadline_s": notice_deadline,
        "margin_horizontal_m": margin_horizontal,
        "margin_vertical_m": margin_vertical,
        "margin_minutes": margin_minutes,
    }
    with client(home) as c:
        line = c.put(f"/lines/{seg(peer)}/terms", {k: v for k, v in changes.items() if v is not None})

    def render(x: dict[str, Any]) -> None:
        out.print(f"Line with [bold]{escape(x['peer'])}[/]: {escape(_terms_text(x))}", markup=True)
        if x["proposed_terms"] is None:
            out.print("No proposal pending: both stations hold these terms.")
        else:
            out.print(f"Proposed: {_terms_text(x['proposed_terms'])}")
            out.print(f"Not adopted yet: {x['handshake']}")

    emit(line, as_json, render)


def _terms_text(terms: dict[str, Any]) -> str:
    m = terms["margins"]
    return (
        f"calls answered within {terms['answer_deadline_s']} s, "
        f"notices within {terms['notice_deadline_s']} s, "
        f"margins {m['horizontal_m']:g} m horizontal, {m['vertical_m']:g} m vertical, {m['minutes']} min"
    )


@app.command("lines")
def lines_cmd(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """List lines: peer, state, last contact, outbox depth, peer fingerprint."""
    with client(home) as c:
        rows = c.get("/lines")

    def render(items: list[dict[str, Any]]) -> None:
        columns = ("peer", "state", "last contact", "outbox", "peer clock", "fingerprint", "last error")
        rows = [
            (
                x["peer"],
                x["state"],
                when(x["last_contact_at"], "never"),
                str(x["outbox_depth"]) + (f" since {when(x['waiting_since'])}" if x["waiting_since"] else ""),
                _clock_text(x["peer_clock"]),
                x["peer_fingerprint"],
                x["last_error"] or "",
            )
            for x in items
        ]
        listing(columns, rows, wrap=("last contact", "peer clock", "fingerprint", "last error"))
        for x in items:
            if x.get("suspended") is not None:  # a station older than suspending has none
                stop = x["suspended"]
                out.print(
                    f"Line with {x['peer']} suspended {when(stop['at'])} by {stop['by']}: {stop['reason']}"
                )
            if x["proposed_terms"] is not None:
                out.print(
                    f"New terms proposed to {x['peer']}, not adopted yet: {_terms_text(x['proposed_terms'])}"
                )

    emit(rows, as_json, render)


def _clock_text(clock: dict[str, Any] | None) -> str:
    """`+12 ms ±3 ms`, `-312.4 s ±3 ms, OFF since …`: the peer's clock minus ours."""
    if clock is None:
        return "not measured yet"
    offset, within = clock["offset_ms"], clock["within_ms"]
    text = f"{offset:+.0f} ms" if abs(offset) < 1000 else f"{offset / 1000:+.1f} s"
    text += f" ±{within:.0f} ms"
    if clock["off_since"]:
        text += f", OFF since {when(clock['off_since'])}"
    return text


@app.command()
def call(
    home: HomeOpt,
    peer: Annotated[str, typer.Argument(metavar="PEER", help="The peer station's name.")],
    subject: Annotated[str, typer.Option(help="What the call is about.")],
    priority: Annotated[str, typer.Option(help="flash, immediate, priority or routine.")] = "routine",
    as_json: JsonOpt = False,
) -> None:
    """Place a call to a peer station; it rings on their watch floor."""
    if priority not in PRIORITIES:
        fail(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}", "invalid_input")
    with client(home) as c:
        result = c.post("/calls", {"peer": peer, "subject": subject, "priority": priority})
    emit(
        result,
        as_json,
        lambda x: out.print(
            f"Call [bold]{escape(x['id'])}[/] to {escape(x['peer'])}: {escape(x['state'])}", markup=True
        ),
    )


@app.command("calls")
def calls_cmd(
    home: HomeOpt,
    state: Annotated[str | None, typer.Option(help="Only calls in this state.")] = None,
    peer: Annotated[str | None, typer.Option(help="Only calls on the line with this peer.")] = None,
    direction: Annotated[str | None, typer.Option(help="Only inbound (in) or outbound (out) calls.")] = None,
    priority: Annotated[str | None, typer.Option(help="Only calls of this priority.")] = None,
    since: Annotated[
        str | None, typer.Option(callback=time_text, help="Only calls placed at or after this RFC 3339 time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(callback=time_text, help="Only calls placed before this RFC 3339 time.")
    ] = None,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
) -> None:
    """List calls, newest first, with the time of each state."""
    params: dict[str, Any] = {"limit": limit}
    filters = {"state": state, "peer": peer, "direction": direction, "priority": priority}
    params.update({k: v for k, v in {**filters, "since": since, "until": until}.items() if v})
    with client(home) as c:
        rows = c.get("/calls", params=params)

    def render(items: list[dict[str, Any]]) -> None:
        rows = []
        for x in items:
            changes = [
                x[k]
                for k in (
                    "delivered_at",
                    "ringing_at",
                    "picked_up_at",
                    "closed_at",
                    "missed_at",
                    "declined_at",
                    "cancelled_at",
                )
                if x[k]
            ]
            rows.append(
                (
                    x["id"],  # what pickup, say and show take: listing never shortens it
                    x["peer"],
                    x["direction"],
                    Text(x["priority"], style=PRIORITY_STYLE.get(x["priority"], "")),
                    f"{x['state']} (refused)" if x.get("refused") else x["state"],
                    Text.from_markup(WITHHELD) if x["content_withheld"] else x["subject"],
                    when(x["placed_at"]),
                    when(max(changes) if changes else None),
                )
            )
        columns = ("id", "peer", "dir", "priority", "state", "subject", "placed", "last change")
        listing(columns, rows, wrap=("subject", "placed", "last change"))
        limit_reached(len(rows), limit, until_oldest(items))

    emit(rows, as_json, render, limit=limit, next_page=until_oldest)


def _call_action(
    home: Path, call_id: str, action: str, body: dict[str, Any] | None, as_json: bool, *, then: str = ""
) -> None:
    """Act on a call and print its state; `then`: what the officer must know next."""
    with client(home) as c:
        result = c.post(f"/calls/{seg(call_id)}/{action}", body)

    def render(x: dict[str, Any]) -> None:
        out.print(
            f"Call {escape(call_id)}: [bold]{escape(str(x.get('state', x.get('status'))))}[/]", markup=True
        )
        if then:
            out.print(then, markup=False)

    emit(result, as_json, render)


@app.command()
def pickup(home: HomeOpt, call_id: Annotated[str, CallArg], as_json: JsonOpt = False) -> None:
    """Pick up a ringing call."""
    _call_action(home, call_id, "pickup", None, as_json)


@app.command()
def say(
    home: HomeOpt,
    call_id: Annotated[str, CallArg],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The message.")],
    lang: Annotated[str, typer.Option(help="Language of the message.")] = "en",
    as_json: JsonOpt = False,
) -> None:
    """Send a message in a picked-up call."""
    with client(home) as c:
        result = c.post(f"/calls/{seg(call_id)}/messages", {"text": text, "lang": lang})
    emit(
        result,
        as_json,
        lambda x: out.print(
            f"Message {escape(x['id'])}: [bold]{escape(x['status'])}[/]\n"
            "  `openline show CALL` marks it ✓ once the peer's signed receipt is back",
            markup=True,
            highlight=False,
        ),
    )


@app.command()
def close(
    home: HomeOpt,
    call_id: Annotated[str, CallArg],
    summary: Annotated[str | None, typer.Option(help="A closing summary.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a picked-up call."""
    _call_action(home, call_id, "close", {"summary": summary}, as_json)


@app.command()
def decline(
    home: HomeOpt,
    call_id: Annotated[str, CallArg],
    reason: Annotated[str | None, typer.Option(help="Why.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Decline a ringing inbound call."""
    _call_action(home, call_id, "decline", {"reason": reason}, as_json)


@app.command()
def cancel(home: HomeOpt, call_id: Annotated[str, CallArg], as_json: JsonOpt = False) -> None:
    """Cancel an outbound call that has not been picked up."""
    _call_action(
        home,
        call_id,
        "cancel",
        None,
        as_json,
        then="If the peer picked it up or declined it before the cancel reached it, its answer stands "
        "(the callee's station decides): `openline show` then says so.",
    )


@app.command()
def show(home: HomeOpt, call_id: Annotated[str, CallArg], as_json: JsonOpt = False) -> None:
    """Show a call: its states, messages with receipts, and event log."""
    with client(home) as c:
        data = c.get(f"/calls/{seg(call_id)}")

    def render(x: dict[str, Any]) -> None:
        withheld = Text.from_markup(WITHHELD)

        def peer_text(text: str | None, style: str = "") -> Text | tuple[str, str]:
            return withheld if x["content_withheld"] else (text or "(not shown)", style)

        to = "to" if x["direction"] == "out" else "from"
        head = f"  ({x['priority']}, {x['direction']} {to} {x['peer']})"
        out.print(marked(peer_text(x["subject"], "bold"), head), highlight=False)
        out.print(f"id {escape(x['id'])}  state [bold]{escape(x['state'])}[/]", markup=True)
        for k in (
            "placed_at",
            "delivered_at",
            "ringing_at",
            "picked_up_at",
            "closed_at",
            "missed_at",
            "declined_at",
            "cancelled_at",
        ):
            if x[k]:
                by = f" by {x['picked_up_by']}" if k == "picked_up_at" and x.get("picked_up_by") else ""
                out.print(f"  {k[:-3]:<10} {x[k]}{by}", markup=False)
        if x["messages"]:
            out.print("[bold]Messages[/]", markup=True)
            for m in x["messages"]:
                mark = "✗" if m.get("refused") else "✓" if m["received_at"] else "…"
                head = f"  {m['time']} {m['from']:>12} {mark} "
                out.print(marked(head, peer_text(m["text"])), highlight=False)
                if m.get("refused"):
                    by = "here" if m["from"] == x["peer"] else f"by {x['peer']}"
                    out.print(marked(f"  {'':>40} refused {by}: ", m["refused"]), highlight=False)
        if x.get("refused"):
            refused_by = (f"Refused by {x['peer']}'s station", "bold")
            out.print(marked(refused_by, " ", x["refused"], ": it never rang there"), highlight=False)
        if x.get("summary"):
            out.print(marked(("Summary", "bold"), " ", x["summary"]), highlight=False)
        if x.get("decline_reason"):
            out.print(marked(("Declined because", "bold"), " ", x["decline_reason"]), highlight=False)
        events = [(e["at"], e["event"], e["actor"], event_why(e.get("detail"))) for e in x["events"]]
        listing(("at", "event", "actor", "why"), events, title="Event log", wrap=("why",))

    emit(data, as_json, render)


def _password_from_stdin() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("--password-stdin: no password on standard input", "invalid_input")
    return password


def _print_user(x: dict[str, Any]) -> None:
    state = "disabled" if x["disabled"] else "enabled"
    out.print(f"User [bold]{escape(x['name'])}[/] ({escape(x['role'])}): {state}", markup=True)
    _print_one_time_password(x)


def _print_one_time_password(x: dict[str, Any]) -> None:
    if x.get("one_time_password"):
        out.print(
            "One-time password (shown once; changed at first login): "
            f"[bold]{escape(x['one_time_password'])}[/]",
            markup=True,
        )


@user_app.command("add")
def user_add(
    home: HomeOpt,
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="1-64 lowercase ASCII letters a-z, digits 0-9, '.', '_', '-'."),
    ],
    role: Annotated[str, typer.Option(help=", ".join(ROLES) + ".")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input; "
            "without it a one-time password is printed once.",
        ),
    ] = False,
    email: Annotated[str | None, typer.Option(help="Where e-mail notifications go.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user with a role."""
    if role not in ROLES:
        fail(f"role must be one of {', '.join(ROLES)}, got {role!r}", "invalid_input")
    body: dict[str, Any] = {"name": name, "role": role, "email": email}
    if password_stdin:
        body["password"] = _password_from_stdin()
    with client(home) as c:
        user = c.post("/users", body)
    emit(user, as_json, _print_user)


@user_app.command("list")
def user_list(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """List users: name, role, state, password, second factor."""
    with client(home) as c:
        rows = c.get("/users")

    def render(items: list[dict[str, Any]]) -> None:
        rows = [
            (
                x["name"],
                x["role"],
                "disabled" if x["disabled"] else "enabled",
                "one-time" if x["must_change_password"] else "set",
                "yes" if x["totp"] else "no",
                when(x["created_at"]),
            )
            for x in items
        ]
        listing(("name", "role", "state", "password", "totp", "created"), rows, wrap=("created",))

    emit(rows, as_json, render)


@user_app.command("disable")
def user_disable(
    home: HomeOpt, name: Annotated[str, typer.Argument(metavar="NAME")], as_json: JsonOpt = False
) -> None:
    """Disable a user: their API tokens stop working and their console sessions end, at once."""
    with client(home) as c:
        user = c.post(f"/users/{seg(name)}/disable")
    emit(user, as_json, _print_user)


@user_app.command("enable")
def user_enable(
    home: HomeOpt, name: Annotated[str, typer.Argument(metavar="NAME")], as_json: JsonOpt = False
) -> None:
    """Enable a disabled user again."""
    with client(home) as c:
        user = c.post(f"/users/{seg(name)}/enable")
    emit(user, as_json, _print_user)


@user_app.command("unlock")
def user_unlock(
    home: HomeOpt, name: Annotated[str, typer.Argument(metavar="NAME")], as_json: JsonOpt = False
) -> None:
    """Let a user log in at once after failed logins with their name locked it."""
    with client(home) as c:
        answer = c.post(f"/users/{seg(name)}/unlock")
    emit(answer, as_json, _print_unlocked)


def _print_unlocked(answer: dict[str, Any]) -> None:
    until = answer["locked_until"]
    said = f"was locked out until {until}; may log in again now" if until else "was not locked out"
    out.print(f"{answer['name']} {said}.", markup=False, highlight=False)


@user_app.command("reset-password")
def user_reset_password(
    home: HomeOpt,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the new password from standard input; without it a one-time password is printed once.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set a new password for a user, or issue a one-time password; their console sessions end."""
    body = {"password": _password_from_stdin()} if password_stdin else {}
    with client(home) as c:
        result = c.post(f"/users/{seg(name)}/reset-password", body)

    def render(x: dict[str, Any]) -> None:
        out.print(f"Password of [bold]{escape(x['name'])}[/] reset.", markup=True)
        _print_one_time_password(x)

    emit(result, as_json, render)


@user_app.command("totp")
def user_totp(
    home: HomeOpt, name: Annotated[str, typer.Argument(metavar="NAME")], as_json: JsonOpt = False
) -> None:
    """Give a user a TOTP second factor for console logins (replacing any earlier one)."""
    with client(home) as c:
        result = c.post(f"/users/{seg(name)}/totp")

    def render(x: dict[str, Any]) -> None:
        out.print(
            f"Second factor for [bold]{escape(x['name'])}[/]. "
            "Add this to their authenticator app (shown once):",
            markup=True,
        )
        out.print(x["otpauth_uri"], markup=False, soft_wrap=True)

    emit(result, as_json, render)


@app.command("audit")
def audit_cmd(
    home: HomeOpt,
    limit: LimitOpt = 100,
    before: BeforeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail of privileged actions: who did what, when (administrator, auditor)."""
    with client(home) as c:
        rows = c.get("/audit", params={"limit": limit, "before": before})

    def render(items: list[dict[str, Any]]) -> None:
        rows = [(str(x["id"]), when(x["at"]), x["actor"], x["action"], x["target"] or "") for x in items]
        listing(("id", "at", "actor", "action", "target"), rows, wrap=("at", "target"))
        limit_reached(len(rows), limit, before_last(items), narrow=None)

    emit(rows, as_json, render, limit=limit, narrow=None)  # the trail takes no filter


def _read_json_file(path: Path, what: str) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", "invalid_input")
    try:
        return parse_json(text)
    except ValueError as exc:
        fail(f"{path} is not JSON ({what}): {exc}", "invalid_input")


def _print_policy(x: dict[str, Any]) -> None:
    p = x["policy"]
    origin = "default" if x["default"] else f"set by {x['updated_by']} at {x['updated_at']}"
    out.print(
        f"Escalation policy of the line with [bold]{escape(x['peer'])}[/] ({escape(origin)})", markup=True
    )
    for i, step in enumerate(p["steps"], 1):
        out.print(f"  {i}. notify {', '.join(step['targets'])}; next step after {step['delay_s']} s")
    out.print(
        f"  then the steps {p['repeat']} more time(s); then, every {p['final']['delay_s']} s while ringing:"
    )
    out.print(f"  catch-all: notify {', '.join(p['final']['targets'])}")
    out.print(f"Pick-up lease: rings again after {x['rering_timeout_s']} s with no action.")
    for warning in x["warnings"]:
        err.print(f"[bold yellow]warning[/]: {escape(warning)}", markup=True, highlight=False, soft_wrap=True)


@policy_app.command("show")
def policy_show(
    home: HomeOpt, peer: Annotated[str, typer.Argument(metavar="PEER")], as_json: JsonOpt = False
) -> None:
    """Show the escalation policy of the line with PEER."""
    with client(home) as c:
        data = c.get(f"/lines/{seg(peer)}/policy")
    emit(data, as_json, _print_policy)


@policy_app.command("set")
def policy_set(
    home: HomeOpt,
    peer: Annotated[str, typer.Argument(metavar="PEER")],
    policy_file: Annotated[Path, typer.Argument(metavar="POLICY_FILE", help="JSON file, or - for stdin.")],
    as_json: JsonOpt = False,
) -> None:
    """Replace the escalation policy of the line with PEER (calls already ringing keep theirs)."""
    policy = _read_json_file(policy_file, "an escalation policy")
    with client(home) as c:
        data = c.put(f"/lines/{seg(peer)}/policy", policy)
    emit(data, as_json, _print_policy)


@app.command("alerts")
def alerts_cmd(
    home: HomeOpt,
    open_only: Annotated[bool, typer.Option("--open", help="Only alerts nobody has acknowledged.")] = False,
    limit: LimitOpt = 100,
    before: BeforeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List alerts: missed and unanswered calls, lines down, stalled escalations, roster gaps.

    Each pages people until somebody acknowledges it (`openline alert ack`)."""
    with client(home) as c:
        rows = c.get("/alerts", params={"open": open_only, "limit": limit, "before": before})

    def render(items: list[dict[str, Any]]) -> None:
        rows = [
            (
                str(x["id"]),
                when(x["raised_at"]),
                x["kind"],
                _alert_subject(x),
                f"{x['acknowledged_by']} {when(x['acknowledged_at'])}"
                if x["acknowledged_at"]
                else Text(_open_alert(x), style="bold red"),
            )
            for x in items
        ]
        listing(
            ("id", "raised", "kind", "subject", "acknowledged"),
            rows,
            wrap=("raised", "subject", "acknowledged"),
        )
        limit_reached(len(rows), limit, before_last(items))

    emit(rows, as_json, render, limit=limit)


def _open_alert(x: dict[str, Any]) -> str:
    """`open`, and whether it still pages people (`--json` says which step is next, and
    when), or why it no longer does: what it is about has ended (`detail.over`)."""
    over = x["detail"].get("over") if isinstance(x.get("detail"), dict) else None
    if isinstance(over, dict):
        return f"open, over: {over.get('why')}"
    return "open, paging" if x.get("paging") else "open"


def _alert_subject(x: dict[str, Any]) -> str:
    """What an alert is about, as an officer acts on it: a notice conflict names both
    notices (for `openline notice show`), not the conflict's row number; an alert about a
    call says its priority and peer, as the board does (older alerts may not say)."""
    d = x.get("detail")
    if isinstance(d, dict) and d.get("call") == x["subject"] and d.get("priority"):
        # Our own calls go unanswered at the peer; calls to us are missed and escalated.
        inbound = x["kind"] in ("missed_call", "escalation_unheard", "escalation_stalled")
        way = "to" if x["kind"] == "unanswered_call" else "from" if inbound else "with"
        peer = f" {way} {d['peer']}" if d.get("peer") else ""
        return f"{str(d['priority']).upper()} call{peer}: {x['subject']}"
    if x["kind"] == "notice_conflict" and isinstance(d, dict) and {"notice", "other_notice"} <= set(d):
        ours, theirs = (
            f"{d['notice']} volume {d.get('volume')}",
            f"{d['other_notice']} volume {d.get('other_volume')}",
        )
        if "peer" in d and "other_peer" in d:  # whose lines (older alerts do not say)
            ours, theirs = f"{ours} ({d['peer']})", f"{theirs} ({d['other_peer']})"
        return f"notice {ours} with notice {theirs}"
    if x["kind"] == "line_down" and isinstance(d, dict):
        # What has not got through (for `openline show`, `notice show`), not just the line.
        parts = [f"{x['subject']}: {d.get('waiting')} waiting"]
        for what, how in (("call", "priority"), ("notice", "category")):
            items = [c for c in d.get(f"{what}s") or [] if isinstance(c, dict)]
            if items:
                parts.append(f"{what}s " + ", ".join(f"{c.get(what)} ({c.get(how)})" for c in items))
        return "; ".join(parts)
    if x["kind"] == "peer_moved" and isinstance(d, dict) and d.get("url"):
        # What the board says: a move nobody made is a copy of the station, or its key.
        was = f" (was {', '.join(map(str, d.get('previous') or []))})" if d.get("previous") else ""
        return (
            f"{d.get('peer')} now answers at {d['url']}{was}: if it did not move, two copies of it "
            "may be running, or someone else holds its key; call its operators "
            "(an administrator can suspend the line)"
        )
    return str(x["subject"])


@alert_app.command("ack")
def alert_ack(
    home: HomeOpt, alert_id: Annotated[int, typer.Argument(metavar="ID")], as_json: JsonOpt = False
) -> None:
    """Acknowledge an alert."""
    with client(home) as c:
        data = c.post(f"/alerts/{alert_id}/acknowledge")
    emit(
        data,
        as_json,
        lambda x: out.print(f"Alert {x['id']} ({x['kind']}) acknowledged by {x['acknowledged_by']}."),
    )


@app.command("roster")
def roster_cmd(
    home: HomeOpt,
    at: Annotated[
        str | None, typer.Option(callback=time_text, help="An RFC 3339 time instead of now.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who is on duty, the next handover, gaps in the next 24 hours, shifts and overrides."""
    with client(home) as c:
        data = c.get("/roster", params={"at": at} if at else None)

    def both(t: dict[str, str] | None) -> str:
        return "—" if t is None else f"{when(t['utc'])} ({t['local']})"

    def render(x: dict[str, Any]) -> None:
        on = escape(", ".join(x["on_duty"])) or "[red]nobody[/]"
        out.print(f"On duty at {escape(both(x['at']))}: [bold]{on}[/]", markup=True)
        after = ", ".join(x["on_duty_after_handover"] or []) or "nobody"
        out.print(f"Next handover: {both(x['next_handover'])} → {after}")
        for gap in x["gaps"]:
            out.print(
                f"[bold red]Gap[/] from {escape(both(gap['from']))} until {escape(both(gap['until']))}",
                markup=True,
            )
        shifts = [
            (
                str(sh["id"]),
                _roster_user(sh),
                sh["start_local"],
                sh["tz"],
                f"{sh['duration_s'] / 3600:g}",
                sh["rrule"] or "",
            )
            for sh in x["shifts"]
        ]
        listing(("shift", "user", "starts (local)", "zone", "hours", "repeats"), shifts, title="Shifts")
        if x["overrides"]:
            overrides = [
                (str(o["id"]), _roster_user(o), o["replaces"] or "", both(o["start"]), both(o["end"]))
                for o in x["overrides"]
            ]
            listing(
                ("override", "user", "replaces", "from", "until"),
                overrides,
                wrap=("from", "until"),
                title="Overrides",
            )

    emit(data, as_json, render)


def _roster_user(entry: dict[str, Any]) -> str:
    """A shift's or override's user, marked when it puts nobody on duty (the user was
    disabled, or given a role that does not work calls), so that it is seen and removed."""
    why = entry.get("covers_nothing")
    return entry["user"] if why is None else f"{entry['user']} ({why}: covers nothing)"


@shift_app.command("add")
def shift_add(
    home: HomeOpt,
    user: Annotated[str, typer.Argument(metavar="USER")],
    start: Annotated[str, typer.Option(help="Local wall time of the first shift: 2026-11-27T06:00.")],
    tz: Annotated[str, typer.Option(help="IANA time zone of that wall time, e.g. Europe/Berlin.")],
    hours: Annotated[float, typer.Option(help="Length of each shift in hours.")],
    rrule: Annotated[str | None, typer.Option(help="RFC 5545 recurrence, e.g. FREQ=DAILY.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a user on the roster: one shift, or a recurring one."""
    body = {"user": user, "start_local": start, "tz": tz, "duration_s": _shift_seconds(hours), "rrule": rrule}
    with client(home) as c:
        data = c.post("/shifts", body)
    emit(
        data, as_json, lambda x: out.print(f"Shift {x['id']}: {x['user']} from {x['start_local']} {x['tz']}")
    )


def _shift_seconds(hours: float) -> int:
    """--hours as the station takes it, whole seconds from 60 to 7 days; refused in hours,
    the unit it was given in."""
    seconds = hours * 3600
    if not math.isfinite(seconds) or not 60 <= round(seconds) <= 7 * 86_400:
        fail(
            f"--hours: a shift lasts at least 1 minute ({1 / 60:.3g} hours) and at most 7 days"
            f" (168 hours), got {hours:g}",
            "invalid_input",
        )
    return round(seconds)


@shift_app.command("remove")
def shift_remove(home: HomeOpt, shift_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Take a shift off the roster."""
    with client(home) as c:
        c.delete(f"/shifts/{shift_id}")
    out.print(f"Shift {shift_id} removed.")


@override_app.command("add")
def override_add(
    home: HomeOpt,
    user: Annotated[str, typer.Argument(metavar="USER", help="Who is on duty.")],
    start: Annotated[
        str, typer.Option(callback=time_text, help="RFC 3339 start, e.g. 2026-11-27T06:00:00Z.")
    ],
    end: Annotated[str, typer.Option(callback=time_text, help="RFC 3339 end.")],
    replaces: Annotated[
        str | None, typer.Option(help="Whose duty USER takes (a swap is two overrides).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Put USER on duty for a while, instead of someone or in addition."""
    with client(home) as c:
        data = c.post("/overrides", {"user": user, "start": start, "end": end, "replaces": replaces})
    emit(
        data,
        as_json,
        lambda x: out.print(f"Override {x['id']}: {x['user']} from {x['start']} until {x['end']}"),
    )


@override_app.command("remove")
def override_remove(home: HomeOpt, override_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Remove an override."""
    with client(home) as c:
        c.delete(f"/overrides/{override_id}")
    out.print(f"Override {override_id} removed.")


def _print_handover(x: dict[str, Any]) -> None:
    state = (
        f"acknowledged by {x['acknowledged_by']} at {x['acknowledged_at']}"
        if x["acknowledged_at"]
        else "pending"
    )
    out.print(
        f"Handover {x['id']} from [bold]{escape(x['from'])}[/] at {escape(x['created_at'])}: {escape(state)}",
        markup=True,
    )
    if x["note"] is not None:
        out.print(f"  {x['note']}", markup=False)
    items = x["open_items"]
    for c in items["calls"]:
        out.print(f"  open call {c['id']} {c['direction']} {c['peer']} {c['priority']} {c['state']}")
    for a in items["alerts"]:
        out.print(f"  open alert {a['id']} {a['kind']} {_alert_subject(a)}", markup=False)


@handover_app.command("give")
def handover_give(
    home: HomeOpt,
    note: Annotated[str, typer.Option(help="What the next watch must know.")],
    as_json: JsonOpt = False,
) -> None:
    """Hand the watch over: your note, and everything still open, for the next officer."""
    with client(home) as c:
        data = c.post("/handovers", {"note": note})
    emit(data, as_json, _print_handover)


@handover_app.command("ack")
def handover_ack(
    home: HomeOpt, handover_id: Annotated[int, typer.Argument(metavar="ID")], as_json: JsonOpt = False
) -> None:
    """Acknowledge a handover as the incoming officer."""
    with client(home) as c:
        data = c.post(f"/handovers/{handover_id}/acknowledge")
    emit(data, as_json, _print_handover)


@app.command("handovers")
def handovers_cmd(
    home: HomeOpt,
    pending: Annotated[bool, typer.Option("--pending", help="Only handovers nobody acknowledged.")] = False,
    limit: LimitOpt = 20,
    before: BeforeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List handovers, newest first, with what was open and who acknowledged them."""
    with client(home) as c:
        rows = c.get("/handovers", params={"pending": pending, "limit": limit, "before": before})

    def render(items: list[dict[str, Any]]) -> None:
        for x in items:
            _print_handover(x)
        if not items:
            out.print("No handovers.")
        limit_reached(len(items), limit, before_last(items))

    emit(rows, as_json, render, limit=limit)


@app.command()
def demo(
    workdir: Annotated[Path | None, typer.Option(help="Keep the two station homes here.")] = None,
) -> None:
    """Start two stations, stuttgart and moscow, open the line and place a sample call."""
    from openline.demo import run_demo

    try:
        run_demo(workdir)
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)


# Commands kept in their own modules; importing them registers them on `app`.
from openline.cli import conflicts as _conflicts  # noqa: E402,F401
from openline.cli import evidence as _evidence  # noqa: E402,F401
from openline.cli import notices as _notices  # noqa: E402,F401
from openline.cli import notifications as _notifications  # noqa: E402,F401
from openline.cli import report as _report  # noqa: E402,F401
from openline.cli import tokens as _tokens  # noqa: E402,F401
from openline.cli import verify as _verify  # noqa: E402,F401


def run() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if (why := _not_text(sys.argv[1:])) is not None:
        _stop(why, Code.INVALID_INPUT.value)
    if sys.stdout is None and sys.argv[1:2] != ["serve"]:  # started with `>&-`; serve prints nothing
        _stop("cannot write the output: standard output is closed", Code.CANNOT_WRITE.value)
    if sys.stdout is not None:
        sys.stdout = _Output(sys.stdout)
    try:
        status = _main()
        if sys.stdout is not None:
            sys.stdout.flush()  # here, not at exit, where a failure would go unreported
    except OutputFailed as exc:
        _silence_stdout()
        if exc.error.errno == errno.EPIPE:  # the reader had enough (`| head`): not a failure
            sys.exit(0)
        _stop(f"cannot write the output: {exc.error.strerror or exc.error}", Code.CANNOT_WRITE.value)
    sys.exit(status)


def _main() -> int:
    """The command's exit status. Usage mistakes are click's plain lines (exit 2), not a
    box drawn with rich: they are read in cron mail and logs as often as on a terminal."""
    command = typer.main.get_command(app)
    for group in getattr(command, "commands", {}).values():
        # `openline line` alone is a usage mistake ("Missing command.", exit 2), not a box
        # of help; `openline` alone still shows the help.
        if getattr(group, "commands", None) is not None:
            group.no_args_is_help = False
    try:
        status = command(standalone_mode=False)
    except _USAGE_ERROR as exc:
        if type(exc).__name__ != "NoArgsIsHelpError":  # the help itself is printed already
            exc.show()
        return int(exc.exit_code)
    except typer.Abort:
        err.print("Aborted.")
        return 1
    except KeyError as exc:  # an answer without a field this CLI reads, found as it is shown
        older = _older_station()
        if older is None:
            raise  # a station as new as this CLI: ours to mend, with its traceback
        _stop(f"its answer has no {exc}: {older}", Code.STATION_TOO_OLD.value)
    return status if isinstance(status, int) else 0


# click's, whether typer vendors click (0.2x) or uses it; typer exports only this subclass.
_USAGE_ERROR: type[Any] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OutputFailed(Exception):  # not an OSError, which click would take for its own
    """Standard output refused what a command printed (a full disk, a closed pipe)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _Output:
    """Standard output, whose write errors are told apart from any other OSError: they
    mean the command's output is lost, whatever the command did."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise OutputFailed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputFailed(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's own flush at exit does
    not fail again on what is still buffered (and exit 120 with a message of its own)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())  # type: ignore[union-attr]
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass


def _stop(message: str, code: str) -> NoReturn:
    """`fail` outside a command, where no typer turns its Exit into the exit status."""
    try:
        fail(message, code)
    except typer.Exit as done:
        sys.exit(done.exit_code)


def _not_text(args: list[str]) -> str | None:
    """Why an argument is not UTF-8 text, if one is not. Python hands on the bytes it could
    not decode as lone surrogates (PEP 383), which no command can store or send: each
    crashed where it first encoded one (a subject in cp1251 ended in a traceback)."""
    for n, arg in enumerate(args, 1):
        try:
            raw = arg.encode("utf-8", "surrogateescape")  # the bytes as they were given
        except UnicodeEncodeError as exc:  # a surrogate no decoding made: not from bytes
            return f"argument {n} is not UTF-8 text (character {exc.start} is U+{ord(arg[exc.start]):04X})"
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"argument {n} is {undecodable(exc)}"
    return None


def _older_station() -> str | None:
    """`StationClient.older_station` of the station this command last asked, if any."""
    if not _asked:
        return None
    try:
        c = StationClient(_asked[-1])
    except OpenLineError:
        return None
    try:
        return c.older_station()
    finally:
        c.close()
