"""One appointment, one booking: the assistant that booked through the booking system and the booking
system itself may both report the same appointment (the same ``appointment_id``); every count of
bookings, the timeline and the BI views take only its earliest report.

Decided when read, not when written: the earliest report can arrive last (a webhook before the
assistant's log), and a read costs one step of ``ix_events_appointment`` per booking that carries an id.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.sql.selectable import FromClause

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
