"""Deconfliction notices over HTTP (docs/notices.md). Routes translate, services decide."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field

from openline.api.bodies import Strict
from openline.api.deps import (
    BEFORE,
    IdempotencyKey,
    PrincipalDep,
    StationDep,
    known_query_only,
    made_once,
)
from openline.core import notices as nm
from openline.errors import InvalidInput
from openline.services import notice_view, notices
from openline.services.accounts import Permission

router = APIRouter(prefix="/api/v1/notices", dependencies=[Depends(known_query_only)])
NoticeId = Annotated[str, Path(min_length=1, max_length=64)]


class SendNotice(Strict):
    peer: str = Field(min_length=1, max_length=63)
    notice: dict[str, Any] = Field(
        description="A notice document: category, text, extents (ASTM F3548 Volume4D), routes (GeoJSON); "
        "or a removal notice: category protected_site, text, removes (the site notice's id)."
    )
    amends: str | None = Field(default=None, min_length=1, max_length=64)
    draft: bool = Field(default=False, description="Check it and keep it here as a draft; send nothing.")


class EditDraft(Strict):
    notice: dict[str, Any] = Field(description="The draft's new document, as `notice` in sending one.")
    send: bool = Field(default=False, description="Send it too, in the same transaction.")


class Reject(Strict):
    reason: str = Field(min_length=1, max_length=nm.MAX_TEXT)


def _show(station: Any, who: Any, notice_id: str) -> dict[str, Any]:
    return notice_view.show_notice(station, notice_id, content=who.can(Permission.READ_CONTENT))


@router.post("", status_code=201)
def send(
    station: StationDep,
    who: PrincipalDep,
    req: SendNotice,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Send a notice (or, with `amends`, a new version of one of ours) to a peer; with
    `draft`, keep it here as a draft (its `would_conflict` previews the conflicts). With an
    Idempotency-Key, sending it again answers with the same notice."""
    who.require(Permission.WORK_CALLS)
    notice_id = made_once(
        station,
        who,
        (request, response),
        req,
        idempotency_key,
        lambda once: notices.send(
            station, who.name, req.peer, req.notice, amends=req.amends, draft=req.draft, once=once
        ),
    )
    return _show(station, who, notice_id)


@router.get("")
def list_notices(
    station: StationDep,
    who: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    at: Annotated[
        str | None,
        Query(
            max_length=60, description="LAT,LNG: only notices, in any state but draft, that cover this place."
        ),
    ] = None,
    radius_m: Annotated[
        float | None, Query(description="With `at`: the place is a circle this wide (default 1 m).")
    ] = None,
    when: Annotated[
        str | None,
        Query(
            max_length=40,
            description="With `at`: RFC 3339, only then; each says what had become of it by then.",
        ),
    ] = None,
    altitude_m: Annotated[
        float | None, Query(description="With `at`: only at this altitude (WGS84).")
    ] = None,
    state: Annotated[
        str | None, Query(max_length=16, description="Only those that read this state now.")
    ] = None,
    peer: Annotated[
        str | None, Query(max_length=63, description="Only those on the line with this peer.")
    ] = None,
    direction: Annotated[
        str | None, Query(max_length=16, description="Only ours (out) or the peer's (in).")
    ] = None,
    category: Annotated[str | None, Query(max_length=32, description="Only those of this category.")] = None,
    before: Annotated[str | None, Query(min_length=1, max_length=64, description=BEFORE)] = None,
) -> list[dict[str, Any]]:
    """Notices newest first, or only those in a state, on a line, one way or of a
    category; with `at`, those that ever covered that place (and time, and altitude), each
    with `covers`: an investigator's question."""
    who.require(Permission.VIEW)
    content = who.can(Permission.READ_CONTENT)
    where = notice_view.NoticeFilter(state, peer, direction, category)
    where.check()
    place = notice_view.place_asked(at, radius_m, when, altitude_m)
    if place is None:
        return notice_view.list_notices(station, content=content, limit=limit, where=where, before=before)
    if before is not None:
        raise InvalidInput("with at, every notice that covered the place is listed at once: before pages the "
                           "plain listing")  # fmt: skip
    if where != notice_view.NoticeFilter():
        raise InvalidInput("with at, list every notice that covered the place: state, peer, direction and "
                           "category filter the plain listing")  # fmt: skip
    found, _ = notice_view.notices_at(station, place, content=content, limit=limit)
    return found


@router.get("/{notice_id}")
def get_notice(station: StationDep, who: PrincipalDep, notice_id: NoticeId) -> dict[str, Any]:
    who.require(Permission.VIEW)
    return _show(station, who, notice_id)


@router.post("/{notice_id}/acknowledge")
def acknowledge(station: StationDep, who: PrincipalDep, notice_id: NoticeId) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    notices.acknowledge(station, who.name, notice_id)
    return _show(station, who, notice_id)


@router.post("/{notice_id}/reject")
def reject(station: StationDep, who: PrincipalDep, notice_id: NoticeId, req: Reject) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    notices.reject(station, who.name, notice_id, req.reason)
    return _show(station, who, notice_id)


@router.post("/{notice_id}/withdraw")
def withdraw(station: StationDep, who: PrincipalDep, notice_id: NoticeId) -> dict[str, Any]:
    who.require(Permission.WORK_CALLS)
    notices.withdraw(station, who.name, notice_id)
    return _show(station, who, notice_id)


@router.post("/{notice_id}/send")
def send_draft(station: StationDep, who: PrincipalDep, notice_id: NoticeId) -> dict[str, Any]:
    """Send one of our drafts, exactly as a new notice is sent."""
    who.require(Permission.WORK_CALLS)
    notices.send_draft(station, who.name, notice_id)
    return _show(station, who, notice_id)


@router.put("/{notice_id}")
def edit_draft(station: StationDep, who: PrincipalDep, notice_id: NoticeId, req: EditDraft) -> dict[str, Any]:
    """Replace one of our drafts' document in place, checked as saving a draft checks it
    (its id, peer and the notice it amends stay); with `send`, send it as well."""
    who.require(Permission.WORK_CALLS)
    notices.edit_draft(station, who.name, notice_id, req.notice, send=req.send)
    return _show(station, who, notice_id)


@router.post("/{notice_id}/discard")
def discard(station: StationDep, who: PrincipalDep, notice_id: NoticeId) -> dict[str, Any]:
    """Discard one of our drafts: nothing is sent."""
    who.require(Permission.WORK_CALLS)
    notices.discard(station, who.name, notice_id)
    return _show(station, who, notice_id)
