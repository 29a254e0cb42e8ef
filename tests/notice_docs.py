"""Notice documents for tests: a square of about 2 km around a point, 0 to 3,000 m."""

from __future__ import annotations

from typing import Any


def square(
    lat: float,
    lng: float,
    start: str,
    end: str,
    *,
    text: str = "Strike package over the valley",
    category: str = "air_operation",
) -> dict[str, Any]:
    """A notice of one square volume, 0.02° on a side, from `start` to `end` (RFC 3339)."""
    d = 0.01
    return {
        "category": category,
        "text": text,
        "extents": [
            {
                "volume": {
                    "outline_polygon": {
                        "vertices": [
                            {"lat": lat - d, "lng": lng - d},
                            {"lat": lat - d, "lng": lng + d},
                            {"lat": lat + d, "lng": lng + d},
                            {"lat": lat + d, "lng": lng - d},
                        ]
                    },
                    "altitude_lower": {"value": 0, "reference": "W84", "units": "M"},
                    "altitude_upper": {"value": 3000, "reference": "W84", "units": "M"},
                },
                "time_start": {"value": start, "format": "RFC3339"},
                "time_end": {"value": end, "format": "RFC3339"},
            }
        ],
    }
