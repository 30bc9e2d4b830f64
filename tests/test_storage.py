"""The store on SQLite and on a real PostgreSQL: idempotence, group commit, client linking, quarantine."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from bot.ingestion.pipeline import ingest_items
from bot.ingestion.validation import validate_items
from storage.database import Database, migrate
from storage.models import Base, Client, QuarantinedPayload, StoredEvent
from storage.timeline import event_fields, find_client_ids, load_card, load_events
from storage.writer import EventWriter
from tests.conftest import SEED_EVENT

MOSCOW = ZoneInfo("Europe/Moscow")


def is_search_table(name: str) -> bool:
    """The search index's tables (FTS5's shadow tables included), which the ORM models do not describe."""
    return name in {"search_state", "search_documents", "search_fts"} or name.startswith("search_fts_")


def rows(*items: dict[str, Any]) -> list[dict[str, Any]]:
    validated = validate_items(list(items), MOSCOW)
    assert validated.errors == []
    return validated.rows


def event(user: str, minute: int, **fields: Any) -> dict[str, Any]:
    return {
        "timestamp": f"2025-03-01T10:{minute:02d}:00+03:00",
        "event": "message_received",
        "user_id": user,
        **fields,
    }


async def count(db: Database, model: Any = StoredEvent) -> int:
    async with db.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_seed_event_round_trips_and_is_idempotent(db: Database, writer: EventWriter) -> None:
    first = await writer.write(rows(SEED_EVENT))
    second = await writer.write(rows(SEED_EVENT))
    assert (first.accepted, first.duplicates) == (1, 0)
    assert (second.accepted, second.duplicates) == (0, 1)
    async with db.sessions() as session:
        for query in ("tg_12345", "BX_67890", "lead_2025_001"):
            assert len(await find_client_ids(session, query)) == 1
        [client_id] = await find_client_ids(session, "BX_67890")
        [stored] = await load_events(session, client_id)
        fields = event_fields(stored)
    assert fields["timestamp"] == datetime(2025, 1, 1, 9, 34, 56, tzinfo=UTC)
    assert fields["message"] == SEED_EVENT["message"]
    assert fields["lat"] == 55.7887
    assert fields["confidence"] == 0.92


async def test_same_batch_sent_twice_concurrently_is_stored_once(db: Database, writer: EventWriter) -> None:
    batch = rows(*(event(f"tg_{n % 7}", n % 60, event_id=f"e-{n}") for n in range(300)))
    results = await asyncio.gather(*(writer.write(batch) for _ in range(2)))
    assert sorted((r.accepted, r.duplicates) for r in results) == [(0, 300), (300, 0)]
    assert await count(db) == 300


async def test_concurrent_writers_are_grouped_into_fewer_commits(db: Database, writer: EventWriter) -> None:
    batches = [rows(event(f"tg_{n}", n % 60, event_id=f"g-{n}")) for n in range(50)]
    before = writer.batches_committed
    results = await asyncio.gather(*(writer.write(batch) for batch in batches))
    assert all(result.accepted == 1 for result in results)
    assert writer.batches_committed - before < 50
    assert await count(db) == 50


async def test_ids_seen_together_link_into_one_client_and_merge_two(
    db: Database, writer: EventWriter
) -> None:
    await writer.write(
        rows(event("tg_1", 1, name="Айдар"), event("wa_79171234567", 2, phone="+7 917 123-45-67"))
    )
    assert await count(db, Client) == 2
    # The CRM record reveals that the Telegram user and the WhatsApp phone are one person.
    await writer.write(rows(event("tg_1", 3, event="lead_created", crm_id="BX_1", phone="8 (917) 123-45-67")))
    assert await count(db, Client) == 1
    async with db.sessions() as session:
        ids = {
            q: await find_client_ids(session, q) for q in ("tg_1", "wa_79171234567", "BX_1", "+79171234567")
        }
        assert len({tuple(found) for found in ids.values()}) == 1
        card = await load_card(session, ids["tg_1"][0])
        assert card is not None
        timeline = await load_events(session, card.id)
    assert card.name == "Айдар"
    assert card.event_count == 3
    assert set(card.identities) == {"user", "crm", "phone"}
    assert [item.event for item in timeline] == ["message_received", "message_received", "lead_created"]


async def test_timeline_is_oldest_first_whatever_the_arrival_order(db: Database, writer: EventWriter) -> None:
    await writer.write(rows(event("tg_5", 30, message="третье")))
    await writer.write(rows(event("tg_5", 10, message="первое"), event("tg_5", 20, message="второе")))
    async with db.sessions() as session:
        [client_id] = await find_client_ids(session, "tg_5")
        texts = [item.message for item in await load_events(session, client_id)]
    assert texts == ["первое", "второе", "третье"]


async def test_good_events_stored_and_bad_ones_quarantined_in_one_commit(
    db: Database, writer: EventWriter
) -> None:
    outcome = await ingest_items(
        [SEED_EVENT, {"event": "x"}, event("tg_2", 5)], writer, MOSCOW, source="test"
    )
    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (2, 0, 1)
    assert await count(db) == 2
    async with db.sessions() as session:
        [kept] = (await session.execute(select(QuarantinedPayload))).scalars()
    assert kept.source == "test"
    assert {error["field"] for error in kept.errors} == {"timestamp", "user_id"}
    assert '"event":"x"' in kept.payload


async def test_quarantine_is_bounded_keeping_the_newest(db: Database, writer: EventWriter) -> None:
    for n in range(60):
        await ingest_items([{"event": "x", "n": n}], writer, MOSCOW, source="test")
    assert await count(db, QuarantinedPayload) == 50
    async with db.sessions() as session:
        newest = (
            (await session.execute(select(QuarantinedPayload).order_by(QuarantinedPayload.id.desc())))
            .scalars()
            .first()
        )
    assert newest is not None and '"n":59' in newest.payload


async def test_extra_fields_and_appointment_time_survive(db: Database, writer: EventWriter) -> None:
    extra = {"utm": {"source": "vk", "tags": ["a", "б"]}, "visits": 3}
    await writer.write(
        rows(event("tg_9", 1, event="appointment_booked", appointment_at="2025-03-02T19:00:00", **extra))
    )
    async with db.sessions() as session:
        [client_id] = await find_client_ids(session, "tg_9")
        [stored] = await load_events(session, client_id)
    assert stored.extra == extra
    assert stored.appointment_at == datetime(2025, 3, 2, 16, 0, tzinfo=UTC)


async def test_migrations_are_idempotent(db: Database) -> None:
    await migrate(db.engine)
    await migrate(db.engine)
    assert await count(db) == 0


async def test_merges_within_one_batch_leave_no_event_on_a_vanished_client(
    db: Database, writer: EventWriter
) -> None:
    # Three clients, then one batch that reveals they are one person through two different links,
    # while other rows of the same batch still name the clients about to be merged away.
    await writer.write(rows(event("tg_a", 1), event("wa_b", 2), event("ig_c", 3)))
    await writer.write(rows(event("wa_b", 4)))
    result = await writer.write(
        rows(
            event("ig_c", 5),
            event("ig_c", 6, crm_id="BX_9"),
            event("wa_b", 7, crm_id="BX_9"),
            event("tg_a", 8, lead_id="L1"),
            event("wa_b", 9, lead_id="L1"),
            event("wa_b", 10),
        )
    )
    assert result.accepted == 6
    assert await count(db, Client) == 1
    async with db.sessions() as session:
        [client_id] = await find_client_ids(session, "tg_a")
        assert await find_client_ids(session, "ig_c") == [client_id]
        assert len(await load_events(session, client_id)) == 10


async def test_migrations_create_exactly_the_models_schema(db: Database) -> None:
    def outside_the_search_index(name: str | None, type_: str, parents: dict[str, str | None]) -> bool:
        # The search index (an FTS5 table with its shadow tables on SQLite) is not described by the models.
        return not (type_ == "table" and name is not None and is_search_table(name))

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": outside_the_search_index}
        )
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_a_client_created_beside_a_merge_keeps_its_own_events(
    db: Database, writer: EventWriter
) -> None:
    # SQLite may give the new client the rowid of the client merged away in the same batch.
    await writer.write(rows(event("tg_a", 1)))
    await writer.write(rows(event("wa_b", 2, crm_id="BX_1")))
    await writer.write(rows(event("tg_a", 3, crm_id="BX_1"), event("ig_c", 4)))
    async with db.sessions() as session:
        [merged] = await find_client_ids(session, "tg_a")
        [separate] = await find_client_ids(session, "ig_c")
        assert merged != separate
        assert [item.user_id for item in await load_events(session, separate)] == ["ig_c"]
        assert {item.user_id for item in await load_events(session, merged)} == {"tg_a", "wa_b"}


async def test_one_batch_of_thousands_of_new_clients_is_stored_whole(
    db: Database, writer: EventWriter
) -> None:
    """An import of a CRM export: 10,000 new people, three ids each, in one transaction. PostgreSQL must not
    run out of its lock table (one advisory lock per identity did: "out of shared memory")."""
    batch = rows(
        *(
            event(f"tg_{n}", n % 60, crm_id=f"BX_{n}", lead_id=f"lead_{n}", event_id=f"import-{n}")
            for n in range(10_000)
        )
    )
    result = await writer.write(batch)
    assert (result.accepted, result.duplicates) == (10_000, 0)
    assert await count(db, Client) == 10_000
