"""A GenAI span as a LeadTrail event (design.md, "Model calls: OTLP/HTTP"), and the user a span names.

A span is a model call when it carries ``gen_ai.operation.name``, ``gen_ai.provider.name`` or the
deprecated ``gen_ai.system``; any other span is no event (only its user counts, for its trace). The
event's id is the trace id and span id, so an exporter's retry is a duplicate, not a second call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.ingestion.otlp_content import message_texts
from bot.ingestion.otlp_decode import SpanRecord
from bot.ingestion.validation import MAX_USER_ID_CHARS
from storage.event_types import EventType

# Where a span names its user, in order: the first present wins, on the span or else its resource.
USER_ATTRIBUTES = (
    "leadtrail.user_id",
    "user.id",
    "enduser.id",
    "langfuse.user.id",
    "traceloop.association.properties.user_id",
    "gen_ai.conversation.id",
)
MODEL_CALL_MARKERS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system")
# ``leadtrail.<field>`` fills that field of the event (channel, event, intent, cost, crm_id, …).
FIELD_PREFIX = "leadtrail."


def is_model_call(record: SpanRecord) -> bool:
    return any(marker in record.attributes for marker in MODEL_CALL_MARKERS)


def _first(attributes: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def named_user(record: SpanRecord) -> tuple[int, str] | None:
    """(rank, user id) of the first user attribute the span carries; rank is its place in the order."""
    for rank, key in enumerate(USER_ATTRIBUTES):
        value = record.attributes.get(key)
        if value is not None and value != "":
            return rank, str(value)
    return None


def usable_user(user_id: str) -> bool:
    """A user another span of the trace may inherit: one the event contract accepts. (A model call's own
    user is not checked here: a bad one is rejected with the contract's message instead.)"""
    return 0 < len(user_id) <= MAX_USER_ID_CHARS and "\x00" not in user_id


def _utc_iso(unix_nano: int) -> str:
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    return moment.isoformat(timespec="milliseconds")


def model_call_item(record: SpanRecord) -> dict[str, Any]:
    """The event of a model-call span, as a source would send it; ``user_id`` only when the span names
    one (else it comes from the trace). Fields the span does not give are left out."""
    attributes = record.attributes
    prompt, answer = message_texts(record)
    item: dict[str, Any] = {
        "event_id": record.trace_id + record.span_id,
        "event": EventType.LLM_CALL.value,
        "timestamp": _utc_iso(record.end_unix_nano),
        "response_time_ms": round(max(record.end_unix_nano - record.start_unix_nano, 0) / 1_000_000),
        "model": _first(attributes, "gen_ai.response.model", "gen_ai.request.model"),
        "provider": _first(attributes, "gen_ai.provider.name", "gen_ai.system"),
        "input_tokens": _first(attributes, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
        "output_tokens": _first(attributes, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
        "cached_tokens": _first(attributes, "gen_ai.usage.cache_read.input_tokens"),
        "prompt": prompt,
        "assistant_response": answer,
    }
    if (user := named_user(record)) is not None:
        item["user_id"] = user[1]
    for key, value in attributes.items():
        name = key[len(FIELD_PREFIX) :]
        if key.startswith(FIELD_PREFIX) and name and name != "user_id":
            item[name] = value
    return {name: value for name, value in item.items() if value is not None}
