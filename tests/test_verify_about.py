"""`openline verify BUNDLE --about ID`: an investigator who was handed a station's exported
ledger asks what it says of one notice (or call): every entry naming it, and the
receipts for its envelopes, picked out of the log as it is verified. Real stations in
process, a real export, the real command in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from openline.services import evidence
from tests.inproc import Node, place_and_ring, settle_ledgers
from tests.notice_docs import SENT_AND_ACKNOWLEDGED, act, send, site
from tests.zygote import ZYGOTE

OPENLINE = [sys.executable, "-m", "openline"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    return ZYGOTE.run(args, env, cwd=cwd, timeout=120)


def exported(node: Node, tmp_path: Path) -> Path:
    out = tmp_path / f"{node.name}-bundle"
    evidence.export_bundle(node.station, out)
    return out


def test_a_bundle_says_what_happened_to_one_notice(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    protected = send(b, "stuttgart", site(b, 31.5234, 34.4453))  # moscow notifies a hospital
    b.drain()
    act(a, protected["id"], "acknowledge")  # stuttgart acknowledges it
    a.drain()
    b.drain()
    call_id = place_and_ring(a, b)  # other traffic in the same log
    settle_ledgers(a, b)
    bundle = exported(b, tmp_path)

    r = run_cli("verify", str(bundle), "--about", protected["id"], "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert result["ok"] is True
    found = [(x["entry"]["type"], x["entry"].get("notice") or x["entry"].get("ref")) for x in result["about"]]
    kinds = [t for t, _ in found]
    # moscow's log: it sent the notice (its envelope and the peer's receipt for it), then
    # received stuttgart's acknowledgement and recorded it.
    assert set(kinds) >= SENT_AND_ACKNOWLEDGED
    assert kinds.index("envelope.sent") < kinds.index("receipt.received") < kinds.index("notice.acknowledged")
    acked = next(x["entry"] for x in result["about"] if x["entry"]["type"] == "notice.acknowledged")
    assert (acked["actor"], acked["peer"]) == ("station:stuttgart", "stuttgart")  # by the peer's word
    indexes = [x["index"] for x in result["about"]]
    assert indexes == sorted(indexes)  # log order
    # Nothing about the call: every entry names the notice, or is a receipt for one of
    # the notice's own envelopes.
    envelopes = {x["entry"]["envelope"] for x in result["about"] if x["entry"]["type"] != "receipt.received"}
    for x in result["about"]:
        entry = x["entry"]
        assert (
            entry.get("notice") == protected["id"]
            or entry.get("ref") == protected["id"]
            or (entry["type"] == "receipt.received" and entry["envelope"] in envelopes)
        ), entry
    assert all(call_id not in json.dumps(x) for x in result["about"])

    # The readable form lists them with the time, the number in the log and the type;
    # a content commitment shows only as such.
    text = run_cli("verify", str(bundle), "--about", protected["id"], cwd=tmp_path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"Entries about it ({len(found)}), in log order:" in text.stdout
    assert "notice.acknowledged" in text.stdout
    assert "content committed" in text.stdout
    assert "Verified." in text.stdout

    # stuttgart's own log names the officer who acknowledged it.
    theirs = json.loads(
        run_cli(
            "verify", str(exported(a, tmp_path)), "--about", protected["id"], "--json", cwd=tmp_path
        ).stdout
    )
    (own,) = [x["entry"] for x in theirs["about"] if x["entry"]["type"] == "notice.acknowledged"]
    assert own["actor"] == "admin"

    # A call works the same way.
    calls = json.loads(run_cli("verify", str(bundle), "--about", call_id, "--json", cwd=tmp_path).stdout)
    assert {x["entry"]["type"] for x in calls["about"]} >= {
        "call.placed",
        "call.ringing",
        "envelope.received",
    }


def test_about_an_id_the_log_never_names(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    bundle = exported(a, tmp_path)
    r = run_cli(
        "verify", str(bundle), "--about", "01a2aaaa-0000-7000-8000-000000000000", "--json", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["about"] == []
    assert "no entry names 01a2aaaa-0000-7000-8000-000000000000" in result["notes"]


def test_about_from_a_tampered_bundle_fails_and_says_so(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    protected: dict[str, Any] = send(b, "stuttgart", site(b, 31.5234, 34.4453))
    b.drain()
    settle_ledgers(a, b)
    bundle = exported(b, tmp_path)
    (entries,) = sorted((bundle / "tile" / "entries").rglob("*"), key=lambda p: len(str(p)))[-1:]
    data = entries.read_bytes()
    assert protected["id"].encode() in data
    entries.write_bytes(data.replace(b'"notice.sent"', b'"notice.sEnt"', 1))
    r = run_cli("verify", str(bundle), "--about", protected["id"], cwd=tmp_path)
    assert r.returncode == 1, r.stdout
    assert "Not verified" in r.stdout
    assert "its leaf hash is not the one" in r.stdout  # the entry that changed is named


def test_about_is_refused_where_it_cannot_apply(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    place_and_ring(a, b)
    settle_ledgers(a, b)
    bundle = exported(a, tmp_path)
    for args, words in [
        (["--about", "not an id!"], "--about: expected a call's or a notice's id"),
        (["--about", ""], "--about: expected a call's or a notice's id"),
    ]:
        r = run_cli("verify", str(bundle), *args, cwd=tmp_path)
        assert r.returncode == 2, r.stdout
        assert words in r.stderr
    proof = tmp_path / "proof.json"
    proof.write_text("{}")
    r = run_cli("verify", str(proof), "--about", "abc", cwd=tmp_path)
    assert r.returncode == 2
    assert "--about reads an evidence bundle" in r.stderr
