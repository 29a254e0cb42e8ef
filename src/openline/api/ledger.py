"""The evidence ledger over HTTP: checkpoints, proofs and entries (docs/ledger.md).

Entries hold metadata and commitments only, so every role that may view the station may
read them, auditors included; a proof that discloses content (`?disclose=true`) needs the
right to read it. Hashes and entry bytes are standard base64, as in C2SP.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from openline.api.deps import PrincipalDep, StationDep, known_query_only
from openline.errors import Forbidden, NotFound
from openline.services import evidence, ledger, ledger_view
from openline.services.accounts import Permission, Principal

router = APIRouter(prefix="/api/v1/ledger", dependencies=[Depends(known_query_only)])
Size = Annotated[int, Query(ge=1, le=ledger.MAX_SIZE)]
Index = Annotated[int, Query(ge=0, le=ledger.MAX_SIZE)]
Disclose = Annotated[
    bool,
    Query(
        description="Also the opened bodies of the proof's envelopes, with their salts (needs read_content)"
    ),
]


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def _may_prove(who: Principal, disclose: bool) -> None:
    """Anyone who may view the station may have a proof; one that discloses what was said
    only whoever may read it (an auditor sees what happened, not what was said)."""
    who.require(Permission.VIEW)
    if disclose and not who.can(Permission.READ_CONTENT):
        raise Forbidden(
            f"{who.name} is {who.role.value} and may not read content, so may not disclose it: "
            "ask for the proof without disclose, which carries none"
        )


@router.get("/status")
def get_status(station: StationDep, who: PrincipalDep) -> dict[str, Any]:
    """The log's size, entries waiting, checkpoints, each peer's witness state, evidence."""
    who.require(Permission.VIEW)
    with station.db.read() as conn:
        return ledger_view.status(conn)


@router.get("/checkpoint")
def get_checkpoint(
    station: StationDep,
    who: PrincipalDep,
    cosigned: Annotated[bool, Query(description="Only a checkpoint a peer has cosigned")] = False,
) -> dict[str, Any]:
    """The latest checkpoint this station signed (its note carries the peers' cosignatures)."""
    who.require(Permission.VIEW)
    with station.db.read() as conn:
        cp = ledger.latest_checkpoint(conn, cosigned=cosigned)
    if cp is None:
        raise NotFound("no checkpoint yet" + (" cosigned by a peer" if cosigned else ""))
    return cp.to_json()


@router.post("/checkpoint")
async def post_checkpoint(station: StationDep, who: PrincipalDep) -> dict[str, Any]:
    """Sequence what is waiting and sign a checkpoint now (the ledger worker then has the
    peers cosign it). Answers the latest checkpoint, new or not."""
    who.require(Permission.VIEW)

    def sign() -> dict[str, Any]:
        while ledger.integrate(station):
            pass
        ledger.sign_checkpoint(station)
        with station.db.read() as conn:
            cp = ledger.latest_checkpoint(conn)
        if cp is None:
            raise NotFound(
                "the ledger is empty: there is nothing to sign; its first entry is the first line "
                "added (`openline line add`)"
            )
        return cp.to_json()

    return await run_in_threadpool(sign)


@router.get("/proof/inclusion")
def get_inclusion(station: StationDep, who: PrincipalDep, index: Index, size: Size) -> dict[str, Any]:
    """The audit path of entry `index` in the tree of `size` entries (RFC 9162, 2.1.3)."""
    who.require(Permission.VIEW)
    with station.db.read() as conn:
        proof = ledger.inclusion_proof(conn, index, size)
        root = ledger.root_at(conn, size)
    return {"index": index, "size": size, "root": base64.b64encode(root).decode(), "proof": _b64(proof)}


@router.get("/proof/consistency")
def get_consistency(
    station: StationDep,
    who: PrincipalDep,
    size1: Annotated[int, Query(alias="from", ge=1, le=ledger.MAX_SIZE)],
    size2: Annotated[int, Query(alias="to", ge=1, le=ledger.MAX_SIZE)],
) -> dict[str, Any]:
    """That the tree of `from` entries is a prefix of the tree of `to` (RFC 9162, 2.1.4)."""
    who.require(Permission.VIEW)
    with station.db.read() as conn:
        proof = ledger.consistency_proof(conn, size1, size2)
        roots = [base64.b64encode(ledger.root_at(conn, s)).decode() for s in (size1, size2)]
    return {"from": size1, "to": size2, "roots": roots, "proof": _b64(proof)}


@router.get("/entries")
def get_entries(
    station: StationDep,
    who: PrincipalDep,
    start: Index,
    end: Annotated[int, Query(ge=1, le=ledger.MAX_SIZE)],
) -> list[dict[str, Any]]:
    """Entries [start, end), at most 1000: their exact bytes and their fields."""
    who.require(Permission.VIEW)
    with station.db.read() as conn:
        return [ledger.entry_json(i, data) for i, data in ledger.entries(conn, start, end)]


@router.get("/keys")
def get_keys(station: StationDep, who: PrincipalDep) -> dict[str, str]:
    """The verifier keys of this station's checkpoints and cosignatures."""
    who.require(Permission.VIEW)
    card = station.card
    return {"origin": card.origin, "ledger_key": card.ledger_key, "cosigner_key": card.cosigner_key}


@router.get("/calls/{call_id}/proof")
def get_call_proof(
    station: StationDep,
    who: PrincipalDep,
    call_id: Annotated[str, Path(min_length=1, max_length=64)],
    disclose: Disclose = False,
) -> dict[str, Any]:
    """A compact, offline-verifiable proof of what happened to one call."""
    _may_prove(who, disclose)
    return evidence.prove_call(station, call_id, disclose=disclose)


@router.get("/notices/{notice_id}/proof")
def get_notice_proof(
    station: StationDep,
    who: PrincipalDep,
    notice_id: Annotated[str, Path(min_length=1, max_length=64)],
    with_conflicts: Annotated[
        bool,
        Query(description="Also the conflicts with notices of other lines (their ids and overlap windows)"),
    ] = False,
    disclose: Disclose = False,
) -> dict[str, Any]:
    """A compact, offline-verifiable proof of what happened to one notice: sent, received
    by the peer (its signed receipt), acknowledged or rejected, withdrawn, removed, and
    its conflicts with notices of the same line."""
    _may_prove(who, disclose)
    return evidence.prove_notice(station, notice_id, with_conflicts=with_conflicts, disclose=disclose)
