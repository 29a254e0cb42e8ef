"""Prometheus counters the services update (served at /metrics). Metadata only, never content."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ENVELOPES_RECEIVED = Counter(
    "openline_envelopes_received_total",
    "Inbound envelopes by outcome (stored, duplicate, refused).",
    ["outcome"],
)
ENVELOPES_REFUSED = Counter(
    "openline_envelopes_refused_total", "Inbound envelopes refused, by wire error code.", ["code"]
)
ENVELOPES_DELIVERED = Counter(
    "openline_envelopes_delivered_total", "Outbound envelopes for which a valid receipt came back."
)
DELIVERY_FAILURES = Counter(
    "openline_delivery_failures_total", "Delivery or handshake attempts that failed and will be retried."
)
BATCH_SECONDS = Histogram(
    "openline_delivery_batch_seconds",
    "Time to send one batch and settle its receipts.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
