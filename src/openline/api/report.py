"""The transparency report over HTTP. Metadata only, so every role that may view the
station may read it, auditors included."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from openline.api.deps import PrincipalDep, StationDep, known_query_only
from openline.services import report
from openline.services.accounts import Permission

router = APIRouter(prefix="/api/v1", dependencies=[Depends(known_query_only)])


@router.get("/report")
def get_report(
    station: StationDep,
    who: PrincipalDep,
    period: Annotated[
        str | None, Query(max_length=32, description="A month, YYYY-MM (UTC). Default: this month.")
    ] = None,
) -> dict[str, Any]:
    """Per line, for one month: calls placed and received, picked up, missed, declined,
    cancelled, time to pick-up (median, p90), against the latest (cosigned) checkpoint."""
    who.require(Permission.VIEW)
    return report.transparency_report(station, report.current_period(station) if period is None else period)
