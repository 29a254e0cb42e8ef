"""C2SP tlog-tiles: the layout in which a log is stored and exported.

A tile at level L holds up to 256 consecutive Merkle node hashes of height 8·L (level 0:
leaf hashes; level 1: roots of 256-leaf subtrees, ...). Tile N of level L is at
`tile/<L>/<N>`, with N written in 3-digit groups, all but the last prefixed by `x`
(1234067 is `x001/x234/067`); a tile the tree does not yet fill is `<N>.p/<W>` with its
width W (1-255). Entry bundles, `tile/entries/<N>[.p/<W>]`, hold the exact entries that
were hashed, each a big-endian uint16 length and the bytes.

Pure: path names, which tiles make up a tree, their contents from leaf hashes, bundles.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

from openline.core import merkle

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY = 0xFFFF
_PATH_RE = re.compile(r"^tile/(0|[1-9][0-9]*|entries)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([0-9]+))?$")


class TileError(ValueError):
    """A malformed tile path or entry bundle."""


def encode_index(n: int) -> str:
    if n < 0:
        raise TileError(f"tile index must not be negative, got {n}")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """`tile/<L>/<N>[.p/<W>]`; level "entries" names an entry bundle."""
    if not 1 <= width <= TILE_WIDTH:
        raise TileError(f"tile width must be 1 to {TILE_WIDTH}, got {width}")
    if level != "entries" and not (isinstance(level, int) and 0 <= level <= 63):
        raise TileError(f"tile level must be 0 to 63 or 'entries', got {level!r}")
    partial = f".p/{width}" if width < TILE_WIDTH else ""
    return f"tile/{level}/{encode_index(index)}{partial}"


def parse_tile_path(path: str) -> tuple[int | str, int, int]:
    """(level or "entries", index, width) of a tile path, strictly in the canonical form."""
    m = _PATH_RE.fullmatch(path)
    if m is None:
        raise TileError(f"not a tile path: {path!r}")
    level: int | str = m[1] if m[1] == "entries" else int(m[1])
    index = int(m[2].replace("x", "").replace("/", ""))
    width = TILE_WIDTH if m[3] is None else int(m[3])
    if tile_path(level, index, width) != path:  # leading zeros, a full ".p/256", ...
        raise TileError(f"not in canonical form: {path!r}")
    return level, index, width


def tiles_for_size(size: int) -> list[tuple[int, int, int]]:
    """(level, index, width) of every hash tile of a tree of `size` leaves: the full tiles,
    and the partial one at the end of each level."""
    if size < 0:
        raise TileError(f"tree size must not be negative, got {size}")
    out = []
    level, nodes = 0, size
    while nodes > 0:
        full, rest = divmod(nodes, TILE_WIDTH)
        out += [(level, i, TILE_WIDTH) for i in range(full)]
        if rest:
            out.append((level, full, rest))
        level += 1
        nodes >>= TILE_HEIGHT
    return out


def tile_hashes(level: int, index: int, width: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The node hashes in a tile, computed from the tree's leaf hashes."""
    span = 1 << (TILE_HEIGHT * level)  # leaves under one node of this tile
    first = index * TILE_WIDTH
    if (first + width) * span > len(leaves):
        raise TileError(f"tile {level}/{index} of width {width} needs more than {len(leaves)} leaves")
    return [merkle.root(leaves[(first + i) * span : (first + i + 1) * span]) for i in range(width)]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise TileError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, got {len(entries)}")
    out = bytearray()
    for i, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY:
            raise TileError(f"entry {i}: at most {MAX_ENTRY} bytes, got {len(entry)}")
        out += struct.pack(">H", len(entry)) + entry
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise TileError(f"entry bundle: a length cut short at byte {at}")
        (n,) = struct.unpack_from(">H", data, at)
        if at + 2 + n > len(data):
            raise TileError(f"entry bundle: entry {len(entries)} runs past the end")
        entries.append(data[at + 2 : at + 2 + n])
        at += 2 + n
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise TileError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, got {len(entries)}")
    return entries
