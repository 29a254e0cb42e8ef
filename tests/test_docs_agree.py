"""Where the docs promise what the software does, the software keeps it and the docs
show it as it is: the card in docs/protocol.md, a 405's Allow header, the files of a
station home in docs/operations.md, and the `notices` options of docs/cli.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openline.cli.main import app
from openline.core import card as card_mod
from openline.core.clock import FakeClock
from tests.inproc import make_node
from tests.notice_docs import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def test_docs_protocol_card_example_is_a_card_the_station_accepts() -> None:
    section = _section((DOCS / "protocol.md").read_text(), "## Station cards")
    example = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    card = card_mod.parse_card(example)
    assert list(example) == list(card.to_json())
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)
    assert documented == list(card.to_json())


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/v1/calls", "GET, HEAD, POST"),
        ("/api/v1/users", "GET, HEAD, POST"),
        ("/api/v1/lines", "GET, HEAD, POST"),
        ("/api/v1/notices", "GET, HEAD, POST"),
        ("/static/console.css", "GET, HEAD"),  # a mount: the static files name their own
    ],
)
def test_api_405_allow_names_every_method_the_path_takes(
    tmp_path: Path, clock: FakeClock, path: str, allow: str
) -> None:
    # protocol.md: "the `Allow` header lists those it takes"; each method is its own route.
    node = make_node(tmp_path, "stuttgart", clock, None)
    before = node.snapshot()
    r = node.api.patch(path)
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    assert r.headers["allow"] == allow
    for method in allow.split(", "):
        assert node.api.request(method, path).status_code != 405
    assert node.snapshot() == before


def test_docs_operations_home_table_names_every_file_init_writes(tmp_path: Path, clock: FakeClock) -> None:
    node = make_node(tmp_path, "stuttgart", clock, None)
    section = _section((DOCS / "operations.md").read_text(), "## The station home")
    rows = dict(re.findall(r"^\| `([^`]+)` \| ([0-7]{4}) \|", section, re.MULTILINE))
    written = {p.name for p in node.home.iterdir() if not p.name.startswith("openline.db-")}
    assert written >= {"ledger.key", "cosign.key"}
    for name in written:
        assert name in rows, f"docs/operations.md does not say what `{name}` in the home is"
        mode = f"{node.home.joinpath(name).stat().st_mode & 0o777:04o}"
        assert rows[name] == mode, name


def test_cli_notices_radius_is_a_radius_in_its_help() -> None:
    result = CliRunner().invoke(app, ["notices", "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    assert "With --at: the place is a circle of this radius, in metres." in flat
    assert "wide" not in flat


@pytest.mark.parametrize(
    "narrowing", [("--radius", "5"), ("--when", "2026-11-27T00:00:00Z"), ("--altitude", "100")]
)
def test_cli_notices_narrowing_without_at_names_the_cli_option(
    tmp_path: Path, clock: FakeClock, monkeypatch: Any, narrowing: tuple[str, str]
) -> None:
    """The station's answer names the API's parameter (at=LAT,LNG), not the CLI's option."""
    node = make_node(tmp_path, "stuttgart", clock, None)
    result = cli(node, monkeypatch, "notices", *narrowing)
    assert result.exit_code == 1
    assert result.stderr == (
        "error (invalid_input): --radius, --when and --altitude narrow a place: give it with --at LAT,LNG\n"
    )
    api = node.api.get("/api/v1/notices", params={"radius_m": 5})
    assert api.status_code == 422
    assert "give it with at=LAT,LNG" in api.json()["detail"]


def test_docs_api_names_every_operation_and_who_may(tmp_path: Path, clock: FakeClock) -> None:
    """docs/api.md's tables: every local API operation, no other, each with the roles
    tests/test_access.py holds the station to, and a CLI command that exists."""
    from openline.services.accounts import Role
    from tests.test_access import MATRIX

    text = (DOCS / "api.md").read_text()
    row = r"^\| `(GET|POST|PUT|DELETE) (/api/v1/[^`]*)` \| ([^|]+) \| ([^|]+) \|"
    rows = re.findall(row, text, re.MULTILINE)
    who = {
        "every role": frozenset(Role),
        "watch roles": frozenset(Role) - {Role.AUDITOR},
        "administrator": frozenset({Role.ADMINISTRATOR}),
        "roster keepers": frozenset({Role.ADMINISTRATOR, Role.SENIOR_WATCH_OFFICER}),
        "administrator, auditor": frozenset({Role.ADMINISTRATOR, Role.AUDITOR}),
    }
    documented = {(method, path): who[roles.strip()] for method, path, roles, _ in rows}
    assert len(documented) == len(rows)  # none twice
    assert documented == MATRIX
    node = make_node(tmp_path, "stuttgart", clock, None)
    served = {
        (method.upper(), path)
        for path, operations in node.app.openapi()["paths"].items()
        if path.startswith("/api/v1")
        for method in operations
    }
    assert set(documented) == served
    commands = {c.strip("` ") for *_, c in rows if c.strip() != "—"}
    runner = CliRunner()
    for command in commands:
        words = command.split()[1:]
        assert runner.invoke(app, [*words, "--help"]).exit_code == 0, command
