"""`openline conflicts FILE [FILE ...]`: the offline planning check.

No station home, no database, no network: it reads notice, ASTM Volume4D, GeoJSON or CSV
files (openline.core.formats) and checks every volume against the volumes of the other
files (openline.core.conflicts). Each file is one activity, so volumes of the same file
never conflict with each other, and two files of what must not be struck (a CSV of
sites, a `protected_site` or `protected_movement` notice) are not checked against each
other: a conflict is an activity against another, or an activity against a protected site
or movement (docs/notices.md).

Exit 0 when no pair conflicts, 1 when one or more do, 2 on invalid input.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from openline.cli.main import app
from openline.cli.options import finite
from openline.cli.render import err, out
from openline.core.clock import SystemClock, rfc3339

# The geometry libraries (shapely, pyproj, rtree) are imported when this command runs,
# not by every command that imports the CLI.
if TYPE_CHECKING:
    from openline.core.conflicts import Margins, PairResult
    from openline.core.formats import ParsedNotice
    from openline.core.volumes import Volume

# Up to this many pairs, every pair is checked exactly and listed (about a millisecond
# each). Above it, the R-tree finds the pairs that come within NEAR_M of conflicting
# (beyond the horizontal margin); those are checked and listed, and the rest only counted.
PAIRWISE_LIMIT = 1_000
NEAR_M = 5_000.0


@dataclass(frozen=True)
class _Pair:
    a: Volume
    b: Volume
    result: PairResult


@app.command("conflicts")
def conflicts_cmd(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE", help="Notice, ASTM Volume4D, GeoJSON or CSV files; each one is one activity."
        ),
    ],
    margin_horizontal: Annotated[
        float,
        typer.Option(
            "--margin-horizontal",
            metavar="M",
            min=0,
            callback=finite,
            help="Horizontal separation margin, metres.",
        ),
    ] = 0.0,
    margin_vertical: Annotated[
        float,
        typer.Option(
            "--margin-vertical",
            metavar="M",
            min=0,
            callback=finite,
            help="Vertical separation margin, metres.",
        ),
    ] = 0.0,
    margin_minutes: Annotated[
        int,
        typer.Option("--margin-minutes", metavar="N", min=0, help="Time separation margin, minutes."),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check the volumes of several files against each other, offline; exit 1 on a conflict."""
    from openline.core.conflicts import Margins, check

    now = SystemClock().now()
    parsed = _read_all(files, now, as_json)
    margins = Margins(horizontal_m=margin_horizontal, vertical_m=margin_vertical, minutes=margin_minutes)
    total = _pair_count(parsed)
    listed = "all" if total <= PAIRWISE_LIMIT else "near"
    pairs = _pairs(parsed) if listed == "all" else _near_pairs(parsed, margins)
    checked = [_Pair(a, b, check(a, b, margins)) for a, b in pairs]
    conflicts = [p for p in checked if p.result.conflict]
    clear = [p for p in checked if not p.result.conflict]
    result = _to_json(files, parsed, margins, total, listed, conflicts, clear)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        _render(result)
    if conflicts:
        raise typer.Exit(1)


def _read_all(files: list[Path], now: int, as_json: bool) -> list[ParsedNotice]:
    from openline.core.formats import FormatError, parse

    seen: dict[Path, Path] = {}
    parsed = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            _invalid(f"cannot read {path}: {exc.strerror or exc}", as_json)
        if (same := seen.setdefault(path.resolve(), path)) is not path:
            twice = f"{path} is given twice" if str(same) == str(path) else f"{path} is {same} again"
            _invalid(f"{twice}: each file is one activity, give it once", as_json)
        try:
            parsed.append(parse(str(path), data, now=now))
        except FormatError as exc:
            _invalid(str(exc), as_json)
    return parsed


def _checked(x: ParsedNotice, y: ParsedNotice) -> bool:
    """Whether the volumes of two files are checked against each other."""
    from openline.core.notices import may_conflict

    return may_conflict(x.category, y.category)


def _pair_count(parsed: list[ParsedNotice]) -> int:
    return sum(
        len(x.volumes) * len(y.volumes)
        for i, x in enumerate(parsed)
        for y in parsed[i + 1 :]
        if _checked(x, y)
    )


def _pairs(parsed: list[ParsedNotice]) -> list[tuple[Volume, Volume]]:
    return [
        (a, b)
        for i, x in enumerate(parsed)
        for y in parsed[i + 1 :]
        if _checked(x, y)
        for a in x.volumes
        for b in y.volumes
    ]


def _near_pairs(parsed: list[ParsedNotice], margins: Margins) -> list[tuple[Volume, Volume]]:
    """The pairs that would conflict with the horizontal margin NEAR_M wider, found by the
    index: every conflicting pair, and the clear pairs that came close."""
    from openline.core.conflicts import ConflictIndex, Margins

    near = Margins(margins.horizontal_m + NEAR_M, margins.vertical_m, margins.minutes)
    index = ConflictIndex.bulk(((i, n), v) for i, x in enumerate(parsed) for n, v in enumerate(x.volumes))
    found = []
    for i, x in enumerate(parsed):
        for n, a in enumerate(x.volumes):
            for (j, m), _ in index.query(a, near):
                if j > i and _checked(x, parsed[j]):
                    found.append(((i, n), (j, m), a, parsed[j].volumes[m]))
    found.sort(key=lambda f: (f[0], f[1]))
    return [(a, b) for _, _, a, b in found]


def _to_json(
    files: list[Path],
    parsed: list[ParsedNotice],
    margins: Margins,
    total: int,
    listed: str,
    conflicts: list[_Pair],
    clear: list[_Pair],
) -> dict[str, Any]:
    return {
        "files": [
            {"file": str(path), "format": p.kind, "category": p.category, "volumes": len(p.volumes)}
            for path, p in zip(files, parsed, strict=True)
        ],
        "margins": {
            "horizontal_m": margins.horizontal_m,
            "vertical_m": margins.vertical_m,
            "minutes": margins.minutes,
        },
        "pairs": total,
        "conflict_count": len(conflicts),
        "clear_count": total - len(conflicts),
        "clear_listed": listed,
        "conflicts": [_pair_json(p) for p in conflicts],
        "clear": [_pair_json(p) for p in clear],
    }


def _pair_json(p: _Pair) -> dict[str, Any]:
    r = p.result
    return {
        "a": p.a.name,
        "b": p.b.name,
        "conflict": r.conflict,
        "time": None if r.time is None else {"start": rfc3339(r.time[0]), "end": rfc3339(r.time[1])},
        "altitude": None if r.altitude is None else {"lower_m": r.altitude[0], "upper_m": r.altitude[1]},
        "distance_m": r.distance_m,
    }


def _render(result: dict[str, Any]) -> None:
    for f in result["files"]:
        what = f["format"] if f["category"] is None else f"{f['format']}, {f['category']}"
        _say(f"[dim]{escape(f['file'])}: {what}, {f['volumes']} volume(s)[/]")
    for p in result["conflicts"]:
        _say(f"[bold red]CONFLICT[/] {escape(p['a'])} with {escape(p['b'])}")
        _say(f"  time {_window(p['time'])}; altitude {_band(p['altitude'])}")
    for p in result["clear"]:
        # Under a metre to the millimetre: 2 cm apart is clear, and "0.0 m" read as touching.
        d = p["distance_m"]
        apart = f"{d:,.1f} m apart" if d >= 1 or d == 0 else f"{d:.3f} m apart"
        if p["time"] is None:
            apart = f"apart in time (outlines {apart})"
        elif p["altitude"] is None:
            apart = f"apart in altitude (outlines {apart})"
        _say(f"[green]clear[/]    {escape(p['a'])} with {escape(p['b'])}: {apart}")
    m = result["margins"]
    margins = f"margins {m['horizontal_m']:g} m, {m['vertical_m']:g} m, {m['minutes']} min"
    summary = (
        f"{result['conflict_count']:,} conflicting and {result['clear_count']:,} clear of "
        f"{result['pairs']:,} pair(s) of volumes from different activities; {margins}."
    )
    if result["clear_listed"] == "near":
        summary += (
            f" More than {PAIRWISE_LIMIT:,} pairs: only the {len(result['clear']):,} clear pair(s) "
            f"within {NEAR_M:,.0f} m beyond the margins are listed."
        )
    _say(f"[bold red]{summary}[/]" if result["conflicts"] else f"[bold green]{summary}[/]")


def _window(time: dict[str, Any]) -> str:
    return f"{time['start']} to {time['end'] or 'open end'}"


def _band(altitude: dict[str, Any]) -> str:
    return f"{altitude['lower_m']:,.1f} m to {altitude['upper_m']:,.1f} m (WGS84)"


def _invalid(message: str, as_json: bool) -> NoReturn:
    if as_json:
        sys.stdout.write(json.dumps({"error": message}, ensure_ascii=False) + "\n")
    err.print(
        f"[bold red]error[/] (invalid_input): {escape(message)}", markup=True, highlight=False, soft_wrap=True
    )
    raise typer.Exit(2)


def _say(markup: str) -> None:
    out.print(markup, markup=True, highlight=False, soft_wrap=True)
