"""Listings newest first, a page at a time: `before` names the last row a client has (its
id), and the next page is the rows that come after it in the listing's order. Ordered by
(time, id), rows that share a time are neither skipped nor repeated, as they could be
when paging by time alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, select, tuple_

from openline.errors import NotFound


def after(
    conn: Connection, table: Table, before: Any, order: tuple[Column[Any], ...], what: str
) -> ColumnElement[bool]:
    """The rows that follow row `before` (by id) in a listing ordered by `order`, newest
    first (its last column the id, so that the order is total)."""
    row = conn.execute(select(*order).where(table.c.id == before)).first()
    if row is None:
        raise NotFound(f"before: there is no {what} {before!r:.60} to list from")
    return tuple_(*order) < tuple_(*row)
