"""Each person's own API token: the administrator issues it (`openline user token add`),
the CLI acts with it (`OPENLINE_TOKEN_FILE`), the role's permissions hold, and the audit
trail names that person, never the token. Bad input is refused and changes nothing."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from openline.services import accounts
from openline.services.accounts import Role
from tests.inproc import Node
from tests.notice_docs import cli, cli_json

PASSWORD = "correct horse battery staple"
SHIFT = ("--start", "2026-11-27T06:00", "--tz", "Europe/Berlin", "--hours", "8")


def add_user(node: Node, name: str, role: Role) -> None:
    with node.station.tx() as tx:
        accounts.create_user(tx.conn, tx.now, name, role, PASSWORD)


def issue(node: Node, name: str, label: str = "laptop") -> dict[str, Any]:
    r = node.api.post(f"/api/v1/users/{name}/tokens", json={"label": label})
    assert r.status_code == 201, r.text
    return dict(r.json())


def holder(node: Node, token: str) -> TestClient:
    return TestClient(node.app, headers={"Authorization": f"Bearer {token}"})


def as_holder(monkeypatch: pytest.MonkeyPatch, token_file: Path) -> None:
    monkeypatch.setenv("OPENLINE_TOKEN_FILE", str(token_file))


def trail(node: Node) -> list[tuple[str, str, str]]:
    return [(e["actor"], e["action"], e["target"]) for e in node.api.get("/api/v1/audit").json()]


def refused(result: Any, code: str) -> str:
    """The one-line error of a CLI run refused with `code`."""
    assert result.exit_code == 1, result.output
    assert f"error ({code})" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    return str(result.stderr)


def test_a_senior_watch_officer_keeps_the_roster_from_the_cli_as_themselves(
    nodes: tuple[Node, Node],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, _ = nodes
    add_user(a, "swo", Role.SENIOR_WATCH_OFFICER)
    add_user(a, "duty", Role.WATCH_OFFICER)
    token_file = tmp_path / "swo.token"

    r = cli(a, monkeypatch, "user", "token", "add", "swo", "--label", "laptop", "--out", str(token_file))
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text()
    assert token.startswith("olt_")
    assert token.endswith("\n")
    token = token.strip()
    assert token not in r.output  # written to the file, nowhere else
    assert f"OPENLINE_TOKEN_FILE={token_file}" in r.stdout
    assert "openline user token revoke swo 2" in r.stdout

    as_holder(monkeypatch, token_file)
    r = cli(a, monkeypatch, "shift", "add", "duty", *SHIFT)
    assert r.exit_code == 0, r.output
    r = cli(
        a,
        monkeypatch,
        "override",
        "add",
        "duty",
        "--start",
        "2026-11-28T06:00:00Z",
        "--end",
        "2026-11-28T14:00:00Z",
    )
    assert r.exit_code == 0, r.output
    assert cli_json(a, monkeypatch, "roster")["shifts"][0]["user"] == "duty"

    # The same token may not manage users: forbidden, naming the role, nothing changed.
    before = a.snapshot()
    detail = refused(cli(a, monkeypatch, "user", "add", "someone", "--role", "auditor"), "forbidden")
    assert "swo is senior_watch_officer" in detail
    refused(cli(a, monkeypatch, "audit"), "forbidden")
    refused(
        cli(a, monkeypatch, "user", "token", "add", "swo", "--label", "more", "--out", str(tmp_path / "x")),
        "forbidden",
    )
    assert not (tmp_path / "x").exists()  # the file made before asking is gone again
    assert holder(a, token).post("/api/v1/users", json={"name": "x", "role": "auditor"}).status_code == 403
    assert a.snapshot() == before

    monkeypatch.delenv("OPENLINE_TOKEN_FILE")  # the home's token: the administrator
    entries = trail(a)
    assert entries[:3] == [
        ("swo", "override.add", entries[0][2]),
        ("swo", "shift.add", entries[1][2]),
        ("admin", "user.token.issue", "swo (token 2: laptop)"),
    ]
    assert "duty" in entries[0][2]
    assert "duty" in entries[1][2]
    captured = capsys.readouterr()
    assert token not in json.dumps(entries)
    assert token not in captured.out + captured.err + caplog.text
    assert accounts.hash_token(token) not in json.dumps(entries)


def test_an_auditor_reads_the_audit_trail_with_their_own_token(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = nodes
    add_user(a, "inspector", Role.AUDITOR)
    token_file = tmp_path / "inspector.token"
    made = cli_json(
        a, monkeypatch, "user", "token", "add", "inspector", "--label", "desk", "--out", str(token_file)
    )
    assert made == {
        "id": 2,
        "user": "inspector",
        "label": "desk",
        "created_at": made["created_at"],
        "file": str(token_file),
    }
    as_holder(monkeypatch, token_file)
    entries = cli_json(a, monkeypatch, "audit")
    assert entries[0]["action"] == "user.token.issue"
    assert entries[0]["target"] == "inspector (token 2: desk)"
    refused(cli(a, monkeypatch, "user", "list"), "forbidden")
    refused(cli(a, monkeypatch, "shift", "add", "admin", *SHIFT), "forbidden")
    assert cli_json(a, monkeypatch, "audit")[0]["action"] == "user.token.issue"  # nothing logged since


def test_tokens_are_listed_without_their_secret_and_revoked_at_once(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    first, second = issue(a, "duty", "laptop"), issue(a, "duty", "phone")
    assert set(first) == {"id", "user", "label", "created_at", "token"}
    listed = a.api.get("/api/v1/users/duty/tokens")
    assert listed.status_code == 200
    assert listed.json() == [{k: v for k, v in t.items() if k != "token"} for t in (first, second)]
    for t in (first, second):
        assert t["token"] not in listed.text
        assert accounts.hash_token(t["token"]) not in listed.text
    table = cli(a, monkeypatch, "user", "token", "list", "duty")
    assert table.exit_code == 0, table.output
    assert "laptop" in table.stdout
    assert "phone" in table.stdout

    laptop = holder(a, first["token"])
    assert laptop.get("/api/v1/calls").status_code == 200
    r = cli(a, monkeypatch, "user", "token", "revoke", "duty", str(first["id"]))
    assert r.exit_code == 0, r.output
    assert f"Token {first['id']} (laptop) of duty revoked" in r.stdout
    gone = laptop.get("/api/v1/calls")
    assert (gone.status_code, gone.json()["code"]) == (401, "unauthorized")  # at once
    assert holder(a, second["token"]).get("/api/v1/calls").status_code == 200  # the other one works
    assert [t["label"] for t in a.api.get("/api/v1/users/duty/tokens").json()] == ["phone"]
    assert trail(a)[0] == ("admin", "user.token.revoke", f"duty (token {first['id']}: laptop)")

    # Through the CLI: refused, and the error says which token file it sent.
    token_file = tmp_path / "revoked.token"
    token_file.write_text(first["token"] + "\n")
    token_file.chmod(0o600)
    as_holder(monkeypatch, token_file)
    detail = refused(cli(a, monkeypatch, "calls"), "unauthorized")
    assert str(token_file) in detail


def test_a_disabled_users_token_is_refused_until_they_are_enabled(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    duty = holder(a, issue(a, "duty")["token"])
    assert duty.get("/api/v1/roster").status_code == 200
    assert a.api.post("/api/v1/users/duty/disable").status_code == 200
    assert duty.get("/api/v1/roster").status_code == 401
    # A disabled user is given no token.
    before = a.snapshot()
    r = a.api.post("/api/v1/users/duty/tokens", json={"label": "another"})
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    assert "disabled" in r.json()["detail"]
    assert a.snapshot() == before
    assert a.api.post("/api/v1/users/duty/enable").status_code == 200
    assert duty.get("/api/v1/roster").status_code == 200


def test_only_the_administrator_manages_tokens(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    add_user(a, "swo", Role.SENIOR_WATCH_OFFICER)
    swo_token = issue(a, "swo")
    for name, role in (("duty", "watch_officer"), ("swo", "senior_watch_officer")):
        them = holder(a, issue(a, name, "own")["token"])
        before = a.snapshot()
        for method, path, body in (
            ("POST", "/api/v1/users/duty/tokens", {"label": "mine"}),
            ("POST", "/api/v1/users/admin/tokens", {"label": "mine"}),
            ("GET", "/api/v1/users/duty/tokens", None),
            ("DELETE", f"/api/v1/users/swo/tokens/{swo_token['id']}", None),
        ):
            r = them.request(method, path, json=body)
            assert (r.status_code, r.json()["code"]) == (403, "forbidden"), (name, method, path)
            assert f"{name} is {role}" in r.json()["detail"]
        assert a.snapshot() == before


def test_the_last_token_of_an_enabled_administrator_stays(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    before = a.snapshot()
    r = a.api.delete("/api/v1/users/admin/tokens/1")  # the home's api-token, the only one
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    assert "last API token of an enabled administrator" in r.json()["detail"]
    assert a.snapshot() == before
    spare = issue(a, "admin", "spare")
    assert a.api.delete("/api/v1/users/admin/tokens/1").status_code == 200
    assert a.api.get("/api/v1/users").status_code == 401  # the home's token is revoked
    assert holder(a, spare["token"]).get("/api/v1/users").status_code == 200


BAD_INPUT = [
    ("POST", "/api/v1/users/duty/tokens", {"label": ""}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {"label": "x" * 65}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {"label": "tab\there"}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {"label": "two\nlines"}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {"label": "esc\x1b[2J"}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {"label": "   "}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {"label": 7}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {"label": "ok", "user": "admin"}, 422, "invalid_input"),
    ("POST", "/api/v1/users/duty/tokens", {"label": "laptop"}, 409, "conflict"),  # taken
    ("POST", "/api/v1/users/nobody/tokens", {"label": "laptop"}, 404, "not_found"),
    ("GET", "/api/v1/users/nobody/tokens", None, 404, "not_found"),
    ("DELETE", "/api/v1/users/nobody/tokens/2", None, 404, "not_found"),
    ("DELETE", "/api/v1/users/duty/tokens/99", None, 404, "not_found"),
    ("DELETE", "/api/v1/users/duty/tokens/1", None, 404, "not_found"),  # admin's, not duty's
    ("DELETE", "/api/v1/users/duty/tokens/0", None, 422, "invalid_input"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_INPUT)
def test_bad_token_input_is_refused_and_changes_nothing(
    nodes: tuple[Node, Node], method: str, path: str, body: Any, status: int, code: str
) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    issue(a, "duty", "laptop")
    before = a.snapshot()
    r = a.api.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert r.json()["detail"]
    assert a.snapshot() == before


def test_a_label_is_checked_by_the_service_too(nodes: tuple[Node, Node]) -> None:
    # What the console or another caller would pass without the API's schema.
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    before = a.snapshot()
    for label in ("", "x" * 65, "bell\x07", " \t", None):
        with pytest.raises(accounts.InvalidInput, match="label"), a.station.tx() as tx:
            accounts.add_token(tx.conn, tx.now, "admin", "duty", label)  # type: ignore[arg-type]
    assert a.snapshot() == before
    with a.station.tx() as tx:
        made = accounts.add_token(tx.conn, tx.now, "admin", "duty", "Ноутбук №2 (spare)")
    assert made["label"] == "Ноутбук №2 (spare)"


def test_token_add_never_writes_over_a_file_nor_issues_for_nothing(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    issue(a, "duty", "laptop")
    existing = tmp_path / "kept.token"
    existing.write_text("precious\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    dangling = tmp_path / "link.token"
    dangling.symlink_to(tmp_path / "elsewhere")
    new = tmp_path / "new.token"
    cases = [
        ("duty", "phone", existing, "invalid_input", f"{existing} exists already"),
        ("duty", "phone", dangling, "invalid_input", f"{dangling} exists already"),
        (
            "duty",
            "phone",
            tmp_path / "missing" / "t",
            "invalid_input",
            f"{tmp_path / 'missing'} is not a directory",
        ),
        ("duty", "phone", a_file / "t", "invalid_input", f"{a_file} is not a directory"),
        # A directory where no file can be made: the system's reason, not "not a directory".
        ("duty", "phone", Path("/proc/t"), "invalid_input", "cannot write /proc/t: No such file"),
        ("nobody", "phone", new, "not_found", "no user named 'nobody'"),
        ("duty", "laptop", new, "conflict", "labelled 'laptop' already"),
        ("duty", "tab\there", new, "invalid_input", "label"),
    ]
    files = sorted(p.name for p in tmp_path.iterdir())
    before = a.snapshot()
    for name, label, out, code, why in cases:
        r = cli(a, monkeypatch, "user", "token", "add", name, "--label", label, "--out", str(out))
        detail = refused(r, code)
        assert why in detail, detail
        assert "olt_" not in r.output
    assert a.snapshot() == before  # nothing issued, nothing logged
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no file left behind
    assert existing.read_text() == "precious\n"
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("damage", ["missing", "directory", "garbage", "empty", "control"])
def test_a_bad_token_file_is_a_clear_error_naming_it(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    a, _ = nodes
    path = tmp_path / "swo.token"
    if damage == "directory":
        path.mkdir()
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff\xfe")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "control":
        path.write_bytes(b"olt_abc\x1bdef\n")
    if path.is_file():
        path.chmod(0o600)  # private, as it should be: only what it holds is wrong
    as_holder(monkeypatch, path)
    before = a.snapshot()
    detail = refused(cli(a, monkeypatch, "shift", "add", "admin", *SHIFT), "invalid_input")
    assert "OPENLINE_TOKEN_FILE: " in detail
    assert str(path) in detail
    assert a.snapshot() == before


def test_a_token_file_the_cli_may_not_read_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    """The real CLI, run without the capabilities by which root reads any file (the tests
    run as root here)."""
    from openline.services.setup import init_home
    from tests.test_cli_errors import run_cli

    home = tmp_path / "home"
    init_home(home, "stuttgart", "http://127.0.0.1:9")
    path = tmp_path / "swo.token"
    path.write_text("olt_" + "a" * 43 + "\n")
    path.chmod(0)
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    r = run_cli("lines", home=home, env={"OPENLINE_TOKEN_FILE": str(path)}, prefix=prefix)
    assert r.returncode == 1, r.stderr
    assert "error (invalid_input): OPENLINE_TOKEN_FILE: " in r.stderr
    assert str(path) in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o666], ids=lambda mode: f"{mode:04o}")
def test_a_token_file_others_may_read_or_write_is_refused_and_nothing_is_sent(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    a, _ = nodes
    add_user(a, "swo", Role.SENIOR_WATCH_OFFICER)
    path = tmp_path / "swo.token"
    path.write_text(issue(a, "swo")["token"] + "\n")
    path.chmod(mode)
    as_holder(monkeypatch, path)
    sent: list[httpx.Request] = []
    send = httpx.Client.send

    def counted(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        sent.append(request)
        return send(client, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", counted)
    before = a.snapshot()
    detail = refused(cli(a, monkeypatch, "shift", "add", "swo", *SHIFT), "unsafe_permissions")
    assert " ".join(detail.split()) == (
        f"error (unsafe_permissions): OPENLINE_TOKEN_FILE: permissions {mode:04o} for {path} are too "
        f"open: the token lets anyone act as the user it was issued to; chmod 600 {path}"
    )
    assert sent == []  # as ssh with a private key others may read: not used at all
    assert a.snapshot() == before
    assert stat.S_IMODE(path.stat().st_mode) == mode  # the CLI does not chmod it behind your back


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may use a file another user owns")
def test_root_uses_a_private_token_file_that_another_user_owns(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the mode counts, as for ssh's keys: an administrator acting, as root, with the
    token of the station's user."""
    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    path = tmp_path / "duty.token"
    path.write_text(issue(a, "duty")["token"] + "\n")
    path.chmod(0o400)
    os.chown(path, 65534, 65534)  # nobody's
    as_holder(monkeypatch, path)
    assert cli_json(a, monkeypatch, "calls") == []


def test_an_empty_token_file_variable_is_refused_not_taken_for_the_administrator(
    nodes: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = nodes
    monkeypatch.setenv("OPENLINE_TOKEN_FILE", "")
    before = a.snapshot()
    detail = refused(cli(a, monkeypatch, "shift", "add", "admin", *SHIFT), "invalid_input")
    assert "OPENLINE_TOKEN_FILE is set but empty" in detail
    assert a.snapshot() == before


def test_a_token_that_cannot_be_written_is_revoked_again(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file was made before asking, but the disk can still fill up before the write.
    from openline.cli import tokens

    a, _ = nodes
    add_user(a, "duty", Role.WATCH_OFFICER)
    real = tokens._new_file

    class Full:
        def __init__(self, path: Path) -> None:
            self.f = real(path)

        def write(self, _text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            self.f.close()

    monkeypatch.setattr(tokens, "_new_file", Full)
    path = tmp_path / "duty.token"
    detail = refused(
        cli(a, monkeypatch, "user", "token", "add", "duty", "--label", "laptop", "--out", str(path)),
        "invalid_input",
    )
    assert "No space left on device; the token is revoked" in detail
    assert not path.exists()
    assert a.api.get("/api/v1/users/duty/tokens").json() == []
    assert [action for _, action, _ in trail(a)[:2]] == ["user.token.revoke", "user.token.issue"]
