"""Every event of a period in time order, read through a server-side cursor in chunks.

Why a cursor and not keyset pages: ``events`` has no index on ``ts`` alone (each index costs every
insert), so each keyset page would scan the table again; one ordered query streamed with ``yield_per``
costs one scan and never holds more than a chunk in this process.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from storage.database import SQLITE_TEMP_STORE, Database
from storage.models import RECEIVED_EVENT_COLUMNS, StoredEvent

EXPORT_CHUNK_ROWS = 2000

_TABLE = StoredEvent.__table__
# Every column of what was received, in the table's order.
EXPORT_SOURCE_COLUMNS: tuple[str, ...] = RECEIVED_EVENT_COLUMNS


async def stream_events(
    db: Database,
    start: datetime,
    end: datetime,
    *,
    location: str | None = None,
    chunk_rows: int = EXPORT_CHUNK_ROWS,
) -> AsyncGenerator[list[dict[str, Any]], None]:
    """Chunks of at most ``chunk_rows`` events with ``start <= ts < end``, ordered by (ts, id).

    Close the iterator (``contextlib.aclosing``) when stopping early, so the cursor is released.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    columns: Sequence[Any] = [_TABLE.c[name] for name in EXPORT_SOURCE_COLUMNS]
    query = (
        select(*columns)
        .where(_TABLE.c.ts >= start, _TABLE.c.ts < end)
        .order_by(_TABLE.c.ts, _TABLE.c.id)
        .execution_options(yield_per=chunk_rows)
    )
    if location is not None:
        query = query.where(_TABLE.c.location == location)
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            # SQLite sorts the whole period before the first row; with the engine's temp_store=MEMORY
            # that sort would hold every row in RAM, so this connection spills it to a file instead.
            await conn.exec_driver_sql("PRAGMA temp_store=FILE")
        try:
            result = await conn.stream(query)
            async for partition in result.mappings().partitions(chunk_rows):
                yield [dict(row) for row in partition]
        finally:
            if db.is_sqlite:
                await conn.exec_driver_sql(f"PRAGMA temp_store={SQLITE_TEMP_STORE}")
