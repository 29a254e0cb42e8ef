"""`openline verify` through the real command: no station home, no database, no network;
exit 0 when the evidence verifies, 1 when it does not (naming what), 2 when it is not evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openline.core import tiles
from tests.evidence_builders import bundle, call_log, station, synthetic_entries, write_json
from tests.zygote import ZYGOTE

OPENLINE = [sys.executable, "-m", "openline"]
STUTTGART, MOSCOW, IMPOSTOR = station("stuttgart"), station("moscow"), station("moscow")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No OPENLINE_* variables and a bare working directory: nothing but the evidence to go on.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    return ZYGOTE.run(args, env, cwd=cwd, timeout=120)


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    b = bundle(synthetic_entries(600), STUTTGART, [MOSCOW], peer_entries={"moscow": synthetic_entries(9)})
    return b.write(tmp_path / "bundle")


def card_file(tmp_path: Path, name: str, card: object) -> Path:
    return write_json(tmp_path / name, card)


def test_verify_a_bundle_prints_fingerprints_and_exits_0(bundle_dir: Path, tmp_path: Path) -> None:
    r = run_cli("verify", str(bundle_dir), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert STUTTGART.card.fingerprint in r.stdout
    assert MOSCOW.card.fingerprint in r.stdout
    assert "checkpoint: cosigned by moscow at 2026-11-18T11:21:40.000000Z" in r.stdout
    assert "Verified." in r.stdout
    assert "FAILED" not in r.stdout


def test_verify_takes_the_manifest_file_too(bundle_dir: Path, tmp_path: Path) -> None:
    r = run_cli("verify", str(bundle_dir / "bundle.json"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_verify_json_is_machine_readable(bundle_dir: Path, tmp_path: Path) -> None:
    r = run_cli("verify", str(bundle_dir), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["ok"] is True
    assert result["kind"] == "bundle"
    assert {c["name"]: c["fingerprint"] for c in result["cards"]} == {
        "stuttgart": STUTTGART.card.fingerprint,
        "moscow": MOSCOW.card.fingerprint,
    }
    assert result["checkpoint"]["size"] == 600
    assert result["failures"] == []


def test_verify_a_tampered_bundle_names_the_entry_and_exits_1(bundle_dir: Path, tmp_path: Path) -> None:
    path = bundle_dir / "tile" / "entries" / "001"
    entries = tiles.decode_bundle(path.read_bytes())
    entries[3], entries[4] = entries[4], entries[3]
    path.write_bytes(tiles.encode_bundle(entries))
    r = run_cli("verify", str(bundle_dir), cwd=tmp_path)
    assert r.returncode == 1
    message = "entry 259 (tile/entries/001): its leaf hash is not the one in tile/0/001 at position 3"
    assert f"error (not_verified): {message}" in r.stderr
    assert f"FAILED {message}" in r.stdout
    assert "Verified." not in r.stdout


def test_verify_json_lists_the_failures_and_exits_1(bundle_dir: Path, tmp_path: Path) -> None:
    (bundle_dir / "tile" / "1" / "000.p" / "2").unlink()
    r = run_cli("verify", str(bundle_dir), "--json", cwd=tmp_path)
    assert r.returncode == 1
    result = json.loads(r.stdout)
    assert result["ok"] is False
    assert result["failures"] == [
        {"check": "tree", "message": "tile/1/000.p/2 is missing (a tree of size 600 needs it)"}
    ]


def test_verify_with_trusted_cards_that_match(bundle_dir: Path, tmp_path: Path) -> None:
    s = card_file(tmp_path, "s.json", STUTTGART.card.to_json())
    m = card_file(tmp_path, "m.json", MOSCOW.card.to_json())
    r = run_cli("verify", str(bundle_dir), "--trust", str(s), "--trust", str(m), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("(trusted)") == 2


def test_verify_with_a_trusted_card_of_other_keys_exits_1(bundle_dir: Path, tmp_path: Path) -> None:
    s = card_file(tmp_path, "s.json", STUTTGART.card.to_json())
    m = card_file(tmp_path, "m.json", IMPOSTOR.card.to_json())
    r = run_cli("verify", str(bundle_dir), "--trust", str(s), "--trust", str(m), cwd=tmp_path)
    assert r.returncode == 1
    assert "error (not_verified): card moscow: does not match the trusted card of that name" in r.stderr
    assert "(NOT the trusted card)" in r.stdout


def _sparse(p: Path) -> Path:
    """A file of 300 MiB that takes no disk: the verifier must refuse it unread."""
    huge = p / "huge.json"
    huge.touch()
    os.truncate(huge, 300 * 1024**2)
    return huge


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nowhere", "no such file or directory"),
        (lambda p: p, "no bundle.json: this is not an evidence bundle"),
        (
            lambda p: (p / "x.txt").write_text("hello") and p / "x.txt",
            "not JSON, so not a call or notice proof",
        ),
        (
            lambda p: write_json(p / "x.json", {"format": "x"}),
            "format 'x' is not 'openline-call-proof/v1' or 'openline-notice-proof/v1'",
        ),
        (lambda p: os.mkfifo(p / "fifo") or p / "fifo", "not a regular file, so not a proof"),
        (_sparse, "314,572,800 bytes is larger than any proof a station writes"),
    ],
    ids=["missing", "empty-dir", "not-json", "other-json", "fifo", "huge"],
)
def test_verify_something_that_is_not_evidence_exits_2(tmp_path: Path, make: object, message: str) -> None:
    target = make(tmp_path)  # type: ignore[operator]
    r = run_cli("verify", str(target), cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert f"error (unreadable): {target}: {message}" in r.stderr.replace("\n", "")


def test_verify_a_bundle_whose_manifest_cannot_be_read_exits_2(bundle_dir: Path, tmp_path: Path) -> None:
    (bundle_dir / "bundle.json").unlink()
    (bundle_dir / "bundle.json").mkdir()
    r = run_cli("verify", str(bundle_dir), cwd=tmp_path)
    assert r.returncode == 2
    assert "no bundle.json" in r.stderr


def test_verify_with_an_unusable_trusted_card_exits_2(bundle_dir: Path, tmp_path: Path) -> None:
    bad = card_file(
        tmp_path, "bad.json", {**MOSCOW.card.to_json(), "urls": ["https://elsewhere.example.org"]}
    )
    r = run_cli("verify", str(bundle_dir), "--trust", str(bad), cwd=tmp_path)
    assert r.returncode == 2
    assert f"--trust {bad}: card for 'moscow'" in r.stderr.replace("\n", "")
    r = run_cli("verify", str(bundle_dir), "--trust", str(tmp_path / "none.json"), cwd=tmp_path)
    assert r.returncode == 2


@pytest.mark.parametrize(
    ("outcome", "told"),
    [("picked_up", "picked up by moscow:ivan"), ("missed", "passed with nobody picking up")],
)
def test_verify_a_call_proof_tells_the_story(tmp_path: Path, outcome: str, told: str) -> None:
    log = call_log(outcome, STUTTGART, MOSCOW)
    path = write_json(tmp_path / "proof.json", log.proof())
    r = run_cli("verify", str(path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"Call {log.call} (out, to moscow, priority flash): {outcome.replace('_', ' ')}" in r.stdout
    assert "moscow stored the call (its signed receipt)" in r.stdout
    assert told in r.stdout
    r = run_cli("verify", str(path), "--json", cwd=tmp_path)
    assert json.loads(r.stdout)["story"]["outcome"] == outcome


def test_verify_a_tampered_call_proof_exits_1(tmp_path: Path) -> None:
    doc = call_log("picked_up", STUTTGART, MOSCOW).proof()
    doc["receipts"][0]["stored_at"] = "2026-11-18T11:06:41.000000Z"
    r = run_cli("verify", str(write_json(tmp_path / "proof.json", doc)), cwd=tmp_path)
    assert r.returncode == 1
    assert "by moscow's signing key: signature does not verify" in r.stderr


def test_a_card_no_trusted_card_was_given_for_is_not_called_forged(bundle_dir: Path, tmp_path: Path) -> None:
    """With --trust for stuttgart only, moscow's card read "NOT the trusted card", as a forged one."""
    s = card_file(tmp_path, "s.json", STUTTGART.card.to_json())
    r = run_cli("verify", str(bundle_dir), "--trust", str(s), cwd=tmp_path)
    assert r.returncode == 1  # --trust says every card must be vouched for
    assert "(no trusted card given for moscow)" in r.stdout
    assert "NOT the trusted card" not in r.stdout
    assert "card moscow: no trusted card given for moscow" in r.stderr
    result = json.loads(run_cli("verify", str(bundle_dir), "--trust", str(s), "--json", cwd=tmp_path).stdout)
    assert {c["name"]: c["trusted"] for c in result["cards"]} == {"stuttgart": True, "moscow": None}
