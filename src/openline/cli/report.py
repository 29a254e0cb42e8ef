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
    cosigned = escape(", ".join(cp["cosigned_by"])) or "[yellow]no peer yet[/]"
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
    out.print(f"  root {escape(cp['root'])}, cosigned by {cosigned}", markup=True, highlight=False)


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
