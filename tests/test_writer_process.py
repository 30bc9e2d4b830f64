"""``leadtrail run``'s SQLite writer process: what is acknowledged is stored, and its faults are survived.

The writer process is the real one (``storage.writer_process``, spawned by ``open_database``), on a real
SQLite file; faults are real signals and a real lock held by another process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from bot.ingestion.pipeline import ingest_items
from bot.privacy import CLI_OWNER_ID, forget
from storage.batch_store import StoreFailed
from storage.database import Database, StorageUnavailable, open_database
from storage.models import Client, StoredEvent
from storage.search import SearchIndexer, search_clients
from storage.writer import EventWriter
from storage.writer_process import WriterProcess
from tests.processes import sqlite_write_lock


def event(n: int, user: str | None = None, message: str = "Здравствуйте, хочу записаться") -> dict[str, Any]:
    return {
        "timestamp": "2026-11-25T10:00:00+03:00",
        "event": "message_received",
        "user_id": user or f"tg_{n}",
        "message": message,
        "event_id": f"wp-{n}",
    }


@pytest.fixture
async def process_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'wp.db'}", 500, writer_process=True)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def process_writer(process_db: Database) -> AsyncIterator[EventWriter]:
    writer = EventWriter(process_db)
    await writer.start()
    try:
        yield writer
    finally:
        await writer.close()


def writer_process(db: Database) -> WriterProcess:
    assert db.writes.process is not None
    return db.writes.process


async def count(db: Database, model: Any = StoredEvent) -> int:
    async with db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def stored_ids(db: Database) -> set[str]:
    async with db.sessions() as session:
        return set((await session.execute(select(StoredEvent.event_id))).scalars())


def fails_on_purpose(conn: Connection) -> None:
    raise ValueError("a bug in a transaction")


async def test_events_are_committed_by_another_process(
    process_db: Database, process_writer: EventWriter
) -> None:
    pid = writer_process(process_db).pid
    assert pid is not None and pid != os.getpid()
    answers = await asyncio.gather(
        *(ingest_items([event(n)], process_writer, UTC, source="test") for n in range(20))
    )
    assert sum(outcome.accepted for outcome in answers) == 20
    again = await ingest_items([event(3), event(20)], process_writer, UTC, source="test")
    assert (again.accepted, again.duplicates) == (1, 1)
    assert await count(process_db) == 21
    assert await count(process_db, Client) == 21


async def test_a_killed_writer_process_refuses_the_write_in_flight_then_is_replaced(
    process_db: Database, process_writer: EventWriter
) -> None:
    await ingest_items([event(0)], process_writer, UTC, source="test")
    first = writer_process(process_db).pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await asyncio.sleep(0.2)
    with pytest.raises(StorageUnavailable):
        await ingest_items([event(1)], process_writer, UTC, source="test")
    assert process_writer.failing_since is not None
    outcome = await ingest_items([event(1), event(2)], process_writer, UTC, source="test")
    assert (outcome.accepted, outcome.duplicates) == (2, 0)
    assert writer_process(process_db).pid not in (None, first)
    assert process_writer.failing_since is None
    assert await stored_ids(process_db) == {"wp-0", "wp-1", "wp-2"}


async def test_sigterm_to_the_group_leaves_the_writer_process_to_its_parent(
    process_db: Database, process_writer: EventWriter
) -> None:
    """A service manager signals every process of the service; the parent still has events to commit."""
    pid = writer_process(process_db).pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    await asyncio.sleep(0.2)
    outcome = await ingest_items([event(0)], process_writer, UTC, source="test")
    assert outcome.accepted == 1
    assert writer_process(process_db).pid == pid


async def test_a_lock_held_past_the_busy_timeout_is_unavailable_then_recovers(
    process_db: Database, process_writer: EventWriter, tmp_path: Path
) -> None:
    async with sqlite_write_lock(tmp_path / "wp.db"):
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(ingest_items([event(0)], process_writer, UTC, source="test"), 20)
    outcome = await ingest_items([event(0), event(1)], process_writer, UTC, source="test")
    assert (outcome.accepted, outcome.duplicates) == (2, 0)


async def test_a_failing_transaction_is_reported_and_the_process_goes_on(
    process_db: Database, process_writer: EventWriter
) -> None:
    pid = writer_process(process_db).pid
    with pytest.raises(StoreFailed) as failed:
        await process_db.writes.run(fails_on_purpose)
    assert (failed.value.kind, failed.value.unavailable) == ("ValueError", False)
    assert (await ingest_items([event(0)], process_writer, UTC, source="test")).accepted == 1
    assert writer_process(process_db).pid == pid


async def test_an_erased_client_is_forgotten_by_the_writer_process_too(
    process_db: Database, process_writer: EventWriter, caplog: pytest.LogCaptureFixture
) -> None:
    """Its identity cache lives in the writer process: a stale entry would link new events to the erased.
    The erasure moves identity_epoch on, so the process starts afresh before its next batch, and the
    batch does not even fail once on the vanished client."""
    await ingest_items([event(0, user="tg_gone")], process_writer, UTC, source="test")
    report = await forget(process_db, "tg_gone", owner_id=CLI_OWNER_ID)
    assert report.clients == 1
    outcome = await ingest_items([event(1, user="tg_gone")], process_writer, UTC, source="test")
    assert (outcome.accepted, outcome.errors) == (1, [])
    assert "write transaction failed" not in caplog.text
    async with process_db.sessions() as session:
        (client_id,) = (await session.execute(select(StoredEvent.client_id))).scalars()
        assert (await session.get(Client, client_id)) is not None


async def test_the_search_index_takes_turns_with_the_commits_in_the_writer_process(
    process_db: Database, process_writer: EventWriter
) -> None:
    await ingest_items([event(0, message="Хочу записаться на окрашивание")], process_writer, UTC, source="t")
    indexer = SearchIndexer(process_db)
    assert await indexer.catch_up() == 1
    async with process_db.sessions() as session:
        hits = await search_clients(session, "окрашивание")
    assert [hit.snippet for hit in hits] == ["Хочу записаться на окрашивание"]


async def test_without_the_option_the_transactions_stay_in_this_process(tmp_path: Path) -> None:
    db = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'local.db'}")
    try:
        assert db.writes.process is None
        with pytest.raises(ValueError):  # the exception itself, not the writer process's report of it
            await db.writes.run(fails_on_purpose)
    finally:
        await db.close()


def test_the_writer_process_does_not_load_the_event_model_or_the_bot() -> None:
    """Each module it imports is memory it holds for ever (pydantic alone was about 8 MB of its ~57)."""
    probe = "import sys, storage.writer_process; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "sqlalchemy" in loaded
    for heavy in ("pydantic", "aiogram", "aiohttp", "bot", "matplotlib"):
        assert f"'{heavy}'" not in loaded
