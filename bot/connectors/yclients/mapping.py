"""YCLIENTS webhooks as LeadTrail events (pure: no I/O, so the rules read like a table in the tests).

A webhook says that a record or a payment was created, updated or deleted and carries the whole object
(``data``, the same fields as the REST API). What happened is read by comparing a record with its state
as its stored events tell it (``storage.yclients.record_states``): the visit, the no-show, the
confirmation, the new time, the cancellation. Every
event id is made of the record and the change, so a delivery repeated (YCLIENTS does repeat them), or a
record read again by the reconciliation, is a duplicate and nothing more.

Real payloads are untidy: offsets come as ``+0300`` and ``+03:00``, empty objects as ``[]``, ids as
numbers or strings, ``client`` may be missing. A record without a client is still a booking: it gets a
user id of its own (``yc_record_<id>``), so it counts and never merges with anybody.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import IntEnum
from typing import Any

from storage.event_types import PAID, EventType
from storage.yclients import RecordState

CHANNEL = "yclients"
RECORD, FINANCES = "record", "finances_operation"
CREATE, UPDATE, DELETE = "create", "update", "delete"
REFUNDED = "refunded"


class Attendance(IntEnum):
    """YCLIENTS' ``attendance`` / ``visit_attendance`` of a record."""

    NO_SHOW = -1
    WAITING = 0
    CAME = 1
    CONFIRMED = 2


_EVENT_OF_ATTENDANCE: dict[int, EventType] = {
    Attendance.CONFIRMED: EventType.APPOINTMENT_CONFIRMED,
    Attendance.CAME: EventType.VISIT,
    Attendance.NO_SHOW: EventType.NO_SHOW,
}


class BadWebhook(ValueError):
    """One webhook object that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Webhook:
    company_id: int
    resource: str
    status: str
    data: Mapping[str, Any]


@dataclass(slots=True)
class Mapped:
    """What one webhook means: the events to store and, for a record, its state from now on."""

    events: list[dict[str, Any]] = field(default_factory=list)
    state: RecordState | None = None


def as_int(value: Any) -> int | None:
    """An id given as a number or as digits; anything else (``[]``, ``""``, None) is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def moment(value: Any, zone: tzinfo) -> datetime | None:
    """``2020-10-29T13:34:26+0300``, ``…+03:00`` or a naive ``2020-11-21 16:00:00`` (the salon's time)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def _object(value: Any) -> Mapping[str, Any]:
    """A nested object; YCLIENTS sends an empty one as ``[]`` (and sometimes null)."""
    return value if isinstance(value, Mapping) else {}


def read_webhook(item: Any) -> Webhook:
    """One object of a webhook body; BadWebhook names what is missing."""
    if not isinstance(item, Mapping):
        raise BadWebhook("expected a JSON object with company_id, resource, status and data")
    data = item.get("data")
    if not isinstance(data, Mapping):
        raise BadWebhook("data is missing or not an object")
    company_id = as_int(item.get("company_id", data.get("company_id")))
    if company_id is None:
        raise BadWebhook("company_id is missing or not a number")
    return Webhook(company_id, str(item.get("resource") or ""), str(item.get("status") or ""), data)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _number(value: Any) -> float | None:
    """An amount given as a number or as text (the REST API sends "1000.00")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _client(data: Mapping[str, Any], record_id: int | None) -> tuple[str | None, dict[str, Any]]:
    """The user id and the contact fields of the record's (or payment's) client."""
    client = _object(data.get("client"))
    contact: dict[str, Any] = {}
    if isinstance(phone := client.get("phone"), str | int) and str(phone).strip():
        contact["phone"] = str(phone)
    name = client.get("display_name") or client.get("name")
    if isinstance(name, str) and name.strip():
        contact["name"] = name.strip()
    client_id = as_int(client.get("id"))
    if client_id is not None and client_id > 0:
        return f"yc_{client_id}", contact
    return (f"yc_record_{record_id}" if record_id else None), contact


def _attendance(data: Mapping[str, Any]) -> int:
    """The visit's status when it has one (a visit may hold several records), else the record's."""
    for key in ("visit_attendance", "attendance"):
        if (value := as_int(data.get(key))) in set(Attendance):
            return Attendance(value)
    return Attendance.WAITING


def _booking_fields(data: Mapping[str, Any], zone: tzinfo, currency: str) -> dict[str, Any]:
    services = [_object(service) for service in data.get("services") or [] if isinstance(service, Mapping)]
    fields: dict[str, Any] = {}
    titles = [str(service["title"]).strip() for service in services if service.get("title")]
    if titles:
        fields["service"] = ", ".join(titles)[:256]
    costs = [_number(service.get("cost_to_pay", service.get("cost"))) for service in services]
    amounts = [cost for cost in costs if cost is not None]
    if amounts:
        fields["amount"] = sum(amounts)
        fields["currency"] = currency
    staff = _object(data.get("staff"))
    if isinstance(staff.get("name"), str) and staff["name"].strip():
        fields["manager_id"] = staff["name"].strip()[:256]
    if (starts_at := moment(data.get("datetime"), zone)) is not None:
        fields["appointment_at"] = _iso(starts_at)
    return fields


def map_record(
    hook: Webhook, previous: RecordState | None, zone: tzinfo, *, location: str, currency: str, now: datetime
) -> Mapped:
    """The events a record's webhook means against its last known state, and its new state.

    A record LeadTrail never saw is booked first (at its ``create_date``); then every difference from
    the state before counts once: attendance 2/1/−1 (confirmed, came, did not come), a new time, deletion.
    A delivery older than the state LeadTrail already has (``last_change_date``) changes nothing.
    """
    data = hook.data
    record_id = as_int(data.get("id"))
    if record_id is None:
        raise BadWebhook("data.id (the record id) is missing or not a number")
    user_id, contact = _client(data, record_id)
    assert user_id is not None  # a record always has an id to fall back on
    changed_at = moment(data.get("last_change_date"), zone)
    if previous is not None and previous.changed_at and changed_at and changed_at < previous.changed_at:
        return Mapped()
    starts_at = moment(data.get("datetime"), zone)
    deleted = hook.status == DELETE or data.get("deleted") is True
    state = RecordState(str(record_id), user_id, starts_at, _attendance(data), deleted, changed_at)
    when = _iso(changed_at or now)
    base = {"user_id": user_id, "channel": CHANNEL, "appointment_id": str(record_id), "location": location}
    key = f"yc:{hook.company_id}:{record_id}"
    events: list[dict[str, Any]] = []

    def add(event: EventType, event_id: str, timestamp: str, **fields: Any) -> None:
        events.append(
            {**base, **contact, "event": event, "event_id": event_id, "timestamp": timestamp, **fields}
        )

    before = previous
    if before is None:
        created = moment(data.get("create_date"), zone) or changed_at or now
        add(
            EventType.APPOINTMENT_BOOKED,
            f"{key}:booked",
            _iso(created),
            **_booking_fields(data, zone, currency),
        )
        before = RecordState(str(record_id), user_id, starts_at, Attendance.WAITING, False, None)
    if state.attendance != before.attendance and (event := _EVENT_OF_ATTENDANCE.get(state.attendance)):
        add(event, f"{key}:{event}", when)
    if starts_at is not None and before.starts_at is not None and starts_at != before.starts_at:
        add(
            EventType.APPOINTMENT_RESCHEDULED,
            f"{key}:rescheduled:{_iso(starts_at)}",
            when,
            appointment_at=_iso(starts_at),
        )
    if deleted and not before.deleted:
        add(EventType.APPOINTMENT_CANCELLED, f"{key}:cancelled", when)
    return Mapped(events, state)


def map_payment(
    hook: Webhook, record_owner: str | None, zone: tzinfo, *, location: str, currency: str, now: datetime
) -> Mapped:
    """A money operation: paid (amount > 0) or refunded (< 0); ``record_owner`` is the user id of the
    record it pays for, when the operation names no client of its own."""
    data = hook.data
    operation_id = as_int(data.get("id"))
    amount = _number(data.get("amount"))
    if operation_id is None or amount is None:
        raise BadWebhook("data.id and data.amount of a finances_operation must be numbers")
    if amount == 0 or hook.status == DELETE:
        return Mapped()
    record_id = as_int(data.get("record_id")) or None
    user_id, contact = _client(data, record_id)
    if as_int(_object(data.get("client")).get("id")) is None and record_owner is not None:
        user_id = record_owner
    if user_id is None:
        user_id = f"yc_payment_{operation_id}"
    event: dict[str, Any] = {
        "event": EventType.PAYMENT_STATUS,
        "event_id": f"yc:{hook.company_id}:payment:{operation_id}",
        "timestamp": _iso(moment(data.get("date"), zone) or now),
        "user_id": user_id,
        "channel": CHANNEL,
        "status": PAID if amount > 0 else REFUNDED,
        "amount": amount,
        "currency": currency,
        "location": location,
        **contact,
    }
    if record_id:
        event["appointment_id"] = str(record_id)
    return Mapped([event])
