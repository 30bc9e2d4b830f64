"""Full-text search on SQLite and on a real PostgreSQL: Russian endings, hostile queries, the indexer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from storage.database import Database
from storage.models import StoredEvent
from storage.search import SearchHit, SearchIndexer, query_words, remove_events, rough_stem, search_clients
from storage.writer import EventWriter
from tests.test_storage import event, rows


async def write(writer: EventWriter, *items: dict[str, Any]) -> None:
    await writer.write(rows(*items))


async def search(db: Database, query: str) -> list[SearchHit]:
    async with db.sessions() as session:
        return await search_clients(session, query)


async def users(db: Database, query: str) -> set[str]:
    """The user ids of the clients found, to compare with what the test wrote."""
    hits = await search(db, query)
    async with db.sessions() as session:
        result = await session.execute(
            select(StoredEvent.user_id).where(StoredEvent.client_id.in_([hit.client_id for hit in hits]))
        )
        return set(result.scalars())


async def event_row_id(db: Database, event_id: str) -> int:
    async with db.sessions() as session:
        return int(
            (
                await session.execute(select(StoredEvent.id).where(StoredEvent.event_id == event_id))
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("стрижку", "стрижк"),
        ("СТРИЖК".lower(), "стрижк"),
        ("записаться", "запис"),
        ("вечером", "вечер"),
        ("хочу", "хочу"),
        ("ёлочку", "елочк"),
        ("booking", "booking"),
    ],
)
def test_rough_stem_drops_russian_endings_only(word: str, stem: str) -> None:
    assert rough_stem(word) == stem


def test_query_words_keep_letters_and_digits_only() -> None:
    assert query_words('"Стрижку*" NEAR(метро) OR 1=1 -- %_\\; tg_123') == [
        "стрижку",
        "near",
        "метро",
        "or",
        "1",
        "tg",
        "123",
    ]


async def test_russian_words_found_whatever_the_case_and_ending(db: Database, writer: EventWriter) -> None:
    await write(
        writer,
        event("tg_1", 1, message="Здравствуйте, хочу записаться на стрижку"),
        event("tg_2", 2, message="Сколько стоит маникюр?"),
        event("tg_3", 3, message="Отменяю ЗАПИСЬ на вечер"),
    )
    await SearchIndexer(db).catch_up()
    for query in ("Стрижка", "СТРИЖК", "стрижкой", "стрижку", "  стрижки  "):
        assert await users(db, query) == {"tg_1"}, query
    assert await users(db, "вечером") == {"tg_3"}
    assert await users(db, "запись") == {"tg_1", "tg_3"}  # the noun's stem begins the verb
    assert await users(db, "маник") == {"tg_2"}
    assert await users(db, "хочу маникюр") == set()  # every word must match in one event
    assert await users(db, "педикюр") == set()


async def test_assistant_answers_are_searched_and_snippets_are_plain_text(
    db: Database, writer: EventWriter
) -> None:
    await write(
        writer,
        event("tg_1", 1, message="<b>Есть окно?</b>"),
        event(
            "tg_1",
            2,
            event="assistant_response",
            assistant_response="Когда вам удобно? Сегодня в 18:00 свободно.",
        ),
    )
    await SearchIndexer(db).catch_up()
    [hit] = await search(db, "Свободно")
    assert "свободно" in hit.snippet and "18" in hit.snippet
    assert hit.ts == datetime(2025, 3, 1, 7, 2, tzinfo=UTC)
    [hit] = await search(db, "окно")
    assert "<b>Есть окно?</b>" in hit.snippet  # the text as written: escaping is the bot's job


async def test_one_hit_per_client_with_the_latest_match_latest_client_first(
    db: Database, writer: EventWriter
) -> None:
    await write(
        writer,
        event("tg_1", 1, name="Айгуль", message="стрижка чёлки"),
        event("tg_1", 30, message="а стрижка бороды?"),
        event("tg_2", 10, name="Рустем", message="стрижка машинкой"),
        event("tg_2", 11, message="ничего не ищем тут"),
    )
    await SearchIndexer(db).catch_up()
    hits = await search(db, "стрижка")
    assert [(hit.name, hit.ts.minute) for hit in hits] == [("Айгуль", 30), ("Рустем", 10)]
    assert "бороды" in hits[0].snippet
    async with db.sessions() as session:
        assert len(await search_clients(session, "стрижка", limit=1)) == 1


HOSTILE = 'Скидка 50% на "стрижку" (NEAR метро) O\'Brien 100_500 C:\\path ^x -y OR 1=1 -- ; DROP'


PLAIN_TEXT_QUERIES = [
    '"стрижку"',
    "стрижку*",
    "стрижку)",
    "NEAR(метро",
    "o'brien",
    "50%",
    "100_500",
    "C:\\path",
    "^x",
    "-y",
    "OR 1=1 --",
    "скидка; DROP",
    "стрижку OR",
    'стрижку" OR "1"="1',
]
PUNCTUATION_QUERIES = ['"', "*", "'", "%", "_", "%_%", "\\", ";", "(", ")", "-", ":", "^", "'--'", '"*"', ""]


async def test_special_characters_in_queries_are_plain_text(db: Database, writer: EventWriter) -> None:
    await write(writer, event("tg_1", 1, message=HOSTILE), event("tg_2", 2, message="Просто маникюр"))
    await SearchIndexer(db).catch_up()
    for query in PLAIN_TEXT_QUERIES:
        assert await users(db, query) == {"tg_1"}, query
    for query in PUNCTUATION_QUERIES:
        assert await search(db, query) == [], query
    assert await users(db, "near") == {"tg_1"}  # "NEAR" is a word like any other, not an operator
    async with db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(StoredEvent))).scalar_one() == 2


async def test_events_written_after_a_run_are_found_after_the_next(db: Database, writer: EventWriter) -> None:
    indexer = SearchIndexer(db, batch_size=3)
    await write(writer, *(event(f"tg_{n}", n, message=f"маникюр номер {n}") for n in range(7)))
    assert await indexer.catch_up() == 7
    await write(writer, event("tg_late", 30, message="Поздняя запись на педикюр"))
    assert await users(db, "педикюр") == set()
    assert await indexer.catch_up() == 1
    assert await users(db, "педикюр") == {"tg_late"}
    assert len(await users(db, "маникюр")) == 7
    assert await indexer.catch_up() == 0


async def test_a_fresh_indexer_carries_on_where_the_last_one_stopped(
    db: Database, writer: EventWriter
) -> None:
    await write(writer, event("tg_1", 1, message="окрашивание"))
    assert await SearchIndexer(db).catch_up() == 1
    await write(writer, event("tg_2", 2, message="окрашивание"))
    assert await SearchIndexer(db).catch_up() == 1
    assert await users(db, "окрашивание") == {"tg_1", "tg_2"}


async def test_removed_events_are_not_found(db: Database, writer: EventWriter) -> None:
    await write(
        writer,
        event("tg_1", 1, message="мой телефон секретный", event_id="anonymised"),
        event("tg_2", 2, message="секретный код домофона", event_id="kept"),
    )
    await SearchIndexer(db).catch_up()
    row_id = await event_row_id(db, "anonymised")
    async with db.engine.begin() as conn:
        await conn.execute(update(StoredEvent).where(StoredEvent.id == row_id).values(message=None))
        await remove_events(conn, [row_id])
    assert await users(db, "секретный") == {"tg_2"}
    assert await users(db, "телефон") == set()
    await SearchIndexer(db).catch_up()
    assert await users(db, "телефон") == set()


async def test_an_event_reusing_the_id_of_a_deleted_one_is_indexed(db: Database, writer: EventWriter) -> None:
    # SQLite gives the highest id out again once it is deleted; the new event must not inherit the old text.
    await write(
        writer,
        event("tg_1", 1, message="первое"),
        event("tg_2", 2, message="забудьте меня", event_id="forget-me"),
    )
    await SearchIndexer(db).catch_up()
    row_id = await event_row_id(db, "forget-me")
    async with db.engine.begin() as conn:
        await conn.execute(delete(StoredEvent).where(StoredEvent.id == row_id))
        await remove_events(conn, [row_id])
    await write(writer, event("tg_3", 3, message="новое сообщение"))
    await SearchIndexer(db).catch_up()
    assert await users(db, "забудьте") == set()
    assert await users(db, "новое") == {"tg_3"}
    assert await users(db, "первое") == {"tg_1"}


async def test_clients_merged_after_indexing_are_found_as_one(db: Database, writer: EventWriter) -> None:
    await write(
        writer, event("tg_1", 1, message="хочу ламинирование"), event("wa_2", 2, message="ламинирование?")
    )
    await SearchIndexer(db).catch_up()
    assert len(await search(db, "ламинирование")) == 2
    await write(writer, event("tg_1", 3, crm_id="BX_1"), event("wa_2", 4, crm_id="BX_1"))
    [hit] = await search(db, "ламинирование")
    assert hit.ts.minute == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgres_event_committed_late_with_a_lower_id_is_not_skipped(
    db: Database, writer: EventWriter
) -> None:
    await write(writer, event("tg_1", 1, message="начало"))
    async with db.sessions() as session:
        client_id = (await session.execute(select(func.max(StoredEvent.client_id)))).scalar_one()
    now = datetime.now(UTC)
    slow = await db.engine.connect()
    try:
        transaction = await slow.begin()
        await slow.execute(
            insert(StoredEvent).values(
                event_id="slow",
                client_id=client_id,
                ts=now,
                received_at=now,
                event="message_received",
                channel="telegram",
                user_id="tg_1",
                actor="client",
                message="медленная транзакция",
            )
        )
        # A later event gets a higher id and is committed while the first is still open.
        await write(writer, event("tg_2", 2, message="быстрая транзакция"))
        indexer = SearchIndexer(db, settle_timeout_seconds=0)
        await indexer.catch_up()
        await transaction.commit()
    finally:
        await slow.close()
    await indexer.catch_up()
    assert await users(db, "транзакция") == {"tg_1", "tg_2"}
