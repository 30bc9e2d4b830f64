"""Inserting a batch of event rows, idempotent on ``event_id``, with the report's look-backs on them
(``storage.report_columns``); returns the ids that were new.

SQLite takes a lean path (plain ``executemany`` with values already in their stored form): it is the
hot path of ingestion, and SQLAlchemy's per-value processing costs more than SQLite's own work there.
SQLite has a single writer and hands out increasing rowids, so the rows past the last rowid before the
insert are exactly the new ones.
"""

from __future__ import annotations

from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.event_row import EventRow
from storage.models import DERIVED_EVENT_COLUMNS, RECEIVED_EVENT_COLUMNS, StoredEvent, sqlite_datetime
from storage.report_columns import (
    CARRIERS,
    insert_order,
    lock_histories,
    sqlite_lookbacks,
    update_report_columns,
    with_lookbacks,
)
from storage.upsert import insert_ignoring_conflicts

EVENT_COLUMNS = RECEIVED_EVENT_COLUMNS
# Numbered parameters, so the look-backs can name the row's own client, user, time and event again.
_PLACEHOLDERS = ", ".join(f"?{number}" for number in range(1, len(EVENT_COLUMNS) + 1))
_LOOKBACKS = sqlite_lookbacks(
    *(EVENT_COLUMNS.index(name) + 1 for name in ("client_id", "user_id", "ts", "event"))
)
SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO events ({', '.join(EVENT_COLUMNS)}, {', '.join(DERIVED_EVENT_COLUMNS)})"
    f" VALUES ({_PLACEHOLDERS}, {_LOOKBACKS})"
)


_row_values = itemgetter(*EVENT_COLUMNS)
_DATETIME_POSITIONS = [EVENT_COLUMNS.index(name) for name in ("ts", "received_at", "appointment_at")]
_EXTRA_POSITION = EVENT_COLUMNS.index("extra")


def sqlite_values(row: EventRow) -> tuple[Any, ...]:
    values = list(_row_values(row))
    for position in _DATETIME_POSITIONS:
        moment: datetime | None = values[position]
        if moment is not None:
            values[position] = sqlite_datetime(moment)
    if values[_EXTRA_POSITION] is not None:
        values[_EXTRA_POSITION] = orjson.dumps(values[_EXTRA_POSITION]).decode()
    return tuple(values)


def _insert_sqlite(conn: Connection, rows: list[EventRow]) -> set[str]:
    # Driver SQL: building and caching the select cost more than SQLite's look-up at the index's end.
    last_id = conn.exec_driver_sql("SELECT max(id) FROM events").scalar_one() or 0
    in_order = sorted(rows, key=insert_order)  # each row's look-backs see the batch's earlier rows
    result = conn.exec_driver_sql(SQLITE_INSERT, [sqlite_values(row) for row in in_order])
    if result.rowcount == len(rows):
        inserted = {row["event_id"] for row in rows}
    else:
        # Some were duplicates: the new rows are exactly those past the rowid last before the insert.
        found = conn.execute(select(StoredEvent.event_id).where(StoredEvent.id > last_id))
        inserted = set(found.scalars())
    update_report_columns(conn, (row for row in rows if row["event_id"] in inserted), up_to_id=last_id)
    return inserted


def _insert_postgres(conn: Connection, rows: list[EventRow]) -> set[str]:
    lock_histories(conn, rows)
    statement = insert_ignoring_conflicts(conn, StoredEvent, ["event_id"]).returning(
        StoredEvent.id, StoredEvent.event_id
    )
    ids = dict((event_id, row_id) for row_id, event_id in conn.execute(statement, with_lookbacks(conn, rows)))
    new_rows = [row for row in rows if row["event_id"] in ids]
    if new_rows:
        # A message or booking not stored (its event_id was, maybe with other content) was counted among
        # the batch's earlier rows: its user's new answers and bookings are worked out again from what is
        # stored. A resent batch (nothing new) costs nothing here.
        carriers_of = {row["user_id"] for row in new_rows if row["event"] in CARRIERS}
        update_report_columns(
            conn, (row for row in rows if row["event_id"] not in ids and row["user_id"] in carriers_of)
        )
        update_report_columns(conn, new_rows, up_to_id=min(ids.values()) - 1)
    return set(ids)


def insert_events(conn: Connection, rows: list[EventRow]) -> set[str]:
    """Call with every row's ``client_id`` set, in the transaction that stores them."""
    if conn.dialect.name == "sqlite":
        return _insert_sqlite(conn, rows)
    return _insert_postgres(conn, rows)
