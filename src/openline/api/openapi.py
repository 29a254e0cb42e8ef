"""The station's OpenAPI document, told the truth about what FastAPI does not know: how a
client authenticates, and that every error is an RFC 9457 problem document
(`application/problem+json`, problems.py), 422 included, not FastAPI's own shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from openline.api.problems import API_PATHS, STATION_PATHS
from openline.core.requestsig import SCHEME
from openline.errors import Code

PROBLEM = {
    "type": "object",
    "description": "An RFC 9457 problem document. Match on `code` (docs/protocol.md lists them).",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "enum": [c.value for c in Code]},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "With invalid_input from a request's shape: each field refused, and why.",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
        "reason": {"type": "string", "description": "With database_unavailable: the driver's words."},
    },
    "additionalProperties": True,
}
SECURITY = {
    "token": {
        "type": "http",
        "scheme": "bearer",
        "description": "A user's API token (`openline init` writes the administrator's into the "
        "station home; `openline user token add` issues one per person).",
    },
    "station": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": f"A peer station's signed request: `{SCHEME} origin=...,destination=...,sig=...` "
        "(docs/protocol.md).",
    },
}


def _problem(description: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {"application/problem+json": {"schema": ref}}}


def describe(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (FastAPI's document) with security schemes and problem responses."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for fastapi_own in ("HTTPValidationError", "ValidationError"):
        schemas.pop(fastapi_own, None)
    schemas["Problem"] = PROBLEM
    components["securitySchemes"] = SECURITY
    schema["info"]["description"] = (
        "The local API (/api/v1) and the station-to-station endpoints (/_openline/v1). "
        "docs/api.md describes each operation, the answers' fields, Idempotency-Key and errors."
    )
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if path.startswith(API_PATHS):
                operation["security"] = [{"token": []}]
            elif path.startswith(STATION_PATHS):
                operation["security"] = [{"station": []}]
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _problem("Invalid input: the request's shape (`errors` says where)")
            responses["default"] = _problem("Any refusal or failure, as a problem document")
    return schema


def install(app: FastAPI) -> None:
    """Serve the described document at /openapi.json (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
