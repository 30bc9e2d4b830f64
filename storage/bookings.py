"""Bookings as the report counts them.

One appointment, one booking: the assistant that booked through the booking system and the booking
system itself may both report the same appointment (the same ``appointment_id``); every count of
bookings, the timeline and the BI views take only its earliest report.

Decided when read, not when written: the earliest report can arrive last (a webhook before the
assistant's log), and a read costs one step of ``ix_events_appointment`` per booking that carries an id.

And a booking belongs to the client, not to the user id that reported it: the time from the client's
first message and whether the client booked before are looked up over all the client's user ids (the
dialog was in Telegram, the booking came from YCLIENTS).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.sql.selectable import FromClause, ScalarSelect

from storage.event_types import EventType
from storage.models import StoredEvent


def counted_booking(table: FromClause) -> ColumnElement[bool]:
    """True for a row of ``table`` (the events table or an alias of it) unless it is an
    ``appointment_booked`` whose appointment an earlier row booked already (earlier: by time, then id)."""
    earlier = StoredEvent.__table__.alias("same_appointment")
    booked_before = exists(
        select(earlier.c.id).where(
            earlier.c.appointment_id == table.c.appointment_id,
            earlier.c.event == EventType.APPOINTMENT_BOOKED,
            or_(earlier.c.ts < table.c.ts, and_(earlier.c.ts == table.c.ts, earlier.c.id < table.c.id)),
        )
    )
    return or_(
        table.c.event != EventType.APPOINTMENT_BOOKED, table.c.appointment_id.is_(None), ~booked_before
    )


def clients_first_message(table: FromClause) -> ScalarSelect[Any]:
    """When the row's client (all their user ids) first wrote, at or before the row; NULL if never.

    Walks ix_events_client_ts from the client's first event: a client's first event is nearly always
    a message, so this is one or two index rows however long the history."""
    message = StoredEvent.__table__.alias("first_message")
    return (
        select(message.c.ts)
        .where(
            message.c.client_id == table.c.client_id,
            message.c.event == EventType.MESSAGE_RECEIVED,
            message.c.ts <= table.c.ts,
        )
        .order_by(message.c.ts)
        .limit(1)
        .scalar_subquery()
    )


def client_booked_before(table: FromClause) -> ColumnElement[bool]:
    """Whether the row's client booked before it (any of their user ids, any appointment)."""
    earlier = StoredEvent.__table__.alias("earlier_booking")
    return exists(
        select(earlier.c.id).where(
            earlier.c.client_id == table.c.client_id,
            earlier.c.event == EventType.APPOINTMENT_BOOKED,
            earlier.c.ts < table.c.ts,
        )
    )
