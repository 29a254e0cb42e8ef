"""Selective disclosure in proofs (`openline prove ID --disclose`, `?disclose=true`): the
proof carries the opened bodies of its envelopes, salts included, and `openline verify`
recomputes each entry's content commitment from them. The investigator's question, "was
the hospital at 31.52, 34.45, 200 m notified and acknowledged?", then rests on the
cosigned log, not on the station's word of what notice N was."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from openline.core.evidence import verify_proof
from openline.services.accounts import Role
from tests.inproc import Node, picked_up, settle_ledgers
from tests.notice_docs import cli
from tests.test_access import client_for
from tests.test_notice_proof import acknowledged_site
from tests.zygote import ZYGOTE

OPENLINE = [sys.executable, "-m", "openline"]
HOSPITAL = "circle centred at 31.5234, 34.4453, radius 200 m"


def disclosed_proof(node: Node, what: str, subject_id: str) -> dict[str, Any]:
    r = node.api.get(f"/api/v1/ledger/{what}s/{subject_id}/proof", params={"disclose": "true"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def sent_notice(proof: dict[str, Any]) -> dict[str, Any]:
    """The disclosed item of the notice.send envelope (the one with extents)."""
    return next(d for d in proof["disclosed"] if "extents" in d["body"])


def test_a_disclosed_notice_proof_shows_the_site_checked_against_the_ledger(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = acknowledged_site(a, b)
    plain = b.api.get(f"/api/v1/ledger/notices/{notice_id}/proof").json()
    assert "disclosed" not in plain  # content-free unless asked

    for node in (b, a):  # the sender's own sealed copy, and the receiver's opened envelope
        proof = disclosed_proof(node, "notice", notice_id)
        assert {d["envelope"] for d in proof["disclosed"]} >= {sent_notice(proof)["envelope"]}
        assert all("salt" in d["body"] for d in proof["disclosed"])
        result = verify_proof(json.dumps(proof))
        assert result.ok, result.failures
        (send,) = [d for d in result.disclosed if d.kind == "notice.send"]
        assert "category: protected_site" in send.lines
        assert "text: Al-Shifa hospital" in send.lines
        (volume,) = [line for line in send.lines if line.startswith("volume 1: ")]
        assert HOSPITAL in volume
        assert "altitude -500 to 20000 m (W84)" in volume
        assert "open-ended" in volume
        assert any(
            p.startswith(f"disclosed body of envelope {send.envelope} (notice.send): matches the content")
            for p in result.passed
        )


def test_a_tampered_or_foreign_disclosed_body_fails(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = acknowledged_site(a, b)
    good = disclosed_proof(b, "notice", notice_id)
    assert verify_proof(json.dumps(good)).ok

    # The radius shrunk to 20 m: not what was sealed, nor what the peer acknowledged.
    tampered = copy.deepcopy(good)
    item = sent_notice(tampered)
    item["body"]["extents"][0]["volume"]["outline_circle"]["radius"]["value"] = 20
    result = verify_proof(json.dumps(tampered))
    assert not result.ok
    (failure,) = result.failures
    assert failure.check == "disclosure"
    assert f"envelope {item['envelope']} (disclosed[" in failure.message
    assert "the body disclosed is not the one entry" in failure.message
    assert not [d for d in result.disclosed if d.envelope == item["envelope"]]  # nothing told of it

    # A body for an envelope the proof has no entry for: nothing commits to it.
    foreign = copy.deepcopy(good)
    foreign["disclosed"].append({**sent_notice(good), "envelope": "01a2aaaa-0000-7000-8000-000000000000"})
    result = verify_proof(json.dumps(foreign))
    assert [f.message for f in result.failures] == [
        f"envelope 01a2aaaa-0000-7000-8000-000000000000 (disclosed[{len(good['disclosed'])}]): no "
        "envelope.sent or envelope.received entry of the proof commits to its content, so nothing "
        "vouches for the body disclosed"
    ]

    # Without its salt, nothing can be recomputed.
    unsalted = copy.deepcopy(good)
    del sent_notice(unsalted)["body"]["salt"]
    result = verify_proof(json.dumps(unsalted))
    assert any("the body has no salt" in f.message for f in result.failures)


def test_a_disclosed_call_proof_tells_what_was_said(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    call_id = picked_up(a, b, "Convoy at the crossing")
    r = b.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": "Hold fire on grid 31.30, 34.24"})
    assert r.status_code in (200, 201), r.text
    b.drain()
    a.drain()
    settle_ledgers(a, b)
    for node in (a, b):
        result = verify_proof(json.dumps(disclosed_proof(node, "call", call_id)))
        assert result.ok, result.failures
        assert result.story is not None
        texts = [e.text for e in result.story.events]
        said = '"Hold fire on grid 31.30, 34.24" (disclosed, checked against the committed digest)'
        assert any(t.startswith("message ") and said in t for t in texts), texts
        assert any(t.startswith(f"placed by {a.name}") and '"Convoy at the crossing"' in t for t in texts)
        assert "text: Hold fire on grid 31.30, 34.24" in [line for d in result.disclosed for line in d.lines]


FORGED = 'ok, noted\n  2026-11-29T02:21:30.000000Z  closed by officer1: "strike on grid 4 approved"\tend'


def test_a_disclosed_message_cannot_print_a_line_of_the_story(nodes: tuple[Node, Node]) -> None:
    """A peer's message with a line break and a made-up story line in it was quoted as it
    stands: verify then printed a close that never happened. It is quoted on one line."""
    a, b = nodes
    call_id = picked_up(a, b, "Convoy at the crossing")
    r = b.api.post(f"/api/v1/calls/{call_id}/messages", json={"text": FORGED})
    assert r.status_code in (200, 201), r.text
    b.drain()
    a.drain()
    settle_ledgers(a, b)
    result = verify_proof(json.dumps(disclosed_proof(a, "call", call_id)))
    assert result.ok, result.failures
    assert result.story is not None
    shown = [e.text for e in result.story.events] + [line for d in result.disclosed for line in d.lines]
    assert all("\n" not in t and "\t" not in t for t in shown), shown
    (message,) = [t for t in shown if t.startswith("message received")]
    assert '"ok, noted\\n  2026-11-29T02:21:30.000000Z  closed by officer1: ' in message
    assert 'approved"\\tend' in message
    assert result.story.outcome == "picked_up"  # no close, whatever the message says


def test_an_auditor_may_not_disclose(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = acknowledged_site(a, b)
    auditor = client_for(b, "ivan", Role.AUDITOR)
    r = auditor.get(f"/api/v1/ledger/notices/{notice_id}/proof", params={"disclose": "true"})
    assert r.status_code == 403
    assert "ivan is auditor and may not read content, so may not disclose it" in r.json()["detail"]
    call_id = picked_up(a, b)
    r = auditor.get(f"/api/v1/ledger/calls/{call_id}/proof", params={"disclose": "true"})
    assert r.status_code == 403
    assert auditor.get(f"/api/v1/ledger/notices/{notice_id}/proof").status_code == 200  # content-free


def test_the_cli_discloses_and_verify_checks_it_offline(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, b = nodes
    notice_id = acknowledged_site(a, b)
    out = tmp_path / "disclosed.json"
    made = cli(b, monkeypatch, "prove", notice_id, "--disclose", "--out", str(out))
    assert made.exit_code == 0, made.output
    assert "It discloses the content of" in made.stdout
    assert "an older one refuses it (unknown fields ['disclosed'])" in " ".join(made.stdout.split())
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}

    def verify(path: Path) -> subprocess.CompletedProcess[str]:
        return ZYGOTE.run(["verify", str(path)], env, cwd=tmp_path, timeout=120)

    r = verify(out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "each body checked against the digest committed to" in r.stdout
    assert HOSPITAL in r.stdout
    assert "text: Al-Shifa hospital" in r.stdout
    assert "Verified." in r.stdout

    proof = json.loads(out.read_text())
    sent_notice(proof)["body"]["extents"][0]["volume"]["outline_circle"]["radius"]["value"] = 20
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(proof))
    r = verify(tampered)
    assert r.returncode == 1
    assert "the body disclosed is not the one entry" in " ".join(r.stderr.split())
    assert "Verified." not in r.stdout

    plain = tmp_path / "plain.json"
    assert cli(b, monkeypatch, "prove", notice_id, "--out", str(plain)).exit_code == 0
    assert "disclosed" not in json.loads(plain.read_text())
