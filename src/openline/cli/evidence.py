"""`openline ledger key|checkpoint|export` and `openline prove`.

`ledger key` reads only the station home. `export` and `prove` read the station's
database directly (the server may be stopped, and a bundle of millions of entries is no
job for an HTTP API); `ledger checkpoint` asks the running station to sign one now.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from openline.cli.main import HomeOpt, JsonOpt, app, client, emit, fail
from openline.cli.render import err, out
from openline.errors import OpenLineError

if TYPE_CHECKING:  # the station's modules (SQLAlchemy and all) load only for the commands that need them
    from openline.services.station import Station

ledger_app = typer.Typer(help="The evidence ledger: keys, checkpoints, export.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@contextmanager
def _station(home: Path) -> Iterator[Station]:
    """The station's keys, card and database, without serving it."""
    from openline.runtime import build_station
    from openline.settings import load

    try:
        station = build_station(load(home))
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)
    try:
        yield station
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)
    finally:
        station.db.dispose()


@ledger_app.command(
    "key", short_help="Print the verifier key of checkpoints, or with --cosigner of cosignatures."
)
def ledger_key(
    home: HomeOpt,
    cosigner: Annotated[bool, typer.Option("--cosigner", help="The cosigning key instead.")] = False,
) -> None:
    """Print the verifier key of this station's checkpoints (sumdb/note form:
    <name>+<hex key ID>+<base64>), or with --cosigner that of its cosignatures."""
    from openline.adapters.home import load_keys
    from openline.core.card import make_card
    from openline.settings import load

    try:
        settings = load(home)
        card = make_card(load_keys(home), settings.name, [settings.url], settings.languages)
    except OpenLineError as exc:
        fail(exc.detail, exc.code.value)
    sys.stdout.write((card.cosigner_key if cosigner else card.ledger_key) + "\n")


@ledger_app.command("status", short_help="The ledger: size, checkpoints, cosigners, peers' witness state.")
def ledger_status(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """The ledger: size, entries waiting, the latest checkpoint and who cosigned it, each
    peer's witness state, and any evidence of a peer contradicting itself."""
    with client(home) as c:
        status = c.get("/ledger/status")

    def render(x: dict[str, Any]) -> None:
        out.print(f"Ledger of {x['size']} entries ({x['pending']} waiting); root {x['root']}")
        cp = x["cosigned_checkpoint"]
        if cp is None:
            out.print("No checkpoint cosigned by a peer yet.")
        else:
            out.print(f"Latest cosigned checkpoint: {cp['size']} entries, by {', '.join(cp['cosigned_by'])}.")
        for w in x["peers"]:
            ours = f"has cosigned {w['cosigned_size']} of our entries"
            if w.get("cosigned_lost") is not None:  # a station older than the field has none
                ours = (
                    f"cosigned {w['cosigned_lost']} entries of the log this station held before it was "
                    f"restored, and will not cosign this one (prove what was logged since on {w['peer']})"
                )
            line = f"  {w['peer']}: {ours}; we have cosigned {w['witnessed_size']} of theirs"
            out.print(line + (f"; last error: {w['last_error']}" if w["last_error"] else ""), markup=False)
        if x["evidence_count"]:
            out.print(f"[bold red]{x['evidence_count']} contradiction(s) kept as evidence:[/]", markup=True)
            for e in x["evidence"]:
                out.print(f"  {e['received_at']} {e['peer']} {e['kind']}: {e['detail']}", markup=False)

    emit(status, as_json, render)


@ledger_app.command("checkpoint")
def ledger_checkpoint(home: HomeOpt, as_json: JsonOpt = False) -> None:
    """Sign a checkpoint of the ledger now (the running station has its peers cosign it)."""
    with client(home) as c:
        cp = c.post("/ledger/checkpoint")

    def render(x: dict[str, Any]) -> None:
        by = ", ".join(x["cosigned_by"]) or "nobody yet"
        out.print(f"Checkpoint of {x['size']} entries, signed {x['signed_at']}, cosigned by {by}.")
        out.print(x["note"], highlight=False, markup=False, end="")

    emit(cp, as_json, render)


@contextmanager
def _progress(what: str, enabled: bool) -> Iterator[Any]:
    """A progress bar on stderr, or a no-op when it would only get in the way."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    with bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@ledger_app.command("export")
def ledger_export(
    home: HomeOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="A new directory for the bundle.")],
    peer: Annotated[
        str | None,
        typer.Option(
            "--peer",
            metavar="NAME",
            help="The bundle for one peer: the latest checkpoint it cosigned, with its card only.",
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            "--checkpoint",
            metavar="SIZE",
            min=1,
            help="The checkpoint of SIZE entries instead of the latest: the one `openline report` names.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a self-contained evidence bundle (C2SP tlog-tiles layout) for `openline verify`."""
    from openline.services import evidence

    with _station(home) as station, _progress("Exporting", not as_json) as progress:
        manifest = evidence.export_bundle(station, out_dir, progress, peer=peer, size=size)

    def render(m: dict[str, Any]) -> None:
        out.print(f"Wrote {m['size']} entries of {m['station']}'s ledger to {out_dir}")
        out.print(f"Checkpoint root {m['root']}; cards: {', '.join(m['cards'])}.")
        out.print(f"Check it anywhere with: openline verify {out_dir}")

    emit(manifest, as_json, render)


@app.command()
def prove(
    home: HomeOpt,
    subject_id: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="A call's id (from `openline calls`) or a notice's (from `openline notices`)."
        ),
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the proof (JSON).")],
    with_conflicts: Annotated[
        bool,
        typer.Option(
            "--with-conflicts",
            help="For a notice: also its conflicts with notices of other lines (their ids and overlap "
            "windows), left out by default.",
        ),
    ] = False,
    disclose: Annotated[
        bool,
        typer.Option(
            "--disclose",
            help="Also the opened bodies (with their salts) of the envelopes in the proof: what was "
            "said, which `openline verify` checks against the ledger's commitments. Left out by default.",
        ),
    ] = False,
) -> None:
    """Write a compact proof of what happened to one call or notice, for `openline verify`."""
    from openline.services import evidence

    if out_file.exists():
        fail(f"{out_file} exists already: choose a new file", "invalid_input")
    if not out_file.parent.is_dir():  # checked first, so that no work is done for nothing
        fail(f"cannot write {out_file}: {out_file.parent} is not a directory", "invalid_input")
    with _station(home) as station:
        made = evidence.proof(station, subject_id, with_conflicts=with_conflicts, disclose=disclose)
    proof = made.doc
    what = "notice" if "notice" in proof else "call"
    try:
        with open(out_file, "x", encoding="utf-8") as f:  # never over a file made meanwhile
            f.write(json.dumps(proof, indent=2) + "\n")
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}", "invalid_input")
    out.print(f"Wrote the proof of {what} {subject_id} ({len(proof['entries'])} entries) to {out_file}")
    if disclose:
        n = len(proof["disclosed"])
        out.print(
            f"It discloses the content of {n} envelope{'s' if n != 1 else ''}: hand it only to whoever "
            "may read what was said. Its reader needs an `openline verify` of 2026-11-29 or later: an "
            "older one refuses it (unknown fields ['disclosed']).",
            markup=False,
            highlight=False,
        )
    if made.left_out:
        n = len(made.left_out)
        out.print(
            f"Left out {n} conflict{'s' if n > 1 else ''} with a notice of another line "
            f"({', '.join(sorted(set(made.left_out)))}); --with-conflicts keeps {'them' if n > 1 else 'it'}.",
            markup=False,
            highlight=False,
        )
    out.print(f"Check it anywhere with: openline verify {out_file}")
