"""The owners' storage alarm in detail: a real writer on a SQLite file locked by another connection, the real
aiogram bot against the fake Bot API. Driven check by check, so each rule is seen on its own: the grace
period, one message per outage, silence while storage flaps, waiting for Telegram, a blocked owner."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest
from aiogram import Bot

from bot.ingestion.pipeline import ingest_items
from bot.runtime.service import create_writer
from bot.runtime.storage_alarm import StorageAlarm
from bot.runtime.telegram_link import create_bot
from bot.settings import Settings
from reports.texts import faults as fault_texts
from storage.database import StorageUnavailable, open_database
from storage.writer import EventWriter
from tests.fake_bot_api import FakeBotAPI

BOT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstu"
OWNER, BLOCKED = 1001, 1002


@dataclass
class Setup:
    api: FakeBotAPI
    bot: Bot
    writer: EventWriter
    db_path: Path
    rows: int = 0

    def told(self, text: str) -> Counter[int]:
        return Counter(
            int(call.params["chat_id"])
            for call in self.api.calls_of("sendMessage")
            if call.ok and call.params["text"] == text
        )

    def attempts(self, chat_id: int) -> int:
        return sum(1 for call in self.api.calls_of("sendMessage") if call.params["chat_id"] == chat_id)

    async def write(self) -> bool:
        """One event through the writer; False when storage refused it."""
        self.rows += 1
        event = {
            "timestamp": "2026-11-25T10:00:00+03:00",
            "event": "message_received",
            "user_id": "tg_1",
            "event_id": f"alarm-{self.rows}",
        }
        try:
            await ingest_items([event], self.writer, UTC, source="test")
        except StorageUnavailable:
            return False
        return True

    async def fail_once(self) -> None:
        """Another connection holds the write lock longer than the busy timeout: one write fails."""
        with closing(sqlite3.connect(self.db_path, isolation_level=None, timeout=10)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            assert not await self.write()
            blocker.execute("ROLLBACK")


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with FakeBotAPI() as api:
        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{tmp_path / 'alarm.db'}", "busy_timeout_ms": 100},
            telegram={"token": BOT_TOKEN, "api_server": api.base_url, "owners": [OWNER, BLOCKED]},
        )
        db = await open_database(settings.database.url, settings.database.busy_timeout_ms)
        writer = create_writer(settings, db)
        await writer.start()
        bot = create_bot(settings)
        api.block_chat(BLOCKED)
        try:
            yield Setup(api, bot, writer, tmp_path / "alarm.db")
        finally:
            await bot.session.close()
            await writer.close()
            await db.close()


async def test_one_message_per_outage_and_silence_while_storage_flaps(setup: Setup) -> None:
    alarm = StorageAlarm(
        setup.writer, [OWNER, BLOCKED], lambda: setup.bot, after_seconds=0, repeat_seconds=3600
    )
    assert await setup.write()
    await alarm.check()
    assert setup.api.calls_of("sendMessage") == []  # all well: nothing to say

    await setup.fail_once()
    for _ in range(3):
        await alarm.check()
    assert setup.told(fault_texts.STORAGE_FAILING) == {OWNER: 1}
    assert setup.attempts(BLOCKED) == 1  # the owner who blocked the bot is not retried at every check

    assert await setup.write()
    await alarm.check()
    await alarm.check()
    assert setup.told(fault_texts.STORAGE_RECOVERED) == {OWNER: 1}

    # Storage fails again within the repeat interval: the owners heard about it a moment ago.
    await setup.fail_once()
    await alarm.check()
    assert await setup.write()
    await alarm.check()
    assert setup.told(fault_texts.STORAGE_FAILING) == {OWNER: 1}
    assert setup.told(fault_texts.STORAGE_RECOVERED) == {OWNER: 1}


async def test_short_failures_are_not_told_and_a_long_one_waits_for_telegram(setup: Setup) -> None:
    connected: list[Bot] = []
    alarm = StorageAlarm(
        setup.writer,
        [OWNER],
        lambda: connected[0] if connected else None,
        after_seconds=0.5,
        repeat_seconds=0,
    )
    await setup.fail_once()
    await alarm.check()
    assert await setup.write()  # a blip shorter than the grace period
    await asyncio.sleep(0.6)
    await alarm.check()
    assert setup.api.calls_of("sendMessage") == []

    await setup.fail_once()
    await asyncio.sleep(0.6)
    await alarm.check()  # Telegram is not connected: nothing can be said yet
    assert setup.api.calls_of("sendMessage") == []
    setup.api.fail_next("sendMessage", 502)
    connected.append(setup.bot)
    await alarm.check()  # Telegram answers 502: try again at the next check
    assert setup.told(fault_texts.STORAGE_FAILING) == {}
    await alarm.check()
    assert setup.told(fault_texts.STORAGE_FAILING) == {OWNER: 1}
    assert await setup.write()
    await alarm.check()
    assert setup.told(fault_texts.STORAGE_RECOVERED) == {OWNER: 1}
