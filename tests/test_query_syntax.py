"""Owners' queries with SQL, LIKE, FTS5 and tsquery syntax are plain text, on SQLite and PostgreSQL,
and through the real bot.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.ingestion.validation import validate_items
from bot.telegram.client_lookup import lookup_clients
from reports.texts import client as client_texts
from storage.database import Database
from storage.search import SearchIndexer, search_clients
from storage.writer import EventWriter
from tests.bot_harness import OWNER, bot_harness
from tests.test_bot_clients import event

CLIENTS = {
    "tg_1": ("Анна O'Neil", "Хочу маникюр вечером"),
    "tg_2": ("Скидка 100%_VIP", "Стрижка и укладка"),
    "tg_3": ("Ли_Ли", "маникюр near педикюр, рядом с домом"),
    "tg_4": ('Back\\slash "Кавычки"', "message: стрижка бороды"),
    "tg_'%_*": ("Обычный Клиент", "просто вопрос"),
}

# Every query that is only punctuation around a word must find exactly what the bare word finds.
WRAPPED = [
    "{w}*",
    '"{w}"',
    "({w})",
    "-{w}",
    "{w}:",
    "{w}\\",
    "{w}' --",
    "{w} & | ! <->",
    "!{w}",
    "{w}%",
    "{w}_",
    "^{w}",
    "{{{w}}}",
    "'{w}'",
]
NOTHING = ["*", '"', "'", "\\", "%", "_", "-", ":", "(", ")", "&|!<->", "' OR 1=1 --", '"*"', "^"]


async def _store(writer: EventWriter, db: Database) -> dict[str, int]:
    items: list[dict[str, Any]] = [
        event(user, n, name=name, message=message)
        for n, (user, (name, message)) in enumerate(CLIENTS.items())
    ]
    validated = validate_items(items, ZoneInfo("Europe/Moscow"))
    assert validated.errors == []
    await writer.write(validated.rows)
    await SearchIndexer(db).catch_up()
    async with db.sessions() as session:
        ids = {user: (await lookup_clients(session, user, "RU"))[0].client_id for user in CLIENTS}
    return ids


async def _search(db: Database, query: str) -> set[int]:
    async with db.sessions() as session:
        return {hit.client_id for hit in await search_clients(session, query)}


async def _lookup(db: Database, query: str) -> set[int]:
    async with db.sessions() as session:
        return {match.client_id for match in await lookup_clients(session, query, "RU")}


async def test_search_treats_fts_and_tsquery_syntax_as_plain_text(db: Database, writer: EventWriter) -> None:
    ids = await _store(writer, db)
    for word in ("маникюр", "стрижка"):
        plain = await _search(db, word)
        assert plain, word
        for template in WRAPPED:
            query = template.format(w=word)
            assert await _search(db, query) == plain, query
    for query in NOTHING:
        assert await _search(db, query) == set(), query
    # Operators are words: OR does not widen, NEAR and a column filter are searched for as words.
    assert await _search(db, "маникюр OR стрижка") == set()
    assert await _search(db, "NEAR(маникюр педикюр)") == {ids["tg_3"]}
    assert await _search(db, "message:стрижка") == {ids["tg_4"]}
    assert await _search(db, "маникюр -вечером") == {ids["tg_1"]}  # "-" does not exclude


async def test_client_lookup_treats_like_wildcards_and_quotes_as_plain_text(
    db: Database, writer: EventWriter
) -> None:
    ids = await _store(writer, db)
    assert await _lookup(db, "100%") == {ids["tg_2"]}
    assert await _lookup(db, "%") == {ids["tg_2"]}
    assert await _lookup(db, "_") == {ids["tg_2"], ids["tg_3"]}
    assert await _lookup(db, "o'neil") == {ids["tg_1"]}
    assert await _lookup(db, "'") == {ids["tg_1"]}
    assert await _lookup(db, "\\") == {ids["tg_4"]}
    assert await _lookup(db, '"кавычки"') == {ids["tg_4"]}
    assert await _lookup(db, "tg_'%_*") == {ids["tg_'%_*"]}  # an exact id with every wildcard in it
    for query in ("' OR 1=1 --", "*", "%%%%", "(", ")", ":", "&|!<->", "NEAR", "'; DROP TABLE clients; --"):
        assert await _lookup(db, query) == set(), query
    assert len(await _lookup(db, "а")) >= 2  # the table is still there and names still match


OWNER_QUERIES = [
    ("/client 100%", "Скидка 100%_VIP", 2),  # the card and the timeline
    ("/client o'neil", "Анна O'Neil", 2),
    ("/client ' OR 1=1 --", client_texts.NOT_FOUND, 1),
    ("/search маникюр*", "маникюр", 1),
    ('/search "маникюр" OR педикюр', "ничего не нашлось", 1),
    ("/search message:стрижка", "стрижка бороды", 1),
    ("/search &|!<->", "ничего не нашлось", 1),
    ("/search NEAR(", "near педикюр", 1),  # "near" is a word in one message
]


async def test_owner_queries_with_syntax_get_plain_answers_in_the_bot(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        await _store(harness.writer, harness.db)
        sent = 0
        for command, shows, count in OWNER_QUERIES:
            harness.api.send_private_message(OWNER, command)
            calls = await harness.api.wait_for("sendMessage", count=sent + count, timeout=15)
            answer = calls[sent].params["text"]
            sent += count
            assert shows in html.unescape(answer), (command, answer)
