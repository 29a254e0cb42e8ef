"""User management through the real CLI against a real `openline serve`."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.harness import OPENLINE, StationProcess
from tests.zygote import ZYGOTE

pytestmark = pytest.mark.e2e


def cli_with_input(running: StationProcess, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return ZYGOTE.run(args, running.env(), input=text, timeout=60)


def test_user_commands_end_to_end(running: StationProcess) -> None:
    r = running.cli("user", "add", "duty", "--role", "watch_officer")
    assert "One-time password" in r.stdout
    added = json.loads(
        cli_with_input(
            running,
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

    users = {u["name"]: u for u in running.cli_json("user", "list")}
    assert set(users) == {"admin", "duty", "audit"}
    assert users["duty"]["must_change_password"] is True
    assert users["audit"]["must_change_password"] is False

    assert running.cli_json("user", "disable", "duty")["disabled"] is True
    assert running.cli_json("user", "enable", "duty")["disabled"] is False
    reset = running.cli_json("user", "reset-password", "duty")
    assert reset["one_time_password"]
    r = cli_with_input(
        running, "another long passphrase\n", "user", "reset-password", "duty", "--password-stdin"
    )
    assert r.returncode == 0, r.stderr

    trail = running.cli_json("audit")
    assert [e["action"] for e in trail[:5]] == [
        "user.reset_password",
        "user.reset_password",
        "user.enable",
        "user.disable",
        "user.create",
    ]
    assert "another long passphrase" not in json.dumps(trail)


def test_user_cli_errors_are_clear_and_change_nothing(running: StationProcess) -> None:
    before = running.cli_json("user", "list")
    for args, code in [
        (("user", "add", "x", "--role", "overlord"), "invalid_input"),
        (("user", "add", "admin", "--role", "auditor"), "conflict"),
        (("user", "disable", "nobody"), "not_found"),
        (("user", "disable", "admin"), "conflict"),
    ]:
        r = running.cli(*args, check=False)
        assert r.returncode == 1, args
        assert f"error ({code})" in r.stderr, (args, r.stderr)
    r = cli_with_input(running, "short\n", "user", "add", "y", "--role", "auditor", "--password-stdin")
    assert r.returncode == 1
    assert "error (invalid_input)" in r.stderr
    r = cli_with_input(running, "", "user", "add", "y", "--role", "auditor", "--password-stdin")
    assert r.returncode == 1
    assert "no password on standard input" in r.stderr
    assert running.cli_json("user", "list") == before


def test_each_person_acts_with_their_own_token(running: StationProcess, tmp_path: Path) -> None:
    # The founding complaint of this feature: every CLI action was the administrator's.
    r = cli_with_input(
        running,
        "a long passphrase here\n",
        "user",
        "add",
        "swo",
        "--role",
        "senior_watch_officer",
        "--password-stdin",
    )
    assert r.returncode == 0, r.stderr
    running.cli("user", "add", "duty", "--role", "watch_officer")
    token_file = tmp_path / "swo.token"
    made = running.cli("user", "token", "add", "swo", "--label", "laptop", "--out", str(token_file))
    assert f"OPENLINE_TOKEN_FILE={token_file}" in made.stdout
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()

    def as_swo(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**running.env(), "OPENLINE_TOKEN_FILE": str(token_file)}
        return subprocess.run([*OPENLINE, *args], env=env, capture_output=True, text=True, timeout=60)

    shift = as_swo(
        "shift", "add", "duty", "--start", "2026-11-27T06:00", "--tz", "Europe/Berlin", "--hours", "8"
    )
    assert shift.returncode == 0, shift.stderr
    refused = as_swo("user", "add", "someone", "--role", "auditor")
    assert refused.returncode == 1
    assert "error (forbidden): swo is senior_watch_officer" in refused.stderr

    trail = running.cli_json("audit")
    assert [(e["actor"], e["action"]) for e in trail[:2]] == [
        ("swo", "shift.add"),
        ("admin", "user.token.issue"),
    ]
    (listed,) = running.cli_json("user", "token", "list", "swo")
    assert listed["label"] == "laptop"
    assert trail[1]["target"] == f"swo (token {listed['id']}: laptop)"

    running.cli("user", "token", "revoke", "swo", str(listed["id"]))
    gone = as_swo("roster")
    assert gone.returncode == 1
    assert "error (unauthorized)" in gone.stderr
    assert str(token_file) in gone.stderr
    assert token not in json.dumps(running.cli_json("audit"))
    assert token not in running.log_path.read_text()
