"""`openline user token add|list|revoke`: each person's own API token, so that the CLI acts
as them (`OPENLINE_TOKEN_FILE`) and the audit trail names them, not the administrator."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from openline.cli.client import TOKEN_FILE_ENV, seg
from openline.cli.main import HomeOpt, JsonOpt, client, emit, fail, user_app
from openline.cli.render import listing, out, when

token_app = typer.Typer(help="A user's API tokens, for the CLI and the API.", no_args_is_help=True)
user_app.add_typer(token_app, name="token")

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The user.")]


def _new_file(path: Path) -> IO[str]:
    """`path`, created empty with mode 0600, before anything is issued: a file that exists
    (or a link) is never written over, and a place that cannot be written is found now."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{path} exists already: choose a new file; no token was issued", "invalid_input")
    except (FileNotFoundError, NotADirectoryError) as exc:
        # A directory that refuses new files (/proc, say) answers ENOENT too.
        why = exc.strerror if path.parent.is_dir() else f"{path.parent} is not a directory"
        fail(f"cannot write {path}: {why}; no token was issued", "invalid_input")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}; no token was issued", "invalid_input")
    return os.fdopen(fd, "w", encoding="ascii")


@token_app.command("add")
def token_add(
    home: HomeOpt,
    name: NameArg,
    label: Annotated[str, typer.Option(help="Tells the user's tokens apart: 1-64 printable characters.")],
    out_file: Annotated[Path, typer.Option("--out", help="A new file for the token (mode 0600).")],
    as_json: JsonOpt = False,
) -> None:
    """Issue an API token for a user and write it to a new file, for OPENLINE_TOKEN_FILE."""
    f = _new_file(out_file)
    written = False
    try:
        with client(home) as c:
            issued = c.post(f"/users/{seg(name)}/tokens", {"label": label})
            try:
                f.write(issued["token"] + "\n")
                f.close()
            except OSError as exc:
                c.delete(f"/users/{seg(name)}/tokens/{issued['id']}")
                fail(f"cannot write {out_file}: {exc.strerror or exc}; the token is revoked", "invalid_input")
        written = True
    finally:
        if not written:  # refused, or failed: leave no file behind
            with contextlib.suppress(OSError):
                f.close()
            out_file.unlink(missing_ok=True)
    shown = {k: v for k, v in issued.items() if k != "token"} | {"file": str(out_file)}

    def render(x: dict[str, Any]) -> None:
        out.print(f"Token {x['id']} ({x['label']}) of {x['user']} written to {x['file']} (mode 0600).")
        out.print(f"Whoever holds the file acts as {x['user']}: give it to them alone. They use it so:")
        out.print(f"  {TOKEN_FILE_ENV}={Path(x['file']).absolute()} openline roster", soft_wrap=True)
        out.print(f"Revoke it with: openline user token revoke {x['user']} {x['id']}", soft_wrap=True)

    emit(shown, as_json, render)


@token_app.command("list")
def token_list(home: HomeOpt, name: NameArg, as_json: JsonOpt = False) -> None:
    """List a user's API tokens: id, label, when issued (never the tokens themselves)."""
    with client(home) as c:
        tokens = c.get(f"/users/{seg(name)}/tokens")

    def render(items: list[dict[str, Any]]) -> None:
        if not items:
            out.print(f"{name} has no API tokens.")
            return
        rows = [(str(x["id"]), x["label"], when(x["created_at"])) for x in items]
        listing(("id", "label", "created"), rows, wrap=("label", "created"))

    emit(tokens, as_json, render)


@token_app.command("revoke")
def token_revoke(
    home: HomeOpt,
    name: NameArg,
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (from `user token list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke one of a user's API tokens: it stops working at once."""
    with client(home) as c:
        revoked = c.delete(f"/users/{seg(name)}/tokens/{token_id}")

    def render(x: dict[str, Any]) -> None:
        out.print(f"Token {x['id']} ({x['label']}) of {x['user']} revoked: it no longer works.")

    emit(revoked, as_json, render)
