"""How the CLI prints for people: its consoles, times to the second, and listings that
stay readable in an 80-column terminal. --json output does not come through here.

The consoles print text as it is (`markup=False`): a call's subject, a message or a site's
name comes from people and peers, and rich markup in it ("[/]", "[link=...]") must neither
crash the CLI nor restyle or hide anything; nor may a control character in it act on the
terminal (it is shown as \\x1b). A print of our own markup says `markup=True`
and passes every value it interpolates through `escape`. A line that holds peer text is cut
to the terminal's width here (`marked`), not by the terminal, so that what the text runs
on to is marked as its own."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from openline.core.clock import parse_rfc3339
from openline.core.encoding import visible


class _Console(Console):
    """Prints each string with its control characters spelled out (\\x1b), never obeyed:
    text from people and peers may carry an ESC sequence or a carriage return that would
    clear the screen or rewrite a line on the officer's terminal.

    Into a file or a pipe, a message (a str or Text, not a table) is printed on one line:
    rich would wrap it at 80 columns (or COLUMNS), splitting an id or a file name a script
    or a log reader looks for. A line `marked` cut is cut already."""

    def print(self, *objects: Any, **options: Any) -> None:
        if (
            "soft_wrap" not in options
            and not self.is_terminal
            and all(isinstance(o, str | Text) for o in objects)
        ):
            options["soft_wrap"] = True
        super().print(*(visible(o) if isinstance(o, str) else o for o in objects), **options)


out = _Console(markup=False)
err = _Console(stderr=True, markup=False)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def when(text: str | None, absent: str = "") -> str:
    """A time as a listing shows it: UTC to the second, "2026-11-27 16:06:14Z", so that a
    table of calls or notices fits a terminal. `show` and --json keep the microseconds."""
    if not text:
        return absent
    try:
        at = _EPOCH + timedelta(microseconds=parse_rfc3339(text))
    except ValueError:
        return text
    return at.strftime("%Y-%m-%d %H:%M:%SZ")


Cell = str | Text  # a str is shown as it is; a Text carries our own styling


MAX_LIMIT = 1_000  # the most a listing's --limit takes (the API's own cap)


def limit_reached(
    shown: int,
    limit: int,
    next_page: str | None = None,
    *,
    to_stderr: bool = False,
    narrow: str | None = "a filter",
) -> None:
    """Under a listing cut at `--limit`, newest first: say that older ones may follow, so
    that a full page is not taken for the whole, and how to list them: `next_page`, the
    option that starts the next page (`--before ID`, `--until TIME`), else a larger
    `--limit` while there is one, and `narrow` (None for a listing that takes no filter,
    such as the audit trail). Under --json, on standard error, which stays out of the JSON."""
    if shown < limit:
        return
    if next_page is not None:
        ways = [f"{next_page} lists the next {limit:,}"]
    else:
        ways = ["--limit, up to 1,000"] if limit < MAX_LIMIT else []
    ways += [narrow] if narrow else []
    more = f" ({', or '.join(ways)})" if ways else ""
    note = Text(f"{limit:,} are listed, newest first; there may be more{more}.", "dim")
    (err if to_stderr else out).print(note)


def listing(
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    wrap: Sequence[str] = (),
    title: str | None = None,
) -> None:
    """Print rows (text as it is, or styled Text) as a table whose first column, an id or a
    name, is never shortened. Only the `wrap` columns (free text) may wrap; when even so the table
    is wider than the terminal, each row is printed as a block instead: its first value,
    then the others as `column value`, packed onto indented lines, so that nothing is cut
    to an ellipsis."""
    widths = _column_widths(columns, rows, wrap, out.width)
    if widths is not None:
        table = Table(title=title)
        for name, width in zip(columns, widths, strict=True):
            free = name in wrap
            table.add_column(name, width=width, no_wrap=not free, overflow="fold" if free else "ellipsis")
        for row in rows:
            table.add_row(*(_text(cell) for cell in row))
        out.print(table)
        return
    if title:
        out.print(marked((title, "bold")))
    room = max(out.width - 2, 20)
    for i, row in enumerate(rows):
        if i:
            out.print()
        key = _text(row[0]).copy()
        key.stylize("bold")
        out.print(marked((columns[0], "dim"), " ", key), highlight=False)
        lines: list[Text] = []
        for name, value in zip(columns[1:], row[1:], strict=True):
            if not value:
                continue
            piece = Text.assemble((name, "dim"), " ", _text(value))
            if lines and lines[-1].cell_len + 2 + piece.cell_len <= room:
                lines[-1].append("  ").append_text(piece)
            else:
                lines.append(piece)
        for line in lines:
            out.print(marked("  ", line), highlight=False)  # a value longer than a line goes on marked


_WRAPPED_MIN = 12  # the narrowest a free-text column is worth keeping in a table


MARK = "    │ "  # begins each further line of peer text, in a column where no line of ours begins
_TAB = 8


def marked(*parts: str | tuple[str, str] | Text) -> Text:
    """One line of our words and peer text, given as `Text.assemble` takes them (a str, or
    a (str, style), with its control characters spelled out; a Text as ours), cut to the
    terminal's width: each line after the first, whether a line feed in the text or the
    width began it, starts with MARK. Left to the terminal, a long line went on at the
    first column, where a peer's text padded to the width (with blanks such as U+2800 that
    no wrapping drops) printed a line that read as a receipted message of ours."""
    line = Text.assemble(*(_part(p) for p in parts))
    line.expand_tabs(_TAB)
    rest = max(out.width - cell_len(MARK), 1)
    lines: list[Text] = []
    for paragraph in line.split("\n", allow_blank=True):
        lines += _cut(paragraph, rest if lines else out.width, rest)
    return Text("\n").join(
        [lines[0], *(Text(MARK if piece else MARK.rstrip()).append_text(piece) for piece in lines[1:])]
    )


def _part(part: str | tuple[str, str] | Text) -> Text:
    if isinstance(part, Text):
        return part
    text, style = (part, "") if isinstance(part, str) else part
    return Text(visible(text), style)


_TOKEN = re.compile(r"\s+|\S+")


def _cut(text: Text, first: int, rest: int) -> list[Text]:
    """`text`, one line, cut into lines of at most `first` cells, then `rest`: between
    words, dropping the blanks there, and inside a word only when it is longer than a line.
    Blanks that begin the text are kept; those that end a line are not."""
    plain = text.plain
    spans: list[tuple[int, int]] = []
    start = end = used = 0  # the current line: where it starts, where its last word ends, its cells
    room = first

    def new_line(at: int) -> None:
        nonlocal start, end, used, room
        spans.append((start, end))
        start = end = at
        used, room = 0, rest

    for token in _TOKEN.finditer(plain):
        width = cell_len(token.group())
        if token.group().isspace():
            if used + width <= room:
                used += width
            else:
                new_line(token.end())
            continue
        if used + width > room and end > start:
            new_line(token.start())
        if used + width <= room:
            used += width
        else:  # longer than a line: folded
            for at, char in enumerate(token.group(), token.start()):
                size = cell_len(char)
                if used + size > room and used:
                    end = at
                    new_line(at)
                used += size
        end = token.end()
    if end > start or not spans:
        spans.append((start, end))
    return [text[a:b] for a, b in spans]


def _text(cell: Cell) -> Text:
    """A cell's text: a line break in it is shown as ↵, since a value that went on to the
    next line could pass for another row (a subject from the peer faked a call that way)."""
    return cell if isinstance(cell, Text) else Text(visible(cell).replace("\n", " ↵ "))


def _column_widths(
    columns: Sequence[str], rows: Sequence[Sequence[Cell]], wrap: Sequence[str], room: int
) -> list[int] | None:
    """Each column's width in a table `room` cells wide with nothing shortened, or None
    when there is no such table. A column is as wide as its widest value; a free-text
    column may be as narrow as its longest word (at least _WRAPPED_MIN, if any value is
    that long), and they share what room is left in proportion to what they lack."""
    widest, narrowest = [], []
    for i, name in enumerate(columns):
        texts = [Text(name), *(_text(row[i]) for row in rows)]
        most = max(text.cell_len for text in texts)
        widest.append(most)
        if name in wrap:
            longest_word = max((cell_len(w) for text in texts for w in text.plain.split()), default=0)
            narrowest.append(max(longest_word, min(_WRAPPED_MIN, most)))
        else:
            narrowest.append(most)
    room -= 3 * len(columns) + 1  # a space either side of each value, rules between and around
    if sum(widest) <= room:
        return widest
    spare = room - sum(narrowest)
    if spare < 0:
        return None
    lack = [most - least for most, least in zip(widest, narrowest, strict=True)]
    return [least + spare * short // sum(lack) for least, short in zip(narrowest, lack, strict=True)]
