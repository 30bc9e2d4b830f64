"""``GET /openapi.json``: the ingest API described for source developers and for schemathesis in CI.

The Event schema is derived from the pydantic model, so the published contract cannot drift from the
validation that actually runs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web

from bot.ingestion.payloads import JSON_TYPES, NDJSON_TYPES
from bot.ingestion.validation import Event

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _event_schema() -> dict[str, Any]:
    schema = Event.model_json_schema(mode="validation")
    schema["description"] = "One thing that happened with one client; unknown fields are kept as extras."
    return schema


_FIELD_ERROR = {
    "type": "object",
    "required": ["index", "field", "message"],
    "properties": {
        "index": {"type": "integer", "minimum": 0, "description": "position in the batch (NDJSON: item)"},
        "field": {
            "type": ["string", "null"],
            "description": "the field at fault; null for the whole item (also when the database refused the "
            "event on its own: message 'internal error, quarantined')",
        },
        "message": {"type": "string", "minLength": 1},
    },
}


def _outcome(*, with_errors: bool) -> dict[str, Any]:
    errors: dict[str, Any] = {"type": "array", "items": _ref("FieldError")}
    if with_errors:
        errors["minItems"] = 1
    return {
        "type": "object",
        "required": ["accepted", "duplicates", *(["errors"] if with_errors else [])],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "duplicates": {"type": "integer", "minimum": 0},
            "errors": errors,
        },
    }


_RETRY_AFTER = {
    "Retry-After": {
        "required": True,
        "description": "seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def _json(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(schema_name)}}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": _json("Error"), **extra}


@cache
def openapi_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``POST /v1/events`` and ``GET /healthz``."""
    batch = {"oneOf": [_ref("Event"), {"type": "array", "items": _ref("Event")}]}
    body_content: dict[str, Any] = {media: {"schema": batch} for media in sorted(JSON_TYPES)}
    body_content.update(
        {
            media: {
                "schema": {"type": "array", "items": _ref("Event")},
                "description": "one event per line; blank lines are skipped, a broken line is one error",
            }
            for media in sorted(NDJSON_TYPES)
        }
    )
    health = {
        "type": "object",
        "required": ["status", "storage", "telegram"],
        "properties": {
            "status": {"enum": ["ok", "down"]},
            "storage": {"enum": ["ok", "down"]},
            "telegram": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LeadTrail ingest API",
            "version": "1",
            "description": "Events from AI assistants and CRMs. Answers come only after the commit. "
            "Model calls may also come as OpenTelemetry traces: POST /v1/traces speaks OTLP/HTTP "
            "(protobuf or JSON), described by the OTLP specification rather than here.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Event": _event_schema(),
                "FieldError": _FIELD_ERROR,
                "Outcome": _outcome(with_errors=False),
                "OutcomeWithErrors": _outcome(with_errors=True),
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string", "minLength": 1}},
                },
                "Health": health,
            },
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "operationId": "postEvents",
                    "summary": "Store one event, a JSON array of events, or NDJSON",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": True, "content": body_content},
                    "responses": {
                        "202": {"description": "every event stored", "content": _json("Outcome")},
                        "207": {
                            "description": "some stored, the rest rejected and quarantined",
                            "content": _json("OutcomeWithErrors"),
                        },
                        "400": _error("the body is not JSON / NDJSON at all"),
                        "401": _error("missing or unknown token"),
                        "413": _error("body over ingest.max_body_bytes"),
                        "415": _error("unsupported Content-Type"),
                        "422": {
                            "description": "every event rejected: nothing stored, all quarantined",
                            "content": _json("OutcomeWithErrors"),
                        },
                        "429": _error("over the token's rate limit", headers=_RETRY_AFTER),
                        "503": _error(
                            "storage unavailable or shutting down, and only then: retry", headers=_RETRY_AFTER
                        ),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Is storage answering, and Telegram's state",
                    "security": [],
                    "responses": {
                        "200": {"description": "storage answers", "content": _json("Health")},
                        "503": {"description": "storage is down", "content": _json("Health")},
                    },
                }
            },
        },
    }


async def serve_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec())
