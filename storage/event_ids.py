"""Which events are stored already, by their idempotency key (``event_id``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.identity_groups import chunks
from storage.models import StoredEvent


def stored_event_ids(conn: Connection, event_ids: list[str]) -> set[str]:
    """The event_ids among these that are stored. SQLite: driver SQL, one seek each in the event_id index."""
    found: set[str] = set()
    for part in chunks(event_ids):
        if conn.dialect.name == "sqlite":
            marks = ", ".join("?" * len(part))
            sql = f"SELECT event_id FROM events WHERE event_id IN ({marks})"
            found.update(event_id for (event_id,) in conn.exec_driver_sql(sql, tuple(part)))
        else:
            statement = select(StoredEvent.event_id).where(StoredEvent.event_id.in_(part))
            found.update(conn.execute(statement).scalars())
    return found
