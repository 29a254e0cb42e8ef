"""The documentation keeps up with the code: every CLI command and option is in
docs/cli.md, every wire error code in docs/protocol.md (after datasette's test_docs.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from openline.cli.main import app
from openline.errors import Code

DOCS = Path(__file__).resolve().parent.parent / "docs"
HEADING_RE = re.compile(r"^#{2,3} `openline ([a-z -]+)`\s*$", re.MULTILINE)


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(`line add`, click command) for every command that does something, depth first.
    Typer vendors its own click, so groups are recognised by their `commands`, not a class."""
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in sorted(subcommands.items()):
            if not getattr(sub, "hidden", False):
                yield from _commands(sub, (*path, name))
    elif path:
        yield " ".join(path), command


def _sections(text: str) -> dict[str, str]:
    """Each `## \\`openline X\\`` heading's text, up to the next such heading."""
    marks = list(HEADING_RE.finditer(text))
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return {m[1]: text[m.end() : end] for m, end in zip(marks, ends, strict=True)}


COMMANDS = dict(_commands(typer.main.get_command(app)))
CLI_SECTIONS = _sections((DOCS / "cli.md").read_text())


def test_docs_cli_walk_finds_every_command() -> None:
    # Guards the test itself: if introspection broke, the tests below would pass vacuously.
    assert {"init", "serve", "card", "line add", "call", "calls", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_docs_cli_documents_every_command_and_its_parameters(name: str) -> None:
    assert name in CLI_SECTIONS, f"docs/cli.md has no section headed `openline {name}`"
    section = CLI_SECTIONS[name]
    missing = []
    for param in COMMANDS[name].params:
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            wanted = [(param.metavar or param.name).upper()]
        else:
            wanted = [*param.opts, *param.secondary_opts]
        envvar = getattr(param, "envvar", None)
        wanted += [envvar] if isinstance(envvar, str) else list(envvar or [])
        missing += [f"`{w}`" for w in wanted if not re.search(rf"`{re.escape(w)}\b", section)]
    assert not missing, f"docs/cli.md, section `openline {name}`, does not mention {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_help_lists_each_command_on_unbroken_lines(name: str) -> None:
    # `openline --help` lists a command by its short help, else its docstring's first
    # paragraph, keeping that paragraph's line breaks (Typer's rich mode): a docstring
    # wrapped in the source showed as a summary broken in mid-sentence.
    command = COMMANDS[name]
    listed = command.short_help or (command.help or "").split("\n\n")[0]
    assert listed.strip(), f"`openline {name}` has no help"
    assert "\n" not in listed.strip(), (
        f"`openline {name}` is listed with a line break; give it a one-line short_help"
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_usage_names_each_argument_in_capitals(name: str) -> None:
    # `Usage: openline say [OPTIONS] CALL TEXT`, as docs/cli.md writes it: click would
    # print an argument without a metavar as {text}.
    for param in COMMANDS[name].params:
        if param.param_type_name == "argument":
            assert param.metavar, f"`openline {name}`: argument {param.name} has no metavar"
            assert param.metavar.isupper(), f"`openline {name}`: metavar {param.metavar!r}"


def test_docs_cli_documents_no_command_that_does_not_exist() -> None:
    assert set(CLI_SECTIONS) <= set(COMMANDS), set(CLI_SECTIONS) - set(COMMANDS)


@pytest.mark.parametrize("code", sorted(c.value for c in Code))
def test_docs_protocol_documents_every_error_code(code: str) -> None:
    table_row = re.compile(rf"^\| `{re.escape(code)}` \|", re.MULTILINE)
    assert table_row.search((DOCS / "protocol.md").read_text()), (
        f"docs/protocol.md has no row for error code `{code}` in its error code table"
    )
