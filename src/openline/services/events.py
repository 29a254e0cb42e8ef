"""A call's event log, and the ledger entry that makes each event provable.

Every event on a call (placed, delivered, ringing, picked up, a message, an escalation
step, a notification, ...) goes into `call_events`, which the console and `openline show`
read, and into the evidence ledger as a `call.<event>` entry, in the same transaction.
"""

from __future__ import annotations

import json
from typing import Any

from openline.adapters.schema import call_events
from openline.services import ledger
from openline.services.station import Tx


def record(
    tx: Tx,
    call_id: str,
    at: int,
    event: str,
    actor: str,
    envelope_id: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    facts: dict[str, Any] | None = None,
) -> None:
    """Record one event on a call. `detail` is shown with the event; `facts` go only into
    the ledger entry (what a proof needs to stand alone: the line, the peer, ...)."""
    tx.touched.add("calls")
    tx.insert_later(
        call_events,
        {
            "call_id": call_id,
            "at": at,
            "event": event,
            "actor": actor,
            "envelope_id": envelope_id,
            "detail": json.dumps(detail, sort_keys=True) if detail else None,
        },
    )
    metadata: dict[str, Any] = {"call": call_id, "actor": actor, **(facts or {})}
    if envelope_id is not None:
        metadata["envelope"] = envelope_id
    rest = {k: v for k, v in (detail or {}).items() if k not in metadata}  # said once is enough
    if rest:
        metadata["detail"] = rest
    ledger.append(tx, f"call.{event}", at, metadata, call_id=call_id)
