"""C2SP tlog-tiles: paths in canonical form, the tiles of a tree, their contents, bundles."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openline.core import merkle, tiles


def test_the_index_example_of_the_specification() -> None:
    assert tiles.encode_index(1234067) == "x001/x234/067"
    assert tiles.encode_index(0) == "000"
    assert tiles.encode_index(999) == "999"
    assert tiles.encode_index(1000) == "x001/000"
    assert tiles.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tiles.tile_path(2, 5, 17) == "tile/2/005.p/17"
    assert tiles.tile_path("entries", 1, 3) == "tile/entries/001.p/3"


@given(st.one_of(st.integers(0, 63), st.just("entries")), st.integers(0, 10**12), st.integers(1, 256))
def test_paths_round_trip(level: int | str, index: int, width: int) -> None:
    assert tiles.parse_tile_path(tiles.tile_path(level, index, width)) == (level, index, width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/00/000",  # leading zero in the level
        "tile/0/1234",  # a group of four digits
        "tile/0/001/234",  # no x before a group that is not last
        "tile/0/x000/001",  # a leading zero group
        "tile/0/000.p/256",  # a full tile written as partial
        "tile/0/000.p/0",
        "tile/0/000.p/07",
        "tile/entries/x1/000",
        "tiles/0/000",
        "tile/0/000/",
    ],
)
def test_paths_not_in_canonical_form_are_refused(path: str) -> None:
    with pytest.raises(tiles.TileError):
        tiles.parse_tile_path(path)


def test_the_tiles_of_a_tree() -> None:
    assert tiles.tiles_for_size(0) == []
    assert tiles.tiles_for_size(5) == [(0, 0, 5)]
    assert tiles.tiles_for_size(256) == [(0, 0, 256), (1, 0, 1)]
    size = 256 * 256 + 3 * 256 + 7  # 66,311 leaves
    got = tiles.tiles_for_size(size)
    assert got[:2] == [(0, 0, 256), (0, 1, 256)]
    assert (0, 259, 7) in got
    assert [t for t in got if t[0] == 1] == [(1, 0, 256), (1, 1, 3)]
    assert [t for t in got if t[0] == 2] == [(2, 0, 1)]
    assert len(got) == 260 + 2 + 1


def test_tile_contents_are_the_nodes_of_the_tree() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(600)]
    level0 = tiles.tile_hashes(0, 2, 88, leaves)
    assert level0 == leaves[512:600]
    level1 = tiles.tile_hashes(1, 0, 2, leaves)
    assert level1 == [merkle.root(leaves[:256]), merkle.root(leaves[256:512])]
    with pytest.raises(tiles.TileError):
        tiles.tile_hashes(1, 0, 3, leaves)  # the third node is not complete yet


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=256))
def test_bundles_round_trip(entries: list[bytes]) -> None:
    assert tiles.decode_bundle(tiles.encode_bundle(entries)) == entries


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x05abc", b"\x00\x01a\x00"])
def test_broken_bundles_are_refused(data: bytes) -> None:
    with pytest.raises(tiles.TileError):
        tiles.decode_bundle(data)


def test_bundle_limits() -> None:
    with pytest.raises(tiles.TileError):
        tiles.encode_bundle([])
    with pytest.raises(tiles.TileError):
        tiles.encode_bundle([b"x"] * 257)
    with pytest.raises(tiles.TileError):
        tiles.encode_bundle([b"x" * 65_536])
