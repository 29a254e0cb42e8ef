"""`openline notice send|edit|send-draft|discard|ack|reject|withdraw|show` and `openline notices`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from openline.cli.client import ApiError, seg
from openline.cli.main import WITHHELD, HomeOpt, JsonOpt, LimitOpt, app, before_last, client, emit, fail
from openline.cli.options import time_text
from openline.cli.render import limit_reached, listing, marked, out, when
from openline.core.clock import SystemClock
from openline.core.encoding import parse_json
from openline.errors import OpenLineError

if TYPE_CHECKING:
    from openline.cli.notice_files import Outgoing

notice_app = typer.Typer(
    help="Deconfliction notices: draft, send, acknowledge, reject, withdraw.", no_args_is_help=True
)
app.add_typer(notice_app, name="notice")
NoticeArg = typer.Argument(metavar="NOTICE", help="The notice id (from `openline notices`).")


def _print(x: dict[str, Any]) -> None:
    # Peer text goes through `marked`: every further line it takes, from a line feed or
    # from the terminal's width, is marked, so a padded text cannot print an `id` line.
    text = Text.from_markup(WITHHELD) if x["content_withheld"] else x.get("text", "")
    way = "to" if x["direction"] == "out" else "from"
    out.print(
        marked((x["category"], "bold"), f" {way} {x['peer']}, version {x['version']}: ", text),
        highlight=False,
    )
    out.print(f"id {escape(x['id'])}  state [bold]{escape(x['state'])}[/]", markup=True)
    if x.get("refused"):
        refused_by = (f"  refused by {x['peer']}'s station", "bold red")
        out.print(marked(refused_by, " ", x["refused"], ": it never had it"), highlight=False)
    for k in ("created_at", "starts_at", "ends_at", "deadline_at", "sent_at", "delivered_at",
              "acknowledged_at", "rejected_at", "withdrawn_at", "amended_at", "expired_at", "removed_at",
              "discarded_at"):  # fmt: skip
        if x[k]:
            out.print(f"  {k:<16} {x[k]}")
    if x["acknowledged_by"]:
        out.print(f"  acknowledged by {x['acknowledged_by']}")
    if x["removes"]:
        out.print(f"  removes the protected site {x['removes']}")
    if x["removed_by"]:
        out.print(f"  removed by notice {x['removed_by']}")
    if not x["removes"]:
        out.print(f"  {len(x['extents'])} volume(s)")
    for c in x["conflicts"]:
        if c["active"]:
            out.print(f"  [bold red]conflict[/]: {escape(_conflict(c))}", markup=True)
        else:  # recorded, and no longer holding
            why = f"{c['ended']}, at {c['ended_at']}" if c.get("ended_at") else str(c["ended"])
            out.print(f"  conflict, ended ({escape(why)}): {escape(_conflict(c))}", markup=True)
    for c in x["would_conflict"] or []:
        out.print(f"  [bold yellow]would conflict[/] if sent now: {escape(_conflict(c))}", markup=True)
    if x["state"] == "draft":
        out.print(
            f"  a draft: send it with `openline notice send-draft {x['id']}`, "
            f"change it with `openline notice edit {x['id']} FILE`"
        )


def _holding(conflicts: list[dict[str, Any]]) -> str:
    """The conflicts column: how many still hold, and how many recorded ones have ended."""
    holding = sum(1 for c in conflicts if c["active"])
    ended = len(conflicts) - holding
    return " ".join(
        part for part in (str(holding) if holding else "", f"({ended} ended)" if ended else "") if part
    )


def _conflict(c: dict[str, Any]) -> str:
    return (
        f"volume {c['volume']} with notice {c['other_notice']} volume {c['other_volume']}, "
        f"{c['from']} to {c['until'] or 'open'}, {c['altitude_m'][0]} to {c['altitude_m'][1]} m"
        f"{_found_under(c.get('margins'))}"
    )


def _found_under(m: dict[str, Any] | None) -> str:
    """The margins a conflict was found under, when any: the notice's own may be narrower
    now, and a pair of volumes apart is then a conflict only under these."""
    if not m:
        return ""
    parts = [
        f"{m['horizontal_m']:g} m" if m["horizontal_m"] else "",
        f"{m['vertical_m']:g} m vertical" if m["vertical_m"] else "",
        f"{m['minutes']} min" if m["minutes"] else "",
    ]
    shown = ", ".join(part for part in parts if part)
    return f" (margins {shown})" if shown else ""


@notice_app.command("send")
def notice_send(
    home: HomeOpt,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A notice, ASTM Volume4D, GeoJSON or CSV file of sites (told by content; docs/notices.md).",
        ),
    ],
    to: Annotated[str, typer.Option("--to", help="The peer station to notify.")],
    category: Annotated[
        str | None,
        typer.Option(
            help="What an ASTM or GeoJSON file announces (required for one): air_operation, fire_area, "
            "maritime, ground_movement, protected_site, protected_movement or exercise."
        ),
    ] = None,
    text: Annotated[str | None, typer.Option(help="The notice's text, for an ASTM or GeoJSON file.")] = None,
    amends: Annotated[
        str | None, typer.Option(help="Send it as a new version of this notice of ours.")
    ] = None,
    draft: Annotated[
        bool, typer.Option("--draft", help="Check it and keep it here as a draft; send nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send a notice to a peer; it is checked for conflicts with every active notice.

    FILE is a notice, ASTM Volume4D or GeoJSON file (one notice), or a CSV of sites (one
    protected_site notice per site)."""
    kind, outgoing = _read_notices(file, category, text)
    body = {"peer": to, "amends": amends, "draft": draft}
    if kind != "sites":
        (notice,) = outgoing
        with client(home) as c, _naming(file):
            sent = c.post("/notices", {**body, "notice": notice.document})
        emit(sent, as_json, _print)
        return
    if amends is not None and len(outgoing) > 1:
        fail(
            f"{file} has {len(outgoing)} sites, each its own notice: --amends names the one notice a new "
            "version replaces; send that site from a file of its own",
            "invalid_input",
        )
    _send_each(home, str(file), outgoing, body, as_json)


def _read_notices(file: Path, category: str | None, text: str | None) -> tuple[str, list[Outgoing]]:
    """The file's format and the notices it makes, checked (`cli.notice_files`); or the
    command fails naming the file, the volume and the field."""
    from openline.cli.notice_files import notices  # the geometry libraries, for this command only

    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", "invalid_input")
    try:
        return notices(str(file), data, category=category, text=text, now=_now())
    except ValueError as exc:  # FormatError, as `conflicts` reports it
        fail(str(exc), "invalid_input")


def _now() -> int:
    """When a file is read: its planning horizon, and the start of a site given none."""
    return SystemClock().now()


def _send_each(home: Path, file: str, notices: list[Outgoing], body: dict[str, Any], as_json: bool) -> None:
    """One notice per site, in the file's order, each printed as it is sent. A refusal
    part-way (the station checks each) says which sites were sent and which were not."""
    sent: list[dict[str, Any]] = []
    with client(home) as c:
        for notice in notices:
            try:
                x = c.post("/notices", {**body, "notice": notice.document})
            except OpenLineError as exc:
                if as_json:
                    emit(sent, as_json, _print)
                code = exc.code_text if isinstance(exc, ApiError) else exc.code.value
                fail(f"{notice.name}: {exc.detail}; {_part_way(notices, sent, draft=body['draft'])}", code)
            if not as_json:
                if sent:
                    out.print()
                _print(x)
            sent.append(x)
    if as_json:
        emit(sent, as_json, _print)
    else:
        done = "saved as drafts" if body["draft"] else "sent"
        out.print(f"\n{len(sent)} notice{'' if len(sent) == 1 else 's'} {done}, one per site of {file}.")


def _part_way(notices: list[Outgoing], sent: list[dict[str, Any]], *, draft: bool) -> str:
    """Which sites a refusal part-way left sent, and which not."""
    if not sent:
        return f"no site of the {len(notices)} was {'saved' if draft else 'sent'}"
    done = "saved as drafts" if draft else "sent"
    was = ", ".join(f"{n.name} as notice {x['id']}" for n, x in zip(notices, sent, strict=False))
    rest = ", ".join(n.name for n in notices[len(sent) :])
    return (
        f"{len(sent)} of {len(notices)} sites were {done}: {was}; not {done}: {rest} "
        "(send those from a CSV of them alone)"
    )


@contextmanager
def _naming(file: Path) -> Iterator[None]:
    """The station names what it refuses in a notice `notice volume 2, vertex 3`: the
    officer reads it with the file's name in front, as `conflicts` names it."""
    try:
        yield
    except ApiError as exc:
        if exc.code_text != "invalid_input":
            raise
        raise ApiError(exc.status, exc.code_text, f"{file}: {exc.detail}") from None


def _read(file: Path) -> Any:
    try:
        return parse_json(file.read_text(encoding="utf-8-sig"))  # as `conflicts` reads it
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", "invalid_input")
    except ValueError as exc:  # not UTF-8, or not JSON
        fail(f"{file} is not a notice file (JSON): {exc}", "invalid_input")


@notice_app.command(
    "edit", short_help="Replace one of our drafts with a new notice file, checked as it is sent."
)
def notice_edit(
    home: HomeOpt,
    notice_id: Annotated[str, NoticeArg],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The draft's new notice file (JSON).")],
    send: Annotated[bool, typer.Option("--send", help="Send it too, once edited.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace one of our drafts with a new notice file, checked as `notice send --draft`
    checks it; its id, peer and the notice it amends stay."""
    document = _read(file)
    with client(home) as c, _naming(file):
        emit(c.put(f"/notices/{seg(notice_id)}", {"notice": document, "send": send}), as_json, _print)


@notice_app.command("send-draft")
def notice_send_draft(home: HomeOpt, notice_id: Annotated[str, NoticeArg], as_json: JsonOpt = False) -> None:
    """Send one of our drafts to its peer, exactly as `notice send` sends a notice."""
    _action(home, notice_id, "send", None, as_json)


@notice_app.command("discard")
def notice_discard(home: HomeOpt, notice_id: Annotated[str, NoticeArg], as_json: JsonOpt = False) -> None:
    """Discard one of our drafts; nothing is sent."""
    _action(home, notice_id, "discard", None, as_json)


@app.command("notices")
def notices_list(
    home: HomeOpt,
    limit: LimitOpt = 100,
    at: Annotated[
        str | None,
        typer.Option(
            metavar="LAT,LNG", help="Only notices, in any state but draft, that covered this place."
        ),
    ] = None,
    radius: Annotated[
        float | None, typer.Option(help="With --at: the place is a circle of this radius, in metres.")
    ] = None,
    at_time: Annotated[
        str | None,
        typer.Option("--when", callback=time_text, help="With --at: only those covering it then (RFC 3339)."),
    ] = None,
    altitude: Annotated[
        float | None, typer.Option(help="With --at: only at this altitude (m, WGS84).")
    ] = None,
    state: Annotated[str | None, typer.Option(help="Only notices that read this state now.")] = None,
    peer: Annotated[str | None, typer.Option(help="Only notices on the line with this peer.")] = None,
    direction: Annotated[str | None, typer.Option(help="Only ours (out) or the peer's (in).")] = None,
    category: Annotated[str | None, typer.Option(help="Only notices of this category.")] = None,
    before: Annotated[
        str | None,
        typer.Option(metavar="ID", help="The next page: those listed after this notice (the last shown)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List notices, newest first: sent and received, their state and conflicts."""
    if at is None and (radius, at_time, altitude) != (None, None, None):  # the station names at=
        fail("--radius, --when and --altitude narrow a place: give it with --at LAT,LNG", "invalid_input")
    params = {"limit": limit, "at": at, "radius_m": radius, "when": at_time, "altitude_m": altitude,
              "state": state, "peer": peer, "direction": direction, "category": category,
              "before": before}  # fmt: skip
    with client(home) as c:
        rows = c.get("/notices", params=params)

    def render(items: list[dict[str, Any]]) -> None:
        rows: list[tuple[str, ...]] = [
            (
                x["id"], x["direction"], x["peer"], x["category"], str(x["version"]),
                f"{x['state']} (refused)" if x.get("refused") else x["state"],
                when(x["starts_at"]), when(x["ends_at"], "open"), _holding(x["conflicts"]),
            )
            for x in items
        ]  # fmt: skip
        columns: tuple[str, ...] = (
            "id",
            "way",
            "peer",
            "category",
            "v",
            "state",
            "starts",
            "ends",
            "conflicts",
        )
        if at is not None:  # an investigator's question: was it delivered, and acknowledged, when?
            columns += ("delivered", "acknowledged")
            rows = [
                (*row, when(x["delivered_at"]), f"{x['acknowledged_by']} {when(x['acknowledged_at'])}".strip()
                 if x["acknowledged_at"] else "")
                for row, x in zip(rows, items, strict=True)
            ]  # fmt: skip
            if at_time is not None:  # and what had become of each by then
                columns += ("by then",)
                rows = [(*row, _standing(x["standing"])) for row, x in zip(rows, items, strict=True)]
            # Which site or activity each is ("the clinic at Site 40"), as the question names it.
            columns += ("text",)
            rows = [(*row, _said(x)) for row, x in zip(rows, items, strict=True)]
        if rows:
            wrap = ("starts", "ends", "delivered", "acknowledged", "by then", "text")
            listing(columns, rows, wrap=wrap)
            after, narrow = _next_page(items, at)
            limit_reached(len(rows), limit, after, narrow=narrow)
        else:
            out.print("No notices." if at is None else f"No notice covered {at}.")

    after, narrow = _next_page(rows, at)
    emit(rows, as_json, render, limit=limit, next_page=lambda _: after, narrow=narrow)


def _next_page(items: list[dict[str, Any]], at: str | None) -> tuple[str | None, str]:
    """How to list more notices than a full page: the next page's `--before`, or, for the
    notices over a place (which take no filter and no `--before`), a narrower question."""
    if at is None:
        return before_last(items), "a filter"
    return None, "a smaller --radius, or --when or --altitude, to narrow it"


def _said(notice: dict[str, Any]) -> str:
    """A notice's text as a table shows it; withheld from an auditor."""
    return "(withheld)" if notice.get("content_withheld") else str(notice.get("text") or "")


def _standing(standing: dict[str, Any]) -> str:
    """`acknowledged by stuttgart:anna 2026-11-28 03:12:40Z`, or `not sent yet`."""
    if standing["state"] is None:
        return "not sent yet"
    by = f" by {standing['by']}" if standing["by"] else ""
    return f"{standing['state']}{by} {when(standing['since'])}"


def _action(home: Path, notice_id: str, action: str, body: dict[str, Any] | None, as_json: bool) -> None:
    with client(home) as c:
        emit(c.post(f"/notices/{seg(notice_id)}/{action}", body), as_json, _print)


@notice_app.command("show")
def notice_show(home: HomeOpt, notice_id: Annotated[str, NoticeArg], as_json: JsonOpt = False) -> None:
    """Show a notice: its states, volumes and conflicts."""
    with client(home) as c:
        emit(c.get(f"/notices/{seg(notice_id)}"), as_json, _print)


@notice_app.command("ack")
def notice_ack(home: HomeOpt, notice_id: Annotated[str, NoticeArg], as_json: JsonOpt = False) -> None:
    """Acknowledge a notice from the peer, in your name."""
    _action(home, notice_id, "acknowledge", None, as_json)


@notice_app.command("reject")
def notice_reject(
    home: HomeOpt,
    notice_id: Annotated[str, NoticeArg],
    reason: Annotated[str, typer.Option(help="Why: sent sealed to the peer.")],
    as_json: JsonOpt = False,
) -> None:
    """Reject a notice from the peer, with a reason."""
    _action(home, notice_id, "reject", {"reason": reason}, as_json)


@notice_app.command("withdraw")
def notice_withdraw(home: HomeOpt, notice_id: Annotated[str, NoticeArg], as_json: JsonOpt = False) -> None:
    """Withdraw one of our notices."""
    _action(home, notice_id, "withdraw", None, as_json)
