"""Two real `openline serve` processes: their ledgers are cosigned over the line, and a
call proof and an exported bundle verify offline, with nothing but the files, and fail
when tampered with."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.harness import StationProcess, start_all, stop_all, wait_for
from tests.zygote import ZYGOTE

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(
    tmp_path: Path, database_url: str | None, second_database_url: str | None
) -> Iterator[tuple[StationProcess, StationProcess]]:
    a = StationProcess.create(tmp_path, "stuttgart", database_url)
    b = StationProcess.create(tmp_path, "moscow", second_database_url)
    try:
        start_all(a, b)
        # A short answer deadline (a line term, the same on both sides) so a call can be missed.
        with ThreadPoolExecutor(2) as pool:  # both cards at once
            cards = dict(zip((a.name, b.name), pool.map(lambda s: s.cli("card").stdout, (a, b)), strict=True))
        for s, other in ((a, b), (b, a)):
            card = s.home.parent / f"{other.name}.card"
            card.write_text(cards[other.name])
            s.cli("line", "add", str(card), "--answer-deadline", "5")
        for s, peer in ((a, b.name), (b, a.name)):
            wait_for(
                lambda s=s, peer=peer: any(
                    x["peer"] == peer and x["state"] == "active" for x in s.get_json("/lines")
                ),
                what=f"{s.name} active",
            )
        yield a, b
    finally:
        stop_all(a, b)


def _verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`openline verify` as an outsider runs it: no home, no database, no station."""
    return ZYGOTE.run(["verify", *map(str, args)], {"PATH": "/usr/bin"}, timeout=120)


def _proof_when_cosigned(s: StationProcess, call_id: str, out: Path) -> dict[str, Any]:
    def attempt() -> bool:
        return s.cli("prove", call_id, "--out", str(out), check=False).returncode == 0

    wait_for(attempt, timeout=30, interval=0.5, what=f"a cosigned checkpoint covering call {call_id}")
    return dict(json.loads(out.read_text()))


def _types(proof: dict[str, Any]) -> list[str]:
    return [json.loads(base64.b64decode(e["entry"]))["type"] for e in proof["entries"]]


def test_call_proofs_and_bundles_verify_offline(
    pair: tuple[StationProcess, StationProcess], tmp_path: Path
) -> None:
    a, b = pair
    answered = a.cli_json("call", "moscow", "--subject", "Convoy at checkpoint 4")["id"]
    wait_for(lambda: b.call_state(answered) == "ringing", what="ringing at moscow")
    b.cli("pickup", answered)
    wait_for(lambda: a.call_state(answered) == "picked_up", what="picked up seen by caller")
    unanswered = a.cli_json("call", "moscow", "--subject", "Are you there?")["id"]
    wait_for(lambda: a.call_state(unanswered) == "missed", timeout=30, what="missed")
    # The caller's floor is told, not left to notice a state in a list.
    told = [x for x in a.cli_json("alerts", "--open") if x["kind"] == "unanswered_call"]
    assert [(x["subject"], x["detail"]["peer"]) for x in told] == [(unanswered, "moscow")]

    # The caller proves the call was picked up, and that the other one was missed.
    picked = _proof_when_cosigned(a, answered, tmp_path / "picked.json")
    assert {"call.placed", "receipt.received", "call.picked_up"} <= set(_types(picked))
    result = _verify(tmp_path / "picked.json", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "picked" in result.stdout
    missed = _proof_when_cosigned(a, unanswered, tmp_path / "missed.json")
    assert "call.missed" in _types(missed)
    assert "call.picked_up" not in _types(missed)
    result = _verify(tmp_path / "missed.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "missed" in result.stdout.lower()

    # With the cards exchanged out of band as trust anchors, too.
    cards = [a.home.parent / "stuttgart.card", a.home.parent / "moscow.card"]
    result = _verify(tmp_path / "missed.json", "--trust", cards[0], "--trust", cards[1])
    assert result.returncode == 0, result.stdout + result.stderr

    # A doctored proof: the missed call's entry replaced by a made-up pick-up.
    forged = json.loads((tmp_path / "missed.json").read_text())
    for item in forged["entries"]:
        fields = json.loads(base64.b64decode(item["entry"]))
        if fields["type"] == "call.missed":
            fields["type"] = "call.picked_up"
            item["entry"] = base64.b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode()
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    result = _verify(tmp_path / "forged.json")
    assert result.returncode == 1, result.stdout + result.stderr

    # The whole ledger of each station exports to a bundle that verifies offline.
    for s in (a, b):
        bundle = tmp_path / f"{s.name}-bundle"
        wait_for(lambda s=s: s.cli_json("ledger", "checkpoint")["cosigned_by"], timeout=30, what="cosigned")
        exported = s.cli_json("ledger", "export", "--out", str(bundle))
        assert exported["size"] > 10
        assert (bundle / "checkpoint").read_text().count("\u2014 ") >= 2  # signed and cosigned
        result = _verify(bundle)
        assert result.returncode == 0, result.stdout + result.stderr
    # An entry removed from a bundle is caught.
    bundle = tmp_path / "stuttgart-bundle"
    entries = next((bundle / "tile" / "entries").rglob("*"), None)
    assert entries is not None
    files = sorted(p for p in (bundle / "tile" / "entries").rglob("*") if p.is_file())
    data = files[0].read_bytes()
    first_len = int.from_bytes(data[:2], "big")
    files[0].write_bytes(data[2 + first_len :])
    result = _verify(bundle)
    assert result.returncode == 1
    assert "entr" in (result.stdout + result.stderr).lower()

    # Export refuses to write over something that is there.
    refused = a.cli("ledger", "export", "--out", str(bundle), check=False)
    assert refused.returncode == 1
    assert "not an empty directory" in refused.stderr
