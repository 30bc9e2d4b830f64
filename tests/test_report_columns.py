"""The column the writer keeps for the report (``storage.report_columns``) always equals its definition.

The expected values are worked out here in Python from every stored event, straight from design.md:
an answer's latest message of the same user_id at or before it. Events arrive shuffled, in batches of any
size, re-sent, and with ids that merge two clients half-way; migration 0008 must fill events stored
before it alike. (A booking's look-backs are the client's, read by the report: tests/test_metrics.py.)
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from bot.ingestion.validation import validate_items
from storage.database import Database, _alembic_config, create_engine, migrate, open_database
from storage.models import Client, StoredEvent
from storage.writer import EventWriter

KINDS = ("message_received", "assistant_response", "appointment_booked", "lead_created")
START = datetime(2025, 3, 10, 9, tzinfo=UTC)


def history(rng: random.Random, count: int = 150) -> list[dict[str, Any]]:
    """Four user_ids; tg_b and wa_b turn out to be one person (a shared crm_id, given late)."""
    events = []
    for number in range(count):
        user = rng.choice(("tg_a", "tg_b", "wa_b", "tg_c"))
        # Whole seconds over two days: ties between a message and an answer happen.
        moment = START + timedelta(seconds=rng.randrange(0, 2 * 86400, 600))
        event: dict[str, Any] = {
            "timestamp": moment.isoformat(),
            "event": rng.choice(KINDS),
            "user_id": user,
            "channel": "whatsapp" if user.startswith("wa") else "telegram",
            "event_id": f"h-{number}",
        }
        if user.endswith("_b") and number > count // 2:
            event["crm_id"] = "BX_b"
        events.append(event)
    return events


def expected(stored: list[tuple[str, str, str, datetime]]) -> dict[str, datetime | None]:
    """event_id → reply_to_ts by the definition alone."""
    result: dict[str, datetime | None] = {}
    for event_id, user, event, ts in stored:
        messages = [
            other_ts
            for _, other_user, other_event, other_ts in stored
            if other_user == user and other_event == "message_received" and other_ts <= ts
        ]
        result[event_id] = max(messages, default=None) if event == "assistant_response" else None
    return result


async def stored_columns(db: Database) -> tuple[dict[str, datetime | None], dict[str, datetime | None]]:
    """What the database holds, and what the definition says it should hold."""
    e = StoredEvent
    async with db.sessions() as session:
        rows = (await session.execute(select(e.event_id, e.user_id, e.event, e.ts, e.reply_to_ts))).all()
    found = {row[0]: row[4] for row in rows}
    return found, expected([(row[0], row[1], row[2], row[3]) for row in rows])


def validated(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    outcome = validate_items(items, UTC)
    assert outcome.errors == []
    return outcome.rows


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_columns_match_the_definitions_whatever_the_arrival_order(
    db: Database, writer: EventWriter, seed: int
) -> None:
    rng = random.Random(seed)
    events = history(rng)
    rng.shuffle(events)
    position = 0
    while position < len(events):
        size = rng.randint(1, 12)
        batch = events[position : position + size]
        resent = rng.sample(events[:position], min(position, 2))  # duplicates change nothing...
        # ...even when a source reuses an event_id for something else: the first one stays.
        altered = [{**event, "timestamp": START.isoformat(), "event": "message_received"} for event in resent]
        await writer.write(validated(batch + altered[:1] + resent[1:]))
        position += size
    found, wanted = await stored_columns(db)
    assert len(found) == len(events)
    assert found == wanted
    async with db.sessions() as session:
        merged = await session.execute(
            select(StoredEvent.client_id).where(StoredEvent.user_id.in_(["tg_b", "wa_b"])).distinct()
        )
        assert len(merged.all()) == 1  # the merge really happened on the way


async def test_a_late_message_moves_the_answers_after_it(db: Database, writer: EventWriter) -> None:
    def at(minute: int, event: str) -> dict[str, Any]:
        moment = START + timedelta(minutes=minute)
        return {"timestamp": moment.isoformat(), "event": event, "user_id": "tg_z", "event_id": f"z{minute}"}

    await writer.write(validated([at(0, "message_received"), at(10, "assistant_response")]))
    await writer.write(validated([at(20, "assistant_response"), at(30, "message_received")]))
    await writer.write(validated([at(40, "assistant_response")]))
    await writer.write(validated([at(5, "message_received")]))  # late: between the first two
    await writer.write(validated([at(15, "message_received"), at(-5, "message_received")]))  # late again
    found, wanted = await stored_columns(db)
    assert found == wanted
    assert found["z10"] == START + timedelta(minutes=5)
    assert found["z20"] == START + timedelta(minutes=15)
    assert found["z40"] == START + timedelta(minutes=30)  # a later message stops the late ones' reach


def _upgrade_to(connection: Connection, revision: str) -> None:
    command.upgrade(_alembic_config(connection), revision)


async def test_migration_fills_the_columns_of_events_stored_before_it(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0007_report_speed")
            client_id = (
                await conn.execute(insert(Client).returning(Client.id), [{"created_at": START}])
            ).scalar_one()
            received = [
                {key: row[key] for key in ("event_id", "ts", "event", "channel", "user_id", "actor")}
                | {"client_id": client_id, "received_at": START}
                for row in validated(history(random.Random(7), 120))
            ]
            await conn.execute(insert(StoredEvent), received)
        await migrate(engine)
    finally:
        await engine.dispose()
    db = await open_database(database_url)
    try:
        found, wanted = await stored_columns(db)
    finally:
        await db.close()
    assert len(found) == 120
    assert found == wanted
    assert any(value is not None for value in found.values())  # there was something to fill
