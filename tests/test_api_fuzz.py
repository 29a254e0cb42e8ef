"""Schemathesis against the station's published OpenAPI document: whatever a client
sends to any operation, the station answers without a server error, and with a status,
a media type and a body that the document describes (docs/api.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from openline.adapters.home import read_token
from openline.core.clock import FakeClock
from tests.inproc import make_node


def test_api_answers_every_input_without_a_server_error(tmp_path: Path, database_url: str | None) -> None:
    # On both backends: PostgreSQL refuses what SQLite stores (NUL in text was a 500 there).
    node = make_node(tmp_path, "stuttgart", FakeClock(), database_url)
    headers = {"Authorization": f"Bearer {read_token(node.home)}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", node.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12  # the local API and the station-to-station endpoints

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            case.call_and_validate(
                headers=headers,
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )

        fuzz()
