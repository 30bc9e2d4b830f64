"""OTLP trace requests built by hand, as protobuf messages or OTLP/JSON (hex ids), for tests and benchmarks.

The real exporter (``opentelemetry-exporter-otlp-proto-http``) is what the end-to-end tests use; these
cover what it never sends (JSON, malformed bodies, old attribute names) and make bodies of any size.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

START_NANO = 1_741_600_800_000_000_000  # 2025-03-10T10:00:00Z
AUTH = {"Authorization": "Bearer otlp-token"}


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        result = AnyValue()
        result.array_value.values.extend(any_value(item) for item in value)
        return result
    return AnyValue(string_value=str(value))


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def span(
    trace_id: str,
    span_id: str,
    attributes: dict[str, Any],
    *,
    parent: str = "",
    name: str = "chat yandexgpt-pro",
    start: int = START_NANO,
    duration_ms: int = 1234,
) -> Span:
    return Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration_ms * 1_000_000,
        attributes=key_values(attributes),
    )


def chat(model: str, tokens_in: int, tokens_out: int, **extra: Any) -> dict[str, Any]:
    """The attributes opentelemetry-instrumentation-openai-v2 puts on a chat span."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.provider.name": "openai",
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": tokens_in,
        "gen_ai.usage.output_tokens": tokens_out,
        **extra,
    }


def request(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    built = ExportTraceServiceRequest()
    resource_spans = built.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": "salon-bot", **(resource or {})}))
    resource_spans.scope_spans.add().spans.extend(spans)
    return built


def as_json(built: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: the protobuf JSON mapping with integer enums and hex (here upper-case) ids."""
    document = MessageToDict(built, use_integers_for_enums=True)

    def hexify(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                hexify(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId"):
                    node[key] = base64.b64decode(value).hex().upper()
                else:
                    hexify(value)

    hexify(document)
    return json.dumps(document).encode()
