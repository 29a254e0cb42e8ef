"""The proof of one notice (`openline prove NOTICE`, `GET /api/v1/ledger/notices/{id}/proof`):
its entries with inclusion proofs in a cosigned checkpoint and the peer's signed receipts,
verified offline by `openline verify` with nothing but the file. The investigator's
question, "was this site notified, and acknowledged before the strike?", answered with a
file that reveals nothing else of either station's log. Doctored proofs are refused,
naming what is wrong. The console hands out the same files."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from openline.core.evidence import verify_notice_proof, verify_proof
from openline.services.accounts import Role
from tests.inproc import Node, place_and_ring, settle_ledgers
from tests.notice_docs import SENT_AND_ACKNOWLEDGED, act, cli, send, site, soon
from tests.test_console import add_user, browser, log_in
from tests.zygote import ZYGOTE

OPENLINE = [sys.executable, "-m", "openline"]


def proof_of(node: Node, notice_id: str) -> dict[str, Any]:
    r = node.api.get(f"/api/v1/ledger/notices/{notice_id}/proof")
    assert r.status_code == 200, r.text
    return dict(r.json())


def types(proof: dict[str, Any]) -> list[str]:
    return [json.loads(base64.b64decode(e["entry"]))["type"] for e in proof["entries"]]


def acknowledged_site(a: Node, b: Node) -> str:
    """moscow notifies a hospital; stuttgart acknowledges it; both logs cosigned."""
    protected = send(b, "stuttgart", site(b, 31.5234, 34.4453))
    b.drain()
    act(a, protected["id"], "acknowledge")
    a.drain()
    b.drain()
    settle_ledgers(a, b)
    return str(protected["id"])


def test_a_notice_proof_verifies_and_lists_what_happened(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = acknowledged_site(a, b)
    place_and_ring(a, b)  # other traffic in the same logs, which the proof leaves out
    settle_ledgers(a, b)

    sender = proof_of(b, notice_id)
    assert sender["format"] == "openline-notice-proof/v1"
    assert sender["notice"] == notice_id
    assert set(sender["cards"]) == {"moscow", "stuttgart"}
    assert set(types(sender)) >= SENT_AND_ACKNOWLEDGED
    assert not [t for t in types(sender) if t.startswith("call.")]
    result = verify_proof(json.dumps(sender))
    assert result.ok, result.failures
    assert result.kind == "notice-proof"
    assert any(p.startswith("receipt for envelope") and "signed by stuttgart" in p for p in result.passed)
    assert f"entries: every one is about notice {notice_id} or one of its envelopes" in result.passed
    listed = [x["entry"]["type"] for x in result.about or []]
    assert listed == types(sender)  # every entry, in log order

    # The acknowledging side proves it too, naming its officer.
    receiver = proof_of(a, notice_id)
    result = verify_notice_proof(json.dumps(receiver))
    assert result.ok, result.failures
    (ack,) = [x["entry"] for x in result.about or [] if x["entry"]["type"] == "notice.acknowledged"]
    assert ack["actor"] == "admin"


def test_the_cli_proves_a_notice_and_verify_checks_it_offline(
    nodes: tuple[Node, Node], tmp_path: Path, monkeypatch: Any
) -> None:
    a, b = nodes
    notice_id = acknowledged_site(a, b)
    out = tmp_path / "notice-proof.json"
    made = cli(b, monkeypatch, "prove", notice_id, "--out", str(out))
    assert made.exit_code == 0, made.output
    assert f"Wrote the proof of notice {notice_id}" in made.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINE_")}
    r = ZYGOTE.run(["verify", str(out)], env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Notice proof of station moscow" in r.stdout
    assert "notice.acknowledged" in r.stdout
    assert "Verified." in r.stdout


def test_a_doctored_notice_proof_is_refused(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    notice_id = acknowledged_site(a, b)
    other = send(b, "stuttgart", site(b, 31.6, 34.5, text="Warehouse"))
    b.drain()
    settle_ledgers(a, b)
    good = proof_of(b, notice_id)
    assert verify_proof(json.dumps(good)).ok

    # Another notice's entry slipped in, with its valid inclusion proof.
    foreign = proof_of(b, str(other["id"]))["entries"][0]
    mixed = {**good, "entries": [*good["entries"], foreign]}
    result = verify_proof(json.dumps(mixed))
    assert not result.ok
    assert any("is not about notice" in f.message for f in result.failures)

    # The announcement left out: nothing shows it was sent.
    entries = [
        e for e in good["entries"] if json.loads(base64.b64decode(e["entry"]))["type"] != "notice.sent"
    ]
    result = verify_proof(json.dumps({**good, "entries": entries}))
    assert any("nothing shows it was announced" in f.message for f in result.failures)

    # The acknowledgement left out, its envelope kept: the proof would say nobody answered.
    types = [json.loads(base64.b64decode(e["entry"]))["type"] for e in good["entries"]]
    assert "notice.acknowledged" in types
    entries = [e for e, t in zip(good["entries"], types, strict=True) if t != "notice.acknowledged"]
    result = verify_proof(json.dumps({**good, "entries": entries}))
    assert [f.message.split(": ", 1)[1] for f in result.failures] == [
        "no notice entry in the proof names its envelope "
        + next(
            repr(json.loads(base64.b64decode(e["entry"]))["envelope"])
            for e, t in zip(good["entries"], types, strict=True)
            if t == "notice.acknowledged"
        )
        + " (notice.ack): what it did is left out"
    ]

    # A receipt whose time was changed no longer verifies.
    receipt = dict(good["receipts"][0], stored_at="2026-01-01T00:00:00.000001Z")
    result = verify_proof(json.dumps({**good, "receipts": [receipt]}))
    assert any(f.check == "receipt" for f in result.failures)

    # An entry changed on the way: its inclusion proof no longer leads to the root.
    changed = dict(good["entries"][0])
    raw = base64.b64decode(changed["entry"])
    assert b'"line":"' in raw
    raw = raw.replace(b'"line":"', b'"line":"0', 1)
    changed["entry"] = base64.b64encode(raw).decode()
    result = verify_proof(json.dumps({**good, "entries": [changed, *good["entries"][1:]]}))
    assert any("not to the checkpoint's root" in f.message for f in result.failures)


def test_what_cannot_be_proved_says_why(nodes: tuple[Node, Node], monkeypatch: Any, tmp_path: Path) -> None:
    a, b = nodes
    call_id = place_and_ring(a, b)
    draft = send(b, "stuttgart", site(b, 31.5, 34.4), draft=True)
    before = b.snapshot()
    r = b.api.get(f"/api/v1/ledger/notices/{call_id}/proof")
    assert r.status_code == 404
    assert "no notice with id" in r.json()["detail"]
    r = b.api.get(f"/api/v1/ledger/notices/{draft['id']}/proof")
    assert r.status_code == 404
    assert "a draft is not logged until it is sent" in r.json()["detail"]
    missing = cli(
        b, monkeypatch, "prove", "01a2aaaa-0000-7000-8000-000000000000", "--out", str(tmp_path / "p")
    )
    assert missing.exit_code != 0
    assert "no call or notice with id" in missing.output
    assert not (tmp_path / "p").exists()
    # A place it cannot write: one clear line, not a traceback.
    (tmp_path / "a-file").write_text("")
    for out in (tmp_path / "no-such-dir" / "p.json", tmp_path / "a-file" / "p.json"):
        unwritable = cli(b, monkeypatch, "prove", call_id, "--out", str(out))
        assert unwritable.exit_code == 1
        assert f"error (invalid_input): cannot write {out}: {out.parent} is not a directory" in " ".join(
            unwritable.output.split()
        )
        assert "Traceback" not in unwritable.output
    assert b.snapshot() == before


def test_the_console_hands_out_proofs_of_notices_and_calls(nodes: tuple[Node, Node]) -> None:
    """Every role may download the proof of a notice or a call from the console (the
    auditor included: it is metadata and commitments only); what cannot be proved yet
    is said on the ledger page."""
    a, b = nodes
    call_id = place_and_ring(a, b)
    draft = send(b, "stuttgart", site(b, 31.5, 34.4), draft=True)
    add_user(b, "ivan", Role.AUDITOR)
    c = browser(b)
    log_in(c, "ivan")
    early = c.get(f"/proofs/{call_id}.json")  # nothing cosigned yet
    assert early.status_code == 409
    assert "no checkpoint of this ledger has been cosigned by a peer yet" in early.text
    assert "Evidence ledger" in early.text

    notice_id = acknowledged_site(a, b)
    r = c.get(f"/proofs/{notice_id}.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == (
        f'attachment; filename="openline-moscow-notice-{notice_id}-proof.json"'
    )
    assert verify_proof(r.content).ok
    call_proof = c.get(f"/proofs/{call_id}.json")
    assert call_proof.status_code == 200
    assert verify_proof(call_proof.content).kind == "call-proof"
    assert f'href="/proofs/{notice_id}.json"' in c.get("/notices").text
    assert f'href="/proofs/{draft["id"]}.json"' not in c.get("/notices").text  # a draft has none
    assert f'href="/proofs/{call_id}.json"' in c.get(f"/calls/{call_id}").text

    for bad, status, words in [
        (draft["id"], 404, "a draft is not logged until it is sent"),
        ("01a2aaaa-0000-7000-8000-000000000000", 404, "no call or notice with id"),
    ]:
        r = c.get(f"/proofs/{bad}.json")
        assert r.status_code == status, r.text
        assert words in r.text


def test_a_site_proof_holds_the_conflicts_found_later_against_it(nodes: tuple[Node, Node]) -> None:
    """The hospital was notified and acknowledged; a strike package announced over it
    later conflicts with it. The conflict's entry names both notices, and is in the
    proof of each: the hospital's investigator sees it too."""
    a, b = nodes
    site_id = acknowledged_site(a, b)
    strike = send(a, "moscow", soon(a, 31.5234, 34.4453, text="Strike package"))
    a.drain()
    b.drain()
    settle_ledgers(a, b)
    for node in (a, b):
        proof = proof_of(node, site_id)
        result = verify_proof(json.dumps(proof))
        assert result.ok, result.failures
        conflicts = [x["entry"] for x in result.about or [] if x["entry"]["type"] == "notice.conflict"]
        assert [(c["notice"], c["other_notice"]) for c in conflicts] == [(strike["id"], site_id)], node.name
        # ... and in the strike's own proof.
        strike_proof = verify_proof(json.dumps(proof_of(node, str(strike["id"]))))
        assert "notice.conflict" in [x["entry"]["type"] for x in strike_proof.about or []]
