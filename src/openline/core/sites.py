"""A CSV of protected sites in: `name,lat,lon,radius_m[,alt_lower_m,alt_upper_m,time_start,time_end]`
(headers in any case; `radius` for `radius_m`), a circle volume for each row, read through
openline.core.formats. A site without an altitude band is protected from `SITE_ALT_LOWER_M`
to `SITE_ALT_UPPER_M`, from now when it has no start, and with no end when it has none.
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Final

from openline.core.fields import FormatError, _Limits, _show, _time, _validated
from openline.core.volumes import Circle, Volume

# A protected site given without an altitude band is protected from below any terrain
# (the Dead Sea shore is at -430 m) to above any aircraft that could strike it.
SITE_ALT_LOWER_M: Final = -500.0
SITE_ALT_UPPER_M: Final = 20_000.0

SITE_COLUMNS: Final = ("name", "lat", "lon", "radius_m")
SITE_OPTIONAL_COLUMNS: Final = ("alt_lower_m", "alt_upper_m", "time_start", "time_end")
# Other spellings of a column, as spreadsheets head them: `radius` is in metres, as the
# issue's list of sites has it (name, lat, lon, radius).
SITE_COLUMN_ALIASES: Final = {"radius": "radius_m"}
_SITE_SHOWN: Final = 60  # the characters of a site's name that name its volume


def _sites(name: str, text: str, limits: _Limits) -> list[tuple[str, Volume, str]]:
    """Each site's name, volume, and how errors name its row. Every error about a row gives
    its line in the file: "volume n" counts only the rows that are not blank, and two sites
    may have one name."""
    # Universal newlines: Excel for Mac ends lines with a lone CR, which the csv module refuses
    # ("new-line character seen in unquoted field") unless it is turned into LF first.
    reader = csv.reader(io.StringIO(text, newline=None))
    try:
        first = next(reader, [])
        # Excel's "sep=," first line says the separator; the header follows it.
        sep = re.fullmatch(r"sep=(.)", ",".join(first).strip(" "), re.IGNORECASE)
        if sep and sep[1] != ",":
            raise FormatError(
                f"{name}: line 1: {_show(','.join(first).strip(' '))} says the columns are separated by "
                f"{_show(sep[1])}; a CSV of sites separates them by commas (export it as CSV, "
                "comma-separated)"
            )
        heading = next(reader, []) if sep else first
        header_line = reader.line_num
        header = [SITE_COLUMN_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in heading]
        rows = [(reader.line_num, row) for row in reader]  # the line a row ends on
    except csv.Error as exc:
        raise FormatError(f"{name}: not valid CSV: {exc}") from None
    missing = [c for c in SITE_COLUMNS if c not in header]
    if missing:
        # A spreadsheet set to a decimal comma exports columns separated by ';'.
        for other, also in ((";", ", and writes numbers with a decimal point"), ("\t", "")):
            split = [h.strip().lower() for h in ",".join(heading).split(other)]
            if all(c in [SITE_COLUMN_ALIASES.get(h, h) for h in split] for c in SITE_COLUMNS):
                raise FormatError(
                    f"{name}: line {header_line}: the columns are separated by {_show(other)}; a CSV of "
                    f"sites separates them by commas{also} (export it as CSV, comma-separated)"
                )
        raise FormatError(
            f"{name}: not JSON, so read as a CSV of sites, but its header "
            f"{_show(','.join(header))} lacks {', '.join(missing)}; expected the columns "
            f"{','.join(SITE_COLUMNS)} (and optionally {','.join(SITE_OPTIONAL_COLUMNS)})"
        )
    # A spreadsheet may export empty columns after the last: no name and no value.
    empty = {
        i
        for i, h in enumerate(header)
        if not h and not any(i < len(row) and row[i].strip() for _, row in rows)
    }
    if empty:
        header = [h for i, h in enumerate(header) if i not in empty]
        rows = [(line, [cell for i, cell in enumerate(row) if i not in empty]) for line, row in rows]
    unknown = [
        repr(h) if h else "one with no name but values"
        for h in header
        if h not in SITE_COLUMNS + SITE_OPTIONAL_COLUMNS
    ]
    if unknown or len(set(header)) != len(header):
        what = f"unknown column(s) {', '.join(unknown)}" if unknown else "a repeated column"
        raise FormatError(
            f"{name}: line {header_line}: {what}; the columns are {','.join(SITE_COLUMNS)} "
            f"and optionally {','.join(SITE_OPTIONAL_COLUMNS)}"
        )
    volumes: list[tuple[str, Volume, str]] = []
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        n = len(volumes) + 1
        if len(row) != len(header):
            raise FormatError(
                f"{name} volume {n} (line {line}): expected {len(header)} fields, got {len(row)}"
            )
        cells = {h: cell.strip() for h, cell in zip(header, row, strict=True)}
        site = cells["name"]
        # Named by its first characters: a name of thousands (a cell pasted whole) would be a
        # line of kilobytes in every message; the line tells the row.
        shown = site if len(site) <= _SITE_SHOWN else site[:_SITE_SHOWN] + "…"
        where = f"{name} volume {n} ({shown})"
        at = f"{name} volume {n} ({shown}, line {line})" if site else f"{name} volume {n} (line {line})"
        if not site:
            raise FormatError(f"{at}: name: empty; every site needs a name")
        lat = _csv_number(cells["lat"], at, "lat")
        lng = _csv_number(cells["lon"], at, "lon")
        radius = _csv_number(cells["radius_m"], at, "radius_m")
        lower = _csv_number(cells["alt_lower_m"], at, "alt_lower_m") if cells.get("alt_lower_m") else None
        upper = _csv_number(cells["alt_upper_m"], at, "alt_upper_m") if cells.get("alt_upper_m") else None
        start = _time(cells["time_start"], at, "time_start") if cells.get("time_start") else limits.now
        end = _time(cells["time_end"], at, "time_end") if cells.get("time_end") else None
        volume = Volume(
            Circle(lat, lng, radius),
            SITE_ALT_LOWER_M if lower is None else lower,
            SITE_ALT_UPPER_M if upper is None else upper,
            start,
            end,
            where,
        )
        try:
            volumes.append((site, _validated(volume, limits, open_ended=True), at))
        except FormatError as exc:  # named by the volume: by its row, with the line
            raise FormatError(at + str(exc).removeprefix(where)) from None
    if not volumes:
        raise FormatError(f"{name}: a CSV of sites with no sites (only a header)")
    return volumes


# A number as a spreadsheet writes one: ASCII digits, a point, an exponent. Python's
# float() also reads '1_000', Arabic-Indic digits and full-width ones.
_CSV_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _csv_number(text: str, where: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(f"{where}: {field}: expected a number, got {_show(text)}") from None
    if not math.isfinite(value):
        raise FormatError(f"{where}: {field}: expected a finite number, got {_show(text)}")
    if not _CSV_NUMBER.fullmatch(text):
        raise FormatError(
            f"{where}: {field}: expected a number in plain digits (0-9, a point, an exponent), "
            f"got {_show(text)}"
        )
    return value
