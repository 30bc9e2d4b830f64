"""One validated event in the form the writer stores it (the columns of ``events`` a source fills)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict


class EventRow(TypedDict):
    """UTC times, the derived actor, the idempotency key, unknown fields in ``extra``.

    ``client_id`` is set by the identity resolver and ``received_at`` by the writer, in the transaction.
    """

    ts: datetime
    event: str
    user_id: str
    channel: str
    actor: str
    event_id: str
    crm_id: str | None
    lead_id: str | None
    phone: str | None
    name: str | None
    manager_id: str | None
    location: str | None
    scenario: str | None
    service: str | None
    intent: str | None
    action: str | None
    reason: str | None
    status: str | None
    currency: str | None
    message: str | None
    assistant_response: str | None
    prompt: str | None
    confidence: float | None
    response_time_ms: int | None
    amount: float | None
    appointment_at: datetime | None
    lat: float | None
    lon: float | None
    extra: dict[str, Any] | None
    model: str | None
    provider: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    cost: float | None
    appointment_id: str | None
    client_id: NotRequired[int]
    received_at: NotRequired[datetime]
