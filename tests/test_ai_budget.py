"""The ``ai_budget`` alert end to end: model calls priced at ingest, the alert engine's check, the outbox and
the real aiogram Bot against the fake Bot API. The owner hears once at 80 % and once at 100 % of the
month's budget, with the forecast, and never again that month; a new month says no "resolved"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.ingestion.pipeline import ingest_items
from bot.runtime.delivery import DeliveryWorker
from bot.runtime.jobs.alerts import AlertEngine
from bot.runtime.service import create_writer
from bot.settings import Settings
from storage.database import Database, open_database
from tests.bot_harness import BOT_TOKEN
from tests.fake_bot_api import FakeBotAPI

OWNER = 1001
MOSCOW = ZoneInfo("Europe/Moscow")
NOON_15_MARCH = datetime(2025, 3, 15, 12, 0, tzinfo=MOSCOW)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'budget.db'}")
    yield database
    await database.close()


def settings() -> Settings:
    return Settings(
        telegram={"owners": [OWNER]},
        alerts={"cooldown_hours": 1},
        ai={
            "monthly_budget": 10,
            "prices": [{"model": "yandexgpt-pro", "input_per_million": 1000, "output_per_million": 1000}],
        },
    )


async def spend(db: Database, roubles: int, at: datetime) -> None:
    """Model calls costing ``roubles`` (1,000 tokens a rouble at this price), priced at ingest."""
    calls: list[dict[str, Any]] = [
        {
            "timestamp": (at + timedelta(seconds=n)).isoformat(),
            "event": "llm_call",
            "user_id": f"tg_{n}",
            "model": "yandexgpt-pro",
            "input_tokens": 900,
            "output_tokens": 100,
        }
        for n in range(roubles)
    ]
    writer = create_writer(settings(), db)
    await writer.start()
    try:
        outcome = await ingest_items(calls, writer, MOSCOW, source="test", prices=settings().ai.price_table())
        assert outcome.accepted == roubles
    finally:
        await writer.close()


async def delivered(db: Database, api: FakeBotAPI) -> list[str]:
    bot = Bot(BOT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    try:
        await DeliveryWorker(db, lambda: bot).deliver_due()
    finally:
        await bot.session.close()
    return [call.params["text"] for call in api.calls_of("sendMessage") if call.ok]


async def test_the_owner_is_told_once_at_80_and_once_at_100_percent_and_not_again(db: Database) -> None:
    engine = AlertEngine(db, settings(), lambda: None)
    now = NOON_15_MARCH
    await spend(db, 7, datetime(2025, 3, 2, 10, 0, tzinfo=MOSCOW))
    assert await engine.check(now) == []  # 70 %
    await spend(db, 1, datetime(2025, 3, 14, 10, 0, tzinfo=MOSCOW))
    async with FakeBotAPI() as api:
        [warning] = await engine.check(now)
        assert await delivered(db, api) == [warning]
        assert warning.startswith(
            "💸 Расходы на ИИ за март 2025 дошли до 80\xa0% бюджета: 8\xa0₽ из 10\xa0₽ (80\xa0%)."
        )
        # 8 ₽ after 14.5 of 31 days.
        assert "Прогноз на месяц при нынешнем темпе: 17,10\xa0₽." in warning
        assert await engine.check(now + timedelta(minutes=10)) == []
        assert await engine.check(now + timedelta(hours=3)) == []  # the cooldown is over: still once

        await spend(db, 2, datetime(2025, 3, 15, 13, 0, tzinfo=MOSCOW))
        [exhausted] = await engine.check(now + timedelta(hours=4))
        assert exhausted.startswith("⛔ Бюджет на ИИ за март 2025 исчерпан: 10\xa0₽ из 10\xa0₽ (100\xa0%).")
        await spend(db, 3, datetime(2025, 3, 16, 10, 0, tzinfo=MOSCOW))
        assert await engine.check(now + timedelta(days=2)) == []
        # April: nothing spent yet, and nothing to say about March.
        assert await engine.check(datetime(2025, 4, 1, 9, 0, tzinfo=MOSCOW)) == []
        texts = await delivered(db, api)
    assert texts == [warning, exhausted]
    assert all(call.params["chat_id"] == OWNER for call in api.calls_of("sendMessage"))
