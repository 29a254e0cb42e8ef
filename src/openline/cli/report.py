"""`openline report`: the transparency report of one month (docs/ledger.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from openline.cli.main import HomeOpt, JsonOpt, app, client, emit, fail
from openline.cli.render import out
from openline.core import report as core

NOT_RECORDED = "n/r"  # a figure this version does not record


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _optional(value: int | None) -> str | Text:
    return Text(NOT_RECORDED, style="dim") if value is None else str(value)


# One row per figure and a column per line: a station has few lines, so it fits a terminal.
FIGURES: list[tuple[str, Callable[[dict[str, Any]], str | Text]]] = [
    ("calls placed", lambda x: str(x["calls_placed"])),
    ("calls received", lambda x: str(x["calls_received"])),
    ("picked up", lambda x: str(x["picked_up"])),
    ("missed", lambda x: str(x["missed"])),
    ("declined", lambda x: str(x["declined"])),
    ("cancelled", lambda x: str(x["cancelled"])),
    ("unresolved", lambda x: str(x["unresolved"])),
    ("time to pick-up, median", lambda x: _seconds(x["pickup_seconds"]["median"])),
    ("time to pick-up, p90", lambda x: _seconds(x["pickup_seconds"]["p90"])),
    ("link tests sent", lambda x: _optional(x["link_tests_sent"])),
    ("link tests answered", lambda x: _optional(x["link_tests_answered"])),
    ("notices acknowledged", lambda x: _optional(x["notices_acknowledged"])),
]


def _render(r: dict[str, Any]) -> None:
    out.print(
        f"[bold]Transparency report of {escape(r['station'])}, {escape(r['period'])}[/] (UTC)",
        markup=True,
        highlight=False,
    )
    t = Table()
    t.add_column("")
    columns = [*r["lines"], r["totals"]]
    for x in r["lines"]:
        t.add_column(x["peer"], justify="right")
    t.add_column("all lines", justify="right", style="bold")
    for name, figure in FIGURES:
        t.add_row(name, *(figure(x) for x in columns))
    out.print(t)
    if not r["lines"]:
        out.print(f"No calls in {r['period']}.")
    for what, why in r["not_recorded"].items():
        out.print(f"[dim]{NOT_RECORDED}[/] {escape(what.replace('_', ' '))}: {escape(why)}", markup=True)
    cp = r["checkpoint"]
    cosigned = "cosigned by " + (escape(", ".join(cp["cosigned_by"])) or "[yellow]no peer yet[/]")
    if not r["lines"]:  # a report names no peer whose line it does not show
        cosigned = "no cosignature shown, as no line is in this report"
    unvouched = sorted({x["peer"] for x in r["lines"]} - set(cp["cosigned_by"]))
    if cp["cosigned_by"] and unvouched:
        names = escape(", ".join(unvouched))
        station = escape(r["station"])
        cosigned += f"; [yellow]not by {names}[/], so the figures of {names} rest on {station}'s word alone"
    out.print(
        f"Computed against checkpoint [bold]{cp['size']}[/] of {escape(cp['origin'])}",
        markup=True,
        highlight=False,
    )
    out.print(f"  root {escape(cp['root'])}, {cosigned}", markup=True, highlight=False)
    _render_status(r)


def _render_status(r: dict[str, Any]) -> None:
    """As of when the figures are, whether the month was over by then, and how to get the
    evidence bundle they can be recomputed from."""
    size = r["checkpoint"]["size"]
    out.print(f"Figures as of {r['as_of']} (computed {r['computed_at']}).", highlight=False)
    if not r["complete"]:
        out.print(
            f"[yellow]{escape(r['period'])} had not ended as of {r['as_of']}: these are its figures so far, "
            "not the month's.[/]",
            markup=True,
            highlight=False,
        )
    held = r["held_back"]
    if held is not None:
        out.print(
            f"[yellow]Held back at checkpoint {size}: not every line's peer has cosigned this station's "
            f"latest, of {held['size']} entries, so the {held['entries']} entries since are left out "
            "(`openline ledger status` shows how far each peer has cosigned).[/]",
            markup=True,
            highlight=False,
        )
    by = r["checkpoint"]["cosigned_by"]
    # With one line, the bundle for its peer carries exactly the report's note. (The export
    # refuses, saying why, a checkpoint no peer has cosigned.)
    peer = f" --peer {by[0]}" if len(r["lines"]) == 1 and by else ""
    out.print(
        "Its evidence bundle, to recompute the figures: "
        f"openline ledger export --checkpoint {size}{peer} --out DIR",
        markup=False,
        highlight=False,
    )


@app.command(short_help="The transparency report for one month: calls, pick-ups, misses, time to pick up.")
def report(
    home: HomeOpt,
    period: Annotated[
        str | None, typer.Option(help="The month, YYYY-MM (UTC). Default: this month.", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The transparency report: per line, calls placed and received, picked up, missed, and
    time to pick-up for one month, against the latest checkpoint. Metadata only."""
    if period is not None:
        try:
            core.parse_period(period)
        except core.ReportError as exc:
            fail(str(exc), "invalid_input")
    with client(home) as c:
        data = c.get("/report", params={"period": period})
    emit(data, as_json, _render)
