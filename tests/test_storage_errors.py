"""A read-only or locked database on each backend: the writer answers StorageUnavailable (503 for HTTP),
writes nothing half, marks the outage for the owners' alarm, and recovers by itself when writes work again.

SQLite is made read-only with ``PRAGMA query_only`` ("attempt to write a readonly database"), PostgreSQL with
``default_transaction_read_only`` (SQLSTATE 25006, which asyncpg reports as a plain DBAPIError).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url

from bot.ingestion.pipeline import ingest_items
from storage.database import Database, StorageUnavailable, open_database
from storage.models import StoredEvent
from storage.writer import EventWriter
from tests.processes import sqlite_write_lock


def seed(n: int) -> dict[str, Any]:
    return {
        "timestamp": "2026-11-25T10:00:00+03:00",
        "event": "message_received",
        "user_id": f"tg_{n}",
        "message": "Здравствуйте",
        "event_id": f"ro-{n}",
    }


async def stored(db: Database) -> int:
    async with db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(StoredEvent))).scalar_one())


class ReadOnlySwitch:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.read_only = False
        if db.is_sqlite:
            event.listen(db.engine.sync_engine, "checkout", self._sqlite_checkout)
            event.listen(db.writes.sqlite_engine, "checkout", self._sqlite_checkout)

    def _sqlite_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA query_only = {int(self.read_only)}")
        cursor.close()

    async def set(self, read_only: bool) -> None:
        self.read_only = read_only
        if not self._db.is_sqlite:
            name, value = self._db.engine.url.database, "on" if read_only else "off"
            async with self._db.engine.connect() as conn:
                await conn.execute(text("SET TRANSACTION READ WRITE"))  # even while the default is read-only
                await conn.execute(
                    text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
                )
                await conn.commit()
            await self._db.engine.dispose()  # new connections take the database's new default


async def test_read_only_database_is_unavailable_then_recovers(db: Database, writer: EventWriter) -> None:
    switch = ReadOnlySwitch(db)
    await ingest_items([seed(0)], writer, UTC, source="test")
    await switch.set(True)
    try:
        with pytest.raises(StorageUnavailable):
            await ingest_items([seed(1), seed(2)], writer, UTC, source="test")
        assert writer.failing_since is not None
        # Concurrent callers in one failing batch: each is told to retry, none is split off and lost.
        results = await _gather_outcomes(writer, [[seed(3)], [seed(4)], [seed(5)]])
        assert results == ["unavailable"] * 3
    finally:
        await switch.set(False)
    assert await stored(db) == 1
    outcome = await ingest_items([seed(n) for n in range(1, 6)], writer, UTC, source="test")
    assert (outcome.accepted, outcome.duplicates) == (5, 0)
    assert writer.failing_since is None
    assert await stored(db) == 6


async def _gather_outcomes(writer: EventWriter, bodies: list[list[dict[str, Any]]]) -> list[str]:
    async def one(items: list[dict[str, Any]]) -> str:
        try:
            await ingest_items(items, writer, UTC, source="test")
        except StorageUnavailable:
            return "unavailable"
        return "stored"

    return list(await asyncio.gather(*(one(items) for items in bodies)))


async def test_a_writer_killed_by_a_bug_refuses_instead_of_leaving_callers_waiting(db: Database) -> None:
    """A row that skipped validation (a caller's bug) ends the writer task; nobody may hang after that."""
    writer = EventWriter(db)
    await writer.start()
    try:
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(writer.write([{"not": "a validated row"}]), 10)
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(ingest_items([seed(1)], writer, UTC, source="test"), 10)
    finally:
        await writer.close()
    assert await stored(db) == 0


@asynccontextmanager
async def write_lock_held_elsewhere(url: str) -> AsyncIterator[None]:
    """Another program holding the events table: SQLite's write lock, or a PostgreSQL table lock."""
    if url.startswith("sqlite"):
        async with sqlite_write_lock(Path(make_url(url).database or "")):
            yield
        return
    other = await asyncpg.connect(make_url(url).render_as_string(hide_password=False).replace("+asyncpg", ""))
    try:
        async with other.transaction():
            await other.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            yield
    finally:
        await other.close()


async def test_a_lock_held_past_the_busy_timeout_is_unavailable_then_recovers(database_url: str) -> None:
    """PostgreSQL like SQLite: the write gives up after ``busy_timeout_ms`` (503 for HTTP), never hangs."""
    db = await open_database(database_url, busy_timeout_ms=300)
    writer = EventWriter(db)
    await writer.start()
    try:
        async with write_lock_held_elsewhere(database_url):
            with pytest.raises(StorageUnavailable):
                await asyncio.wait_for(ingest_items([seed(1)], writer, UTC, source="test"), 20)
            assert writer.failing_since is not None
        outcome = await ingest_items([seed(1), seed(2)], writer, UTC, source="test")
        assert (outcome.accepted, outcome.duplicates) == (2, 0)
    finally:
        await writer.close()
        await db.close()
