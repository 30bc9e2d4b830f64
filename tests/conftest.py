"""Shared fixtures: a fresh database on SQLite and on a real PostgreSQL for every storage test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from storage.batch_store import StoreSettings
from storage.database import Database, open_database
from storage.writer import EventWriter
from tests.postgres import ENV_URL, TemporaryPostgres

# The event types every source is expected to send (the seed's list).
STANDARD_EVENTS = (
    "message_received",
    "assistant_response",
    "lead_created",
    "appointment_booked",
    "payment_status",
    "no_show",
    "refusal",
)
SEED_EVENT = {
    "timestamp": "2025-01-01T12:34:56+03:00",
    "channel": "telegram",
    "user_id": "tg_12345",
    "crm_id": "BX_67890",
    "event": "message_received",
    "message": "Здравствуйте, хочу записаться на стрижку",
    "assistant_response": "Когда вам удобно? Сегодня в 18:00 свободно.",
    "intent": "booking.request",
    "confidence": 0.92,
    "action": "lead_created",
    "lead_id": "lead_2025_001",
    "lat": "55.7887",
    "lon": "49.1221",
}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if url := os.environ.get(ENV_URL):
        yield url
        return
    server = TemporaryPostgres.start()
    try:
        yield server.url
    finally:
        server.stop()


async def _fresh_postgres_database(server_url: str) -> str:
    url = make_url(server_url)
    name = f"leadtrail_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database, on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'leadtrail.db'}"
    server_url: str = request.getfixturevalue("postgres_url")
    return await _fresh_postgres_database(server_url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def writer(db: Database) -> AsyncIterator[EventWriter]:
    event_writer = EventWriter(db, settings=StoreSettings(quarantine_max_rows=50))
    await event_writer.start()
    try:
        yield event_writer
    finally:
        await event_writer.close()
