"""Prometheus metrics (exposition format at /metrics). Metadata only, never content."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from openline.core.clock import MICROS, parse_rfc3339
from openline.services import lines
from openline.services.station import Station

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


class LineCollector(Collector):
    """Per-line gauges read from the database at scrape time."""

    def __init__(self, station: Station) -> None:
        self.station = station

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "openline_outbox_depth", "Envelopes waiting for a receipt.", labels=["peer"]
        )
        active = GaugeMetricFamily("openline_line_active", "1 if the line is active.", labels=["peer"])
        contact = GaugeMetricFamily(
            "openline_line_seconds_since_contact", "Seconds since the peer was last reached.", labels=["peer"]
        )
        now = self.station.clock.now()
        for line in lines.list_lines(self.station):
            depth.add_metric([line["peer"]], line["outbox_depth"])
            active.add_metric([line["peer"]], 1.0 if line["state"] == "active" else 0.0)
            if line["last_contact_at"] is not None:
                seconds = (now - parse_rfc3339(line["last_contact_at"])) / MICROS
                contact.add_metric([line["peer"]], seconds)
        yield depth
        yield active
        yield contact
