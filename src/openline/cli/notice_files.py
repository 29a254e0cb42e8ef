"""The notices a file makes for `openline notice send FILE`: any format `openline conflicts`
reads, told by content (openline.core.formats).

- A notice file is sent as it is: the station checks it (a removal notice too).
- An ASTM Volume4D or GeoJSON file does not say what activity it announces: it is one
  notice of the category the officer gives, its volumes as ASTM Volume4D JSON
  (`core.notices.volume4d`; a GeoJSON route becomes its corridor's polygons).
- A CSV of sites is one `protected_site` notice per site, with the site's name as its
  text: sites are notified and acknowledged one by one, as the UN No-Strike List has them.

Every volume is checked here first, and each site's notice as the station will check it,
so that a file with one bad row sends nothing; an ASTM or GeoJSON notice too large to travel
is refused naming its largest volume, which the station's own refusal cannot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openline.core import formats
from openline.core.formats import FormatError
from openline.core.notices import CATEGORIES, volume4d
from openline.core.volumes import Polygon, Volume
from openline.errors import OpenLineError
from openline.services.notices import MAX_BODY, parse_document

_WHAT = {"astm": "an ASTM Volume4D file", "geojson": "a GeoJSON file"}
# What a notice's body holds beside its document (services.notices): the notice's id, its
# series, version and the notice it supersedes, under 200 bytes as JSON.
_BODY_HEADER = 200


@dataclass(frozen=True)
class Outgoing:
    """One notice document to send, and what to call it: the file, or one of its sites."""

    name: str
    document: dict[str, Any]


def notices(
    name: str, data: bytes, *, category: str | None, text: str | None, now: int
) -> tuple[str, list[Outgoing]]:
    """The file's format (`notice`, `astm`, `geojson` or `sites`) and the notices it makes,
    checked; or FormatError naming the file, the volume and the field, or the option."""
    if category is not None and category not in CATEGORIES:
        raise FormatError(f"--category: expected one of {', '.join(CATEGORIES)}, got {category!r:.40}")
    kind, content = formats.decode(name, data)
    if kind == "notice":
        for option, value in (("category", category), ("text", text)):
            if value is not None and content.get(option) != value:
                raise FormatError(
                    f"{name} is a notice file whose {option} is {content.get(option)!r:.80}, "
                    f"not --{option} {value!r:.80}: a notice file says its own"
                )
        return kind, [Outgoing(name, content)]
    if kind == "sites":
        if text is not None:
            raise FormatError(
                f"{name} is a CSV of sites: each site is a notice whose text is the site's name, "
                "so --text is for an ASTM or GeoJSON file"
            )
    elif category is None:
        raise FormatError(
            f"{name} is {_WHAT[kind]}, which does not say what activity it announces: "
            f"give --category, one of {', '.join(CATEGORIES)}"
        )
    parsed = formats.parse(name, data, now=now, category=category)
    if kind == "sites":
        sites = [
            Outgoing(volume.name, _document("protected_site", site, [volume]))
            for site, volume in zip(parsed.sites, parsed.volumes, strict=True)
        ]
        return kind, _checked(sites, parsed.rows, now)
    document = _document(str(parsed.category), text or "", parsed.volumes)
    _fits(name, kind, document, parsed.volumes)
    return kind, [Outgoing(name, document)]


def _fits(name: str, kind: str, document: dict[str, Any], volumes: Sequence[Volume]) -> None:
    """Refuse a notice too large to travel, as the station would, but naming the volume that
    takes most room: a GeoJSON polygon takes a vertex every few hundred metres along its
    east-west edges (core.formats follows them as the file draws them)."""
    size = len(json.dumps(document))
    if size + _BODY_HEADER <= MAX_BODY:
        return
    largest = max(volumes, key=_vertex_count)
    why = (
        " (a GeoJSON polygon takes a vertex every few hundred metres along its east-west edges, "
        "to follow them as the file draws them)"
        if kind == "geojson"
        else ""
    )
    raise FormatError(
        f"{name}: the notice is too large to send ({size:,} bytes as JSON; one notice travels in "
        f"at most {MAX_BODY:,}): its largest volume, {largest.name}, has {_vertex_count(largest):,} "
        f"vertices{why}; split it into smaller areas, sent as notices of their own"
    )


def _vertex_count(volume: Volume) -> int:
    return len(volume.outline.vertices) if isinstance(volume.outline, Polygon) else 0


def _checked(notices: list[Outgoing], rows: Sequence[str], now: int) -> list[Outgoing]:
    """The notices, each checked by the station's own reading of a document (its text too:
    a site's name with a control character is refused there), before the first is sent;
    an error names the site's row (`rows`), with its line in the file."""
    for notice, row in zip(notices, rows, strict=True):
        try:
            parse_document(notice.document, now, row)
        except OpenLineError as exc:
            raise FormatError(exc.detail) from None
    return notices


def _document(category: str, text: str, volumes: Sequence[Volume]) -> dict[str, Any]:
    """A notice document (docs/notices.md) of these volumes, as the station reads one."""
    return {"category": category, "text": text, "extents": [volume4d(v) for v in volumes]}
