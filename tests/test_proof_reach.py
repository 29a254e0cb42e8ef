"""What a proof reaches, and what it does not say: a notice's proof holds the entries
`verify BUNDLE --about` picks but the peer's answers to another notice's envelopes; its
verification says up to which checkpoint it covers the log and the notice's last standing
there; a card nobody vouched for is told from a forged one; a disclosed proof says which
committed bodies it withholds."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from openline.core.evidence import HALF, Result, standing, verify_bundle, verify_proof
from openline.services import evidence
from tests.inproc import Node, settle_ledgers
from tests.notice_docs import act, send, site, soon
from tests.zygote import ZYGOTE

OPENLINE = [sys.executable, "-m", "openline"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    return ZYGOTE.run(args, env, cwd=cwd, timeout=120)


def bundle_about(node: Node, subject: str, tmp_path: Path) -> Result:
    out = tmp_path / f"{node.name}-{subject}"
    evidence.export_bundle(node.station, out)

    def read(rel: str) -> bytes | None:
        f = out / rel
        return f.read_bytes() if f.is_file() else None

    return verify_bundle(read, about=subject)


def amended_and_removed(a: Node, b: Node) -> tuple[str, str]:
    """stuttgart sends a notice and amends it; it notifies a site, moscow acknowledges it,
    and stuttgart's removal of it is acknowledged. Both logs cosigned."""
    one = send(a, "moscow", soon(a, 48.0, 9.0))
    a.drain()
    b.drain()
    a.drain()
    send(a, "moscow", soon(a, 48.2, 9.0, text="Moved north"), amends=one["id"])
    a.drain()
    b.drain()
    a.drain()
    protected = send(a, "moscow", site(a, 50.0, 9.0))
    a.drain()
    act(b, protected["id"], "acknowledge")
    b.drain()
    a.drain()
    removal = send(a, "moscow", {"category": "protected_site", "text": "closed", "removes": protected["id"]})
    a.drain()
    act(b, removal["id"], "acknowledge")
    b.drain()
    a.drain()
    b.drain()
    settle_ledgers(a, b)
    return str(one["id"]), str(protected["id"])


def test_a_proof_holds_what_about_picks_but_the_answers_to_another_notices_envelopes(
    nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    """`verify BUNDLE --about` also picks the peer's receipts for an amendment's, a
    removal's and the removal's acknowledgement's envelopes; a proof leaves those to the
    other notice's proof. Every receipt a proof carries has its envelope.sent entry in it:
    a verifier of yesterday's release refuses one that does not (a proof that held them
    read as forged there)."""
    a, b = nodes
    amended, removed = amended_and_removed(a, b)
    others = 0
    for node in (a, b):
        for subject in (amended, removed):
            proof: dict[str, Any] = evidence.prove(node.station, subject)
            about = bundle_about(node, subject, tmp_path)
            assert about.ok, about.failures
            entries = [e["index"] for e in proof["entries"]]
            logged = [json.loads(base64.b64decode(e["entry"])) for e in proof["entries"]]
            sent = {e["envelope"] for e in logged if e["type"] == "envelope.sent"}
            assert {r["envelope"] for r in proof["receipts"]} <= sent, (node.name, subject)
            picked = [x for x in about.about or [] if x["index"] not in entries]
            assert all(x["entry"]["type"] in ("receipt.received", "refusal.received") for x in picked)
            assert all(x["entry"]["envelope"] not in sent for x in picked)
            others += len(picked)
            assert set(entries) <= {x["index"] for x in about.about or []}
            result = verify_proof(json.dumps(proof))
            assert result.ok, (node.name, subject, result.failures)
    assert others > 0  # the case is there: the bundle does pick such answers


def test_verify_says_how_far_a_proof_reaches_and_where_the_notice_stood(
    nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    """A proof made before the acknowledgement verified "Verified." with nothing saying it
    stopped there: read a year later, "never acknowledged"."""
    a, b = nodes
    notice = send(b, "stuttgart", site(b, 31.5234, 34.4453))
    b.drain()
    a.drain()
    b.drain()
    settle_ledgers(a, b)
    made_early = json.dumps(evidence.prove(b.station, notice["id"]))
    early = verify_proof(made_early)
    assert early.ok, early.failures
    assert early.checkpoint is not None
    assert early.reach is not None
    assert early.standing is not None
    assert early.reach.startswith(
        f"moscow's log up to its checkpoint (size {early.checkpoint.size}, cosigned by "
    )
    assert early.reach.endswith("anything logged after it is not in this proof")
    assert early.standing.startswith("sent at ")
    assert "delivered (stored by stuttgart at " in early.standing
    assert "; not acknowledged or rejected (as of the checkpoint, cosigned by stuttgart at " in early.standing
    assert HALF in early.notes

    act(a, notice["id"], "acknowledge")
    a.drain()
    b.drain()
    settle_ledgers(a, b)
    late = verify_proof(json.dumps(evidence.prove(b.station, notice["id"])))
    assert late.standing is not None
    assert "; acknowledged by stuttgart at " in late.standing
    own = verify_proof(json.dumps(evidence.prove(a.station, notice["id"])))
    assert own.standing is not None
    assert own.standing.startswith("received from moscow at ")
    assert "; acknowledged by admin at " in own.standing

    # The command says it, and --json has both.
    path = tmp_path / "early.json"
    path.write_text(made_early)
    r = run_cli("verify", str(path), cwd=tmp_path)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Covers: moscow's log up to its checkpoint" in text
    assert "Notice, in this proof: sent at " in text
    assert HALF in text
    data = json.loads(run_cli("verify", str(path), "--json", cwd=tmp_path).stdout)
    assert (data["reach"], data["standing"]) == (early.reach, early.standing)


def test_an_amended_or_removed_notice_stands_so_in_its_proof(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    amended, removed = amended_and_removed(a, b)
    for node in (a, b):
        moved = verify_proof(json.dumps(evidence.prove(node.station, amended)))
        assert moved.standing is not None, node.name
        assert "; amended by " in moved.standing, node.name
        gone = verify_proof(json.dumps(evidence.prove(node.station, removed)))
        assert gone.standing is not None, node.name
        assert "; acknowledged by " in gone.standing, node.name
        assert "; removed at " in gone.standing, node.name


def test_a_disclosed_proof_says_which_committed_bodies_it_withholds(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice = send(b, "stuttgart", site(b, 31.5234, 34.4453))
    b.drain()
    act(a, notice["id"], "acknowledge")
    a.drain()
    b.drain()
    settle_ledgers(a, b)
    full = evidence.prove(b.station, notice["id"], disclose=True)
    assert len(full["disclosed"]) == 2  # the notice, and the acknowledgement
    assert not [n for n in verify_proof(json.dumps(full)).notes if "not disclosed" in n]
    sent = next(d for d in full["disclosed"] if "extents" in d["body"])
    cut = verify_proof(json.dumps({**full, "disclosed": [d for d in full["disclosed"] if d is not sent]}))
    assert cut.ok, cut.failures  # selective disclosure is allowed
    assert f"envelope {sent['envelope']} (notice.send): content committed, not disclosed" in cut.notes
    none = verify_proof(json.dumps({**full, "disclosed": []}))
    assert len([n for n in none.notes if n.endswith("content committed, not disclosed")]) == 2
    plain = verify_proof(json.dumps(evidence.prove(b.station, notice["id"])))
    assert not [
        n for n in plain.notes if "not disclosed" in n
    ]  # it discloses nothing, and says so by its form


def test_a_notice_taken_late_says_when_it_was_stored_here() -> None:
    """A notice sent while the line was suspended reads "received … at" the peer's time:
    65 s before it reached this station. Its standing says when it was stored here."""
    at, taken = "2026-11-29T02:53:01.194926Z", "2026-11-29T02:54:06.616000Z"
    entries = [
        {"type": "envelope.received", "at": at, "envelope": "e1", "stored_at": taken},
        {"type": "notice.received", "at": at, "notice": "n1", "peer": "bravo", "envelope": "e1"},
    ]
    said = standing("n1", entries, [])
    assert said is not None
    assert said.startswith(f"received from bravo at {at} (the peer's time; stored here at {taken})")
    entries[0]["stored_at"] = "2026-11-29T02:53:01.300000Z"  # taken at once: nothing to add
    assert standing("n1", entries, []) == f"received from bravo at {at}; not acknowledged or rejected"
