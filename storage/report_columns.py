"""The report's look-backs, kept on the rows: what each answer replies to and what each booking follows.

design.md measures an answer from the user's latest message at or before it, and a booking from the
user's first message, and calls a booking a repeat when the user booked before it. Looked up at report
time that is one walk back into a user's history per answer and per booking: most of a 30-day report
on a big store. So the writer stores the results on the answer and the booking rows instead
(``reply_to_ts``, ``first_message_ts``, ``repeat_booking``), in the transaction that inserts the events.

An event can change these for the user's later rows: a message that arrives late (an earlier timestamp
than answers already stored), a first message, an earlier booking. So after each insert every answer and
booking of the user from the earliest new event on is worked out again, from the whole history, by the
same definitions: the stored values always equal what a look-up would find now. In the usual order
(message, then answer) that is just the new rows. A user_id belongs to exactly one client, so the walk
goes through ix_events_client_ts (client_id, ts, event, user_id) and never touches a table row.
Merges move events between clients without changing a user_id, so they change nothing here; erasing a
client removes the user's rows with their values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, Update, and_, bindparam, case, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.selectable import FromClause

from storage.clients import HISTORY_LOCKS, lock_identities
from storage.models import StoredEvent, UTCDateTime

MESSAGE, ANSWER, BOOKING = "message_received", "assistant_response", "appointment_booked"
# Events whose arrival can change an answer's or a booking's values.
HISTORY_EVENTS = frozenset({MESSAGE, ANSWER, BOOKING})

events = cast(Table, StoredEvent.__table__)


def same_user(earlier: FromClause, event: FromClause, name: str) -> ColumnElement[bool]:
    """``earlier`` is an event ``name`` of the same user_id, read from ix_events_client_ts alone.

    client_id first: it leads the index, and a user_id never spans two clients.
    """
    return and_(
        earlier.c.client_id == event.c.client_id,
        earlier.c.user_id == event.c.user_id,
        earlier.c.event == name,
    )


def _recompute() -> Update:
    """One user's answers and bookings from ``since`` on, worked out again (executed once per user)."""
    row, message, before = events, events.alias("message"), events.alias("before")
    messages_until_row = select(message.c.ts).where(
        same_user(message, row, MESSAGE), message.c.ts <= row.c.ts
    )
    latest_message = messages_until_row.order_by(message.c.ts.desc()).limit(1).scalar_subquery()
    first_message = messages_until_row.order_by(message.c.ts.asc()).limit(1).scalar_subquery()
    booked_before = (
        select(before.c.id).where(same_user(before, row, BOOKING), before.c.ts < row.c.ts).exists()
    )
    return (
        update(row)
        .where(
            row.c.client_id == bindparam("of_client"),
            row.c.ts >= bindparam("since", type_=UTCDateTime()),
            # Not IN (…): an expanding parameter cannot be part of an executemany.
            or_(row.c.event == ANSWER, row.c.event == BOOKING),
            row.c.user_id == bindparam("of_user"),
        )
        .values(
            reply_to_ts=case((row.c.event == ANSWER, latest_message)),
            first_message_ts=case((row.c.event == BOOKING, first_message)),
            repeat_booking=case((row.c.event == BOOKING, booked_before)),
        )
    )


_RECOMPUTE = _recompute()


def _earliest_per_user(rows: Iterable[dict[str, Any]]) -> dict[tuple[int, str], datetime]:
    earliest: dict[tuple[int, str], datetime] = {}
    for row in rows:
        if row["event"] in HISTORY_EVENTS:
            key = (row["client_id"], row["user_id"])
            if key not in earliest or row["ts"] < earliest[key]:
                earliest[key] = row["ts"]
    return earliest


def update_report_columns(conn: Connection, new_rows: Iterable[dict[str, Any]]) -> None:
    """Call in the transaction that inserted ``new_rows`` (with their ``client_id`` set), after the insert."""
    earliest = _earliest_per_user(new_rows)
    if not earliest:
        return
    if conn.dialect.name == "postgresql":
        # Several processes: two new events of one user in two transactions must not each miss the
        # other. Whoever comes second waits here, then sees the first one's rows (READ COMMITTED).
        # A lock space of its own, taken after the identity locks.
        lock_identities(conn, [("user", user_id) for _, user_id in earliest], HISTORY_LOCKS)
    conn.execute(
        _RECOMPUTE,
        [
            {"of_client": client_id, "of_user": user_id, "since": since}
            for (client_id, user_id), since in earliest.items()
        ],
    )
