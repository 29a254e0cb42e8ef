"""Retry delays for the outbox deliverer: capped exponential backoff with full jitter.

The cap matters: Synapse issue #2528 is a server that backed off a peer for a day and
so kept a line silent long after the peer came back. We cap at a minute and, on top,
retry at once whenever the peer contacts us (RFC 1123 §5.3.1.1 for mail does the same).
"""

from __future__ import annotations

import random

BASE_SECONDS = 0.5
CAP_SECONDS = 60.0


def delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry)."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    ceiling: float = min(CAP_SECONDS, BASE_SECONDS * 2.0 ** min(attempt - 1, 32))
    r: float = (rng or random).random()
    # Half fixed, half jitter: never zero, never above the cap.
    return ceiling / 2 + r * ceiling / 2
