"""Gauges for /metrics read from the database at scrape time: each line's health, the
open alerts, and whether the station can use its database."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from openline.adapters.db import SETTLE_SECONDS
from openline.core.clock import MICROS, parse_rfc3339
from openline.errors import DatabaseUnavailable
from openline.services import alerts, lines
from openline.services.station import Station


class LineCollector(Collector):
    """Per-line gauges and open alerts, read from the database at scrape time."""

    def __init__(self, station: Station) -> None:
        self.station = station

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "openline_outbox_depth", "Envelopes waiting for a receipt.", labels=["peer"]
        )
        oldest = GaugeMetricFamily(
            "openline_outbox_oldest_seconds",
            "Seconds the oldest envelope has waited for a receipt (0 when none waits).",
            labels=["peer"],
        )
        active = GaugeMetricFamily("openline_line_active", "1 if the line is active.", labels=["peer"])
        contact = GaugeMetricFamily(
            "openline_line_seconds_since_contact", "Seconds since the peer was last reached.", labels=["peer"]
        )
        up = GaugeMetricFamily(
            "openline_database_up",
            "1 if the station can read and store in its database, else 0: 0 from the moment a read "
            "or a write finds it out of reach (a full disk: reads work, writes fail) until reads "
            f"succeed and, after a failed write, writes have committed with none failing for "
            f"{SETTLE_SECONDS:.0f} s.",
        )
        open_alerts = GaugeMetricFamily(
            "openline_alerts_open",
            "Alerts nobody has acknowledged yet, by kind (kinds with none are not listed).",
            labels=["kind"],
        )
        skew = GaugeMetricFamily(
            "openline_peer_clock_offset_seconds",
            "The peer station's clock minus ours, as the last round trip measured it (the middle of "
            "its bounds; see openline lines --json for their width).",
            labels=["peer"],
        )
        now = self.station.clock.now()
        try:
            listed = lines.list_lines(self.station)
            counts = alerts.open_counts(self.station)
        except DatabaseUnavailable:  # the process metrics are still worth scraping
            listed, counts, reached = [], {}, False
        else:  # down too while it reads but cannot store (`Database._watched`)
            reached = self.station.db.up
        up.add_metric([], 1.0 if reached else 0.0)
        yield up
        for line in listed:
            depth.add_metric([line["peer"]], line["outbox_depth"])
            since = line["waiting_since"]
            oldest.add_metric([line["peer"]], (now - parse_rfc3339(since)) / MICROS if since else 0.0)
            active.add_metric([line["peer"]], 1.0 if line["state"] == "active" else 0.0)
            if line["last_contact_at"] is not None:
                seconds = (now - parse_rfc3339(line["last_contact_at"])) / MICROS
                contact.add_metric([line["peer"]], seconds)
            if line["peer_clock"] is not None:
                skew.add_metric([line["peer"]], line["peer_clock"]["offset_ms"] / 1000)
        for kind, count in counts.items():
            open_alerts.add_metric([kind], count)
        yield depth
        yield oldest
        yield active
        yield contact
        yield open_alerts
        yield skew
