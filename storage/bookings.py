"""Bookings as the report counts them.

One appointment, one booking: the assistant that booked through the booking system and the booking
system itself may both report the same appointment (the same ``appointment_id``); every count of
bookings, the timeline and the BI views take only its earliest report.

Decided when read, not when written: the earliest report can arrive last (a webhook before the
assistant's log), and a read costs one step of ``ix_events_appointment`` per booking that carries an id.

And a booking belongs to the client, not to the user id that reported it: the time from the client's
first message and whether the client booked before are looked up over all the client's user ids (the
dialog was in Telegram, the booking came from YCLIENTS), when the report reads, because merges and
splits change who a client is. Each is one seek in ix_events_client_user per user id of the client (a
handful), so neither a long history nor a busy client costs more.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.sql.selectable import FromClause, ScalarSelect

from storage.event_types import EventType
from storage.identity_policy import USER
from storage.models import ClientIdentity, StoredEvent


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


def _users_of_client(table: FromClause) -> tuple[FromClause, ColumnElement[bool]]:
    """The row's client's user ids (their identity rows), to look into each one's events."""
    user = ClientIdentity.__table__.alias("client_user")
    return user, and_(user.c.client_id == table.c.client_id, user.c.kind == USER)


def _events_of(user: FromClause, event: EventType, alias: str) -> tuple[FromClause, ColumnElement[bool]]:
    """One user's events of one kind: a range of ix_events_client_user."""
    events = StoredEvent.__table__.alias(alias)
    mine = and_(
        events.c.client_id == user.c.client_id, events.c.user_id == user.c.value, events.c.event == event
    )
    return events, mine


def clients_first_message(table: FromClause) -> ScalarSelect[Any]:
    """When the row's client (any of their user ids) first wrote, at or before the row; NULL if never."""
    user, of_client = _users_of_client(table)
    message, mine = _events_of(user, EventType.MESSAGE_RECEIVED, "first_message")
    users_first = (
        select(message.c.ts)
        .where(mine, message.c.ts <= table.c.ts)
        .order_by(message.c.ts)
        .limit(1)
        .correlate(user, table)
        .scalar_subquery()
    )
    return select(func.min(users_first)).where(of_client).scalar_subquery()


def client_booked_before(table: FromClause) -> ColumnElement[bool]:
    """Whether the row's client booked before it (any of their user ids, any appointment)."""
    user, of_client = _users_of_client(table)
    earlier, mine = _events_of(user, EventType.APPOINTMENT_BOOKED, "earlier_booking")
    users_booking = exists(select(earlier.c.id).where(mine, earlier.c.ts < table.c.ts).correlate(user, table))
    return exists(select(user.c.id).where(of_client, users_booking))
