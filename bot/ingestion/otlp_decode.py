"""OTLP/HTTP trace bodies (``POST /v1/traces``) to flat spans: protobuf or OTLP/JSON.

Follows the OTLP specification (opentelemetry-proto ``docs/specification.md``): OTLP/JSON carries trace
and span ids as hex (``json_format`` alone would read them as base64 and silently yield wrong bytes),
unknown JSON fields are ignored, and every span's ids are checked for their length. A gzip body arrives
here decompressed: the HTTP server (aiohttp) inflates it while reading, within the body limit.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = frozenset({PROTOBUF, JSON})
_ID_BYTES = {"traceId": (16,), "spanId": (8,), "parentSpanId": (0, 8)}
_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One span, flattened: ids as lowercase hex ("" for a root's parent), the resource's attributes
    overlaid by the span's own (the span's win), and its events."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_unix_nano: int
    end_unix_nano: int
    attributes: dict[str, Any]
    events: list[SpanEvent] = field(default_factory=list)


def decode_request(body: bytes, media_type: str) -> ExportTraceServiceRequest:
    """``media_type`` is one of ``MEDIA_TYPES``; raises ``ValueError`` naming what is wrong when the body
    is not an ExportTraceServiceRequest."""
    if media_type == PROTOBUF:
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except DecodeError as exc:
            raise ValueError(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
    else:
        request = _parse_otlp_json(body)
    _check_ids(request)
    return request


def _parse_otlp_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError("an OTLP/JSON body is a JSON object with 'resourceSpans'")
    _hex_ids_to_base64(document, "$")
    try:
        return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise ValueError(f"body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None


def _hex_ids_to_base64(node: Any, path: str) -> None:
    """Rewrite hex ``traceId``/``spanId``/``parentSpanId`` in place to the base64 ``json_format`` reads.

    Attribute values never sit under these names (attributes are ``{"key", "value"}`` objects), so
    walking the whole document is safe.
    """
    if isinstance(node, list):
        for index, item in enumerate(node):
            _hex_ids_to_base64(item, f"{path}[{index}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_BYTES and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise ValueError(f"{path}.{key} is not a hex string: {value[:64]!r}") from None
                node[key] = base64.b64encode(raw).decode("ascii")
            else:
                _hex_ids_to_base64(value, f"{path}.{key}")


def _check_ids(request: ExportTraceServiceRequest) -> None:
    for i, resource_spans in enumerate(request.resource_spans):
        for j, scope_spans in enumerate(resource_spans.scope_spans):
            for k, span in enumerate(scope_spans.spans):
                for name, raw in (
                    ("traceId", span.trace_id),
                    ("spanId", span.span_id),
                    ("parentSpanId", span.parent_span_id),
                ):
                    if len(raw) not in _ID_BYTES[name]:
                        expected = " or ".join(str(size) for size in _ID_BYTES[name])
                        raise ValueError(
                            f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}].{name} has {len(raw)} bytes, "
                            f"expected {expected}"
                        )


def any_value(value: AnyValue) -> Any:
    """An attribute value as JSON-ready Python: str, bool, int, float, list, dict or None (bytes as
    base64 text, since events are JSON)."""
    kind = value.WhichOneof("value")
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None  # empty, or profiles-only string_value_strindex


def attributes_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {item.key: any_value(item.value) for item in attributes}


def spans_of(request: ExportTraceServiceRequest) -> Iterator[SpanRecord]:
    """One ``SpanRecord`` per span, in the order of the request."""
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield SpanRecord(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    start_unix_nano=span.start_time_unix_nano,
                    end_unix_nano=span.end_time_unix_nano,
                    attributes={**resource, **attributes_dict(span.attributes)},
                    events=[
                        SpanEvent(event.name, attributes_dict(event.attributes)) for event in span.events
                    ],
                )
