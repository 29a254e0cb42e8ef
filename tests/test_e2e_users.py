"""User management through the real CLI against a real `openline serve`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import OPENLINE, StationProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def station(tmp_path: Path) -> Iterator[StationProcess]:
    s = StationProcess.create(tmp_path, "stuttgart")
    s.start()
    try:
        yield s
    finally:
        s.stop()


def cli_with_input(station: StationProcess, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OPENLINE, *args], env=station.env(), input=text, capture_output=True, text=True, timeout=60
    )


def test_user_commands_end_to_end(station: StationProcess) -> None:
    r = station.cli("user", "add", "duty", "--role", "watch_officer")
    assert "One-time password" in r.stdout
    added = json.loads(
        cli_with_input(
            station,
            "a long passphrase here\n",
            "user",
            "add",
            "audit",
            "--role",
            "auditor",
            "--password-stdin",
            "--json",
        ).stdout
    )
    assert added["one_time_password"] is None
    assert added["role"] == "auditor"

    users = {u["name"]: u for u in station.cli_json("user", "list")}
    assert set(users) == {"admin", "duty", "audit"}
    assert users["duty"]["must_change_password"] is True
    assert users["audit"]["must_change_password"] is False

    assert station.cli_json("user", "disable", "duty")["disabled"] is True
    assert station.cli_json("user", "enable", "duty")["disabled"] is False
    reset = station.cli_json("user", "reset-password", "duty")
    assert reset["one_time_password"]
    r = cli_with_input(
        station, "another long passphrase\n", "user", "reset-password", "duty", "--password-stdin"
    )
    assert r.returncode == 0, r.stderr

    trail = station.cli_json("audit")
    assert [e["action"] for e in trail[:5]] == [
        "user.reset_password",
        "user.reset_password",
        "user.enable",
        "user.disable",
        "user.create",
    ]
    assert "another long passphrase" not in json.dumps(trail)


def test_user_cli_errors_are_clear_and_change_nothing(station: StationProcess) -> None:
    before = station.cli_json("user", "list")
    for args, code in [
        (("user", "add", "x", "--role", "overlord"), "invalid_input"),
        (("user", "add", "admin", "--role", "auditor"), "conflict"),
        (("user", "disable", "nobody"), "not_found"),
        (("user", "disable", "admin"), "conflict"),
    ]:
        r = station.cli(*args, check=False)
        assert r.returncode == 1, args
        assert f"error ({code})" in r.stderr, (args, r.stderr)
    r = cli_with_input(station, "short\n", "user", "add", "y", "--role", "auditor", "--password-stdin")
    assert r.returncode == 1
    assert "error (invalid_input)" in r.stderr
    r = cli_with_input(station, "", "user", "add", "y", "--role", "auditor", "--password-stdin")
    assert r.returncode == 1
    assert "no password on standard input" in r.stderr
    assert station.cli_json("user", "list") == before
