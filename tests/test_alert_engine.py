"""Alert state over time: fires once, waits out the cooldown, says "resolved", stays quiet when muted,
and reaches the owner's chat through the real aiogram stack even when Telegram answers 429 then 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select, update

from bot.ingestion.pipeline import ingest_items
from bot.runtime.delivery import DeliveryWorker
from bot.runtime.jobs.alerts import AlertEngine
from bot.runtime.service import create_writer
from bot.settings import Settings
from storage.alert_state import mute_rule
from storage.database import Database, open_database
from storage.models import OutboxMessage
from tests.bot_harness import BOT_TOKEN
from tests.fake_bot_api import FakeBotAPI

OWNER = 1001


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}")
    yield database
    await database.close()


def config() -> Settings:
    return Settings(telegram={"owners": [OWNER]}, alerts={"ingest_errors_per_hour": 10, "cooldown_hours": 6})


async def reject(db: Database, count: int) -> None:
    writer = create_writer(config(), db)
    await writer.start()
    try:
        await ingest_items([{"event": "broken"}] * count, writer, ZoneInfo("Europe/Moscow"), source="http")
    finally:
        await writer.close()


async def test_fires_once_waits_out_cooldown_resolves_and_respects_mute(db: Database) -> None:
    engine = AlertEngine(db, config(), lambda: None)
    await reject(db, 12)
    now = datetime.now(UTC)
    [alert] = await engine.check(now)
    assert "12" in alert
    assert await engine.check(now + timedelta(minutes=10)) == []  # still firing, inside the cooldown
    [resolved] = await engine.check(now + timedelta(hours=2))  # the hour with errors is over
    assert "Снова в норме" in resolved
    assert await engine.check(now + timedelta(hours=2, minutes=10)) == []

    async with db.sessions() as session, session.begin():
        await mute_rule(session, "ingest_errors", now + timedelta(days=1))
    await reject(db, 15)
    assert await engine.check(datetime.now(UTC)) == []


async def test_alert_reaches_the_owner_through_429_and_500(db: Database) -> None:
    await reject(db, 11)
    await AlertEngine(db, config(), lambda: None).check(datetime.now(UTC))
    async with FakeBotAPI() as api:
        bot = Bot(BOT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
        try:
            api.fail_next("sendMessage", status=429, retry_after=1)
            worker = DeliveryWorker(db, lambda: bot)
            assert await worker.deliver_due() == 0
            api.fail_next("sendMessage", status=500, description="Internal Server Error")
            for expected in (0, 1):
                async with db.sessions() as session, session.begin():
                    await session.execute(
                        update(OutboxMessage).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
                    )
                assert await worker.deliver_due() == expected
        finally:
            await bot.session.close()
        delivered = [call for call in api.calls_of("sendMessage") if call.ok]
    assert [call.params["chat_id"] for call in delivered] == [OWNER]
    assert "11" in delivered[0].params["text"]
    async with db.sessions() as session:
        [message] = (await session.execute(select(OutboxMessage))).scalars()
    assert message.sent_at is not None and message.attempts == 2
