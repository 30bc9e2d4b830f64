"""The event contract with every source (design.md, "Event"), and its normalisation into a stored row.

Validation messages are English: they go back to the developers of the sources through the API.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from reports.pricing import PriceTable, apply_prices
from storage.event_row import EventRow
from storage.event_types import EventType

EVENT_NAME_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"
_ACTOR_BY_EVENT: dict[str, str] = {
    EventType.MESSAGE_RECEIVED: "client",
    EventType.ASSISTANT_RESPONSE: "assistant",
    EventType.LLM_CALL: "assistant",
    EventType.MANAGER_MESSAGE: "manager",
}
MAX_TEXT_CHARS = 16 * 1024
MIN_YEAR, MAX_YEAR = 2, 9998  # any offset and zone keeps these representable in UTC
MAX_USER_ID_CHARS = 128
MAX_SAFE_INT = 2**53  # the largest integer a JSON reader in any language keeps exactly

ShortText = Annotated[str, StringConstraints(max_length=256)]
LongText = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]

SHORT_TEXT_FIELDS = (
    "crm_id",
    "lead_id",
    "phone",
    "name",
    "manager_id",
    "location",
    "scenario",
    "service",
    "intent",
    "action",
    "reason",
    "status",
    "currency",
    "model",
    "provider",
)
LONG_TEXT_FIELDS = ("message", "assistant_response", "prompt")


class Event(BaseModel):
    """One thing that happened with one client; unknown fields are kept as extras."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, allow_inf_nan=False)

    timestamp: datetime
    event: Annotated[str, StringConstraints(pattern=EVENT_NAME_PATTERN)]
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_USER_ID_CHARS)]
    channel: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "unknown"
    crm_id: ShortText | None = None
    lead_id: ShortText | None = None
    phone: ShortText | None = None
    name: ShortText | None = None
    manager_id: ShortText | None = None
    location: ShortText | None = None
    scenario: ShortText | None = None
    service: ShortText | None = None
    intent: ShortText | None = None
    action: ShortText | None = None
    reason: ShortText | None = None
    status: ShortText | None = None
    currency: ShortText | None = None
    message: LongText | None = None
    assistant_response: LongText | None = None
    prompt: LongText | None = None
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    response_time_ms: Annotated[int, Field(ge=0, le=MAX_SAFE_INT)] | None = None
    amount: Annotated[float, Field(ge=-1e12, le=1e12)] | None = None
    appointment_at: datetime | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    actor: Literal["client", "assistant", "manager", "system"] | None = None
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    # The model call behind this event (an llm_call, or an assistant_response that carries one).
    model: ShortText | None = None
    provider: ShortText | None = None
    input_tokens: Annotated[int, Field(ge=0, le=MAX_SAFE_INT)] | None = None
    output_tokens: Annotated[int, Field(ge=0, le=MAX_SAFE_INT)] | None = None
    cached_tokens: Annotated[int, Field(ge=0, le=MAX_SAFE_INT)] | None = None
    # In ``currency`` (else ai.currency); when absent, priced at ingest from [[ai.prices]].
    cost: Annotated[float, Field(ge=0, le=1e12)] | None = None
    appointment_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None

    @field_validator("timestamp", "appointment_at", mode="before")
    @classmethod
    def _iso_string(cls, value: Any) -> Any:
        # Numbers would be read as Unix time; the contract says ISO-8601, so say so instead of guessing.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an ISO-8601 string like 2025-01-01T12:34:56+03:00")
        return value

    @field_validator("timestamp", "appointment_at")
    @classmethod
    def _convertible_to_utc(cls, value: datetime | None) -> datetime | None:
        # Year 1 or 9999 with an offset overflows Python's datetime when moved to UTC (a 500 before).
        if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
        return value

    @field_validator(
        "event", "user_id", "channel", "event_id", "appointment_id", *SHORT_TEXT_FIELDS, *LONG_TEXT_FIELDS
    )
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL cannot store U+0000 in text; refusing it here keeps both backends equal.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain the NUL character (\\u0000)")
        return value


@dataclass(frozen=True, slots=True)
class FieldError:
    """Why one item of a batch was rejected; ``index`` is its position in the batch."""

    index: int
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class BrokenLine:
    """An NDJSON line that is not JSON, kept in its place so the batch's indexes match the sender's lines."""

    line_number: int
    raw: bytes
    message: str


@dataclass(slots=True)
class Validated:
    """A batch split into rows ready to store and the reasons for the rest."""

    rows: list[EventRow]
    errors: list[FieldError]
    rejected: list[tuple[int, Any]]
    row_indexes: list[int]  # each row's index in the batch


def _to_utc(moment: datetime, local_zone: tzinfo) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local_zone)
    return moment.astimezone(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError


# The row's fields when content hashes were first made. A field added since is hashed only when the event
# sets it, so the same event sent before and after an upgrade keeps its key and stays one event.
_FIRST_HASHED_FIELDS = frozenset(
    (
        "ts", "event", "user_id", "channel", "actor", "event_id", "crm_id", "lead_id", "phone", "name",
        "manager_id", "location", "scenario", "service", "intent", "action", "reason", "status", "currency",
        "message", "assistant_response", "prompt", "confidence", "response_time_ms", "amount",
        "appointment_at", "lat", "lon", "extra",
    )
)  # fmt: skip


def _content_hash(row: EventRow) -> str:
    """A stable key from what the event says; hashed with ``event_id`` null, as since the first release."""
    hashed = {
        key: None if key == "event_id" else value
        for key, value in row.items()
        if key in _FIRST_HASHED_FIELDS or value is not None
    }
    canonical = orjson.dumps(hashed, option=orjson.OPT_SORT_KEYS, default=_json_default)
    return "h:" + base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()[:18]).decode()


def to_row(event: Event, local_zone: tzinfo) -> EventRow:
    """The stored form: UTC times, derived actor, the idempotency key, extras kept as a dict."""
    row = EventRow(
        ts=_to_utc(event.timestamp, local_zone),
        event=event.event,
        user_id=event.user_id,
        channel=event.channel,
        actor=event.actor or _ACTOR_BY_EVENT.get(event.event, "system"),
        event_id="",
        crm_id=event.crm_id,
        lead_id=event.lead_id,
        phone=event.phone,
        name=event.name,
        manager_id=event.manager_id,
        location=event.location,
        scenario=event.scenario,
        service=event.service,
        intent=event.intent,
        action=event.action,
        reason=event.reason,
        status=event.status,
        currency=event.currency,
        message=event.message,
        assistant_response=event.assistant_response,
        prompt=event.prompt,
        confidence=event.confidence,
        response_time_ms=event.response_time_ms,
        amount=event.amount,
        appointment_at=None if event.appointment_at is None else _to_utc(event.appointment_at, local_zone),
        lat=event.lat,
        lon=event.lon,
        extra=event.__pydantic_extra__ or None,
        model=event.model,
        provider=event.provider,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cached_tokens=event.cached_tokens,
        cost=event.cost,
        appointment_id=event.appointment_id,
    )
    row["event_id"] = event.event_id or _content_hash(row)
    return row


def _error_field(loc: tuple[int | str, ...]) -> str | None:
    return ".".join(str(part) for part in loc) or None


def _error_message(error: Any) -> str:
    if error["type"] == "missing":
        return "required field is missing"
    message: str = error["msg"]
    if error["type"] == "string_pattern_mismatch":
        return "must match [a-z][a-z0-9_.]{0,63} (lowercase letters, digits, '_' and '.')"
    return message


def validate_items(
    items: list[Any],
    local_zone: tzinfo,
    first_index: int = 0,
    *,
    channels: frozenset[str] | None = None,
    prices: PriceTable | None = None,
) -> Validated:
    """Validate decoded JSON items one by one, so one bad event never costs its neighbours.

    ``channels``: when given, an event on any other channel is rejected (a token scoped to channels).
    ``prices``: model calls without a cost are priced from it (after the content hash: a price list that
    changes does not make a resent event a new one).
    """
    result = Validated(rows=[], errors=[], rejected=[], row_indexes=[])
    validate = Event.model_validate
    for offset, item in enumerate(items):
        index = first_index + offset
        if isinstance(item, BrokenLine):
            result.errors.append(FieldError(index, None, item.message))
            result.rejected.append((index, item.raw.decode("utf-8", "replace")))
            continue
        if not isinstance(item, dict):
            kind = type(item).__name__ if item is not None else "null"
            result.errors.append(FieldError(index, None, f"expected a JSON object, got {kind}"))
            result.rejected.append((index, item))
            continue
        try:
            event = validate(item)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                result.errors.append(FieldError(index, _error_field(error["loc"]), _error_message(error)))
            result.rejected.append((index, item))
            continue
        if channels is not None and event.channel not in channels:
            allowed = ", ".join(sorted(channels))
            message = f"channel {event.channel!r} is outside this token's scope (allowed: {allowed})"
            result.errors.append(FieldError(index, "channel", message))
            result.rejected.append((index, item))
            continue
        row = to_row(event, local_zone)
        if prices is not None:
            apply_prices(row, prices, local_zone)
        result.rows.append(row)
        result.row_indexes.append(index)
    return result
