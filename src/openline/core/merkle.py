"""Merkle tree hashing and proofs, as RFC 9162 section 2.1 defines them (the same as
RFC 6962, which Certificate Transparency and the C2SP tlog specifications use).

    leaf hash = SHA-256(0x00 || entry)
    node hash = SHA-256(0x01 || left || right)

`root`, `inclusion_proof` and `consistency_proof` follow the RFC's recursive
definitions (MTH, PATH, PROOF) over a list of leaf hashes; `verify_inclusion` and
`verify_consistency` follow its verification algorithms (sections 2.1.3.2 and 2.1.4.2)
and need only the proof, the sizes and the roots. Pure: no I/O. Pinned to the
transparency-dev/merkle test vectors (tests/vectors/tlog).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify, or arguments no proof could satisfy."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """MTH over a power-of-two number of hashes (a complete subtree), level by level:
    the same value as `root`, without its recursion (tiles hash 256 at a time)."""
    n = len(hashes)
    if n == 0 or n & (n - 1):
        raise ProofError(f"a complete subtree has a power-of-two number of leaves, not {n}")
    level = list(hashes)
    sha = hashlib.sha256
    while len(level) > 1:
        it = iter(level)
        level = [sha(b"\x01" + left + right).digest() for left, right in zip(it, it, strict=True)]
    return level[0]


def perfect_root_of(data: bytes) -> bytes:
    """`perfect_root` of hashes stored end to end (a run of a tile): the first level is
    hashed straight from the bytes, two hashes at a time."""
    if not data or len(data) % HASH_SIZE:
        raise ProofError(f"a run of hashes is a non-empty multiple of {HASH_SIZE} bytes, not {len(data)}")
    if len(data) == HASH_SIZE:
        return data
    pair = 2 * HASH_SIZE
    sha = hashlib.sha256
    return perfect_root([sha(b"\x01" + data[i : i + pair]).digest() for i in range(0, len(data), pair)])


# Proofs as ranges of leaves. Every hash in an RFC 9162 proof is MTH over a run of leaves
# [lo, hi), and every such run starts at a multiple of its largest power-of-two part. So a
# store that can give the hash of any complete subtree (`Nodes`) can answer any proof
# without reading the leaves: the tiles in the station database are such a store.

Nodes = Callable[[int, int], bytes]  # (height, index) -> hash of leaves [index·2^height, (index+1)·2^height)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make PATH(index, D[size]), in proof order."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make PROOF(size1, D[size2]), in proof order."""
    if not 0 <= size1 <= size2:
        raise ProofError(f"size {size1} is not within a tree of size {size2}")
    if size1 in (0, size2):
        return []
    out: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, size2, size1, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def range_root(lo: int, hi: int, nodes: Nodes) -> bytes:
    """MTH over leaves [lo, hi) of a tree, from its complete subtrees."""
    n = hi - lo
    if n <= 0:
        raise ProofError(f"empty leaf range [{lo}, {hi})")
    if n & (n - 1) == 0 and lo % n == 0:
        return nodes(n.bit_length() - 1, lo // n)
    k = _split(n)
    return node_hash(range_root(lo, lo + k, nodes), range_root(lo + k, hi, nodes))


def _list_nodes(leaves: Sequence[bytes]) -> Nodes:
    return lambda height, index: root(leaves[index << height : (index + 1) << height])


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, leaves): the audit path of one leaf."""
    nodes = _list_nodes(leaves)
    return [range_root(lo, hi, nodes) for lo, hi in inclusion_ranges(index, len(leaves))]


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(size1, leaves): that the first size1 leaves are a prefix of all of them."""
    nodes = _list_nodes(leaves)
    return [range_root(lo, hi, nodes) for lo, hi in consistency_ranges(size1, len(leaves))]


def _check(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what}: expected {HASH_SIZE} bytes, got {len(value)}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof leads to (RFC 9162, 2.1.3.2, steps 1 to 4)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check(leaf, "leaf hash")
    fn, sn, r = index, size - 1, leaf
    for i, p in enumerate(proof):
        _check(p, f"proof[{i}]")
        if sn == 0:
            raise ProofError(f"the proof is longer than a tree of size {size} needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the proof is shorter than a tree of size {size} needs")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Check that `leaf` is at `index` in the tree of `size` leaves with `expected_root`."""
    _check(expected_root, "root")
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise ProofError(f"leaf {index} does not lead to the root of the tree of size {size}")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of size1 leaves with root1 is a prefix of the tree of size2
    leaves with root2 (RFC 9162, 2.1.4.2)."""
    for i, p in enumerate(proof):
        _check(p, f"proof[{i}]")
    if not 0 <= size1 <= size2:
        raise ProofError(f"sizes must satisfy 0 <= size1 <= size2, got {size1} and {size2}")
    if size1 == 0:  # every tree extends the empty one: nothing to prove (as the reference has it)
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("trees of the same size need an empty proof")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}")
        return
    # Only now are the roots hashed with anything (as in the reference implementation,
    # equal sizes compare the roots as given).
    _check(root1, "first root")
    _check(root2, "second root")
    if not proof:
        raise ProofError("the proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # an exact power of two: its root is a node of the proof
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"the proof is longer than trees of sizes {size1} and {size2} need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the proof is shorter than trees of sizes {size1} and {size2} need")
    if fr != root1:
        raise ProofError(f"the proof does not lead to the root of the tree of size {size1}")
    if sr != root2:
        raise ProofError(f"the proof does not lead to the root of the tree of size {size2}")
