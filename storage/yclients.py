"""YCLIENTS in storage: each record's state as its events say it (a webhook is told apart from a repeat by
comparing with it) and, per company, how the link is doing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.event_types import EventType
from storage.models import StoredEvent, YclientsLink

LOOKUP_CHUNK = 200


@dataclass(frozen=True, slots=True)
class RecordState:
    """A record as its stored events say it is: whose it is, when it is, whether the client came (the
    latest of confirmed 2 / came 1 / did not come −1, else waiting 0), whether it was cancelled, and the
    time of its latest change."""

    record_id: str
    user_id: str
    starts_at: datetime | None
    attendance: int
    deleted: bool
    changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class CompanyLink:
    company_id: int
    last_webhook_at: datetime | None
    last_sync_at: datetime | None
    synced_until: datetime | None
    last_error: str | None


CHANNEL = "yclients"
_ATTENDANCE_OF_EVENT = {
    EventType.APPOINTMENT_CONFIRMED: 2,
    EventType.VISIT: 1,
    EventType.NO_SHOW: -1,
}
_RECORD_EVENTS = (
    EventType.APPOINTMENT_BOOKED,
    EventType.APPOINTMENT_RESCHEDULED,
    EventType.APPOINTMENT_CANCELLED,
    *_ATTENDANCE_OF_EVENT,
)


def _upsert(session: AsyncSession, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


async def record_states(session: AsyncSession, record_ids: Iterable[str]) -> dict[str, RecordState]:
    """The state of each record LeadTrail holds a booking of, read back from its events (a few rows per
    record, found through ``ix_events_appointment``): the events are the state, so nothing but them is
    written per webhook, and no state can be seen before its events are committed."""
    wanted = sorted(set(record_ids))
    rows: list[Any] = []
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        statement = (
            select(
                StoredEvent.appointment_id,
                StoredEvent.event,
                StoredEvent.ts,
                StoredEvent.appointment_at,
                StoredEvent.user_id,
            )
            .where(
                StoredEvent.appointment_id.in_(wanted[start : start + LOOKUP_CHUNK]),
                StoredEvent.channel == CHANNEL,
                StoredEvent.event.in_(_RECORD_EVENTS),
            )
            .order_by(StoredEvent.ts, StoredEvent.id)
        )
        rows += (await session.execute(statement)).all()
    states: dict[str, RecordState] = {}
    for record_id, event, ts, appointment_at, user_id in rows:
        state = states.get(record_id)
        if state is None:
            if event != EventType.APPOINTMENT_BOOKED:
                continue  # a record is known from its booking on
            state = RecordState(record_id, user_id, appointment_at, 0, False, ts)
        elif event == EventType.APPOINTMENT_RESCHEDULED:
            state = replace(state, starts_at=appointment_at)
        elif event == EventType.APPOINTMENT_CANCELLED:
            state = replace(state, deleted=True)
        elif event in _ATTENDANCE_OF_EVENT:
            state = replace(state, attendance=_ATTENDANCE_OF_EVENT[event])
        states[record_id] = replace(state, changed_at=max(ts, state.changed_at or ts))
    return states


async def _update_link(session: AsyncSession, company_id: int, **values: Any) -> None:
    insert = _upsert(session, YclientsLink)
    await session.execute(
        insert.values(company_id=company_id, **values).on_conflict_do_update(
            index_elements=["company_id"], set_=values
        )
    )


async def note_webhook(session: AsyncSession, company_ids: Iterable[int], now: datetime) -> None:
    for company_id in sorted(set(company_ids)):
        await _update_link(session, company_id, last_webhook_at=now)


async def synced_until(session: AsyncSession, company_id: int) -> datetime | None:
    """Where the last successful reconciliation of this company ended (None: never)."""
    result = await session.execute(
        select(YclientsLink.synced_until).where(YclientsLink.company_id == company_id)
    )
    return result.scalar_one_or_none()


async def note_sync(
    session: AsyncSession, company_id: int, now: datetime, *, until: datetime | None, error: str | None
) -> None:
    """A reconciliation ended: successfully up to ``until``, or with ``error`` (``until`` unchanged)."""
    values: dict[str, Any] = {"last_sync_at": now, "last_error": error[:256] if error else None}
    if until is not None:
        values["synced_until"] = until
    await _update_link(session, company_id, **values)


async def link_status(session: AsyncSession) -> list[CompanyLink]:
    rows = await session.execute(select(YclientsLink).order_by(YclientsLink.company_id))
    return [
        CompanyLink(row.company_id, row.last_webhook_at, row.last_sync_at, row.synced_until, row.last_error)
        for row in rows.scalars()
    ]
