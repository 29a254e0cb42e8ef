"""RFC 9162 Merkle trees: roots of the reference tree, proofs generated as the reference
implementation generates them, and every transparency-dev verification vector (valid and
mutated) decided the same way."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openline.core import merkle

VECTORS = Path(__file__).parent / "vectors" / "tlog"
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAVES = [merkle.leaf_hash(d) for d in LEAF_INPUTS]
# Roots of the trees of the first n reference leaves (transparency-dev testonly.RootHashes).
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def b64(value: Any) -> bytes:
    return base64.b64decode(value or "")


def cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert len(files) >= 90, f"the {kind} vectors are missing"
    return [pytest.param(json.loads(f.read_text()), id=str(f.relative_to(VECTORS / kind))) for f in files]


@pytest.mark.parametrize("n", range(len(ROOTS)))
def test_roots_of_the_reference_tree(n: int) -> None:
    assert merkle.root(LEAVES[:n]).hex() == ROOTS[n]


@pytest.mark.parametrize("case", cases("inclusion"))
def test_inclusion_vectors(case: dict[str, Any]) -> None:
    args = (case["leafIdx"], case["treeSize"], b64(case["leafHash"]), [b64(p) for p in case["proof"] or []])
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args, b64(case["root"]))
        return
    merkle.verify_inclusion(*args, b64(case["root"]))
    # And the proof we generate for that leaf is exactly the vector's.
    assert merkle.inclusion_proof(case["leafIdx"], LEAVES[: case["treeSize"]]) == args[3]


@pytest.mark.parametrize("case", cases("consistency"))
def test_consistency_vectors(case: dict[str, Any]) -> None:
    args = (
        case["size1"],
        case["size2"],
        b64(case["root1"]),
        b64(case["root2"]),
        [b64(p) for p in case["proof"] or []],
    )
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
        return
    merkle.verify_consistency(*args)
    assert merkle.consistency_proof(case["size1"], LEAVES[: case["size2"]]) == args[4]


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70), st.data())
def test_every_generated_proof_verifies_and_a_changed_one_does_not(entries: list[bytes], data: Any) -> None:
    leaves = [merkle.leaf_hash(e) for e in entries]
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, leaves)
    merkle.verify_inclusion(index, n, leaves[index], proof, merkle.root(leaves))
    size1 = data.draw(st.integers(1, n))
    cproof = merkle.consistency_proof(size1, leaves)
    merkle.verify_consistency(size1, n, merkle.root(leaves[:size1]), merkle.root(leaves), cproof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:i], bytes(32), *proof[i + 1 :]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(index, n, leaves[index], bad, merkle.root(leaves))
    if 0 < size1 < n:  # another prefix: a rewritten history
        changed = [merkle.leaf_hash(b"rewritten"), *leaves[1:]]
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(size1, n, merkle.root(changed[:size1]), merkle.root(leaves), cproof)


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(merkle.ProofError, match="leaf index 8 is not in a tree of size 8"):
        merkle.inclusion_proof(8, LEAVES)
    with pytest.raises(merkle.ProofError, match="size 9 is not within a tree of size 8"):
        merkle.consistency_proof(9, LEAVES)
    with pytest.raises(merkle.ProofError, match="leaf hash: expected 32 bytes"):
        merkle.verify_inclusion(0, 1, b"short", [], LEAVES[0])
    with pytest.raises(merkle.ProofError, match="0 <= size1 <= size2"):
        merkle.verify_consistency(5, 4, LEAVES[0], LEAVES[1], [LEAVES[2]])


def test_index_2_in_a_tree_of_size_3() -> None:
    # The case that trips naive implementations: the last leaf of an odd tree is paired
    # with the root of the two before it, not with a copy of itself.
    proof = merkle.inclusion_proof(2, LEAVES[:3])
    assert [p.hex() for p in proof] == [ROOTS[2]]
    merkle.verify_inclusion(2, 3, LEAVES[2], proof, bytes.fromhex(ROOTS[3]))
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(2, 3, LEAVES[2], [LEAVES[2]], bytes.fromhex(ROOTS[3]))


@given(st.integers(min_value=0, max_value=9), st.binary(min_size=1, max_size=8))
def test_perfect_root_is_the_root_of_a_complete_subtree(power: int, seed: bytes) -> None:
    leaves = [hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(1 << power)]
    assert merkle.perfect_root(leaves) == merkle.root(leaves)


@pytest.mark.parametrize("n", [0, 3, 6, 255])
def test_perfect_root_refuses_an_incomplete_tree(n: int) -> None:
    with pytest.raises(merkle.ProofError, match="power-of-two"):
        merkle.perfect_root([bytes(32)] * n)


# Proofs the way the station makes them (from complete subtrees, as its tiles hold them),
# at random sizes up to 10^4; a change of any single byte anywhere is caught.
_BIG = [f"entry {i}".encode() for i in range(10_000)]
_BIG_LEAVES = [merkle.leaf_hash(e) for e in _BIG]


def _nodes(height: int, index: int) -> bytes:
    return merkle.perfect_root(_BIG_LEAVES[index << height : (index + 1) << height])


def _flip(value: bytes, data: Any) -> bytes:
    at = data.draw(st.integers(0, len(value) - 1))
    bit = data.draw(st.integers(0, 7))
    return value[:at] + bytes([value[at] ^ (1 << bit)]) + value[at + 1 :]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 10_000), st.data())
def test_proofs_from_subtrees_verify_at_any_size_and_any_changed_byte_is_caught(n: int, data: Any) -> None:
    root = merkle.range_root(0, n, _nodes)
    index = data.draw(st.integers(0, n - 1))
    proof = [merkle.range_root(lo, hi, _nodes) for lo, hi in merkle.inclusion_ranges(index, n)]
    merkle.verify_inclusion(index, n, _BIG_LEAVES[index], proof, root)
    # A changed byte in the entry, in one hash of the proof, or in the checkpoint's root.
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, n, merkle.leaf_hash(_flip(_BIG[index], data)), proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(
                index, n, _BIG_LEAVES[index], [*proof[:i], _flip(proof[i], data), *proof[i + 1 :]], root
            )
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, n, _BIG_LEAVES[index], proof, _flip(root, data))
    m = data.draw(st.integers(1, n))
    old = merkle.range_root(0, m, _nodes)
    cproof = [merkle.range_root(lo, hi, _nodes) for lo, hi in merkle.consistency_ranges(m, n)]
    merkle.verify_consistency(m, n, old, root, cproof)
    if cproof:
        i = data.draw(st.integers(0, len(cproof) - 1))
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(
                m, n, old, root, [*cproof[:i], _flip(cproof[i], data), *cproof[i + 1 :]]
            )
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(m, n, _flip(old, data), root, cproof)
    if m < n or cproof:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, old, _flip(root, data), cproof)
