"""`openline verify PATH`: check an evidence bundle, a call proof or a notice proof offline; with
`--about ID`, list what a verified bundle says of one call or notice.

No station home, no database, no network: a mediator who was handed the evidence runs it
on a machine of their own (docs/ledger.md, "Offline verification"). Exit 0 when
everything verifies, 1 when something does not, 2 when PATH is not evidence at all.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from openline.cli.main import app, fail
from openline.cli.render import err, out
from openline.core.card import Card, parse_card
from openline.core.disclosure import Disclosure
from openline.core.encoding import parse_json
from openline.core.evidence import NotEvidence, Result, Story, verify_bundle, verify_proof
from openline.errors import OpenLineError

BUNDLE_MANIFEST = "bundle.json"
# A proof holds one call's or notice's entries, about 2 kB each with its inclusion proof:
# this is a call of some hundred thousand messages. Anything larger is refused unread.
MAX_PROOF_BYTES = 256 * 1024 * 1024
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:-]{0,63}")  # a call's or a notice's id (UUIDs)


@app.command()
def verify(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH", help="An evidence bundle directory, or a call or notice proof (JSON)."
        ),
    ],
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust",
            metavar="CARD",
            help="A card file you trust. Every card in the evidence must match the trusted card "
            "of its name. Repeat for several.",
        ),
    ] = None,
    about: Annotated[
        str | None,
        typer.Option(
            "--about",
            metavar="ID",
            help="With a bundle: also list every entry about this call or notice (and the "
            "receipts for its envelopes), from the log as verified.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify an evidence bundle or a call or notice proof offline, and print each card's fingerprint."""
    trusted = _trusted(trust or [], as_json)
    if about is not None and not _ID.fullmatch(about):
        _unusable(f"--about: expected a call's or a notice's id, got {about!r:.60}", as_json)
    try:
        if about is not None and not (path.is_dir() or path.name == BUNDLE_MANIFEST):
            raise NotEvidence(
                "--about reads an evidence bundle (a proof is about its call or notice already)"
            )
        result = _run(path, trusted, show_progress=not as_json and err.is_terminal, about=about)
    except NotEvidence as exc:
        _unusable(f"{path}: {exc}", as_json)
    except OSError as exc:
        _unusable(f"cannot read {exc.filename or path}: {exc.strerror or exc}", as_json)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        _render(result, trusting=trusted is not None)
    if result.first_failure is not None:
        fail(escape(result.first_failure.message), "not_verified")


def _run(path: Path, trusted: list[Card] | None, *, show_progress: bool, about: str | None = None) -> Result:
    if path.is_dir() or path.name == BUNDLE_MANIFEST:
        with _progress(show_progress) as progress:
            return verify_bundle(
                _reader(path if path.is_dir() else path.parent),
                trusted=trusted,
                progress=progress,
                about=about,
            )
    if not path.exists():
        raise NotEvidence("no such file or directory")
    if not path.is_file():  # a FIFO or a device would be read for ever
        raise NotEvidence("not a regular file, so not a proof")
    size = path.stat().st_size
    if size > MAX_PROOF_BYTES:
        raise NotEvidence(
            f"{size:,} bytes is larger than any proof a station writes ({MAX_PROOF_BYTES:,} at most), "
            "so it is not one"
        )
    return verify_proof(path.read_bytes(), trusted=trusted)


def _reader(root: Path) -> Callable[[str], bytes | None]:
    """Bundle files by relative path; None for a file that is not there. The verifier asks
    only for paths of the documented layout; a symlink out of the bundle is not followed."""
    base = root.resolve()

    def read(rel: str) -> bytes | None:
        target = (base / rel).resolve()
        if not target.is_relative_to(base) or not target.is_file():  # nor a FIFO in the bundle
            return None
        try:
            return target.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    return read


@contextmanager
def _progress(shown: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on standard error, one step per entry bundle (256 entries)."""
    with Progress(
        TextColumn("verifying entry bundles"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not shown,
    ) as bar:
        task = bar.add_task("verify", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _trusted(paths: list[Path], as_json: bool) -> list[Card] | None:
    if not paths:
        return None
    cards = []
    for p in paths:
        try:
            cards.append(parse_card(parse_json(p.read_bytes())))
        except OSError as exc:
            _unusable(f"--trust {p}: cannot read it: {exc.strerror or exc}", as_json)
        except ValueError:
            _unusable(f"--trust {p}: not a JSON card", as_json)
        except OpenLineError as exc:
            _unusable(f"--trust {p}: {exc.detail}", as_json)
    return cards


def _unusable(message: str, as_json: bool) -> NoReturn:
    """Exit 2: nothing could be checked (as with a usage mistake)."""
    if as_json:
        sys.stdout.write(json.dumps({"ok": False, "error": message}, ensure_ascii=False) + "\n")
    err.print(
        f"[bold red]error[/] (unreadable): {escape(message)}", markup=True, highlight=False, soft_wrap=True
    )
    raise typer.Exit(2)


def _render(r: Result, *, trusting: bool = False) -> None:
    what = {"bundle": "Evidence bundle", "call-proof": "Call proof", "notice-proof": "Notice proof"}[r.kind]
    _say(f"[bold]{what}[/] of station [bold]{escape(r.station)}[/]")
    if r.cards:
        _say("Cards (compare each fingerprint with its station out of band):")
        for card in r.cards:
            mark = _trust_mark(card.name, card.trusted, trusting)
            _say(f"  {escape(card.name):<20} {card.fingerprint}{mark}")
    if r.checkpoint is not None:
        cp = r.checkpoint
        _say(f"Checkpoint: {escape(cp.origin)}, size {cp.size}, root {cp.root}")
    for cosig in r.cosignatures:
        _say(f"  {escape(cosig.note)}: cosigned by {escape(cosig.by)} at {cosig.at}")
    for line in r.passed:
        _say(f"  [green]ok[/]     {escape(line)}")
    for note in r.notes:
        _say(f"  [dim]note   {escape(note)}[/]")
    for f in r.failures:
        _say(f"  [bold red]FAILED[/] {escape(f.message)}")
    if r.reach is not None:
        _say(f"Covers: {escape(r.reach)}")
    if r.standing is not None:
        _say(f"Notice, in this proof: {escape(r.standing)}")
    if r.story is not None:
        _render_story(r.story, r.ok)
    if r.about:
        _render_about(r.about, r.ok)
    if r.disclosed:
        _render_disclosed(r.disclosed, r.ok)
    if r.ok:
        _say("[bold green]Verified.[/]")
    else:
        _say(f"[bold red]Not verified[/]: {len(r.failures)} check(s) failed.")


def _trust_mark(name: str, trusted: bool | None, trusting: bool) -> str:
    """A card nobody vouched for (no --trust card of its name) is not called forged."""
    if trusted is None:
        return f" [yellow](no trusted card given for {escape(name)})[/]" if trusting else ""
    return " [green](trusted)[/]" if trusted else " [red](NOT the trusted card)[/]"


def _render_story(s: Story, verified: bool) -> None:
    towards = "to" if s.direction == "out" else "from"
    told = "" if verified else " [dim](from the parts that verified)[/]"
    _say(
        f"Call [bold]{escape(s.call)}[/] ({s.direction}, {towards} {escape(s.peer)}, priority "
        f"{escape(s.priority)}): [bold]{s.outcome.replace('_', ' ')}[/]{told}"
    )
    for e in s.events:
        _say(f"  {e.at}  {escape(e.text)}")


def _render_about(found: list[dict[str, Any]], verified: bool) -> None:
    """Each entry as its time, number and type, then its fields (a content commitment only
    as "content committed": it proves what was said without showing it)."""
    told = "" if verified else " [dim](from a log that did not verify)[/]"
    _say(f"Entries about it ({len(found)}), in log order{told}:")
    for item in found:
        entry = item["entry"]
        rest = ", ".join(
            f"{k}={v}" if k != "content" else "content committed"
            for k, v in entry.items()
            if k not in ("v", "type", "at")
        )
        at, kind = escape(str(entry["at"])), escape(str(entry["type"]))
        _say(f"  {at}  #{item['index']} [bold]{kind}[/]  {escape(rest)}")


def _render_disclosed(shown: list[Disclosure], verified: bool) -> None:
    """What each disclosed body says, under the envelope and the entry that commits to it."""
    told = "" if verified else " [dim](from a proof that did not verify)[/]"
    _say(f"Disclosed content ({len(shown)}), each body checked against the digest committed to{told}:")
    for d in shown:
        logged = "sent" if d.entry_type == "envelope.sent" else "received"
        envelope = f"envelope {escape(d.envelope)}, {logged} (entry #{d.index})"
        _say(f"  {escape(d.at)}  [bold]{escape(d.kind)}[/] {envelope}")
        for line in d.lines:
            _say(f"    {escape(line)}")


def _say(markup: str) -> None:
    out.print(markup, markup=True, highlight=False, soft_wrap=True)
