"""The report's look-backs, kept on the rows: what each answer replies to and what each booking follows.

design.md measures an answer from the user's latest message at or before it, and a booking from the
user's first message, and calls a booking a repeat when the user booked before it. Looked up at report
time that is one walk back into a user's history per answer and per booking: most of a 30-day report
on a big store. So the rows carry the results instead (``reply_to_ts``, ``first_message_ts``,
``repeat_booking``), kept in the transaction that inserts the events, by ``storage.event_insert``:

- SQLite inserts a batch in time order (a message before an answer of the same moment), each row with
  its values looked up by the INSERT as it goes in (``sqlite_lookbacks``): no row is written twice.
- PostgreSQL inserts the batch in one statement, whose rows do not see each other: what the stored
  history gives is looked up first, in one statement, and combined with the batch's own earlier rows
  (``with_lookbacks``).

An event can also change the values of rows stored before it: a message that arrives late (earlier than
answers already stored), a first message, an earlier booking. So after each insert the older answers and
bookings of every user with a new message or booking, from that event on, are worked out again from the
whole history by the same definitions (``_recompute_sql``); in the usual order there are none and this is
one index seek per user. All three use one SQL definition (``_lookbacks``). The stored values therefore
always equal what a look-up would find now. A user_id belongs to exactly one client, so every walk goes
through ix_events_client_ts (client_id, ts, event, user_id) and never touches a table row. Merges move
events between clients without changing a user_id, so they change nothing here; erasing a client removes
the user's rows with their values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.clients import HISTORY_LOCKS, lock_identities
from storage.event_row import EventRow
from storage.event_types import EventType
from storage.models import DERIVED_EVENT_COLUMNS, sqlite_datetime

# Events whose arrival can change an answer's or a booking's values: its own, or later rows' too.
HISTORY_EVENTS = frozenset(
    {EventType.MESSAGE_RECEIVED, EventType.ASSISTANT_RESPONSE, EventType.APPOINTMENT_BOOKED}
)
CHANGES_OTHERS = frozenset({EventType.MESSAGE_RECEIVED, EventType.APPOINTMENT_BOOKED})
# The rows that carry the values.
CARRIERS = frozenset({EventType.ASSISTANT_RESPONSE, EventType.APPOINTMENT_BOOKED})
MAX_ID = 2**63 - 1


def _lookbacks(client_id: str, user_id: str, ts: str) -> tuple[str, str, str]:
    """The three values of a row whose client, user and time are these SQL expressions, in the order of
    ``DERIVED_EVENT_COLUMNS``: the latest message at or before it, the first message at or before it,
    and whether a booking came before it. The one definition that the INSERT, the recompute and the
    PostgreSQL look-up all use; every walk reads ix_events_client_ts alone (client_id first: it leads
    the index, and a user_id never spans two clients)."""
    earlier = (
        f"FROM events AS earlier WHERE earlier.client_id = {client_id} AND earlier.user_id = {user_id}"
        " AND earlier.event = '{event}' AND earlier.ts {op} " + ts
    )
    messages_until_row = earlier.format(event=EventType.MESSAGE_RECEIVED, op="<=")
    return (
        f"(SELECT earlier.ts {messages_until_row} ORDER BY earlier.ts DESC LIMIT 1)",
        f"(SELECT earlier.ts {messages_until_row} ORDER BY earlier.ts ASC LIMIT 1)",
        f"EXISTS (SELECT 1 {earlier.format(event=EventType.APPOINTMENT_BOOKED, op='<')})",
    )


def _carried(event: str, lookbacks: tuple[str, str, str]) -> list[str]:
    """The look-backs as the row ``event`` (an SQL expression) carries them: an answer only the first,
    a booking the other two, any other event none."""
    latest_message, first_message, booked_before = lookbacks
    return [
        f"CASE WHEN {event} = '{EventType.ASSISTANT_RESPONSE}' THEN {latest_message} END",
        f"CASE WHEN {event} = '{EventType.APPOINTMENT_BOOKED}' THEN {first_message} END",
        f"CASE WHEN {event} = '{EventType.APPOINTMENT_BOOKED}' THEN {booked_before} END",
    ]


def sqlite_lookbacks(client_id: int, user_id: int, ts: int, event: int) -> str:
    """The three values (in the order of ``DERIVED_EVENT_COLUMNS``) as SQL for an INSERT's VALUES, from
    the row's own numbered parameters."""
    return ", ".join(_carried(f"?{event}", _lookbacks(f"?{client_id}", f"?{user_id}", f"?{ts}")))


def _recompute_sql(differs: str) -> str:
    """One user's answers and bookings from ``since`` on, up to row ``up_to_id``, worked out again; only
    the rows whose values change are written (``differs``: the dialect's null-safe "not equal"). A late
    message usually changes a few answers, not the hundreds after it, and a row written unchanged
    still costs its page in the WAL. Named parameters, which SQLAlchemy's text() (PostgreSQL) and the
    sqlite3 driver (the SQLite hot path) both take."""
    carried = _carried("events.event", _lookbacks("events.client_id", "events.user_id", "events.ts"))
    pairs = list(zip(DERIVED_EVENT_COLUMNS, carried, strict=True))
    return (
        "UPDATE events SET "
        + ", ".join(f"{column} = {value}" for column, value in pairs)
        + " WHERE events.client_id = :of_client AND events.ts >= :since"
        # Not IN (…): the same text serves both drivers' executemany.
        + f" AND (events.event = '{EventType.ASSISTANT_RESPONSE}'"
        + f" OR events.event = '{EventType.APPOINTMENT_BOOKED}')"
        + " AND events.user_id = :of_user AND events.id <= :up_to_id"
        + " AND ("
        + " OR ".join(f"events.{column} {differs} ({value})" for column, value in pairs)
        + ")"
    )


# SQLite's IS NOT is null-safe; its IS DISTINCT FROM needs 3.39, newer than some distributions ship.
_RECOMPUTE_SQLITE = _recompute_sql("IS NOT")
_RECOMPUTE_POSTGRES = _recompute_sql("IS DISTINCT FROM")


def insert_order(row: EventRow) -> tuple[datetime, bool]:
    """Time order, a message first among events of one moment (an answer at the same moment replies to it)."""
    return row["ts"], row["event"] != EventType.MESSAGE_RECEIVED


def _earliest_per_user(rows: Iterable[EventRow], kinds: frozenset[str]) -> dict[tuple[int, str], datetime]:
    earliest: dict[tuple[int, str], datetime] = {}
    for row in rows:
        if row["event"] in kinds:
            key = (row["client_id"], row["user_id"])
            if key not in earliest or row["ts"] < earliest[key]:
                earliest[key] = row["ts"]
    return earliest


def lock_histories(conn: Connection, rows: Iterable[EventRow]) -> None:
    """PostgreSQL, before the rows' values are looked up: several processes must not each miss the other's
    new events of one user. Whoever comes second waits here, then sees the first one's rows (READ
    COMMITTED). A lock space of its own, taken after the identity locks."""
    users = {row["user_id"] for row in rows if row["event"] in HISTORY_EVENTS}
    if users:
        lock_identities(conn, [("user", user_id) for user_id in users], HISTORY_LOCKS)


_POSTGRES_STORED_LOOKBACKS = text(
    f"SELECT {', '.join(_lookbacks('row.client_id', 'row.user_id', 'row.ts'))}"
    " FROM unnest(CAST(:client_ids AS bigint[]), CAST(:user_ids AS text[]), CAST(:moments AS timestamptz[]))"
    " WITH ORDINALITY AS row(client_id, user_id, ts, n) ORDER BY row.n"
)


def with_lookbacks(conn: Connection, rows: list[EventRow]) -> list[dict[str, Any]]:
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
            if event == EventType.ASSISTANT_RESPONSE:
                values["reply_to_ts"] = _latest(stored_latest, latest.get(user))
            else:
                values["first_message_ts"] = _earliest(stored_first, first.get(user))
                earlier = first_booking.get(user)
                values["repeat_booking"] = bool(booked_before) or (earlier is not None and earlier < moment)
        if event == EventType.MESSAGE_RECEIVED:
            latest[user] = moment
            first.setdefault(user, moment)
        elif event == EventType.APPOINTMENT_BOOKED:
            first_booking.setdefault(user, moment)
        result.append({**row, **values})
    return result


def _latest(*moments: datetime | None) -> datetime | None:
    return max((moment for moment in moments if moment is not None), default=None)


def _earliest(*moments: datetime | None) -> datetime | None:
    return min((moment for moment in moments if moment is not None), default=None)


def update_report_columns(
    conn: Connection, new_rows: Iterable[EventRow], *, up_to_id: int | None = None
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
        conn.execute(text(_RECOMPUTE_POSTGRES), params)
        return
    # SQLite, on the ingest hot path (a seek per user with a new message, usually finding nothing): the
    # text straight to the driver, since SQLAlchemy's per-execution work cost more than SQLite's.
    conn.exec_driver_sql(
        _RECOMPUTE_SQLITE, [{**one, "since": sqlite_datetime(one["since"])} for one in params]
    )
