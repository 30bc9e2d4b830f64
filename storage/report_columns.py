"""The report's look-backs, kept on the rows: what each answer replies to and what each booking follows.

design.md measures an answer from the user's latest message at or before it, and a booking from the
user's first message, and calls a booking a repeat when the user booked before it. Looked up at report
time that is one walk back into a user's history per answer and per booking: most of a 30-day report
on a big store. So the rows carry the results instead (``reply_to_ts``, ``first_message_ts``,
``repeat_booking``), kept in the transaction that inserts the events, by ``storage.event_insert``:

- SQLite inserts a batch in time order (a message before an answer of the same moment), each row with
  its values looked up as it goes in (``SQLITE_LOOKBACKS``): no row is written twice.
- PostgreSQL inserts the batch in one statement, whose rows do not see each other, so afterwards the
  users' answers and bookings from their earliest new event on are worked out again.

An event can also change the values of rows stored before it: a message that arrives late (earlier
than answers already stored), a first message, an earlier booking. So after each insert the older
answers and bookings of every user with a new message or booking, from that event on, are worked out
again from the whole history by the same definitions (``_RECOMPUTE``); in the usual order there are none
and this is one index seek per user. The stored values therefore always equal what a look-up would find
now. A user_id belongs to exactly one client, so every walk goes through ix_events_client_ts
(client_id, ts, event, user_id) and never touches a table row. Merges move events between clients without
changing a user_id, so they change nothing here; erasing a client removes the user's rows with their
values.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, Update, and_, bindparam, case, or_, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.selectable import FromClause

from storage.clients import HISTORY_LOCKS, lock_identities
from storage.models import DERIVED_EVENT_COLUMNS, StoredEvent, UTCDateTime, sqlite_datetime

MESSAGE, ANSWER, BOOKING = "message_received", "assistant_response", "appointment_booked"
# Events whose arrival can change an answer's or a booking's values: its own, or later rows' too.
HISTORY_EVENTS = frozenset({MESSAGE, ANSWER, BOOKING})
CHANGES_OTHERS = frozenset({MESSAGE, BOOKING})
CARRIERS = frozenset({ANSWER, BOOKING})  # the rows that carry the values
MAX_ID = 2**63 - 1

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
    """One user's answers and bookings from ``since`` on, up to row ``up_to_id``, worked out again."""
    row, message, before = events, events.alias("message"), events.alias("before")
    messages_until_row = select(message.c.ts).where(
        same_user(message, row, MESSAGE), message.c.ts <= row.c.ts
    )
    latest_message = messages_until_row.order_by(message.c.ts.desc()).limit(1).scalar_subquery()
    first_message = messages_until_row.order_by(message.c.ts.asc()).limit(1).scalar_subquery()
    earlier_booking = select(before.c.id).where(same_user(before, row, BOOKING), before.c.ts < row.c.ts)
    booked_before = earlier_booking.exists()
    return (
        update(row)
        .where(
            row.c.client_id == bindparam("of_client"),
            row.c.ts >= bindparam("since", type_=UTCDateTime()),
            # Not IN (…): an expanding parameter cannot be part of an executemany.
            or_(row.c.event == ANSWER, row.c.event == BOOKING),
            row.c.user_id == bindparam("of_user"),
            row.c.id <= bindparam("up_to_id"),
        )
        .values(
            reply_to_ts=case((row.c.event == ANSWER, latest_message)),
            first_message_ts=case((row.c.event == BOOKING, first_message)),
            repeat_booking=case((row.c.event == BOOKING, booked_before)),
        )
    )


_RECOMPUTE = _recompute()


def sqlite_lookbacks(client_id: int, user_id: int, ts: int, event: int) -> str:
    """The three values (in the order of ``DERIVED_EVENT_COLUMNS``) as SQL for an INSERT's VALUES, from
    the row's own numbered parameters."""
    earlier = (
        f"FROM events AS earlier WHERE earlier.client_id = ?{client_id} AND earlier.user_id = ?{user_id}"
        " AND earlier.event = '{event}' AND earlier.ts {op} ?" + str(ts)
    )
    messages_until_row = earlier.format(event=MESSAGE, op="<=")
    return ", ".join(
        [
            f"CASE WHEN ?{event} = '{ANSWER}' THEN"
            f" (SELECT earlier.ts {messages_until_row} ORDER BY earlier.ts DESC LIMIT 1) END",
            f"CASE WHEN ?{event} = '{BOOKING}' THEN"
            f" (SELECT earlier.ts {messages_until_row} ORDER BY earlier.ts ASC LIMIT 1) END",
            f"CASE WHEN ?{event} = '{BOOKING}' THEN"
            f" EXISTS (SELECT 1 {earlier.format(event=BOOKING, op='<')}) END",
        ]
    )


def insert_order(row: dict[str, Any]) -> tuple[datetime, bool]:
    """Time order, a message first among events of one moment (an answer at the same moment replies to it)."""
    return row["ts"], row["event"] != MESSAGE


def _earliest_per_user(
    rows: Iterable[dict[str, Any]], kinds: frozenset[str]
) -> dict[tuple[int, str], datetime]:
    earliest: dict[tuple[int, str], datetime] = {}
    for row in rows:
        if row["event"] in kinds:
            key = (row["client_id"], row["user_id"])
            if key not in earliest or row["ts"] < earliest[key]:
                earliest[key] = row["ts"]
    return earliest


def lock_histories(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """PostgreSQL, before the rows' values are looked up: several processes must not each miss the other's
    new events of one user. Whoever comes second waits here, then sees the first one's rows (READ
    COMMITTED). A lock space of its own, taken after the identity locks."""
    users = {row["user_id"] for row in rows if row["event"] in HISTORY_EVENTS}
    if users:
        lock_identities(conn, [("user", user_id) for user_id in users], HISTORY_LOCKS)


_POSTGRES_STORED_LOOKBACKS = text(
    f"""
    SELECT (SELECT earlier.ts FROM events AS earlier WHERE earlier.client_id = row.client_id
              AND earlier.user_id = row.user_id AND earlier.event = '{MESSAGE}' AND earlier.ts <= row.ts
              ORDER BY earlier.ts DESC LIMIT 1),
           (SELECT earlier.ts FROM events AS earlier WHERE earlier.client_id = row.client_id
              AND earlier.user_id = row.user_id AND earlier.event = '{MESSAGE}' AND earlier.ts <= row.ts
              ORDER BY earlier.ts ASC LIMIT 1),
           EXISTS (SELECT 1 FROM events AS earlier WHERE earlier.client_id = row.client_id
              AND earlier.user_id = row.user_id AND earlier.event = '{BOOKING}' AND earlier.ts < row.ts)
    FROM unnest(CAST(:client_ids AS bigint[]), CAST(:user_ids AS text[]), CAST(:moments AS timestamptz[]))
         WITH ORDINALITY AS row(client_id, user_id, ts, n)
    ORDER BY row.n
    """
)


def with_lookbacks(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PostgreSQL: the rows in insert order, each answer and booking with its three values, for one
    multi-row INSERT (whose rows do not see each other): what the stored history gives, looked up in
    one statement, combined with what the batch's own earlier rows give."""
    in_order = sorted(rows, key=insert_order)
    carriers = [row for row in in_order if row["event"] in CARRIERS]
    stored = (
        conn.execute(
            _POSTGRES_STORED_LOOKBACKS,
            {
                "client_ids": [row["client_id"] for row in carriers],
                "user_ids": [row["user_id"] for row in carriers],
                "moments": [row["ts"] for row in carriers],
            },
        ).all()
        if carriers
        else []
    )
    found = dict(zip((id(row) for row in carriers), stored, strict=True))
    latest: dict[str, datetime] = {}  # per user, of the batch's rows so far: the latest message
    first: dict[str, datetime] = {}  # the first message
    first_booking: dict[str, datetime] = {}
    result = []
    for row in in_order:
        user, moment, event = row["user_id"], row["ts"], row["event"]
        values = dict.fromkeys(DERIVED_EVENT_COLUMNS)
        if event in CARRIERS:
            stored_latest, stored_first, booked_before = found[id(row)]
            if event == ANSWER:
                values["reply_to_ts"] = _latest(stored_latest, latest.get(user))
            else:
                values["first_message_ts"] = _earliest(stored_first, first.get(user))
                earlier = first_booking.get(user)
                values["repeat_booking"] = bool(booked_before) or (earlier is not None and earlier < moment)
        if event == MESSAGE:
            latest[user] = moment
            first.setdefault(user, moment)
        elif event == BOOKING:
            first_booking.setdefault(user, moment)
        result.append({**row, **values})
    return result


def _latest(*moments: datetime | None) -> datetime | None:
    return max((moment for moment in moments if moment is not None), default=None)


def _earliest(*moments: datetime | None) -> datetime | None:
    return min((moment for moment in moments if moment is not None), default=None)


def update_report_columns(
    conn: Connection, new_rows: Iterable[dict[str, Any]], *, up_to_id: int | None = None
) -> None:
    """After the insert of ``new_rows`` (``client_id`` set), in its transaction: the rows it changes.

    ``up_to_id``: the last row id before the insert's rows, when they came with their own values; then
    only older rows are worked out again, for users with a new message or booking. None: every answer
    and booking of the users from their earliest new event on, new ones included.
    """
    kinds = CHANGES_OTHERS if up_to_id is not None else HISTORY_EVENTS
    earliest = _earliest_per_user(new_rows, kinds)
    if not earliest:
        return
    limit = up_to_id if up_to_id is not None else MAX_ID
    params: list[dict[str, Any]] = [
        {"of_client": client_id, "of_user": user_id, "since": since, "up_to_id": limit}
        for (client_id, user_id), since in earliest.items()
    ]
    if conn.dialect.name != "sqlite":
        conn.execute(_RECOMPUTE, params)
        return
    # SQLite, on the ingest hot path (a seek per user with a new message, usually finding nothing):
    # the statement compiled once and handed to the driver, since SQLAlchemy's per-execution work (cache
    # key, parameters) cost more than SQLite's.
    sql, order, constants = _sqlite_recompute()
    conn.exec_driver_sql(
        sql,
        [
            tuple({**constants, **one, "since": sqlite_datetime(one["since"])}[name] for name in order)
            for one in params
        ],
    )


@functools.cache
def _sqlite_recompute() -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """``_RECOMPUTE`` as SQLite SQL (``?`` parameters, as both SQLite drivers take them): the text, its
    parameters' names in order, the constants' values."""
    compiled = _RECOMPUTE.compile(dialect=sqlite.dialect())
    return str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params)
